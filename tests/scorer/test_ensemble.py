"""The ensemble: its members' models are loaded and checked against the config before any audio
is read, and their scores combine as a weighted mean or a weighted mean of percentile ranks."""

import shutil

import numpy as np
import onnx
import pytest

from birdinfer.audio import decode as audio
from birdinfer.errors import ModelError, SubmissionError
from birdinfer.models.card import CARD_KEY, ModelCard
from birdinfer.runner import run
from birdinfer.scorer import Ensemble
from birdinfer.scorer.postprocess import percentile_ranks
from tests.helpers import make_config, scores_of, tiny_card, tiny_model


@pytest.fixture
def no_audio_reads(monkeypatch):
    """Fail the test if anything opens a recording."""

    def refuse(*args, **kwargs):
        raise AssertionError("audio was read before the model was checked")

    monkeypatch.setattr(audio.sf, "SoundFile", refuse)
    monkeypatch.setattr(audio.sf, "info", refuse)


# --- how members combine -------------------------------------------------------------------------


def test_ensemble_is_the_weighted_mean_of_its_members(soundscape_dir, tiny_onnx, tmp_path):
    other = tiny_model(tmp_path / "other", seed=7)
    single = [
        scores_of(run(make_config(soundscape_dir, m, tmp_path / f"{i}.csv")))
        for i, m in enumerate([tiny_onnx, other])
    ]
    config = make_config(soundscape_dir, tiny_onnx, tmp_path / "e.csv")
    config = type(config)(
        **{
            **config.__dict__,
            "models": (
                type(config.models[0])(str(tiny_onnx), 1.0),
                type(config.models[0])(str(other.with_suffix(".xml")), 3.0),
            ),
        }
    )
    ensemble = scores_of(run(config))
    np.testing.assert_allclose(ensemble, 0.25 * single[0] + 0.75 * single[1], atol=1e-5)


def test_rank_mean_blends_percentile_ranks(soundscape_dir, tiny_onnx, tmp_path):
    other = tiny_model(tmp_path / "other", seed=3, openvino=False)
    singles = [
        run(make_config(soundscape_dir, m, tmp_path / f"{i}.csv")).submission.iloc[:, 1:].to_numpy()
        for i, m in enumerate([tiny_onnx, other])
    ]
    config = make_config(
        soundscape_dir, tiny_onnx, tmp_path / "r.csv", inference={"combine": "rank_mean"}
    )
    config = type(config)(
        **{**config.__dict__, "models": (config.models[0], type(config.models[0])(str(other), 3.0))}
    )
    blended = run(config).submission.iloc[:, 1:].to_numpy()
    expected = 0.25 * percentile_ranks(singles[0]) + 0.75 * percentile_ranks(singles[1])
    np.testing.assert_allclose(blended, expected, atol=1e-6)


# --- models refused before any audio is read ----------------------------------------------------


def test_model_that_contradicts_the_config_is_refused_naming_each_key(
    soundscape_dir, tiny_onnx, tmp_path
):
    config = make_config(
        soundscape_dir,
        tiny_onnx,
        tmp_path / "s.csv",
        mel={"n_mels": 128, "n_fft": 1024, "hop_length": 320},
    )
    with pytest.raises(ModelError, match=r"mel\.n_mels: config 128, model 64"):
        Ensemble(config)


def test_context_model_runs_with_context_and_is_refused_without(soundscape_dir, tmp_path):
    card = tiny_card(window_seconds=10.0)  # hears 10 s per window
    model = tiny_model(tmp_path / "ctx", card=card, openvino=False)
    with pytest.raises(
        ModelError, match=r"audio.window_seconds: config 5.0 = 5.0 s of input, model 10.0 s"
    ):
        Ensemble(make_config(soundscape_dir, model, tmp_path / "a.csv"))
    config = make_config(soundscape_dir, model, tmp_path / "b.csv", audio={"context_seconds": 2.5})
    frame = run(config).submission
    assert len(frame) == 16  # rows stay one per 5 s window


def test_model_without_metadata_is_refused(tmp_path, soundscape_dir):
    from onnx import TensorProto, helper

    node = helper.make_node("ReduceMean", ["mel"], ["logits"], axes=[2, 3], keepdims=0)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["b", 1, 64, 501])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 1])],
    )
    path = tmp_path / "bare.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(ModelError, match=r"bare\.onnx.*birdinfer\.card"):
        Ensemble(make_config(soundscape_dir, path, tmp_path / "s.csv"))


def _copy_model(tiny_onnx, folder):
    folder.mkdir(exist_ok=True)
    for suffix in (".onnx", ".xml", ".bin"):
        shutil.copy(tiny_onnx.with_suffix(suffix), folder / f"model{suffix}")
    return folder / "model.onnx"


@pytest.mark.parametrize("suffix", [".onnx", ".bin"])
def test_truncated_model_file_is_refused_before_audio(
    soundscape_dir, tiny_onnx, tmp_path, no_audio_reads, suffix
):
    model = _copy_model(tiny_onnx, tmp_path / "m")
    damaged = model.with_suffix(suffix)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    path = model.with_suffix(".onnx" if suffix == ".onnx" else ".xml")
    with pytest.raises(ModelError, match=rf"{path.name}: "):
        run(make_config(soundscape_dir, path, tmp_path / "s.csv"))


def _with_card(model_path, out_path, **changes):
    model = onnx.load(str(model_path))
    entry = next(p for p in model.metadata_props if p.key == CARD_KEY)
    card = ModelCard.from_json(entry.value)
    data = card.__dict__ | changes
    entry.value = ModelCard(**data).to_json()
    onnx.save(model, str(out_path))
    return out_path


def test_wrong_input_shape_is_refused_before_audio(
    soundscape_dir, tiny_onnx, tmp_path, no_audio_reads
):
    """The card promises 1 x 64 x 400 frames; the graph takes 501: named axis and sizes."""
    card = ModelCard.from_json(_card_text(tiny_onnx))
    wrong = _with_card(tiny_onnx, tmp_path / "wrong.onnx", input_shape=(1, 64, 400))
    config = make_config(soundscape_dir, wrong, tmp_path / "s.csv")
    assert card.input_shape == (1, 64, 501)
    with pytest.raises(ModelError, match=r"wrong\.onnx: model input axis 3 is 501.*says 400"):
        run(config)


def _card_text(path):
    model = onnx.load(str(path))
    return next(p.value for p in model.metadata_props if p.key == CARD_KEY)


def test_class_count_that_differs_from_the_sample_submission_is_refused(
    soundscape_dir, tiny_onnx, tmp_path, no_audio_reads
):
    card = ModelCard.from_json(_card_text(tiny_onnx))
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("row_id," + ",".join([*card.class_names, "extra1", "extra2"]) + "\n")
    config = make_config(
        soundscape_dir, tiny_onnx, tmp_path / "s.csv", output={"sample_submission": str(sample)}
    )
    with pytest.raises(SubmissionError, match=r"has 7 classes and lacks 2 of the 9.*extra1"):
        run(config)


def test_sample_submission_with_unknown_classes_is_refused(soundscape_dir, tiny_onnx, tmp_path):
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("row_id,hooowl,nosuchbird\n")
    config = make_config(
        soundscape_dir, tiny_onnx, tmp_path / "s.csv", output={"sample_submission": str(sample)}
    )
    with pytest.raises(SubmissionError, match="nosuchbird"):
        Ensemble(config)
