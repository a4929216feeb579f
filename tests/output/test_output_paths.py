"""Output paths are checked before any work (issue 12, point 3).

Each bad output fails `run()` at start with a ConfigError naming the path: before a model is
loaded or a recording opened (the tests fail if either happens), and without writing anything.
Before, these errors came after every file had been scored, and an output equal to a recording
replaced it with CSV.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import birdinfer.runner.steps as run_module
from birdinfer.errors import ConfigError
from birdinfer.output import check_outputs, journal_path_for
from tests.helpers import make_config, write_tone

NO_MODEL = Path("never-loaded.onnx")  # the checks come first: no model is needed


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    write_tone(folder / "dawn.wav", 6.0)
    write_tone(folder / "dusk.flac", 3.0)
    return folder


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """Loading models or opening a recording fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the output paths were checked")

    monkeypatch.setattr(run_module, "Ensemble", forbidden)
    monkeypatch.setattr("birdinfer.audio.decode.open_recording", forbidden)


def refused(inputs: Path, submission: Path, **sections) -> str:
    folder = submission.parent
    listing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    config = make_config(inputs, NO_MODEL, submission, **sections)
    with pytest.raises(ConfigError) as caught:
        run_module.run(config)
    after = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    assert after == listing  # nothing written, not even a report
    return str(caught.value)


def test_an_output_that_is_an_input_recording(inputs):
    recording = inputs / "dawn.wav"
    before = recording.read_bytes()
    message = refused(inputs, recording)
    assert message == (
        f"config key 'output.submission': {recording} is one of the input recordings: "
        "the run would overwrite it"
    )
    assert recording.read_bytes() == before


def test_an_output_reached_through_a_symlink_to_a_recording(inputs, tmp_path):
    link = tmp_path / "submission.csv"
    os.symlink(inputs / "dusk.flac", link)
    assert "is one of the input recordings" in refused(inputs, link)


def test_an_audio_name_inside_the_input_folder(inputs):
    message = refused(inputs, inputs / "nested" / "scores.ogg")
    assert "is an audio file name inside the input folder" in message


def test_a_parent_that_is_a_file(inputs, tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    message = refused(inputs, blocker / "2026" / "submission.csv")
    assert message.endswith(f"cannot be created: {blocker} is a file, not a folder")


def test_an_output_that_is_a_folder(inputs, tmp_path):
    folder = tmp_path / "submission.csv"
    folder.mkdir()
    assert refused(inputs, folder).endswith("is a folder: give a file name")


def test_a_name_whose_temporary_sibling_is_too_long(inputs, tmp_path):
    name = "s" * 240 + ".csv"  # 244 bytes: fine alone, 258 as `.<name>.XXXXXXXX.tmp`
    message = refused(inputs, tmp_path / name)
    assert "has a name of 244 bytes" in message and "limit of 255" in message


def test_an_unwritable_folder(inputs, tmp_path, monkeypatch):
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        output = locked / "submission.csv"
    else:  # root writes through mode bits; /sys refuses new files even to root
        output = Path("/sys/birdinfer-test/submission.csv")
        if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _can_create("/sys"):
            pytest.skip("no folder here refuses new files to this user")
    message = refused(inputs, output)
    assert "cannot be written" in message and "refuses new files" in message


def _can_create(folder: str) -> bool:
    try:
        with open(os.path.join(folder, ".birdinfer-probe"), "x"):
            pass
    except OSError:
        return False
    os.unlink(os.path.join(folder, ".birdinfer-probe"))
    return True


def test_a_journal_path_that_is_a_file(inputs, tmp_path):
    output = tmp_path / "submission.csv"
    journal_path_for(output).write_text("in the way")
    message = refused(inputs, output, output={"resume": True})
    assert "(its journal)" in message and message.endswith("is a file, and the journal is a folder")


def test_the_windows_table_is_checked_too(inputs, tmp_path):
    table = tmp_path / "windows.csv"
    table.mkdir()
    message = refused(inputs, tmp_path / "submission.csv", output={"windows": str(table)})
    assert message == f"config key 'output.windows': {table} is a folder: give a file name"


def test_ordinary_outputs_pass(inputs, tmp_path):
    config = make_config(inputs, NO_MODEL, tmp_path / "new" / "deeper" / "submission.csv")
    check_outputs(config, [inputs], [inputs / "dawn.wav", inputs / "dusk.flac"], journal=True)
    beside = make_config(inputs, NO_MODEL, inputs / "submission.csv")  # a CSV among recordings
    check_outputs(beside, [inputs], [inputs / "dawn.wav"], journal=True)
    assert not (tmp_path / "new").exists()  # checking creates nothing


def _model_with_weights(tmp_path: Path) -> Path:
    model = tmp_path / "models" / "model.xml"
    model.parent.mkdir()
    model.write_text("<net/>")
    model.with_suffix(".bin").write_bytes(b"weights")
    return model


@pytest.mark.parametrize(
    ("what", "key"),
    [
        ("model", "output.submission"),
        ("weights", "output.submission"),
        ("sample", "output.submission"),
        ("mapping", "output.windows"),
        ("submission", "output.windows"),
    ],
)
def test_an_output_over_one_of_the_runs_inputs_or_outputs(inputs, tmp_path, what, key):
    model = _model_with_weights(tmp_path)
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("row_id,a\n")
    mapping = tmp_path / "map.csv"
    mapping.write_text("label,column\n")
    submission = tmp_path / "out" / "submission.csv"
    targets = {
        "model": model,
        "weights": model.with_suffix(".bin"),
        "sample": sample,
        "mapping": mapping,
        "submission": submission,
    }
    before = {p: p.read_bytes() for p in (model, model.with_suffix(".bin"), sample, mapping)}
    outputs = {"sample_submission": str(sample)}
    if key == "output.windows":
        outputs["windows"] = str(targets[what])
    else:
        submission = targets[what]
    config = make_config(
        inputs,
        model,
        submission,
        output=outputs,
        models=[{"path": str(model), "mapping": str(mapping)}],
    )
    with pytest.raises(ConfigError) as caught:
        run_module.run(config)
    message = str(caught.value)
    assert f"'{key}'" in message and targets[what].name in message
    assert ("overwrite its own input" in message) == (what != "submission")
    assert {p: p.read_bytes() for p in before} == before


def test_the_cli_refuses_an_output_over_its_config_file(inputs, tmp_path, capsys):
    from birdinfer.cli import main

    config = tmp_path / "run.yaml"
    config.write_text("models: [never-loaded.onnx]\n")
    text = config.read_text()
    code = main(["--config", str(config), "--input", str(inputs), "--output", str(config), "-q"])
    assert code == 2 and "the --config file" in capsys.readouterr().err
    assert config.read_text() == text
