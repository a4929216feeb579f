"""Quantization: seeded calibration from real windows, the accuracy guard, honest reports, and
variants that run through the normal pipeline (or are refused when the guard rejected them)."""

import json
import shutil

import numpy as np
import pytest
from conftest import DEMO_CODES, export_tiny_model, make_config

from birdinfer.audio.decode import decode_windows
from birdinfer.cli import main
from birdinfer.demo.synth import write_soundscapes
from birdinfer.errors import ModelError
from birdinfer.frontend.logmel import LogMel
from birdinfer.inference.run import run
from birdinfer.models.backends import open_backend
from birdinfer.models.backends.base import BUILTIN_MODELS, files_sha256
from birdinfer.models.card import CARD_KEY, ModelCard
from birdinfer.quantize import report as quantize_report
from birdinfer.quantize import variants as V
from birdinfer.quantize.accuracy_guard import (
    GuardError,
    GuardSettings,
    HeldOut,
    compare,
    load_heldout,
    outputs,
    probabilities,
)
from birdinfer.quantize.calibration import (
    CalibrationError,
    WindowSet,
    audio_config_for,
    plan_picks,
    sample_windows,
)
from birdinfer.quantize.headscope import onnx_head_nodes, openvino_head_nodes
from birdinfer.quantize.latency import time_side_by_side
from birdinfer.quantize.runner import QuantizeSettings, file_size, guard_variant, publish, quantize
from birdinfer.scoring.metrics import macro_roc_auc_arrays

pytest.importorskip("nncf")
pytest.importorskip("torch")
pytest.importorskip("timm")
onnx = pytest.importorskip("onnx")
ov = pytest.importorskip("openvino")

pytestmark = pytest.mark.slow
needs_demo_model = pytest.mark.skipif(
    not BUILTIN_MODELS["demo"].is_file(), reason="demo model not built yet"
)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Calibration recordings (4 files, one of them 12 s) and a labelled held-out set."""
    root = tmp_path_factory.mktemp("quantize_audio")
    write_soundscapes(root / "cal", 3, seed=30000, seconds=30.0)
    write_soundscapes(root / "cal", 1, seed=30001, seconds=12.0, fmt="wav")
    write_soundscapes(root / "held", 2, seed=20260, seconds=30.0, labels_csv=root / "labels.csv")
    return root


@pytest.fixture(scope="module")
def card(tiny_onnx) -> ModelCard:
    return open_backend(tiny_onnx).card


@pytest.fixture(scope="module")
def quantized(tiny_onnx, card, audio, tmp_path_factory):
    """Every variant of the tiny model. Its ROC-AUC is noise (random weights), so the threshold
    is opened here; the verdict itself is tested on the trained demo model below."""
    settings = QuantizeSettings(
        variants=V.QUANTIZED,
        guard=GuardSettings(max_metric_drop=1.0),
        rounds=3,
        warmup=1,
        threads=1,
    )
    calibration = sample_windows(audio / "cal", card, count=20, seed=0)
    heldout = load_heldout(audio / "held", card, audio / "labels.csv")
    out = tmp_path_factory.mktemp("variants")
    return quantize(tiny_onnx, calibration, heldout, out, settings)


# --- calibration ----------------------------------------------------------------------------------


def test_calibration_is_reproducible_with_a_seed_and_differs_with_another(audio, card):
    first = sample_windows(audio / "cal", card, count=10, seed=3)
    again = sample_windows(audio / "cal", card, count=10, seed=3)
    other = sample_windows(audio / "cal", card, count=10, seed=4)
    assert first.row_ids == again.row_ids
    np.testing.assert_array_equal(first.features, again.features)
    assert first.row_ids != other.row_ids
    assert first.features.shape == (10, *card.input_shape) and first.features.dtype == np.float32


def test_calibration_spreads_windows_round_robin_over_files():
    counts = [12, 12, 3, 1]
    picks = plan_picks(counts, count=10, seed=0)
    assert len(picks) == len(set(picks)) == 10
    per_file = np.bincount([f for f, _ in picks], minlength=4)
    assert per_file.tolist() == [3, 3, 3, 1]  # round-robin: the 1-window file gives out first
    assert all(0 <= w < counts[f] for f, w in picks)
    assert len(plan_picks(counts, count=100, seed=0)) == sum(counts)  # capped at what exists


def test_calibration_windows_come_through_the_pipeline_front_end(audio, card):
    sampled = sample_windows(audio / "cal", card, count=6, seed=1)
    assert len({row.rsplit("_", 1)[0] for row in sampled.row_ids}) == 4  # all 4 files used
    frontend = LogMel(card.mel)
    for row, features in zip(sampled.row_ids, sampled.features, strict=True):
        stem, end = row.rsplit("_", 1)
        path = next((audio / "cal").glob(f"{stem}.*"))
        windows = decode_windows(path, audio_config_for(card))
        expected = frontend(windows[int(end) // 5 - 1 : int(end) // 5])[0]
        np.testing.assert_allclose(features, expected, atol=1e-5)


def test_calibration_folder_without_audio_is_a_clear_error(tmp_path, card):
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(CalibrationError, match=str(tmp_path)):
        sample_windows(tmp_path, card)


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


# --- which nodes stay in float ----------------------------------------------------------------


def test_user_scope_adds_names_by_pattern_and_type():
    names, types = ["/conv/Conv", "/fc/Gemm", "/se/Mul", "/pool"], ["Conv", "Gemm", "Mul", "X"]
    scope = V.ScopeSettings(patterns=("/se/",), types=("Gemm",))
    assert V.scoped_names(names, types, ["/pool"], scope) == ["/pool", "/fc/Gemm", "/se/Mul"]
    no_head = V.ScopeSettings(keep_head_float=False)
    assert V.scoped_names(names, types, ["/pool"], no_head) == []


@pytest.mark.parametrize("arch", ["test_nfnet", "test_convnext", "test_resnet"])
def test_other_architectures_quantize_with_their_head_in_float(tmp_path, audio, arch):
    onnx_path = export_tiny_model(tmp_path, arch=arch)
    card = open_backend(onnx_path).card
    head = onnx_head_nodes(onnx.load(str(onnx_path)))
    ov_head = openvino_head_nodes(ov.convert_model(str(onnx_path)))
    for found in (head, ov_head):
        assert any("pool" in name for name in found), found
        assert not any("Conv" in name and "fc" not in name for name in found), found
    settings = QuantizeSettings(
        variants=("ov-int8", "ort-int8"),
        guard=GuardSettings(max_metric_drop=1.0),
        rounds=1,
        warmup=0,
        threads=1,
        torch_reference=False,
    )
    calibration = sample_windows(audio / "cal", card, count=8, seed=0)
    heldout = load_heldout(audio / "held", card, None)
    result = quantize(onnx_path, calibration, heldout, tmp_path / "out", settings)
    for key in ("ov-int8", "ort-int8"):
        row = result.row(key)
        assert row.error is None and row.path.is_file()
        assert row.guard.max_abs_diff < 0.2  # close to FP32, not a different model


def _int8_weights(node, depth: int = 0) -> bool:
    """True when `node` is (a dequantization of) an INT8 constant."""
    if node.get_type_name() == "Constant":
        return node.get_output_element_type(0).get_type_name() in ("i8", "u8")
    if depth > 4 or node.get_type_name() not in ("Convert", "Multiply", "Subtract", "Reshape"):
        return False
    return any(_int8_weights(v.get_node(), depth + 1) for v in node.input_values())


def _head_of(model):
    """The classifier's MatMul, and the type of the node feeding the global pool before it."""
    matmul = next(o for o in model.get_ordered_ops() if o.get_type_name() == "MatMul")
    pool = matmul.input_value(0).get_node()
    while pool.get_type_name() != "ReduceMean":
        pool = pool.input_value(0).get_node()
    return matmul, pool.input_value(0).get_node().get_type_name()


def test_int8_keeps_the_head_in_float_unless_told_otherwise(quantized, tmp_path):
    int8 = ov.Core().read_model(str(quantized.row("ov-int8").path))
    matmul, before_pool = _head_of(int8)
    assert not _int8_weights(matmul.input_value(1).get_node())
    assert before_pool != "FakeQuantize"
    convs = [o for o in int8.get_ordered_ops() if o.get_type_name() == "Convolution"]
    assert all(_int8_weights(c.input_value(1).get_node()) for c in convs)  # the body is INT8
    qdq = onnx.load(str(quantized.row("ort-int8").path))
    dequantized = {o for n in qdq.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    gemm = next(n for n in qdq.graph.node if n.op_type == "Gemm")
    assert not set(gemm.input) & dequantized
    assert any(set(n.input) & dequantized for n in qdq.graph.node if n.op_type == "Conv")
    # --quantize-head: the classifier's weights and the pool's input are quantized too
    calibration = quantized.calibration.features[:8]
    variant = V.openvino_int8(quantized.model, calibration, V.ScopeSettings(keep_head_float=False))
    variant.save_to(quantized.card, tmp_path / "head.xml")
    matmul, before_pool = _head_of(ov.Core().read_model(str(tmp_path / "head.xml")))
    assert _int8_weights(matmul.input_value(1).get_node())
    assert before_pool == "FakeQuantize"


def _weight_scales(model) -> list:
    """The scale input of each Multiply that dequantizes an INT8 weight constant."""
    scales = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Multiply":
            continue
        sources = [v.get_node() for v in op.input_values()]
        if any(
            s.get_type_name() == "Convert"
            and s.input_value(0).get_node().get_type_name() == "Constant"
            and s.input_value(0).get_element_type().get_type_name() == "i8"
            for s in sources
        ):
            scales.extend(
                s
                for s in sources
                if s.get_type_name() != "Convert"
                or s.input_value(0).get_element_type().get_type_name() != "i8"
            )
    return scales


def test_int8_weight_scales_are_fp16_and_compile_to_the_same_int8_model(quantized, tmp_path):
    path = quantized.row("ov-int8").path
    model = ov.Core().read_model(str(path))
    scales = _weight_scales(model)
    stored = [s if s.get_type_name() == "Constant" else s.input_value(0).get_node() for s in scales]
    assert scales and {s.get_output_element_type(0).get_type_name() for s in stored} == {"f16"}
    # The same file with the FP16 values as FP32 constants: the CPU plugin's decompression is
    # exact, and the convolutions still run in INT8.
    for scale in (s for s in scales if s.get_type_name() == "Convert"):
        values = scale.input_value(0).get_node().get_data().astype(np.float32)
        target = next(iter(scale.output(0).get_target_inputs()))
        target.replace_source_output(ov.opset13.constant(values).output(0))
    ov.save_model(model, str(tmp_path / "f32-scales.xml"), compress_to_fp16=False)
    features = quantized.heldout.windows.features[:8]
    fp16_scales = open_backend(path)(features)
    fp32_scales = open_backend(tmp_path / "f32-scales.xml")(features)
    np.testing.assert_allclose(fp16_scales, fp32_scales, atol=1e-5)
    compiled = ov.Core().compile_model(str(path), "CPU")
    kinds = [
        (o.get_rt_info()["layerType"].astype(str), o.get_rt_info()["runtimePrecision"].astype(str))
        for o in compiled.get_runtime_model().get_ordered_ops()
    ]
    assert ("Convolution", "u8") in kinds


# --- variants, report, pipeline --------------------------------------------------------------------


def test_variant_files_describe_themselves(quantized, tiny_onnx):
    parent_sha = files_sha256(tiny_onnx)
    for key in V.QUANTIZED:
        row = quantized.row(key)
        card = open_backend(row.path).card
        assert row.path.name == f"{tiny_onnx.stem}{V.KINDS[key].suffix}"
        assert card.class_names == quantized.card.class_names
        assert card.mel == quantized.card.mel
        assert card.extra["variant"] == V.KINDS[key].label
        assert card.extra["parent"] == {"file": tiny_onnx.name, "sha256": parent_sha}
        assert card.extra["accepted"] is row.accepted is True
        assert card.extra["guard"] == json.loads(json.dumps(row.guard.to_dict()))
        assert card.extra["quantization"]["calibration_windows"] == 20


def test_report_figures_are_the_measured_ones(quantized, tmp_path):
    json_path, md_path, data = quantize_report.write(quantized, tmp_path)
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(data))
    markdown = md_path.read_text()
    rows = {r["key"]: r for r in data["rows"]}
    assert set(rows) == {*V.QUANTIZED, "ort-fp32", "ov-fp32", "torch-fp32", "torch-dynamic-int8"}
    for row in quantized.rows:
        reported = rows[row.key]
        assert reported["ms_per_window"] == row.timing.ms_per_window
        assert reported["ms_per_window_rounds"] == list(row.timing.ms_per_window_rounds)
        assert f"{row.timing.ms_per_window:.2f}" in markdown
        if row.path is not None:
            size = row.path.stat().st_size
            if row.path.suffix == ".xml":
                size += row.path.with_suffix(".bin").stat().st_size
            assert reported["size_bytes"] == size == file_size(row.path)
    ov_fp32, ov_int8 = rows["ov-fp32"], rows["ov-int8"]
    assert data["headline"]["ov_int8_speedup"] == pytest.approx(
        ov_fp32["ms_per_window"] / ov_int8["ms_per_window"]
    )
    assert data["headline"]["ov_int8_size_ratio"] == pytest.approx(
        ov_int8["size_bytes"] / ov_fp32["size_bytes"]
    )
    assert rows["ov-int8"]["guard"]["variant_score"] == quantized.row("ov-int8").guard.variant_score
    assert data["timing"]["batch_size"] == 16 and data["timing"]["threads"] == 1
    assert "only touches the Linear head" in markdown


def test_int8_weights_are_smaller_than_fp32(quantized):
    sizes = {r.key: r.size_bytes for r in quantized.rows if r.size_bytes}
    assert sizes["ov-fp16"] < 0.75 * sizes["ov-fp32"]
    assert sizes["ov-int8"] < sizes["ov-fp16"] and sizes["ort-int8"] < 0.75 * sizes["ort-fp32"]


def test_timing_interleaves_models_in_rotated_rounds_and_takes_medians():
    now = [0.0]
    calls = []
    cost = {"a": [0.016, 0.032, 0.016], "b": [0.160, 0.160, 0.016]}  # seconds per call of 16

    def runner(name):
        def run(batch):
            calls.append(name)
            if len(calls) > 2:  # after the warm-up calls
                now[0] += cost[name].pop(0)

        return run

    timings = time_side_by_side(
        {"a": runner("a"), "b": runner("b")},
        np.zeros((16, 1)),
        rounds=3,
        warmup=1,
        clock=lambda: now[0],
    )
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert timings["a"].ms_per_window == pytest.approx(1.0)  # median of 1, 2, 1 ms
    assert timings["b"].ms_per_window == pytest.approx(10.0)  # median of 10, 10, 1 ms


@pytest.fixture(scope="module")
def fp32_submission(soundscape_dir, tiny_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp32") / "submission.csv"
    return run(make_config(soundscape_dir, tiny_onnx, out, inference={"workers": 1, "threads": 1}))


@pytest.mark.parametrize("key", V.QUANTIZED)
def test_every_variant_runs_through_the_pipeline(
    quantized, fp32_submission, soundscape_dir, tmp_path, key
):
    path = quantized.row(key).path
    config = make_config(
        soundscape_dir, path, tmp_path / "s.csv", inference={"workers": 1, "threads": 1}
    )
    frame = run(config).submission
    reference = fp32_submission.submission
    assert frame["row_id"].tolist() == reference["row_id"].tolist()
    assert list(frame.columns) == ["row_id", *DEMO_CODES]
    values = frame.iloc[:, 1:].to_numpy()
    assert ((values >= 0) & (values <= 1)).all() and np.isfinite(values).all()
    assert np.abs(values - reference.iloc[:, 1:].to_numpy()).max() < 0.1


def test_ort_dynamic_is_opt_in_and_warns_with_its_measured_slowdown(quantized):
    assert "ort-dynamic" not in QuantizeSettings().variants
    dynamic, fp32 = quantized.row("ort-dynamic"), quantized.row("ort-fp32")
    ratio = dynamic.timing.ms_per_window / fp32.timing.ms_per_window
    assert any(f"({ratio:.1f}x" in w for w in quantized.warnings)


def test_a_variant_is_not_quantized_again(quantized, tmp_path):
    with pytest.raises(ModelError, match="already a quantized variant"):
        quantize(
            quantized.row("ort-int8").path,
            quantized.calibration,
            quantized.heldout,
            tmp_path,
            QuantizeSettings(torch_reference=False),
        )


def test_quantize_command_writes_variants_and_report(tiny_onnx, audio, tmp_path, capsys):
    code = main(
        [
            "quantize",
            "--model",
            str(tiny_onnx),
            "--calibration",
            str(audio / "cal"),
            "--calibration-count",
            "8",
            "--heldout",
            str(audio / "held"),
            "--labels",
            str(audio / "labels.csv"),
            "--variants",
            "ov-int8",
            "--max-drop",
            "1",
            "--out-dir",
            str(tmp_path / "models"),
            "--report-dir",
            str(tmp_path / "reports"),
            "--rounds",
            "1",
            "--threads",
            "1",
            "--no-torch",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "models" / f"{tiny_onnx.stem}.ov-int8.xml").is_file()
    report = json.loads((tmp_path / "reports" / f"{tiny_onnx.stem}.quantize.json").read_text())
    speedup = report["headline"]["ov_int8_speedup"]
    assert f"headline: speed: OpenVINO INT8 is {speedup:.2f}x OpenVINO FP32" in out


# --- the guard on the trained demo model ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_heldout(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_heldout")
    write_soundscapes(root / "audio", 4, seed=20260, seconds=60.0, labels_csv=root / "labels.csv")
    card = open_backend(BUILTIN_MODELS["demo"]).card
    return load_heldout(root / "audio", card, root / "labels.csv")


@pytest.fixture(scope="module")
def broken_variant(tmp_path_factory):
    """The demo model with its classifier weights perturbed (as a badly quantized head)."""
    folder = tmp_path_factory.mktemp("broken")
    proto = onnx.load(str(BUILTIN_MODELS["demo"]))
    weight = next(t for t in proto.graph.initializer if t.name == "classifier.weight")
    values = onnx.numpy_helper.to_array(weight)
    noise = np.random.default_rng(0).standard_normal(values.shape) * 2 * values.std()
    weight.CopyFrom(onnx.numpy_helper.from_array((values + noise).astype(np.float32), weight.name))
    path = folder / "demo_model.ort-int8.onnx"
    onnx.save(proto, str(path))
    return path


@needs_demo_model
def test_guard_rejects_a_broken_variant_and_says_by_how_much(demo_heldout, broken_variant):
    result = guard_variant(BUILTIN_MODELS["demo"], broken_variant, demo_heldout)
    truth = demo_heldout.labels
    features = demo_heldout.windows.features
    parent = probabilities(outputs(open_backend(BUILTIN_MODELS["demo"]), features, 16), "sigmoid")
    broken = probabilities(outputs(open_backend(broken_variant), features, 16), "sigmoid")
    drop = macro_roc_auc_arrays(truth, parent) - macro_roc_auc_arrays(truth, broken)
    assert drop > 0.005
    assert not result.accepted
    assert result.metric_drop == pytest.approx(drop)
    assert f"falls by {drop:.4f}" in result.reason


@needs_demo_model
def test_guard_accepts_a_faithful_copy(demo_heldout, tmp_path):
    copy = shutil.copy(BUILTIN_MODELS["demo"], tmp_path / "copy.onnx")
    result = guard_variant(BUILTIN_MODELS["demo"], copy, demo_heldout)
    assert result.accepted and result.metric_drop == pytest.approx(0.0, abs=1e-12)
    assert result.top1_agreement == 1.0 and result.max_abs_diff < 1e-6


@needs_demo_model
def test_pipeline_refuses_a_rejected_variant_unless_allowed(
    demo_heldout, broken_variant, soundscape_dir, tmp_path
):
    demo = BUILTIN_MODELS["demo"]
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
