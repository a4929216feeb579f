"""The command line as a user meets it: the demo with no arguments, a real folder, bad input."""

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import onnx
import pandas as pd
import pytest

import birdinfer.cli
from birdinfer.cli import main
from birdinfer.cli.common import MOVED_FLAGS, RENAMED_FLAGS
from birdinfer.cli.main import COMMANDS, build_parser, subcommands
from birdinfer.demo import DEMO_MODEL
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


# --- one vocabulary ---------------------------------------------------------------------------


def meaning(action: argparse.Action) -> tuple:
    """What a flag means, as far as a parser can tell: where its value goes, a switch or a value,
    the value's kind, the choices and the placeholder shown in --help."""
    kind = "switch" if action.nargs == 0 else "value"
    value = {int: "number", float: "number"}.get(action.type, "text")
    return action.dest, kind, value, tuple(action.choices or ()), action.metavar


def clashes(parsers: list[tuple[str, argparse.ArgumentParser]]) -> list[str]:
    """Flag names whose meaning differs between commands, each with the commands' help."""
    seen: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for command, parser in parsers:
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue  # old spellings (they borrow the new flag's meaning) and -h
            for name in action.option_strings:
                seen[name][meaning(action)].append(f"{command}: {action.help}")
    return [f"{name}: {dict(m)}" for name, m in sorted(seen.items()) if len(m) > 1]


def test_every_flag_name_means_one_thing_in_every_command():
    assert clashes(subcommands(build_parser())) == []


def test_the_vocabulary_check_catches_a_name_with_two_meanings():
    """The check above can fail: --windows as a path in one command and a count in another."""
    table, count = argparse.ArgumentParser(), argparse.ArgumentParser()
    table.add_argument("--windows", metavar="PATH", help="per-window table")
    count.add_argument("--windows", type=int, help="windows compared")
    found = clashes([("infer", table), ("frontend check", count)])
    assert len(found) == 1 and found[0].startswith("--windows:")
    assert "per-window table" in found[0] and "windows compared" in found[0]


def test_every_command_is_registered_and_every_flag_says_what_it_means():
    parsers = dict(subcommands(build_parser()))
    assert set(COMMANDS) <= set(parsers)
    silent = {
        f"{command} {action.option_strings[-1]}"
        for command, parser in parsers.items()
        for action in parser._actions
        if action.option_strings and not action.help and action.dest != "quiet"
    }
    assert silent == set()


REQUIRED = {
    "export": ["export", "--arch", "a", "--classes", "c.csv", "--out", "m.onnx"],
    "card set": ["card", "set", "m.onnx"],
    "frontend check": ["frontend", "check", "r.wav"],
    "bench": ["bench"],
}


def example_value(parser: argparse.ArgumentParser, flag: str) -> list[str]:
    action = parser._option_string_actions[flag]
    if action.nargs == 0:
        return []
    if action.choices:
        return [str(list(action.choices)[-1])]
    return ["3"] if action.type in (int, float) else ["clipwise:probabilities"]


@pytest.mark.parametrize(("command", "old", "new", "removed_in"), RENAMED_FLAGS)
def test_an_old_spelling_warns_naming_the_new_flag_and_does_what_it_does(
    command, old, new, removed_in
):
    parser = build_parser()
    value = example_value(dict(subcommands(parser))[command], new)
    with pytest.warns(FutureWarning) as caught:
        via_old = parser.parse_args([*REQUIRED[command], old, *value])
    message = str(caught[0].message)
    assert f"{old} is deprecated: use {new}" in message and removed_in in message
    via_new = parser.parse_args([*REQUIRED[command], new, *value])
    assert vars(via_old) == vars(via_new)
    assert vars(via_new) != vars(parser.parse_args(REQUIRED[command]))  # the value landed


@pytest.mark.parametrize(("command", "flag", "where"), MOVED_FLAGS)
def test_a_flag_whose_code_left_the_package_names_its_new_home(command, flag, where, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([*REQUIRED[command], flag])
    assert stopped.value.code == 2
    assert f"{flag} left the package: run {where}" in capsys.readouterr().err
    assert (REPO / where.split()[1]).is_file()


def test_the_cli_package_offers_main_and_the_console_script_finds_it():
    assert birdinfer.cli.__all__ == ["main"]
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '[project.scripts]\nbirdinfer = "birdinfer.cli:main"\n' in pyproject
    done = subprocess.run(
        [sys.executable, "-m", "birdinfer", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "{" + ",".join(COMMANDS) + "}" in done.stdout


def test_an_old_spelling_prints_one_warning_line_not_python_source_coordinates():
    done = subprocess.run(
        [sys.executable, "-m", "birdinfer", "export", "--output", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    first = done.stderr.splitlines()[0]
    assert first == (
        "warning: --output is deprecated: use --graph-output "
        "(the old spelling goes in birdinfer 0.2.0)"
    )
    assert done.returncode == 2  # export's required flags are missing
