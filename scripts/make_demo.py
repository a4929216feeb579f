"""Train and export the demo model shipped as birdinfer/demo/assets/demo_model.onnx.

    python scripts/make_demo.py                 # the shipped model: seeded, ~14 minutes on 2 cores
    python scripts/make_demo.py --epochs 1 --soundscapes 4 --out /tmp/tiny.onnx   # a smoke run

Nine one-cycle epochs, then one fine-tune epoch that penalises peak activations of the last stages
so that the model quantizes to INT8 faithfully (docs/quantization.md; --finetune-epochs 0 skips it).

Needs the [export] extra (torch, timm, onnx).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path

from birdinfer.demo import DEMO_MODEL, TrainSettings, make_demo_model
from birdinfer.models.card_tool import set_card
from birdinfer.models.probe import with_probe
from birdinfer.quantize import self_probe


def main(argv: list[str] | None = None) -> int:
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEMO_MODEL)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument(
        "--soundscapes",
        type=int,
        default=defaults.soundscapes_per_epoch,
        help="fresh 60 s soundscapes per epoch",
    )
    parser.add_argument(
        "--finetune-epochs",
        type=int,
        default=defaults.finetune_epochs,
        help="epochs of the quantization-friendly fine-tune (peak-activation penalty)",
    )
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    settings = replace(
        defaults,
        epochs=args.epochs,
        soundscapes_per_epoch=args.soundscapes,
        finetune_epochs=args.finetune_epochs,
        threads=args.threads,
        seed=args.seed,
    )
    started = time.perf_counter()
    result, auc = make_demo_model(args.out, settings)
    # The export's probe is its parity input; the shipped model's probe is real windows
    # (synthetic soundscapes through its front end), as `birdinfer verify` should run it.
    set_card(args.out, with_probe(result.card, self_probe(args.out)))
    size_mb = args.out.stat().st_size / 1e6
    print(
        f"demo model: {args.out} ({size_mb:.1f} MB), validation macro ROC-AUC {auc:.4f}, "
        f"ONNX parity {result.onnx_max_abs_diff:.1e}, {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
