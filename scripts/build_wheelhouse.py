"""Build the folder of wheels to attach to an offline Kaggle notebook as a dataset.

    python scripts/build_wheelhouse.py --dest birdinfer-wheels            # Kaggle: cp312, manylinux
    python scripts/build_wheelhouse.py --python-version 3.11 --python-version 3.12  # both
    python scripts/build_wheelhouse.py --dest w --include pyarrow        # + parquet tables
    python scripts/build_wheelhouse.py --dest w --native --all           # this machine, everything

Then upload the folder as a Kaggle dataset; the notebook installs with
`pip install --no-index --find-links /kaggle/input/<dataset> birdinfer`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# Run from a clone: this tree's birdinfer, whether or not it is installed (its dependencies are
# needed either way: `pip install -e .` in the clone installs both).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
try:
    from birdinfer.kaggle import (
        KAGGLE_HAS,
        KAGGLE_PLATFORMS,
        KAGGLE_PYTHON,
        WheelhouseError,
        WheelhouseSettings,
        build_wheelhouse,
    )
except ImportError as exc:  # a bare Python: say what to install, not only what is missing
    raise SystemExit(
        f"build_wheelhouse.py imports birdinfer from this clone and needs its dependencies "
        f"({exc}): run `pip install -e .` in the clone first"
    ) from exc


def settings_from(argv: list[str] | None = None) -> WheelhouseSettings:
    """The wheelhouse the command line asks for."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dest", type=Path, default=Path("birdinfer-wheels"), help="the folder")
    parser.add_argument("--source", type=Path, help="birdinfer source tree (default: this one)")
    parser.add_argument(
        "--python-version",
        action="append",
        help=f"target CPython, repeatable for one folder that installs on each (default: "
        f"{KAGGLE_PYTHON}, Kaggle's image)",
    )
    parser.add_argument(
        "--platform",
        action="append",
        help="target platform tag, repeatable (default: manylinux2014 and manylinux_2_17.._2_35 "
        "x86_64, Kaggle's)",
    )
    parser.add_argument(
        "--native", action="store_true", help="this interpreter's Python version and platform"
    )
    parser.add_argument(
        "--include", action="append", default=[], help="extra requirement, e.g. pyarrow"
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        help=f"also leave out this project (always left out unless --all: {', '.join(KAGGLE_HAS)})",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every runtime dependency (a plain venv can then install with --no-index alone)",
    )
    args = parser.parse_args(argv)
    return WheelhouseSettings(
        dest=args.dest,
        source=args.source,
        python_version=None if args.native else tuple(args.python_version or [KAGGLE_PYTHON]),
        platforms=() if args.native else tuple(args.platform or KAGGLE_PLATFORMS),
        include=tuple(args.include),
        exclude=tuple(args.exclude) if args.all else (*KAGGLE_HAS, *args.exclude),
        all_dependencies=args.all,
    )


def main(argv: list[str] | None = None) -> int:
    settings = settings_from(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        house = build_wheelhouse(settings)
    except WheelhouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print((house.folder / "README.txt").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
