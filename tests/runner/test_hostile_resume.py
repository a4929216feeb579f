"""`--resume` never reuses stale scores (issue 12, point 4): new weights in a model's external
data, a recording replaced while it is scored, and relative against absolute `--input`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import birdinfer.scorer.streaming as engine
from birdinfer.errors import JournalError
from birdinfer.output import journal_path_for
from birdinfer.runner import Journal
from birdinfer.runner import worker as executors
from tests.helpers import write_tone
from tests.hostile_helpers import copy_good, rows_of, run_folder, write_good

pytestmark = pytest.mark.slow  # the tiny model is exported with torch
RESUME = {"resume": True}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_good(tmp_path_factory.mktemp("good"))


@pytest.fixture
def inputs(good, tmp_path) -> Path:
    return copy_good(good, tmp_path / "in")


def external_data_model(tiny_onnx: Path, folder: Path) -> Path:
    """The tiny model saved with its weights in `model.onnx.data` beside it."""
    onnx = pytest.importorskip("onnx")
    folder.mkdir(exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(
        onnx.load(str(tiny_onnx)),
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        # Weights out, small constants (slice bounds) in: ONNX Runtime's shape inference
        # needs those in the graph.
        size_threshold=64,
    )
    return path


def new_weights(model: Path) -> None:
    """Other numbers in the last weight of `model.onnx.data`; the .onnx file is untouched."""
    data = model.with_name("model.onnx.data")
    weights = bytearray(data.read_bytes())
    last = np.frombuffer(bytes(weights[-16:]), np.float32) + np.float32(3.0)
    weights[-16:] = last.tobytes()
    data.write_bytes(bytes(weights))


def test_new_weights_in_onnx_external_data_refuse_the_old_journal(inputs, tiny_onnx, tmp_path):
    model = external_data_model(tiny_onnx, tmp_path / "model")
    graph = model.read_bytes()
    first = run_folder(inputs, model, tmp_path / "out", output=RESUME)
    assert first.failures == []
    new_weights(model)
    assert model.read_bytes() == graph  # only model.onnx.data changed
    with pytest.raises(JournalError, match=r"models\[0\]\.sha256"):
        run_folder(inputs, model, tmp_path / "out", output=RESUME)


def test_a_dask_worker_reloads_a_model_whose_external_data_changed(tiny_onnx, tmp_path):
    from tests.helpers import make_config

    model = external_data_model(tiny_onnx, tmp_path / "model")
    config = make_config(tmp_path, model, tmp_path / "out.csv")
    executors._ensembles.clear()
    _, before = executors.worker_ensemble(config)
    new_weights(model)
    _, after = executors.worker_ensemble(config)
    assert executors.ensembles_built() == 2
    assert before["models"][0]["sha256"] != after["models"][0]["sha256"]
    executors._ensembles.clear()


def test_a_recording_replaced_while_scored_is_journaled_as_what_was_decoded(
    inputs, tiny_onnx, tmp_path, monkeypatch
):
    """The journal stored the new file's size and mtime beside the old content's scores, so a
    resumed run reused them for the new file."""
    target = inputs / "good_a.wav"  # 7 s: 2 rows
    replacement = tmp_path / "replacement.wav"
    write_tone(replacement, 13.0, freq=4000.0)  # 3 rows
    old = target.stat()
    real_reader = engine.RowReader

    class ReplacedMidway(real_reader):
        def spans(self):
            for i, span in enumerate(super().spans()):
                if i == 0 and self.path == target:  # decoding has started: swap the file
                    os.replace(replacement, target)
                yield span

    monkeypatch.setattr(engine, "RowReader", ReplacedMidway)
    out = tmp_path / "out"
    first = run_folder(inputs, tiny_onnx, out, output=RESUME)
    assert rows_of(first, "good_a") == ["good_a_5", "good_a_10"]  # the old content's rows
    assert target.stat().st_size != old.st_size
    stored = Journal(journal_path_for(out / "submission.csv"), {}).entry_path(target)
    facts = np.load(stored)["facts"]
    assert f'"size": {old.st_size}' in str(facts) and f'"mtime_ns": {old.st_mtime_ns}' in str(facts)

    monkeypatch.setattr(engine, "RowReader", real_reader)
    again = run_folder(inputs, tiny_onnx, out, output=RESUME)
    assert again.resumed == 1  # good_b from the journal; good_a scored again
    assert rows_of(again, "good_a") == ["good_a_5", "good_a_10", "good_a_15"]


def test_relative_and_absolute_input_resume_the_same_journal(
    inputs, tiny_onnx, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    monkeypatch.chdir(inputs.parent)
    first = run_folder(Path(inputs.name), tiny_onnx, out, output=RESUME)
    assert first.resumed == 0 and first.failures == []
    written = first.output_path.read_bytes()
    for folder in (inputs.resolve(), Path(inputs.name)):  # either way round
        again = run_folder(folder, tiny_onnx, out, output=RESUME)
        assert again.resumed == 2
        assert again.output_path.read_bytes() == written
    shutil.rmtree(journal_path_for(out / "submission.csv"))
    absolute_first = run_folder(inputs.resolve(), tiny_onnx, out, output=RESUME)
    assert absolute_first.resumed == 0
    assert run_folder(Path(inputs.name), tiny_onnx, out, output=RESUME).resumed == 2


# --- entries that rot (issue 21, point 11): each is scored again with a warning -------------------


def _patch_zip(data: bytes, central_offset: int, value: int, width: int = 2, mask=False) -> bytes:
    """Set a field of every central-directory record (where zipfile reads it) of a zip."""
    out, start = bytearray(data), 0
    while (start := data.find(b"PK\x01\x02", start)) >= 0:
        at = start + central_offset
        old = int.from_bytes(out[at : at + width], "little")
        out[at : at + width] = ((old | value) if mask else value).to_bytes(width, "little")
        start += 4
    return bytes(out)


def _flip_a_score_exponent(data: bytes, scores: np.ndarray) -> bytes:
    for value in np.asarray(scores, np.float32).ravel():
        raw = value.tobytes()
        at = data.find(raw)
        if value != 0 and at >= 0:
            out = bytearray(data)
            out[at + 3] ^= 0x40  # the float32's top exponent bit (little-endian)
            return bytes(out)
    raise AssertionError("no score's bytes found in the entry")


ROT = {
    "unknown-compression": lambda data, scores: _patch_zip(data, 10, 99),
    "encryption-flag": lambda data, scores: _patch_zip(data, 8, 0x1, mask=True),
    "npy-in-its-place": lambda data, scores: _npy_bytes(scores),
    "damaged-key": lambda data, scores: data.replace(b"member_0.npy", b"membxr_0.npy"),
    "flipped-score-bit": _flip_a_score_exponent,
}


def _npy_bytes(scores) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(scores, np.float32))
    return buffer.getvalue()


@pytest.mark.parametrize("entry_format", ["npz", "parquet"])
@pytest.mark.parametrize("rot", sorted(ROT))
def test_a_rotten_entry_is_scored_again_with_a_warning(
    inputs, tiny_onnx, tmp_path, caplog, rot, entry_format
):
    if entry_format == "parquet" and rot in (
        "unknown-compression",
        "encryption-flag",
        "damaged-key",
    ):
        pytest.skip("a zip-level rot: npz only")
    out = tmp_path / "out"
    first = run_folder(inputs, tiny_onnx, out, output=RESUME)
    written = first.output_path.read_bytes()
    folder = journal_path_for(first.output_path)
    stamp = json.loads((folder / "manifest.json").read_text())
    journal = Journal(folder, stamp)
    target = inputs / "good_a.wav"
    stored = journal.load(target)
    entry = journal.entry_path(target)
    if entry_format == "parquet":  # as a Dask worker writes it
        entry.unlink()
        Journal(folder, stamp, "parquet").record(stored)
        entry = entry.with_suffix(".parquet")
    entry.write_bytes(ROT[rot](entry.read_bytes(), stored.scores))

    again = run_folder(inputs, tiny_onnx, out, output=RESUME)
    assert again.resumed == 1 and again.failures == []  # good_b from the journal only
    assert again.output_path.read_bytes() == written
    assert any(
        "good_a.wav" in r.getMessage() and "scoring it again" in r.getMessage()
        for r in caplog.records
    )
