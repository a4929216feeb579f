"""A BirdNET-shaped member (raw 3 s at 48 kHz, `Genus species_Common` labels, an embedding) in
a 32 kHz run beside a 5 s CNN: tiled over the rows, mapped by scientific name from a
taxonomy.csv, blended at weight 0.2 under rank_mean. A tiny TFLite graph stands in for BirdNET;
skipped without ai-edge-litert."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("pyarrow")

from birdinfer.config import from_dict  # noqa: E402
from birdinfer.models.card_tool import build_card, set_card  # noqa: E402
from birdinfer.runner.steps import run  # noqa: E402
from birdinfer.scoring import validate_submission  # noqa: E402
from tests.helpers import DEMO_CODES, tiny_model  # noqa: E402
from tests.tflite_helpers import tiny_tflite  # noqa: E402

LABELS = ["Bubo virginianus_Great Horned Owl", "Homo sapiens_Human", "Toxostoma rufum_Thrasher"]
SCIENTIFIC = {DEMO_CODES[0]: "Bubo virginianus", DEMO_CODES[1]: "toxostoma rufum"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("birdnet_member")
    cnn = tiny_model(folder / "cnn", seed=4, openvino=False)
    path, _, _ = tiny_tflite(folder / "birdnet.tflite", 144000, len(LABELS), seed=3, scale=0.01)
    card = build_card(
        path,
        overrides={"audio.sample_rate": 48000, "audio.window_seconds": 3},
        classes=LABELS,
        waveform=True,
        outputs=("scores:probabilities", "embedding:embedding"),
    )
    set_card(path, card)
    taxonomy = folder / "taxonomy.csv"
    rows = [(c, SCIENTIFIC.get(c, f"Species {i}")) for i, c in enumerate(DEMO_CODES)]
    taxonomy.write_text("primary_label,scientific_name\n" + "".join(f"{a},{b}\n" for a, b in rows))
    return cnn, path, taxonomy


def config(folder, tmp_path, models, pooling="max"):
    cnn, birdnet, taxonomy = models
    member = {
        "path": str(birdnet),
        "weight": 0.2,
        "geometry": "tiled",
        "tile_overlap": 1.0,
        "frame_pooling": pooling,
        "mapping": str(taxonomy),
        "embedding": "embedding",
    }
    return from_dict(
        {
            "input_dir": str(folder),
            "models": [str(cnn), member],
            "inference": {"combine": "rank_mean"},
            "output": {
                "submission": str(tmp_path / "s.csv"),
                "windows": str(tmp_path / "w.parquet"),
                "progress": False,
            },
        }
    )


def test_cnn_and_birdnet_at_weight_02_give_a_valid_submission(soundscape_dir, models, tmp_path):
    result = run(config(soundscape_dir, tmp_path, models))
    submission = pd.read_csv(tmp_path / "s.csv", dtype={"row_id": str})
    assert list(submission.columns[1:]) == DEMO_CODES
    assert validate_submission(submission, sample_columns=DEMO_CODES).errors == []
    report = json.loads(result.report_path.read_text())
    described = report["models"][1]
    assert described["geometry"] == "tiled" and described["tile_starts"] == [0.0, 2.0]
    assert described["resampled_to"] == 48000
    assert described["columns_not_covered"] == DEMO_CODES[2:]
    table = pd.read_parquet(tmp_path / "w.parquet")
    embedded = [c for c in table.columns if str(c).startswith("embedding")]
    assert embedded and len(table) == len(submission)
    # its own stage, resampling included: what the time guard charges it
    assert any(
        key.startswith("model ") and "birdnet" in key for key in json.dumps(report).split('"')
    )


def test_a_row_pools_its_tiles_by_max_or_mean(soundscape_dir, models, tmp_path):
    by_max = run(config(soundscape_dir, tmp_path / "max", models, "max"))
    by_mean = run(config(soundscape_dir, tmp_path / "mean", models, "mean"))
    for high, low in zip(by_max.files, by_mean.files, strict=True):
        covered = [0, 1]
        a, b = high.member_scores[1][:, covered], low.member_scores[1][:, covered]
        assert (a >= b - 1e-7).all() and (a - b).max() > 1e-4
