"""`birdinfer card show|set`: read a model file's card, or attach one to a file exported elsewhere
(with a probe that `verify` and the load-time check run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from birdinfer.cli.common import set_overrides
from birdinfer.errors import AudioError, ModelError


def add_command(sub) -> None:
    card = sub.add_parser("card", help="show or attach a model file's card (its settings)")
    actions = card.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="print the card of an .onnx or .xml model file")
    show.add_argument("model", help="model file (.onnx or OpenVINO .xml)")
    show.add_argument("-q", "--quiet", action="store_true")
    show.set_defaults(handler=_card_show)
    put = actions.add_parser(
        "set", help="attach or replace the card of a model exported elsewhere (atomic write)"
    )
    put.add_argument(
        "model", help="model file (.onnx, OpenVINO .xml, or .tflite: its card goes beside it)"
    )
    put.add_argument("--config", help="YAML (or bundled name) with the audio, mel and image keys")
    put.add_argument("--preset", help="a front-end preset (birdinfer frontend presets)")
    put.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config key, e.g. --set mel.n_mels=224 --set image.channels=3",
    )
    put.add_argument(
        "--classes", type=Path, help="sample_submission.csv, taxonomy.csv or one name per line"
    )
    put.add_argument("--arch", help="architecture name to record")
    put.add_argument("--emits", choices=("logits", "probabilities"), help="what the model returns")
    put.add_argument(
        "--graph-output",
        action="append",
        default=[],
        metavar="NAME[:HOLDS]",
        help="describe an output by name, with what it holds: logits (default), probabilities "
        "or embedding (for the per-window table); repeat for several, the first is scored "
        "by default. Its layout is read off a forward pass",
    )
    put.add_argument(
        "--waveform",
        action="store_true",
        help="the model takes raw audio, e.g. Perch v2 (audio.sample_rate, audio.window_seconds)",
    )
    put.add_argument("--out", type=Path, help="write a copy here instead of changing the file")
    put.add_argument(
        "--probe-audio",
        type=Path,
        help="recording or folder whose windows make the file's probe (default: synthetic "
        "soundscapes; `birdinfer verify` runs the probe on another CPU)",
    )
    put.add_argument(
        "--probe-tolerance",
        type=float,
        help="largest departure of probabilities the probe accepts (default 1e-3; a quantized "
        "file needs more: other CPUs run other INT8 kernels)",
    )
    put.add_argument("-q", "--quiet", action="store_true")
    put.set_defaults(handler=_card_set)


def _card_show(args: argparse.Namespace) -> int:
    from birdinfer.models.card_tool import show

    print(show(args.model))
    return 0


def _card_set(args: argparse.Namespace) -> int:
    from birdinfer.models.card_tool import build_card, set_card
    from birdinfer.models.export import read_class_names

    overrides = set_overrides(args.set)
    if args.preset:
        overrides["mel.preset"] = args.preset
    card = build_card(
        args.model,
        config=args.config,
        overrides=overrides,
        classes=read_class_names(args.classes) if args.classes else None,
        arch=args.arch,
        output=args.emits,
        waveform=args.waveform,
        outputs=tuple(args.graph_output),
    )
    path = set_card(args.model, card, args.out)
    print(f"card written to {path}: {card.num_classes} classes, input {card.input_shape}")
    return _card_probe(path, card, args)


def _card_probe(path: Path, card, args: argparse.Namespace) -> int:
    """Keep the card's probe while it fits the model's input, else store a new one."""
    from birdinfer.models.card_tool import set_card
    from birdinfer.models.probe import with_probe
    from birdinfer.quantize import kept_probe, self_probe

    kept = None if args.probe_audio or args.probe_tolerance else kept_probe(card, str(path))
    if kept is not None:
        print(f"probe kept: {kept.windows} windows, tolerance {kept.tolerance:.3g}")
        return 0
    tolerance = {"tolerance": args.probe_tolerance} if args.probe_tolerance else {}
    try:
        probe = self_probe(path, args.probe_audio, **tolerance)
    except (ModelError, AudioError) as exc:
        # The card is written; only `verify` and the load-time check lose their reference.
        print(f"warning: no probe stored, so runs will not check this file: {exc}")
        return 0 if args.probe_audio is None else 2
    set_card(path, with_probe(card, probe))
    print(f"probe stored: {probe.windows} windows, tolerance {probe.tolerance:.3g}")
    return 0
