"""Windows and row ids: how many 5 s rows a recording gives, and what each is called.

BirdCLEF row ids are `<file stem>_<end second>`: the window 00:15-00:20 of `soundscape_1.ogg`
is `soundscape_1_20`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

from birdinfer.errors import display_path
from birdinfer.results import FileFailure

# Characters a CSV does not carry as they are: pandas quotes neither a carriage return nor a
# line separator, so a row id holding one reads back as two rows. These are Unicode's control
# characters (category Cc) and its line and paragraph separators.
BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def window_end_label(index: int, window_seconds: float) -> str:
    """End second of window `index` as it appears in a row id: 5, 10, ... (or 2.5, 5, ...)."""
    end = (index + 1) * window_seconds
    return str(int(round(end))) if abs(end - round(end)) < 1e-9 else f"{end:g}"


def row_ids(stem: str, n_windows: int, window_seconds: float) -> list[str]:
    """BirdCLEF row ids: `<file stem>_<end second>` for each window."""
    return [f"{stem}_{window_end_label(i, window_seconds)}" for i in range(n_windows)]


def count_windows(
    frames: int, sample_rate: int, window_seconds: float, last_window: str = "pad_end"
) -> int:
    """Windows for a recording: a partial final window counts (audio.last_window "drop": it
    does not); a non-empty file gives at least 1."""
    if frames <= 0:
        return 0
    windows = frames / (sample_rate * window_seconds)
    if last_window == "drop":
        return max(1, math.floor(windows + 1e-9))
    return max(1, math.ceil(windows - 1e-9))


def text_problem(text: str) -> str | None:
    """Why `text` cannot start a row id, or None: a row id must be UTF-8 text that reads back
    from a CSV exactly."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a name's bytes that were not UTF-8, kept as lone surrogates
        return "is not valid UTF-8"
    found = BREAKING.search(text)
    if found is not None:
        shown = found.group().encode("unicode_escape").decode()
        return f"holds the control character {shown} (at {found.start()})"
    return None


def name_problems(files: list[Path], folder: Path) -> tuple[list[Path], list[FileFailure]]:
    """Files whose names can give row ids, and the others skipped with the reason.

    The path below the input folder is checked, not only the stem: it is also written to the
    per-window table and the run report."""
    kept, failures = [], []
    for path in files:
        problem = text_problem(_below(path, folder))
        if problem is None:
            kept.append(path)
            continue
        failures.append(
            FileFailure(
                str(path),
                f"its name {display_path(_below(path, folder))} {problem}: its row ids would "
                "not read back from a CSV as written; rename it",
            )
        )
    return kept, failures


def _below(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


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
