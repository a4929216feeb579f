"""The time guard: fit an ensemble into a CPU budget, and always finish before the deadline.

Members are given in priority order. After a few calibration files the guard projects the rest
of the run from what it measured (wall seconds per second of audio, and each member's own cost
per row: its model, plus the front end it needs unless a member that stays shares it) and drops
the lowest-priority members for the files not yet started until the projection, times a safety
factor, fits the time left. A member mapped onto some columns only (a foundation model) is never
left alone, and a drop never leaves a column unscored. If even the first member alone does not
fit, it falls back to the fastest member that scores every column. If the deadline comes anyway, files not yet started, and
those whose rows are still queued, are written with a placeholder score, so a complete, valid
submission still exists in time. Every decision is kept for the run report.

The deadline counts from `started` (the notebook's first cell, or the start of `run()`, so
that loading the models counts), and holds within one model batch: the engine checks it
before each batch and each feature piece, and scores nothing queued after it (the margin is the
batch in flight, one feature piece per worker, and writing the submission; docs/reliability.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from birdinfer.audio import probe
from birdinfer.config import BudgetConfig, Config
from birdinfer.errors import AudioError
from birdinfer.results import FileResult
from birdinfer.scorer.ensemble import Ensemble

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    at_seconds: float  # since the run started
    files_done: int
    action: str  # "plan", "drop", "fallback", "deadline"
    members: tuple[str, ...]  # the members used from here on
    projected_seconds: float
    seconds_left: float
    note: str

    def as_dict(self) -> dict:
        return asdict(self)


class TimeGuard:
    """Chooses the members for each file as it starts; watches the clock as files finish.

    It is the streaming engine's `FileSchedule`: `members_for` () leaves a file unscored once
    the deadline has passed, and the run gives such files placeholder rows.
    """

    @classmethod
    def for_run(
        cls,
        config: Config,
        ensemble: Ensemble,
        files: list[Path],
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> TimeGuard | None:
        """The run's time guard, when the config enables it; audio lengths from the headers.

        A header's length is only a claim until the file is decoded: one the header does not
        give or that is implausible (`audio.max_header_hours`) counts as 0 s, and each file's
        claim is replaced by its decoded seconds when it is done (`on_file_done`).
        """
        if not config.budget.enabled:
            return None
        seconds = []
        for path in files:
            try:
                seconds.append(probe(path, config.audio.max_header_seconds).seconds)
            except AudioError:
                seconds.append(0.0)  # skipped with its reason when the engine reaches it
        return cls(
            ensemble, seconds, config.budget, config.budget_minutes, clock=clock, started=started
        )

    def __init__(
        self,
        ensemble: Ensemble,
        audio_seconds: Sequence[float],
        config: BudgetConfig,
        budget_minutes: float,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        """`started`: a `clock` reading from when the budget began (default: now)."""
        self.ensemble = ensemble
        self.config = config
        self.clock = clock
        self.started = clock()  # what the projections measure from: the scoring itself
        self.budget_minutes = budget_minutes
        budget_start = self.started if started is None else started
        self.deadline = budget_start + 60.0 * (budget_minutes - config.reserve_minutes)
        self.audio_seconds = list(audio_seconds)
        self.total_audio = sum(self.audio_seconds)
        self.done_audio = 0.0
        self.files_done = 0
        self.active: tuple[int, ...] = tuple(range(len(ensemble.members)))
        self.decisions: list[Decision] = []
        self.expired = False
        self._planned = False
        self._lock = threading.Lock()

    # --- called by the engine ---------------------------------------------------------------

    def members_for(self, index: int) -> tuple[int, ...]:
        """Members for file `index`; () once the deadline has passed (placeholder rows)."""
        with self._lock:
            return () if self._past_deadline() else self.active

    def past_deadline(self) -> bool:
        """Whether the deadline has passed: then nothing more is scored (rows still queued
        included), and the files not finished get placeholder rows."""
        with self._lock:
            return self._past_deadline()

    def _past_deadline(self) -> bool:
        if not self.expired and self.clock() >= self.deadline:
            self.expired = True
            self._decide(
                "deadline", (), 0.0, "deadline reached: the files left get placeholder rows"
            )
        return self.expired

    def on_file_done(self, index: int, result: FileResult | None) -> None:
        with self._lock:
            self.files_done += 1
            # The file moves the projection by what was decoded, not by its header's claim; a
            # failed or unscored file decoded nothing.
            decoded = result.audio_seconds if result is not None else 0.0
            self.total_audio += decoded - self.audio_seconds[index]
            self.audio_seconds[index] = decoded
            self.done_audio += decoded
            if self.expired or self.done_audio <= 0:
                return
            if (
                self.files_done >= self.config.calibration_files
                or self.done_audio >= self.total_audio
            ):
                self._replan()

    def report(self) -> dict[str, Any]:
        """The run report's `time_guard` section."""
        return {
            "enabled": True,
            "budget_minutes": self.budget_minutes,
            "reserve_minutes": self.config.reserve_minutes,
            "safety": self.config.safety,
            "members_at_end": list(self._names(self.active)),
            "deadline_reached": self.expired,
            "decisions": [d.as_dict() for d in self.decisions],
        }

    # --- planning ---------------------------------------------------------------------------

    def _costs(self) -> tuple[float, dict[str, float], dict[int, float]]:
        """Seconds per row of the decode, of each distinct front end, and of each member's
        model, as the stage timer measured them."""
        timer = self.ensemble.timer
        seconds = timer.seconds
        decode = seconds.get("decode", 0.0) / max(timer.windows, 1)
        frontends = {
            name: timer.part_seconds[name] / rows for name, rows in timer.part_rows.items() if rows
        }
        members = {}
        for i, member in enumerate(self.ensemble.members):
            rows = timer.member_rows.get(i, 0)
            members[i] = seconds.get(f"model {member.name}", 0.0) / rows if rows else 0.0
        if not frontends and seconds.get("mel"):  # no per-front-end parts: one shared cost
            frontends = {"mel": seconds["mel"] / max(timer.windows, 1)}
        return decode, frontends, members

    def _cost(self, members: tuple[int, ...]) -> float:
        """A row's cost with `members`: the decode, each front end they need once, and each
        member's model (a member that alone needs a front end also saves it when dropped)."""
        decode, frontends, member_cost = self._costs()
        needed = {self.ensemble.frontend_name(m) for m in members}
        shared = sum(cost for name, cost in frontends.items() if name in needed or name == "mel")
        return decode + shared + sum(member_cost[m] for m in members)

    def _droppable(self, chosen: tuple[int, ...]) -> int | None:
        """The lowest-priority member whose loss leaves every column covered (a mapped member
        covers only some: the others must not all go)."""
        for member in reversed(chosen):
            rest = tuple(m for m in chosen if m != member)
            if rest and self.ensemble.covers_all(rest):
                return member
        return None

    def _replan(self) -> None:
        now = self.clock()
        left = self.deadline - now
        remaining_audio = self.total_audio - self.done_audio
        wall_per_audio = (now - self.started) / self.done_audio
        measured_cost = self._cost(self.active) or 1e-12

        def projected(members: tuple[int, ...]) -> float:
            cost = self._cost(members)
            return self.config.safety * remaining_audio * wall_per_audio * cost / measured_cost

        action = "plan" if not self._planned else "drop"
        self._planned = True
        chosen = self.active
        while len(chosen) > 1 and projected(chosen) > left:
            member = self._droppable(chosen)
            if member is None:
                break
            chosen = tuple(m for m in chosen if m != member)
        alone = [m for m in range(len(self.ensemble.members)) if self.ensemble.covers_all((m,))]
        if projected(chosen) > left and len(self.ensemble.members) > 1 and alone:
            fastest = min(alone, key=lambda m: self._cost((m,)))
            if (fastest,) != chosen and projected((fastest,)) < projected(chosen):
                chosen, action = (fastest,), "fallback"
        if chosen != self.active or len(self.decisions) == 0:
            note = (
                f"projected {projected(chosen):.1f} s for {remaining_audio:.0f} s of audio left, "
                f"{left:.1f} s before the deadline (safety x{self.config.safety})"
            )
            if chosen != self.active:
                log.warning("time guard: %s -> %s; %s", action, self._names(chosen), note)
            self.active = chosen
            self._decide(action, chosen, projected(chosen), note)

    def _decide(self, action: str, members: tuple[int, ...], projected: float, note: str) -> None:
        now = self.clock()
        self.decisions.append(
            Decision(
                at_seconds=round(now - self.started, 3),
                files_done=self.files_done,
                action=action,
                members=self._names(members),
                projected_seconds=round(projected, 3),
                seconds_left=round(self.deadline - now, 3),
                note=note,
            )
        )

    def _names(self, members: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(self.ensemble.members[m].name for m in members)
