"""`birdinfer quantize` as one call: what the command asks for, turned into the settings,
calibration windows and held-out set that `quantize()` takes, then the report.

The command only parses its arguments into a `QuantizeJob`; every choice (the demo soundscapes
when no recordings are given, the labels only when the model scores the demo species, where the
variants go) is made here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import birdinfer.quantize.report as quantize_report
from birdinfer.config import load_config
from birdinfer.demo import DEMO_SPECIES
from birdinfer.errors import ModelError
from birdinfer.models.backends import open_backend
from birdinfer.models.card import ModelCard
from birdinfer.models.files import BUILTIN_PREFIX, resolve_model_path
from birdinfer.quantize.accuracy_guard import GuardSettings, HeldOut, load_heldout
from birdinfer.quantize.calibration import (
    DEMO_CALIBRATION_SEED,
    DEMO_HELDOUT_SEED,
    demo_soundscapes,
    sample_windows,
)
from birdinfer.quantize.runner import QuantizeResult, QuantizeSettings, quantize
from birdinfer.quantize.variants import ScopeSettings
from birdinfer.scorer.threads import available_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeJob:
    """What `birdinfer quantize` was asked for (the command's options, by name)."""

    model: str = "builtin:demo"
    out_dir: Path | None = None
    report_dir: Path = Path("reports/quantize")
    variants: tuple[str, ...] = ()
    ort_dynamic: bool = False
    calibration: Path | None = None
    calibration_count: int = 300
    seed: int = 0
    heldout: Path | None = None
    labels: Path | None = None
    heldout_files: int = 16
    calibration_files: int = 32
    demo_data: Path = Path("birdinfer_demo/quantize")
    config: str = "default"
    metric: str | None = None
    max_drop: float = 0.005
    min_agreement: float = 0.95
    quantize_head: bool = False
    ignore: tuple[str, ...] = ()
    ignore_type: tuple[str, ...] = ()
    threads: int = 2
    batch_size: int = 16
    rounds: int = 20
    checkpoint: Path | None = None
    no_torch: bool = False


def run_job(job: QuantizeJob) -> tuple[QuantizeResult, Path, Path, dict[str, Any]]:
    """Build, guard, time and report the variants; returns the result, the report's JSON and
    markdown paths and its data."""
    cores = available_cores()
    if job.threads > cores:
        log.warning("--threads %d is more than the %d cores available", job.threads, cores)
    card = open_backend(job.model).card
    if card.waveform:  # calibration and the guard feed log-mel windows: not what it takes
        raise ModelError(
            f"{job.model}: a waveform model (raw audio in) cannot be quantized here yet; "
            "run it in FP32"
        )
    calibration_dir = job.calibration
    if calibration_dir is None:
        calibration_dir, _ = demo_soundscapes(
            job.demo_data / "calibration", job.calibration_files, DEMO_CALIBRATION_SEED
        )
    calibration = sample_windows(calibration_dir, card, job.calibration_count, job.seed)
    result = quantize(
        job.model, calibration, heldout_for(job, card), out_dir_for(job), settings_for(job)
    )
    json_path, md_path, data = quantize_report.write(result, job.report_dir)
    return result, json_path, md_path, data


def settings_for(job: QuantizeJob) -> QuantizeSettings:
    config = load_config(job.config)
    variants = list(job.variants)
    if job.ort_dynamic and "ort-dynamic" not in variants:
        variants.append("ort-dynamic")
    return QuantizeSettings(
        variants=tuple(variants),
        scope=ScopeSettings(not job.quantize_head, tuple(job.ignore), tuple(job.ignore_type)),
        guard=GuardSettings(
            metric=job.metric or config.competition.metric,
            max_metric_drop=job.max_drop,
            min_top1_agreement=job.min_agreement,
            activation=config.inference.activation,
        ),
        calibration_seed=job.seed,
        batch_size=job.batch_size,
        threads=job.threads,
        rounds=job.rounds,
        torch_reference=not job.no_torch,
        checkpoint=str(job.checkpoint) if job.checkpoint else None,
    )


def out_dir_for(job: QuantizeJob) -> Path:
    """Where the variants go: as asked, else the report folder for a built-in model (the package
    folder is not the user's), else beside the model."""
    if job.out_dir is not None:
        return job.out_dir
    if str(job.model).startswith(BUILTIN_PREFIX):
        return job.report_dir
    return resolve_model_path(job.model).parent


def heldout_for(job: QuantizeJob, card: ModelCard) -> HeldOut:
    """The user's held-out recordings, or the demo's labelled soundscapes (their labels used only
    when the model scores the demo species)."""
    if job.heldout is not None:
        return load_heldout(job.heldout, card, job.labels)
    folder, labels = demo_soundscapes(
        job.demo_data / "heldout", job.heldout_files, DEMO_HELDOUT_SEED
    )
    if not {s.code for s in DEMO_SPECIES} <= set(card.class_names):
        log.warning(
            "the model does not score the demo species: the demo held-out set is used without "
            "labels (give --heldout and --labels to measure the metric)"
        )
        labels = None
    return load_heldout(folder, card, labels)
