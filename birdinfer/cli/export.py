"""`birdinfer export`: a torch checkpoint (a timm arch or your own module) to ONNX and OpenVINO
files that carry their card, checked against torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from birdinfer.cli.common import set_overrides
from birdinfer.config import load_config
from birdinfer.errors import ConfigError


def add_command(sub) -> None:
    parser = sub.add_parser("export", help="timm checkpoint -> ONNX + OpenVINO with metadata")
    add_export_arguments(parser)
    parser.set_defaults(handler=_export)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--arch", help="timm model name, e.g. efficientnet_b0")
    source.add_argument(
        "--factory",
        metavar="MODULE:FUNCTION",
        help="your own model: package.module:build or path/to/file.py:build, a function that "
        "returns an nn.Module (given num_classes and in_chans when it takes them). This imports "
        "that module and runs its code, as python would: name only code you trust",
    )
    parser.add_argument(
        "--classes",
        required=True,
        type=Path,
        help="sample_submission.csv, taxonomy.csv (primary_label) or one name per line",
    )
    parser.add_argument(
        "--in-chans",
        type=int,
        help="the model's input channels (default: what the config's image steps make, 1 unless "
        "image.channels: 3)",
    )
    parser.add_argument(
        "--checkpoint", type=Path, help="trained weights (.pt/.pth/.ckpt); none = random"
    )
    parser.add_argument(
        "--checkpoint-key",
        metavar="KEY",
        help="the checkpoint entry holding the weights (default: the first of state_dict, "
        "model_state_dict, model, state_dict_ema, model_ema, ema)",
    )
    parser.add_argument(
        "--strip-prefix",
        metavar="PREFIX",
        help="use only the checkpoint keys under PREFIX, without it (e.g. backbone.)",
    )
    parser.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename checkpoint keys starting with OLD to start with NEW (repeatable)",
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="also unpickle objects other than weights (weights_only=False). Unpickling runs "
        "code stored in the file: use it only for checkpoints you made or fully trust",
    )
    parser.add_argument(
        "--graph-output",
        action="append",
        default=[],
        metavar="NAME[:HOLDS]",
        help="an output to export, by name (a dict key) or index, with what it holds: logits "
        "(default) or probabilities, e.g. clipwise:probabilities; repeat for several; "
        "none = every output. The first is the one a run scores by default",
    )
    parser.add_argument(
        "--constant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a constant for an input after the features (value read as YAML, e.g. 0 or "
        "[0, 1]), fed to every window; in the order forward() takes them",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output .onnx (the .xml goes beside it)"
    )
    parser.add_argument(
        "--config",
        default="default",
        help="config whose audio and mel settings the model was trained with",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set mel.n_mels=64",
    )
    parser.add_argument(
        "--waveform",
        action="store_true",
        help="the module takes raw audio (its mel inside the graph, or a foundation model): "
        "(batch, samples), or (batch, 1, samples) with --in-chans 1; audio.window_seconds "
        "and audio.sample_rate give the samples",
    )
    parser.add_argument("--no-openvino", action="store_true", help="ONNX only")
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="max abs diff allowed vs torch"
    )
    parser.add_argument(
        "--preset",
        help="the front-end preset the model was trained with (birdinfer frontend presets): "
        "replaces the config's mel settings; --set keys win over it",
    )
    parser.add_argument(
        "--probe-audio",
        type=Path,
        help="a recording for the parity probe (default: synthetic chirps over noise)",
    )
    parser.add_argument("-q", "--quiet", action="store_true")


def _export(args: argparse.Namespace) -> int:
    from birdinfer.config import MelConfig
    from birdinfer.models.export_job import ExportJob, run_export

    overrides = set_overrides(args.set)
    if args.preset:
        overrides.setdefault("mel.preset", args.preset)
    config = load_config(args.config, overrides)
    job = ExportJob(
        classes=args.classes,
        out=args.out,
        mel=config.mel or MelConfig(sample_rate=config.audio.sample_rate),
        image=config.image,
        window_seconds=config.audio.input_seconds,
        arch=args.arch,
        factory=args.factory,
        in_chans=args.in_chans,
        checkpoint=args.checkpoint,
        checkpoint_key=args.checkpoint_key,
        strip_prefix=args.strip_prefix,
        remap=tuple(_pair(item, "--remap") for item in args.remap),
        trust_checkpoint=args.trust_checkpoint,
        outputs=tuple(args.graph_output),
        constants=set_overrides(args.constant),
        openvino=not args.no_openvino,
        tolerance=args.tolerance,
        waveform=args.waveform,
        preset=overrides.get("mel.preset"),
        probe_audio=args.probe_audio,
    )
    result = run_export(job)
    print(f"onnx: {result.onnx_path} (max abs diff vs torch {result.onnx_max_abs_diff:.2e})")
    if result.openvino_path:
        print(
            f"openvino: {result.openvino_path} (max abs diff vs torch {result.openvino_max_abs_diff:.2e})"
        )
    for output in result.card.outputs:
        print(f"output {output.name}: {output.layout}, holds {output.holds}")
    return 0


def _pair(text: str, flag: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old:
        raise ConfigError(f"{flag} {text!r}: expected OLD=NEW")
    return old, new
