"""Tiled geometry (BirdNET's 3 s windows over 5 s rows) and labels mapped by scientific name
from a competition's taxonomy.csv."""

from __future__ import annotations

import numpy as np
import pytest

from birdinfer.config import AudioConfig
from birdinfer.scorer.geometry import Geometry, tile_starts
from birdinfer.scorer.label_map import ColumnMap


@pytest.mark.parametrize(
    ("overlap", "starts"), [(1.0, (0.0, 2.0)), (2.0, (0.0, 1.0, 2.0)), (0.0, (0.0, 2.0))]
)
def test_tiles_cover_the_row_stepped_by_window_minus_overlap(overlap, starts):
    assert tile_starts(5.0, 3.0, overlap) == starts


def test_an_overlap_as_long_as_the_window_is_refused():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(5.0, 3.0, 3.0)


def test_a_resampled_tile_is_cut_with_the_filters_margin_and_comes_out_at_the_model_rate():
    geometry = Geometry.for_member("tiled", AudioConfig(sample_rate=32000), 3.0, 48000, 2.0)
    margin = geometry.margin
    assert margin > 0
    assert geometry.cut.length == 96000 + 2 * margin
    assert geometry.cut.offsets == (-margin, 32000 - margin, 64000 - margin)
    windows = np.zeros((2, geometry.cut.length), np.float32)
    assert geometry.model_inputs(windows).shape == (2, 144000)


def test_a_tile_at_the_run_rate_is_not_resampled():
    geometry = Geometry.for_member("tiled", AudioConfig(sample_rate=48000), 3.0, 48000, 1.0)
    assert geometry.margin == 0 and geometry.cut.length == 144000
    windows = np.ones((1, 144000), np.float32)
    assert geometry.model_inputs(windows) is windows


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_a_row_pools_its_tiles(pooling):
    geometry = Geometry.for_member("tiled", AudioConfig(sample_rate=32000), 3.0, 48000, 2.0)
    per_tile = np.arange(2 * 3 * 4, dtype=np.float32).reshape(6, 4) % 5
    rows = geometry.file_rows(per_tile, 2, pooling)
    tiles = per_tile.reshape(2, 3, 4)
    expected = tiles.max(axis=1) if pooling == "max" else tiles.mean(axis=1)
    np.testing.assert_allclose(rows, expected)


def test_taxonomy_maps_labels_by_scientific_name_and_leaves_the_rest_uncovered(tmp_path):
    taxonomy = tmp_path / "taxonomy.csv"
    taxonomy.write_text(
        "primary_label,inat_taxon_id,scientific_name,common_name,class_name\n"
        "eurbla,1,Turdus merula,Blackbird,Aves\n"
        "grtit1,2,parus major,Great Tit,Aves\n"
        "1139490,3,Boana faber,Smith frog,Amphibia\n"
    )
    labels = ["Parus major_Great Tit", "Strix varia_Barred Owl", "Turdus merula_Eurasian Blackbird"]
    columns = ["1139490", "eurbla", "grtit1"]
    mapped = ColumnMap.from_file(taxonomy, labels, columns, "birdnet")
    assert mapped.sources == ((), (2,), (0,))
    assert mapped.covers.tolist() == [False, True, True]
    scores = np.array([[0.1, 0.2, 0.3]], np.float32)
    np.testing.assert_allclose(mapped.apply(scores), [[0.0, 0.3, 0.1]])
