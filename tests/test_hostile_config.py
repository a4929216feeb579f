"""Configs and inputs a hostile user writes (issue 12, point 8): each one ends the command with
exit code 2 and an error naming the key or the path, and writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from birdinfer.cli import main
from birdinfer.config import from_dict, parse_override
from birdinfer.errors import ConfigError
from tests.helpers import write_tone


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    write_tone(folder / "dawn.wav", 6.0)
    return folder


def infer(tmp_path: Path, *args: str) -> int:
    out = tmp_path / "out" / "submission.csv"
    code = main(["--model", "builtin:demo", "--output", str(out), "--no-progress", "-q", *args])
    return code


def refused(tmp_path, capsys, *args: str) -> str:
    assert infer(tmp_path, *args) == 2
    assert not (tmp_path / "out").exists()
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "Traceback" not in error
    return error


@pytest.mark.parametrize(
    "text, key",
    [
        ("1: 2\n", "config key '1' is not a name (YAML read it as int)"),
        ("inference:\n  7: 4\n", "config key 'inference.7' is not a name (YAML read it as int)"),
        ("audio:\n  .inf: 4\n", "config key 'audio.inf' is not a name (YAML read it as float)"),
        ("output:\n  yes: 4\n", "config key 'output.True' is not a name (YAML read it as bool)"),
    ],
)
def test_non_string_keys_name_the_key(tmp_path, capsys, inputs, text, key):
    config = tmp_path / "odd.yaml"
    config.write_text(text)
    assert key in refused(tmp_path, capsys, "--config", str(config), "--input", str(inputs))


def test_deeply_nested_yaml_is_a_config_error(tmp_path, capsys, inputs):
    config = tmp_path / "deep.yaml"
    config.write_text("demo: " + "[" * 5000 + "]" * 5000 + "\n")
    error = refused(tmp_path, capsys, "--config", str(config), "--input", str(inputs))
    assert "nested too deeply to be a config" in error
    with pytest.raises(ConfigError, match="override 'mel': nested too deeply"):
        parse_override("mel=" + "[" * 5000 + "]" * 5000)


@pytest.mark.parametrize(
    "override, key",
    [
        ("audio.block_seconds=.inf", "audio.block_seconds"),
        ("audio.window_seconds=.nan", "audio.window_seconds"),
        ("budget.minutes=-.inf", "budget.minutes"),
        ("postprocess.file_boost=.nan", "postprocess.file_boost"),
    ],
)
def test_infinite_and_nan_numbers_name_the_key(tmp_path, capsys, inputs, override, key):
    error = refused(tmp_path, capsys, "--input", str(inputs), "--set", override)
    assert f"config key '{key}': must be a finite number" in error


def test_every_float_setting_refuses_infinity():
    with pytest.raises(ConfigError, match="'inference.batch_size': expected int"):
        from_dict({"inference": {"batch_size": float("inf")}})
    with pytest.raises(ConfigError, match="'audio.max_header_hours': must be a finite number"):
        from_dict({"audio": {"max_header_hours": float("inf")}})


def test_input_that_is_a_file_or_missing_is_an_error(tmp_path, capsys, inputs):
    recording = inputs / "dawn.wav"
    error = refused(tmp_path, capsys, "--input", str(recording))
    assert error.strip() == (
        f"error: config key 'input_dir' (--input): {recording} is a file, not a folder"
    )
    error = refused(tmp_path, capsys, "--input", str(tmp_path / "typo"))
    assert f"{tmp_path / 'typo'} does not exist" in error


def test_an_existing_empty_folder_still_gives_a_header_only_submission(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert infer(tmp_path, "--input", str(empty)) == 0
    written = pd.read_csv(tmp_path / "out" / "submission.csv")
    assert len(written) == 0 and written.columns[0] == "row_id"


@pytest.mark.parametrize(
    "sets, message",
    [
        (
            ["mel.sample_rate=48000"],
            "config key 'mel.sample_rate' is 48000 and 'audio.sample_rate' is 32000",
        ),
        (
            ["output.duplicate_stems=path", "input.duplicate_stems=skip"],
            "config key 'output.duplicate_stems' is deprecated and 'input.duplicate_stems' is "
            "set too: keep 'input.duplicate_stems'",
        ),
    ],
)
def test_an_old_key_against_its_new_key_is_refused_naming_both(
    tmp_path, capsys, inputs, sets, message
):
    args = [arg for item in sets for arg in ("--set", item)]
    with pytest.warns(FutureWarning, match=re.escape(sets[0].split("=")[0])):
        error = refused(tmp_path, capsys, "--input", str(inputs), *args)
    assert message in error and "configs/default.yaml" in error
