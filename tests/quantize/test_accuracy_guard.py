"""The accuracy guard: a variant is accepted only when its metric on labelled held-out windows
(or, without labels, its top-1 agreement with the parent) stays within the stated bounds."""

import json
import shutil

import numpy as np
import onnx
import pytest

from birdinfer.demo import DEMO_MODEL, write_soundscapes
from birdinfer.errors import ModelError
from birdinfer.models.backends import open_backend
from birdinfer.models.card import CARD_KEY, ModelCard
from birdinfer.quantize import GuardError, GuardSettings, WindowSet, load_heldout
from birdinfer.quantize import variants as V
from birdinfer.quantize.accuracy_guard import HeldOut, compare, outputs, probabilities
from birdinfer.quantize.runner import guard_variant, publish
from birdinfer.runner import run
from birdinfer.scoring import macro_roc_auc_arrays
from tests.helpers import DEMO_CODES, make_config

needs_demo_model = pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="demo model not built yet")


@pytest.fixture(scope="module")
def card(tiny_onnx) -> ModelCard:
    """The committed tiny model's card: classes, mel settings and input shape."""
    return open_backend(tiny_onnx).card


def test_labels_that_do_not_match_the_recordings_are_refused(audio, card, tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("row_id," + ",".join(DEMO_CODES) + "\nsoundscape_1_5," + "0," * 6 + "1\n")
    with pytest.raises(GuardError, match="labels.csv"):
        load_heldout(audio / "held", card, bad)


def _heldout_without_labels(n: int):
    return HeldOut(WindowSet(np.zeros((n, 1, 1, 1), np.float32), tuple(map(str, range(n))), "x"))


def test_guard_without_labels_judges_top1_agreement(card):
    parent = np.random.default_rng(0).standard_normal((40, 7)).astype(np.float32)
    swapped = parent.copy()
    swapped[:20] = np.roll(swapped[:20], 1, axis=1)  # half the windows: another top-1 class
    heldout = _heldout_without_labels(40)
    settings = GuardSettings(min_top1_agreement=0.9)
    bad = compare("v", parent, swapped, heldout, card, settings)
    assert not bad.accepted and bad.metric is None and bad.top1_agreement == 0.5
    assert "no labels" in bad.reason and f"{bad.top1_agreement:.3f}" in bad.reason
    good = compare("v", parent, parent + 1e-4, heldout, card, settings)
    assert good.accepted and good.top1_agreement == 1.0 and good.max_abs_diff < 1e-4


# --- the guard on the trained demo model ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_heldout(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_heldout")
    write_soundscapes(root / "audio", 4, seed=20260, seconds=60.0, labels_csv=root / "labels.csv")
    card = open_backend(DEMO_MODEL).card
    return load_heldout(root / "audio", card, root / "labels.csv")


@pytest.fixture(scope="module")
def broken_variant(tmp_path_factory):
    """The demo model with its classifier weights perturbed (as a badly quantized head)."""
    folder = tmp_path_factory.mktemp("broken")
    proto = onnx.load(str(DEMO_MODEL))
    weight = next(t for t in proto.graph.initializer if t.name == "classifier.weight")
    values = onnx.numpy_helper.to_array(weight)
    noise = np.random.default_rng(0).standard_normal(values.shape) * 2 * values.std()
    weight.CopyFrom(onnx.numpy_helper.from_array((values + noise).astype(np.float32), weight.name))
    path = folder / "demo_model.ort-int8.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.mark.slow  # over 5 s on the slower hosts
@needs_demo_model
def test_guard_rejects_a_broken_variant_and_says_by_how_much(demo_heldout, broken_variant):
    result = guard_variant(DEMO_MODEL, broken_variant, demo_heldout)
    truth = demo_heldout.labels
    features = demo_heldout.windows.features
    parent = probabilities(outputs(open_backend(DEMO_MODEL), features, 16), "sigmoid")
    broken = probabilities(outputs(open_backend(broken_variant), features, 16), "sigmoid")
    drop = macro_roc_auc_arrays(truth, parent) - macro_roc_auc_arrays(truth, broken)
    assert drop > 0.005
    assert not result.accepted
    assert result.metric_drop == pytest.approx(drop)
    assert f"falls by {drop:.4f}" in result.reason


@needs_demo_model
def test_guard_accepts_a_faithful_copy(demo_heldout, tmp_path):
    copy = shutil.copy(DEMO_MODEL, tmp_path / "copy.onnx")
    result = guard_variant(DEMO_MODEL, copy, demo_heldout)
    assert result.accepted and result.metric_drop == pytest.approx(0.0, abs=1e-12)
    assert result.top1_agreement == 1.0 and result.max_abs_diff < 1e-6


@needs_demo_model
def test_pipeline_refuses_a_rejected_variant_unless_allowed(
    demo_heldout, broken_variant, soundscape_dir, tmp_path
):
    demo = DEMO_MODEL
    verdict = guard_variant(demo, broken_variant, demo_heldout)
    card = open_backend(demo).card
    published = publish(
        V.file_variant(broken_variant, "ort-int8"), demo, card, verdict, tmp_path / "v.onnx"
    )
    props = {p.key: p.value for p in onnx.load(str(published)).metadata_props}
    assert json.loads(props[CARD_KEY])["extra"]["accepted"] is False
    config = make_config(soundscape_dir, published, tmp_path / "s.csv")
    with pytest.raises(ModelError) as info:
        run(config)
    message = str(info.value)
    assert "v.onnx" in message and "inference.allow_rejected_models" in message
    assert f"falls by {verdict.metric_drop:.4f}" in message
    allowed = make_config(
        soundscape_dir, published, tmp_path / "s.csv", inference={"allow_rejected_models": True}
    )
    frame = run(allowed).submission
    assert len(frame) == 16 and list(frame.columns) == ["row_id", *DEMO_CODES]
