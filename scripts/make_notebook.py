"""Generate submission/kaggle_notebook.ipynb from its twin kaggle_notebook.py, so they never drift.

The .py is plain Python split into cells by `# %%` lines (`# %% [markdown]` cells are comments).
`--check` exits 1 when the .ipynb is stale instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "submission" / "kaggle_notebook.py"
TARGET = SOURCE.with_suffix(".ipynb")


def read_cells(text: str) -> list[tuple[str, str]]:
    """(cell type, source) pairs of a `# %%` script; text before the first marker is refused."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif not cells:
            if line.strip():
                raise ValueError(f"text before the first '# %%' line: {line!r}")
        else:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        out.append((kind, "\n".join(lines).strip("\n")))
    return out


def to_notebook(cells: list[tuple[str, str]]) -> dict:
    """An nbformat 4.5 notebook with no outputs and stable cell ids."""
    return {
        "cells": [_cell(i, kind, source) for i, (kind, source) in enumerate(cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _cell(index: int, kind: str, source: str) -> dict:
    cell = {
        "cell_type": kind,
        "id": f"cell-{index}",
        "metadata": {},
        "source": source.splitlines(keepends=True),
    }
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def render(source: Path = SOURCE) -> str:
    notebook = to_notebook(read_cells(source.read_text(encoding="utf-8")))
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the .ipynb is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        stale = not TARGET.is_file() or TARGET.read_text(encoding="utf-8") != text
        print(f"{TARGET}: {'stale, run scripts/make_notebook.py' if stale else 'up to date'}")
        return 1 if stale else 0
    tmp = TARGET.with_name(f".{TARGET.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(TARGET)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
