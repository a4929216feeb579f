"""Bring your model, end to end: the team's own modules, exported, scored by `birdinfer.run`.

Each model from tests/models/byom_zoo.py is exported (through the command line or the Python
API), run over seeded synthetic soundscapes, and its per-row scores are compared with the torch
module run on the same decoded windows and the same log-mel features.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import birdinfer
from birdinfer.audio import WindowReader, row_ids
from birdinfer.cli import main
from birdinfer.config import AudioConfig, from_dict
from birdinfer.demo import write_soundscapes
from birdinfer.errors import ModelError
from birdinfer.frontend import LogMel
from tests.scorer.byom_helpers import CODES, MEL, TOLERANCE, ZOO, build, max_diff, zoo

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
from birdinfer.models.backends import open_backend  # noqa: E402
from birdinfer.models.card import CARD_KEY, ModelCard  # noqa: E402
from birdinfer.models.checkpoint import load_checkpoint  # noqa: E402
from birdinfer.models.export import build_model  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["synthetic", "real"])
def audio(request, tmp_path_factory) -> Path:
    """Two seeded 12 s soundscapes (three rows each, the last one partial), or real field
    recordings from ../shared/audio (a 60 s one, and one at 44.1 kHz that is resampled)."""
    folder = tmp_path_factory.mktemp(f"byom_audio_{request.param}")
    if request.param == "synthetic":
        write_soundscapes(folder, 2, seed=31, seconds=12.0, fmt="ogg")
        return folder
    shared = request.getfixturevalue("shared_audio")  # skips when ../shared/audio is absent
    for name in ("1min.wav", "great_plains_toad.wav"):
        shutil.copy(shared / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def classes(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("byom_classes") / "classes.txt"
    path.write_text("\n".join(CODES) + "\n")
    return path


def cli_export(out: Path, classes: Path, *flags: str, window_seconds: float = 5.0) -> Path:
    code = main(
        [
            "export",
            *flags,
            "--classes",
            str(classes),
            "--out",
            str(out),
            "--set",
            "mel.n_fft=1024",
            "--set",
            "mel.hop_length=320",
            "--set",
            "mel.n_mels=64",
            "--set",
            f"audio.window_seconds={window_seconds}",
            "-q",
        ]
    )
    assert code == 0
    return out


def scored(folder: Path, model: Path, tmp_path: Path, member=None, **sections) -> pd.DataFrame:
    """birdinfer.run's per-row scores for one member, indexed by row id."""
    config = from_dict(
        {
            "input_dir": str(folder),
            "models": [{"path": str(model), **(member or {})}],
            "output": {"submission": str(tmp_path / "submission.csv"), "progress": False},
            **sections,
        }
    )
    result = birdinfer.run(config)
    assert not result.failures
    return result.submission.set_index("row_id")


def features(audio: Path, audio_config: AudioConfig | None = None):
    """Row ids and log-mel features of every window, from birdinfer's own decode and front end."""
    audio_config = audio_config or AudioConfig()
    frontend = LogMel(MEL)
    parts, ids = [], []
    for path in sorted(p for p in audio.iterdir() if p.suffix in (".ogg", ".wav")):
        reader = WindowReader(path, audio_config)
        parts.append(frontend(np.concatenate(list(reader))))
        ids += row_ids(path.stem, reader.n_windows, audio_config.window_seconds)
    return ids, torch.from_numpy(np.concatenate(parts))


def torch_rows(module, audio: Path, score, audio_config: AudioConfig | None = None) -> pd.DataFrame:
    """`score(module, features)` for every window: the torch side of each parity check."""
    ids, x = features(audio, audio_config)
    with torch.no_grad():
        return pd.DataFrame(score(module, x).numpy(), index=ids, columns=CODES)


def sigmoid(x):
    return torch.sigmoid(x)


# --- a GeM classifier, its weights under `backbone.` -------------------------------------------


@pytest.fixture(scope="module")
def gem(tmp_path_factory, classes, audio):
    folder = tmp_path_factory.mktemp("gem")
    module = build("gem_classifier")
    zoo("spread")(module, seed=1, heads=(module.head,), inputs=features(audio)[1:])
    checkpoint = folder / "fold0.ckpt"
    torch.save({"state_dict": module.state_dict(), "epoch": 7}, checkpoint)
    assert any(k.startswith("backbone.") for k in module.state_dict())
    flags = ["--factory", f"{ZOO}:gem_classifier", "--checkpoint", str(checkpoint)]
    return module, cli_export(folder / "gem.onnx", classes, *flags)


@pytest.mark.parametrize("suffix", [".onnx", ".xml"])
def test_gem_classifier_from_its_factory_matches_torch(gem, audio, tmp_path, suffix):
    module, path = gem
    ours = scored(audio, path.with_suffix(suffix), tmp_path)
    reference = torch_rows(module, audio, lambda m, x: sigmoid(m(x)))
    assert max_diff(ours, reference, f"GeM classifier {suffix}") <= TOLERANCE


def test_timm_checkpoint_under_backbone_loads_with_strip_prefix(audio, classes, tmp_path):
    wrapper = build("timm_under_backbone")
    zoo("spread")(wrapper.backbone, 2, (wrapper.backbone.classifier,), features(audio)[1:])
    checkpoint = tmp_path / "wrapped.pt"
    torch.save({"model_state_dict": wrapper.state_dict()}, checkpoint)
    flags = ["--arch", "test_efficientnet", "--checkpoint", str(checkpoint)]
    with pytest.raises(ModelError, match="try --strip-prefix backbone."):
        load_checkpoint(build_model("test_efficientnet", len(CODES)), checkpoint)
    path = cli_export(tmp_path / "m.onnx", classes, *flags, "--strip-prefix", "backbone.")
    reference = torch_rows(wrapper.backbone, audio, lambda m, x: sigmoid(m(x)))
    assert max_diff(scored(audio, path, tmp_path), reference, "timm under backbone.") <= TOLERANCE


# --- an SED model returning a dict ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sed(tmp_path_factory, audio):
    module = build("sed")
    zoo("spread")(module, seed=3, heads=(module.att, module.cla), inputs=features(audio)[1:])
    card = birdinfer.make_card(
        "sed_test_efficientnet",
        CODES,
        MEL,
        5.0,
        outputs=["clipwise:probabilities", "framewise:probabilities", "logit"],
    )
    result = birdinfer.export(module, card, tmp_path_factory.mktemp("sed") / "sed.onnx")
    return module, result


def test_sed_card_describes_each_output(sed):
    _, result = sed
    outputs = {o.name: (o.holds, o.layout) for o in result.card.outputs}
    assert outputs == {
        "clipwise": ("probabilities", "clipwise"),
        "framewise": ("probabilities", "framewise"),
        "logit": ("logits", "clipwise"),
    }
    assert result.onnx_max_abs_diff <= TOLERANCE and result.openvino_max_abs_diff <= TOLERANCE
    backend = open_backend(result.openvino_path)
    assert backend.card.outputs == result.card.outputs


SED_MEMBERS = {
    # member settings -> the torch reference for a row
    "clipwise (card: probabilities, no activation)": ({}, lambda m, x: m(x)["clipwise"]),
    "framewise, max over the row's frames": (
        {"output": "framewise"},
        lambda m, x: m(x)["framewise"].amax(dim=1),
    ),
    "framewise, mean over the row's frames": (
        {"output": "framewise", "frame_pooling": "mean"},
        lambda m, x: m(x)["framewise"].mean(dim=1),
    ),
    "logit (card: logits, the run's sigmoid)": (
        {"output": "logit"},
        lambda m, x: sigmoid(m(x)["logit"]),
    ),
    "clipwise with the member's activation override": (
        {"activation": "sigmoid"},
        lambda m, x: sigmoid(m(x)["clipwise"]),
    ),
}


@pytest.mark.parametrize("label", list(SED_MEMBERS))
def test_sed_outputs_score_rows_like_torch(sed, audio, tmp_path, label):
    module, result = sed
    member, reference_fn = SED_MEMBERS[label]
    ours = scored(audio, result.onnx_path, tmp_path, member)
    reference = torch_rows(module, audio, reference_fn)
    assert max_diff(ours, reference, f"SED {label}") <= TOLERANCE


def test_run_activation_applies_to_logits_only(sed, audio, tmp_path):
    module, result = sed
    softmax = {"inference": {"activation": "softmax"}}
    logit = scored(audio, result.onnx_path, tmp_path, {"output": "logit"}, **softmax)
    reference = torch_rows(module, audio, lambda m, x: torch.softmax(m(x)["logit"], dim=-1))
    assert max_diff(logit, reference, "SED logit, softmax") <= TOLERANCE
    clip = scored(audio, result.onnx_path, tmp_path, **softmax)
    reference = torch_rows(module, audio, lambda m, x: m(x)["clipwise"])
    assert max_diff(clip, reference, "SED clipwise, run softmax ignored") <= TOLERANCE


def test_framewise_scores_come_from_the_rows_frames_within_context(audio, tmp_path):
    """A 10 s SED input (the row's 5 s plus 2.5 s each side): the row's frames are the middle
    half of the output's, counted here by hand."""
    module = build("sed")
    context = AudioConfig(context_seconds=2.5)
    zoo("spread")(module, 4, (module.att, module.cla), features(audio, context)[1:])
    card = birdinfer.make_card(
        "sed10", CODES, MEL, 10.0, outputs=["framewise:probabilities", "clipwise:probabilities"]
    )
    path = birdinfer.export(module, card, tmp_path / "sed10.onnx", openvino=False).onnx_path

    def middle_half_max(m, x):
        frames = m(x)["framewise"]
        n = frames.shape[1]
        assert n % 4 == 0, n  # else "the middle half" is not a whole number of frames
        return frames[:, n // 4 : 3 * n // 4].amax(dim=1)

    ours = scored(audio, path, tmp_path, audio={"context_seconds": 2.5})
    reference = torch_rows(module, audio, middle_half_max, context)
    assert max_diff(ours, reference, "SED 10 s context, middle frames") <= TOLERANCE
    whole = torch_rows(module, audio, lambda m, x: m(x)["framewise"].amax(dim=1), context)
    assert np.abs(whole.to_numpy() - reference.to_numpy()).max() > 1e-3  # the span matters


# --- 3 channels ----------------------------------------------------------------------------------


def test_three_channel_model_exports_runs_and_is_refused_by_the_mel_front_end(
    audio, classes, tmp_path
):
    path = cli_export(
        tmp_path / "rgb.onnx", classes, "--arch", "test_efficientnet", "--in-chans", "3"
    )
    backend = open_backend(path)
    assert backend.card.input_shape == (3, 64, 501)
    features = LogMel(MEL)(np.random.default_rng(5).standard_normal((2, 160000)).astype("f4"))
    assert backend(np.repeat(features, 3, axis=1)).shape == (2, len(CODES))
    with pytest.raises(ModelError, match="takes 3 input channels.*makes 1"):
        scored(audio, path, tmp_path)


def test_repeating_wrapper_runs_a_three_channel_backbone_end_to_end(audio, classes, tmp_path):
    module = build("repeat_channels")
    zoo("spread")(module, seed=6, heads=(module.model.classifier,), inputs=features(audio)[1:])
    checkpoint = tmp_path / "rgb.pt"
    torch.save(module.state_dict(), checkpoint)
    flags = ["--factory", f"{ZOO}:repeat_channels", "--checkpoint", str(checkpoint)]
    path = cli_export(tmp_path / "rgb.onnx", classes, *flags)
    reference = torch_rows(module, audio, lambda m, x: sigmoid(m(x)))
    assert max_diff(scored(audio, path, tmp_path), reference, "3-channel wrapper") <= TOLERANCE


# --- a second input ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shifted(tmp_path_factory, classes, audio):
    folder = tmp_path_factory.mktemp("shift")
    module = build("shift_input")
    x = features(audio)[1]
    zoo("spread")(module, seed=7, heads=(module.net.head,), inputs=(x, torch.zeros(len(x), 1)))
    checkpoint = folder / "shift.pt"
    torch.save({"model": module.state_dict()}, checkpoint)
    flags = ["--factory", f"{ZOO}:shift_input", "--checkpoint", str(checkpoint)]
    path = cli_export(folder / "shift.onnx", classes, *flags, "--constant", "shift=[0.5]")
    return module, path


@pytest.mark.parametrize("suffix", [".onnx", ".xml"])
def test_second_input_is_fed_its_cards_constant(shifted, audio, tmp_path, suffix):
    module, path = shifted
    ours = scored(audio, path.with_suffix(suffix), tmp_path)
    half = torch.full((1, 1), 0.5)
    reference = torch_rows(module, audio, lambda m, x: sigmoid(m(x, half.expand(len(x), 1))))
    assert max_diff(ours, reference, f"second input {suffix}") <= TOLERANCE
    zero = torch_rows(module, audio, lambda m, x: sigmoid(m(x, torch.zeros(len(x), 1))))
    assert np.abs(zero.to_numpy() - reference.to_numpy()).max() > 1e-3  # the input matters


def test_second_input_without_a_value_is_refused_by_name(shifted, audio, tmp_path):
    import dataclasses

    import onnx

    _, path = shifted
    proto = onnx.load(str(path))
    card = ModelCard.from_json({p.key: p.value for p in proto.metadata_props}[CARD_KEY])
    assert card.input_constants == {"shift": [0.5]}
    card = dataclasses.replace(card, input_constants={})
    onnx.helper.set_model_props(proto, {CARD_KEY: card.to_json()})
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match=r"2 inputs.*'mel'.*'shift' \(\?, 1\).*--constant"):
        scored(audio, bare, tmp_path)
