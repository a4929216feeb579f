"""`birdinfer score`: a submission's format checked against the labels, then scored with the
competition's metric."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from birdinfer.config import load_config


def add_command(sub) -> None:
    parser = sub.add_parser("score", help="check a submission's format, then score it vs labels")
    add_score_arguments(parser)
    parser.set_defaults(handler=_score)


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--solution", required=True, type=Path, help="labels: row_id then one 0/1 column per class"
    )
    parser.add_argument("--submission", required=True, type=Path, help="the submission to score")
    parser.add_argument(
        "--sample-submission",
        type=Path,
        help="check the columns and their order against this (default: the solution's)",
    )
    parser.add_argument(
        "--metric",
        choices=["macro_roc_auc", "padded_cmap"],
        help="default: the --config's competition metric, else macro_roc_auc (2024-2026); "
        "padded_cmap is 2023's",
    )
    parser.add_argument("--config", help="a config (e.g. birdclef2023) whose metric to use")
    parser.add_argument("-q", "--quiet", action="store_true", help="the score line only")


def _score(args: argparse.Namespace) -> int:
    from birdinfer.output import read_class_columns
    from birdinfer.scoring import (
        read_table,
        score_submission,
        validate_solution,
        validate_submission,
    )

    metric = args.metric
    if metric is None:
        metric = load_config(args.config).competition.metric if args.config else "macro_roc_auc"
    solution = read_table(args.solution)
    problems = [f"{args.solution}: {p}" for p in validate_solution(solution)]
    if problems:
        print("error: the solution is not usable:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    sample = read_class_columns(args.sample_submission) if args.sample_submission else None
    submission = read_table(args.submission)
    check = validate_submission(submission, solution, sample)
    for warning in [] if args.quiet else check.warnings:
        print(f"warning: {args.submission}: {warning}", file=sys.stderr)
    if not check.ok:
        lines = "\n  ".join(check.errors)
        print(f"error: {args.submission} is not a valid submission:\n  {lines}", file=sys.stderr)
        return 2
    score = score_submission(solution, submission, metric)
    if score.undefined and not args.quiet:
        print(
            f"warning: {len(score.undefined)} classes are positive in every row "
            f"({', '.join(score.undefined[:5])}): ROC-AUC is undefined for them; they are left "
            "out here, while scikit-learn's roc_auc_score (Kaggle's metric) returns NaN",
            file=sys.stderr,
        )
    print(score.describe())
    return 0
