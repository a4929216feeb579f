"""The recordings of a run: audio files under the input folder, and the fallback folder used
when it holds none (Kaggle's empty test folder while a notebook is being saved)."""

from __future__ import annotations

import logging
from pathlib import Path

from birdinfer.config import Config
from birdinfer.errors import AudioError

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
    fallback = config.output.empty_input_fallback
    if not files and fallback:
        log.warning("no audio in %s; using the fallback folder %s", input_dir, fallback)
        files, ignored = list_audio_files(Path(fallback), config.audio.extensions)
        files = files[: config.output.empty_input_fallback_files]
        input_dir = Path(fallback)
    return files, ignored, input_dir
