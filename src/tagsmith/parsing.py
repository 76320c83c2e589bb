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
import re
from dataclasses import dataclass
from typing import Any

from tagsmith.vocabulary import Facet, Vocabulary


NO_VALUE = {"", "n/a", "none", "null"}


@dataclass(frozen=True)
class Rejection:
    facet: str
    value: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"facet": self.facet, "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class ParsedTags:
    tags: dict[str, list[str]]
    rejected: list[Rejection]
    #: Set when the output is not a JSON object at all.
    error: str | None = None


def find_span(span: str, text: str) -> str | None:
    """The span as it occurs in `text` (case- and whitespace-insensitive), or None."""
    words = span.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(pattern, text, flags=re.IGNORECASE)
    return match.group(0) if match else None


def _facet_values(facet: Facet, answer: Any, item_text: str) -> tuple[list[str], list[Rejection]]:
    values = answer if isinstance(answer, list) else [answer]
    kept: list[str] = []
    rejected: list[Rejection] = []
    for v in values:
        if v is None or (isinstance(v, str) and v.strip().casefold() in NO_VALUE
                         and (facet.extractive or facet.canonical(v) is None)):
            continue  # the conventional ways of saying "no value", unless the facet lists one
        if not isinstance(v, str):
            rejected.append(Rejection(facet.name, v, "not a string"))
            continue
        if facet.extractive:
            value = find_span(v, item_text)
            if value is None:
                rejected.append(Rejection(facet.name, v, "not found in the item text"))
                continue
        else:
            value = facet.canonical(v)
            if value is None:
                rejected.append(Rejection(facet.name, v, "not in the vocabulary"))
                continue
        if value.casefold() in (k.casefold() for k in kept):
            continue  # duplicate: dropped, not an error
        if len(kept) >= facet.max_values:
            rejected.append(Rejection(facet.name, v, f"more than {facet.max_values} value(s)"))
            continue
        kept.append(value)
    return kept, rejected


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
    for key, answer in data.items():
        facet = vocabulary.facet(key)
        if facet is None:
            rejected.append(Rejection(str(key), answer, "unknown facet"))
            continue
        kept, refused = _facet_values(facet, answer, item_text)
        rejected.extend(refused)
        if kept:
            tags[facet.name] = kept
    return ParsedTags(tags, rejected)
