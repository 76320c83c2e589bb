"""Gold labels: an item with the values it should get. Shared by evaluation and training,
so neither imports the other and nothing below the tagger imports either."""

from __future__ import annotations

from dataclasses import dataclass

from tagsmith.items import Item
from tagsmith.vocabulary import VocabularySet


@dataclass(frozen=True)
class GoldItem:
    """The `Item` a tagger sees plus gold values per facet; an empty list means "no value"."""

    item: Item
    gold: dict[str, list[str]]


def canonical_gold(gold: dict[str, list[str]], vocabularies: VocabularySet | None,
                   category: str | None) -> dict[str, list[str]]:
    """Gold values spelled as the vocabulary spells them (aliases -> canonical; extractive values
    normalized as the facet declares), so a variant the tagger canonicalised is not scored as wrong. Values the vocabulary
    does not know are kept as written (and can then only be matched by extractive facets)."""
    vocab = vocabularies.for_category(category) if vocabularies else None
    if vocab is None:
        return gold
    out = {}
    for facet_name, values in gold.items():
        facet = vocab.facet(facet_name)
        if facet is not None and facet.extractive:
            out[facet_name] = [facet.normal(v) for v in values]
        else:
            out[facet_name] = [((facet.canonical(v) if facet else None) or v) for v in values]
    return out
