"""Which of a model's classes feed which submission column: by name, or through a mapping file.

A competition model's classes are the submission's columns (extra classes are dropped). A
foundation model such as Perch v2 has its own label list (about 15,000 taxa), so a mapping file
says which label feeds which column: a CSV with a header and the columns `label` and `column`,
one pair per line. A label may feed several columns; several labels feeding one column give it
their maximum (sub-species of one species, say). Columns the file does not map are not covered
by that member: the ensemble scores them from the members that do cover them.

The competition's own `taxonomy.csv` (columns `primary_label` and `scientific_name`) serves as
the mapping file of a model whose labels start with the scientific name (BirdNET's
`Genus species_Common Name`): each column gets the labels of its species, compared without
case, so no hand-written mapping is needed; the run report lists the columns left uncovered
(the competition's insects and frogs, or sonotypes, that BirdNET does not know).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from birdinfer.errors import ModelError
from birdinfer.output import column_order

log = logging.getLogger(__name__)

MAPPING_COLUMNS = ("label", "column")
TAXONOMY_COLUMNS = ("primary_label", "scientific_name")


@dataclass(frozen=True)
class ColumnMap:
    """For each submission column, the model classes that feed it (none: not covered)."""

    sources: tuple[tuple[int, ...], ...]

    @classmethod
    def by_name(cls, classes: Sequence[str], columns: Sequence[str], model: str) -> ColumnMap:
        """Every column is a class of the model (a SubmissionError names the missing ones)."""
        return cls(tuple((int(i),) for i in column_order(classes, columns, model)))

    @classmethod
    def from_file(
        cls, path: str | Path, classes: Sequence[str], columns: Sequence[str], model: str
    ) -> ColumnMap:
        pairs = read_mapping(path, classes)
        position = {name: i for i, name in enumerate(classes)}
        unknown = sorted({label for label, _ in pairs} - set(position))
        if unknown:
            raise ModelError(
                f"{model}: mapping {path} names {len(unknown)} labels the model does not have "
                f"(its card lists {len(classes)}): {', '.join(unknown[:5])}"
                + (" ..." if len(unknown) > 5 else "")
            )
        wanted = set(columns)
        elsewhere = sorted({column for _, column in pairs} - wanted)
        if elsewhere:  # a mapping made for another year's columns: the rest still applies
            log.warning(
                "%s: mapping %s names %d columns this submission does not have (ignored): %s",
                model,
                path,
                len(elsewhere),
                ", ".join(elsewhere[:5]),
            )
        sources: dict[str, set[int]] = {}
        for label, column in pairs:
            if column in wanted:
                sources.setdefault(column, set()).add(position[label])
        return cls(tuple(tuple(sorted(sources.get(c, ()))) for c in columns))

    @property
    def covers(self) -> np.ndarray:
        """(columns,) bool: the columns this model scores."""
        return np.array([bool(s) for s in self.sources])

    @property
    def complete(self) -> bool:
        return all(self.sources)

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """(..., classes) -> (..., columns); a column's score is its sources' maximum, and 0
        where it has none (the ensemble leaves this member out of that column)."""
        if all(len(s) == 1 for s in self.sources):  # one class per column: a gather
            return scores[..., np.array([s[0] for s in self.sources], dtype=np.int64)]
        out = np.zeros((*scores.shape[:-1], len(self.sources)), np.float32)
        for j, source in enumerate(self.sources):
            if source:
                out[..., j] = scores[..., list(source)].max(axis=-1)
        return out


def read_mapping(path: str | Path, classes: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(label, column) pairs of a mapping CSV, read as strings ("1139490" stays "1139490"); of
    a taxonomy.csv, each of `classes` whose scientific name is a column's."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ModelError(f"mapping {path}: cannot be read ({exc})") from exc
    if all(c in frame.columns for c in TAXONOMY_COLUMNS) and "label" not in frame.columns:
        return taxonomy_pairs(path, frame, classes)
    missing = [c for c in MAPPING_COLUMNS if c not in frame.columns]
    if missing:
        raise ModelError(
            f"mapping {path}: needs the columns {list(MAPPING_COLUMNS)} (model label, "
            f"submission column), has {list(frame.columns)}"
        )
    pairs = [
        (str(a).strip(), str(b).strip())
        for a, b in zip(frame["label"], frame["column"], strict=True)
    ]
    blank = [i + 2 for i, (a, b) in enumerate(pairs) if not a or not b]
    if blank:
        raise ModelError(f"mapping {path}: blank label or column on CSV line {blank[0]}")
    if not pairs:
        raise ModelError(f"mapping {path}: maps no label")
    return pairs


def scientific_name(label: str) -> str:
    """`Genus species` of a `Genus species_Common Name` label, lower-cased and stripped."""
    return label.split("_", 1)[0].strip().lower()


def taxonomy_pairs(
    path: Path, frame: pd.DataFrame, classes: Sequence[str]
) -> list[tuple[str, str]]:
    """(label, primary_label) for every model label whose scientific name is a column's."""
    by_name: dict[str, list[str]] = {}
    for label in classes:
        by_name.setdefault(scientific_name(label), []).append(label)
    pairs = [
        (label, str(column).strip())
        for column, name in zip(frame["primary_label"], frame["scientific_name"], strict=True)
        for label in by_name.get(str(name).strip().lower(), [])
    ]
    if not pairs:
        raise ModelError(
            f"mapping {path}: no scientific_name of this taxonomy is the scientific part of a "
            "model label ('Genus species_Common Name')"
        )
    return pairs
