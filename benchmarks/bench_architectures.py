"""Export and quantize the full-size architectures BirdCLEF teams use, and print what each gives.

    python benchmarks/bench_architectures.py                      # all five, ~15 minutes on 2 cores
    python benchmarks/bench_architectures.py --arch regnety_008 --rounds 5

Each architecture is built by timm with random weights (pretrained=False: no download) for one
input channel, 7 classes and the 128 x 313 preset; the classifier is scaled so that logits spread
over several units (a fresh head outputs values near zero, where every variant looks identical).
It is exported (ONNX + OpenVINO FP32, parity with torch checked), quantized with the demo's
calibration windows and compared with its FP32 parent on held-out demo windows: size, ms per
window per variant (side by side, one run), and agreement with FP32. No ROC-AUC: the weights are
random. An architecture that fails says where and why, and the others still run.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from birdinfer.atomic import write_json_atomic
from birdinfer.config import MelConfig
from birdinfer.demo import DEMO_SPECIES
from birdinfer.quantize import (
    DEMO_CALIBRATION_SEED,
    DEMO_HELDOUT_SEED,
    GuardSettings,
    QuantizeSettings,
    demo_soundscapes,
    load_heldout,
    quantize,
    sample_windows,
)
from birdinfer.quantize import report as quantize_report

ARCHS = ("efficientnet_b0", "tf_efficientnetv2_s", "eca_nfnet_l0", "regnety_008", "convnext_tiny")


def loud_random_model(arch: str, classes: int, seed: int = 0):
    """timm model with random weights whose logits spread over several units."""
    import torch

    from birdinfer.models.export import build_model

    torch.manual_seed(seed)
    model = build_model(arch, num_classes=classes)
    with torch.no_grad():
        model.get_classifier().weight.mul_(20.0)
    return model.eval()


def bench(arch: str, args: argparse.Namespace, calibration_dir: Path, heldout_dir: Path) -> dict:
    from birdinfer.models.export import export, make_card

    folder = args.out / arch
    folder.mkdir(parents=True, exist_ok=True)
    codes = [s.code for s in DEMO_SPECIES]
    started = time.perf_counter()
    try:
        model = loud_random_model(arch, len(codes))
        params = sum(p.numel() for p in model.parameters())
        card = make_card(arch, codes, MelConfig(), 5.0, extra={"weights": "random (benchmark)"})
        exported = export(model, card, folder / f"{arch}.onnx", tolerance=args.tolerance)
        calibration = sample_windows(calibration_dir, card, args.calibration_count, seed=0)
        heldout = load_heldout(heldout_dir, card, None)
        settings = QuantizeSettings(
            guard=GuardSettings(min_top1_agreement=args.min_agreement),
            threads=args.threads,
            batch_size=args.batch_size,
            rounds=args.rounds,
            torch_reference=args.torch,
        )
        result = quantize(exported.onnx_path, calibration, heldout, folder, settings)
    except Exception as exc:  # any failure of one architecture is reported, the rest still run
        logging.exception("%s failed", arch)
        return {"arch": arch, "error": f"{type(exc).__name__}: {exc}"}
    _, md_path, data = quantize_report.write(result, folder)
    return {
        "arch": arch,
        "params_millions": round(params / 1e6, 2),
        "export_parity": {
            "onnx": exported.onnx_max_abs_diff,
            "openvino": exported.openvino_max_abs_diff,
        },
        "seconds": round(time.perf_counter() - started, 1),
        "report": str(md_path),
        "rows": data["rows"],
    }


def print_table(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\nbatch {args.batch_size}, {args.threads} threads, {args.rounds} interleaved rounds, "
        "median ms/window; input 1 x 128 x 313; random weights: agreement with FP32 is a parity "
        "check, not accuracy; speed-up against the FP32 model of the same runtime"
    )
    print(
        f"{'arch':<20} {'variant':<12} {'MB':>7} {'vs ONNX':>7} {'ms/win':>7} {'speed':>6} "
        f"{'max|dp|':>8} {'mean|dp|':>8} {'top-1':>6}"
    )
    for res in results:
        if "error" in res:
            print(f"{res['arch']:<20} FAILED: {res['error']}")
            continue
        for r in res["rows"]:
            g = r["guard"] or {}
            if r["error"]:
                print(f"{res['arch']:<20} {r['key']:<12} FAILED: {r['error']}")
                continue
            print(
                f"{res['arch']:<20} {r['key']:<12} {_f(r['size_bytes'], 1e-6, '7.1f')} "
                f"{_f(r['size_ratio_vs_fp32_onnx'], 100, '6.0f')}% "
                f"{_f(r['ms_per_window'], 1, '7.2f')} "
                f"{_f(r['speedup_vs_fp32_same_runtime'], 1, '5.2f')}x "
                f"{_f(g.get('max_abs_diff'), 1, '8.1e')} {_f(g.get('mean_abs_diff'), 1, '8.1e')} "
                f"{_f(g.get('top1_agreement'), 1, '6.3f')}"
            )


def _f(value, scale, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{'-':>{width}}" if value is None else f"{value * scale:{spec}}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", action="append", help=f"default: {', '.join(ARCHS)}")
    parser.add_argument("--out", type=Path, default=Path("reports/quantize/architectures"))
    parser.add_argument("--calibration-count", type=int, default=300)
    parser.add_argument("--heldout-files", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="export parity vs torch")
    parser.add_argument("--min-agreement", type=float, default=0.95)
    parser.add_argument("--torch", action="store_true", help="add the PyTorch reference rows")
    parser.add_argument("--show", type=Path, help="print the table of a saved summary and exit")
    args = parser.parse_args(argv)
    if args.show:
        print_table(json.loads(args.show.read_text()), args)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    demo = Path("birdinfer_demo/quantize")
    calibration_dir, _ = demo_soundscapes(demo / "calibration", 32, DEMO_CALIBRATION_SEED)
    heldout_dir, _ = demo_soundscapes(demo / "heldout", args.heldout_files, DEMO_HELDOUT_SEED)
    results = []
    for arch in args.arch or ARCHS:
        results.append(bench(arch, args, calibration_dir, heldout_dir))
        print_table(results[-1:], args)
    print_table(results, args)
    summary = args.out / "architectures.json"
    write_json_atomic(results, summary)
    print(f"\nper-architecture reports under {args.out}; summary {summary}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
