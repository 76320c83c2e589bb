"""Vocabulary -> JSON schema that a constrained decoder enforces.

Every facet becomes an array (empty means "the item does not say"), so single- and
multi-valued facets share one shape and no engine has to handle `null`. Closed facets
are arrays of an enum of the facet's surface forms (aliases included; the parser maps
them back to canonical values); extractive facets are arrays of bounded strings whose
"copied from the item text" rule is checked after decoding (see `parsing.py`), because
a per-item regex would have to be compiled again for every item.

`uniqueItems` is left out on purpose: no decoder enforces it and llguidance (vLLM's
fastest JSON backend) rejects a schema that has it; the parser removes duplicates instead.

In the `filled` answer shape (answers.py) every facet is an optional property that is never
an empty list: a facet with no value is left out, not written as `[]`. Properties keep the
vocabulary's order either way, so the decoder still writes facets in a fixed order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tagsmith.answers import AnswerShape
from tagsmith.vocabulary import Facet, Vocabulary


def facet_schema(facet: Facet, shape: AnswerShape = "full") -> dict[str, Any]:
    if facet.extractive:
        # No quotes/backslashes/newlines: keeps spans copyable and the JSON trivially valid. The
        # length bound is part of the pattern, not minLength/maxLength: vLLM refuses xgrammar
        # for a string that has a pattern and length bounds both.
        items: dict[str, Any] = {"type": "string", "pattern": rf'^[^"\\\n\r\t]{{1,{facet.max_length}}}$'}
    else:
        items = {"type": "string", "enum": list(facet.surface_forms)}
    schema: dict[str, Any] = {"type": "array", "items": items, "maxItems": facet.max_values}
    if facet.required or shape == "filled":
        schema["minItems"] = 1
    if facet.description:
        schema["description"] = facet.description
    return schema


def build_schema(vocabulary: Vocabulary, shape: AnswerShape = "full") -> dict[str, Any]:
    """The JSON schema of one complete answer for `vocabulary` in answer shape `shape`."""
    return {
        "title": vocabulary.name,
        "type": "object",
        "properties": {f.name: facet_schema(f, shape) for f in vocabulary.facets},
        "required": [f.name for f in vocabulary.facets if shape == "full" or f.required],
        "additionalProperties": False,
    }


def schema_text(schema: dict[str, Any]) -> str:
    """Compact serialisation that keeps property order (it steers generation order)."""
    return json.dumps(schema, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class AnswerSchema:
    """The JSON schema of one request's answer, built once and handed to engines as it is.

    Equal schemas have equal `text` (compact, order kept), which engines use as the key of
    their compiled-constraint caches; `data` is the parsed object for APIs that want one."""

    text: str
    _data: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, schema: dict[str, Any]) -> AnswerSchema:
        return cls(schema_text(schema), schema)

    @cached_property
    def data(self) -> dict[str, Any]:
        return self._data if self._data is not None else json.loads(self.text)

    @classmethod
    def for_vocabulary(cls, vocabulary: Vocabulary, shape: AnswerShape = "full") -> AnswerSchema:
        return cls.of(build_schema(vocabulary, shape))


def max_answer_tokens(vocabulary: Vocabulary, slack: float = 1.5) -> int:
    """An upper bound on the tokens of a complete answer, used as the generation limit.

    Measured in UTF-8 bytes of the longest possible compact answer (a token is rarely
    shorter than a byte) with slack for optional whitespace; too small a limit would cut
    the JSON and make the answer unparseable.
    """
    total = 2
    for f in vocabulary.facets:
        longest = f.max_length if f.extractive else max(len(s.encode()) for s in f.surface_forms)
        total += len(f.name.encode()) + 6 + f.max_values * (longest + 4)
    return int(total * slack) + 16
