"""Raw model output -> validated tags.

Constrained decoding guarantees the *shape*; this module guarantees the *policy*, and is
the last line of defence for engines that cannot constrain (a server that ignores the
schema). Every answer is checked again here:

- closed facets: the answer must be a value or alias of the facet; aliases map to the
  canonical value;
- extractive facets: the span must occur in the item's text (ignoring case and runs of
  spaces); it is kept as the text writes it;
- duplicates (after mapping to canonical values) are dropped, then at most `max_values`
  are kept, in the model's order;
- anything refused is kept in `rejected` with the reason, never silently lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tagsmith.text import find_span
from tagsmith.vocabulary import Facet, Vocabulary


NO_VALUE = {"", "n/a", "none", "null"}


class Reason(str, Enum):
    """Why an answered value was refused; the value is what output files and reports show."""

    NOT_A_STRING = "not a string"
    NOT_IN_TEXT = "not found in the item text"
    NOT_IN_VOCABULARY = "not in the vocabulary"
    UNKNOWN_FACET = "unknown facet"
    TOO_MANY = "too many values"
    LOW_CONFIDENCE = "below the confidence threshold"

    @property
    def out_of_vocabulary(self) -> bool:
        """Answers a constrained decoder can never produce: a server ignoring the schema shows here."""
        return self in (Reason.NOT_IN_VOCABULARY, Reason.UNKNOWN_FACET)


@dataclass(frozen=True)
class Rejection:
    facet: str
    value: Any
    reason: Reason
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        reason = f"{self.reason.value} ({self.detail})" if self.detail else self.reason.value
        return {"facet": self.facet, "value": self.value, "reason": reason, "code": self.reason.name.lower()}


def rejection_text(record: dict[str, Any]) -> str:
    """One rejection of an output line (`Rejection.to_dict`) as a reviewer reads it."""
    return f"{record.get('facet', '')}: {record.get('value', '')} ({record.get('reason', '')})"


@dataclass(frozen=True)
class ParsedTags:
    tags: dict[str, list[str]]
    rejected: list[Rejection]
    #: Set when the output is not a JSON object at all.
    error: str | None = None
    #: Values answered twice for one facet (after mapping aliases to canonical values): dropped.
    duplicates: int = 0


def tag_value(facet: Facet, written: str, item_text: str) -> str | None:
    """The tag a value the model wrote stands for: the facet's canonical value (aliases and
    spelling folded), or for an extractive facet the normalized span of the item's text it
    copies; None when it is neither."""
    if facet.extractive:
        span = find_span(written, item_text, facet.normalize)
        return facet.normal(span) if span is not None else None
    return facet.canonical(written)


def _facet_values(facet: Facet, answer: Any, item_text: str) -> tuple[list[str], list[Rejection], int]:
    values = answer if isinstance(answer, list) else [answer]
    kept: list[str] = []
    rejected: list[Rejection] = []
    duplicates = 0
    for v in values:
        if v is None or (isinstance(v, str) and v.strip().casefold() in NO_VALUE
                         and (facet.extractive or facet.canonical(v) is None)):
            continue  # the conventional ways of saying "no value", unless the facet lists one
        if not isinstance(v, str):
            rejected.append(Rejection(facet.name, v, Reason.NOT_A_STRING))
            continue
        value = tag_value(facet, v, item_text)
        if value is None:
            reason = Reason.NOT_IN_TEXT if facet.extractive else Reason.NOT_IN_VOCABULARY
            rejected.append(Rejection(facet.name, v, reason))
            continue
        if value.casefold() in (k.casefold() for k in kept):
            duplicates += 1  # dropped, not an error
            continue
        if len(kept) >= facet.max_values:
            rejected.append(Rejection(facet.name, v, Reason.TOO_MANY, f"at most {facet.max_values}"))
            continue
        kept.append(value)
    return kept, rejected, duplicates


def parse_answer(raw: str, vocabulary: Vocabulary, item_text: str) -> ParsedTags:
    """Validate one raw answer against `vocabulary`; `item_text` is what extractive spans must come from."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        return ParsedTags({}, [], error=f"unparseable output: {exc}")
    if not isinstance(data, dict):
        return ParsedTags({}, [], error="output is not a JSON object")
    tags: dict[str, list[str]] = {}
    rejected: list[Rejection] = []
    duplicates = 0
    for key, answer in data.items():
        facet = vocabulary.facet(key)
        if facet is None:
            rejected.append(Rejection(str(key), answer, Reason.UNKNOWN_FACET))
            continue
        kept, refused, dropped = _facet_values(facet, answer, item_text)
        rejected.extend(refused)
        duplicates += dropped
        if kept:
            tags[facet.name] = kept
    return ParsedTags(tags, rejected, duplicates=duplicates)
