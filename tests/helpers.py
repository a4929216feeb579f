"""What tests share besides fixtures: configs, tones, and the tiny models (committed and timm)."""

from __future__ import annotations

import io
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from birdinfer.config import MelConfig, from_dict
from birdinfer.models.card import ModelCard
from tests.make_tiny_model import DEMO_CODES as _CODES
from tests.make_tiny_model import TEST_MEL, TINY_MODEL, tiny_card, write_tiny_model

__all__ = ["DEMO_CODES", "REPO", "SHARED_AUDIO", "TEST_MEL", "TINY_MODEL", "tiny_card"]

REPO = Path(__file__).resolve().parents[1]
SHARED_AUDIO = REPO.parent / "shared" / "audio"
DEMO_CODES = list(_CODES)


def make_config(input_dir: Path, model: Path, submission: Path, **sections):
    """A Config for tests: the test mel preset, no progress bar, no demo."""
    data = {
        "input_dir": str(input_dir),
        "models": [str(model)],
        "output": {"submission": str(submission), "progress": False, **sections.pop("output", {})},
    }
    data.update(sections)
    return from_dict(data)


def write_tone(
    path: Path,
    seconds: float,
    sample_rate: int = 32000,
    channels: int = 1,
    freq: float = 1000.0,
    subtype: str | None = None,
) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    mono = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return mono


def naive_sliding_rows(frames: np.ndarray, row: float, window: float, pooling: str) -> np.ndarray:
    """Rows from sliding windows, the long way: every frame placed at its centre's time in the
    file, frames at one time averaged over the windows, each row pooling the times within it."""
    n, count, _ = frames.shape
    at_time: dict[float, list[np.ndarray]] = {}
    for j in range(n):
        start = j * row + (row - window) / 2  # window j is centred on row j
        for i in range(count):
            centre = round(start + (i + 0.5) * window / count, 6)
            at_time.setdefault(centre, []).append(frames[j, i])
    rows = []
    for k in range(n):
        inside = [
            np.mean(values, axis=0)
            for t, values in at_time.items()
            if k * row - 1e-6 <= t <= (k + 1) * row + 1e-6
        ]
        rows.append(np.max(inside, axis=0) if pooling == "max" else np.mean(inside, axis=0))
    return np.array(rows)


def scores_of(result) -> np.ndarray:
    """A run's submission scores, without the row ids."""
    return result.submission.iloc[:, 1:].to_numpy()


FORMATS = {
    "ogg": ("OGG", "VORBIS"),
    "flac": ("FLAC", "PCM_16"),
    "wav": ("WAV", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


def corrupted_audio(fmt: str, where: str) -> bytes:
    """12 s of a noisy tone as `fmt` (a key of FORMATS), with 16 seeded random bytes written
    over its "header" or its "middle": the same bytes every run."""
    rng = np.random.default_rng(6)
    t = np.arange(12 * 32000) / 32000
    signal_ = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.05 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    major, subtype = FORMATS[fmt]
    sf.write(buffer, signal_.astype(np.float32), 32000, format=major, subtype=subtype)
    data = bytearray(buffer.getvalue())
    start = 0 if where == "header" else len(data) // 2
    for offset in rng.integers(0, 64, 16):
        data[start + int(offset)] = int(rng.integers(0, 256))
    return bytes(data)


def with_openvino(onnx_path: Path) -> Path:
    """Convert an ONNX model to an OpenVINO IR beside it (.xml and .bin); returns the .onnx path."""
    from birdinfer.models.backends import open_backend
    from birdinfer.models.export import convert_openvino

    convert_openvino(onnx_path, onnx_path.with_suffix(".xml"), open_backend(onnx_path).card)
    return onnx_path


def copy_tiny_model(folder: Path) -> Path:
    """The committed tiny model copied into `folder`, with its OpenVINO IR made beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    return with_openvino(Path(shutil.copy(TINY_MODEL, folder / TINY_MODEL.name)))


def tiny_model(
    folder: Path, seed: int = 0, card: ModelCard | None = None, openvino: bool = True
) -> Path:
    """Another tiny model (no torch): other seeded weights, or a card of its own."""
    path = write_tiny_model(folder / f"tiny_model_seed{seed}.onnx", card or tiny_card(), seed)
    return with_openvino(path) if openvino else path


class SpyBackend:
    """Wraps a backend: records batch sizes, optionally slows each call down."""

    def __init__(self, inner, delay: float = 0.0):
        self.inner, self.delay = inner, delay
        self.path, self.card, self.threads = inner.path, inner.card, inner.threads
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, batch):
        with self._lock:
            self.batches.append(len(batch))
        time.sleep(self.delay)
        return self.inner(batch)


def spied_ensemble(config, delays=(0.0,)):
    """An Ensemble whose members' backends are SpyBackends with the given delays."""
    from birdinfer.scorer import Ensemble

    ensemble = Ensemble(config)
    for member, delay in zip(ensemble.members, delays, strict=False):
        member.backend = SpyBackend(member.backend, delay)
    return ensemble


# --- timm models, for the tests of export and quantization (needs_torch) --------------------------


def loud_model(arch: str, num_classes: int, seed: int = 0):
    """A fresh timm model whose logits spread over several units, so parity checks mean something
    (a freshly initialised net outputs values near zero, where any exporter looks exact)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from birdinfer.models.export import build_model

    torch.manual_seed(seed)
    model = build_model(arch, num_classes=num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        model.get_classifier().weight.mul_(20.0)
    return model.eval()


def export_tiny_model(
    folder: Path,
    arch: str = "test_efficientnet",
    mel: MelConfig = TEST_MEL,
    classes=tuple(DEMO_CODES),
    seed: int = 0,
) -> Path:
    """Export a tiny timm model (ONNX and OpenVINO IR side by side); returns the .onnx path."""
    from birdinfer.models.export import export, make_card

    model = loud_model(arch, len(classes), seed)
    card = make_card(arch, list(classes), mel, 5.0)
    return export(model, card, folder / f"{arch}.onnx").onnx_path
