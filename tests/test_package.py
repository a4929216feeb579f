"""The package's public surface: `import birdinfer` and the names it offers."""

import pytest


def test_the_old_pipeline_name_still_works_with_a_warning():
    import birdinfer

    with pytest.warns(
        FutureWarning, match=r"birdinfer\.Pipeline is deprecated: use birdinfer\.Ensemble"
    ):
        assert birdinfer.Pipeline is birdinfer.Ensemble


def test_the_inference_path_leaves_slow_imports_to_the_steps_that_need_them():
    """Every process that scores (the CLI, each worker process) imports the run path: scipy.signal
    (PCEN, librosa deltas) took ~1 s of it, and torch is an extra."""
    import subprocess
    import sys

    probe = (
        "import sys, birdinfer.cli, birdinfer.runner.steps\n"
        "print(sorted(m for m in ('scipy.signal', 'scipy.stats', 'scipy.ndimage', 'torch') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
