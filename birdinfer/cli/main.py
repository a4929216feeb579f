"""The `birdinfer` command's entry point: parse, run the command's handler, and turn errors and
signals into exit codes. Each command's flags and handler live in a module of their own."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from birdinfer.cli.bench import add_command as add_bench
from birdinfer.cli.card import add_command as add_card
from birdinfer.cli.common import add_legacy_flags
from birdinfer.cli.export import add_command as add_export
from birdinfer.cli.frontend import add_command as add_frontend
from birdinfer.cli.infer import add_command as add_infer
from birdinfer.cli.quantize import add_command as add_quantize
from birdinfer.cli.score import add_command as add_score
from birdinfer.cli.verify import add_command as add_verify
from birdinfer.errors import (
    AudioError,
    BirdinferError,
    ConfigError,
    JournalError,
    ModelError,
    SubmissionError,
)

# In `birdinfer --help`'s order: each command module's add_command registers its parser(s).
ADD_COMMANDS = {
    "infer": add_infer,
    "score": add_score,
    "export": add_export,
    "quantize": add_quantize,
    "verify": add_verify,
    "bench": add_bench,
    "card": add_card,
    "frontend": add_frontend,
}
COMMANDS = tuple(ADD_COMMANDS)
DESCRIPTION = """The `birdinfer` command: `infer` (the default: with no arguments, the embedded
demo), `score`, `export`, `quantize`, `verify`, `bench`, `card` and `frontend`."""

# A problem the user can fix ends the command with exit code 2 and one "error:" line; any other
# exception is a bug and keeps its traceback. Subclasses (ExportError is a ModelError) follow
# their base's entry.
EXIT_CODES: dict[type[BaseException], int] = {
    ConfigError: 2,
    AudioError: 2,
    ModelError: 2,
    SubmissionError: 2,
    JournalError: 2,
    BirdinferError: 2,
    FileNotFoundError: 2,
}


def exit_code(exc: BaseException) -> int:
    """The exit code of the nearest class in `exc`'s ancestry that EXIT_CODES names."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: the command stops as on Ctrl-C (every executor
    stops its threads and kills its worker processes on the way out), exit code 143."""


def _terminate(signum, frame) -> None:
    raise Terminated()


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt and SIGTERM Terminated while the command runs, in the
    main thread only (where Python delivers signals). SIGINT's handler is installed even when
    the process started with SIGINT ignored (a job started from a background shell inherits
    that, and would otherwise ignore Ctrl-C's signal). The previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    with _stopped_by_signals(), _deprecations_as_lines():
        return _main(argv)


@contextmanager
def _deprecations_as_lines() -> Iterator[None]:
    """An old spelling's FutureWarning prints as one "warning:" line, as an error prints one
    "error:" line: the file and line of the code that noticed it mean nothing to a user of the
    command. Other warnings keep Python's format."""
    previous = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None):
        if issubclass(category, FutureWarning):
            return f"warning: {message}\n"
        return previous(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning
    try:
        yield
    finally:
        warnings.formatwarning = previous


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        argv = ["infer", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except (BirdinferError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:  # every write is atomic: earlier outputs are intact
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"interrupted ({name}): nothing more was written", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser, each with the old spellings of its renamed flags."""
    parser = argparse.ArgumentParser(prog="birdinfer", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for add_command in ADD_COMMANDS.values():
        add_command(sub)
    for name, command in subcommands(parser):
        add_legacy_flags(command, name)
    return parser


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> list:
    """(name, parser) of every command and action under `parser`: ("card set", ...), ..."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                path = f"{prefix} {name}".strip()
                found += [(path, child), *subcommands(child, path)]
    return found
