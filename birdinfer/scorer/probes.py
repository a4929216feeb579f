"""Each member's probe, run on this CPU and runtime before any audio is read, and what a member
that departs from it costs (`inference.probe`).

refuse (the default) stops the run with a message naming the member, the CPU, the departure and
the allowed one; fallback loads the float file beside it (whose own probe must pass) and runs it
in the member's place, so the time guard measures and costs the file that really runs; warn
keeps the member and says so. A file made before probes existed runs with a warning that it was
not checked. Every result goes to the run report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from birdinfer.errors import ModelError
from birdinfer.models.backends import Backend
from birdinfer.models.probe import ProbeCheck, check_backend, float_siblings, refusal

log = logging.getLogger(__name__)

REFUSE_ADVICE = (
    "Run its float parent instead (the FP32 or FP16 file), quantize it again on a CPU like this "
    "one, or set inference.probe: fallback (--set inference.probe=fallback) to take the float "
    "file beside it automatically."
)


def check_members(
    backends: Sequence[Backend],
    names: Sequence[str],
    policy: str,
    reopen: Callable[[int, Path], Backend],
) -> tuple[list[Backend], list[dict[str, Any]]]:
    """Run every member's probe; returns the backends to run (a fallback in a failed member's
    place) and one report entry per member. `reopen(i, path)` loads another file as member i
    would be loaded (its threads and outputs)."""
    kept, entries = [], []
    for index, (backend, name) in enumerate(zip(backends, names, strict=True)):
        check = check_backend(backend, name)
        entry: dict[str, Any] = {"member": name, **check.to_dict()}
        if check.status == "absent":
            log.warning("%s: no probe in its card; it runs unchecked on this CPU", name)
        elif not check.passed:
            backend = _after_failure(index, backend, check, policy, reopen, entry)
        kept.append(backend)
        entries.append(entry)
    return kept, entries


def _after_failure(
    index: int,
    backend: Backend,
    check: ProbeCheck,
    policy: str,
    reopen: Callable[[int, Path], Backend],
    entry: dict[str, Any],
) -> Backend:
    if policy == "warn":
        log.warning("%s; it runs anyway (inference.probe: warn)", refusal(check, ""))
        entry["action"] = "kept (warn)"
        return backend
    if policy == "refuse":
        raise ModelError(refusal(check, REFUSE_ADVICE))
    for sibling in float_siblings(backend.path, backend.card):
        replacement = reopen(index, sibling)
        sibling_check = check_backend(replacement, str(sibling))
        # A float file made before probes existed is still the float model: accepted, noted.
        if sibling_check.passed or sibling_check.status == "absent":
            log.warning(
                "%s; its float sibling %s runs in its place (inference.probe: fallback)",
                refusal(check, ""),
                sibling.name,
            )
            entry["action"] = "fallback"
            entry["fallback"] = sibling_check.to_dict()
            return replacement
        log.warning("fallback %s for %s: %s", sibling, check.model, sibling_check.line())
    raise ModelError(
        refusal(
            check,
            f"No float file beside it passes its own probe (looked for "
            f"{', '.join(p.name for p in float_siblings(backend.path, backend.card, all_names=True))}).",
        )
    )
