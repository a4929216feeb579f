"""What the load-time probe costs per member: each model file opened as a run opens it, then its
probe run, in interleaved rounds (median and spread in ms).

    python benchmarks/bench_probe.py                          # the demo model (ONNX and its IR)
    python benchmarks/bench_probe.py reports/quantize/*.xml --threads 2 --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

from birdinfer.demo import DEMO_MODEL
from birdinfer.models.backends import open_backend
from birdinfer.models.export import convert_openvino
from birdinfer.models.files import read_card
from birdinfer.models.host import cpu_summary
from birdinfer.models.probe import check_backend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models or _demo(Path(tmp))
        times: dict[Path, list[float]] = {m: [] for m in models}
        windows = {}
        for _ in range(args.rounds):
            for model in models:  # interleaved: each round touches every file once
                backend = open_backend(model, args.threads)
                backend(np.zeros((1, *backend.card.input_shape), np.float32))  # as Ensemble does
                check = check_backend(backend)
                times[model].append(check.seconds * 1000)
                windows[model] = (check.windows, check.status)
    print(f"CPU: {cpu_summary()}; {args.threads} runtime threads, {args.rounds} rounds")
    print(f"{'model':40s} {'windows':>7s} {'median ms':>10s} {'min-max ms':>14s}  status")
    for model, ms in times.items():
        n, status = windows[model]
        spread = f"{min(ms):.0f}-{max(ms):.0f}"
        print(f"{model.name:40s} {n:7d} {statistics.median(ms):10.1f} {spread:>14s}  {status}")
    return 0


def _demo(folder: Path) -> list[Path]:
    onnx = DEMO_MODEL
    return [onnx, convert_openvino(onnx, folder / "demo_model.xml", read_card(onnx))]


if __name__ == "__main__":
    raise SystemExit(main())
