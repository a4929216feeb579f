"""The package's public surface: `import birdinfer` and the names it offers."""

import pytest


def test_the_old_pipeline_name_still_works_with_a_warning():
    import birdinfer

    with pytest.warns(
        FutureWarning, match=r"birdinfer\.Pipeline is deprecated: use birdinfer\.Ensemble"
    ):
        assert birdinfer.Pipeline is birdinfer.Ensemble
