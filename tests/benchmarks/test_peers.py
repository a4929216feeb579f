"""The peer comparison's arithmetic: medians per pipeline, ratios against the recipe."""

from pathlib import Path

import pytest
from peers import PeerRuns, PeerSettings, markdown, report_data


def settings(tmp_path: Path) -> PeerSettings:
    return PeerSettings(audio_dir=tmp_path, models={}, cores=2, mel={}, rounds=3)


def test_medians_per_window_and_ratios_to_the_recipe(tmp_path):
    runs = {
        "naive": PeerRuns("naive", [40.0, 30.0, 35.0], [31.0, 30.0, 29.0], windows=1000),
        "recipe-2024": PeerRuns("recipe-2024", [11.0, 12.0, 10.0], [9.0, 8.0, 100.0], 1000),
        "birdinfer-ov-fp32": PeerRuns("birdinfer-ov-fp32", [8.0, 9.0, 7.0], [6.0, 7.0, 5.0], 1000),
    }
    rows = {r["pipeline"]: r for r in report_data(settings(tmp_path), runs)["rows"]}
    # medians, not means: one disturbed round (100 s) does not move the recipe's figure
    assert rows["recipe-2024"]["in_process_ms_per_window"] == 9.0
    assert rows["recipe-2024"]["whole_ms_per_window"] == 11.0
    assert rows["birdinfer-ov-fp32"]["vs_recipe_in_process"] == pytest.approx(9.0 / 6.0, abs=1e-3)
    assert rows["birdinfer-ov-fp32"]["vs_recipe_whole"] == pytest.approx(11.0 / 8.0, abs=1e-3)
    assert rows["birdinfer-ov-fp32"]["vs_naive_in_process"] == pytest.approx(30.0 / 6.0, abs=1e-3)
    assert rows["naive"]["vs_recipe_in_process"] == pytest.approx(9.0 / 30.0, abs=1e-3)


def test_the_markdown_table_holds_both_figures(tmp_path):
    runs = {
        "recipe-2024": PeerRuns("recipe-2024", [10.0], [8.0], 1000),
        "birdinfer-ov-int8": PeerRuns("birdinfer-ov-int8", [5.0], [4.0], 1000),
    }
    text = markdown(report_data(settings(tmp_path), runs))
    assert "| birdinfer-ov-int8 | 5.00 | 4.00 | 2.00 / 2.00 | - |" in text
