"""A model file's probe: stored compactly in its card, read back exactly, and run where the file
runs, so that a file that gives other outputs here than where it was made is caught."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import openvino as ov
import pytest

from birdinfer.cli import main
from birdinfer.demo import DEMO_MODEL
from birdinfer.models import CARD_KEY, open_backend, read_card, set_card, show
from birdinfer.models.export import convert_openvino
from birdinfer.models.host import cpu_info
from birdinfer.models.probe import (
    FLOAT_TOLERANCE,
    MAX_WINDOWS,
    SIZE_SHARE,
    Probe,
    ProbeError,
    check_backend,
    decode_inputs,
    departure,
    float_siblings,
    lowered_tolerance,
    probe_of,
    probe_windows,
    verify_file,
    with_probe,
)
from birdinfer.quantize import self_probe

DEMO = DEMO_MODEL


@pytest.fixture(scope="module")
def probed_onnx(tmp_path_factory, tiny_onnx):
    """The tiny model with a probe of its own (three synthetic soundscapes, onnxruntime)."""
    path = shutil.copy(tiny_onnx, tmp_path_factory.mktemp("probed") / "tiny.onnx")
    card = read_card(path)
    set_card(path, with_probe(card, self_probe(path)))
    return path


def _tampered(source, out):
    """`source` with one weight tensor scaled by 1.5 and its card (probe included) kept."""
    proto = onnx.load(str(source))
    weight = max(proto.graph.initializer, key=lambda t: len(t.raw_data or b"") or len(t.float_data))
    values = onnx.numpy_helper.to_array(weight) * np.float32(1.5)
    weight.CopyFrom(onnx.numpy_helper.from_array(values.astype(np.float32), weight.name))
    onnx.save(proto, str(out))
    return out


# --- storage -----------------------------------------------------------------------------------


def test_stored_windows_read_back_exactly_and_stay_stable_when_written_again():
    rng = np.random.default_rng(0)
    windows = rng.normal(-30, 12, size=(MAX_WINDOWS, 1, 16, 40)).astype(np.float32)
    encoded = probe_windows(windows, model_bytes=10**9)
    decoded = decode_inputs(encoded)
    step = (windows.max(axis=(1, 2, 3)) - windows.min(axis=(1, 2, 3))) / 255
    assert decoded.shape == windows.shape
    assert np.all(np.abs(decoded - windows) <= step[:, None, None, None] / 2 + 1e-4)
    expected = {"logits": np.ones((MAX_WINDOWS, 3), np.float32)}
    probe = Probe(encoded, expected, {"logits": "logits"}, 1e-3, "x")
    again = Probe.from_dict(json.loads(json.dumps(probe.to_dict())), "m")
    assert np.array_equal(again.inputs, decoded)
    assert again.to_dict() == probe.to_dict()


def test_windows_kept_fit_the_share_of_the_model_file():
    windows = np.random.default_rng(1).normal(size=(40, 1, 128, 313)).astype(np.float32)
    for size in (16_000_000, 6_000_000, 2_000_000):
        encoded = probe_windows(windows, size)
        assert len(encoded["data"]) <= SIZE_SHARE * size
        assert 1 <= encoded["shape"][0] <= MAX_WINDOWS
    assert probe_windows(windows, 1000)["shape"][0] == 1  # never none


def test_a_damaged_probe_is_a_clear_error_naming_the_file(probed_onnx):
    card = read_card(probed_onnx)
    data = json.loads(json.dumps(card.extra["probe"]))
    data["inputs"]["data"] = data["inputs"]["data"][:-40] + "!!!!"
    with pytest.raises(ProbeError, match="broken.onnx"):
        Probe.from_dict(data, "broken.onnx")


@pytest.mark.skipif(not DEMO.is_file(), reason="demo model not built")
def test_the_bundled_demo_model_carries_a_probe_within_5_percent_of_its_size():
    card = read_card(DEMO)
    probe = probe_of(card)
    assert probe is not None and probe.windows == MAX_WINDOWS
    without = len(with_probe(card, None).to_json())
    assert len(card.to_json()) - without <= 0.05 * DEMO.stat().st_size
    assert verify_file(DEMO, threads=2).passed


def test_card_show_summarises_the_probe_instead_of_printing_its_data(probed_onnx):
    shown = json.loads(show(probed_onnx))["extra"]["probe"]
    assert shown["windows"][0] >= 1 and shown["tolerance"] == FLOAT_TOLERANCE
    assert "data" not in json.dumps(shown)


# --- departure and tolerance -------------------------------------------------------------------


def test_departure_is_on_probabilities_and_a_broken_output_never_passes():
    logits = np.array([[10.0, -3.0, 0.0]], np.float32)
    assert departure(logits, logits + [[5.0, 0.0, 0.0]], "logits") < 1e-4  # saturated sigmoid
    assert departure(logits, logits + [[0.0, 0.0, 1.0]], "logits") == pytest.approx(0.2311, 1e-3)
    assert departure(logits, np.full_like(logits, np.nan), "logits") == np.inf
    assert departure(logits, logits[:, :2], "logits") == np.inf
    assert departure(np.array([[0.2]]), np.array([[0.5]]), "probabilities") == pytest.approx(0.3)


def test_a_quantized_tolerance_leaves_room_for_other_kernels_but_not_for_a_broken_file():
    assert lowered_tolerance(0.04, "int8") == pytest.approx(0.24)
    assert lowered_tolerance(0.9, "int8") == 0.5  # ceiling: a broken file departs by ~1
    assert lowered_tolerance(1e-4, "fp16 weights") == FLOAT_TOLERANCE


# --- checked where it runs ---------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_a_file_whose_weights_changed_after_its_card_was_written_fails_its_probe(
    probed_onnx, tmp_path, runtime
):
    bad = _tampered(probed_onnx, tmp_path / "changed.onnx")
    if runtime == "openvino":
        bad = convert_openvino(bad, tmp_path / "changed.xml", read_card(probed_onnx))
    check = verify_file(bad, threads=2)
    assert check.status == "failed" and check.departure > check.tolerance
    assert verify_file(probed_onnx, threads=2).passed


def test_a_file_without_a_probe_is_reported_as_unchecked(tiny_onnx):
    check = verify_file(tiny_onnx)
    assert check.status == "absent" and not check.passed
    assert "UNCHECKED" in check.line()


def _runs_bf16() -> bool:
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.mark.skipif(not DEMO.is_file(), reason="demo model not built")
@pytest.mark.skipif(not _runs_bf16(), reason="this CPU has no bf16: OpenVINO runs f32 anyway")
def test_openvino_without_the_f32_hint_on_a_bf16_cpu_is_caught(tmp_path):
    xml = convert_openvino(DEMO, tmp_path / "demo.xml", read_card(DEMO))
    backend = open_backend(xml, 1)
    assert check_backend(backend).passed  # as the backend compiles it: f32 pinned
    core = ov.Core()
    backend.compiled = core.compile_model(core.read_model(str(xml)), "CPU", {})  # default: bf16
    backend._local = type(backend._local)()
    check = check_backend(backend)
    assert check.status == "failed" and check.departure > 2 * FLOAT_TOLERANCE


def test_float_siblings_are_the_fp32_and_fp16_files_of_the_parent_stem(tmp_path, probed_onnx):
    card = read_card(probed_onnx)
    for name in ("m.xml", "m.ov-fp16.xml", "m.onnx", "m.ov-int8.xml"):
        (tmp_path / name).write_text("x")
    named = float_siblings(tmp_path / "m.ov-int8.xml", card)
    assert [p.name for p in named] == ["m.xml", "m.ov-fp16.xml", "m.onnx"]
    variant = with_probe(card, None)
    variant = type(variant)(**{**variant.__dict__, "extra": {"parent": {"file": "m.onnx"}}})
    assert [p.name for p in float_siblings(tmp_path / "other.ort-int8.onnx", variant)][0] == "m.xml"


# --- ISA caps ------------------------------------------------------------------------------------

PRIMITIVES = """
import collections, sys, openvino as ov
core = ov.Core()
compiled = core.compile_model(core.read_model(sys.argv[1]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
kinds = collections.Counter()
for op in compiled.get_runtime_model().get_ordered_ops():
    info = op.get_rt_info()
    if info["layerType"].astype(str) == "Convolution":
        kinds[info["primitiveType"].astype(str)] += 1
print(" ".join(sorted(kinds)))
"""


@pytest.mark.skipif("avx512f" not in cpu_info()["isa"], reason="no AVX-512 to cap")
def test_an_isa_capped_run_uses_avx2_convolutions_and_still_passes_its_probe(probed_onnx, tmp_path):
    xml = convert_openvino(probed_onnx, tmp_path / "probed.xml", read_card(probed_onnx))
    env = {"ONEDNN_MAX_CPU_ISA": "AVX2", "PATH": "/usr/bin:/bin"}
    native = subprocess.run([sys.executable, "-c", PRIMITIVES, str(xml)], capture_output=True)
    capped = subprocess.run(
        [sys.executable, "-c", PRIMITIVES, str(xml)], capture_output=True, env=env
    )
    assert "avx512" in native.stdout.decode()
    assert "avx2" in capped.stdout.decode() and "avx512" not in capped.stdout.decode()
    verify = subprocess.run(
        [sys.executable, "-m", "birdinfer", "verify", str(xml), "--threads", "2"],
        capture_output=True,
        env=env,
    )
    assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in verify.stdout.decode()


# --- birdinfer verify ----------------------------------------------------------------------------


def test_verify_prints_a_line_per_file_and_fails_when_one_fails(probed_onnx, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(probed_onnx, folder / "good.onnx")
    _tampered(probed_onnx, folder / "bad.onnx")
    assert main(["verify", str(folder / "good.onnx")]) == 0
    assert main(["verify", str(folder), "--threads", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "bad.onnx" in out and "ok " in out
    assert cpu_info()["model"] in out
    assert "2 files, 1 failed" in out


def test_verify_refuses_a_folder_without_models(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "no .onnx, .xml or .tflite" in capsys.readouterr().err


def test_card_set_stores_a_probe_that_verify_then_passes(tiny_onnx, tmp_path, capsys):
    path = shutil.copy(tiny_onnx, tmp_path / "carded.onnx")
    assert main(["card", "set", str(path), "--arch", "renamed"]) == 0
    card = read_card(path)
    assert card.arch == "renamed" and probe_of(card) is not None
    assert CARD_KEY in {p.key for p in onnx.load(str(path)).metadata_props}
    assert main(["verify", str(path)]) == 0
    # A second card set that leaves the input alone keeps the probe as it was.
    before = card.extra["probe"]
    assert main(["card", "set", str(path), "--arch", "again"]) == 0
    assert read_card(path).extra["probe"] == before
