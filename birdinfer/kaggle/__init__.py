"""birdinfer on Kaggle: the notebook's config from what is mounted under /kaggle/input, and the
offline wheelhouse it installs from.

In the notebook: `NotebookSettings` -> `notebook_config` (the run's config, and notes on what was
found: competition data, the save run's fallback, the models) and `scored_from` (which folder a
run scored); a missing mount raises `KaggleInputError`. Before it, on a machine with network:
`build_wheelhouse` (`WheelhouseSettings` -> a `Wheelhouse` folder, or a `WheelhouseError`), for
Kaggle's Python (`KAGGLE_PYTHON`) and platforms (`KAGGLE_PLATFORMS`), leaving out what the image
has (`KAGGLE_HAS`).
"""

from birdinfer.kaggle.inputs import KaggleInputError
from birdinfer.kaggle.notebook import NotebookSettings, notebook_config, scored_from
from birdinfer.kaggle.wheelhouse import (
    KAGGLE_HAS,
    KAGGLE_PLATFORMS,
    KAGGLE_PYTHON,
    Wheelhouse,
    WheelhouseError,
    WheelhouseSettings,
    build_wheelhouse,
)

__all__ = [
    "KAGGLE_HAS",
    "KAGGLE_PLATFORMS",
    "KAGGLE_PYTHON",
    "KaggleInputError",
    "NotebookSettings",
    "Wheelhouse",
    "WheelhouseError",
    "WheelhouseSettings",
    "build_wheelhouse",
    "notebook_config",
    "scored_from",
]
