# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kaggle,kernelspec
#   kaggle:
#     accelerator: none
#     dataSources: []
#     isGpuEnabled: false
#     isInternetEnabled: false
#     language: python
#     sourceType: notebook
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # BirdCLEF submission with birdinfer (CPU, internet off)
#
# Attach three inputs: the competition, the `birdinfer-wheels` dataset (built by
# `python scripts/build_wheelhouse.py`, for this image's Python) and a dataset of models exported
# by `birdinfer export` (`.onnx` and/or OpenVINO `.xml` files that carry their classes and mel
# settings). The notebook finds each of them under `/kaggle/input`, in the old layout
# (`/kaggle/input/<slug>`) and the newer one (`competitions/<slug>`, `datasets/<owner>/<slug>`).
# The first cell holds what you may change. `kaggle_notebook.ipynb` is generated from
# `kaggle_notebook.py` by jupytext (`jupytext --update --to ipynb kaggle_notebook.py`).

# %%
import os
import time
from pathlib import Path

STARTED = time.monotonic()  # the time budget counts from here: the install and loading count too
env = os.environ.get  # each setting may also come from the environment (the tests use it)

# A bundled edition config (birdclef2023 .. birdclef2026: metric, CPU budget, time guard), or
# the path of your own YAML, which may start with `extends: birdclef2026` and change a few keys.
EDITION = env("BIRDINFER_CONFIG", "birdclef2026")
# The CPU budget in minutes; None: the edition's (90 for 2025 and 2026).
BUDGET_MINUTES = float(env("BIRDINFER_BUDGET_MINUTES")) if env("BIRDINFER_BUDGET_MINUTES") else None
# A model file, a folder, or several joined by ":" (their order is the time guard's priority
# order); None: every .onnx/.xml under INPUT outside the competition data. Where FP32 and INT8
# variants of a model sit side by side, the one that passes verification on this CPU runs.
MODELS = env("BIRDINFER_MODELS")

INPUT = Path(env("BIRDINFER_INPUT", "/kaggle/input"))  # searched for what is not set below
WHEELS = env("BIRDINFER_WHEELS")  # None: the folder under INPUT holding birdinfer-*.whl
COMPETITION = env("BIRDINFER_COMPETITION")  # None: the folder with sample_submission.csv
WORKING = Path(env("BIRDINFER_WORKING", "/kaggle/working"))
# While Kaggle saves the notebook, test_soundscapes/ is empty: score this many files of the
# folder the edition names instead (train_soundscapes/ from 2025), to check and time the path.
FALLBACK_FILES = int(env("BIRDINFER_FALLBACK_FILES", "20"))

# %%
# Offline install from the attached wheels, only when birdinfer is not importable yet. The
# wheelhouse's Python (its wheelhouse.json) is compared with this one before pip runs.
import importlib
import importlib.util
import json
import subprocess
import sys


def find_wheels(root: Path, given: str | None) -> Path:
    if given and any(Path(given).glob("birdinfer-*.whl")):
        return Path(given)
    for depth in range(1, 6):  # /kaggle/input/<slug>/ .. /kaggle/input/datasets/<owner>/<slug>/
        found = sorted(root.glob("*/" * depth + "birdinfer-*.whl"))
        if found and not given:
            return found[-1].parent
    mounted = "\n  ".join(str(p) for p in sorted(root.glob("*/*"))[:40]) or "(nothing)"
    raise FileNotFoundError(
        f"no birdinfer-*.whl in {given or f'any folder under {root}'}: attach the wheelhouse "
        f"dataset{' or fix WHEELS' if given else ''}.\nmounted under {root}:\n  {mounted}"
    )


if importlib.util.find_spec("birdinfer") is None:
    wheels = find_wheels(INPUT, WHEELS)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = wheels / "wheelhouse.json"
    built_for = json.loads(target.read_text())["python"] if target.is_file() else [here]
    if here not in built_for:
        raise RuntimeError(
            f"{wheels} holds wheels for CPython {', '.join(built_for)}, and this is Python "
            f"{here}: rebuild it with `python scripts/build_wheelhouse.py --python-version "
            f"{here}` and upload it again"
        )
    print(f"installing birdinfer from {wheels} (Python {here})")
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels)]
    subprocess.run([*pip, "birdinfer"], check=True)
    importlib.invalidate_caches()

# %%
import logging

import birdinfer
from birdinfer.kaggle import NotebookSettings, notebook_config

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
settings = NotebookSettings(
    edition=EDITION,
    budget_minutes=BUDGET_MINUTES,
    models=MODELS,
    input_root=INPUT,
    competition=Path(COMPETITION) if COMPETITION else None,
    working=WORKING,
    fallback_files=FALLBACK_FILES,
)
config, notes = notebook_config(settings)
print(f"birdinfer {birdinfer.__version__}, {EDITION}, Python {sys.version.split()[0]}")
print("\n".join(notes))
guard = f"on, {config.budget_minutes:g} min from the first cell" if config.budget.enabled else "off"
print(f"time guard: {guard}")

# %%
# Writes submission.csv (atomically) and submission_report.json to WORKING; the time guard
# keeps the run inside the budget and still writes every row (placeholders, with a warning,
# for what the deadline leaves).
from birdinfer.kaggle import scored_from
from birdinfer.output import summary

result = birdinfer.run(config, started=STARTED)
print(scored_from(result))
print(summary(result, config.audio.window_seconds))
print(f"done {time.monotonic() - STARTED:.1f} s after the first cell")
result.submission.head()
