"""`birdinfer bench`: the user's budget report measures the models it is given, each alone and
end to end, and projects them onto each edition's budget."""

import json

import pytest

from birdinfer.budget import BudgetSettings, measure_budget
from birdinfer.budget.measure import EDITION_CONFIGS
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
