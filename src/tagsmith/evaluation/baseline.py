"""The classical supervised baseline every LLM configuration must beat.

Per closed facet: TF-IDF over word and character n-grams of the cleaned item text, and a
linear SVM (one-vs-rest; fits in seconds where a multinomial logistic regression took
minutes on 2 cores) whose classes are the facet's canonical values plus "no value".
Trained on the train split only. Extractive facets get no prediction (a linear
classifier cannot copy spans); that is reported, not hidden, by their per-facet F1.
Predictions are canonical vocabulary values by construction.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tagsmith.gold import GoldItem, canonical_gold
from tagsmith.items import clean_text
from tagsmith.vocabulary import VocabularySet

NONE = "\x00none"  # the "no value" class; cannot collide with a real value


def _text(g: GoldItem) -> str:
    return clean_text(f"{g.item.title} {g.item.description}", max_chars=4000)[0]


@dataclass
class _FacetModel:
    constant: str | None = None
    pipeline: Any = None

    def predict(self, texts: list[str]) -> list[str]:
        if self.pipeline is None:
            return [self.constant or NONE] * len(texts)
        return list(self.pipeline.predict(texts))


class TfidfBaseline:
    def __init__(self, vocabularies: VocabularySet, seed: int = 0, min_examples: int = 2) -> None:
        self.vocabularies = vocabularies
        self.seed = seed
        self.min_examples = min_examples
        self.models: dict[tuple[str, str], _FacetModel] = {}

    def fit(self, train: Sequence[GoldItem]) -> TfidfBaseline:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC
        from sklearn.pipeline import make_pipeline, make_union

        examples: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        for g in train:
            vocab = self.vocabularies.for_category(g.item.category)
            if vocab is None:
                continue
            gold = canonical_gold(g.gold, self.vocabularies, g.item.category)
            text = _text(g)
            for facet in vocab.facets:
                if facet.extractive or facet.name not in gold:
                    continue
                allowed = [v for v in gold[facet.name] if facet.canonical(v)]
                label = allowed[0] if allowed else NONE
                xs, ys = examples.setdefault((vocab.name, facet.name), ([], []))
                xs.append(text)
                ys.append(label)
        for key, (xs, ys) in examples.items():
            if len(set(ys)) < 2 or len(xs) < self.min_examples:
                self.models[key] = _FacetModel(constant=ys[0])
                continue
            features = make_union(
                TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True))
            pipeline = make_pipeline(features, LinearSVC(C=1.0, random_state=self.seed))
            with warnings.catch_warnings():
                # Many-valued facets (dimensions, brands) have more classes than half their
                # examples; sklearn's "is this regression?" warning is expected there.
                warnings.filterwarnings("ignore", message="The number of unique classes", category=UserWarning)
                pipeline.fit(xs, ys)
            self.models[key] = _FacetModel(pipeline=pipeline)
        return self

    def predict(self, items: Sequence[GoldItem]) -> list[dict[str, Any]]:
        """One vectorised call per (vocabulary, facet) over all its items."""
        out: list[dict[str, Any]] = [{"tags": {}} for _ in items]
        groups: dict[str, list[int]] = {}
        for n, g in enumerate(items):
            vocab = self.vocabularies.for_category(g.item.category)
            if vocab is None:
                out[n]["error"] = f"no vocabulary for category {g.item.category!r}"
            else:
                groups.setdefault(vocab.name, []).append(n)
        for vocab_name, rows in groups.items():
            vocab = next(v for v in self.vocabularies if v.name == vocab_name)
            texts = [_text(items[n]) for n in rows]
            for facet in vocab.facets:
                model = self.models.get((vocab.name, facet.name))
                if model is None:
                    continue
                for n, label in zip(rows, model.predict(texts), strict=True):
                    if label != NONE:
                        out[n]["tags"][facet.name] = [label]
        return out


class EmbeddingBaseline:
    """The zero-shot baseline: per closed facet, the value whose text is nearest the item's by
    sentence embedding (the encoder and value texts shortlists use, cached on disk). Needs no
    training data; it always answers, so it is weak where "no value" is often right."""

    def __init__(self, vocabularies: VocabularySet) -> None:
        from tagsmith.shortlist import Shortlister

        self.vocabularies = vocabularies
        self.shortlister = Shortlister(k=1, above=1)

    def predict(self, batch: Sequence[GoldItem]) -> list[dict[str, Any]]:
        import numpy as np

        vectors = self.shortlister.encoder.encode([_text(g) for g in batch])
        out = []
        for g, vec in zip(batch, vectors, strict=True):
            vocab = self.vocabularies.for_category(g.item.category)
            tags: dict[str, list[str]] = {}
            if vocab is not None:
                for name, index in self.shortlister.index(vocab).items():
                    tags[name] = [index.values[int(np.argmax(index.vectors @ vec))]]
            out.append({"tags": tags})
        return out
