"""Export: checkpoints in, self-describing ONNX and OpenVINO out, matching torch (needs_torch:
the [export] extra)."""

import numpy as np
import pytest

from birdinfer.cli import main
from birdinfer.models import CARD_KEY, ModelCard, open_backend
from birdinfer.models.export import (
    ExportError,
    build_model,
    export,
    extract_state_dict,
    load_checkpoint,
    make_card,
    read_class_names,
)
from tests.helpers import DEMO_CODES, TEST_MEL, export_tiny_model, loud_model


@pytest.mark.needs_torch
def test_onnx_file_describes_itself(timm_onnx):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(timm_onnx)).metadata_props}
    card = ModelCard.from_json(props[CARD_KEY])
    assert card.class_names == tuple(DEMO_CODES)
    assert card.arch == "test_efficientnet"
    assert (card.sample_rate, card.window_seconds, card.mel) == (32000, 5.0, TEST_MEL)
    assert card.input_shape == (1, 64, 501)


@pytest.mark.needs_torch
def test_onnx_and_openvino_match_torch_within_1e4(tmp_path):
    import torch

    model = loud_model("test_efficientnet", num_classes=5, seed=1)
    card = make_card("test_efficientnet", list("abcde"), TEST_MEL, 5.0)
    result = export(model, card, tmp_path / "m.onnx")
    assert result.onnx_max_abs_diff < 1e-4 and result.openvino_max_abs_diff < 1e-4
    x = np.random.default_rng(2).standard_normal((4, 1, 64, 501)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(expected).max() > 1.0  # a parity check on near-zero outputs would prove nothing
    for path in (result.onnx_path, result.openvino_path):
        np.testing.assert_allclose(open_backend(path)(x), expected, atol=1e-4)


@pytest.mark.needs_torch
def test_parity_failure_is_reported(tmp_path):
    model = build_model("test_efficientnet", num_classes=3)
    card = make_card("test_efficientnet", list("abc"), TEST_MEL, 5.0)
    with pytest.raises(ExportError, match="differs from torch"):
        export(model.eval(), card, tmp_path / "m.onnx", tolerance=-1.0)


def _saved(tmp_path, state):
    import torch

    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    return path


@pytest.mark.needs_torch
@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module_prefix", "model_prefix"])
def test_checkpoint_layouts_load(tmp_path, wrap):
    import torch

    source = build_model("test_efficientnet", num_classes=4)
    state = source.state_dict()
    if wrap == "state_dict":
        state = {"state_dict": state, "epoch": 3}
    elif wrap == "model":
        state = {"model": state, "optimizer": {}}
    elif wrap == "module_prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    elif wrap == "model_prefix":
        state = {"state_dict": {f"model.{k}": v for k, v in state.items()}}
    target = build_model("test_efficientnet", num_classes=4)
    load_checkpoint(target, _saved(tmp_path, state))
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


@pytest.mark.needs_torch
def test_checkpoint_mismatch_lists_missing_and_unexpected_keys(tmp_path):
    import torch

    state = build_model("test_efficientnet", num_classes=4).state_dict()
    state.pop("classifier.weight")
    state["extra.head.weight"] = torch.zeros(1)
    target = build_model("test_efficientnet", num_classes=4)
    with pytest.raises(ExportError, match=r"missing keys \(1\): classifier.weight") as info:
        load_checkpoint(target, _saved(tmp_path, state))
    assert "unexpected keys (1): extra.head.weight" in str(info.value)


@pytest.mark.needs_torch
def test_checkpoint_with_wrong_class_count_is_refused(tmp_path):
    state = build_model("test_efficientnet", num_classes=4).state_dict()
    with pytest.raises(ExportError, match="does not fit"):
        load_checkpoint(build_model("test_efficientnet", num_classes=9), _saved(tmp_path, state))


class Payload:
    """Not a tensor: weights_only=True must refuse to unpickle it."""


@pytest.mark.needs_torch
def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    path = _saved(tmp_path, {"state_dict": {}, "obj": Payload()})
    with pytest.raises(ExportError, match="cannot load checkpoint"):
        load_checkpoint(build_model("test_efficientnet", num_classes=4), path)


def test_extract_state_dict_refuses_non_mappings():
    with pytest.raises(ExportError):
        extract_state_dict([1, 2, 3])


@pytest.mark.needs_torch
def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ExportError, match="no_such_net"):
        build_model("no_such_net", num_classes=3)


def test_class_names_from_sample_submission_taxonomy_and_text(tmp_path):
    (tmp_path / "sample_submission.csv").write_text("row_id,1139490,abc,41663\nx_5,0,0,0\n")
    (tmp_path / "taxonomy.csv").write_text("primary_label,common_name\n1139490,a\nabc,b\n")
    (tmp_path / "classes.txt").write_text("one\ntwo\n\n")
    assert read_class_names(tmp_path / "sample_submission.csv") == ["1139490", "abc", "41663"]
    assert read_class_names(tmp_path / "taxonomy.csv") == ["1139490", "abc"]
    assert read_class_names(tmp_path / "classes.txt") == ["one", "two"]


@pytest.mark.needs_torch
def test_export_command_writes_both_files(tmp_path, capsys):
    source = build_model("test_efficientnet", num_classes=3)
    checkpoint = _saved(tmp_path, {"state_dict": source.state_dict()})
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    code = main(
        [
            "export",
            "--arch",
            "test_efficientnet",
            "--classes",
            str(tmp_path / "classes.txt"),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "out" / "m.onnx"),
            "--set",
            "mel.n_mels=64",
            "-q",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "max abs diff vs torch" in out
    backend = open_backend(tmp_path / "out" / "m.xml")
    assert backend.card.mel.n_mels == 64 and backend.card.class_names == ("a", "b", "c")


@pytest.mark.needs_torch
def test_export_command_reports_a_bad_checkpoint(tmp_path, capsys):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    code = main(
        [
            "export",
            "--arch",
            "test_efficientnet",
            "--classes",
            str(tmp_path / "classes.txt"),
            "--checkpoint",
            str(tmp_path / "bad.pt"),
            "--out",
            str(tmp_path / "m.onnx"),
            "-q",
        ]
    )
    assert code == 2
    assert "bad.pt" in capsys.readouterr().err


@pytest.mark.needs_torch
@pytest.mark.parametrize("arch", ["test_nfnet", "test_convnext", "test_resnet"])
def test_other_architectures_export(tmp_path, arch):
    onnx_path = export_tiny_model(tmp_path, arch=arch)
    assert open_backend(onnx_path).card.arch == arch
