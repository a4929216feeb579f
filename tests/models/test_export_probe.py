"""The export's parity probe and what the export command is told: recording-like input through
the card's own front end (or the user's audio), a failing probe that says where, user modules
imported as Python imports them, and a preset named on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from birdinfer.config import ImageConfig, from_dict

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
from birdinfer.models.build import load_factory  # noqa: E402
from birdinfer.models.export import ExportError, _prepare, export, make_card  # noqa: E402
from birdinfer.models.parity_probe import probe_audio, probe_features, worst_difference  # noqa: E402

pytestmark = [pytest.mark.needs_torch, pytest.mark.slow]
CLASSES = list("abcd")


def _minmax_card():
    mel = from_dict({"mel": {"preset": "birdclef2026_2nd"}}).mel
    return make_card("m", CLASSES, mel, 5.0, image=ImageConfig(channels=3))


class ExpectsMinMaxInput(torch.nn.Module):
    """A model that reads its input as a min-max map in [0, 1] (its log): white noise, as the
    probe fed before, gives NaN and the export was refused."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, len(CLASSES))

    def forward(self, x):
        return self.fc(torch.log(x + 1e-3).mean(dim=(2, 3)))


def test_a_min_max_front_end_is_probed_with_its_own_input(tmp_path):
    card = _minmax_card()
    probe = probe_features(card, 2)
    assert probe.shape == (2, *card.input_shape)
    assert probe.min() >= 0 and probe.max() <= 1 + 1e-6  # the min-max map, not noise
    result = export(ExpectsMinMaxInput().eval(), card, tmp_path / "m.onnx", openvino=False)
    assert result.onnx_max_abs_diff <= 1e-4


def test_the_probe_is_audio_like_not_white_noise():
    audio = probe_audio(160000, 32000, 2)
    assert audio.shape == (2, 160000) and 0.3 < np.abs(audio).max() <= 0.5 + 1e-6
    assert not np.allclose(audio[0], audio[1])
    spectrum = np.abs(np.fft.rfft(audio[0])) ** 2
    # Coloured: far more power below 4 kHz than in the top quarter (white noise: about equal).
    low, high = spectrum[: len(spectrum) // 4].sum(), spectrum[3 * len(spectrum) // 4 :].sum()
    assert low > 10 * high


def test_probe_audio_from_the_users_file(tmp_path):
    rate = 32000
    audio = (0.3 * np.sin(np.arange(7 * rate) * 0.05)).astype(np.float32)
    sf.write(tmp_path / "probe.wav", audio, rate, subtype="FLOAT")
    card = _minmax_card()
    prepared = _prepare(ExpectsMinMaxInput().eval(), card, probe_audio=tmp_path / "probe.wav")
    from birdinfer.frontend import LogMel

    first = np.zeros(5 * rate, np.float32)
    first[:] = audio[: 5 * rate]
    expected = LogMel(card.mel, card.image)(first[None])
    # Stored in the card as the file's probe: as 8-bit levels between each window's min and max.
    from birdinfer.models.probe import decode_inputs, encode_inputs

    np.testing.assert_allclose(
        prepared.inputs[0][0], decode_inputs(encode_inputs(expected))[0], atol=1e-6
    )


def test_a_failing_probe_names_the_output_and_where(tmp_path):
    with pytest.raises(ExportError, match=r"output 'logits' at index \(\d+, \d+\): torch "):
        export(ExpectsMinMaxInput().eval(), _minmax_card(), tmp_path / "m.onnx",
               openvino=False, tolerance=-1.0)  # fmt: skip
    worst, where = worst_difference(
        [np.zeros((2, 3)), np.zeros(4)],
        [np.array([[0, 0, 0], [0, 0.5, 0]]), np.zeros(4)],
        ["a", "b"],
    )
    assert worst == 0.5 and where == "output 'a' at index (1, 1): torch 0, exported 0.5"


def test_a_factory_file_inside_a_package_is_imported_as_part_of_it(tmp_path):
    """The 2026 2nd place's birdclef/model.py imports `.config` and reads a module-level tuple
    (`_VIT_PREFIXES`) from a function: it must run as `birdclef.model`, not as a loose file."""
    package = tmp_path / "solution_pkg_x"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "config.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass Config:\n    backbone: str = 'cnn'\n"
    )
    (package / "model.py").write_text(
        "from __future__ import annotations\n"
        "import torch\n"
        "from .config import Config\n\n"
        "_PREFIXES = ('vit_', 'deit_')\n\n"
        "def _is_vit(name: str) -> bool:\n"
        "    return any(name.startswith(p) for p in _PREFIXES)\n\n"
        "def build(num_classes, in_chans):\n"
        "    assert not _is_vit(Config().backbone)\n"
        "    return torch.nn.Conv2d(in_chans, num_classes, 1)\n"
    )
    (package / "broken.py").write_text("from .config import Missing\n")
    factory = load_factory(f"{package / 'model.py'}:build")
    assert factory.__module__ == "solution_pkg_x.model"
    assert factory(3, 1).out_channels == 3
    with pytest.raises(ExportError, match="importing solution_pkg_x.broken failed: ImportError"):
        load_factory(f"{package / 'broken.py'}:build")


def test_export_with_a_preset_over_an_edition_config_records_it(tmp_path):
    from birdinfer.cli import main
    from birdinfer.models import open_backend

    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    out = tmp_path / "m.onnx"
    args = ["export", "--arch", "test_efficientnet", "--classes", str(classes), "--out", str(out)]
    args += ["--config", "birdclef2026", "--preset", "birdclef2026_2nd", "--no-openvino", "-q"]
    assert main(args) == 0
    card = open_backend(out).card
    assert (card.mel.n_fft, card.mel.hop_length, card.mel.n_mels) == (4096, 1252, 224)
    assert [s.step for s in card.mel.normalization] == ["minmax"]
    assert card.extra["mel_preset"] == "birdclef2026_2nd"
    assert json.loads(json.dumps(card.extra))["mel_preset"] == "birdclef2026_2nd"
    assert Path(out).is_file()
