"""Quantized variants of an exported FP32 model, each kept only when a held-out guard accepts it.

The whole job, as `birdinfer quantize` runs it: `QuantizeJob` -> `run_job`. Its steps:
`sample_windows` (calibration windows, a `WindowSet`), `load_heldout` (labelled or unlabelled
held-out windows), `quantize` (every variant built, guarded by `GuardSettings`, written and timed
side by side under `QuantizeSettings`: a `QuantizeResult`) and `report` (its JSON and Markdown).
`DEFAULT_VARIANTS` and `QUANTIZED` name the variants; `demo_soundscapes` with
`DEMO_CALIBRATION_SEED` and `DEMO_HELDOUT_SEED` gives the demo's calibration and held-out data.
`self_probe` and `kept_probe` check a model file's outputs on audio. Failures raise a
`QuantizeError` (a `CalibrationError` or `GuardError` when the data or the guard is at fault).
"""

from birdinfer.quantize import report
from birdinfer.quantize.accuracy_guard import GuardError, GuardSettings, load_heldout
from birdinfer.quantize.calibration import (
    DEMO_CALIBRATION_SEED,
    DEMO_HELDOUT_SEED,
    CalibrationError,
    WindowSet,
    demo_soundscapes,
    sample_windows,
)
from birdinfer.quantize.job import QuantizeJob, run_job
from birdinfer.quantize.probes import kept_probe, self_probe
from birdinfer.quantize.runner import QuantizeResult, QuantizeSettings, quantize
from birdinfer.quantize.variants import DEFAULT_VARIANTS, QUANTIZED, QuantizeError

__all__ = [
    "CalibrationError",
    "DEFAULT_VARIANTS",
    "DEMO_CALIBRATION_SEED",
    "DEMO_HELDOUT_SEED",
    "GuardError",
    "GuardSettings",
    "QUANTIZED",
    "QuantizeError",
    "QuantizeJob",
    "QuantizeResult",
    "QuantizeSettings",
    "WindowSet",
    "demo_soundscapes",
    "kept_probe",
    "load_heldout",
    "quantize",
    "report",
    "run_job",
    "sample_windows",
    "self_probe",
]
