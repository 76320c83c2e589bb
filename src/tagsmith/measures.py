"""Measurements in an item's text, shown in the unit its vocabulary stores them in.

A shop's vocabulary often stores a dimension as a bare number in one unit ("61.0", centimetres)
while the item's text states it in another (24"). Copying is easy for a small model; converting
inches to centimetres is not. So a facet may declare its `unit`, and templates show each
measurement of the text that a facet's unit can hold converted beside it, in that facet's own
number format (`24" (61.0 cm)`): the model then copies what it needs. Nothing else changes: the
item's text as stored, evidence and post-checks all see the text as written.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tagsmith.units import MEASURES, spellings_pattern, unit_of

if TYPE_CHECKING:
    from tagsmith.vocabulary import Vocabulary

#: inch marks may touch a side letter (24"W); a foot mark before a letter is an apostrophe (80's)
_MARKS = (f"{spellings_pattern(['in'], words=False)}|"
          f"(?:{spellings_pattern(['ft'], words=False)})(?![^\\W\\d_])")
_UNIT = spellings_pattern(list(MEASURES), marks=False)
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[- ]\d+/\d+)?|\d+/\d+"
#: one number, its unit if one follows ("24\"", "3-7/8 in", "610mm"), and the next in a chain
#: of dimensions sharing one unit at its end ("36 x 18 x 30 in")
MEASURE = re.compile(rf"(?<![\d.,/-])(?<![a-wyzA-WYZ_])({_NUMBER})(?![\d/])\s*"
                     rf"(?:({_MARKS}|(?:{_UNIT})(?!\w)(?! 1\b))|(?=[x\u00d7*]\s*\d))", re.IGNORECASE)
_CHAIN = re.compile(r"\s*[x\u00d7*]\s*$", re.IGNORECASE)
#: a side named right after a measurement ("24\"W", "30 in H") stays with it
_SIDE = re.compile(r"\s?[WwDdHhLl](?![\w])")


def parse_number(text: str) -> float:
    """ "13-1/2" and "13 1/2" -> 13.5, "1/2" -> 0.5, "1,200.5" -> 1200.5."""
    text = text.replace(",", "")
    whole, _, fraction = text.replace("-", " ").rpartition(" ") if "/" in text else (text, "", "")
    if "/" in fraction:
        top, bottom = fraction.split("/")
        return (float(whole) if whole else 0.0) + (float(top) / float(bottom) if float(bottom) else 0.0)
    return float(whole)


@dataclass(frozen=True)
class Measure:
    value: float
    unit: str
    start: int
    #: where the annotation goes: after the unit and any side letter that follows it
    end: int


def measurements(text: str) -> list[Measure]:
    """The measurements a text states with a unit. A number without one borrows the unit that
    ends its chain of dimensions ("36 x 18 x 30 in": three lengths in inches)."""
    found: list[tuple[float, str | None, int, int]] = []
    for m in MEASURE.finditer(text):
        try:
            value = parse_number(m.group(1))
        except (ValueError, ZeroDivisionError):
            continue
        end = m.end(2) if m.group(2) else m.end(1)
        found.append((value, unit_of(m.group(2)) if m.group(2) else None, m.start(1), end))
    out: list[Measure] = []
    unit = None
    for k in range(len(found) - 1, -1, -1):  # right to left: a chain's unit stands at its end
        value, stated, start, end = found[k]
        chained = k + 1 < len(found) and _CHAIN.match(text[end:found[k + 1][2]]) is not None
        unit = stated or (unit if chained else None)
        if unit:
            side = _SIDE.match(text, end)
            out.append(Measure(value, unit, start, side.end() if side else end))
    return out[::-1]


@dataclass(frozen=True)
class Target:
    """A unit some facet stores values in, and how many decimals its values are written with."""

    unit: str
    decimals: int

    def number(self, value: float, unit: str) -> str:
        """`value` stated in `unit`, converted to this unit and written as its values are."""
        return f"{value * MEASURES[unit].size / MEASURES[self.unit].size:.{self.decimals}f}"


def value_decimals(values: list[str] | tuple[str, ...]) -> int:
    """The usual number of decimals of a facet's numeric values (1 where it has none)."""
    counts = Counter(len(m.group(1) or "") for v in values if (m := re.fullmatch(r"\d+(?:\.(\d+))?", v.strip())))
    return counts.most_common(1)[0][0] if counts else 1


def annotate(text: str, targets: dict[str, Target]) -> str:
    """`text` with each measurement that a target unit of its measure can hold followed by its
    value in that unit: `24"W (61.0 cm)`. `targets`: measure -> the unit shown. Measurements
    already in that unit are left as written."""
    if not targets or not text:
        return text
    pieces, last = [], 0
    for m in measurements(text):
        target = targets.get(MEASURES[m.unit].measures)
        if target is None or m.unit == target.unit:
            continue
        pieces += [text[last:m.end], f" ({target.number(m.value, m.unit)} {target.unit})"]
        last = m.end
    return "".join(pieces) + text[last:] if pieces else text


def targets(vocabulary: Vocabulary) -> dict[str, Target]:
    """Per kind of measure, the unit a facet of `vocabulary` stores it in (the first such facet's)."""
    out: dict[str, Target] = {}
    for f in vocabulary.facets:
        if f.unit is not None:
            out.setdefault(MEASURES[f.unit].measures, Target(f.unit, value_decimals(f.allowed)))
    return out


def in_units(text: str, vocabulary: Vocabulary) -> str:
    """The templates' `in_units` filter: `{{ title | in_units(vocabulary) }}`."""
    return annotate(text, vocabulary.unit_targets)
