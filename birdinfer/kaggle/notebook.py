"""The offline Kaggle notebook's set-up (submission/kaggle_notebook.py), as one call.

From the few settings a user edits in the notebook's first cell (edition, budget, models) it
finds the attached inputs, builds the run's config and says, line by line, what it found and
chose: which competition folder, which models (and which variant of each), which folder a save
run scores while test_soundscapes/ is empty.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from birdinfer.config import Config, load_config
from birdinfer.kaggle.inputs import INPUT_ROOT, find_competition, find_model_folders
from birdinfer.kaggle.paths import fallback_folder, find_models, models_in_folders
from birdinfer.results import RunResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotebookSettings:
    edition: str = "birdclef2026"  # a bundled config name, or a YAML path (`extends:` one)
    budget_minutes: float | None = None  # None: the edition's CPU limit
    models: str | None = None  # a file, a folder, several joined by ":"; None: search inputs
    input_root: Path = INPUT_ROOT
    competition: Path | None = None  # None: search input_root
    working: Path = Path("/kaggle/working")
    fallback_files: int = 20  # files the save run scores while test_soundscapes/ is empty


def notebook_config(settings: NotebookSettings) -> tuple[Config, list[str]]:
    """The run's config, and what was found and chosen (for the notebook to print)."""
    edition = load_config(settings.edition)
    if settings.competition is not None:
        competition, note = Path(settings.competition), f"competition data: {settings.competition}"
    else:
        competition, note = find_competition(settings.input_root, edition.competition.name)
    notes = [note]
    test_dir, note = input_folder(competition)
    notes += [note] if note else []
    fallback, note = save_run_fallback(edition, competition, settings.fallback_files)
    notes.append(note)
    models, note = model_files(settings, competition)
    notes.append(note)
    overrides = {
        "input_dir": str(test_dir),
        "models": models,
        "mel": None,  # each model's own mel settings, read from its file
        "output.submission": str(settings.working / "submission.csv"),
        "output.sample_submission": str(competition / "sample_submission.csv"),
        "input.empty_input_fallback": fallback,
        "output.progress": False,
    }
    if settings.budget_minutes is not None:
        overrides["budget.minutes"] = settings.budget_minutes
    return load_config(settings.edition, overrides), notes


def input_folder(competition: Path) -> tuple[Path, str | None]:
    """test_soundscapes/, or an empty folder standing in for a missing one (a warning): the run
    then goes as for an empty folder (the save-run fallback, else a header-only submission)."""
    test_dir = competition / "test_soundscapes"
    if test_dir.is_dir():
        return test_dir, None
    empty = Path(tempfile.gettempdir()) / "birdinfer_no_test_soundscapes"
    empty.mkdir(parents=True, exist_ok=True)
    note = f"WARNING: {test_dir} does not exist: scored as an empty test folder"
    log.warning("%s", note)
    return empty, note


# The fallback's note is printed on every run: it says what happens if the folder is empty.
SAVE_RUN = "when test_soundscapes/ is empty (the save run)"


def save_run_fallback(edition: Config, competition: Path, files: int) -> tuple[str | None, str]:
    """The folder a save run scores (a few files of the one the edition config names, found in
    this competition's data), and a sentence saying which."""
    named = edition.input.empty_input_fallback
    if not named:
        return None, f"{SAVE_RUN}: the edition names no fallback folder"
    source = competition / Path(named).name
    if not source.is_dir():
        return None, f"{SAVE_RUN}: no {source}, so a header-only file"
    if files <= 0:
        return None, f"{SAVE_RUN}: fallback off, so a header-only file"
    folder = fallback_folder(source, files, audio=edition.audio)
    linked = sum(1 for _ in Path(folder).iterdir()) if folder else 0
    return folder, f"{SAVE_RUN}: scores {linked} files of {source}"


def model_files(settings: NotebookSettings, competition: Path) -> tuple[list[str], str]:
    """The models named in the settings, else every model found under the input root."""
    if settings.models:
        found = find_models(settings.models)
    else:
        found = models_in_folders(find_model_folders(settings.input_root, skip=(competition,)))
    listed = "\n  ".join(found)
    return found, f"models, in the time guard's priority order:\n  {listed}"


def scored_from(result: RunResult) -> str:
    """Which folder the run scored (the save run's fallback, or the test folder)."""
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    return f"scored files from {report['input_dir']}"
