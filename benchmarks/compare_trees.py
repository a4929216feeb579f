"""Two checkouts of birdinfer side by side on one workload: is a change speed-neutral?

Each (model, tree) runs as a fresh child whose PYTHONPATH is its tree, once per round; within a
round the models run in turn and the two trees alternate which goes first, so a slow spell of a
shared machine hits both alike. Prints every run, then the median per (model, tree) in ms per
window: the whole child (interpreter start and imports included) and in-process (from after the
imports to the written submission, model loading included).

    git worktree add --detach ../before <commit>
    python benchmarks/compare_trees.py ../before . AUDIO_DIR MODEL [MODEL ...] --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The child: only names both sides of a refactor keep (birdinfer.run, config.from_dict).
CHILD = r"""
import json, sys, tempfile, time
import openvino  # noqa: F401 - imported before the clock, as a recipe would
import birdinfer
from birdinfer.config import from_dict
audio, model, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
with tempfile.TemporaryDirectory() as out:
    config = from_dict({
        "input_dir": audio, "models": [model],
        # Random-weight benchmark models: speed only.
        "inference": {"batch_size": batch, "allow_rejected_models": True},
        "output": {"submission": f"{out}/submission.csv", "progress": False},
    })
    result = birdinfer.run(config)
print(json.dumps({"in_process": time.perf_counter() - start, "windows": result.windows,
                  "package": birdinfer.__file__}))
"""


def run_child(tree: Path, audio: Path, model: Path, batch: int) -> tuple[float, dict]:
    """(whole seconds, the child's facts) of one run of `tree`'s birdinfer."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(audio), str(model), str(batch)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,
    )
    whole = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{tree} on {model.name} failed:\n{done.stderr[-3000:]}")
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    if not facts["package"].startswith(str(tree)):  # an installed birdinfer won
        raise SystemExit(f"the child imported {facts['package']}, not {tree}'s birdinfer")
    return whole, facts


def compare(
    trees: dict[str, Path], audio: Path, models: list[Path], rounds: int, batch: int
) -> list[dict]:
    """One row per (model, tree): medians in ms per window, and every run's seconds."""
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    windows: dict[str, int] = {}
    for r in range(rounds):
        order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
        for model in models:
            for name, tree in order:
                whole, facts = run_child(tree, audio, model, batch)
                runs.setdefault((model.name, name), []).append((whole, facts["in_process"]))
                windows[model.name] = facts["windows"]
                print(
                    f"round {r + 1}  {model.name:34s} {name:8s} whole {whole:6.2f} s  "
                    f"in-process {facts['in_process']:6.2f} s",
                    flush=True,
                )
    return [
        {
            "model": model,
            "tree": name,
            "whole_ms": 1000 * statistics.median(w for w, _ in seconds) / windows[model],
            "in_process_ms": 1000 * statistics.median(p for _, p in seconds) / windows[model],
            "runs": seconds,
        }
        for (model, name), seconds in sorted(runs.items())
    ]


def markdown(rows: list[dict]) -> str:
    lines = ["| model | tree | whole ms/window | in-process ms/window |", "|---|---|---|---|"]
    lines += [
        f"| {r['model']} | {r['tree']} | {r['whole_ms']:.2f} | {r['in_process_ms']:.2f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="a checkout (e.g. a git worktree)")
    parser.add_argument("after", type=Path, help="another checkout")
    parser.add_argument("audio", type=Path, help="the recordings every run scores")
    parser.add_argument("models", type=Path, nargs="+", help="model files, each run alone")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per model call")
    args = parser.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    models = [m.resolve() for m in args.models]
    rows = compare(trees, args.audio.resolve(), models, args.rounds, args.batch_size)
    print("\n" + markdown(rows))


if __name__ == "__main__":
    main()
