"""Checkpoints as training code writes them: where the weights sit, their key prefixes, and
what a weights-only load refuses."""

from __future__ import annotations

import argparse

import pytest

from birdinfer.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
from birdinfer.models.checkpoint import (  # noqa: E402
    extract_state_dict,
    load_checkpoint,
    read_checkpoint,
    rename_keys,
)
from birdinfer.models.export import ExportError, build_model  # noqa: E402

pytestmark = pytest.mark.slow

ARCH = "test_resnet"


def fresh(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ARCH, num_classes=3)


def saved(tmp_path, payload, name="ckpt.pt"):
    path = tmp_path / name
    torch.save(payload, path)
    return path


def prefixed(state, prefix):
    return {prefix + k: v for k, v in state.items()}


def renamed(key, old, new):
    return new + key[len(old) :] if key.startswith(old) else key


def assert_same_weights(model, state):
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key


LAYOUTS = {
    "under state_dict": lambda s: {"state_dict": s, "epoch": 3},
    "under model": lambda s: {"model": s, "optimizer": {"lr": 0.1}},
    "under model_state_dict": lambda s: {"model_state_dict": s, "epoch": 1},
    "EMA under ema": lambda s: {"ema": prefixed(s, "module.")},
    "EMA under state_dict_ema": lambda s: {"state_dict_ema": s},
    "Lightning": lambda s: {
        "state_dict": prefixed(s, "model."),
        "epoch": 9,
        "global_step": 1200,
        "pytorch-lightning_version": "2.4.0",
        "hyper_parameters": {"lr": 1e-3, "backbone": ARCH},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
        "lr_schedulers": [],
        "callbacks": {},
    },
    "DDP prefix": lambda s: prefixed(s, "module."),
    "torch.compile prefix": lambda s: {"state_dict": prefixed(s, "_orig_mod.")},
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_checkpoint_layouts_load(tmp_path, layout):
    trained = fresh(seed=1).state_dict()
    target = fresh(seed=2)
    assert not torch.equal(target.state_dict()["fc.weight"], trained["fc.weight"])
    load_checkpoint(target, saved(tmp_path, LAYOUTS[layout](trained)))
    assert_same_weights(target, trained)


def test_training_weights_come_before_the_ema_copy_unless_the_key_is_named(tmp_path):
    weights, ema = fresh(seed=1).state_dict(), fresh(seed=3).state_dict()
    path = saved(tmp_path, {"state_dict": weights, "state_dict_ema": ema})
    target = fresh()
    load_checkpoint(target, path)
    assert_same_weights(target, weights)
    load_checkpoint(target, path, key="state_dict_ema")
    assert_same_weights(target, ema)
    with pytest.raises(ExportError, match=r"no 'ema'.*state_dict_ema"):
        load_checkpoint(target, path, key="ema")


def test_a_wrappers_own_model_attribute_keeps_its_prefix():
    """`model.` is stripped only where that makes more keys fit: a module whose attribute is
    called `model` keeps its keys."""
    wrapper = torch.nn.Module()
    wrapper.model = fresh()
    own = list(wrapper.state_dict())
    assert set(rename_keys(wrapper.state_dict(), own)) == set(own)
    lightning = prefixed(wrapper.state_dict(), "model.")  # a LightningModule around it
    assert set(rename_keys(lightning, own)) == set(own)


def test_strip_prefix_keeps_only_the_keys_under_it(tmp_path):
    trained = fresh(seed=1).state_dict()
    state = {**prefixed(trained, "backbone."), "criterion.pos_weight": torch.ones(3)}
    path = saved(tmp_path, {"state_dict": state})
    with pytest.raises(ExportError, match=r"(?s)missing keys \(92\).*unexpected keys \(93\)"):
        load_checkpoint(fresh(), path)
    target = fresh()
    load_checkpoint(target, path, strip_prefix="backbone.")
    assert_same_weights(target, trained)
    with pytest.raises(ExportError, match="no checkpoint key starts with 'head.'"):
        load_checkpoint(target, path, strip_prefix="head.")


def test_remap_renames_a_heads_keys(tmp_path):
    trained = fresh(seed=1).state_dict()
    state = {renamed(k, "fc.", "classifier."): v for k, v in trained.items()}
    path = saved(tmp_path, state)
    with pytest.raises(
        ExportError, match="unexpected keys \\(2\\): classifier.bias, classifier.weight"
    ):
        load_checkpoint(fresh(), path)
    target = fresh()
    load_checkpoint(target, path, remap=[("classifier.", "fc.")])
    assert_same_weights(target, trained)


def test_a_pickled_config_is_refused_by_name_unless_trusted(tmp_path):
    trained = fresh(seed=1).state_dict()
    config = argparse.Namespace(arch=ARCH, lr=1e-3)
    path = saved(tmp_path, {"state_dict": trained, "config": config})
    with pytest.raises(ExportError, match=r"argparse\.Namespace.*--trust-checkpoint"):
        read_checkpoint(path)
    target = fresh()
    load_checkpoint(target, path, trust=True)
    assert_same_weights(target, trained)


def test_a_whole_pickled_module_loads_when_trusted(tmp_path):
    module = fresh(seed=1)
    path = saved(tmp_path, module)
    with pytest.raises(ExportError, match="ResNet"):
        read_checkpoint(path)
    assert (
        extract_state_dict(read_checkpoint(path, trust=True)).keys() == module.state_dict().keys()
    )


def export_args(tmp_path, checkpoint, *flags):
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    return [
        "export",
        "--arch",
        ARCH,
        "--classes",
        str(tmp_path / "classes.txt"),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(tmp_path / "m.onnx"),
        "--no-openvino",
        "--set",
        "mel.n_mels=32",
        *flags,
        "-q",
    ]


def test_export_command_refuses_then_trusts_a_pickled_config(tmp_path, capsys):
    path = saved(tmp_path, {"state_dict": fresh().state_dict(), "cfg": argparse.Namespace(a=1)})
    assert main(export_args(tmp_path, path)) == 2
    err = capsys.readouterr().err
    assert "argparse.Namespace" in err and "--trust-checkpoint" in err
    assert not (tmp_path / "m.onnx").exists()
    assert main(export_args(tmp_path, path, "--trust-checkpoint")) == 0
    assert (tmp_path / "m.onnx").is_file()


def test_trust_checkpoint_help_says_why_it_is_a_risk(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--trust-checkpoint" in help_text
    assert "Unpickling runs code stored in the file" in help_text


def test_export_command_strips_and_remaps(tmp_path):
    trained = fresh(seed=1).state_dict()
    state = prefixed({renamed(k, "fc.", "head."): v for k, v in trained.items()}, "backbone.")
    path = saved(tmp_path, {"model": state})
    flags = ("--strip-prefix", "backbone.", "--remap", "head.=fc.")
    assert main(export_args(tmp_path, path, *flags)) == 0
    assert main(export_args(tmp_path, path, "--remap", "head-fc")) == 2
