"""Thin wrapper: `python scripts/quantize.py ...` is `birdinfer quantize ...` (see `--help`).

With no arguments it quantizes the built-in demo model with demo calibration windows, guards every
variant on the demo's labelled held-out soundscapes and writes the report to reports/quantize/:
the benchmark of docs/quantization.md.
"""

import sys

from birdinfer.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["quantize", *sys.argv[1:]]))
