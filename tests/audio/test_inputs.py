"""Listing the inputs: audio files in name order, folders walked, everything else set aside."""

from birdinfer.audio import list_audio_files
from birdinfer.config import AudioConfig

CFG = AudioConfig()


def test_list_audio_files_separates_non_audio(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["b.ogg", "a.WAV", "sub/c.flac", "notes.txt", "d.mp3"]:
        (tmp_path / name).write_bytes(b"x")
    audio, ignored = list_audio_files(tmp_path, CFG.extensions)
    assert [p.name for p in audio] == ["a.WAV", "b.ogg", "d.mp3", "c.flac"]
    assert [p.name for p in ignored] == ["notes.txt"]


def test_missing_folder_gives_no_files(tmp_path):
    assert list_audio_files(tmp_path / "absent", CFG.extensions) == ([], [])
