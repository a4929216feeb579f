"""Dask on one node against the in-process engine: LocalCluster layouts, models loaded first
(reports/dask/)."""

import argparse
import logging
from pathlib import Path

from birdinfer.bench.dask_scaling import DaskBenchSettings, main

if __name__ == "__main__":  # Dask's worker processes re-import this file: start nothing then
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=40, help="synthetic 60 s soundscapes")
    parser.add_argument("--model", default="builtin:demo", help="model file or builtin:demo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files-per-task", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("reports/dask"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    main(
        DaskBenchSettings(
            files=args.files,
            model=args.model,
            rounds=args.rounds,
            files_per_task=args.files_per_task,
            report_dir=args.out,
        )
    )
