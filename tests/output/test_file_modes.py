"""Written files get the mode an ordinary write gives them (issue 21, point 17): 0666 less the
umask, not the 0600 of the temporary file they are first written under."""

from __future__ import annotations

import os
import stat

import pytest

from birdinfer.output import journal_path_for
from birdinfer.runner import run
from tests.helpers import make_config, write_tone


@pytest.fixture
def umask_002():
    previous = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_submission_report_and_journal_entries_follow_the_umask(tiny_onnx, tmp_path, umask_002):
    folder = tmp_path / "in"
    folder.mkdir()
    write_tone(folder / "dawn.wav", 6.0)
    out = tmp_path / "out" / "submission.csv"
    config = make_config(
        folder, tiny_onnx, out, output={"resume": True, "windows": str(tmp_path / "out" / "w.csv")}
    )
    result = run(config)
    written = [out, result.report_path, result.windows_path]
    written += list((journal_path_for(out) / "files").iterdir())
    written.append(journal_path_for(out) / "manifest.json")
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert len(modes) == 5 and set(modes.values()) == {"0o664"}, modes


def test_a_rewritten_submission_keeps_its_own_mode(tiny_onnx, tmp_path, umask_002):
    folder = tmp_path / "in"
    folder.mkdir()
    write_tone(folder / "dawn.wav", 6.0)
    out = tmp_path / "submission.csv"
    out.write_text("row_id,previous\n")
    out.chmod(0o640)
    run(make_config(folder, tiny_onnx, out))
    assert out.read_text() != "row_id,previous\n"
    assert oct(stat.S_IMODE(out.stat().st_mode)) == "0o640"
