"""`birdinfer bench`: the user's budget report measures the models it is given, each alone and
end to end, and projects them onto each edition's budget."""

import json
import sys

import pytest

from birdinfer.budget import BudgetSettings, measure_budget, write_report
from birdinfer.budget.measure import EDITION_CONFIGS, Measurement, configuration_row
from birdinfer.cli import main


@pytest.mark.slow
def test_bench_measures_each_given_model_and_their_ensemble(
    soundscape_dir, tiny_onnx, tiny_xml, tmp_path, capsys
):
    report = tmp_path / "report"
    args = ["bench", "--input", str(soundscape_dir), "--report-dir", str(report), "-q"]
    assert main([*args, "--model", str(tiny_onnx), "--model", str(tiny_xml), "--cores", "1"]) == 0
    assert f"report: {report / 'bench.json'}" in capsys.readouterr().out
    data = json.loads((report / "bench.json").read_text())
    assert data["machine"]["cores"] == 1
    assert [row["configuration"] for row in data["configurations"]] == [
        tiny_onnx.name,
        tiny_xml.name,
    ]
    stages = data["stages_alone_ms_per_window"]
    assert {"decode", f"{tiny_onnx.name} alone", f"{tiny_xml.name} alone"} < set(stages)
    assert data["workload"]["windows"] == 16  # 12 + 3 + 1 windows of 5 s
    assert data["ensemble"]["configuration"] == "all 2 members"
    for row in data["configurations"]:
        assert len(row["projection"]) == len(EDITION_CONFIGS)
        for edition in row["projection"].values():
            assert edition["fits"] == (edition["minutes"] <= edition["budget_minutes"] - 5.0)
    assert "| configuration | ms/window |" in (report / "bench.md").read_text()


@pytest.mark.slow
def test_bench_writes_nothing_outside_its_report_folder(soundscape_dir, tiny_onnx, tmp_path):
    settings = BudgetSettings(
        models=(str(tiny_onnx),),
        input_dir=soundscape_dir,
        report_dir=tmp_path / "report",
        cores=1,
        repeats=1,
    )
    data = measure_budget(settings)
    assert data["ensemble"] is None  # one model: nothing to combine
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")}
    assert written == {"report"}
    row = data["configurations"][0]
    stages = data["stages_alone_ms_per_window"]
    front = sum(v for k, v in stages.items() if k == "decode" or k.startswith("front end"))
    alone = stages[f"{tiny_onnx.name} alone"]
    assert row["sum_of_stages_alone_ms"] == pytest.approx(front + alone, abs=2e-3)


def test_the_report_is_written_without_matplotlib_less_its_chart(tmp_path, monkeypatch):
    settings = BudgetSettings(kaggle_scale=1.0, reserve_minutes=5.0)
    measured = Measurement("model.onnx", 4.8, 480)  # 10 ms a window
    row = configuration_row(measured, front_ms=4.5, alone_ms=3.0, baseline=None, settings=settings)
    assert row["sum_of_stages_alone_ms"] == 7.5
    assert row["end_to_end_over_sum_of_stages"] == pytest.approx(10 / 7.5, abs=1e-3)
    workload = {"files": 1, "seconds_per_file": 60, "windows": 480, "batch_size": 16}
    data = {
        "machine": {"cores": 2, "cpu": "test", "kaggle_scale": 1.0},
        "workload": {**workload, "model": "model.onnx"},
        "stages_alone_ms_per_window": {"decode": 2.5, "model.onnx alone": 3.0},
        "configurations": [row],
        "ensemble": None,
    }
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing it raises ImportError
    paths = write_report(data, tmp_path)
    assert set(paths) == {"json", "markdown"} and not (tmp_path / "bench.png").exists()
    assert "| model.onnx | 10.00 | 500x | - | 1.33 |" in paths["markdown"].read_text()
