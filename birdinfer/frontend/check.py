"""Does the inference front end match training? birdinfer's model input against a reference,
stage by stage, naming the first stage that diverges and by how much.

The reference is either the library the model was trained with (torchaudio or librosa, from the
same settings: reference.py), or an array of features the user saved from their own training
code for the same windows. An array can only be compared as a whole; when it does not match
birdinfer's model input, the stage it does match (if any) says which step the training code
skipped or added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from birdinfer.config import ImageConfig, MelConfig
from birdinfer.frontend.amplitude import scale_amplitude
from birdinfer.frontend.logmel import LogMel
from birdinfer.frontend.reference import reference_stages

# Tolerances: mel power relative to each window's maximum; dB absolute (log and PCEN relative to
# each window's range); normalised values and model input absolute.
TOLERANCE = {"mel power": 1e-3, "scaled": 1e-3, "normalised": 1e-4, "model input": 1e-4}


@dataclass(frozen=True)
class StageDiff:
    stage: str
    max_diff: float | None  # None: the shapes differ
    tolerance: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.max_diff is not None and self.max_diff <= self.tolerance


@dataclass(frozen=True)
class CheckResult:
    reference: str
    stages: tuple[StageDiff, ...]
    note: str = ""

    @property
    def first_divergence(self) -> StageDiff | None:
        return next((s for s in self.stages if not s.ok), None)

    def describe(self) -> str:
        lines = [f"reference: {self.reference}"]
        for s in self.stages:
            diff = "shape differs" if s.max_diff is None else f"max diff {s.max_diff:.3g}"
            verdict = "ok" if s.ok else "DIVERGES"
            lines.append(
                f"  {s.stage:<12} {diff:<22} tolerance {s.tolerance:g}  {verdict} {s.detail}"
            )
        first = self.first_divergence
        if first is None:
            lines.append("the front end matches the reference at every stage")
        else:
            lines.append(f"first divergence: {first.stage} ({first.detail or 'see above'})")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def stage_arrays(frontend: LogMel, windows: np.ndarray) -> dict[str, np.ndarray]:
    power = frontend.power_mel(windows)
    scaled = scale_amplitude(power, frontend.config)
    normalised = frontend.normalized(scaled)
    return {
        "mel power": power,
        "scaled": scaled,
        "normalised": normalised,
        "model input": frontend.imaged(normalised),
    }


def stage_label(stage: str, mel: MelConfig) -> str:
    """The name a user reads: mel power, dB (or log, PCEN), normalisation, image."""
    amplitude = {"db": "dB", "log": "log", "pcen": "PCEN"}[mel.amplitude]
    return {"scaled": amplitude, "normalised": "normalisation", "model input": "image"}.get(
        stage, stage
    )


def compare_with_library(
    windows: np.ndarray, mel: MelConfig, image: ImageConfig, library: str
) -> CheckResult:
    ours = stage_arrays(LogMel(mel, image), windows)
    theirs = reference_stages(windows, mel, image, library)
    stages = tuple(_diff(name, ours[name], theirs[name], mel) for name in TOLERANCE)
    return CheckResult(reference=library, stages=stages)


def compare_with_array(
    windows: np.ndarray, mel: MelConfig, image: ImageConfig, features: np.ndarray, name: str
) -> CheckResult:
    ours = stage_arrays(LogMel(mel, image), windows)
    model_input = ours["model input"]
    theirs = np.asarray(features, np.float32)
    if theirs.size == model_input.size and theirs.shape != model_input.shape:
        theirs = theirs.reshape(model_input.shape)  # (h, w) or (n, h, w) saved without axes
    result = _diff("model input", model_input, theirs, mel)
    note = ""
    if not result.ok:
        matches = [
            stage
            for stage in ("mel power", "scaled", "normalised")
            if ours[stage].size == theirs.size
            and _diff(stage, ours[stage], theirs.reshape(ours[stage].shape), mel).ok
        ]
        if matches:
            note = (
                f"the saved features match birdinfer's '{stage_label(matches[-1], mel)}' stage: "
                "the training code "
                "stops there, while the settings go on (normalisation or image steps to remove)"
            )
        else:
            note = _summary(model_input, theirs)
    return CheckResult(reference=name, stages=(result,), note=note)


def _diff(stage: str, ours: np.ndarray, theirs: np.ndarray, mel: MelConfig) -> StageDiff:
    tolerance = TOLERANCE[stage]
    if ours.shape != theirs.shape:
        return StageDiff(
            stage, None, tolerance, f"birdinfer {ours.shape}, reference {theirs.shape}"
        )
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    axes = tuple(range(1, ours.ndim))
    if stage == "mel power":
        diff = diff / np.maximum(np.abs(theirs).max(axis=axes, keepdims=True), 1e-30)
        detail = "relative to each window's maximum"
    elif stage == "scaled" and mel.amplitude != "db":
        diff = diff / np.maximum(np.ptp(theirs, axis=axes, keepdims=True), 1e-30)
        detail = f"{mel.amplitude}, relative to each window's range"
    else:
        detail = "dB" if stage == "scaled" else ""
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    detail = (
        f"{detail}; worst at window {worst[0]} index {tuple(int(i) for i in worst[1:])}".lstrip(
            "; "
        )
    )
    return StageDiff(stage_label(stage, mel), float(diff.max()), tolerance, detail)


def _summary(ours: np.ndarray, theirs: np.ndarray) -> str:
    def stats(x: np.ndarray) -> str:
        return f"mean {x.mean():.4g} std {x.std():.4g} min {x.min():.4g} max {x.max():.4g}"

    return f"birdinfer: {stats(ours)}\nreference: {stats(theirs)}"
