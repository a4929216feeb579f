"""`birdinfer frontend check|presets`: birdinfer's model input compared with a reference stage by
stage, and the named front ends."""

from __future__ import annotations

import argparse

from birdinfer.cli.common import set_overrides


def add_command(sub) -> None:
    frontend = sub.add_parser("frontend", help="check the front end against training, list presets")
    actions = frontend.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check", help="compare birdinfer's model input with a reference, stage by stage"
    )
    check.add_argument("recording", help="an audio file")
    check.add_argument("--model", help="model file whose card gives the settings")
    check.add_argument("--config", help="or a config (YAML or bundled name) with mel/image keys")
    check.add_argument("--preset", help="or a front-end preset")
    check.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a config key"
    )
    check.add_argument(
        "--reference",
        default="torchaudio",
        help="torchaudio, librosa, or a .npy of features your training code saved for the "
        "first --window-count windows of the recording (default: %(default)s)",
    )
    check.add_argument(
        "--window-count", type=int, default=4, help="windows compared (from the start)"
    )
    check.add_argument("-q", "--quiet", action="store_true")
    check.set_defaults(handler=_frontend_check)
    presets = actions.add_parser("presets", help="list the named front ends and their sources")
    presets.add_argument("-q", "--quiet", action="store_true")
    presets.set_defaults(handler=_frontend_presets)


def _frontend_check(args: argparse.Namespace) -> int:
    from birdinfer.models.card_tool import check_frontend

    overrides = set_overrides(args.set)
    if args.preset:
        overrides["mel.preset"] = args.preset
    result = check_frontend(
        args.recording, args.model, args.config, overrides, args.reference, args.window_count
    )
    print(result.describe())
    return 0 if result.first_divergence is None else 1


def _frontend_presets(args: argparse.Namespace) -> int:
    from birdinfer.presets import PRESETS

    for name, entry in PRESETS.items():
        print(f"{name}\n  {entry['summary']}\n  source: {entry['source']}")
    return 0
