"""The per-file scorer: a recording in, its rows' scores out.

`Ensemble` loads the members (models checked against the config and probed before any audio)
and scores their inputs; the streaming engine is the one driver of files through it (decode and
front ends on feature threads, one model lane, a bounded queue between them). Everything about
running a folder (executors, journal, time guard, placeholders) is birdinfer.runner's.
"""

from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.streaming import (
    EngineOutcome,
    FileSchedule,
    StreamingEngine,
    predict_frame,
    score_file,
    score_files,
)
from birdinfer.scorer.threads import EngineThreads, available_cores

__all__ = [
    "EngineOutcome",
    "EngineThreads",
    "Ensemble",
    "FileSchedule",
    "StreamingEngine",
    "available_cores",
    "predict_frame",
    "score_file",
    "score_files",
]
