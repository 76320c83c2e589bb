"""Units of measure, from one table (units.toml) that every reader of units shares.

Prompts show a text's measurements in the unit a facet stores (measures.py), loose keys fold
"inches" and '"' into one symbol (vocab_health.py), and vocabulary suggestions convert a text's
numbers into a facet's unit (value_spans.py). Each used to keep its own table, and their
spellings and conversion factors drifted apart; a unit added to the file now reaches all three.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).with_name("units.toml")


@dataclass(frozen=True)
class Unit:
    """One unit: how texts spell it and, for a unit of measure, its kind and size."""

    symbol: str
    #: regular expressions, matched case-insensitively as whole words
    spellings: tuple[str, ...]
    #: the kind of quantity ("length", "mass", "volume"); None: spellings folded, never converted
    measures: str | None = None
    #: size in the kind's base unit
    size: float | None = None
    #: units a shop may store numbers in that texts state in this one
    converts_to: tuple[str, ...] = ()


def load_table(path: Path) -> dict[str, Unit]:
    """The units of a table file, checked: a unit of measure has a kind and a size, and every
    conversion it names can be worked out."""
    with path.open("rb") as f:
        table = tomllib.load(f)
    units = {symbol: Unit(symbol, tuple(entry["spellings"]), entry.get("measures"), entry.get("size"),
                          tuple(entry.get("converts_to", ())))
             for symbol, entry in table.items()}
    for unit in units.values():
        if (unit.measures is None) != (unit.size is None):
            raise ValueError(f"{path}: unit {unit.symbol!r} needs both `measures` and `size`, or neither")
        for target in unit.converts_to:
            if factor(unit.symbol, target, units) is None:
                raise ValueError(f"{path}: unit {unit.symbol!r} cannot convert to {target!r}")
    return units


def factor(unit: str, target: str, units: dict[str, Unit] | None = None) -> float | None:
    """What a number stated in `unit` is multiplied by to state it in `target` (None: it cannot
    be). Units of two kinds convert through the first one's fluid twin: texts write "oz" for
    fluid ounces too, so "oz" -> "ml" goes through "fl oz"."""
    units = UNITS if units is None else units
    to = units.get(target)
    for name in (unit, f"fl {unit}"):
        source = units.get(name)
        if source and to and source.size and to.size and source.measures == to.measures:
            return source.size / to.size
    return None


UNITS: dict[str, Unit] = load_table(TABLE)
#: the units of measure: a facet may store its values in one of these
MEASURES: dict[str, Unit] = {symbol: unit for symbol, unit in UNITS.items() if unit.measures}
#: (unit, target, factor) for every conversion the table names, in its order
CONVERSIONS: tuple[tuple[str, str, float], ...] = tuple(
    (unit.symbol, target, factor(unit.symbol, target) or 0.0) for unit in UNITS.values() for target in unit.converts_to)

_PATTERNS = [(re.compile(f"(?:{'|'.join(unit.spellings)})$", re.IGNORECASE), unit.symbol) for unit in UNITS.values()]


@lru_cache(maxsize=65536)
def unit_of(spelling: str) -> str | None:
    """The symbol of one spelling of a unit ("inches" -> "in", '"' -> "in", "GB" -> "gb"), or None."""
    spelling = spelling.strip()
    return next((symbol for pattern, symbol in _PATTERNS if pattern.match(spelling)), None)


def spellings_pattern(symbols: list[str] | tuple[str, ...], *, words: bool = True, marks: bool = True) -> str:
    """A regex alternation of the spellings of `symbols`, longest first ("fl oz" before "oz",
    "inches" before "in"): the spelled-out ones (`words`), the quote marks ('"', "'": `marks`,
    which need a context of their own: they touch the letter after them), or both."""
    spellings = [s for symbol in symbols for s in UNITS[symbol].spellings
                 if (words if re.search(r"\w", s) else marks)]
    return "|".join(sorted(spellings, key=len, reverse=True))
