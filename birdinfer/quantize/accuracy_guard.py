"""The accuracy guard: a quantized model against its FP32 parent on held-out windows.

Figures: max and mean absolute difference of probabilities, top-1 and top-5 agreement, and, when
the held-out windows have labels, the competition metric of both. A variant whose metric falls by
more than `max_metric_drop` is rejected, and the message says by how much. Without labels the
score cannot be measured; the verdict then falls back to top-1 agreement and says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from birdinfer.models.card import ModelCard
from birdinfer.output import ROW_ID, column_order
from birdinfer.quantize.calibration import WindowSet, read_all_windows
from birdinfer.quantize.variants import QuantizeError
from birdinfer.scorer.postprocess import activate
from birdinfer.scoring import macro_roc_auc_arrays, padded_cmap_arrays

METRICS = {"macro_roc_auc": macro_roc_auc_arrays, "padded_cmap": padded_cmap_arrays}


class GuardError(QuantizeError, ValueError):
    """Held-out data that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class GuardSettings:
    metric: str = "macro_roc_auc"
    # A variant whose metric falls by more than this (parent - variant) is rejected.
    max_metric_drop: float = 0.005
    # Without labels: reject a variant whose top-1 class agrees with the parent's less often.
    # With labels: a variant accepted on its score but below this gets a note in its verdict.
    min_top1_agreement: float = 0.95
    activation: str = "sigmoid"
    top_k: int = 5

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {self.metric!r}")
        if self.max_metric_drop < 0:
            raise ValueError("max_metric_drop must be >= 0")


@dataclass(frozen=True)
class HeldOut:
    """Held-out windows and, when known, their 0/1 labels (rows aligned with the windows)."""

    windows: WindowSet
    labels: np.ndarray | None = None
    columns: tuple[str, ...] = ()  # class names of the label columns
    labels_path: str | None = None


@dataclass(frozen=True)
class GuardResult:
    variant: str
    windows: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    top5_agreement: float
    metric: str | None
    parent_score: float | None
    variant_score: float | None
    max_metric_drop: float
    accepted: bool
    reason: str

    @property
    def metric_drop(self) -> float | None:
        """Parent minus variant: positive when the variant scores worse."""
        if self.parent_score is None or self.variant_score is None:
            return None
        return self.parent_score - self.variant_score

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["metric_drop"] = self.metric_drop
        return data


def load_heldout(folder: str | Path, card: ModelCard, labels_csv: str | Path | None) -> HeldOut:
    """Every window of the recordings in `folder`, with labels from a competition-format CSV
    (row_id `<stem>_<end second>` + one 0/1 column per class) when one is given."""
    windows = read_all_windows(folder, card)
    if labels_csv is None:
        return HeldOut(windows)
    path = Path(labels_csv)
    try:
        frame = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise GuardError(f"{path}: cannot read the labels ({exc})") from exc
    if frame.columns[0] != ROW_ID:
        raise GuardError(f"{path}: the first column must be '{ROW_ID}'")
    columns = tuple(str(c) for c in frame.columns[1:])
    try:
        values = frame[list(columns)].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise GuardError(f"{path}: label columns must hold 0/1 numbers ({exc})") from exc
    position = {row: i for i, row in enumerate(frame[ROW_ID])}
    keep = [i for i, row in enumerate(windows.row_ids) if row in position]
    if not keep:
        raise GuardError(
            f"{path}: no row id matches a window of {folder} (e.g. {windows.row_ids[0]!r})"
        )
    missing = set(position) - set(windows.row_ids)
    if missing:
        raise GuardError(
            f"{path}: {len(missing)} labelled rows have no window in {folder}, "
            f"e.g. {sorted(missing)[:3]}"
        )
    subset = WindowSet(
        windows.features[keep], tuple(windows.row_ids[i] for i in keep), windows.folder
    )
    labels = values[[position[row] for row in subset.row_ids]]
    return HeldOut(subset, labels, columns, str(path))


def outputs(backend, features: np.ndarray, batch_size: int) -> np.ndarray:
    """The backend's raw outputs (logits) for all windows, `batch_size` at a time."""
    parts = [backend(features[i : i + batch_size]) for i in range(0, len(features), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def probabilities(raw: np.ndarray, activation: str) -> np.ndarray:
    """What the pipeline writes: the activation in float32, as float64 for the metrics."""
    return activate(raw, activation).astype(np.float64)


def score(probs: np.ndarray, heldout: HeldOut, card: ModelCard, metric: str) -> float | None:
    """The competition metric on the labelled columns, or None without labels."""
    if heldout.labels is None:
        return None
    index = column_order(card.class_names, heldout.columns, card.arch)
    return METRICS[metric](heldout.labels, probs[:, index])


def compare(
    name: str,
    parent_raw: np.ndarray,
    variant_raw: np.ndarray,
    heldout: HeldOut,
    card: ModelCard,
    settings: GuardSettings,
) -> GuardResult:
    """Figures and verdict for one variant's outputs against the parent's.

    Probability differences and the metric use the activated outputs, as a submission holds them;
    top-k agreement ranks the raw outputs, where float32 sigmoids that saturate at 1.0 cannot tie.
    """
    parent = probabilities(parent_raw, settings.activation)
    variant = probabilities(variant_raw, settings.activation)
    diff = np.abs(parent - variant)
    k = min(settings.top_k, parent.shape[1])
    top_parent = np.argsort(-parent_raw, axis=1, kind="stable")[:, :k]
    top_variant = np.argsort(-variant_raw, axis=1, kind="stable")[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_parent, top_variant, strict=True)]
    top1 = float(np.mean(top_parent[:, 0] == top_variant[:, 0]))
    parent_score = score(parent, heldout, card, settings.metric)
    variant_score = score(variant, heldout, card, settings.metric)
    accepted, reason = _verdict(name, parent_score, variant_score, top1, settings)
    return GuardResult(
        variant=name,
        windows=int(parent.shape[0]),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        top1_agreement=top1,
        top5_agreement=float(np.mean(overlap)),
        metric=settings.metric if parent_score is not None else None,
        parent_score=parent_score,
        variant_score=variant_score,
        max_metric_drop=settings.max_metric_drop,
        accepted=accepted,
        reason=reason,
    )


def _verdict(
    name: str,
    parent_score: float | None,
    variant_score: float | None,
    top1: float,
    settings: GuardSettings,
) -> tuple[bool, str]:
    if parent_score is None or variant_score is None:
        ok = top1 >= settings.min_top1_agreement
        return ok, (
            f"{name}: no labels, judged on top-1 agreement with FP32: {top1:.3f} "
            f"({'>=' if ok else '<'} {settings.min_top1_agreement})"
        )
    drop = parent_score - variant_score
    metric, limit = settings.metric, settings.max_metric_drop
    if drop > limit:
        return False, (
            f"{name}: {metric} falls by {drop:.4f} ({parent_score:.4f} FP32 -> "
            f"{variant_score:.4f}), more than the allowed {limit:g}"
        )
    reason = (
        f"{name}: {metric} {variant_score:.4f} vs {parent_score:.4f} FP32 "
        f"(change {-drop:+.4f}, allowed drop {limit:g})"
    )
    if top1 < settings.min_top1_agreement:  # accepted on score, but not the same model
        reason += (
            f"; note: its top-1 class agrees with FP32 on only {top1:.1%} of windows, so its "
            "score can move either way on other data"
        )
    return True, reason
