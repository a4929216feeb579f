"""Training checkpoints -> a state dict that fits the module, loaded strictly.

Layouts seen in training code: a plain state dict; one under `state_dict` (Lightning, timm's
train script), `model_state_dict`, `model`, or an EMA copy under `state_dict_ema`, `model_ema`
or `ema`; whole pickled modules. Key prefixes added by wrappers (`module.` from DDP and EMA,
`model.` from Lightning, `_orig_mod.` from torch.compile) are stripped where that makes more keys
fit; `strip_prefix` and `remap` handle the rest explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from birdinfer.errors import first_line
from birdinfer.models.torch_support import ExportError, require_torch

log = logging.getLogger(__name__)

# Tried in this order when no key is named: the training weights before an EMA copy.
WEIGHTS_KEYS = ("state_dict", "model_state_dict", "model", "state_dict_ema", "model_ema", "ema")
AUTO_PREFIXES = ("module.", "model.", "_orig_mod.")


def read_checkpoint(path: str | Path, trust: bool = False) -> Any:
    """torch.load on the CPU; only tensors and plain containers unless `trust`."""
    torch, _ = require_torch()
    if _plain_pickle(path):
        raise ExportError(
            f"{path}: cannot load checkpoint: it is a plain pickle (pickle.dump), not a "
            "torch.save file, and torch.load reads it neither as it is nor with "
            "--trust-checkpoint. If you made it, load it in Python and save the weights with "
            "torch.save(model.state_dict(), ...)"
        )
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not trust)
    except Exception as exc:  # pickle errors, zip errors, refused globals
        unsafe = [] if trust else _unsafe_globals(torch, path)
        if unsafe:
            raise ExportError(
                f"{path}: cannot load checkpoint: it holds pickled objects besides weights "
                f"({', '.join(unsafe)}); loading them could run code from the file, so "
                "birdinfer refuses. Save only the weights (torch.save(model.state_dict(), ...)), "
                "or pass --trust-checkpoint if you made the file yourself"
            ) from exc
        if not trust and _refused_as_unsafe(exc):
            raise ExportError(
                f"{path}: cannot load checkpoint: it is pickled objects, not only weights "
                f"({first_line(exc)}); loading them could run code from the file, so birdinfer "
                "refuses. Save only the weights (torch.save(model.state_dict(), ...)), or pass "
                "--trust-checkpoint if you made the file yourself"
            ) from exc
        raise ExportError(f"{path}: cannot load checkpoint ({first_line(exc)})") from exc


# torch.save's legacy (non-zip) format opens with its magic number, pickled with protocol 2.
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."


def _plain_pickle(path: str | Path) -> bool:
    """A pickle stream (protocol 2 or later) that is neither a zip nor a legacy torch file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_LEGACY_MAGIC))
    except OSError:
        return False  # torch.load names the problem
    return head[:1] == b"\x80" and head != _LEGACY_MAGIC


def _refused_as_unsafe(exc: BaseException) -> bool:
    """Whether torch's weights_only load refused the file's pickled content (a legacy or raw
    pickle names no globals that `_unsafe_globals` could list)."""
    text = str(exc)
    return type(exc).__name__ == "UnpicklingError" or "weights_only" in text.replace(" ", "_")


def _unsafe_globals(torch, path) -> list[str]:
    """The types a weights_only load refuses, read without unpickling them (torch >= 2.5)."""
    lister = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if lister is None:
        return []
    try:
        return sorted(lister(str(path)))
    except Exception:  # not a zip checkpoint: the load error says enough
        return []


def extract_state_dict(checkpoint: Any, key: str | None = None) -> dict[str, Any]:
    """The state dict inside `checkpoint`: under `key`, else under the first of WEIGHTS_KEYS
    that holds one, else the checkpoint itself (a module gives its own state dict)."""
    state = _as_state(checkpoint)
    if key is not None:
        if not isinstance(state, Mapping) or key not in state:
            found = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ExportError(f"checkpoint has no '{key}' (top-level keys: {found})")
        state = _as_state(state[key])
    elif isinstance(state, Mapping):
        present = [k for k in WEIGHTS_KEYS if isinstance(_as_state(state.get(k)), Mapping)]
        if present:
            if len(present) > 1:
                log.info(
                    "checkpoint holds %s; using '%s' (choose with --checkpoint-key)",
                    present,
                    present[0],
                )
            state = _as_state(state[present[0]])
    if not isinstance(state, Mapping):
        raise ExportError(f"checkpoint holds {type(state).__name__}, not a state dict")
    return dict(state)


def _as_state(value: Any) -> Any:
    state_dict = getattr(value, "state_dict", None)
    return state_dict() if callable(state_dict) and not isinstance(value, Mapping) else value


def rename_keys(
    state: Mapping[str, Any],
    own_keys: Sequence[str],
    strip_prefix: str | None = None,
    remap: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Keys renamed to fit `own_keys`: `strip_prefix` keeps only the keys under it, without it;
    `remap` pairs replace a leading OLD with NEW; wrapper prefixes go where that fits more keys."""
    if strip_prefix:
        kept = {k[len(strip_prefix) :]: v for k, v in state.items() if k.startswith(strip_prefix)}
        if not kept:
            raise ExportError(f"no checkpoint key starts with '{strip_prefix}'")
        left_out = len(state) - len(kept)
        if left_out:
            log.info("--strip-prefix %s: %d keys outside it left out", strip_prefix, left_out)
        state = kept
    for old, new in remap:
        state = _remapped(state, old, new)
    return _strip_wrappers(dict(state), set(own_keys))


def _remapped(state: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
    """Keys starting with `old` renamed to start with `new`; refused where a new name is a key
    the checkpoint already holds (which weights would the model get?)."""
    renamed = {(new + k[len(old) :] if k.startswith(old) else k): k for k in state}
    if len(renamed) < len(state):
        taken = sorted(new + k[len(old) :] for k in state if k.startswith(old))
        taken = [k for k in taken if k in state and not k.startswith(old)] or taken
        raise ExportError(
            f"--remap {old}={new}: the checkpoint already holds {len(taken)} of the renamed keys "
            f"({_few(taken, 4)}); remove those weights from the checkpoint, or choose "
            "--checkpoint-key or --strip-prefix so that only one set is loaded"
        )
    return {new_key: state[key] for new_key, key in renamed.items()}


def _strip_wrappers(state: dict[str, Any], own: set[str]) -> dict[str, Any]:
    # Greedy: strip a wrapper prefix while that makes more keys fit. A wrapper of the user's
    # own whose attribute is called `model` keeps its keys, since stripping would fit fewer.
    while True:
        fits = len(own & set(state))
        for prefix in AUTO_PREFIXES:
            stripped = {
                (k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()
            }
            if len(stripped) == len(state) and len(own & set(stripped)) > fits:
                state = stripped
                break
        else:
            return state


def load_checkpoint(
    model,
    path: str | Path,
    *,
    key: str | None = None,
    strip_prefix: str | None = None,
    remap: Sequence[tuple[str, str]] = (),
    trust: bool = False,
) -> None:
    """Load weights strictly; a mismatch lists the missing and unexpected keys."""
    own = model.state_dict()
    try:
        state = extract_state_dict(read_checkpoint(path, trust), key)
        state = rename_keys(state, list(own), strip_prefix, remap)
    except ExportError as exc:
        if str(path) in str(exc):
            raise
        raise ExportError(f"{path}: {exc}") from exc
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ExportError(
            f"{path}: checkpoint does not fit the model.\n"
            f"  missing keys ({len(missing)}): {_few(missing)}\n"
            f"  unexpected keys ({len(unexpected)}): {_few(unexpected)}"
            + _hint(missing, unexpected)
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatches
        raise ExportError(f"{path}: checkpoint does not fit the model: {exc}") from exc


def _hint(missing: list[str], unexpected: list[str]) -> str:
    """When every unexpected key shares a first component, say how to strip it."""
    heads = {k.split(".", 1)[0] for k in unexpected if "." in k}
    if missing and len(heads) == 1:
        head = heads.pop()
        return f"\n  the unexpected keys all start with '{head}.': try --strip-prefix {head}."
    return ""


def _few(keys: Sequence[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f" ... (+{len(keys) - n})" if len(keys) > n else "") or "none"
