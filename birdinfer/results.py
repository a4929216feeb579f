"""What scoring a recording gives: its rows and scores, or the reason it was skipped.

These plain records pass between the stages (engine, journal, executors, placeholders, writers),
so they live beside `config` and `errors` at the bottom of the package, importing nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FileIdentity:
    """What was decoded, from fstat of the handle the decoder read: a file replaced on disk
    while it was scored does not match it, so its stored scores are never reused."""

    size: int
    mtime_ns: int


@dataclass
class FileResult:
    path: Path
    row_ids: list[str]
    scores: np.ndarray  # (windows, columns): probabilities in submission column order
    warnings: list[str] = field(default_factory=list)
    # Each member's own probabilities (the members that scored this file), for rank blending.
    member_scores: dict[int, np.ndarray] = field(default_factory=dict)
    identity: FileIdentity | None = None  # None: not decoded here (placeholder rows, journal)
    audio_seconds: float = 0.0  # seconds decoded (what the rows follow); 0 when not decoded
    # Per-row embeddings (rows, dims) by per-window table column (models.embedding).
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    # Why these rows are placeholders, not scores (the deadline, a file that could not be
    # scored); None for a scored file.
    placeholder: str | None = None


@dataclass(frozen=True)
class FileFailure:
    path: str
    reason: str


@dataclass
class RunResult:
    submission: pd.DataFrame
    output_path: Path | None  # None when output.submission is null (per-window table only)
    report_path: Path
    files: list[FileResult]
    failures: list[FileFailure]
    ignored: list[Path]
    stage_seconds: dict[str, float]
    wall_seconds: float
    windows_path: Path | None = None  # the per-window table, when output.windows is set
    resumed: int = 0  # files whose scores came from the journal (--resume)

    @property
    def windows(self) -> int:
        return len(self.submission)

    @property
    def placeholders(self) -> list[FileResult]:
        """The files whose rows are placeholders, not scores."""
        return [r for r in self.files if r.placeholder]
