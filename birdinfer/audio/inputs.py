"""The recordings of a run: audio files under the input folder, and the fallback folder used
when it holds none (Kaggle's empty test folder while a notebook is being saved).

Before anything is opened, a listed file that is not a regular file (a FIFO would block the run,
a device would never end) and a name that cannot give row ids are skipped with the reason.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from birdinfer.audio.decode import not_regular
from birdinfer.audio.rows import name_problems, row_stems
from birdinfer.config import Config
from birdinfer.errors import AudioError, ConfigError
from birdinfer.results import FileFailure

log = logging.getLogger(__name__)


def list_audio_files(folder: Path, extensions: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """Audio files under `folder` (recursive, sorted) and the other files that were ignored."""
    folder = Path(folder)
    if not folder.exists():
        return [], []
    if not folder.is_dir():
        raise AudioError(folder, "is not a folder")
    wanted = {e.lower() for e in extensions}
    audio, ignored = [], []
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            continue
        (audio if path.suffix.lower() in wanted else ignored).append(path)
    return audio, ignored


def find_input_files(config: Config, input_dir: Path) -> tuple[list[Path], list[Path], Path]:
    """Audio files to score, ignored non-audio files, and the folder they came from.

    An empty input folder (Kaggle while a notebook is being saved) falls back to the configured
    folder, if any, so that the run still exercises and times the whole ensemble.
    """
    check_input_dir(input_dir)
    files, ignored = list_audio_files(input_dir, config.audio.extensions)
    fallback = config.input.empty_input_fallback
    if not files and fallback:
        log.warning("no audio in %s; using the fallback folder %s", input_dir, fallback)
        files, ignored = list_audio_files(Path(fallback), config.audio.extensions)
        files = files[: config.input.empty_input_fallback_files]
        input_dir = Path(fallback)
    return files, ignored, input_dir


def check_input_dir(folder: Path) -> None:
    """The input folder must be a folder: a typo'd path would otherwise give a header-only
    submission and exit code 0. (An existing empty folder is fine: see find_input_files.)"""
    if not folder.exists():
        raise ConfigError(f"config key 'input_dir' (--input): {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"config key 'input_dir' (--input): {folder} is a file, not a folder")


def regular_files(files: list[Path]) -> tuple[list[Path], list[FileFailure]]:
    """The files that are regular files (or cannot be stat'ed: decoding reports why), and the
    FIFOs, devices and sockets, skipped with the reason without being opened."""
    kept, skipped = [], []
    for path in files:
        try:
            mode = os.stat(path).st_mode
        except OSError:  # a dangling symlink or a loop: probe names the problem
            kept.append(path)
            continue
        if stat.S_ISREG(mode):
            kept.append(path)
        else:
            kind = not_regular(mode)
            skipped.append(FileFailure(str(path), f"is {kind}, not an audio file: not opened"))
    return kept, skipped


@dataclass(frozen=True)
class RunInputs:
    """The recordings a run scores, each with the stem its row ids start with."""

    folder: Path  # the input folder, or the fallback folder it fell back to
    files: list[Path]
    stems: list[str]
    skipped: list[FileFailure]  # left out before decoding (not regular, bad names, clashing stems)
    ignored: list[Path]  # non-audio files in the folder

    @property
    def recordings(self) -> list[Path]:
        """Every audio file listed, scored or not: no output may replace one."""
        return [*self.files, *(Path(f.path) for f in self.skipped)]


def list_inputs(config: Config) -> RunInputs:
    """The run's recordings and their row-id stems, from `config.input_dir` (or its fallback)."""
    listed, ignored, folder = find_input_files(config, Path(config.input_dir))
    if not listed:
        log.warning("no audio files in %s: writing a header-only submission", folder)
    regular, not_files = regular_files(listed)
    named, misnamed = name_problems(regular, folder)
    files, stems, clashes = row_stems(named, folder, config.input.duplicate_stems)
    return RunInputs(folder, files, stems, not_files + misnamed + clashes, ignored)
