"""A torch module -> self-describing ONNX (and OpenVINO IR), checked against torch.

Needs the `[export]` extra (torch, timm, onnx); the inference path never imports this module.
Steps, as timm's own onnx_export: eval(), one forward pass, export with a dynamic batch axis,
onnx.checker, then a parity check of every exported output on ONNX Runtime (and OpenVINO).

The module may be anything that returns a tensor, a tuple or a dict of tensors (SED heads return
clip-wise and frame-wise outputs): the card names each exported output, says whether it holds
logits, probabilities or an embedding, and whether it is clip-wise (batch, classes) or frame-wise
(batch, frames, classes). Inputs beyond the features (a TTA shift, say) are fed the card's
constants. A waveform model (`make_waveform_card`: its mel inside the graph, or a foundation
model) takes raw audio, (batch, samples) or (batch, 1, samples). Every model is probed with
recording-like audio (or the user's), through the card's front end for a mel model.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from birdinfer.errors import first_line
from birdinfer.models.batchnorm import fix_training_batchnorm
from birdinfer.models.build import build_model
from birdinfer.models.card import ModelCard, OutputSpec, class_problem
from birdinfer.models.checkpoint import extract_state_dict, load_checkpoint
from birdinfer.models.files.card_io import onnx_with_card, write_openvino_card
from birdinfer.models.files.sessions import compile_openvino, onnxruntime_session
from birdinfer.models.files.write import check_writable_target, replace_files, write_onnx
from birdinfer.models.host import cpu_summary
from birdinfer.models.parity_probe import probe_features, worst_difference
from birdinfer.models.probe import (
    FLOAT_TOLERANCE,
    Probe,
    decode_inputs,
    encode_inputs,
    with_probe,
)
from birdinfer.models.stft_export import dynamo_export, openvino_from_torch, strip_node_metadata
from birdinfer.models.torch_support import ExportError, require_torch

__all__ = [
    "ExportError",
    "ExportResult",
    "build_model",
    "convert_openvino",
    "export",
    "export_onnx",
    "extract_state_dict",
    "load_checkpoint",
    "make_card",
    "make_waveform_card",
    "read_class_names",
]

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
INPUT_NAME, OUTPUT_NAME = "mel", "logits"
WAVEFORM_INPUT_NAME = "waveform"


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    openvino_path: Path | None
    onnx_max_abs_diff: float
    openvino_max_abs_diff: float | None
    # The card written into the files, with every output's name and layout filled in.
    card: ModelCard | None = None


@dataclass
class _Prepared:
    """The module ready to export: its chosen outputs as a flat tuple, the resolved card, and
    a probe input with torch's outputs for it."""

    module: Any
    card: ModelCard
    input_names: list[str]
    inputs: list[np.ndarray]
    expected: list[np.ndarray]


def make_card(
    arch: str,
    class_names: Sequence[str],
    mel,
    window_seconds: float,
    extra: dict | None = None,
    image=None,
    *,
    in_chans: int | None = None,
    outputs: Sequence[str | OutputSpec] = (),
    input_constants: Mapping[str, Any] | None = None,
) -> ModelCard:
    """The card for a model fed by `mel` (and `image` steps) over windows of `window_seconds`.

    `in_chans`: the model's input channels, when it differs from what the image steps make (the
    card then contradicts its own front end, and the model is refused at load with the reason).
    `outputs`: the outputs to export, as `NAME` or `NAME:probabilities` (a dict key, or an index
    into a tuple); none = every output, holding logits. `input_constants`: a value for each input
    after the features, in the order the module's forward takes them.
    """
    from birdinfer.config import ImageConfig
    from birdinfer.models.card import expected_input_shape

    image = image or ImageConfig()
    shape = expected_input_shape(mel, image, mel.sample_rate, window_seconds)
    if in_chans is not None:
        shape = (int(in_chans), *shape[1:])
    specs = _output_specs(outputs)
    return ModelCard(
        arch=arch,
        class_names=_class_names(class_names),
        sample_rate=mel.sample_rate,
        window_seconds=float(window_seconds),
        mel=mel,
        input_shape=shape,
        output=specs[0].holds if specs else "logits",
        extra=dict(extra or {}),
        image=image,
        outputs=specs,
        input_constants=dict(input_constants or {}),
    )


def make_waveform_card(
    arch: str,
    class_names: Sequence[str],
    sample_rate: int,
    window_seconds: float,
    extra: dict | None = None,
    *,
    channel_axis: bool = False,
    outputs: Sequence[str | OutputSpec] = (),
    input_constants: Mapping[str, Any] | None = None,
) -> ModelCard:
    """The card for a model that takes raw audio: `window_seconds` at `sample_rate`, shaped
    (batch, samples), or (batch, 1, samples) with `channel_axis`. Its front end is its own
    (inside the graph), so the card holds no mel settings. `outputs` as for `make_card`; name an
    embedding output `NAME:embedding` to write it into the per-window table."""
    from birdinfer.config import MelConfig
    from birdinfer.models.card import WAVEFORM_VERSION

    samples = round(sample_rate * window_seconds)
    specs = _output_specs(outputs)
    return ModelCard(
        arch=arch,
        class_names=_class_names(class_names),
        sample_rate=int(sample_rate),
        window_seconds=float(window_seconds),
        mel=MelConfig(sample_rate=int(sample_rate)),  # unused: to_json writes null
        input_shape=(1, samples) if channel_axis else (samples,),
        output=specs[0].holds if specs else "logits",
        version=WAVEFORM_VERSION,
        extra=dict(extra or {}),
        outputs=specs,
        input_constants=dict(input_constants or {}),
        input_kind="waveform",
    )


def _class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    """The names as the card holds them, refused here when no run could use them."""
    names = tuple(str(c) for c in class_names)
    problem = class_problem(names)
    if problem is not None:
        raise ExportError(f"the class list {problem}")
    return names


# --- outputs -----------------------------------------------------------------------------------


def _produced(result: Any, torch) -> list[tuple[str, Any, Any]]:
    """(name, how to pick it, tensor) for each value of one forward pass, in the order the
    module returns them; the tensor is None where the value is not one (a tuple's None)."""
    if isinstance(result, torch.Tensor):
        return [("", None, result)]
    if isinstance(result, Mapping):
        items = [(str(k), k, v) for k, v in result.items()]
    elif isinstance(result, (tuple, list)):
        items = [(f"output_{i}", i, v) for i, v in enumerate(result)]
    else:
        raise ExportError(f"the model returned a {type(result).__name__}, not tensors")
    return [(name, pick, v if isinstance(v, torch.Tensor) else None) for name, pick, v in items]


def _choose(card: ModelCard, produced: list[tuple[str, Any, Any]]) -> list[tuple[OutputSpec, Any]]:
    """The card's outputs matched to what the module returns, each with its final name. An
    index is a position in what the module returns (a tuple's, or a dict's in its order)."""
    tensors = [(name, tensor) for name, _, tensor in produced if tensor is not None]
    wanted = card.outputs or tuple(OutputSpec(name, card.output) for name, _ in tensors)
    names = [name for name, _, _ in produced]
    lone = names == [""]  # a plain tensor: whatever the card calls it, it is that tensor
    chosen = []
    for spec in wanted:
        if spec.name in names and spec.name:
            index = names.index(spec.name)
        elif spec.name.isdigit():
            index = int(spec.name)
            if index >= len(produced):
                raise ExportError(
                    f"output {spec.name}: the model returns {len(produced)} value(s) {names}, "
                    "counted from 0"
                )
        elif lone:
            index = 0
        else:
            raise ExportError(f"output '{spec.name}': the model returns {names}")
        name, pick, tensor = produced[index]
        if tensor is None:
            raise ExportError(
                f"output '{spec.name}': the model returns no tensor there "
                f"({name}, position {index} of {names})"
            )
        if lone:
            # Named as the card asks, else after what it holds: "logits" (as before exports
            # had it) or "probabilities".
            name = spec.name if spec.name and not spec.name.isdigit() else spec.holds
        chosen.append((dataclasses.replace(spec, name=name), pick, index))
    final = [spec.name for spec, _, _ in chosen]
    if len(set(final)) != len(final) or (lone and len(final) > 1):
        raise ExportError(f"outputs chosen more than once: {final}")
    return chosen


def _layout(spec: OutputSpec, shape: tuple[int, ...], batch: int, classes: int) -> str:
    if spec.holds == "embedding":
        if len(shape) == 2 and shape[0] == batch:
            return "clipwise"
        raise ExportError(
            f"output '{spec.name}' holds an embedding and has shape {shape}: an embedding must "
            f"be ({batch}, dims), one vector per window"
        )
    if len(shape) == 2 and shape == (batch, classes):
        return "clipwise"
    if len(shape) == 3 and shape[0] == batch and shape[2] == classes:
        return "framewise"
    if len(shape) == 3 and shape[1] == classes:
        advice = "frame-wise outputs must be (batch, frames, classes): return x.transpose(1, 2)"
    else:
        advice = "choose the outputs to export with --graph-output NAME (or the card's outputs)"
    raise ExportError(
        f"output '{spec.name}' has shape {shape}: neither clip-wise ({batch}, {classes}) nor "
        f"frame-wise ({batch}, frames, {classes}); {advice}"
    )


def _prepare(model, card: ModelCard, batch: int = 2, probe_audio: Path | None = None) -> _Prepared:
    torch, _ = require_torch()
    input_names = [WAVEFORM_INPUT_NAME if card.waveform else INPUT_NAME, *card.input_constants]
    if len(set(input_names)) != len(input_names):
        raise ExportError(f"a constant input may not be called '{input_names[0]}'")
    inputs = _example_inputs(card, batch, probe_audio)
    # The parity input is also the file's probe: taken as the probe stores it, so torch's
    # outputs for it are exactly the probe's expected outputs.
    probe_inputs = encode_inputs(inputs[0])
    inputs[0] = decode_inputs(probe_inputs)
    model = model.eval()
    try:
        with torch.no_grad():
            result = model(*(torch.from_numpy(x) for x in inputs))
    except Exception as exc:  # the module's own error: a shape or channel mismatch, mostly
        shapes = ", ".join(str(x.shape) for x in inputs)
        raise ExportError(f"the model fails on inputs of shapes {shapes}: {exc}") from exc
    produced = _produced(result, torch)
    specs, picks, expected = [], [], []
    for spec, pick, index in _choose(card, produced):
        tensor = produced[index][2]
        shape = tuple(tensor.shape)
        spec = dataclasses.replace(spec, layout=_layout(spec, shape, batch, card.num_classes))
        values = tensor.float().numpy()
        if spec.holds == "logits" and values.min() >= 0 and values.max() <= 1:
            log.warning(
                "output '%s' stays within [0, 1] on the probe input: if it holds "
                "probabilities, say %s:probabilities, or the run applies a sigmoid twice",
                spec.name,
                spec.name,
            )
        specs.append(spec)
        picks.append(pick)
        expected.append(values)
    # The version-1 field: what the first scoring output holds.
    holds = next((o.holds for o in specs if o.scores), "logits")
    resolved = dataclasses.replace(card, outputs=tuple(specs), output=holds)
    scored = {s.name: (s.holds, v) for s, v in zip(specs, expected, strict=True) if s.scores}
    probe = Probe(
        encoded_inputs=probe_inputs,
        expected={name: values for name, (_, values) in scored.items()},
        holds={name: holds for name, (holds, _) in scored.items()},
        tolerance=FLOAT_TOLERANCE,
        reference="torch module",
        made_on=cpu_summary(),
    )
    resolved = with_probe(resolved, probe)
    # The wrapper must be put in eval() itself: torch.onnx.export applies the top module's
    # training flag, and a fresh wrapper is in training mode (BatchNorm would then export in
    # training mode; see birdinfer.models.batchnorm).
    module = _picker(torch, model, picks).eval()
    return _Prepared(module, resolved, input_names, inputs, expected)


def _picker(torch, model, picks: list[Any]):
    class Outputs(torch.nn.Module):
        """The module's chosen outputs as a flat tuple, in the card's order."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            result = self.model(*inputs)
            return tuple(result if pick is None else result[pick] for pick in picks)

    return Outputs()


def _example_inputs(card: ModelCard, batch: int, audio: Path | None = None) -> list[np.ndarray]:
    # Recording-like audio (or the user's), through the card's own front end: a min-max or dB
    # front end is not judged on white noise (birdinfer.models.parity_probe).
    mel = probe_features(card, batch, audio)
    constants = []
    for value in card.input_constants.values():
        array = np.asarray(value)
        array = array.astype(np.float32 if array.dtype.kind == "f" else array.dtype)
        constants.append(np.ascontiguousarray(np.broadcast_to(array, (batch, *array.shape))))
    return [mel, *constants]


# --- files -------------------------------------------------------------------------------------


def export_onnx(model, card: ModelCard, path: str | Path, opset: int = 17) -> float:
    """Export to ONNX with the card in its metadata; returns the parity max abs difference."""
    path = _check_out(path)
    prepared = _prepare(model, card)
    with tempfile.TemporaryDirectory(prefix="birdinfer-export-") as tmp:
        written = Path(tmp) / "model.onnx"
        diff = _write_onnx(prepared, written, opset)
        replace_files([(written, path)])
    return diff


def _check_out(path: str | Path) -> Path:
    """The ONNX path to write: an .onnx name whose folder exists or can be made."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise ExportError(
            f"{path}: --out must name an .onnx file (the OpenVINO .xml and .bin are written "
            "beside it)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    check_writable_target(path)
    return path


def _write_onnx(prepared: _Prepared, path: Path, opset: int) -> float:
    """Export into `path` (a private temporary file), check it, and run the parity probe."""
    torch, _ = require_torch()
    import onnx

    output_names = [o.name for o in prepared.card.outputs]
    dynamic = {name: {0: "batch"} for name in prepared.input_names + output_names}
    # The TorchScript exporter (dynamo=False) handles timm's CNNs, NFNet's StdConv included,
    # with a plain dynamic batch axis; it is also what Kaggle's older torch images offer.
    try:
        torch.onnx.export(
            prepared.module,
            tuple(torch.from_numpy(x) for x in prepared.inputs),
            str(path),
            input_names=prepared.input_names,
            output_names=output_names,
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
        dynamo = False
    except Exception as exc:  # torch.stft on complex values, mostly (see stft_export)
        log.warning(
            "the TorchScript ONNX exporter failed (%s): trying the dynamo exporter", first_line(exc)
        )
        dynamo_export(
            prepared.module, prepared.inputs, path, prepared.input_names, output_names, opset
        )
        dynamo = True
    proto = onnx.load(str(path))
    if dynamo:
        strip_node_metadata(proto)
    fixed = fix_training_batchnorm(proto)
    if fixed:
        log.warning("%d BatchNormalization nodes exported in training mode, fixed", len(fixed))
    onnx_with_card(proto, prepared.card)
    onnx.checker.check_model(proto, full_check=True)
    write_onnx(proto, path)
    return _max_abs_diff(prepared.expected, _run_onnxruntime(path, prepared))


def convert_openvino(onnx_path: str | Path, xml_path: str | Path, card: ModelCard) -> Path:
    """ONNX -> OpenVINO IR with FP32 weights and the card in rt_info."""
    import openvino as ov

    return _save_openvino(ov.convert_model(str(onnx_path)), xml_path, card)


def _save_openvino(model, xml_path: str | Path, card: ModelCard) -> Path:
    """The IR written whole (the .bin, then the .xml), FP32 weights, the card in rt_info."""
    write_openvino_card(model, card, xml_path)
    return Path(xml_path)


def export(
    model,
    card: ModelCard,
    onnx_path: str | Path,
    openvino: bool = True,
    tolerance: float = PARITY_TOLERANCE,
    probe_audio: str | Path | None = None,
) -> ExportResult:
    """Export, convert, and check both files against torch; fail above `tolerance`, naming the
    output and where. `probe_audio`: a recording to probe with (default: synthetic chirps).

    Every file is written and checked in a private temporary folder first, and only files that
    passed are put in place (the .onnx, then the .bin, then the .xml): a failed or interrupted
    export leaves the files that were there before. `birdinfer.export(module, card,
    "model.onnx")` from a notebook; `card` from `make_card`.
    """
    onnx_path = _check_out(onnx_path)
    xml_path = onnx_path.with_suffix(".xml")
    if openvino:
        check_writable_target(xml_path)
        check_writable_target(xml_path.with_suffix(".bin"))
    prepared = _prepare(model, card, probe_audio=Path(probe_audio) if probe_audio else None)
    with tempfile.TemporaryDirectory(prefix="birdinfer-export-") as tmp:
        tmp_onnx, tmp_xml = Path(tmp) / "model.onnx", Path(tmp) / "model.xml"
        onnx_diff = _write_onnx(prepared, tmp_onnx, opset=17)
        log.info("ONNX parity vs torch: max abs diff %.2e", onnx_diff)
        if not onnx_diff <= tolerance:
            _, where = _where(prepared, _run_onnxruntime(tmp_onnx, prepared))
            raise ExportError(
                f"{onnx_path}: ONNX output differs from torch by {onnx_diff:.2e} > "
                f"{tolerance:.0e}, {where} (nothing written)"
            )
        if not openvino:
            replace_files([(tmp_onnx, onnx_path)])
            return ExportResult(onnx_path, None, onnx_diff, None, prepared.card)
        ov_diff = _write_openvino(prepared, tmp_onnx, tmp_xml, onnx_path)
        log.info("OpenVINO parity vs torch: max abs diff %.2e", ov_diff)
        if not ov_diff <= tolerance:
            _, where = _where(prepared, _run_openvino(tmp_xml, prepared))
            raise ExportError(
                f"{xml_path}: OpenVINO output differs from torch by {ov_diff:.2e} > "
                f"{tolerance:.0e}, {where} (nothing written)"
            )
        replace_files(
            [(tmp_onnx, onnx_path), (tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin"))]
            + [(tmp_xml, xml_path)]
        )
    return ExportResult(onnx_path, xml_path, onnx_diff, ov_diff, prepared.card)


def _write_openvino(prepared: _Prepared, tmp_onnx: Path, tmp_xml: Path, onnx_path: Path) -> float:
    """Convert the checked ONNX file (else the torch module) into `tmp_xml`; its parity."""
    try:
        convert_openvino(tmp_onnx, tmp_xml, prepared.card)
    except Exception as exc:  # OpenVINO's ONNX frontend: an STFT with a dynamic batch, say
        log.warning(
            "OpenVINO cannot convert %s (%s): converting straight from the torch module",
            onnx_path,
            first_line(exc),
        )
        _save_openvino(
            openvino_from_torch(
                prepared.module,
                prepared.inputs,
                prepared.input_names,
                [o.name for o in prepared.card.outputs],
            ),
            tmp_xml,
            prepared.card,
        )
    return _max_abs_diff(prepared.expected, _run_openvino(tmp_xml, prepared))


def _run_onnxruntime(path: Path, prepared: _Prepared) -> list[np.ndarray]:
    session = onnxruntime_session(path)
    return session.run(None, dict(zip(prepared.input_names, prepared.inputs, strict=True)))


def _run_openvino(path: Path, prepared: _Prepared) -> list[np.ndarray]:
    compiled = compile_openvino(path)
    result = compiled(dict(enumerate(prepared.inputs)))
    return [np.asarray(result[port]) for port in compiled.outputs]


def _where(prepared: _Prepared, actual: list[np.ndarray]) -> tuple[float, str]:
    names = [o.name for o in prepared.card.outputs]
    return worst_difference(prepared.expected, actual, names)


def _max_abs_diff(expected: list[np.ndarray], actual: list[np.ndarray]) -> float:
    return max(
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
        for a, b in zip(expected, actual, strict=True)
    )


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a sample_submission.csv (its columns), a taxonomy.csv (primary_label)
    or a UTF-8 text file with one name per line. Names are kept as written (a sample
    submission's header as the csv module reads it, an empty cell as empty), so that the card's
    checks see them."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(
            f"{path}: is a folder; --classes takes sample_submission.csv, taxonomy.csv or a "
            "text file with one class name per line"
        )
    try:
        if path.suffix.lower() == ".csv":
            names = _csv_class_names(path)
        else:
            text = path.read_text(encoding="utf-8")
            names = [line.strip() for line in text.splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise ExportError(
            f"{path}: is not UTF-8 text (byte {exc.start} is {exc.object[exc.start : exc.start + 1]!r})"
        ) from exc
    except OSError as exc:
        raise ExportError(f"{path}: cannot read the class names ({exc.strerror or exc})") from exc
    if not names:
        raise ExportError(f"{path}: no class names")
    return names


def _csv_class_names(path: Path) -> list[str]:
    import csv

    import pandas as pd

    with open(path, encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    if not header:
        return []
    if "primary_label" in header:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        return frame["primary_label"].tolist()
    if header[0] == "row_id":
        return header[1:]
    raise ExportError(f"{path}: expected a 'primary_label' column or a sample submission")


def _output_specs(outputs) -> tuple[OutputSpec, ...]:
    """The card's outputs from specs or their text form ("NAME:holds[:layout]")."""
    try:
        return tuple(o if isinstance(o, OutputSpec) else OutputSpec.parse(o) for o in outputs)
    except ValueError as exc:
        raise ExportError(str(exc)) from exc
