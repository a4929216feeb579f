"""Before any audio is read, each member runs its probe on this CPU: a member that departs from
it is refused, replaced by its float sibling, or run with a warning (`inference.probe`), and the
run report says which, with the CPU and the runtime."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import onnx
import pytest

from birdinfer.errors import ModelError
from birdinfer.models.card_tool import read_card, set_card
from birdinfer.models.export import convert_openvino
from birdinfer.models.host import cpu_info
from birdinfer.models.probe import with_probe
from birdinfer.output import report_path_for
from birdinfer.quantize import self_probe
from birdinfer.runner import run
from tests.helpers import make_config, scores_of


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_onnx):
    """m.xml: the tiny model with its probe; m.ov-int8.xml: the same card over changed weights,
    as a file that runs wrongly here would be."""
    folder = tmp_path_factory.mktemp("probe_gate")
    good = shutil.copy(tiny_onnx, folder / "m.onnx")
    set_card(good, with_probe(read_card(good), self_probe(good)))
    card = read_card(good)
    proto = onnx.load(str(good))
    weight = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    values = onnx.numpy_helper.to_array(weight) * np.float32(1.5)
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(proto, str(folder / "changed.onnx"))
    convert_openvino(good, folder / "m.xml", card)
    convert_openvino(folder / "changed.onnx", folder / "m.ov-int8.xml", card)
    return folder


def _config(soundscape_dir, tmp_path, model, policy=None):
    inference = {"probe": policy} if policy else {}
    return make_config(soundscape_dir, model, tmp_path / "submission.csv", inference=inference)


def test_a_member_that_departs_from_its_probe_is_refused_before_any_audio_is_read(
    models, soundscape_dir, tmp_path
):
    with pytest.raises(ModelError) as refused:
        run(_config(soundscape_dir, tmp_path, models / "m.ov-int8.xml"))
    message = str(refused.value)
    assert "m.ov-int8.xml" in message and "departs" in message and "allowed" in message
    assert cpu_info()["model"] in message and "inference.probe: fallback" in message
    assert not (tmp_path / "submission.csv").exists()


def test_fallback_runs_the_float_sibling_and_the_report_says_so(
    models, soundscape_dir, tmp_path, caplog
):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with caplog.at_level(logging.WARNING):
        fell_back = run(
            _config(soundscape_dir, tmp_path / "a", models / "m.ov-int8.xml", "fallback")
        )
    assert "m.xml runs in its place" in caplog.text
    direct = run(_config(soundscape_dir, tmp_path / "b", models / "m.xml"))
    assert np.array_equal(scores_of(fell_back), scores_of(direct))
    report = json.loads(report_path_for(tmp_path / "a" / "submission.csv").read_text())
    probe = report["models"][0]["probe"]
    assert probe["status"] == "failed" and probe["action"] == "fallback"
    assert probe["fallback"]["model"].endswith("m.xml") and probe["fallback"]["status"] == "passed"
    assert report["models"][0]["path"].endswith("m.xml")


def test_warn_runs_the_member_anyway_with_a_warning(models, soundscape_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = run(_config(soundscape_dir, tmp_path, models / "m.ov-int8.xml", "warn"))
    assert "runs anyway" in caplog.text
    assert len(result.files) == 3
    report = json.loads(report_path_for(tmp_path / "submission.csv").read_text())
    assert report["models"][0]["probe"]["action"] == "kept (warn)"


def test_the_report_records_each_members_probe_cpu_and_runtime(models, soundscape_dir, tmp_path):
    run(_config(soundscape_dir, tmp_path, models / "m.xml"))
    probe = json.loads(report_path_for(tmp_path / "submission.csv").read_text())["models"][0][
        "probe"
    ]
    assert probe["status"] == "passed" and probe["departure"] <= probe["tolerance"]
    assert probe["runtime"].startswith("openvino ") and cpu_info()["model"] in probe["cpu"]
    assert probe["windows"] >= 1


def test_a_file_made_before_probes_runs_with_a_warning_that_it_was_not_checked(
    tiny_onnx, soundscape_dir, tmp_path, caplog
):
    with caplog.at_level(logging.WARNING):
        run(_config(soundscape_dir, tmp_path, tiny_onnx))
    assert "no probe in its card" in caplog.text
    report = json.loads(report_path_for(tmp_path / "submission.csv").read_text())
    assert report["models"][0]["probe"]["status"] == "absent"
