"""Worked examples for the prompt: each item's most similar labelled items, with their answers.

A small model tags far better when it sees how items like this one were tagged: the values
their shop uses, which facets are usually empty, how part numbers look. For every item the
`k` nearest labelled items of the same vocabulary (cosine similarity of all-MiniLM-L6-v2
embeddings of title and description, the encoder tagsmith already ships) are handed to the
template as `examples`, each with its gold answer written exactly as the schema allows
(answers.gold_answer, in the run's answer shape). The item itself, or a copy of it (same id or same text), is never
its own example. Embeddings of an example file are computed once and cached by content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tagsmith.answers import AnswerShape, answer_json, gold_answer
from tagsmith.config import TaggingSettings
from tagsmith.embeddings import TextEncoder
from tagsmith.gold import GoldItem, canonical_gold, load_dataset
from tagsmith.items import Item, clean_text
from tagsmith.model_store import cache_dir
from tagsmith.text import fold
from tagsmith.vocabulary import VocabularySet


@dataclass(frozen=True)
class Example:
    """One demonstration as templates see it: `title`, `description` (shortened), `answer`
    (its gold answer as the model should write it: the full shape until `shaped`)."""

    id: str
    title: str
    description: str
    answer: str
    #: the gold values per facet that `answer` writes
    values: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    def shaped(self, shape: AnswerShape) -> Example:
        """This example with its answer written in `shape` (the run's answer shape)."""
        return self if shape == "full" else replace(self, answer=answer_json(self.values, shape))


def _shown(item: Item, settings: TaggingSettings, description_chars: int) -> tuple[str, str]:
    title, _ = clean_text(item.title, max_chars=settings.max_text_chars, html_to_text=settings.strip_html)
    description, _ = clean_text(item.description, max_chars=description_chars, html_to_text=settings.strip_html)
    return title, description


def _key_text(title: str, description: str) -> str:
    return fold(f"{title}\n{description}")


class ExampleIndex:
    """Labelled items of one or more vocabularies, searchable by similarity to an item."""

    def __init__(self, pool: Sequence[GoldItem], vocabularies: VocabularySet, *, k: int = 3,
                 settings: TaggingSettings | None = None, description_chars: int = 300,
                 encoder: TextEncoder | None = None, cache: bool = True) -> None:
        self.k = k
        self.settings = settings or TaggingSettings()
        self.description_chars = description_chars
        self.encoder = encoder or TextEncoder()
        self._by_vocab: dict[str, list[Example]] = {}
        texts: dict[str, list[str]] = {}
        for g in pool:
            vocab = vocabularies.for_category(g.item.category)
            if vocab is None:
                continue
            title, description = _shown(g.item, self.settings, description_chars)
            gold = canonical_gold(g.gold, vocabularies, g.item.category)
            values = gold_answer(vocab, gold, f"{title}\n{description}")
            self._by_vocab.setdefault(vocab.name, []).append(
                Example(g.item.id, title, description, answer_json(values), values))
            texts.setdefault(vocab.name, []).append(f"{title}\n{description}")
        self._vectors = {name: self._embed(t, cache) for name, t in texts.items()}
        self._keys = {name: [_key_text(e.title, e.description) for e in examples]
                      for name, examples in self._by_vocab.items()}
        self.digest = hashlib.sha256(json.dumps(
            [k, description_chars, sorted((n, [(e.id, e.answer) for e in ex]) for n, ex in self._by_vocab.items())],
            ensure_ascii=False).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_vocab.values())

    def _embed(self, texts: list[str], cache: bool) -> Any:
        import numpy as np

        key = hashlib.sha256(json.dumps([self.encoder.name, texts], ensure_ascii=False).encode()).hexdigest()[:20]
        path = cache_dir() / "examples" / f"{key}.npy"
        if cache and path.is_file():
            return np.load(path)
        vectors = self.encoder.encode(texts)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
        return vectors

    def nearest(self, vocabulary: str, items: Sequence[Item]) -> list[list[Example]]:
        """For each item (all of `vocabulary`), its k most similar examples, least similar first
        (the closest sits right before the item in the prompt)."""
        examples = self._by_vocab.get(vocabulary)
        if not examples or not items or self.k == 0:
            return [[] for _ in items]
        import numpy as np

        shown = [_shown(i, self.settings, self.description_chars) for i in items]
        queries = self.encoder.encode([f"{t}\n{d}" for t, d in shown])
        sims = queries @ self._vectors[vocabulary].T
        keys = self._keys[vocabulary]
        out = []
        for row, item, (title, description) in zip(sims, items, shown, strict=True):
            own = _key_text(title, description)
            picked: list[Example] = []
            for j in np.argsort(-row):
                if examples[j].id == item.id or keys[j] == own:
                    continue  # the item itself, or a copy of it, is never its own example
                picked.append(examples[j])
                if len(picked) == self.k:
                    break
            out.append(picked[::-1])
        return out


def load_examples(path: str | Path, vocabularies: VocabularySet, *, k: int = 3,
                  settings: TaggingSettings | None = None, exclude_ids: Sequence[str] = ()) -> ExampleIndex:
    """An index over a gold file in any format `tagsmith eval --data` reads. Items whose id is in
    `exclude_ids` are left out of the pool: eval passes the ids it scores, so no scored item's
    gold is ever shown to the model."""
    skip = set(exclude_ids)
    pool = [g for g in load_dataset(path).items if g.item.id not in skip]
    return ExampleIndex(pool, vocabularies, k=k, settings=settings)
