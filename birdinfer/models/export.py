"""timm checkpoint -> self-describing ONNX (and OpenVINO IR), checked against torch.

Needs the `[export]` extra (torch, timm, onnx); the inference path never imports this module.
Steps, as timm's own onnx_export: build the model, load the weights strictly, eval(), one forward
pass, export with a dynamic batch axis, onnx.checker, then a parity check on ONNX Runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from birdinfer.errors import ModelError
from birdinfer.models.card import CARD_KEY, ModelCard

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
INPUT_NAME, OUTPUT_NAME = "mel", "logits"


class ExportError(ModelError):
    """Export could not produce a faithful model file; the message says why."""


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    openvino_path: Path | None
    onnx_max_abs_diff: float
    openvino_max_abs_diff: float | None


def _torch():
    try:
        import timm
        import torch
    except ImportError as exc:
        raise ExportError(
            "export needs torch and timm: pip install 'birdinfer[export]' "
            "(on Kaggle both are already installed)"
        ) from exc
    return torch, timm


def build_model(arch: str, num_classes: int, in_chans: int = 1, **kwargs: Any):
    """A timm model with `in_chans` input channels and a fresh `num_classes` head, no download."""
    _, timm = _torch()
    try:
        return timm.create_model(
            arch, pretrained=False, in_chans=in_chans, num_classes=num_classes, **kwargs
        )
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        raise ExportError(f"timm cannot build '{arch}': {exc}") from exc


def extract_state_dict(checkpoint: Any) -> dict[str, Any]:
    """A plain state dict, or one under 'state_dict' / 'model', minus DDP/wrapper prefixes."""
    state = checkpoint
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise ExportError(f"checkpoint holds {type(state).__name__}, not a state dict")
    cleaned = {}
    for name, value in state.items():
        for prefix in ("module.", "model."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        cleaned[name] = value
    return cleaned


def load_checkpoint(model, path: str | Path) -> None:
    """Load weights strictly; a mismatch lists the missing and unexpected keys."""
    torch, _ = _torch()
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, refused globals
        raise ExportError(f"{path}: cannot load checkpoint ({exc})") from exc
    state = extract_state_dict(checkpoint)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ExportError(
            f"{path}: checkpoint does not fit the model.\n"
            f"  missing keys ({len(missing)}): {_few(missing)}\n"
            f"  unexpected keys ({len(unexpected)}): {_few(unexpected)}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatches
        raise ExportError(f"{path}: checkpoint does not fit the model: {exc}") from exc


def _few(keys: Sequence[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f" ... (+{len(keys) - n})" if len(keys) > n else "") or "none"


def export_onnx(model, card: ModelCard, path: str | Path, opset: int = 17) -> float:
    """Export to ONNX with the card in its metadata; returns the parity max abs difference."""
    torch, _ = _torch()
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = _example_input(card, batch=2)
    with torch.no_grad():
        expected = model(torch.from_numpy(example)).numpy()
    if expected.shape != (2, card.num_classes):
        raise ExportError(
            f"model output shape {expected.shape}, card expects (2, {card.num_classes})"
        )
    tmp = path.with_name(f".{path.name}.tmp")
    # The TorchScript exporter (dynamo=False) handles timm's CNNs, NFNet's StdConv included,
    # with a plain dynamic batch axis; it is also what Kaggle's older torch images offer.
    torch.onnx.export(
        model,
        (torch.from_numpy(example),),
        str(tmp),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    onnx.helper.set_model_props(proto, {CARD_KEY: card.to_json()})
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return _max_abs_diff(expected, _run_onnxruntime(path, example))


def convert_openvino(onnx_path: str | Path, xml_path: str | Path, card: ModelCard) -> Path:
    """ONNX -> OpenVINO IR with FP32 weights and the card in rt_info."""
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    model.set_rt_info(card.to_json(), [CARD_KEY])
    xml_path = Path(xml_path)
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return xml_path


def export(
    model,
    card: ModelCard,
    onnx_path: str | Path,
    openvino: bool = True,
    tolerance: float = PARITY_TOLERANCE,
) -> ExportResult:
    """Export, convert, and check both files against torch; fail above `tolerance`."""
    torch, _ = _torch()
    onnx_path = Path(onnx_path)
    onnx_diff = export_onnx(model, card, onnx_path)
    log.info("ONNX parity vs torch: max abs diff %.2e", onnx_diff)
    if not onnx_diff <= tolerance:
        raise ExportError(
            f"{onnx_path}: ONNX output differs from torch by {onnx_diff:.2e} > {tolerance:.0e}"
        )
    if not openvino:
        return ExportResult(onnx_path, None, onnx_diff, None)
    xml_path = convert_openvino(onnx_path, onnx_path.with_suffix(".xml"), card)
    example = _example_input(card, batch=2)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(example)).numpy()
    from birdinfer.models.backends import open_backend

    ov_diff = _max_abs_diff(expected, open_backend(xml_path)(example))
    log.info("OpenVINO parity vs torch: max abs diff %.2e", ov_diff)
    if not ov_diff <= tolerance:
        raise ExportError(
            f"{xml_path}: OpenVINO output differs from torch by {ov_diff:.2e} > {tolerance:.0e}"
        )
    return ExportResult(onnx_path, xml_path, onnx_diff, ov_diff)


def _example_input(card: ModelCard, batch: int) -> np.ndarray:
    # Standardised log-mels are roughly N(0, 1): seeded normal noise is a fair parity probe.
    return np.random.default_rng(0).standard_normal((batch, *card.input_shape)).astype(np.float32)


def _run_onnxruntime(path: Path, example: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: example})[0]


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def make_card(
    arch: str,
    class_names: Sequence[str],
    mel,
    window_seconds: float,
    extra: dict | None = None,
    image=None,
) -> ModelCard:
    """The card for a model fed by `mel` (and `image` steps) over windows of `window_seconds`."""
    from birdinfer.config import ImageConfig
    from birdinfer.models.card import expected_input_shape

    image = image or ImageConfig()
    return ModelCard(
        arch=arch,
        class_names=tuple(str(c) for c in class_names),
        sample_rate=mel.sample_rate,
        window_seconds=float(window_seconds),
        mel=mel,
        input_shape=expected_input_shape(mel, image, mel.sample_rate, window_seconds),
        extra=dict(extra or {}),
        image=image,
    )


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a sample_submission.csv (its columns), a taxonomy.csv (primary_label)
    or a text file with one name per line."""
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype=str)
        if "primary_label" in frame.columns:
            return frame["primary_label"].tolist()
        if frame.columns[0] == "row_id":
            return [str(c) for c in frame.columns[1:]]
        raise ExportError(f"{path}: expected a 'primary_label' column or a sample submission")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise ExportError(f"{path}: no class names")
    return names
