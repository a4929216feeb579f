"""What every torch-side model tool shares: its error type and the lazy torch import.

The inference path never imports this module's callers; torch and timm come from the `[export]`
extra (Kaggle images already carry both).
"""

from __future__ import annotations

from birdinfer.errors import ModelError


class ExportError(ModelError):
    """Export could not produce a faithful model file; the message says why."""


def require_torch():
    """(torch, timm), or an ExportError that says how to install them."""
    try:
        import timm
        import torch
    except ImportError as exc:
        raise ExportError(
            "export needs torch and timm: pip install 'birdinfer[export]' "
            "(on Kaggle both are already installed)"
        ) from exc
    return torch, timm
