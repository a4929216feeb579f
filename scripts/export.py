"""Thin wrapper: `python scripts/export.py ...` is `birdinfer export ...` (see `--help`)."""

import sys

from birdinfer.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["export", *sys.argv[1:]]))
