"""Gold tags -> the exact answer the schema allows: the text a model should write for them.

Training targets and the worked examples shown in prompts are both this text, so what an
adapter learns to write and what it is shown are the same answers the decoder permits.
"""

from __future__ import annotations

import json

from tagsmith.text import find_span
from tagsmith.vocabulary import Vocabulary


def target_answer(vocab: Vocabulary, gold: dict[str, list[str]], item_text: str) -> str:
    """The compact JSON answer (schema property order) that the gold tags stand for: a closed
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
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
