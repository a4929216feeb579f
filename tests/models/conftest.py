"""Fixtures of the model-file tests."""

import pytest

from birdinfer.demo import DEMO_MODEL
from birdinfer.models import CARD_KEY


@pytest.fixture
def bare_model(tmp_path):
    """The demo model as a notebook's own torch.onnx.export leaves it: no card."""
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(DEMO_MODEL))
    kept = [p for p in proto.metadata_props if p.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    path = tmp_path / "bare.onnx"
    onnx.save(proto, str(path))
    return path
