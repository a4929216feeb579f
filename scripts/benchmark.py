"""Timing-budget benchmark: `python scripts/benchmark.py` is `birdinfer bench` (see --help)."""

import sys

from birdinfer.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
