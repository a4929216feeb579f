"""One streaming engine per process, fed by every task that runs there.

A task of a few files that starts its own engine pays a pipeline fill (the model lane waits for
the first decoded chunk) and a drain (the feature workers idle while the last batches run) every
time (docs/throughput.md, "Figures behind the code's choices", has what it cost). Here the
engine outlives its tasks: its model lane runs in a
thread of its own, tasks hand it their files and wait for their outcomes, and while one task's
last files are in the model, the next task's are already decoding. A worker with two or more
task threads therefore keeps every stage busy across task boundaries.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from threadpoolctl import threadpool_limits

from birdinfer.results import FileResult
from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.streaming import EngineOutcome, Outcomes, StreamingEngine

log = logging.getLogger(__name__)


class SharedEngine:
    """A StreamingEngine whose model lane runs in a background thread until `close`."""

    def __init__(self, ensemble: Ensemble) -> None:
        self.ensemble = ensemble
        self.engine = StreamingEngine(
            ensemble,
            feature_workers=ensemble.threads.workers,
            queue_windows=ensemble.config.inference.queue_windows,
        )
        self._closing = threading.Event()
        self._failed: BaseException | None = None
        self._waiting: list[Outcomes] = []
        self._lock = threading.Lock()
        self.engine.open()
        self._lane = threading.Thread(target=self._run_lane, name="birdinfer-lane", daemon=True)
        self._lane.start()

    def score(
        self,
        files: list[Path],
        stems: list[str] | None = None,
        on_result: Callable[[FileResult], None] | None = None,
    ) -> EngineOutcome:
        """Score `files` (blocking this task's thread); `on_result` sees each scored file.

        `on_result` (a task's journal writes) runs here, on the task's thread, as each file
        finishes: on the model lane it would hold up every task's next batch."""
        sink = _FinishedFiles(len(files))
        with self._lock:
            if self._failed is not None or self._closing.is_set():
                raise RuntimeError(f"the shared engine is not running ({self._failed})")
            self._waiting.append(sink)
        try:
            self.engine.submit(files, stems, sink)
            # Woken by each finished file and by the end (None): a task returns the moment its
            # last file is done, so its worker can hand the engine the next task's files.
            while (result := sink.finished.get()) is not None:
                if on_result is not None:
                    on_result(result)
            if not sink.complete():
                raise RuntimeError(f"the shared engine stopped: {self._failed}")
        finally:
            with self._lock:
                self._waiting.remove(sink)
        return sink.outcome()

    def close(self) -> None:
        """Finish what was submitted, then stop the lane and the feature workers."""
        self._closing.set()
        self._lane.join()
        self.engine.close()

    def abort(self) -> None:
        """Stop now (Ctrl-C, SIGTERM): files in flight are dropped, and every task waiting on
        this engine raises instead of waiting for them."""
        self._closing.set()
        self.engine.abandon()
        self._lane.join()
        with self._lock:
            self._failed = self._failed or RuntimeError("the run was interrupted")
            for sink in self._waiting:
                sink.finished.put(None)
        self.engine.close()

    def _run_lane(self) -> None:
        try:
            # As in score_files: BLAS's own pool would spin beside the workers and the runtime.
            with threadpool_limits(limits=1, user_api="blas"):
                self.engine.serve(until=self._closing.is_set)
        except BaseException as exc:  # noqa: BLE001 - every waiting task must hear of it
            log.exception("the shared engine's model lane failed")
            with self._lock:
                self._failed = exc
                for sink in self._waiting:  # wake every waiting task: it raises
                    sink.finished.put(None)
            self.engine.close()


class _FinishedFiles(Outcomes):
    """Outcomes that also queue each scored file for the task's thread as it ends."""

    def __init__(self, expected: int) -> None:
        super().__init__(expected)
        # Scored files as they end, then None once every file has its outcome.
        self.finished: queue.Queue[FileResult | None] = queue.Queue()
        if self.complete():
            self.finished.put(None)

    def add(self, position: int, outcome) -> None:
        if isinstance(outcome, FileResult):
            self.finished.put(outcome)
        super().add(position, outcome)
        if self.complete():
            self.finished.put(None)
