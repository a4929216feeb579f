"""Fixtures of the scorer tests: the runner's short soundscapes."""

from tests.runner.conftest import short_files  # noqa: F401 - a fixture, found by name
