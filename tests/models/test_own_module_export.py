"""Export from the user's own code: factories, chosen outputs, and BatchNorm left in training."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from birdinfer.cli import main
from birdinfer.config import MelConfig
from birdinfer.models import CARD_KEY, OutputSpec, open_backend

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
from birdinfer.models.batchnorm import fix_training_batchnorm  # noqa: E402
from birdinfer.models.build import build_from_factory, load_factory  # noqa: E402
from birdinfer.models.export import ExportError, build_model, export, make_card  # noqa: E402

pytestmark = pytest.mark.slow

ZOO = Path(__file__).resolve().parent / "byom_zoo.py"
MEL = MelConfig(n_fft=1024, hop_length=512, n_mels=32, fmin=20, fmax=16000)
CLASSES = list("abcde")


def card(**kwargs):
    return make_card("own", CLASSES, MEL, 5.0, **kwargs)


# --- factories ---------------------------------------------------------------------------------


def test_factory_from_a_package_in_the_current_folder(tmp_path, monkeypatch):
    package = tmp_path / "byom_pkg_a"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        "import timm\n\n"
        "def build(num_classes, in_chans):\n"
        "    return timm.create_model('test_resnet', pretrained=False, num_classes=num_classes,\n"
        "                             in_chans=in_chans)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    model = build_from_factory("byom_pkg_a.nets:build", num_classes=5, in_chans=3)
    assert model.get_classifier().out_features == 5
    assert model.conv1[0].in_channels == 3


def test_factory_gets_only_the_arguments_it_takes(tmp_path):
    (tmp_path / "byom_fixed.py").write_text(
        "import timm\n\n"
        "def build():\n"
        "    return timm.create_model('test_resnet', pretrained=False, num_classes=4, in_chans=1)\n"
        "\n"
        "def anything(**kwargs):\n"
        "    return timm.create_model('test_resnet', pretrained=False, **kwargs)\n"
        "\n"
        "def not_a_module():\n"
        "    return 'resnet'\n"
    )
    spec = f"{tmp_path / 'byom_fixed.py'}"
    assert build_from_factory(f"{spec}:build", 9, 1).get_classifier().out_features == 4
    assert build_from_factory(f"{spec}:anything", 6, 1).get_classifier().out_features == 6
    with pytest.raises(ExportError, match="returned a str, not a torch.nn.Module"):
        build_from_factory(f"{spec}:not_a_module", 6, 1)
    with pytest.raises(ExportError, match="has no attribute 'missing'"):
        load_factory(f"{spec}:missing")


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("byom_zoo", "expected package.module:function"),
        ("no_such_module_anywhere:build", "cannot import no_such_module_anywhere"),
        ("/no/such/file.py:build", "no file /no/such/file.py"),
    ],
)
def test_bad_factory_specs_say_what_is_wrong(spec, problem):
    with pytest.raises(ExportError, match=problem):
        load_factory(spec)


def test_export_command_needs_arch_or_factory(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", "--classes", "c.txt", "--out", str(tmp_path / "m.onnx")])
    assert info.value.code == 2
    assert "one of the arguments --arch --factory is required" in capsys.readouterr().err


# --- outputs -----------------------------------------------------------------------------------


class LogitsAndEmbedding(torch.nn.Module):
    """Returns (logits, embedding): the embedding has no class axis."""

    def __init__(self) -> None:
        super().__init__()
        self.net = build_model("test_resnet", num_classes=0)
        self.head = torch.nn.Linear(self.net.num_features, len(CLASSES))

    def forward(self, x):
        embedding = self.net(x)
        return self.head(embedding), embedding


class ClassesFirstFrames(torch.nn.Module):
    """Frame-wise scores as (batch, classes, frames): the axes the card does not take."""

    def forward(self, x):
        return x[:, 0, : len(CLASSES), :16]


def test_every_output_must_have_a_class_axis_unless_chosen(tmp_path):
    model = LogitsAndEmbedding()
    with pytest.raises(
        ExportError, match=r"output 'output_1' has shape \(2, \d+\).*--graph-output"
    ):
        export(model, card(), tmp_path / "m.onnx", openvino=False)
    result = export(model, card(outputs=["0"]), tmp_path / "m.onnx", openvino=False)
    assert result.card.outputs == (OutputSpec("output_0", "logits", "clipwise"),)
    assert open_backend(tmp_path / "m.onnx")(
        np.zeros((3, *result.card.input_shape), "f4")
    ).shape == (3, 5)


def test_unknown_output_names_list_what_the_model_returns(tmp_path):
    model = load_factory(f"{ZOO}:sed")(len(CLASSES))
    with pytest.raises(
        ExportError, match=r"output 'clip': the model returns \['clipwise', 'framewise', 'logit'\]"
    ):
        export(model, card(outputs=["clip"]), tmp_path / "m.onnx", openvino=False)


def test_frames_on_the_wrong_axis_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ExportError, match=r"must be \(batch, frames, classes\).*transpose"):
        export(ClassesFirstFrames(), card(), tmp_path / "m.onnx", openvino=False)


def test_a_lone_probabilities_output_is_named_for_what_it_holds(tmp_path, caplog):
    model = torch.nn.Sequential(build_model("test_resnet", len(CLASSES)), torch.nn.Sigmoid())
    with caplog.at_level(logging.WARNING, logger="birdinfer.models.export"):
        plain = export(model, card(), tmp_path / "a.onnx", openvino=False)
    assert plain.card.outputs == (OutputSpec("logits", "logits", "clipwise"),)
    assert "stays within [0, 1]" in caplog.text  # a hint that this is not what it holds
    caplog.clear()
    marked = export(model, card(outputs=["0:probabilities"]), tmp_path / "b.onnx", openvino=False)
    assert marked.card.outputs == (OutputSpec("probabilities", "probabilities", "clipwise"),)
    assert marked.card.output == "probabilities"
    assert "stays within" not in caplog.text
    named = export(
        model, card(outputs=["scores:probabilities"]), tmp_path / "c.onnx", openvino=False
    )
    assert named.card.outputs == (OutputSpec("scores", "probabilities", "clipwise"),)
    with pytest.raises(ExportError, match="chosen more than once"):
        export(model, card(outputs=["0", "scores"]), tmp_path / "d.onnx", openvino=False)


def test_export_command_chooses_outputs_by_name_and_index(tmp_path, capsys):
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    code = main(
        [
            "export",
            "--factory",
            f"{ZOO}:sed",
            "--classes",
            str(tmp_path / "classes.txt"),
            "--graph-output",
            "framewise:probabilities",
            "--graph-output",
            "2",
            "--out",
            str(tmp_path / "sed.onnx"),
            "--set",
            "mel.n_mels=32",
            "-q",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "output framewise: framewise, holds probabilities" in printed
    assert "output logit: clipwise, holds logits" in printed
    for suffix in (".onnx", ".xml"):
        backend = open_backend((tmp_path / "sed").with_suffix(suffix))
        assert [o.name for o in backend.card.outputs] == ["framewise", "logit"]
        frames = backend(np.zeros((2, *backend.card.input_shape), "f4"))
        assert frames.ndim == 3 and frames.shape[::2] == (2, len(CLASSES))
        logit = open_backend(backend.path, output="logit")
        assert logit(np.zeros((2, *backend.card.input_shape), "f4")).shape == (2, len(CLASSES))


def test_a_constant_may_not_take_the_features_name(tmp_path):
    model = load_factory(f"{ZOO}:shift_input")(len(CLASSES))
    with pytest.raises(ExportError, match="may not be called 'mel'"):
        export(model, card(input_constants={"mel": 0.0}), tmp_path / "m.onnx")


# --- BatchNormalization in training mode --------------------------------------------------------


def training_mode_onnx(path: Path):
    """A model exported in training mode, carrying a card, as a notebook might have made it."""
    import onnx

    torch.manual_seed(0)
    model = build_model("test_resnet", num_classes=len(CLASSES))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    exported = card(outputs=[OutputSpec("logits", "logits", "clipwise")])
    x = torch.zeros((2, *exported.input_shape))
    torch.onnx.export(
        model.train(),
        (x,),
        str(path),
        input_names=["mel"],
        output_names=["logits"],
        dynamic_axes={"mel": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
        training=torch.onnx.TrainingMode.TRAINING,
    )
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {CARD_KEY: exported.to_json()})
    onnx.save(proto, str(path))
    return model.eval(), proto


def training_nodes(proto) -> int:
    return sum(
        a.name == "training_mode" and a.i == 1
        for node in proto.graph.node
        if node.op_type == "BatchNormalization"
        for a in node.attribute
    )


def probe(n: int) -> np.ndarray:
    shape = (n, 1, MEL.n_mels, MEL.frames_for(160000))
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def test_training_mode_batchnorm_is_fixed_in_the_graph(tmp_path):
    import onnx
    import onnxruntime as ort

    model, proto = training_mode_onnx(tmp_path / "train.onnx")
    assert training_nodes(proto) > 0
    x = probe(4)
    raw = ort.InferenceSession(str(tmp_path / "train.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    # As exported, ONNX Runtime normalises by the batch's statistics: not what eval() computes.
    assert np.abs(raw.run(None, {"mel": x})[0] - expected).max() > 1e-2
    fixed = fix_training_batchnorm(proto)
    assert len(fixed) > 0 and training_nodes(proto) == 0
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"mel": x})[0], expected, atol=1e-4)


def test_training_mode_batchnorm_is_fixed_at_load(tmp_path, caplog):
    model, _ = training_mode_onnx(tmp_path / "train.onnx")
    with caplog.at_level(logging.WARNING, logger="birdinfer.models.batchnorm"):
        backend = open_backend(tmp_path / "train.onnx")
    assert "exported in training mode" in caplog.text
    x = probe(4)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(backend(x), expected, atol=1e-4)
    np.testing.assert_allclose(backend(x[:1]), backend(x)[:1], atol=1e-5)  # batch-independent


def test_training_mode_batchnorm_is_fixed_at_export(tmp_path, monkeypatch):
    import onnx

    real_export = torch.onnx.export

    def in_training_mode(*args, **kwargs):  # what a wrapper left in train() gives
        return real_export(*args, **{**kwargs, "training": torch.onnx.TrainingMode.TRAINING})

    monkeypatch.setattr(torch.onnx, "export", in_training_mode)
    model = build_model("test_resnet", num_classes=len(CLASSES))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            # A trace in training mode would also update the running statistics by 10% towards
            # the probe batch's; frozen here, so that only the graph's mode is under test.
            module.momentum = 0.0
    result = export(model, card(), tmp_path / "m.onnx")
    proto = onnx.load(str(result.onnx_path))
    assert any(n.op_type == "BatchNormalization" for n in proto.graph.node)
    assert training_nodes(proto) == 0
    assert result.onnx_max_abs_diff <= 1e-4 and result.openvino_max_abs_diff <= 1e-4
