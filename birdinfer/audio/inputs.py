"""The recordings of a run: audio files under the input folder, and the fallback folder used
when it holds none (Kaggle's empty test folder while a notebook is being saved)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from birdinfer.audio.rows import row_stems
from birdinfer.config import Config
from birdinfer.errors import AudioError
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
    files, ignored = list_audio_files(input_dir, config.audio.extensions)
    fallback = config.input.empty_input_fallback
    if not files and fallback:
        log.warning("no audio in %s; using the fallback folder %s", input_dir, fallback)
        files, ignored = list_audio_files(Path(fallback), config.audio.extensions)
        files = files[: config.input.empty_input_fallback_files]
        input_dir = Path(fallback)
    return files, ignored, input_dir


@dataclass(frozen=True)
class RunInputs:
    """The recordings a run scores, each with the stem its row ids start with."""

    folder: Path  # the input folder, or the fallback folder it fell back to
    files: list[Path]
    stems: list[str]
    skipped: list[FileFailure]  # files left out before decoding (clashing stems)
    ignored: list[Path]  # non-audio files in the folder


def list_inputs(config: Config) -> RunInputs:
    """The run's recordings and their row-id stems, from `config.input_dir` (or its fallback)."""
    listed, ignored, folder = find_input_files(config, Path(config.input_dir))
    if not listed:
        log.warning("no audio files in %s: writing a header-only submission", folder)
    files, stems, skipped = row_stems(listed, folder, config.input.duplicate_stems)
    return RunInputs(folder, files, stems, skipped, ignored)
