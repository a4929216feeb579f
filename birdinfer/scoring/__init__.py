"""Score a submission the way Kaggle would: its format checked first, then the competition's
metric, in numpy.

`read_table`, `validate_submission` and `validate_solution` check the files (a `Validation`
holds errors, which stop scoring, apart from warnings); `score_submission` gives a `Score` by
one of `METRICS`. On arrays and frames: `macro_roc_auc_arrays` (2024-2026),
`padded_cmap_arrays` (2023) and `score_frames` (rows matched by row id, columns by name).
"""

from birdinfer.scoring.evaluate import (
    METRICS,
    Score,
    Validation,
    read_table,
    score_submission,
    validate_solution,
    validate_submission,
)
from birdinfer.scoring.metrics import macro_roc_auc_arrays, padded_cmap_arrays, score_frames

__all__ = [
    "METRICS",
    "Score",
    "Validation",
    "macro_roc_auc_arrays",
    "padded_cmap_arrays",
    "read_table",
    "score_frames",
    "score_submission",
    "validate_solution",
    "validate_submission",
]
