"""`birdinfer export` against hostile use (issue 21): a remap that collides, outputs chosen by
position, class names no submission can carry, a failed or interrupted export, and the
refusals that must say what to do."""

from __future__ import annotations

import argparse
import pickle
import tempfile

import numpy as np
import pytest

from birdinfer.cli import main
from birdinfer.models import open_backend

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
from birdinfer.models import export as export_module  # noqa: E402
from birdinfer.models.export import ExportError, build_model, export, make_card  # noqa: E402
from tests.helpers import TEST_MEL  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.needs_torch]

ARCH = "test_resnet"
CLASSES = list("abc")


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ARCH, num_classes=len(CLASSES))


def export_args(tmp_path, *flags, out="m.onnx"):
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return [
        "export",
        "--arch",
        ARCH,
        "--classes",
        str(tmp_path / "classes.txt"),
        "--out",
        str(tmp_path / out),
        "--set",
        "mel.n_mels=32",
        *flags,
        "-q",
    ]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


# --- point 3: a remap that collides is refused --------------------------------------------------


def test_a_remap_onto_keys_the_checkpoint_already_has_is_refused(tmp_path, capsys):
    trained, stale = fresh(seed=1).state_dict(), fresh(seed=2).state_dict()
    state = {("classifier." + k[3:] if k.startswith("fc.") else k): v for k, v in trained.items()}
    state |= {k: v for k, v in stale.items() if k.startswith("fc.")}  # the old head's weights
    torch.save(state, tmp_path / "ckpt.pt")
    args = export_args(tmp_path, "--checkpoint", str(tmp_path / "ckpt.pt"), "--no-openvino")
    assert main([*args, "--remap", "classifier.=fc."]) == 2
    err = one_line_error(capsys)
    assert "--remap classifier.=fc.: the checkpoint already holds 2 of the renamed keys" in err
    assert "fc.bias, fc.weight" in err
    assert not (tmp_path / "m.onnx").exists()


# --- point 13: refused checkpoints name --trust-checkpoint ---------------------------------------


def test_a_refused_legacy_checkpoint_names_trust_checkpoint(tmp_path, capsys):
    payload = {"state_dict": fresh().state_dict(), "config": argparse.Namespace(lr=1e-3)}
    path = tmp_path / "ckpt.pt"
    torch.save(payload, path, _use_new_zipfile_serialization=False)
    args = export_args(tmp_path, "--checkpoint", str(path), "--no-openvino")
    assert main(args) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"error: {path}: cannot load checkpoint: it is pickled objects")
    assert "--trust-checkpoint" in err
    assert main([*args, "--trust-checkpoint"]) == 0


def test_a_raw_pickle_is_named_as_one_with_what_to_do(tmp_path, capsys):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(pickle.dumps({"state_dict": fresh().state_dict()}))
    args = export_args(tmp_path, "--checkpoint", str(path), "--no-openvino")
    for trust in ((), ("--trust-checkpoint",)):
        assert main([*args, *trust]) == 2
        err = one_line_error(capsys)
        assert err.startswith(f"error: {path}: cannot load checkpoint: it is a plain pickle")
        assert "--trust-checkpoint" in err and "torch.save(model.state_dict()" in err


def test_factory_help_says_it_runs_the_users_code(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "This imports that module and runs its code" in help_text


# --- point 5 and 13: an index is a position in what the module returns -------------------------


class WithAHole(torch.nn.Module):
    """Returns (logits, None, 2 * logits), as a model with an optional auxiliary head does."""

    def __init__(self) -> None:
        super().__init__()
        self.net = fresh(seed=3)

    def forward(self, x):
        logits = self.net(x)
        return logits, None, 2.0 * logits


def test_an_output_index_is_the_position_in_what_the_module_returns(tmp_path):
    model = WithAHole().eval()
    card = make_card(ARCH, CLASSES, TEST_MEL, 5.0, outputs=["2"])
    result = export(model, card, tmp_path / "m.onnx", openvino=False)
    assert [o.name for o in result.card.outputs] == ["output_2"]
    x = np.random.default_rng(0).standard_normal((2, *card.input_shape)).astype(np.float32)
    with torch.no_grad():
        doubled = model(torch.from_numpy(x))[2].numpy()
    np.testing.assert_allclose(open_backend(result.onnx_path)(x), doubled, atol=1e-4)
    with pytest.raises(ExportError, match=r"output '1': the model returns no tensor there"):
        export(model, make_card(ARCH, CLASSES, TEST_MEL, 5.0, outputs=["1"]), tmp_path / "n.onnx")
    with pytest.raises(ExportError, match=r"output 3: the model returns 3 value\(s\)"):
        export(model, make_card(ARCH, CLASSES, TEST_MEL, 5.0, outputs=["3"]), tmp_path / "n.onnx")
    assert not (tmp_path / "n.onnx").exists()


def test_an_index_past_a_lone_tensor_is_refused(tmp_path, capsys):
    assert main(export_args(tmp_path, "--graph-output", "1", "--no-openvino")) == 2
    assert "output 1: the model returns 1 value(s)" in one_line_error(capsys)


def test_out_must_name_an_onnx_file(tmp_path, capsys):
    assert main(export_args(tmp_path, out="m.xml")) == 2
    assert one_line_error(capsys).startswith(f"error: {tmp_path / 'm.xml'}: --out must name an")
    assert list(tmp_path.iterdir()) == [tmp_path / "classes.txt"]


# --- point 4: class names are checked when written ----------------------------------------------


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["a", "", "c"], "lists an empty class name (at position 1)"),
        (["a", "b\rx", "c"], "lists the class name 'b\\rx', which holds the control character"),
        (["a", "b", "a"], "lists class names more than once: 'a'"),
    ],
)
def test_export_refuses_class_names_a_submission_cannot_carry(names, problem):
    with pytest.raises(ExportError) as refused:
        make_card(ARCH, names, TEST_MEL, 5.0)
    assert str(refused.value).startswith(f"the class list {problem}")


def test_export_command_refuses_an_empty_class_name_in_a_sample_submission(tmp_path, capsys):
    args = export_args(tmp_path, "--no-openvino")
    (tmp_path / "sample_submission.csv").write_text("row_id,a,,c\n")
    args[args.index("--classes") + 1] = str(tmp_path / "sample_submission.csv")
    assert main(args) == 2
    assert "the class list lists an empty class name" in one_line_error(capsys)


# --- point 7: a failed or interrupted export leaves the old files and no temporary file --------


@pytest.fixture
def old_export(tmp_path, monkeypatch):
    """A good export in place (ONNX and IR), with every temporary folder inside tmp_path."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "out"
    out.mkdir()
    export(fresh(seed=1).eval(), make_card(ARCH, CLASSES, TEST_MEL, 5.0), out / "m.onnx")
    return out


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("openvino", [False, True])
def test_a_failed_parity_check_leaves_the_old_files(old_export, tmp_path, openvino):
    before = snapshot(old_export)
    assert sorted(before) == ["m.bin", "m.onnx", "m.xml"]
    card = make_card(ARCH, CLASSES, TEST_MEL, 5.0)
    with pytest.raises(ExportError, match="differs from torch by .* \\(nothing written\\)"):
        export(fresh(seed=2).eval(), card, old_export / "m.onnx", openvino, tolerance=-1.0)
    assert snapshot(old_export) == before
    assert list((tmp_path / "scratch").iterdir()) == []


def test_an_openvino_parity_failure_leaves_the_old_onnx_too(old_export, tmp_path, monkeypatch):
    before = snapshot(old_export)
    real = export_module._run_openvino
    monkeypatch.setattr(
        export_module, "_run_openvino", lambda path, prepared: [x + 1 for x in real(path, prepared)]
    )
    with pytest.raises(ExportError, match=r"m\.xml: OpenVINO output differs"):
        export(fresh(seed=2).eval(), make_card(ARCH, CLASSES, TEST_MEL, 5.0), old_export / "m.onnx")
    assert snapshot(old_export) == before
    assert list((tmp_path / "scratch").iterdir()) == []


def test_an_interrupted_export_leaves_the_old_files(old_export, tmp_path, monkeypatch):
    before = snapshot(old_export)

    def interrupted(path, prepared):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "_run_openvino", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(fresh(seed=2).eval(), make_card(ARCH, CLASSES, TEST_MEL, 5.0), old_export / "m.onnx")
    assert snapshot(old_export) == before
    assert list((tmp_path / "scratch").iterdir()) == []


def test_a_good_export_replaces_the_files_and_keeps_their_mode(old_export):
    before = snapshot(old_export)
    (old_export / "m.onnx").chmod(0o444)
    result = export(
        fresh(seed=2).eval(), make_card(ARCH, CLASSES, TEST_MEL, 5.0), old_export / "m.onnx"
    )
    after = snapshot(old_export)
    assert sorted(after) == ["m.bin", "m.onnx", "m.xml"]
    assert after["m.onnx"] != before["m.onnx"] and after["m.bin"] != before["m.bin"]
    assert (old_export / "m.onnx").stat().st_mode & 0o7777 == 0o444
    assert result.openvino_max_abs_diff < 1e-4
