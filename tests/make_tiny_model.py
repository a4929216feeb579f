"""Regenerate tests/data/tiny_model.onnx, the committed model the engine tests run on.

    python tests/make_tiny_model.py           # rewrite the file
    python tests/make_tiny_model.py --check   # exit 1 if the committed file differs

Built with `onnx.helper` alone, no torch: Conv -> ReLU -> Conv (stride 2) -> ReLU over
(batch, 1, n_mels, frames) with a dynamic batch axis, then the mean over time of the window's first
half minus that of its second half, per channel and mel band, -> Gemm; seeded weights, and the
birdinfer card in `metadata_props` as `birdinfer export` writes it.

Why the halves: a global average pool gives nearly the same features for every window (measured:
logits varying by 0.01-0.04 across windows around offsets of about 1), so invariance checks would
compare near-constants. The difference of the halves is zero for a steady background and moves
with the calls, so the logits are centred on 0 without data-derived biases; the head is scaled so
that they spread over several units (std ~2 across windows). The same seed gives the same bytes
(fixed IR version, opset and producer; numpy's seeded generator), so `--check` guards against drift.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from birdinfer.config import MelConfig
from birdinfer.demo import DEMO_SPECIES
from birdinfer.models.card import CARD_KEY, ModelCard
from birdinfer.models.export import INPUT_NAME, OUTPUT_NAME, make_card

DATA = Path(__file__).resolve().parent / "data"
TINY_MODEL = DATA / "tiny_model.onnx"
ARCH = "tiny_cnn"
DEMO_CODES = tuple(s.code for s in DEMO_SPECIES)
# The mel preset of the tiny model (and of the tests): smaller than the default, so runs are fast.
TEST_MEL = MelConfig(n_fft=1024, hop_length=320, n_mels=64, fmin=20, fmax=16000)
OPSET, IR_VERSION = 17, 8  # fixed, so that a newer onnx writes the same bytes
CHANNELS = (8, 16)
HEAD_SCALE = 10.0


def tiny_card(
    mel: MelConfig = TEST_MEL,
    classes: Sequence[str] = DEMO_CODES,
    window_seconds: float = 5.0,
) -> ModelCard:
    return make_card(ARCH, list(classes), mel, window_seconds)


def build_tiny_model(card: ModelCard, seed: int = 0):
    """The tiny CNN for `card` (its input shape and class count) as an onnx ModelProto."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    c1, c2 = CHANNELS
    _, n_mels, frames = card.input_shape
    mels, steps = (n_mels + 1) // 2, (frames + 1) // 2  # after the stride-2 convolution
    half = steps // 2

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    head = normal((card.num_classes, c2 * mels), HEAD_SCALE / np.sqrt(c2 * mels))
    tensors = {
        "conv1.weight": normal((c1, 1, 3, 3), np.sqrt(2 / 9)),
        "conv1.bias": normal((c1,), 0.1),
        "conv2.weight": normal((c2, c1, 3, 3), np.sqrt(2 / (9 * c1))),
        "conv2.bias": normal((c2,), 0.1),
        "head.weight": head,
        "head.bias": np.zeros(card.num_classes, np.float32),
        "time.axis": np.array([3], np.int64),
        "early.start": np.array([0], np.int64),
        "early.end": np.array([half], np.int64),
        "late.start": np.array([steps - half], np.int64),
        "late.end": np.array([steps], np.int64),
    }
    node = helper.make_node
    nodes = [
        node("Conv", [INPUT_NAME, "conv1.weight", "conv1.bias"], ["c1"], pads=[1, 1, 1, 1]),
        node("Relu", ["c1"], ["r1"]),
        node("Conv", ["r1", "conv2.weight", "conv2.bias"], ["c2"], pads=[1] * 4, strides=[2, 2]),
        node("Relu", ["c2"], ["r2"]),
        node("Slice", ["r2", "early.start", "early.end", "time.axis"], ["early"]),
        node("Slice", ["r2", "late.start", "late.end", "time.axis"], ["late"]),
        node("ReduceMean", ["early"], ["early.mean"], axes=[3], keepdims=0),
        node("ReduceMean", ["late"], ["late.mean"], axes=[3], keepdims=0),
        node("Sub", ["early.mean", "late.mean"], ["contrast"]),
        node("Flatten", ["contrast"], ["features"]),
        node("Gemm", ["features", "head.weight", "head.bias"], [OUTPUT_NAME], transB=1),
    ]
    batch = "batch"
    graph = helper.make_graph(
        nodes,
        ARCH,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, *card.input_shape])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch, card.num_classes])],
        [numpy_helper.from_array(value, name) for name, value in tensors.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="birdinfer tests/make_tiny_model.py",
    )
    helper.set_model_props(model, {CARD_KEY: card.to_json()})
    return model


def tiny_model_bytes(card: ModelCard | None = None, seed: int = 0) -> bytes:
    import onnx

    model = build_tiny_model(card or tiny_card(), seed)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def write_tiny_model(path: Path, card: ModelCard | None = None, seed: int = 0) -> Path:
    """Write the tiny model for `card` (default: the test mel and the demo classes) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiny_model_bytes(card, seed))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    data = tiny_model_bytes()
    if args.check:
        stale = not TINY_MODEL.is_file() or TINY_MODEL.read_bytes() != data
        print(f"{TINY_MODEL}: {'stale, run tests/make_tiny_model.py' if stale else 'up to date'}")
        return 1 if stale else 0
    TINY_MODEL.parent.mkdir(parents=True, exist_ok=True)
    TINY_MODEL.write_bytes(data)
    print(f"wrote {TINY_MODEL} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
