"""The run's last scoring steps, over every file at once: rank blending across the run, then
each file's smoothing and boost (`postprocess`). They need every file, so they run after the
engine, on journaled and fresh results alike."""

from __future__ import annotations

import numpy as np

from birdinfer.results import FileResult
from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.postprocess import percentile_ranks, postprocess_file


def postprocess_run(ensemble: Ensemble, results: list[FileResult]) -> None:
    """The run's last scoring steps, in place: rank blending across files (when configured and
    there are several members), then each file's smoothing and boost."""
    config = ensemble.config
    if config.inference.combine == "rank_mean" and len(ensemble.members) > 1:
        blend_ranks(ensemble, results)
    with ensemble.timer("postprocess"):
        for result in results:
            result.scores = postprocess_file(result.scores, config.postprocess)


def blend_ranks(ensemble: Ensemble, results: list[FileResult]) -> None:
    """Replace each file's scores by the weighted mean of its members' percentile ranks,
    ranked per class over every row that member scored in this run."""
    ranked: dict[int, np.ndarray] = {}
    for member in range(len(ensemble.members)):
        rows = [r.member_scores[member] for r in results if member in r.member_scores]
        if rows:
            inference = ensemble.config.inference
            ranked[member] = percentile_ranks(
                np.concatenate(rows), inference.rank_ties, inference.rank_clip
            )
    offsets = dict.fromkeys(ranked, 0)
    for result in results:
        if not result.member_scores:  # placeholder rows: nothing to rank
            continue
        per_member = {}
        for member in sorted(result.member_scores):
            n = len(result.row_ids)
            per_member[member] = ranked[member][offsets[member] : offsets[member] + n]
            offsets[member] += n
        result.scores = ensemble.combine(per_member)
