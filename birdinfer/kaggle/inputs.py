"""Where a Kaggle notebook's attached inputs are: found by searching `/kaggle/input`.

Kaggle has mounted the same competition at `/kaggle/input/birdclef-2025` and, newer, at
`/kaggle/input/competitions/birdclef-2025`, and datasets at `/kaggle/input/<slug>` and at
`/kaggle/input/datasets/<owner>/<slug>`; so nothing here trusts one path. The search is bounded
in depth and never walks into the competition's own data (train_audio/ holds ~28,000 files).
When it finds nothing, the error lists what is mounted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from birdinfer.errors import BirdinferError

INPUT_ROOT = Path("/kaggle/input")
# /kaggle/input/datasets/<owner>/<slug>/<a folder inside the upload>
SEARCH_DEPTH = 5
# What makes a folder the competition's data: its sample submission beside one of these (the
# test folder itself may be missing: the notebook then scores it as empty).
SOUNDSCAPE_FOLDERS = ("test_soundscapes", "train_soundscapes", "unlabeled_soundscapes")
COMPETITION_MARKS = (*SOUNDSCAPE_FOLDERS, "train_audio", "taxonomy.csv")


class KaggleInputError(BirdinferError, FileNotFoundError):
    """An attached input that cannot be found; the message lists what is mounted."""


def folders(root: Path, depth: int = SEARCH_DEPTH) -> Iterator[Path]:
    """Folders under `root` (root first, breadth first, sorted), `depth` levels down at most;
    a competition data folder is given but not walked into."""
    level = [root]
    for _ in range(depth + 1):
        below = []
        for folder in level:
            yield folder
            if is_competition_data(folder):
                continue
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            below += [Path(e.path) for e in entries if e.is_dir()]
        level = below


def is_competition_data(folder: Path) -> bool:
    return (folder / "sample_submission.csv").is_file() and any(
        (folder / name).exists() for name in COMPETITION_MARKS
    )


def find_competition(root: Path, slug: str) -> tuple[Path, str]:
    """The competition's data folder under `root`, and how it was chosen.

    The folder named `slug` (the edition's `competition.name`) wins; else the only competition
    folder there is; several others, or none, are an error that lists them or the mounts.
    """
    found = [f for f in folders(root) if is_competition_data(f)]
    named = [f for f in found if f.name == slug]
    if named:
        return named[0], f"competition data: {named[0]}"
    if len(found) == 1:
        return found[0], f"competition data: {found[0]} (the only one; expected '{slug}')"
    if found:
        listed = ", ".join(str(f) for f in found)
        raise KaggleInputError(
            f"several competition folders under {root} and none named '{slug}' ({listed}): "
            "set COMPETITION in the first cell"
        )
    raise KaggleInputError(
        f"no competition data under {root} (a folder with sample_submission.csv beside "
        f"{' or '.join(COMPETITION_MARKS)}): add the competition as an input.\n{mounted(root)}"
    )


def find_model_folders(root: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    """Folders under `root` that hold .onnx or .xml files, outside the `skip` folders (the
    competition's data, the wheelhouse)."""
    skip = tuple(p.resolve() for p in skip)
    found = []
    for folder in folders(root):
        if any(folder.resolve().is_relative_to(s) for s in skip):
            continue
        if any(p.suffix in (".onnx", ".xml") and p.is_file() for p in _children(folder)):
            found.append(folder)
    if not found:
        raise KaggleInputError(
            f"no .onnx or .xml model under {root}: attach the dataset of exported models, or "
            f"set MODELS in the first cell.\n{mounted(root)}"
        )
    return found


def mounted(root: Path, depth: int = 3, limit: int = 40) -> str:
    """What is under `root`, a few levels down, for an error message."""
    if not root.is_dir():
        return f"{root} does not exist: is this a Kaggle notebook with inputs attached?"
    shown = [str(f) for f in folders(root, depth) if f != root]
    more = f"\n  ... and {len(shown) - limit} more" if len(shown) > limit else ""
    listing = "\n  ".join(shown[:limit]) or "(nothing)"
    return f"mounted under {root}:\n  {listing}{more}"


def _children(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder)]
    except OSError:
        return []
