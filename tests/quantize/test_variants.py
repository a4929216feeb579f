"""Variants: INT8 and FP16 files with their head kept in float, self-describing, timed and sized in
honest reports, that run through the normal pipeline.

The variants are made from a tiny exported timm model (needs_torch): its report compares them with
torch, and the head-in-float checks look for timm's classifier and global pool. Making them takes
15-20 s (slow).
"""

import json

import numpy as np
import onnx
import openvino as ov
import pytest

from birdinfer.cli import main
from birdinfer.errors import ModelError
from birdinfer.models import files_sha256
from birdinfer.models.backends import open_backend
from birdinfer.models.card import ModelCard
from birdinfer.quantize import (
    GuardSettings,
    QuantizeSettings,
    load_heldout,
    quantize,
    sample_windows,
)
from birdinfer.quantize import report as quantize_report
from birdinfer.quantize import variants as V
from birdinfer.quantize.headscope import onnx_head_nodes, openvino_head_nodes
from birdinfer.quantize.runner import file_size
from birdinfer.runner import run
from tests.helpers import DEMO_CODES, export_tiny_model, make_config


@pytest.fixture(scope="module")
def nncf():
    return pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def card(timm_onnx) -> ModelCard:
    return open_backend(timm_onnx).card


@pytest.fixture(scope="module")
def quantized(nncf, timm_onnx, card, audio, tmp_path_factory):
    """Every variant of the tiny timm model. Its ROC-AUC is noise (random weights), so the threshold
    is opened here; the verdict itself is tested on the trained demo model (test_accuracy_guard.py)."""
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
    return quantize(timm_onnx, calibration, heldout, out, settings)


# --- which nodes stay in float ----------------------------------------------------------------


def test_user_scope_adds_names_by_pattern_and_type():
    names, types = ["/conv/Conv", "/fc/Gemm", "/se/Mul", "/pool"], ["Conv", "Gemm", "Mul", "X"]
    scope = V.ScopeSettings(patterns=("/se/",), types=("Gemm",))
    assert V.scoped_names(names, types, ["/pool"], scope) == ["/pool", "/fc/Gemm", "/se/Mul"]
    no_head = V.ScopeSettings(keep_head_float=False)
    assert V.scoped_names(names, types, ["/pool"], no_head) == []


@pytest.mark.needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("arch", ["test_nfnet", "test_convnext", "test_resnet"])
def test_other_architectures_quantize_with_their_head_in_float(nncf, tmp_path, audio, arch):
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


@pytest.mark.needs_torch
@pytest.mark.slow
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


@pytest.mark.needs_torch
@pytest.mark.slow
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


@pytest.mark.needs_torch
@pytest.mark.slow
def test_variant_files_describe_themselves(quantized, timm_onnx):
    parent_sha = files_sha256(timm_onnx)
    for key in V.QUANTIZED:
        row = quantized.row(key)
        card = open_backend(row.path).card
        assert row.path.name == f"{timm_onnx.stem}{V.KINDS[key].suffix}"
        assert card.class_names == quantized.card.class_names
        assert card.mel == quantized.card.mel
        assert card.extra["variant"] == V.KINDS[key].label
        assert card.extra["parent"] == {"file": timm_onnx.name, "sha256": parent_sha}
        assert card.extra["accepted"] is row.accepted is True
        assert card.extra["guard"] == json.loads(json.dumps(row.guard.to_dict()))
        assert card.extra["quantization"]["calibration_windows"] == 20


@pytest.mark.needs_torch
@pytest.mark.slow
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


@pytest.mark.needs_torch
@pytest.mark.slow
def test_int8_weights_are_smaller_than_fp32(quantized):
    sizes = {r.key: r.size_bytes for r in quantized.rows if r.size_bytes}
    assert sizes["ov-fp16"] < 0.75 * sizes["ov-fp32"]
    assert sizes["ov-int8"] < sizes["ov-fp16"] and sizes["ort-int8"] < 0.75 * sizes["ort-fp32"]


@pytest.mark.needs_torch
@pytest.mark.slow
def test_onnxruntime_int8_weights_use_7_bits_for_cpus_without_vnni(quantized):
    """reduce_range: U8S8 products of 8-bit weights saturate the 16-bit sums of non-VNNI kernels."""
    proto = onnx.load(str(quantized.row("ort-int8").path))
    weights = [
        onnx.numpy_helper.to_array(t)
        for t in proto.graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4
    ]
    assert weights and max(int(np.abs(w.astype(int)).max()) for w in weights) <= 64


@pytest.fixture(scope="module")
def fp32_submission(soundscape_dir, timm_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp32") / "submission.csv"
    return run(make_config(soundscape_dir, timm_onnx, out, inference={"workers": 1, "threads": 1}))


@pytest.mark.needs_torch
@pytest.mark.slow
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


@pytest.mark.needs_torch
@pytest.mark.slow
def test_ort_dynamic_is_opt_in_and_warns_with_its_measured_slowdown(quantized):
    assert "ort-dynamic" not in QuantizeSettings().variants
    dynamic, fp32 = quantized.row("ort-dynamic"), quantized.row("ort-fp32")
    ratio = dynamic.timing.ms_per_window / fp32.timing.ms_per_window
    assert any(f"({ratio:.1f}x" in w for w in quantized.warnings)


@pytest.mark.needs_torch
@pytest.mark.slow
def test_a_variant_is_not_quantized_again(quantized, tmp_path):
    with pytest.raises(ModelError, match="already a quantized variant"):
        quantize(
            quantized.row("ort-int8").path,
            quantized.calibration,
            quantized.heldout,
            tmp_path,
            QuantizeSettings(torch_reference=False),
        )


def test_quantize_command_writes_variants_and_report(nncf, tiny_onnx, audio, tmp_path, capsys):
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
