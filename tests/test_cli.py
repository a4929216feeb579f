"""The command line as a user meets it: the demo with no arguments, a real folder, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pandas as pd
import pytest

from birdinfer.cli import main
from birdinfer.demo.builtin import DEMO_MODEL
from birdinfer.models.card import CARD_KEY
from tests.helpers import DEMO_CODES, REPO


def test_infer_on_a_folder(soundscape_dir, tiny_onnx, tmp_path, capsys):
    out = tmp_path / "sub" / "submission.csv"
    code = main(
        [
            "infer",
            "--input",
            str(soundscape_dir),
            "--model",
            str(tiny_onnx),
            "--output",
            str(out),
            "--workers",
            "2",
            "--threads",
            "1",
            "--no-progress",
            "-q",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"submission: {out} (16 rows x 7 classes)" in printed
    assert "files: 3 processed (16 windows), 0 skipped" in printed
    assert list(pd.read_csv(out, nrows=0).columns) == ["row_id", *DEMO_CODES]


def test_bad_config_exits_2_naming_the_key(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("inference:\n  batch_sise: 4\n")
    assert main(["infer", "--config", str(config), "-q"]) == 2
    assert "inference.batch_sise" in capsys.readouterr().err


def test_contradicting_model_exits_2_before_reading_audio(
    soundscape_dir, tiny_onnx, tmp_path, capsys
):
    code = main(
        [
            "infer",
            "--input",
            str(soundscape_dir),
            "--model",
            str(tiny_onnx),
            "--output",
            str(tmp_path / "s.csv"),
            "--set",
            "audio.sample_rate=22050",
            "-q",
        ]
    )
    assert code == 2
    assert "audio.sample_rate: config 22050, model 32000" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_missing_model_file_exits_2(tmp_path, capsys):
    code = main(["infer", "--input", str(tmp_path), "--model", str(tmp_path / "nope.onnx"), "-q"])
    assert code == 2
    assert "nope.onnx: model file not found" in capsys.readouterr().err


def test_missing_metadata_exits_2_with_the_reason(soundscape_dir, tiny_onnx, tmp_path, capsys):

    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    code = main(["--input", str(soundscape_dir), "--model", str(bare), "-q", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bare}: no '{CARD_KEY}' metadata" in err and "Traceback" not in err


def test_shared_recordings_end_to_end(shared_audio, tiny_onnx, tmp_path):
    out = tmp_path / "submission.csv"
    assert (
        main(
            [
                "infer",
                "--input",
                str(shared_audio),
                "--model",
                str(tiny_onnx),
                "--output",
                str(out),
                "--no-progress",
                "-q",
            ]
        )
        == 0
    )
    frame = pd.read_csv(out)
    assert {
        "1min_60",
        "birds_10s_15",
        "great_plains_toad_45",
        "veryshort_5",
        "silence_10s_10",
    } <= set(frame["row_id"])
    assert "1min_65" not in set(frame["row_id"])
    report = json.loads((tmp_path / "submission_report.json").read_text())
    skipped = {Path(s["path"]).name for s in report["skipped"]}
    assert skipped == {"empty_2c.wav"}  # header only; every other clip decodes


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="demo model not built yet")
def test_demo_runs_with_no_arguments_without_torch_and_scores_well(tmp_path):
    """`python scripts/infer.py` in a fresh folder: offline, no torch, AUC >= 0.95 on held-out audio."""
    probe = (
        "import sys, runpy; sys.argv = ['infer.py']; "
        f"code = 0\ntry:\n    runpy.run_path({str(REPO / 'scripts' / 'infer.py')!r}, run_name='__main__')\n"
        "except SystemExit as e:\n    code = e.code\n"
        "assert 'torch' not in sys.modules, 'the inference path imported torch'\n"
        "sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "submission: birdinfer_demo/submission.csv (48 rows x 7 classes)" in out
    assert "files: 4 processed (48 windows), 0 skipped" in out
    auc = float(out.split("macro_roc_auc on held-out soundscapes = ")[1].split()[0])
    assert auc >= 0.95, out
    assert (tmp_path / "birdinfer_demo" / "submission_report.json").is_file()
