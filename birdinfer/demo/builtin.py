"""The demo model shipped in the package, registered as `builtin:demo` (the default config's
model): the demo provides its file, so the core never knows where the demo keeps it."""

from __future__ import annotations

from pathlib import Path

from birdinfer.models.files.locate import register_builtin

DEMO_MODEL = Path(__file__).resolve().parent / "assets" / "demo_model.onnx"

register_builtin("demo", DEMO_MODEL)
