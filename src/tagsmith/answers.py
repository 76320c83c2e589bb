"""Gold tags -> the exact answer the schema allows: the text a model should write for them.

Training targets and the worked examples shown in prompts are both this text, so what an
adapter learns to write and what it is shown are the same answers the decoder permits.

Two answer shapes (`[tagging] answer_shape`), both compact JSON in the vocabulary's facet order:

- **full**: every facet, an empty one as `[]`. Every facet name is decoded for every item,
  although most facets of most items are empty.
- **filled**: only the facets that have a value. A facet left out is empty; the schema makes
  each facet optional (and non-empty when present) so a decoder spends steps only on the
  facets it fills. An adapter is trained in one shape and its manifest records which.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

from tagsmith.text import find_span
from tagsmith.vocabulary import Vocabulary

AnswerShape = Literal["full", "filled"]
SHAPES: tuple[AnswerShape, ...] = ("full", "filled")


def gold_answer(vocab: Vocabulary, gold: dict[str, list[str]], item_text: str) -> dict[str, list[str]]:
    """Every facet (schema property order) with the gold values the model should write: a closed
    facet keeps the gold values the vocabulary knows (canonical spelling), an extractive one the
    gold spans found in the item text; at most `max_values` each, no value is []."""
    answer: dict[str, list[str]] = {}
    for facet in vocab.facets:
        values: list[str] = []
        for v in gold.get(facet.name, []):
            # extractive: the span as the text writes it (the model copies; the parser normalizes)
            value = find_span(v, item_text, facet.normalize) if facet.extractive else facet.canonical(v)
            if value and value not in values and len(values) < facet.max_values:
                values.append(value)
        answer[facet.name] = values
    return answer


def answer_json(answer: Mapping[str, Sequence[str]], shape: AnswerShape = "full") -> str:
    """An answer (facet -> values, in facet order) written in `shape`, compact JSON."""
    kept = {k: list(v) for k, v in answer.items() if v or shape == "full"}
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


def target_answer(vocab: Vocabulary, gold: dict[str, list[str]], item_text: str,
                  shape: AnswerShape = "full") -> str:
    """The compact JSON answer that the gold tags stand for, in `shape`."""
    return answer_json(gold_answer(vocab, gold, item_text), shape)
