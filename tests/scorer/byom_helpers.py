"""What the bring-your-model tests share: the zoo (tests/models/byom_zoo.py, loaded by path as
`--factory` loads it), seeded builds, the front end and classes they use, and the parity check.
Torch is imported only inside the functions: test modules skip before calling them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from birdinfer.config import MelConfig
from birdinfer.demo import DEMO_SPECIES

ZOO = Path(__file__).resolve().parents[1] / "models" / "byom_zoo.py"
MEL = MelConfig(n_fft=1024, hop_length=320, n_mels=64, fmin=20, fmax=16000)
CODES = [s.code for s in DEMO_SPECIES]
TOLERANCE = 1e-4


def zoo(name: str):
    from birdinfer.models.build import load_factory

    return load_factory(f"{ZOO}:{name}")


def build(name: str, seed: int = 0, classes: int = len(CODES)):
    """A zoo model with seeded weights: the measured differences repeat from run to run."""
    import torch

    torch.manual_seed(seed)
    return zoo(name)(classes)


def max_diff(
    ours: pd.DataFrame, reference: pd.DataFrame, label: str, columns: list[str] = CODES
) -> float:
    """The largest difference between our rows and the reference's (same row ids), after
    checking that the reference's rows differ (parity on near-constant scores proves nothing)."""
    assert sorted(ours.index) == sorted(reference.index)
    spread = float(reference[columns].to_numpy().std(axis=0).max())
    print(f"{label}: row-to-row spread {spread:.3f}")
    assert spread > 0.01
    diff = float(
        np.abs(ours.loc[reference.index, columns].to_numpy() - reference[columns].to_numpy()).max()
    )
    print(f"parity {label}: max abs diff vs torch {diff:.2e}")
    return diff
