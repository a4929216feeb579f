"""Probes for model files that `quantize` did not make: a file carded by `card set`, and the
bundled demo model.

The windows come from recordings (the user's `--probe-audio`, else seeded synthetic
soundscapes) through the card's own front end; the reference is the file itself as this machine
runs it with one runtime thread (one OpenVINO stream) in FP32. Such a probe says that the file
gives elsewhere what it gives here, which is what catches a runtime, a CPU or a setting that
changes its outputs.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from birdinfer.errors import ModelError
from birdinfer.models.backends import open_backend
from birdinfer.models.card import ModelCard
from birdinfer.models.files import model_files
from birdinfer.models.host import RUNTIMES, runtime_version
from birdinfer.models.probe import (
    FLOAT_TOLERANCE,
    MAX_WINDOWS,
    Probe,
    ProbeError,
    build_probe,
    probe_of,
    probe_windows,
)
from birdinfer.quantize.calibration import (
    DEMO_CALIBRATION_SEED,
    demo_soundscapes,
    sample_windows,
)

log = logging.getLogger(__name__)

# Candidates to spread the probe's windows over (a few per stored window).
CANDIDATES = 4 * MAX_WINDOWS


def self_probe(path: Path, audio: Path | None = None, tolerance: float = FLOAT_TOLERANCE) -> Probe:
    """A probe for the carded file at `path`: windows of `audio` (a recording or a folder of
    them; default: three synthetic soundscapes), the file's own outputs for them here."""
    backend = open_backend(path, 1)
    card = backend.card
    with tempfile.TemporaryDirectory(prefix="birdinfer-probe-") as tmp:
        folder = _audio_folder(audio, Path(tmp))
        windows = sample_windows(folder, card, CANDIDATES, seed=0).features
    size = sum(p.stat().st_size for p in model_files(path) if p.is_file())
    runtime = runtime_version(RUNTIMES.get(path.suffix.lower(), "onnxruntime"))
    return build_probe(
        probe_windows(windows, size),
        backend.run,
        card.outputs or (backend.output,),
        tolerance,
        f"the file itself on {runtime}, 1 thread",
    )


def kept_probe(card: ModelCard, where: str) -> Probe | None:
    """The card's probe when it still fits the card's input (card set changed only names or
    settings the model's input does not see), else None."""
    try:
        probe = probe_of(card, where)
    except ProbeError as exc:
        log.warning("%s", exc)
        return None
    if probe is None or tuple(probe.inputs.shape[1:]) != tuple(card.input_shape):
        return None
    return probe


def _audio_folder(audio: Path | None, tmp: Path) -> Path:
    if audio is None:
        folder, _ = demo_soundscapes(tmp, 3, DEMO_CALIBRATION_SEED)
        return folder
    audio = Path(audio)
    if audio.is_dir():
        return audio
    if not audio.is_file():
        raise ModelError(f"{audio}: no such recording or folder for the probe")
    (tmp / "one").mkdir()
    (tmp / "one" / audio.name).symlink_to(audio.resolve())
    return tmp / "one"
