"""Windows and row ids: how many 5 s rows a recording gives, and what each is called.

BirdCLEF row ids are `<file stem>_<end second>`: the window 00:15-00:20 of `soundscape_1.ogg`
is `soundscape_1_20`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from birdinfer.results import FileFailure


def window_end_label(index: int, window_seconds: float) -> str:
    """End second of window `index` as it appears in a row id: 5, 10, ... (or 2.5, 5, ...)."""
    end = (index + 1) * window_seconds
    return str(int(round(end))) if abs(end - round(end)) < 1e-9 else f"{end:g}"


def row_ids(stem: str, n_windows: int, window_seconds: float) -> list[str]:
    """BirdCLEF row ids: `<file stem>_<end second>` for each window."""
    return [f"{stem}_{window_end_label(i, window_seconds)}" for i in range(n_windows)]


def count_windows(frames: int, sample_rate: int, window_seconds: float) -> int:
    """Windows for a recording: a partial final window counts; a non-empty file gives at least 1."""
    if frames <= 0:
        return 0
    return max(1, math.ceil(frames / (sample_rate * window_seconds) - 1e-9))


def row_stems(
    files: list[Path], input_dir: Path, mode: str
) -> tuple[list[Path], list[str], list[FileFailure]]:
    """Files to score, the stem each one's row ids start with, and the files skipped for it.

    Row ids are `<stem>_<end second>`, so two recordings with one stem in different folders
    would share row ids. "skip" reports and skips every such file; "path" uses each file's path
    relative to the input folder (without the suffix, `/`-separated) as its stem.
    """
    if mode == "path":
        stems = [path.relative_to(input_dir).with_suffix("").as_posix() for path in files]
        return files, stems, []
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_stem[path.stem].append(path)
    kept, failures = [], []
    for path in files:
        clash = by_stem[path.stem]
        if len(clash) == 1:
            kept.append(path)
            continue
        others = ", ".join(str(p) for p in clash if p != path)
        failures.append(
            FileFailure(
                str(path),
                f"its stem '{path.stem}' is also the stem of {others}: their row ids would "
                "collide; rename one, or set input.duplicate_stems: path",
            )
        )
    return kept, [path.stem for path in kept], failures
