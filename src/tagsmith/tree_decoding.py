"""Choosing a value of a category tree: one level at a time, or ranked among whole paths.

A taxonomy of 10,000 paths cannot be shown whole, and a flat shortlist of the nearest paths
by embedding puts the model before 50 long strings, most of them from the wrong branch. Down
the tree, each step is a short choice: the model picks one of the current node's children (a
one-facet vocabulary of their names, answered like any short closed facet: option scoring
where the engine can score, constrained decoding otherwise) or, below the root, leaves the
answer empty and stops at the current node, which is then the answer: a product is placed no
deeper than its text allows. A node with more children than `max_children` offers only the
ones nearest the item by sentence embedding of their paths.

The tagger uses this for vocabularies made of one hierarchical facet when `[tagging]
hierarchy_decoding = "tree"`; the answer's confidence is the product of the steps'. Not the
default: with the embedded 135M model it placed fewer products right than the plain embedding
baseline, at many times the cost (README, "A product taxonomy"). The default, `RankedDecoder`
below, ranks the item's nearest whole paths instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tagsmith.items import Item
from tagsmith.vocabulary import Facet, Value, Vocabulary, VocabularySet

if TYPE_CHECKING:
    from tagsmith.config import TaggingSettings
    from tagsmith.engines import Engine
    from tagsmith.prompts import PromptTemplate


@dataclass
class TreeAnswer:
    path: tuple[str, ...]
    #: probability of the chosen child at each step (1.0 where a step had no scores)
    steps: list[float] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        p = 1.0
        for s in self.steps:
            p *= s
        return p


def children_of(facet: Facet) -> dict[tuple[str, ...], list[str]]:
    """Each node's children's names, in the vocabulary's order (the root is the empty path)."""
    out: dict[tuple[str, ...], list[str]] = {}
    for value in facet.allowed:
        path = facet.path(value)
        out.setdefault(path[:-1], [])
        if path[-1] not in out[path[:-1]]:
            out[path[:-1]].append(path[-1])
    return out


class TreeDecoder:
    def __init__(self, engine: Engine, template: PromptTemplate, settings: TaggingSettings,
                 adapter: str | None = None, max_children: int = 20) -> None:
        self.engine = engine
        self.template = template
        # each step is a short closed choice: scored whole where the engine scores
        self.settings = settings.model_copy(update={
            "option_scoring": "closed" if settings.option_scoring != "off" else "off",
            "option_scoring_max": max(settings.option_scoring_max, max_children), "shortlist_k": 0,
            "min_confidence": 0.0})  # each step answers; the tagger applies the threshold to the path
        self.adapter = adapter
        self.max_children = max_children
        self._children: dict[str, dict[tuple[str, ...], list[str]]] = {}
        self._encoder: Any = None
        self._child_vectors: dict[tuple[str, tuple[str, ...]], Any] = {}

    def children(self, facet: Facet) -> dict[tuple[str, ...], list[str]]:
        key = f"{facet.name}|{len(facet.allowed)}|{facet.allowed[:1]}"
        if key not in self._children:
            self._children[key] = children_of(facet)
        return self._children[key]

    def _nearest(self, facet: Facet, node: tuple[str, ...], kids: list[str], vectors: Any, row: int) -> list[str]:
        """The `max_children` children of `node` nearest item `row` (in the tree's order)."""
        import numpy as np

        from tagsmith.shortlist import value_text

        key = (facet.name, node)
        if key not in self._child_vectors:
            self._child_vectors[key] = self._encoder.encode([value_text(facet, facet.join((*node, k))) for k in kids])
        scores = self._child_vectors[key] @ vectors[row]
        keep = set(np.argsort(-scores)[:self.max_children].tolist())
        return [k for i, k in enumerate(kids) if i in keep]

    def decode(self, facet: Facet, items: Sequence[Item], texts: Sequence[str]) -> list[TreeAnswer]:
        """The path each item is placed at, walking down from the root."""
        from tagsmith.tagger import Tagger

        tree = self.children(facet)
        answers = [TreeAnswer(()) for _ in items]
        active = list(range(len(items)))
        vectors = None
        while active:
            vocabs: dict[str, Vocabulary] = {}
            asked: list[Item] = []
            rows: list[int] = []
            for i in active:
                node = answers[i].path
                kids = tree.get(node, [])
                if len(kids) > self.max_children:
                    if vectors is None:
                        from tagsmith.embeddings import shared_encoder

                        self._encoder = shared_encoder()
                        vectors = self._encoder.encode(list(texts))
                    kids = self._nearest(facet, node, kids, vectors, i)
                key = hashlib.sha256("\x00".join((*node, "|", *kids)).encode()).hexdigest()[:16]
                if key not in vocabs:
                    step = Facet(name=facet.name, required=not node, values=tuple(Value(value=k) for k in kids),
                                 description=f"under {facet.join(node)}" if node else facet.description)
                    vocabs[key] = Vocabulary(name=f"{facet.name}:{key}", category=key, facets=(step,))
                asked.append(Item(items[i].id, items[i].title, items[i].description, key, items[i].fields))
                rows.append(i)
            tagger = Tagger(self.engine, VocabularySet(list(vocabs.values())), self.template, self.settings,
                            adapter=self.adapter)
            still = []
            for i, result in zip(rows, tagger.tag_batch(asked), strict=True):
                chosen = (result.tags.get(facet.name) or [None])[0]
                answers[i].raw.append(result.raw or "")
                if result.error or chosen is None:
                    continue
                answers[i].path = (*answers[i].path, chosen)
                answers[i].steps.append(float((result.scores.get(facet.name) or {}).get(chosen, 1.0)))
                if tree.get(answers[i].path):
                    still.append(i)
            active = still
        return answers


class RankedDecoder:
    """Choosing a category path from the item's nearest paths, each scored whole.

    The shortlist of a category tree is the `ranked_k` paths nearest the item by sentence
    embedding (exact mentions first; paths embedded leaf first, each level below the top
    costing `hierarchy_depth_penalty`). Each is then an option of one required closed choice,
    answered by option scoring (option_scoring.py) with those same similarities as the prior
    (`ranked_prior_weight`, `ranked_prior_temperature`): the answer is the path the model and
    the similarity together rank first, never a bare top-level node that a generated answer
    may stop at. Calibration against a content-free item is left off here: the options are
    listed in similarity order, so a content-free item's preferences are those of that order,
    and subtracting them undid the ranking (README, "A product taxonomy"). An engine that
    cannot score decodes the same choice constrained.
    """

    def __init__(self, engine: Engine, template: PromptTemplate, settings: TaggingSettings,
                 adapter: str | None = None) -> None:
        self.engine = engine
        self.template = template
        self.settings = settings.model_copy(update={
            "option_scoring": "closed" if settings.option_scoring != "off" else "off",
            "option_scoring_max": max(settings.option_scoring_max, settings.ranked_k), "option_calibration": False,
            "option_prior_weight": settings.ranked_prior_weight,
            "option_prior_temperature": settings.ranked_prior_temperature,
            "shortlist_k": 0, "min_confidence": 0.0})  # the tagger applies the threshold to the path
        self.adapter = adapter

    def decode(self, facet: Facet, items: Sequence[Item],
               candidates: Sequence[Sequence[tuple[str, float]]]) -> list[TreeAnswer]:
        """The path each item is placed at, among its `candidates` (path, similarity to the
        item; nearest first, the first `ranked_k` ranked)."""
        from tagsmith.tagger import Tagger

        vocabs: dict[str, Vocabulary] = {}
        asked = []
        similarities = {}
        for n, (item, found) in enumerate(zip(items, candidates, strict=True)):
            found = list(found)[:self.settings.ranked_k]
            key = hashlib.sha256("\x00".join(p for p, _ in found).encode()).hexdigest()[:16]
            if key not in vocabs:
                step = Facet(name=facet.name, required=True, description=facet.description,
                             values=tuple(Value(value=p) for p, _ in found))
                vocabs[key] = Vocabulary(name=f"{facet.name}:{key}", category=key, facets=(step,))
            # numbered, not by the item's id: two items of a batch may share one
            asked.append(Item(str(n), item.title, item.description, key, item.fields))
            similarities[str(n)] = [s for _, s in found]
        tagger = Tagger(self.engine, VocabularySet(list(vocabs.values())), self.template, self.settings,
                        adapter=self.adapter, similarities=similarities)
        out = []
        for result in tagger.tag_batch(asked):
            chosen = (result.tags.get(facet.name) or [None])[0]
            if result.error or chosen is None:
                out.append(TreeAnswer((), raw=[result.raw or result.error or ""]))
                continue
            out.append(TreeAnswer(facet.path(chosen), [float((result.scores.get(facet.name) or {}).get(chosen, 1.0))],
                                  [result.raw or ""]))
        return out
