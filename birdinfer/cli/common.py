"""What every command shares: the flags renamed from the previous release (one table), and
`--set KEY=VALUE` read as config overrides.

A flag name means one thing in every command (tests/test_cli.py checks it), so a name that meant
something else in one command was renamed there; the old spelling keeps working until the release
its entry in the one legacy table (birdinfer.config.legacy) names, with a warning naming the new
flag.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from birdinfer.config import LEGACY, parse_override


def _renamed_flags() -> tuple[tuple[str, str, str, str], ...]:
    """(command, old spelling, new spelling, removing release) from the legacy table."""
    rows = []
    for entry in LEGACY:
        if entry.kind == "flag":
            command, _, old = entry.old.removeprefix("birdinfer ").rpartition(" ")
            rows.append((command, old, entry.new.rpartition(" ")[2], entry.removed_in))
    return tuple(rows)


RENAMED_FLAGS = _renamed_flags()

# (command, flag, where it went): flags whose code left the package name its new home.
MOVED_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("bench", "--peers", "python benchmarks/peers.py"),
    ("bench", "--soak", "python benchmarks/soak.py --files N"),
    ("bench", "--rounds", "python benchmarks/peers.py --rounds N"),
    ("bench", "--no-baseline", "python benchmarks/benchmark.py --no-baseline"),
    ("bench", "--rss-files", "python benchmarks/benchmark.py --rss-files N1 N2"),
)


class _Renamed(argparse.Action):
    """An old spelling: warns, then does what the new flag does (same type, choices, values)."""

    def __init__(
        self, option_strings, dest, target: argparse.Action, new: str, removed_in: str, **kwargs
    ):
        super().__init__(
            option_strings,
            target.dest,
            nargs=target.nargs,
            const=target.const,
            default=argparse.SUPPRESS,
            type=target.type,
            choices=target.choices,
            help=argparse.SUPPRESS,
            metavar=target.metavar,
        )
        self.target, self.new, self.removed_in = target, new, removed_in

    def __call__(self, parser, namespace, values, option_string=None):
        # Attributed to the command, not to argparse's line that called this action.
        warnings.warn_explicit(
            f"{option_string} is deprecated: use {self.new} "
            f"(the old spelling goes in birdinfer {self.removed_in})",
            FutureWarning,
            filename=parser.prog,
            lineno=0,
        )
        self.target(parser, namespace, values, self.new)


class _Moved(argparse.Action):
    """A flag whose code left the package: the parser's error names where it went."""

    def __init__(self, option_strings, dest, where: str, **kwargs):
        super().__init__(
            option_strings, dest, nargs="*", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        self.where = where

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} left the package: run {self.where} from a checkout")


def add_legacy_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """The old spellings of `command` (e.g. "card set"), after its own flags are added."""
    for name, old, new, removed_in in RENAMED_FLAGS:
        if name == command:
            target = parser._option_string_actions[new]  # a KeyError here: a stale table entry
            parser.add_argument(old, action=_Renamed, target=target, new=new, removed_in=removed_in)
    for name, flag, where in MOVED_FLAGS:
        if name == command:
            parser.add_argument(flag, action=_Moved, where=where)


def set_overrides(items: list[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` items as dotted config keys."""
    return dict(parse_override(item) for item in items)
