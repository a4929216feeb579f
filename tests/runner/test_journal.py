"""--resume: a journal of finished files, so an interrupted run continues where it stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from birdinfer.audio import decode as audio
from birdinfer.config import to_dict
from birdinfer.errors import JournalError
from birdinfer.output import journal_path_for
from birdinfer.runner import run
from tests.helpers import REPO, make_config, write_tone


@pytest.fixture(scope="module")
def short_folder(tmp_path_factory) -> Path:
    """Twelve 5-10 s tones: enough files for a run to be stopped partway."""
    folder = tmp_path_factory.mktemp("short")
    for i in range(12):
        write_tone(folder / f"rec{i:02d}.wav", 5.0 + (i % 3) * 2.5, freq=400.0 + 150 * i)
    return folder


def resumable(folder, model, out, **sections):
    output = {"resume": True, **sections.pop("output", {})}
    return make_config(folder, model, out, output=output, **sections)


def test_a_resumed_run_reads_every_file_from_the_journal(
    short_folder, tiny_onnx, tmp_path, monkeypatch
):
    out = tmp_path / "submission.csv"
    first = run(resumable(short_folder, tiny_onnx, out))
    entries = sorted((journal_path_for(out) / "files").glob("*.npz"))
    assert len(entries) == 12 and first.resumed == 0
    written = out.read_bytes()

    def no_decoding(*args, **kwargs):
        raise AssertionError("a journaled file was decoded again")

    monkeypatch.setattr(audio.sf, "SoundFile", no_decoding)
    again = run(resumable(short_folder, tiny_onnx, out))
    assert again.resumed == 12 and again.failures == []
    assert out.read_bytes() == written
    assert json.loads(again.report_path.read_text())["files_from_journal"] == 12


def test_without_resume_no_journal_is_written(short_folder, tiny_onnx, tmp_path):
    out = tmp_path / "submission.csv"
    run(make_config(short_folder, tiny_onnx, out))
    assert not journal_path_for(out).exists()


def test_a_journal_from_other_settings_is_refused_naming_them(short_folder, tiny_onnx, tmp_path):
    out = tmp_path / "submission.csv"
    run(resumable(short_folder, tiny_onnx, out))
    other = resumable(short_folder, tiny_onnx, out, inference={"activation": "softmax"})
    with pytest.raises(
        JournalError, match=r"activation: journal \"sigmoid\", this run \"softmax\""
    ):
        run(other)


def test_a_changed_or_damaged_entry_is_scored_again(short_folder, tiny_onnx, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        (folder / name).write_bytes((short_folder / "rec01.wav").read_bytes())
    out = tmp_path / "submission.csv"
    first = run(resumable(folder, tiny_onnx, out))
    write_tone(folder / "a.wav", 12.0, freq=2500.0)  # a new recording under the same name
    journal = journal_path_for(out) / "files"
    damaged = next(p for p in journal.iterdir() if _entry_of(p) == str(folder / "b.wav"))
    damaged.write_bytes(damaged.read_bytes()[:100])
    again = run(resumable(folder, tiny_onnx, out))
    assert again.resumed == 1  # c.wav only
    rows = again.submission.set_index("row_id")
    assert list(rows.index[:3]) == ["a_5", "a_10", "a_15"]
    before = first.submission.set_index("row_id")
    np.testing.assert_array_equal(rows.loc[["b_5", "c_5"]], before.loc[["b_5", "c_5"]])


def test_an_empty_entry_is_scored_again(short_folder, tiny_onnx, tmp_path):
    """What a power cut may leave of an entry, which is not synced to disk: its name, no data."""
    out = tmp_path / "submission.csv"
    first = run(resumable(short_folder, tiny_onnx, out))
    entries = sorted((journal_path_for(out) / "files").iterdir())
    entries[0].write_bytes(b"")
    again = run(resumable(short_folder, tiny_onnx, out))
    assert again.resumed == len(entries) - 1
    assert again.submission.equals(first.submission)


def _entry_of(entry: Path) -> str:
    with np.load(entry) as data:
        return json.loads(str(data["facts"]))["path"]


def test_journal_entries_are_named_by_hash_inside_the_journal(tiny_onnx, tmp_path):
    """A recording's name never becomes a path: names with dots, spaces and separators-like
    characters all land as hashed entries inside the journal folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    names = ["..wav", "...wav", "-rf .wav", "a\\..\\b.wav", "rec 1 Ärger.wav"]
    for name in names:
        write_tone(tmp_path / "tone.wav", 5.0)
        (tmp_path / "tone.wav").rename(folder / name)
    out = tmp_path / "out" / "submission.csv"
    result = run(resumable(folder, tiny_onnx, out))
    assert len(result.files) == len(names)
    written = {p for p in tmp_path.rglob("*") if p.is_file() and folder not in p.parents}
    out_dir = out.parent.resolve()
    assert all(out_dir in p.resolve().parents for p in written)
    entries = [p.name for p in (journal_path_for(out) / "files").iterdir()]
    assert len(entries) == len(names)
    assert all(len(e) == 36 and e.endswith(".npz") for e in entries)


def _cli_config(folder: Path, model: Path, out: Path, tmp_path: Path) -> Path:
    data = to_dict(make_config(folder, model, out, inference={"batch_size": 1, "workers": 1}))
    path = tmp_path / f"{out.stem}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# The child slows its model calls down so that the test can kill it between files.
SLOW_CLI = """
import sys, time
from birdinfer.scorer import ensemble
original = ensemble.Ensemble.member_scores
def slow(self, *args, **kwargs):
    time.sleep(0.15)
    return original(self, *args, **kwargs)
ensemble.Ensemble.member_scores = slow
from birdinfer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_partway_then_resume_gives_the_uninterrupted_submission(
    short_folder, tiny_onnx, tmp_path
):
    reference = tmp_path / "reference.csv"
    run(make_config(short_folder, tiny_onnx, reference, inference={"batch_size": 1}))

    out = tmp_path / "killed" / "submission.csv"
    config = _cli_config(short_folder, tiny_onnx, out, tmp_path)
    args = [sys.executable, "-c", SLOW_CLI, "--config", str(config), "--resume", "-q"]
    child = subprocess.Popen(args, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    entries = journal_path_for(out) / "files"
    deadline = time.monotonic() + 120
    while len(list(entries.glob("*.npz"))) < 4:
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child journaled nothing in 120 s"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
    journaled = len(list(entries.glob("*.npz")))
    assert 4 <= journaled < 12, "the run was not stopped partway"
    assert not out.exists()

    code = subprocess.run(
        [sys.executable, "-m", "birdinfer", "--config", str(config), "--resume", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert code.returncode == 0, code.stderr
    assert f"{journaled} files from the journal" in code.stdout
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.parametrize("entry_format", ["npz", "parquet"])
def test_entries_keep_each_rows_embeddings(tmp_path, entry_format):
    from birdinfer.results import FileResult
    from birdinfer.runner import Journal

    recording = tmp_path / "rec.wav"
    write_tone(recording, 10.0)
    rng = np.random.default_rng(1)
    stamp = {"audio": {"window_seconds": 5.0}, "models": [{}, {}], "columns": ["a", "b"]}
    result = FileResult(
        recording,
        ["rec_5", "rec_10"],
        rng.random((2, 2)).astype(np.float32),
        member_scores={0: rng.random((2, 2)).astype("f4"), 1: rng.random((2, 2)).astype("f4")},
        embeddings={"embedding:perch": rng.standard_normal((2, 6)).astype(np.float32)},
    )
    journal = Journal.start(tmp_path / "j", stamp, resume=False, entry_format=entry_format)
    journal.record(result)
    loaded = journal.load(recording)
    assert list(loaded.embeddings) == ["embedding:perch"]
    np.testing.assert_array_equal(
        loaded.embeddings["embedding:perch"], result.embeddings["embedding:perch"]
    )
    np.testing.assert_array_equal(loaded.member_scores[1], result.member_scores[1])


def test_a_changed_mapping_file_is_refused_on_resume(short_folder, tmp_path):
    """A mapping moves the scores of the columns it feeds: the journal holds its content."""
    from birdinfer.config import from_dict
    from tests.helpers import DEMO_CODES, tiny_card, tiny_model

    labels = ["Strix varia", "Sp. x"]
    own = tiny_model(tmp_path / "own", seed=3, card=tiny_card(classes=labels), openvino=False)
    full = tiny_model(tmp_path / "full", seed=4, openvino=False)
    mapping = tmp_path / "mapping.csv"
    mapping.write_text(f"label,column\nStrix varia,{DEMO_CODES[0]}\n")
    out = tmp_path / "submission.csv"
    config = from_dict(
        {
            "input_dir": str(short_folder),
            "models": [str(full), {"path": str(own), "mapping": str(mapping)}],
            "output": {"submission": str(out), "progress": False, "resume": True},
        }
    )
    run(config)
    assert run(config).resumed == 12  # unchanged: every file from the journal
    mapping.write_text(f"label,column\nSp. x,{DEMO_CODES[0]}\n")
    with pytest.raises(JournalError, match=r"models\[1\]\.mapping"):
        run(config)


def test_a_parquet_entry_is_the_files_rows_of_the_per_window_table(tmp_path):
    """Workers' entries read as one dataset with pandas or dask: the per-window table's columns
    and values, then each member's, then the embeddings."""
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    from birdinfer.output import windows_frame
    from birdinfer.results import FileResult
    from birdinfer.runner import Journal

    recording = tmp_path / "rec.wav"
    write_tone(recording, 15.0)
    rng = np.random.default_rng(2)
    columns = ["amerob", "norcar", "x:y"]
    stamp = {"audio": {"window_seconds": 5.0}, "models": [{}, {}], "columns": columns}
    members = {m: rng.random((3, 3)).astype(np.float32) for m in (0, 1)}
    result = FileResult(
        recording,
        ["rec_5", "rec_10", "rec_15"],
        rng.random((3, 3)).astype(np.float32),
        member_scores=members,
        embeddings={"embedding:perch": rng.standard_normal((3, 4)).astype(np.float32)},
    )
    journal = Journal.start(tmp_path / "j", stamp, resume=False, entry_format="parquet")
    journal.record(result)
    entry = pandas.read_parquet(journal.entry_path(recording))

    expected = windows_frame([result], columns, 5.0)
    for m in (0, 1):
        for j, column in enumerate(columns):
            expected[f"member{m}:{column}"] = members[m][:, j]
    expected["embedding:perch"] = expected.pop("embedding:perch")  # embeddings come last
    assert list(entry.columns) == list(expected.columns)
    plain = [c for c in expected.columns if c != "embedding:perch"]
    pandas.testing.assert_frame_equal(entry[plain], expected[plain], check_dtype=True)
    np.testing.assert_array_equal(
        np.stack(entry["embedding:perch"].to_list()), result.embeddings["embedding:perch"]
    )
