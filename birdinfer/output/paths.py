"""Where a run writes, checked before any work: a path that cannot be written fails at start,
naming it, instead of after every file has been scored.

A run writes its submission, the run report beside it, the per-window table when asked, and
the journal folder beside the output with `--resume` or a file-map executor. Each of them must:
- not be one of the run's recordings (the recording would be replaced by CSV), nor an audio file
  inside an input folder (a later run would read it as a recording), nor any other input of the
  run (a model file and its weights, the sample submission, a mapping file, the config), nor
  another of the run's outputs (the second write would replace the first);
- have folders, not files, above it, and not be a folder itself (the journal: not a file);
- have a name whose temporary sibling (`write_atomic` writes `.<name>.XXXXXXXX.tmp` first)
  fits the file system's limit on a name (255 bytes);
- lie under a folder this process can create files in.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from birdinfer.config import Config
from birdinfer.errors import ConfigError, display_path
from birdinfer.output.report import report_path_for

# Bytes `write_atomic`'s temporary name adds to a name: "." + name + "." + 8 random + ".tmp".
TEMPORARY_EXTRA = 14
NAME_MAX = 255


def journal_path_for(output: Path) -> Path:
    """The journal folder beside an output: submission.csv -> submission.journal/."""
    return output.with_name(f"{output.stem}.journal")


@dataclass(frozen=True)
class Written:
    path: Path
    key: str  # the config key (or what it derives from) a user changes to move it
    folder: bool = False  # the journal is a folder of entries


def planned_outputs(config: Config, journal: bool) -> list[Written]:
    """Everything the run will write, with the key that sets each path."""
    submission = Path(config.output.submission) if config.output.submission else None
    windows = Path(config.output.windows) if config.output.windows else None
    anchor = submission or windows
    key = "output.submission" if submission else "output.windows"
    written = [Written(anchor, key)] if anchor is not None else []
    if submission is not None and windows is not None:
        written.append(Written(windows, "output.windows"))
    if anchor is not None:
        written.append(Written(report_path_for(anchor), f"{key} (its run report)"))
        if journal:
            written.append(Written(journal_path_for(anchor), f"{key} (its journal)", True))
    return written


def check_outputs(
    config: Config,
    input_folders: Iterable[Path],
    recordings: Iterable[Path],
    journal: bool,
    inputs: Mapping[Path, str] | None = None,
) -> None:
    """Every path the run will write can be written; a ConfigError naming the first that
    cannot, before anything is read or scored. `inputs` are the run's other input files, each
    with what it is ("the model file of models[0]"): no output may replace one."""
    folders = [real_path(f) for f in input_folders]
    taken = {real_path(r) for r in recordings}
    read = {real_path(path): what for path, what in (inputs or {}).items()}
    planned = planned_outputs(config, journal)
    for i, written in enumerate(planned):
        resolved = real_path(written.path)
        problem = _problem(written, folders, taken, config.audio.extensions)
        if problem is None and resolved in read:
            problem = f"is {read[resolved]}: the run would overwrite its own input"
        earlier = [w for w in planned[:i] if real_path(w.path) == resolved]
        if problem is None and earlier:
            problem = f"is also where '{earlier[0].key}' goes: one would replace the other"
        if problem is not None:
            raise ConfigError(f"config key '{written.key}': {display_path(written.path)} {problem}")


def _problem(
    written: Written, folders: list[Path], recordings: set[Path], extensions: tuple[str, ...]
) -> str | None:
    path = written.path
    resolved = real_path(path)
    if resolved in recordings:
        return "is one of the input recordings: the run would overwrite it"
    audio = {e.lower() for e in extensions}
    if path.suffix.lower() in audio and any(resolved.is_relative_to(f) for f in folders):
        return "is an audio file name inside the input folder: a later run would read it"
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        return f"cannot be created: {display_path(existing)} is a file, not a folder"
    # Before any look at the path itself: a name over the limit makes stat() fail.
    size, limit = len(os.fsencode(path.name)), _name_max(existing)
    if size + (0 if written.folder else TEMPORARY_EXTRA) > limit:
        return (
            f"has a name of {size} bytes: with the temporary name it is first written under, "
            f"more than the file system's limit of {limit}"
        )
    if written.folder and path.exists() and not path.is_dir():
        return "is a file, and the journal is a folder"
    if not written.folder and path.is_dir():
        return "is a folder: give a file name"
    return _unwritable(existing)


def real_path(path: Path | str) -> Path:
    """The absolute path with symlinks resolved; a symlink loop stays as it is (Path.resolve
    raises RuntimeError on one, and a loop among the recordings is reported when decoded)."""
    return Path(os.path.realpath(path))


def _nearest_existing(folder: Path) -> Path:
    """`folder` or its nearest ancestor that exists (the output's folders are made on write)."""
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def _unwritable(folder: Path) -> str | None:
    """Why no file can be created in `folder`, by trying: `os.access` says yes to root on a
    folder root cannot write (a read-only mount, /sys)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as exc:
        return f"cannot be written: {display_path(folder)} refuses new files ({exc.strerror})"
