"""`birdinfer card show|set` against hostile use (issue 21): `set` changes only what it is told,
class names are checked when written, bad files and paths are one-line errors, and a carded file
keeps its mode, its symlink and no temporary file."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from birdinfer.cli import main
from birdinfer.config import MelConfig, from_dict
from birdinfer.demo import DEMO_MODEL
from birdinfer.errors import ModelError
from birdinfer.models import ModelCard, OutputSpec, open_backend, read_card, set_card
from tests.helpers import REPO

onnx = pytest.importorskip("onnx")

CLASSES = read_card("builtin:demo").class_names


@pytest.fixture
def classes_file(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(CLASSES) + "\n")
    return path


@pytest.fixture
def preset_model(bare_model, classes_file):
    """Carded with the 2023 1st place's torchaudio front end (htk, no norm, normalized...)."""
    args = ["--preset", "birdclef2023_1st", "--classes", str(classes_file), "-q"]
    assert main(["card", "set", str(bare_model), *args]) == 0
    return bare_model


def card_set(model, *args) -> int:
    return main(["card", "set", str(model), *args, "-q"])


def changed_fields(before, after) -> dict[str, tuple]:
    return {
        f.name: (getattr(before, f.name), getattr(after, f.name))
        for f in dataclasses.fields(before)
        if getattr(before, f.name) != getattr(after, f.name)
    }


# --- point 1: card set changes only what it is told to change ------------------------------------


def test_card_set_of_one_mel_key_keeps_every_other_preset_key(preset_model):
    before = read_card(preset_model)
    assert (before.mel.mel_scale, before.mel.normalized) == ("htk", True)  # not the defaults
    assert card_set(preset_model, "--set", "mel.fmin=40") == 0
    after = read_card(preset_model)
    assert changed_fields(before.mel, after.mel) == {"fmin": (20.0, 40.0)}
    assert changed_fields(before, after).keys() == {"mel"}


def test_card_set_keeps_the_window_and_sample_rate_it_was_not_told_to_change(bare_model):
    # 10 s at 16 kHz with hop 512 makes the graph's 313 frames, as 5 s at 32 kHz does.
    mel = MelConfig(sample_rate=16000, n_fft=1024, hop_length=512, fmax=8000)
    card = dataclasses.replace(
        read_card("builtin:demo"), sample_rate=16000, window_seconds=10.0, mel=mel
    )
    set_card(bare_model, card)
    assert card_set(bare_model, "--set", "mel.fmin=40") == 0
    after = read_card(bare_model)
    assert changed_fields(card, after) == {"mel": (mel, dataclasses.replace(mel, fmin=40.0))}
    # A rate told to change is the card's one rate (audio and mel); the graph then refuses it.
    assert card_set(bare_model, "--set", "audio.sample_rate=32000") == 2
    assert read_card(bare_model) == after


def test_a_second_card_set_keeps_outputs_constants_and_extra_keys(bare_model, tmp_path):
    card = ModelCard(
        arch="efficientnet_b0",
        class_names=CLASSES,
        sample_rate=32000,
        window_seconds=5.0,
        mel=MelConfig(hop_length=512),
        input_shape=(1, 128, 313),
        outputs=(OutputSpec("logits", "probabilities", "clipwise"),),
        input_constants={"shift": [0.0]},
        extra={"probe": {"future": "key"}, "trained_on": "xc"},
    )
    set_card(bare_model, card)
    assert card_set(bare_model, "--set", "mel.fmax=15000", "--arch", "b0") == 0
    assert card_set(bare_model, "--set", "mel.top_db=90") == 0
    after = read_card(bare_model)
    assert changed_fields(card, after) == {
        "arch": ("efficientnet_b0", "b0"),
        "mel": (card.mel, dataclasses.replace(card.mel, fmax=15000.0, top_db=90.0)),
    }


def test_card_set_output_changes_what_the_scored_output_holds(bare_model):
    card = dataclasses.replace(
        read_card("builtin:demo"), outputs=(OutputSpec("logits", "logits", "clipwise"),)
    )
    set_card(bare_model, card)
    assert card_set(bare_model, "--emits", "probabilities") == 0
    after = read_card(bare_model)
    assert (after.output, after.outputs[0].holds) == ("probabilities", "probabilities")


def test_a_new_preset_replaces_the_whole_mel_section(preset_model):
    assert card_set(preset_model, "--set", "mel.fmin=40") == 0
    assert card_set(preset_model, "--preset", "birdclef2025_2nd") == 0
    assert read_card(preset_model).mel == from_dict({"mel": {"preset": "birdclef2025_2nd"}}).mel


# --- point 4: class names are checked when written ---------------------------------------------


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("row_id,a,,c,d,e,f,g\n", "an empty class name (at position 1)"),
        ('row_id,a,"b\rx",c,d,e,f,g\n', "'b\\rx', which holds the control character \\r"),
        ('row_id,a,"b\nx",c,d,e,f,g\n', "'b\\nx', which holds the control character \\n"),
        ("row_id,a,b,a,d,e,f,g\n", "class names more than once: 'a'"),
        ("row_id,a,row_id,c,d,e,f,g\n", "a class called 'row_id'"),
    ],
)
def test_card_set_refuses_class_names_a_submission_header_cannot_carry(
    bare_model, tmp_path, capsys, header, problem
):
    sample = tmp_path / "sample_submission.csv"
    sample.write_text(header, newline="")
    assert card_set(bare_model, "--config", "default", "--classes", str(sample)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bare_model}: the new card lists ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert problem in err


def test_a_card_with_a_line_break_in_a_class_name_is_refused_when_read(bare_model):
    card = dataclasses.replace(read_card("builtin:demo"), class_names=("a", "b\nc", *"defgh"))
    set_card(bare_model, card)  # as another tool might have written it
    with pytest.raises(ModelError, match=r"class name 'b\\nc', which holds the control character"):
        open_backend(bare_model)


# --- point 12: bad files and paths are one-line errors -------------------------------------------


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def carded_ir(tmp_path):
    ov = pytest.importorskip("openvino")
    path = tmp_path / "model.xml"
    ov.save_model(ov.convert_model(str(DEMO_MODEL)), str(path), compress_to_fp16=False)
    set_card(path, read_card("builtin:demo"))
    return path


def test_an_ir_without_its_bin_is_named(carded_ir, capsys):
    carded_ir.with_suffix(".bin").unlink()
    for command in (["card", "show", str(carded_ir)], ["card", "set", str(carded_ir)]):
        assert main(command) == 2
        assert one_line_error(capsys) == (
            f"error: {carded_ir}: its weights model.bin are missing (an OpenVINO IR is the .xml "
            "and the .bin beside it)"
        )


@pytest.mark.parametrize("xml", ["garbage", None])
def test_a_garbage_or_missing_xml_is_named(tmp_path, capsys, xml):
    path = tmp_path / "model.xml"
    (tmp_path / "model.bin").write_bytes(b"\0" * 16)
    if xml is not None:
        path.write_text(xml)
    assert main(["card", "show", str(path)]) == 2
    err = one_line_error(capsys)
    expected = "OpenVINO cannot read it" if xml else "no such model file"
    assert err.startswith(f"error: {path}: {expected}")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.mkdir(), "is a folder; --classes takes"),
        (lambda p: p.write_text(""), "no class names"),
        (lambda p: p.write_bytes(b"hooowl\nharthr\xff\n"), "is not UTF-8 text (byte 13"),
    ],
)
def test_bad_classes_files_are_named(bare_model, tmp_path, capsys, make, problem):
    for name in ("classes.txt", "classes.csv"):
        path = tmp_path / name
        make(path)
        assert card_set(bare_model, "--config", "default", "--classes", str(path)) == 2
        assert one_line_error(capsys).startswith(f"error: {path}: {problem}")


def test_out_a_folder_or_the_other_runtimes_suffix_is_refused(preset_model, tmp_path, capsys):
    before = preset_model.read_bytes()
    folder = tmp_path / "copy.onnx"
    folder.mkdir()
    assert card_set(preset_model, "--set", "mel.fmin=40", "--out", str(folder)) == 2
    assert one_line_error(capsys) == f"error: {folder}: is a folder; name the model file to write"
    xml = tmp_path / "copy.xml"
    assert card_set(preset_model, "--set", "mel.fmin=40", "--out", str(xml)) == 2
    assert "--out must end in .onnx" in one_line_error(capsys)
    assert not xml.exists() and preset_model.read_bytes() == before


# --- point 12 and 17: symlinks, modes, no temporary file ----------------------------------------


def test_card_set_through_a_symlink_writes_its_target(preset_model, tmp_path):
    link = tmp_path / "link.onnx"
    link.symlink_to(preset_model.name)
    assert card_set(link, "--set", "mel.fmin=40") == 0
    assert link.is_symlink() and os.readlink(link) == preset_model.name
    assert read_card(preset_model).mel.fmin == 40.0


def test_an_ir_through_symlinks_writes_their_targets(carded_ir, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    for suffix in (".xml", ".bin"):
        (links / f"m{suffix}").symlink_to(carded_ir.with_suffix(suffix))
    assert card_set(links / "m.xml", "--set", "mel.fmin=40") == 0
    assert (links / "m.xml").is_symlink() and (links / "m.bin").is_symlink()
    assert read_card(carded_ir).mel.fmin == 40.0


@pytest.mark.parametrize("mode", [0o644, 0o444, 0o640])
def test_a_carded_file_keeps_its_mode(preset_model, mode):
    preset_model.chmod(mode)
    assert card_set(preset_model, "--set", "mel.fmin=40") == 0
    assert read_card(preset_model).mel.fmin == 40.0
    assert preset_model.stat().st_mode & 0o7777 == mode


def test_an_ir_keeps_both_files_modes_and_its_weights(carded_ir):
    weights = carded_ir.with_suffix(".bin")
    carded_ir.chmod(0o444)
    weights.chmod(0o640)
    inode = weights.stat().st_ino
    assert card_set(carded_ir, "--set", "mel.fmin=40") == 0
    assert carded_ir.stat().st_mode & 0o7777 == 0o444
    assert weights.stat().st_mode & 0o7777 == 0o640
    assert weights.stat().st_ino == inode  # the same weights: the .bin is not rewritten
    backend = open_backend(carded_ir)
    assert backend.card.mel.fmin == 40.0
    assert backend(np.zeros((1, *backend.card.input_shape), np.float32)).shape == (1, 7)


def test_a_new_copy_gets_the_umask_mode(preset_model, tmp_path):
    out = tmp_path / "copy.onnx"
    old = os.umask(0o027)
    try:
        assert card_set(preset_model, "--set", "mel.fmin=40", "--out", str(out)) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o7777 == 0o640
    assert read_card(out).mel.fmin == 40.0


KILLED_WRITE = """
import os, signal, sys
from birdinfer.models import read_card, set_card
from birdinfer.models.files import write

def write_then_die(handle):
    handle.write(b"half a model")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)

real = write.write_model_file
write.write_model_file = lambda path, _: real(path, write_then_die)
set_card(sys.argv[1], read_card(sys.argv[1]))
"""


def test_a_killed_card_set_leaves_the_old_file_and_no_temporary_file(preset_model, tmp_path):
    before = preset_model.read_bytes()
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED_WRITE))
    done = subprocess.run(
        [sys.executable, str(script), str(preset_model)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert preset_model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["bare.onnx", "classes.txt", "killed.py"]
    )
