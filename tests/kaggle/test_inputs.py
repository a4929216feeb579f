"""The notebook finds the competition data, the models and the save-run folder by searching
/kaggle/input, in the old layout and the newer competitions/ + datasets/ one."""

from pathlib import Path

import pytest

from birdinfer.demo import write_soundscapes
from birdinfer.kaggle import KaggleInputError, NotebookSettings, notebook_config
from birdinfer.kaggle.inputs import find_competition, find_model_folders
from tests.make_tiny_model import write_tiny_model

LAYOUTS = {
    "old": ("birdclef-{year}", "my-models"),
    "new": ("competitions/birdclef-{year}", "datasets/someone/my-models"),
}


def kaggle_input(root: Path, layout: str, year: int = 2025, train: int = 0) -> Path:
    """A fake /kaggle/input: the competition (with test_soundscapes/ empty, train_soundscapes/
    holding `train` files), a models dataset, a wheelhouse dataset."""
    data, models = LAYOUTS[layout]
    competition = root / data.format(year=year)
    (competition / "test_soundscapes").mkdir(parents=True)
    (competition / "sample_submission.csv").write_text("row_id,a\n")
    (competition / "train_audio" / "a").mkdir(parents=True)
    (competition / "train_audio" / "a" / "decoy.onnx").write_text("x")  # never walked into
    if train:
        write_soundscapes(competition / "train_soundscapes", train, seed=33, seconds=1.0)
    write_tiny_model(root / models / "m.onnx")
    wheels = root / models.replace("my-models", "birdinfer-wheels")
    wheels.mkdir(parents=True)
    (wheels / "birdinfer-0.0-py3-none-any.whl").write_text("x")
    return competition


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_competition_and_the_models_are_found_in_either_layout(tmp_path, layout):
    competition = kaggle_input(tmp_path, layout)
    kaggle_input(tmp_path / "other", layout, year=2024)  # another edition attached too
    found, note = find_competition(tmp_path, "birdclef-2025")
    assert found == competition and str(competition) in note
    models = find_model_folders(tmp_path, skip=(competition,))
    assert tmp_path / LAYOUTS[layout][1] in models
    assert not any("train_audio" in str(m) for m in models)


def test_what_is_mounted_is_listed_when_nothing_is_found(tmp_path):
    (tmp_path / "datasets" / "someone" / "notes").mkdir(parents=True)
    with pytest.raises(KaggleInputError, match=r"(?s)no competition data.*datasets/someone/notes"):
        find_competition(tmp_path, "birdclef-2025")
    with pytest.raises(KaggleInputError, match=r"(?s)no \.onnx or \.xml model.*someone/notes"):
        find_model_folders(tmp_path)
    with pytest.raises(KaggleInputError, match="does not exist"):
        find_competition(tmp_path / "missing", "birdclef-2025")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_notebook_config_comes_from_the_search_and_names_the_save_run_folder(tmp_path, layout):
    competition = kaggle_input(tmp_path / "input", layout, train=3)
    settings = NotebookSettings(
        "birdclef2025", 12.5, input_root=tmp_path / "input", working=tmp_path / "working"
    )
    config, notes = notebook_config(settings)
    assert config.input_dir == str(competition / "test_soundscapes")
    assert config.output.sample_submission == str(competition / "sample_submission.csv")
    assert [Path(m.path).name for m in config.models] == ["m.onnx"]
    assert config.budget_minutes == 12.5 and config.budget.enabled
    fallback = Path(config.input.empty_input_fallback)
    assert (
        sorted(p.resolve().parent for p in fallback.iterdir())
        == [competition / "train_soundscapes"] * 3
    )
    assert any(f"scores 3 files of {competition / 'train_soundscapes'}" in n for n in notes)


def test_a_missing_test_folder_is_scored_as_an_empty_one_with_a_warning(tmp_path):
    competition = kaggle_input(tmp_path / "input", "new")
    (competition / "test_soundscapes").rmdir()
    config, notes = notebook_config(NotebookSettings("birdclef2026", input_root=tmp_path / "input"))
    assert Path(config.input_dir).is_dir() and not any(Path(config.input_dir).iterdir())
    assert any("test_soundscapes does not exist: scored as an empty" in n for n in notes)
    assert any("no " + str(competition / "train_soundscapes") in n for n in notes)
    assert config.input.empty_input_fallback is None
