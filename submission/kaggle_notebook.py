# %% [markdown]
# # BirdCLEF submission with birdinfer (CPU, internet off)
#
# Attach three inputs: the competition, the `birdinfer-wheels` dataset (built by
# `python scripts/build_wheelhouse.py`) and a dataset of models exported by `birdinfer export`
# (`.onnx` and/or OpenVINO `.xml` files that carry their classes and mel settings).
# Every path below can be edited here or set through the environment variable it names.
# `kaggle_notebook.ipynb` is generated from `kaggle_notebook.py` by jupytext (`jupytext --update
# --to ipynb kaggle_notebook.py`).

# %%
import os
from pathlib import Path

WHEELS = Path(os.environ.get("BIRDINFER_WHEELS", "/kaggle/input/birdinfer-wheels"))
COMPETITION = Path(os.environ.get("BIRDINFER_COMPETITION", "/kaggle/input/birdclef-2026"))
# A model file, a folder of them, or several joined by ":"; their order is the time guard's
# priority order (the lowest-priority members are dropped first when time runs short).
MODELS = os.environ.get("BIRDINFER_MODELS", "/kaggle/input/birdinfer-models")
WORKING = Path(os.environ.get("BIRDINFER_WORKING", "/kaggle/working"))
# A bundled config (birdclef2023 .. birdclef2026: metric, CPU budget, time guard) or a YAML path.
CONFIG = os.environ.get("BIRDINFER_CONFIG", "birdclef2026")
# While Kaggle saves the notebook, test_soundscapes/ is empty: run on this many unlabelled
# soundscapes instead, to check and time the path (0: write a header-only submission).
FALLBACK_FILES = int(os.environ.get("BIRDINFER_FALLBACK_FILES", "20"))

# %%
# Offline install from the attached wheels, only when birdinfer is not importable yet.
import importlib
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("birdinfer") is None:
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(WHEELS)]
    subprocess.run([*pip, "birdinfer"], check=True)
    importlib.invalidate_caches()

# %%
import logging

import birdinfer
from birdinfer.kaggle.paths import fallback_folder, find_models
from birdinfer.output.report import summary

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
fallback = fallback_folder(COMPETITION / "unlabeled_soundscapes", FALLBACK_FILES)
config = birdinfer.load_config(
    CONFIG,
    {
        "input_dir": str(COMPETITION / "test_soundscapes"),
        "models": find_models(MODELS),
        "mel": None,  # each model's own mel settings, read from its file
        "output.submission": str(WORKING / "submission.csv"),
        "output.sample_submission": str(COMPETITION / "sample_submission.csv"),
        "input.empty_input_fallback": fallback,
        "output.progress": False,
    },
)
print(f"birdinfer {birdinfer.__version__}, config {CONFIG}, {len(config.models)} model(s)")
print(f"time guard: {'on' if config.budget.enabled else 'off'}")

# %%
# Writes submission.csv (atomically) and submission_report.json to WORKING; the time guard
# keeps the run inside the competition's CPU limit and still writes every row.
result = birdinfer.run(config)
print(summary(result, config.audio.window_seconds))
result.submission.head()
