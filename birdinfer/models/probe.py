"""A model file's probe: a few real input windows and the outputs its float parent gave for them,
stored in the card, so the file can be checked on the CPU and runtime that run it.

Why: an INT8 or otherwise lowered file can be right where it was made and wrong elsewhere (other
kernels on another instruction set, a runtime setting, a runtime bug), and nothing in its
outputs says so. Before any audio is read, each member runs its probe here; a member whose
outputs depart from the stored ones by more than the card's tolerance is refused, replaced by its
float sibling, or warned about (`inference.probe`). `birdinfer verify` runs the same check.

Real windows, never random tensors: on standard-normal input a correct INT8 file and a broken one
both disagree with FP32 on every argmax (docs/quantization.md).

Stored compactly in `card.extra["probe"]`: each window as 8-bit levels between its own min and
max (zlib, base64), the expected outputs as float32. The expected outputs are computed on the
8-bit windows as stored, so the levels cost nothing in exactness. The windows kept fit in
`SIZE_SHARE` of the model file (at least one, at most `MAX_WINDOWS`).

The departure is the largest absolute difference of probabilities (a sigmoid over logits), the
scale a submission holds.
"""

from __future__ import annotations

import base64
import logging
import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from birdinfer.errors import ModelError, first_line
from birdinfer.models.card import ModelCard, OutputSpec
from birdinfer.models.host import RUNTIMES, cpu_summary, runtime_version

log = logging.getLogger(__name__)

PROBE_FIELD = "probe"
PROBE_VERSION = 1
MAX_WINDOWS = 4
# The probe's share of the model file's bytes (the file stays within 5% of its size without it).
SIZE_SHARE = 0.04
# A float file against its float parent: FP32 runtimes agree within ~1e-6; OpenVINO's bf16 on a
# bf16-capable CPU departs by ~8e-3 on the demo model (docs/quantization.md).
FLOAT_TOLERANCE = 1e-3
# A quantized file: what the guard saw on the quantizing CPU, times this, plus the margin.
QUANTIZED_FACTOR = 1.5
QUANTIZED_MARGIN = 0.2
QUANTIZED_CEILING = 0.5
LEVELS = 255


class ProbeError(ModelError):
    """A probe that cannot be read or built; the message names the file."""


@dataclass(frozen=True)
class Probe:
    """Input windows (n, *input_shape) and, per scored output, what the parent gave for them.

    The windows are kept as stored (`encoded_inputs`) and decoded on use, so a probe written
    again holds exactly the windows its expected outputs were computed on."""

    encoded_inputs: Mapping[str, Any]
    expected: Mapping[str, np.ndarray]
    holds: Mapping[str, str]  # per output: "logits" or "probabilities"
    tolerance: float
    reference: str  # what gave `expected`: "torch module", "FP32 file model.onnx on ..."
    made_on: str = ""  # the CPU the reference and the tolerance came from

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PROBE_VERSION,
            "inputs": dict(self.encoded_inputs),
            "outputs": {
                name: {"holds": self.holds[name], **_encode_array(values)}
                for name, values in self.expected.items()
            },
            "tolerance": self.tolerance,
            "reference": self.reference,
            "made_on": self.made_on,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Probe:
        try:
            if data["version"] != PROBE_VERSION:
                raise ValueError(f"probe version {data['version']}, expected {PROBE_VERSION}")
            outputs = data["outputs"]
            return cls(
                encoded_inputs=_checked_inputs(data["inputs"]),
                expected={name: _decode_array(spec) for name, spec in outputs.items()},
                holds={name: spec["holds"] for name, spec in outputs.items()},
                tolerance=float(data["tolerance"]),
                reference=str(data.get("reference", "")),
                made_on=str(data.get("made_on", "")),
            )
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise ProbeError(f"{where}: its card's probe cannot be read ({exc})") from exc

    @cached_property
    def inputs(self) -> np.ndarray:
        """The windows, float32 (n, *input_shape)."""
        return decode_inputs(self.encoded_inputs)

    @property
    def windows(self) -> int:
        return int(self.encoded_inputs["shape"][0])


def probe_of(card: ModelCard, where: str = "model") -> Probe | None:
    """The card's probe, or None for a file made before probes existed."""
    data = card.extra.get(PROBE_FIELD)
    return None if data is None else Probe.from_dict(data, where)


def with_probe(card: ModelCard, probe: Probe | None) -> ModelCard:
    """The card with `probe` stored (or removed, for None)."""
    extra = {k: v for k, v in card.extra.items() if k != PROBE_FIELD}
    if probe is not None:
        extra[PROBE_FIELD] = probe.to_dict()
    return replace(card, extra=extra)


# --- building ----------------------------------------------------------------------------------


def probe_windows(candidates: np.ndarray, model_bytes: int) -> dict[str, Any]:
    """The windows to store, encoded: as many of `candidates` as fit `SIZE_SHARE` of the model
    (at least one, at most MAX_WINDOWS), spread evenly over them (`decode_inputs` reads them)."""
    candidates = np.asarray(candidates, np.float32)
    if len(candidates) == 0:
        raise ProbeError("a probe needs at least one input window")
    one = len(_encode_windows(candidates[:1])["data"])
    fit = int(SIZE_SHARE * model_bytes // max(one, 1))
    count = max(1, min(MAX_WINDOWS, fit, len(candidates)))
    picks = np.unique(np.linspace(0, len(candidates) - 1, count).round().astype(int))
    return _encode_windows(candidates[picks])


def build_probe(
    encoded_inputs: Mapping[str, Any],
    reference: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    outputs: Sequence[OutputSpec],
    tolerance: float,
    reference_name: str,
) -> Probe:
    """A probe over the windows from `probe_windows`: `reference(windows)` gives each output's
    expected values on the windows as stored; only outputs that hold scores are kept."""
    produced = reference(decode_inputs(encoded_inputs))
    scored = [o for o in outputs if o.scores and o.name in produced]
    if not scored:
        raise ProbeError("the reference produced none of the card's scored outputs")
    return Probe(
        encoded_inputs=dict(encoded_inputs),
        expected={o.name: np.asarray(produced[o.name], np.float32) for o in scored},
        holds={o.name: o.holds for o in scored},
        tolerance=float(tolerance),
        reference=reference_name,
        made_on=cpu_summary(),
    )


def lowered_tolerance(departure_here: float, precision: str) -> float:
    """A lowered file's tolerance from its departure on the CPU that made it. INT8: other CPUs
    run other INT8 kernels (measured spread in docs/quantization.md), a broken file departs by
    ~1. FP16 weights are computed in FP32, so they keep close to the float tolerance."""
    if "int8" not in precision:
        return float(max(FLOAT_TOLERANCE, QUANTIZED_FACTOR * departure_here))
    allowed = max(QUANTIZED_FACTOR * departure_here, departure_here + QUANTIZED_MARGIN)
    return float(min(QUANTIZED_CEILING, allowed))


# Suffixes `birdinfer quantize` gives its variants (birdinfer.quantize.variants.KINDS).
VARIANT_SUFFIXES = (".ov-int8", ".ov-fp16", ".ort-int8", ".ort-dynamic-int8")
# A failed member's float stand-ins, best first: the FP32 IR, the FP16-weight IR, the FP32 ONNX.
FLOAT_SUFFIXES = (".xml", ".ov-fp16.xml", ".onnx")


def float_siblings(path: Path, card: ModelCard, all_names: bool = False) -> list[Path]:
    """The float files of the same stem beside `path` (the stem of the card's parent, else the
    file's own without a variant suffix), those that exist unless `all_names`."""
    parent = (card.extra.get("parent") or {}).get("file")
    stem = Path(parent).stem if parent else path.name.removesuffix(path.suffix)
    for suffix in VARIANT_SUFFIXES:
        stem = stem.removesuffix(suffix)
    found = [path.with_name(stem + suffix) for suffix in FLOAT_SUFFIXES]
    found = [p for p in found if p.name != path.name]
    return found if all_names else [p for p in found if p.is_file()]


# --- checking ----------------------------------------------------------------------------------


def departure(expected: np.ndarray, actual: np.ndarray, holds: str) -> float:
    """Largest absolute difference of probabilities; inf when shapes differ or values are not
    finite (a broken file must never pass)."""
    expected = np.asarray(expected, np.float64)
    actual = np.asarray(actual, np.float64)
    if expected.shape != actual.shape or not np.all(np.isfinite(actual)):
        return math.inf
    if holds == "logits":
        expected, actual = _sigmoid(expected), _sigmoid(actual)
    return float(np.max(np.abs(expected - actual))) if expected.size else 0.0


@dataclass(frozen=True)
class ProbeCheck:
    """What a probe gave on this machine: `status` is passed, failed or absent (no probe)."""

    model: str
    status: str
    departure: float | None = None
    tolerance: float | None = None
    windows: int = 0
    seconds: float = 0.0
    cpu: str = field(default_factory=cpu_summary)
    runtime: str = ""
    reference: str = ""
    made_on: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def message(self) -> str:
        return self.line()

    def line(self) -> str:
        """One line for `birdinfer verify` and the logs."""
        if self.status == "absent":
            return f"UNCHECKED {self.model}: no probe in its card (made before probes existed)"
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{verdict} {self.model}: departure {self.departure:.2e} "
            f"(allowed {self.tolerance:.2e}) on {self.windows} windows, {self.runtime}, "
            f"CPU {self.cpu}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["departure"] is not None and not math.isfinite(data["departure"]):
            data["departure"] = None if math.isnan(data["departure"]) else "inf"
        return data


def check_backend(backend, name: str | None = None, probe: Probe | None = None) -> ProbeCheck:
    """Run the card's probe (or `probe`) through `backend` (as loaded for the run: its threads
    and streams) and compare with the stored outputs for the output the backend returns."""
    label = name or str(backend.path)
    runtime = runtime_version(RUNTIMES.get(backend.path.suffix.lower(), "onnxruntime"))
    if probe is None:
        probe = probe_of(backend.card, str(backend.path))
    if probe is None or backend.output.name not in probe.expected:
        return ProbeCheck(label, "absent", runtime=runtime)
    started = time.perf_counter()
    try:
        actual = backend(probe.inputs)
    except Exception as exc:  # noqa: BLE001 - any runtime failure is a failed probe
        log.error("%s: the probe's forward pass failed (%s)", label, first_line(exc))
        actual = None
    seconds = time.perf_counter() - started
    output = backend.output.name
    found = (
        math.inf
        if actual is None
        else departure(probe.expected[output], actual, probe.holds[output])
    )
    return ProbeCheck(
        model=label,
        status="passed" if found <= probe.tolerance else "failed",
        departure=found,
        tolerance=probe.tolerance,
        windows=probe.windows,
        seconds=seconds,
        runtime=runtime,
        reference=probe.reference,
        made_on=probe.made_on,
    )


def refusal(check: ProbeCheck, advice: str) -> str:
    """The message for a member whose probe failed: member, CPU, departure, allowed, what to do."""
    return (
        f"{check.model}: its probe departs from what {check.reference or 'its parent'} gave by "
        f"{check.departure:.3g} (allowed {check.tolerance:.3g}) on this CPU, {check.cpu}, with "
        f"{check.runtime} (the card's reference ran on {check.made_on or 'an unrecorded CPU'}). "
        f"{advice}"
    )


# --- encoding ----------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def _b64(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def _unb64(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))


def _encode_windows(windows: np.ndarray) -> dict[str, Any]:
    windows = np.asarray(windows, np.float32)
    flat = windows.reshape(len(windows), -1)
    low, high = flat.min(axis=1), flat.max(axis=1)
    span = np.where(high > low, high - low, 1.0).astype(np.float32)
    levels = np.rint((flat - low[:, None]) / span[:, None] * LEVELS).astype(np.uint8)
    return {
        "shape": list(windows.shape),
        "low": low.tolist(),
        "high": high.tolist(),
        "data": _b64(levels.tobytes()),
    }


def encode_inputs(windows: np.ndarray) -> dict[str, Any]:
    """Windows as a probe stores them (all of them; `probe_windows` chooses how many)."""
    return _encode_windows(windows)


def _checked_inputs(data: Mapping[str, Any]) -> dict[str, Any]:
    decode_inputs(data)  # a damaged probe fails when the card is read, not mid-run
    return dict(data)


def decode_inputs(data: Mapping[str, Any]) -> np.ndarray:
    """The windows `probe_windows` encoded, float32 (n, *input_shape)."""
    shape = tuple(int(d) for d in data["shape"])
    levels = np.frombuffer(_unb64(data["data"]), np.uint8).reshape(shape[0], -1)
    low = np.asarray(data["low"], np.float32)
    high = np.asarray(data["high"], np.float32)
    span = np.where(high > low, high - low, np.float32(1.0)).astype(np.float32)
    values = low[:, None] + levels.astype(np.float32) * (span[:, None] / np.float32(LEVELS))
    return np.ascontiguousarray(values.reshape(shape), np.float32)


def _encode_array(values: np.ndarray) -> dict[str, Any]:
    values = np.ascontiguousarray(values, np.float32)
    return {"shape": list(values.shape), "data": _b64(values.tobytes())}


def _decode_array(data: Mapping[str, Any]) -> np.ndarray:
    shape = tuple(int(d) for d in data["shape"])
    return np.frombuffer(_unb64(data["data"]), np.float32).reshape(shape).copy()


# --- verify ------------------------------------------------------------------------------------

MODEL_SUFFIXES = tuple(RUNTIMES)


def model_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Model files named, and those under named folders (sorted); a missing path raises."""
    found: list[Path] = []
    from birdinfer.models.files.locate import resolve_model_path

    for given in paths:
        path = resolve_model_path(given)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in MODEL_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise ModelError(f"{path}: no such model file or folder")
    return found


def verify_file(path: str | Path, threads: int = 1) -> ProbeCheck:
    """Load `path` as a run would (`threads` runtime threads: on OpenVINO, as many streams) and
    run its probe. A file that cannot be loaded raises ModelError."""
    from birdinfer.models.backends import open_backend

    return check_backend(open_backend(path, threads), str(path))
