"""`birdinfer export` as one call: build the module, load its checkpoint, write the files.

The module is a timm architecture (`arch`) or the user's own factory (`factory`, see
birdinfer.models.build); the checkpoint options are birdinfer.models.checkpoint's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from birdinfer.config import ImageConfig, MelConfig
from birdinfer.models.build import build_from_factory, build_model
from birdinfer.models.checkpoint import load_checkpoint
from birdinfer.models.export import (
    PARITY_TOLERANCE,
    ExportResult,
    export,
    make_card,
    make_waveform_card,
    read_class_names,
)
from birdinfer.models.torch_support import ExportError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportJob:
    classes: Path
    out: Path
    mel: MelConfig
    window_seconds: float
    image: ImageConfig | None = None  # the image steps after the mel (None: none)
    arch: str | None = None
    factory: str | None = None
    in_chans: int | None = None  # None: the channels the image steps make
    checkpoint: Path | None = None
    checkpoint_key: str | None = None
    strip_prefix: str | None = None
    remap: tuple[tuple[str, str], ...] = ()
    trust_checkpoint: bool = False
    outputs: tuple[str, ...] = ()
    constants: dict[str, Any] = field(default_factory=dict)
    openvino: bool = True
    tolerance: float = PARITY_TOLERANCE
    # Raw audio in: (batch, samples), or (batch, 1, samples) with in_chans 1; no mel on the card.
    waveform: bool = False
    # The front-end preset the mel settings came from (recorded on the card), if any.
    preset: str | None = None
    # A recording for the parity probe (default: birdinfer's synthetic one).
    probe_audio: Path | None = None


def run_export(job: ExportJob) -> ExportResult:
    """Build, load, export and check; raises ExportError (a ModelError) with the reason."""
    if (job.arch is None) == (job.factory is None):
        raise ExportError("give exactly one of --arch (a timm name) or --factory")
    if job.waveform and job.arch is not None:
        raise ExportError("--waveform takes raw audio: give the module with --factory, not --arch")
    if job.waveform and job.in_chans not in (None, 1):
        raise ExportError(f"--waveform --in-chans {job.in_chans}: a waveform has 1 channel")
    in_chans = job.in_chans if job.in_chans is not None else (job.image or ImageConfig()).channels
    if in_chans < 1:
        raise ExportError(f"--in-chans {in_chans}: must be >= 1")
    classes = read_class_names(job.classes)
    if job.arch is not None:
        model = build_model(job.arch, num_classes=len(classes), in_chans=in_chans)
    else:
        model = build_from_factory(job.factory, num_classes=len(classes), in_chans=in_chans)
    if job.checkpoint:
        load_checkpoint(
            model,
            job.checkpoint,
            key=job.checkpoint_key,
            strip_prefix=job.strip_prefix,
            remap=job.remap,
            trust=job.trust_checkpoint,
        )
    else:
        log.warning("no --checkpoint: exporting the module's initial weights")
    if job.waveform:
        card = make_waveform_card(
            job.factory,
            classes,
            job.mel.sample_rate,
            job.window_seconds,
            channel_axis=job.in_chans == 1,
            outputs=job.outputs,
            input_constants=job.constants,
            extra=_preset_extra(job),
        )
    else:
        card = make_card(
            job.arch or job.factory,
            classes,
            job.mel,
            job.window_seconds,
            image=job.image,
            in_chans=job.in_chans,
            outputs=job.outputs,
            input_constants=job.constants,
            extra=_preset_extra(job),
        )
    return export(
        model,
        card,
        job.out,
        openvino=job.openvino,
        tolerance=job.tolerance,
        probe_audio=job.probe_audio,
    )


def _preset_extra(job: ExportJob) -> dict[str, Any]:
    """The card's record of the preset the mel settings came from (`extra.mel_preset`)."""
    return {"mel_preset": job.preset} if job.preset else {}
