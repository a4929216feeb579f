"""The one home of model files (birdinfer.models.files): built-in names come from a registry the
tools fill, an OpenVINO IR is put in place whole even when the writer is killed, every session a
tool opens has the house settings, and no module outside the home opens a session or writes a
model file."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

from birdinfer.errors import ModelError
from birdinfer.models import build_card, open_backend, read_card, register_builtin
from birdinfer.models import export as export_module
from birdinfer.models import resolve_model_path as resolve
from tests.helpers import REPO

PACKAGE = REPO / "birdinfer"
HOME = PACKAGE / "models" / "files"
# It imitates another team's recipe call for call, on purpose (a benchmark's peer).
IMITATION = PACKAGE / "bench" / "peer_pipelines.py"
# Runtime calls that open a session or write a model file.
OPENS = {"InferenceSession", "compile_model", "read_model", "Interpreter", "save_model"}


def runtime_calls(source: str) -> list[str]:
    """Calls in `source` that open a session or write a model file (`onnx.save` included)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = getattr(getattr(func, "value", None), "id", None)
        if name in OPENS or (owner == "onnx" and name == "save"):
            found.append(name if owner is None else f"{owner}.{name}")
    return found


def test_no_module_outside_the_home_opens_a_session_or_writes_a_model_file():
    found = [
        f"{path.relative_to(REPO)}: {call}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if HOME not in path.parents and path != IMITATION
        for call in runtime_calls(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_session_check_sees_planted_sessions_and_writes():
    planted = """
        import onnx, onnxruntime as ort, openvino as ov
        ort.InferenceSession("m.onnx", providers=["CPUExecutionProvider"])
        ov.Core().compile_model("m.xml", "CPU")
        onnx.save(proto, "m.onnx")
        frame.save("x")
    """
    calls = runtime_calls(textwrap.dedent(planted))
    assert calls == ["ort.InferenceSession", "compile_model", "onnx.save"]


def test_a_builtin_name_resolves_through_the_registry(tmp_path):
    register_builtin("test-files-model", tmp_path / "m.onnx")
    assert resolve("builtin:test-files-model") == tmp_path / "m.onnx"
    with pytest.raises(ModelError, match="no built-in model 'nothing'.*'demo'"):
        resolve("builtin:nothing")


def test_the_core_names_no_tools_files():
    """The demo registers its model; no core module spells the demo's folder or file."""
    core = ("audio", "frontend", "models", "output", "scoring", "inference")
    found = []
    for unit in core:
        for path in sorted((PACKAGE / unit).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                text = node.value if isinstance(node, ast.Constant) else None
                if isinstance(text, str) and text in ("demo", "assets", "demo_model.onnx"):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {text!r}")
    assert found == []


@pytest.fixture
def compile_configs(monkeypatch):
    """The config of every OpenVINO compile_model call, recorded."""
    import openvino

    real, seen = openvino.Core, []

    class Recording:
        def __init__(self) -> None:
            self._core = real()

        def __getattr__(self, name):
            return getattr(self._core, name)

        def compile_model(self, model, device="CPU", config=None):
            seen.append(dict(config or {}))
            return self._core.compile_model(model, device, config or {})

    monkeypatch.setattr(openvino, "Core", Recording)
    return seen


@pytest.fixture
def session_options(monkeypatch):
    """The SessionOptions of every onnxruntime InferenceSession, recorded."""
    import onnxruntime

    real, seen = onnxruntime.InferenceSession, []

    def recording(source, sess_options=None, providers=None, **kwargs):
        seen.append(sess_options)
        return real(source, sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", recording)
    return seen


def test_openvino_sessions_of_the_card_tool_and_export_are_pinned_to_f32(tiny_xml, compile_configs):
    backend = open_backend(tiny_xml)
    build_card(tiny_xml, outputs=[f"{backend.output.name}:logits"])  # a forward pass
    zeros = np.zeros((1, *backend.card.input_shape), np.float32)
    export_module._run_openvino(tiny_xml, SimpleNamespace(inputs=[zeros]))
    assert len(compile_configs) == 3
    assert [c.get("INFERENCE_PRECISION_HINT") for c in compile_configs] == ["f32"] * 3


def test_onnxruntime_sessions_of_the_tools_do_not_spin(tiny_onnx, session_options):
    backend = open_backend(tiny_onnx)
    read_card(tiny_onnx)
    build_card(tiny_onnx, outputs=[f"{backend.output.name}:logits"])
    zeros = np.zeros((1, *backend.card.input_shape), np.float32)
    prepared = SimpleNamespace(inputs=[zeros], input_names=[backend.input_name])
    export_module._run_onnxruntime(tiny_onnx, prepared)
    assert len(session_options) >= 4
    assert all(o is not None for o in session_options)
    spinning = {
        o.get_session_config_entry("session.intra_op.allow_spinning") for o in session_options
    }
    assert spinning == {"0"}
    assert {o.intra_op_num_threads for o in session_options} == {1}


KILLED_CONVERSION = """
import os, signal, sys
import openvino as ov
from birdinfer.models import open_backend
from birdinfer.models.export import convert_openvino

def save_half_then_die(model, path, compress_to_fp16=True):
    with open(path, "w") as handle:
        handle.write("<?xml half an IR")
    os.kill(os.getpid(), signal.SIGKILL)

ov.save_model = save_half_then_die
convert_openvino(sys.argv[1], sys.argv[2], open_backend(sys.argv[1]).card)
"""


def test_a_killed_openvino_conversion_leaves_the_old_ir_and_nothing_beside_it(tiny_onnx, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    xml = folder / "model.xml"
    for suffix in (".xml", ".bin"):
        xml.with_suffix(suffix).write_bytes(tiny_onnx.with_suffix(suffix).read_bytes())
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    script = tmp_path / "killed.py"
    script.write_text(KILLED_CONVERSION)
    scratch = tmp_path / "tmp"  # the killed save's private folder stays here, not in /tmp
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, str(script), str(tiny_onnx), str(xml)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert any(p.name.startswith("birdinfer-ir-") for p in scratch.iterdir())  # a kill's leftover
