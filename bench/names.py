"""Name-frequency lists shipped in ``bench/data`` and weighted picks from them."""

from __future__ import annotations

import bisect
import csv
import functools
import itertools
import random
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


class Culture(StrEnum):
    """Which list a person's names come from (and how they are written)."""

    UKRAINIAN = "uk"
    RUSSIAN = "ru"
    ROMANIAN = "ro"


@dataclass(frozen=True)
class WeightedNames:
    """Names with cumulative weights, for O(log n) weighted picks."""

    names: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: list[tuple[str, float]]) -> WeightedNames:
        if not pairs:
            raise ValueError("a name list needs at least one name")
        names = tuple(name for name, _ in pairs)
        cumulative = tuple(itertools.accumulate(weight for _, weight in pairs))
        return cls(names, cumulative)

    def pick(self, rng: random.Random) -> str:
        point = rng.random() * self.cumulative[-1]
        return self.names[bisect.bisect_right(self.cumulative, point)]

    def share(self, name: str) -> float:
        """The fraction of picks that give ``name`` (0 when it is not listed)."""
        if name not in self.names:
            return 0.0
        index = self.names.index(name)
        previous = self.cumulative[index - 1] if index else 0.0
        return (self.cumulative[index] - previous) / self.cumulative[-1]


# Share of people whose family name is on the culture's list of the most common ones; the
# rest get a long-tail name (stem + ending), so that a million people do not crowd a few
# dozen names. Roughly what the top names cover in each population (see data/README.md).
HEAD_SHARE = {Culture.UKRAINIAN: 0.12, Culture.RUSSIAN: 0.15, Culture.ROMANIAN: 0.30}


@dataclass(frozen=True)
class FamilyNames:
    """Family names as (masculine, feminine) forms: Иванов/Иванова; Шевченко stays Шевченко.

    The most common names come from a list; the long tail is built from stems and endings
    (Гнат + енко, Гнат + ишин, Lup + escu), each drawn by weight.
    """

    head: WeightedNames
    feminine: dict[str, str]
    head_share: float
    stems: WeightedNames
    endings: WeightedNames
    feminine_endings: dict[str, str]

    def pick(self, rng: random.Random) -> tuple[str, str]:
        """(masculine, feminine) form of one family name."""
        if rng.random() < self.head_share:
            masculine = self.head.pick(rng)
            return masculine, self.feminine[masculine]
        stem, ending = self.stems.pick(rng), self.endings.pick(rng)
        return stem + ending, stem + self.feminine_endings[ending]


@dataclass(frozen=True)
class NameLists:
    female: WeightedNames
    male: WeightedNames
    family: FamilyNames


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    rows = list(csv.reader(lines))
    return rows[1:]  # header


def read_given(path: Path) -> WeightedNames:
    """A ``name,weight`` file."""
    return WeightedNames.of([(name, float(weight)) for name, weight in _rows(path)])


def read_forms(path: Path) -> tuple[WeightedNames, dict[str, str]]:
    """A ``masculine,feminine,weight`` file: weighted masculine forms and their feminine."""
    rows = _rows(path)
    weighted = WeightedNames.of([(masculine, float(weight)) for masculine, _, weight in rows])
    return weighted, {masculine: feminine for masculine, feminine, _ in rows}


def read_family(prefix: Path, head_share: float) -> FamilyNames:
    head, feminine = read_forms(Path(f"{prefix}_family.csv"))
    endings, feminine_endings = read_forms(Path(f"{prefix}_family_endings.csv"))
    return FamilyNames(
        head=head,
        feminine=feminine,
        head_share=head_share,
        stems=read_given(Path(f"{prefix}_family_stems.csv")),
        endings=endings,
        feminine_endings=feminine_endings,
    )


@functools.cache
def name_lists(culture: Culture) -> NameLists:
    """The shipped lists of one culture (read once per process)."""
    prefix = DATA_DIR / culture.value
    return NameLists(
        female=read_given(Path(f"{prefix}_given_female.csv")),
        male=read_given(Path(f"{prefix}_given_male.csv")),
        family=read_family(prefix, HEAD_SHARE[culture]),
    )
