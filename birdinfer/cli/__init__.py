"""The `birdinfer` command line: one module per command, `main` its entry point."""

from birdinfer.cli.main import main

__all__ = ["main"]
