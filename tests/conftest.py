"""Shared fixtures: seeded synthetic audio, tiny exported timm models, the real clips in shared/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from birdinfer.config import MelConfig, from_dict
from birdinfer.demo.synth import DEMO_SPECIES, write_soundscapes

SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "audio"
DEMO_CODES = [s.code for s in DEMO_SPECIES]
# A smaller mel preset keeps the tiny test models fast; the default preset has its own tests.
TEST_MEL = MelConfig(n_fft=1024, hop_length=320, n_mels=64, fmin=20, fmax=16000)


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    if not SHARED_AUDIO.is_dir():
        pytest.skip("../shared/audio is not present (a clone of the project on its own)")
    return SHARED_AUDIO


@pytest.fixture(scope="session")
def soundscape_dir(tmp_path_factory) -> Path:
    """Three seeded synthetic soundscapes: 60 s OGG, 12 s WAV (partial last window), 3 s FLAC."""
    folder = tmp_path_factory.mktemp("soundscapes")
    write_soundscapes(folder, 1, seed=11, seconds=60.0, fmt="ogg")
    write_soundscapes(folder, 1, seed=12, seconds=12.0, fmt="wav")
    write_soundscapes(folder, 1, seed=13, seconds=3.0, fmt="flac")
    return folder


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


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_xml(tiny_onnx) -> Path:
    return tiny_onnx.with_suffix(".xml")


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
