"""Thin wrapper: `python scripts/infer.py ...` is `birdinfer infer ...` (see `--help`)."""

import sys

from birdinfer.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["infer", *sys.argv[1:]]))
