"""What the offline Kaggle notebook (submission/kaggle_notebook.py) needs beyond `birdinfer.run`:
finding the attached model files, and a small fallback folder for the run made while saving."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from birdinfer.audio.inputs import list_audio_files
from birdinfer.config import AudioConfig

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".xml", ".onnx")


def find_models(spec: str | Path) -> list[str]:
    """Model files from a file, a folder, or several of either joined by ':' (os.pathsep).

    A folder gives every OpenVINO .xml under it, and every .onnx without an .xml of the same
    name beside it (the exporter writes both; OpenVINO is the faster runtime on Kaggle's CPUs),
    sorted by path: that order is the time guard's priority order, so name files accordingly
    or list them explicitly. A folder holding quantized variants of one model (`m.xml`,
    `m.ov-int8.xml`, ...) is refused: name the files to use.
    """
    found: list[str] = []
    for part in str(spec).split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part.strip())
        if path.is_file():
            found.append(str(path))
        elif path.is_dir():
            found += _models_in(path)
        else:
            raise FileNotFoundError(
                f"{path}: no such model file or folder (is the dataset attached?)"
            )
    if not found:
        raise FileNotFoundError(f"no .onnx or .xml model file under {spec}")
    return found


def _models_in(folder: Path) -> list[str]:
    files = sorted(p for p in folder.rglob("*") if p.suffix in MODEL_SUFFIXES and p.is_file())
    xml = {p.with_suffix("") for p in files if p.suffix == ".xml"}
    chosen = [p for p in files if p.suffix == ".xml" or p.with_suffix("") not in xml]
    variants: dict[Path, list[str]] = {}
    for path in chosen:  # m.xml, m.ov-int8.xml and m.ort-int8.onnx are one model thrice
        variants.setdefault(path.parent / path.name.split(".")[0], []).append(path.name)
    doubled = {base: names for base, names in variants.items() if len(names) > 1}
    if doubled:
        shown = "; ".join(f"{', '.join(names)}" for names in doubled.values())
        raise ValueError(
            f"{folder} holds variants of the same model ({shown}): list the files to use, "
            f"joined by '{os.pathsep}'"
        )
    return [str(p) for p in chosen]


def fallback_folder(
    source: str | Path, files: int, dest: str | Path | None = None, audio: AudioConfig | None = None
) -> str | None:
    """A folder of links to the first `files` recordings under `source`, or None.

    While Kaggle saves a notebook, test_soundscapes/ is empty; running on a few unlabelled
    soundscapes instead exercises and times the whole path (the 2024 winner did this) without
    spending the save run on thousands of files. None when `source` is missing or `files` is 0.
    """
    source = Path(source)
    if files <= 0 or not source.is_dir():
        return None
    recordings, _ = list_audio_files(source, (audio or AudioConfig()).extensions)
    dest = Path(dest) if dest else Path(tempfile.gettempdir()) / "birdinfer_fallback"
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        if old.is_symlink():
            old.unlink()
    for recording in recordings[:files]:
        link = dest / recording.name
        if not link.exists():  # same name in two subfolders: the first one is enough
            link.symlink_to(recording.resolve())
    log.info(
        "fallback for an empty test folder: %d of %d files",
        min(files, len(recordings)),
        len(recordings),
    )
    return str(dest)
