"""Peak RSS per process for 1 and 3 members, at two folder sizes: models load once per process,
and memory stays flat in the number of files.

Each figure is VmHWM of a fresh process that runs `birdinfer.run` on N files (hard links to the
peer benchmark's 60 s OGG soundscapes), the configurations interleaved in rounds; the median
over rounds is printed.

    python benchmarks/bench_memory.py --audio reports/peers/work/audio \
        --models reports/peers/work/variants/efficientnet_b0_234.ov-int8.xml \
                 reports/peers/work/variants/efficientnet_b0_234.xml \
                 reports/peers/work/efficientnet_b0_234.onnx
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import BenchSettings, peak_rss_mb  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=Path("reports/peers/work/audio"))
    parser.add_argument("--models", type=Path, nargs=3, required=True, help="three model files")
    parser.add_argument("--files", type=int, nargs=2, default=(100, 300), metavar=("N1", "N2"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("reports/memory"))
    args = parser.parse_args()
    settings = BenchSettings()
    setups = {(members, count): args.models[:members] for members in (1, 3) for count in args.files}
    peaks: dict[tuple[int, int], list[float]] = {key: [] for key in setups}
    for _ in range(args.rounds):
        for (members, count), models in setups.items():
            peaks[(members, count)].append(
                peak_rss_mb(args.audio, list(models), count, args.work, settings)
            )
    print(f"peak RSS per process (VmHWM, MB), median of {args.rounds} rounds")
    small, large = args.files
    for members in (1, 3):
        a = statistics.median(peaks[(members, small)])
        b = statistics.median(peaks[(members, large)])
        print(
            f"  {members} member(s): {small} files {a:.0f} MB, {large} files {b:.0f} MB "
            f"({100 * (b / a - 1):+.1f}%)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
