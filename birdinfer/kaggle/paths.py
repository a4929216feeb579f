"""What the offline Kaggle notebook (submission/kaggle_notebook.py) needs beyond `birdinfer.run`:
finding the attached model files, and a small fallback folder for the run made while saving."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from birdinfer.audio import list_audio_files
from birdinfer.config import AudioConfig
from birdinfer.errors import ModelError, first_line
from birdinfer.models.files import read_card
from birdinfer.models.probe import verify_file

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".xml", ".onnx")


def find_models(spec: str | Path) -> list[str]:
    """Model files from a file, a folder, or several of either joined by ':' (os.pathsep).

    A folder gives every OpenVINO .xml under it, and every .onnx without an .xml of the same
    name beside it (the exporter writes both; OpenVINO is the faster runtime on Kaggle's CPUs),
    sorted by path: that order is the time guard's priority order, so name files accordingly
    or list them explicitly. Where a folder holds quantized variants of one model beside it
    (`m.xml`, `m.ov-int8.xml`, ...), one of them is chosen (see `choose_variant`) and logged.
    """
    found: list[str] = []
    for part in str(spec).split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part.strip())
        if path.is_file():
            found.append(str(path))
        elif path.is_dir():
            found += [str(p) for p in _one_per_model(_model_files(path.rglob("*")))]
        else:
            raise FileNotFoundError(
                f"{path}: no such model file or folder (is the dataset attached?)"
            )
    if not found:
        raise FileNotFoundError(f"no .onnx or .xml model file under {spec}")
    return found


def models_in_folders(folders: Iterable[Path]) -> list[str]:
    """The model files directly in each of `folders` (as `find_models` picks them), in path
    order: for folders found by searching, where a folder and its subfolder are both found."""
    files = []
    for folder in folders:
        files += _model_files(folder.iterdir())
    return [str(p) for p in _one_per_model(files)]


def _model_files(paths: Iterable[Path]) -> list[Path]:
    """The model files among `paths`: every .xml, and each .onnx without an .xml beside it."""
    files = sorted(p for p in paths if p.suffix in MODEL_SUFFIXES and p.is_file())
    xml = {p.with_suffix("") for p in files if p.suffix == ".xml"}
    return [p for p in files if p.suffix == ".xml" or p.with_suffix("") not in xml]


def _one_per_model(files: list[Path]) -> list[Path]:
    """One file per model: m.xml, m.ov-int8.xml and m.ort-int8.onnx are one model thrice."""
    variants: dict[Path, list[Path]] = {}
    for path in files:
        variants.setdefault(path.parent / path.name.split(".")[0], []).append(path)
    chosen = []
    for group in variants.values():
        if len(group) == 1:
            chosen.append(group[0])
        else:
            path, note = choose_variant(group)
            log.warning("%s", note)
            chosen.append(path)
    return sorted(chosen)


def choose_variant(group: list[Path]) -> tuple[Path, str]:
    """The variant of one model to run, and a sentence saying which and why.

    Quantized variants (a name with a tag: `m.ov-int8.xml`) come first, OpenVINO before ONNX,
    then the FP32 parent; the first that `variant_verdict` accepts on this CPU is the one.
    """
    order = sorted(group, key=lambda p: (p.name.count(".") < 2, p.suffix != ".xml", p.name))
    refused = []
    for path in order:
        ok, why = variant_verdict(path)
        if ok:
            others = ", ".join(p.name for p in order if p != path)
            passed_over = f"; passed over: {'; '.join(refused)}" if refused else ""
            return path, (
                f"{path.parent}: chose {path.name} ({why}) of {path.name}, {others}{passed_over}"
            )
        refused.append(f"{path.name}: {why}")
    raise ModelError(
        f"{group[0].parent}: no variant of {group[0].name.split('.')[0]} can run here "
        f"({'; '.join(refused)}): list the file to use"
    )


def variant_verdict(path: Path) -> tuple[bool, str]:
    """Whether this model file may run here, and why.

    First `birdinfer verify` (the card's probe run on this CPU, `verify_file`): a file whose
    probe fails does not run. With no probe in its card, the card's verdict decides: a quantized
    variant runs when the quantization guard accepted it (`accepted: true`); the FP32 parent
    always can. A variant the guard rejected never runs (the pipeline would refuse it).
    """
    verified, why = verify_here(path)
    if verified is False:
        return False, why
    try:
        extra = read_card(path).extra
    except Exception as exc:  # a runtime's own error for a file it cannot read
        return False, f"its card cannot be read ({first_line(exc)})"
    accepted = extra.get("accepted")
    if accepted is False:
        return False, "its card says the quantization guard rejected it"
    if verified:
        return True, why
    if accepted is True:
        return True, "its card says the quantization guard accepted it"
    if extra.get("variant") or path.name.count(".") >= 2:
        return False, "a quantized variant whose card holds no verdict"
    return True, "the FP32 model"


def verify_here(path: Path) -> tuple[bool | None, str]:
    """The probe of `path` run on this CPU: (True, why) passed, (False, why) failed or cannot
    load, (None, "") no probe in its card (a file made before probes existed)."""
    try:
        check = verify_file(path)
    except Exception as exc:  # a file that cannot be loaded does not run
        return False, f"it cannot be loaded ({first_line(exc)})"
    if check.status == "absent":
        return None, ""
    if check.passed:
        return True, f"it passed verification on this CPU: {check.message}"
    return False, f"it failed verification on this CPU: {check.message}"


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
