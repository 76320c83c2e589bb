"""Per-item candidate shortlists for large vocabularies.

A taxonomy of 20,000 values can neither be listed in a prompt nor compiled cheaply into a
grammar per item. So each closed facet with more than `k` values is cut, per item, to the
values most likely to apply: first every value (or alias) that the item's text contains word
for word, then the nearest values by sentence-embedding similarity to the item, up to `k`.
Prompt and schema are then built from that small per-item vocabulary, so answers stay inside
the vocabulary (a shortlist is a subset of it) and preparation costs one embedding per item.
A mention is matched word for word with plurals folded ("Mug" names "Mugs"); a path of a
hierarchy is mentioned by its own last step ("Tablecloths", not the whole path).

Value embeddings are computed once per (vocabulary digest, encoder) and cached on disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith.embeddings import TextEncoder, shared_encoder
from tagsmith.model_store import cache_dir
from tagsmith.text import singular, words
from tagsmith.vocabulary import Facet, Vocabulary

MAX_NGRAM = 6  # longest value (in words) found by exact match


def mention_key(text: str) -> str:
    """What exact mentions compare: the words, each made singular."""
    return " ".join(singular(w) for w in words(text))


#: Bumped whenever `value_text` changes, so cached value embeddings are computed anew.
VALUE_TEXT_VERSION = 2


def value_text(facet: Facet, value: str, aliases: Sequence[str] = (), description: str | None = None) -> str:
    """What is embedded for a value: the facet gives short values ("Red", "12") their sense. A
    path of a hierarchy is written leaf first, its ancestors after it in parentheses
    ("Dresses (Apparel & Accessories > Clothing)"), so that what tells siblings apart leads
    rather than the ancestors they share (README, "A product taxonomy", has the comparison)."""
    steps = facet.path(value)
    if len(steps) > 1:
        value = f"{steps[-1]} ({facet.join(steps[:-1])})"
    text = f"{facet.name}: {value}"
    if aliases:
        text += f" ({', '.join(aliases)})"
    if description:
        text += f". {description}"
    return text


def value_texts(facet: Facet) -> list[str]:
    """`value_text` of every allowed value, in `facet.allowed` order (hierarchy ancestors have
    no Value of their own, so no aliases or description)."""
    by_value = {v.value: v for v in facet.values}
    return [value_text(facet, a, by_value[a].aliases if a in by_value else (),
                       by_value[a].description if a in by_value else None) for a in facet.allowed]


@dataclass
class _FacetIndex:
    values: list[str]  # canonical allowed values, row order of `vectors`
    vectors: Any  # numpy (n, dim)
    exact: dict[str, list[int]]  # mention_key of each surface form -> rows
    depths: Any = None  # numpy (n,): each path's steps, for a hierarchy; None for a flat facet


def large_facets(vocab: Vocabulary, above: int) -> list[Facet]:
    """The facets a shortlist cuts: closed ones with more than `above` allowed values."""
    return [f for f in vocab.facets if not f.extractive and len(f.allowed) > above]


class Shortlister:
    """Cuts each facet of more than `above` values to `k` candidates per item. A hierarchy's
    paths are ranked by similarity less `depth_penalty` per step below the top (see
    `TaggingSettings.hierarchy_depth_penalty`); a value the text mentions gains `mention_bonus`."""

    def __init__(self, k: int = 50, above: int = 500, encoder: TextEncoder | None = None,
                 cache: Path | None = None, progress: bool = False, depth_penalty: float = 0.0,
                 mention_bonus: float = 0.0) -> None:
        if k < 1 or above < 1:
            raise ValueError("need k >= 1 and above >= 1")
        self.k = k
        self.above = above
        self.depth_penalty = depth_penalty
        self.mention_bonus = mention_bonus
        self.encoder = encoder or shared_encoder()  # taggers built per batch share one model
        self.cache = cache if cache is not None else cache_dir() / "shortlist"
        self.progress = progress
        self._indexes: dict[str, dict[str, _FacetIndex]] = {}

    # ---------------------------------------------------------------- index (once per vocabulary)
    def index(self, vocab: Vocabulary) -> dict[str, _FacetIndex]:
        facets = large_facets(vocab, self.above)
        names = "|".join(f.name for f in facets)
        key = hashlib.sha256(f"{vocab.digest}|{self.encoder.name}|{names}|{VALUE_TEXT_VERSION}".encode()).hexdigest()[:20]
        if key in self._indexes:
            return self._indexes[key]
        import numpy as np

        texts: list[str] = []
        exact_forms: list[dict[str, list[int]]] = []
        for f in facets:
            by_value = {v.value: v for v in f.values}
            exact: dict[str, list[int]] = {}
            texts.extend(value_texts(f))
            for i, a in enumerate(f.allowed):
                v = by_value.get(a)  # hierarchy ancestors have no Value of their own
                for form in (f.path(a)[-1], *(v.aliases if v else ())):
                    exact.setdefault(mention_key(form), []).append(i)
            exact.pop("", None)
            exact_forms.append(exact)
        path = self.cache / f"{key}.npy"
        vectors = None
        if path.is_file():
            try:
                vectors = np.load(path)
            except (OSError, ValueError):
                vectors = None
        if vectors is None or vectors.shape[0] != len(texts):
            vectors = self.encoder.encode(texts, progress=self.progress).astype(np.float16)
            self.cache.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{id(self)}.tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
        out: dict[str, _FacetIndex] = {}
        start = 0
        for f, exact in zip(facets, exact_forms, strict=True):
            n = len(f.allowed)
            depths = np.array([len(f.path(a)) - 1 for a in f.allowed], dtype=np.float32) if f.hierarchy else None
            out[f.name] = _FacetIndex(list(f.allowed), vectors[start:start + n].astype(np.float32), exact, depths)
            start += n
        self._indexes[key] = out
        return out

    # ---------------------------------------------------------------- per item
    def candidates(self, vocab: Vocabulary, texts: Sequence[str]) -> list[dict[str, list[str]]]:
        """Per text, facet name -> up to k candidate values (exact mentions first), for the large
        facets only (the others are used whole)."""
        return [{name: [v for v, _ in found] for name, found in picked.items()}
                for picked in self.scored_candidates(vocab, texts)]

    def scored_candidates(self, vocab: Vocabulary, texts: Sequence[str]) -> list[dict[str, list[tuple[str, float]]]]:
        """`candidates`, each with its similarity to the text (less the depth penalty, plus the
        mention bonus where the text names it)."""
        import numpy as np

        index = self.index(vocab)
        if not index:
            return [{} for _ in texts]
        item_vectors = self.encoder.encode(list(texts))
        out = []
        for text, vec in zip(texts, item_vectors, strict=True):
            ws = mention_key(text).split()
            grams = {" ".join(ws[i:i + n]) for n in range(1, MAX_NGRAM + 1) for i in range(len(ws) - n + 1)}
            picked: dict[str, list[tuple[str, float]]] = {}
            for name, fi in index.items():
                scores = fi.vectors @ vec
                if self.depth_penalty and fi.depths is not None:
                    scores = scores - self.depth_penalty * fi.depths
                mentioned: dict[int, int] = {}  # row -> length of its longest mention
                for g in grams:
                    for r in fi.exact.get(g, ()):
                        mentioned[r] = max(mentioned.get(r, 0), len(g))
                if mentioned and self.mention_bonus:
                    scores = scores.copy()
                    scores[list(mentioned)] += self.mention_bonus
                # longest mention first, then the nearer
                rows = sorted(mentioned, key=lambda r: (-mentioned[r], -scores[r]))[:self.k]
                if len(rows) < self.k:
                    top = np.argpartition(-scores, min(self.k, len(scores) - 1))[:self.k + len(rows)]
                    for r in top[np.argsort(-scores[top])]:
                        if len(rows) >= self.k:
                            break
                        if r not in rows:
                            rows.append(int(r))
                picked[name] = [(fi.values[r], float(scores[r])) for r in rows]
            out.append(picked)
        return out

    def restrict(self, vocab: Vocabulary, texts: Sequence[str]) -> list[Vocabulary]:
        """Per text, the vocabulary cut to its candidates (same name, facets and order)."""
        return [restricted(vocab, c) for c in self.candidates(vocab, texts)]


def restricted(vocab: Vocabulary, keep: dict[str, list[str]]) -> Vocabulary:
    """`vocab` with each facet named in `keep` limited to those values (their aliases kept; a
    hierarchy keeps the kept paths, whose ancestors stay allowed)."""
    if not keep:
        return vocab
    facets = []
    for f in vocab.facets:
        if f.name not in keep:
            facets.append(f)
            continue
        # candidate order (best first: templates list the first few); an ancestor path picked by
        # the shortlist has no Value of its own and becomes a plain value
        by_value = {v.value: v for v in f.values}
        values = [by_value.get(a) or {"value": a} for a in keep[f.name]]
        facets.append(Facet.model_validate({**f.model_dump(exclude={"values"}), "values": values}))
    return Vocabulary.model_validate({**vocab.model_dump(exclude={"facets"}), "facets": facets})


def recall_at_k(vocab: Vocabulary, texts: Sequence[str], gold: Sequence[dict[str, list[str]]],
                ks: Sequence[int], encoder: TextEncoder | None = None, cache: Path | None = None,
                depth_penalty: float = 0.0) -> dict[int, tuple[float, int]]:
    """For each k: the share of gold values (canonical) that the k-shortlist of their facet keeps,
    over facets larger than k (smaller ones are never cut), and how many gold values that is.
    A shortlist never adds a value, so this bounds the recall tagging can reach at that k."""
    ks = sorted(ks)
    lister = Shortlister(ks[-1], ks[-1], encoder=encoder, cache=cache, depth_penalty=depth_penalty)
    lister.above = ks[0]  # index every facet any k would cut; k-lists are prefixes of the longest
    per_item = lister.candidates(vocab, texts)
    out = {}
    for k in ks:
        hit = total = 0
        for cands, g in zip(per_item, gold, strict=True):
            for name, values in g.items():
                facet = vocab.facet(name)
                if facet is None or facet.extractive or len(facet.allowed) <= k:
                    continue
                for v in values:
                    canon = facet.canonical(v)
                    if canon is not None:
                        total += 1
                        hit += canon in cands.get(name, [])[:k]
        out[k] = (hit / total if total else float("nan"), total)
    return out
