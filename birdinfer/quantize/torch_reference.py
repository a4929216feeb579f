"""PyTorch's own rows in the quantization report: eager FP32 and dynamic INT8 of the same model.

`torch.ao.quantization.quantize_dynamic` replaces `nn.Linear` layers only; in a CNN that is the
classifier, so every convolution stays FP32 and no speed-up should be expected. The row is there
because it is what teams try first. The architecture is rebuilt from the model card with timm; with
a checkpoint its accuracy is compared too, without one the weights are random and the row is
speed only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from birdinfer.models.card import ModelCard
from birdinfer.quantize.latency import Runner


@dataclass
class TorchReference:
    runners: dict[str, Runner] = field(default_factory=dict)
    weights: str = ""
    trained: bool = False
    threads: int = 1


def torch_reference(card: ModelCard, checkpoint: str | Path | None, threads: int) -> TorchReference:
    """Eager FP32 and dynamic-INT8 (Linear -> qint8) callables for the card's architecture."""
    import torch

    from birdinfer.models.export import build_model, load_checkpoint

    torch.set_num_threads(threads)
    model = build_model(card.arch, num_classes=card.num_classes).eval()
    if checkpoint:
        load_checkpoint(model, checkpoint)
        weights, trained = f"checkpoint {Path(checkpoint).name}", True
    else:
        weights, trained = "random weights (no --checkpoint): speed only", False
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao; it still works here.
        warnings.simplefilter("ignore")
        dynamic = torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8
        )
    return TorchReference(
        runners={"torch-fp32": _runner(model), "torch-dynamic-int8": _runner(dynamic)},
        weights=weights,
        trained=trained,
        threads=threads,
    )


def _runner(model) -> Runner:
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    return run
