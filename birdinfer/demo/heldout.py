"""The embedded demo: held-out synthetic soundscapes in, a scored submission out, offline."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from birdinfer.config import Config
from birdinfer.results import RunResult
from birdinfer.scoring import score_frames

log = logging.getLogger(__name__)


def prepare(config: Config) -> Path:
    """Write the demo's soundscapes into `input_dir` and their labels to `demo.solution`.

    The seeds are fixed by the config and never used in training, so the score is held-out.
    """
    from birdinfer.demo.synth import write_soundscapes  # only the demo needs the generator

    demo = config.demo
    if demo is None:
        raise ValueError("this config has no demo section")
    solution = Path(demo.solution)
    write_soundscapes(
        Path(config.input_dir), demo.files, demo.seed, seconds=demo.seconds, labels_csv=solution
    )
    return solution


def score(config: Config, result: RunResult) -> float:
    """The competition metric of the run's submission against the demo's labels."""
    solution = pd.read_csv(config.demo.solution, dtype={"row_id": str})
    solution.columns = [str(c) for c in solution.columns]
    return score_frames(solution, result.submission, config.competition.metric)
