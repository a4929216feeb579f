"""The lab timing-budget report: figures come from the measurements given, projections add up."""

import json

import pytest
from benchmark import BenchSettings, assemble

from birdinfer.budget import write_report
from birdinfer.budget.measure import Measurement, editions, project


def fake_run():
    settings = BenchSettings(rss_files=(100, 400), reserve_minutes=5.0)
    decode = Measurement("decode alone", 1.2, 480)  # 2.5 ms/window
    mel = Measurement("mel alone", 0.96, 480)  # 2.0 ms/window
    alone = {"OpenVINO INT8": Measurement("OpenVINO INT8 alone", 1.44, 480)}  # 3.0 ms/window
    measurements = {
        "baseline": Measurement("naive", 48.0, 480),  # 100 ms/window
        "OpenVINO INT8": Measurement("OpenVINO INT8", 4.8, 480, stage_seconds={"decode": 1.2}),
    }
    ensemble = Measurement("3 x OpenVINO INT8", 7.2, 480)
    return settings, assemble(
        settings,
        2,
        40,
        decode,
        mel,
        alone,
        measurements,
        ensemble,
        "OpenVINO INT8",
        {100: 300.0, 400: 315.0},
    )


def test_report_figures_are_the_measured_ones():
    _, data = fake_run()
    rows = {r["configuration"]: r for r in data["configurations"]}
    int8 = rows["OpenVINO INT8"]
    assert int8["ms_per_window"] == 10.0
    assert int8["realtime_factor"] == 500.0  # 5 s of audio per 10 ms
    assert int8["speedup_vs_baseline"] == 10.0
    assert int8["sum_of_stages_alone_ms"] == 7.5 and int8[
        "end_to_end_over_sum_of_stages"
    ] == pytest.approx(1.333, abs=1e-3)
    assert data["ensemble"]["ratio"] == pytest.approx(15.0 / (4.5 + 9.0), abs=1e-3)
    assert data["rss_growth"] == pytest.approx(0.05)


def test_projection_counts_windows_and_models():
    settings = BenchSettings(kaggle_scale=1.0, reserve_minutes=5.0)
    rows = project(Measurement("m", 12.0, 1200), front_ms=4.0, settings=settings)  # 10 ms/window
    edition = next(e for e in editions() if e.name == "birdclef-2024")
    assert (edition.test_files, edition.file_seconds, edition.budget_minutes) == (1100, 240, 120)
    windows = 1100 * 4 * 12  # 52,800 windows of 5 s
    budget = 120
    assert rows["birdclef-2024"]["minutes"] == pytest.approx(windows * 10 / 60000, abs=0.05)
    per_model = windows * 6 / 60000  # 10 ms/window minus the 4 ms front end
    front = windows * 4 / 60000
    assert rows["birdclef-2024"]["models_that_fit"] == int((budget - 5 - front) // per_model)


def test_report_files_are_written(tmp_path):
    _, data = fake_run()
    paths = write_report(data, tmp_path)
    assert json.loads(paths["json"].read_text())["configurations"][1]["ms_per_window"] == 10.0
    text = paths["markdown"].read_text()
    assert "| OpenVINO INT8 | 10.00 | 500x | 10.00x | 1.33 |" in text
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
