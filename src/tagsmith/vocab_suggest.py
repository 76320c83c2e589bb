"""Values a vocabulary lacks, found in the items themselves.

Tagging inside a closed list can only pick what is listed; a new material or connector never
shows up. `open_vocabularies` turns every closed facet into an open one (the model copies
what the text states for it, the facet's known values shown as examples, the schema still
shaping the answer), the tagger answers it for each item, and `suggest` gathers candidates:
those answers (also the ones the text does not state word for word), answers the post-check
rejected in an earlier closed run, and the runs of words of each text that `value_spans`'
ranker, learnt from the facet's own values, finds likely to be one of its values. Each
candidate is normalized (the facet's canonical spellings, `vocab_health.loose_key`), spellings
of an existing value become proposed aliases, the rest are clustered (same loose key, or
sentence embeddings at least `threshold` similar) and ranked by their evidence: the chance that
at least one of their items states a value of the facet, then the number of items. The result is
a vocabulary patch (`vocab_patch`) with, per proposed value, its score, support, example items
and the nearest existing values.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tagsmith.items import Item
from tagsmith.text import fold
from tagsmith.value_spans import learnt_answers
from tagsmith.vocab_health import loose_key, numbers
from tagsmith.vocab_patch import FacetPatch, Patch
from tagsmith.vocabulary import Facet, Vocabulary, VocabularySet, parse_vocabulary

#: known values shown in an open facet's description, as examples of what it holds
SHOWN_VALUES = 8


def open_vocabulary(vocab: Vocabulary) -> Vocabulary:
    """`vocab` with each closed facet made extractive: an answer is any span of the text."""
    facets = []
    for f in vocab.facets:
        raw = f.model_dump(mode="json", exclude_defaults=True)
        if not f.extractive:
            known = ", ".join(f.allowed[:SHOWN_VALUES])
            raw = {"name": f.name, "extractive": True, "max_values": f.max_values,
                   "description": " ".join(x for x in (f.description, f"Known values include: {known}.") if x)}
        facets.append(raw)
    return parse_vocabulary({"name": vocab.name, "category": vocab.category, "facets": facets})


def open_vocabularies(vocabularies: VocabularySet) -> VocabularySet:
    return VocabularySet([open_vocabulary(v) for v in vocabularies], source=vocabularies.source)


#: an answer: a value as written, or (value, probability that it is one of the facet's values)
Answer = str | tuple[str, float]


@dataclass
class Candidate:
    forms: Counter[str] = field(default_factory=Counter)   # surface form -> items
    items: dict[str, str] = field(default_factory=dict)    # item id -> title
    weights: dict[str, float] = field(default_factory=dict)  # item id -> its strongest evidence

    @property
    def value(self) -> str:
        return self.forms.most_common(1)[0][0]

    @property
    def support(self) -> int:
        return len(self.items)

    @property
    def score(self) -> float:
        """The chance that at least one item states a value of the facet (its items' evidence
        taken as independent); plain answers weigh 1."""
        return 1.0 - math.prod(1.0 - w for w in self.weights.values())

    def merge(self, other: Candidate) -> None:
        self.forms.update(other.forms)
        self.items.update(other.items)
        for item, w in other.weights.items():
            self.weights[item] = max(w, self.weights.get(item, 0.0))


def _add(table: dict[str, Candidate], key: str, form: str, item: Item, weight: float) -> None:
    c = table.setdefault(key, Candidate())
    if item.id not in c.items:
        c.forms[form] += 1
        c.items[item.id] = item.title
    c.weights[item.id] = max(weight, c.weights.get(item.id, 0.0))


@dataclass
class FacetSuggestions:
    new: list[Candidate]
    #: existing value -> other spellings seen in the items
    spellings: dict[str, Candidate]


def gather(facet: Facet, answers: Iterable[tuple[Item, Sequence[Answer]]]) -> FacetSuggestions:
    """Sort one facet's answers into existing values, new spellings of them, and new values."""
    by_key = {loose_key(v): v for v in facet.allowed}
    new: dict[str, Candidate] = {}
    spellings: dict[str, Candidate] = {}
    for item, values in answers:
        for answer in values:
            raw, weight = (answer, 1.0) if isinstance(answer, str) else answer
            form = " ".join(raw.split()).strip(" .,;:")
            if not form or facet.canonical(form) is not None:
                continue  # empty, or a value or alias already
            key = loose_key(form)
            if not key:
                continue
            if key in by_key:
                _add(spellings, by_key[key], form, item, weight)
            else:
                _add(new, key, form, item, weight)
    return FacetSuggestions(list(new.values()), spellings)


def cluster(candidates: list[Candidate], encoder: Any, threshold: float) -> list[Candidate]:
    """Merge candidates whose representative forms embed at least `threshold` close and state the
    same numbers ("2 GB" and "4 GB" stay apart), strongest first."""
    if encoder is None or len(candidates) < 2:
        return candidates
    ordered = sorted(candidates, key=lambda c: (-c.score, -c.support))
    vectors = encoder.encode([c.value for c in ordered])
    merged: list[tuple[Candidate, Any]] = []
    for c, vec in zip(ordered, vectors, strict=True):
        home = next((m for m, v in merged if float(v @ vec) >= threshold and numbers(m.value) == numbers(c.value)),
                    None)
        if home is None:
            merged.append((c, vec))
        else:
            home.merge(c)
    return [m for m, _ in merged]


def nearest_values(facet: Facet, forms: Sequence[str], encoder: Any, k: int = 3) -> list[list[str]]:
    """The k existing values most similar to each form (empty lists without an encoder)."""
    if encoder is None or not forms or not facet.allowed:
        return [[] for _ in forms]
    values = list(facet.allowed)
    sims = encoder.encode(list(forms)) @ encoder.encode(values).T
    return [[values[j] for j in row.argsort()[::-1][:k]] for row in sims]


def suggest(vocabularies: VocabularySet, answers: Iterable[tuple[Item, str, dict[str, Sequence[Answer]]]], *,
            encoder: Any = None, threshold: float = 0.88, min_support: int = 1, top: int = 20,
            examples: int = 3) -> Patch:
    """A patch of proposed values (and new spellings as aliases) per closed facet.

    `answers`: (item, vocabulary name, {facet: values}) from an open tagging run, and any other
    source of what items state (rejected answers of a closed run, `value_spans`' weighted runs).
    Candidates need `min_support` items; at most `top` are proposed per facet, the strongest
    evidence first (`Candidate.score`, then support: with plain answers, support alone)."""
    per_facet: dict[tuple[str, str], list[tuple[Item, Sequence[str]]]] = defaultdict(list)
    for item, vocab_name, tags in answers:
        vocab = vocabularies.named(vocab_name)
        if vocab is None:
            continue
        for f in vocab.facets:
            if not f.extractive and tags.get(f.name):
                per_facet[(vocab.name, f.name)].append((item, tags[f.name]))
    patch: Patch = {}
    for vocab in vocabularies:
        for f in vocab.facets:
            if f.extractive or (vocab.name, f.name) not in per_facet:
                continue
            found = gather(f, per_facet[(vocab.name, f.name)])
            ranked = [c for c in cluster(found.new, encoder, threshold) if c.support >= min_support]
            ranked.sort(key=lambda c: (-round(c.score, 6), -c.support, fold(c.value)))
            ranked = ranked[:top]
            near = nearest_values(f, [c.value for c in ranked], encoder)
            add = [{"value": c.value, "score": round(c.score, 3), "support": c.support,
                    "examples": [f"{i}: {t[:80]}" for i, t in list(c.items.items())[:examples]],
                    **({"nearest": n} if n else {}),
                    **({"other_spellings": [x for x in c.forms if x != c.value]} if len(c.forms) > 1 else {})}
                   for c, n in zip(ranked, near, strict=True)]
            merge = [{"into": value, "aliases": list(c.forms), "why": "another spelling seen in the items",
                      "support": c.support} for value, c in found.spellings.items() if c.support >= min_support]
            if add or merge:
                patch.setdefault(vocab.name, {})[f.name] = FacetPatch(add=add, merge=merge)
    return patch


def open_answers(record: dict[str, Any]) -> dict[str, list[str]]:
    """Every value an open run's model wrote per facet: the tags, the answers refused only
    because the text does not state them word for word (a normalized value such as
    "Generation 3" for "G3", or a category name, is still a candidate) and those withheld below
    a confidence threshold (tuned for tagging, not for finding values); the ranking weighs them."""
    out = {facet: list(values) for facet, values in (record.get("tags") or {}).items()}
    for rej in record.get("rejected") or []:
        if (isinstance(rej, dict) and rej.get("code") in ("not_in_text", "low_confidence")
                and isinstance(rej.get("value"), str)):
            out.setdefault(rej.get("facet", ""), []).append(rej["value"])
    return out


def rejected_answers(records: Iterable[dict[str, Any]], items: dict[str, Item]) -> list[tuple[Item, str, dict[str, list[str]]]]:
    """What a closed run's post-check refused (values not in the vocabulary), as answers."""
    out = []
    for r in records:
        item = items.get(str(r.get("id")))
        if item is None:
            continue
        tags: dict[str, list[str]] = defaultdict(list)
        for rej in r.get("rejected") or []:
            if isinstance(rej, dict) and rej.get("facet") and isinstance(rej.get("value"), str):
                tags[rej["facet"]].append(rej["value"])
        if tags:
            out.append((item, str(r.get("vocabulary") or ""), dict(tags)))
    return out


@dataclass
class SuggestRun:
    """`tagsmith vocab suggest` as a library call: tag the items against the open vocabularies
    into `answers_path` (resumable like any `tag --output`), then propose from the answers."""

    spec: Any  # runtime.RunSpec for the open run (its vocab is the closed vocabulary's spec)
    vocabularies: VocabularySet
    input_path: Any
    answers_path: Any
    tagged_path: Any = None
    fields: Any = None
    limit: int | None = None
    progress: bool = False
    #: also rank the runs of words of each text with `value_spans` (learnt from the facet's values)
    spans: bool = True
    notes: list[str] = field(default_factory=list)

    def run(self, **options: Any) -> Patch:
        from tagsmith.embeddings import shared_encoder
        from tagsmith.items import read_items
        from tagsmith.results_store import read_results
        from tagsmith.runtime import FileJob, build_tagger, job_record, open_output

        items = {i.id: i for i in read_items(self.input_path, self.fields)}  # a bad input fails before the model loads
        opened = open_vocabularies(self.vocabularies)
        store = open_output(self.input_path, self.answers_path,
                            {**job_record(self.spec, opened, self.input_path), "open_vocabulary": True})
        if self.limit == 0 or items.keys() <= store.done:
            store.close()  # a re-run (other --top, --min-support) needs no engine
            self.notes.append(f"every item's open answer is in {self.answers_path} already: the model was not started")
        else:
            try:
                built = build_tagger(self.spec, opened)
            except BaseException:
                store.close()
                raise
            self.notes.extend(built.plan.notes)
            FileJob(built.tagger, self.input_path, items.values(), store,
                    limit=self.limit).run(progress=self.progress, note=self.notes.append)
        answers = [(items[i], str(r.get("vocabulary") or ""), open_answers(r))
                   for i, r in read_results(self.answers_path).items() if i in items and not r.get("error")]
        if self.tagged_path is not None:
            answers += rejected_answers(read_results(self.tagged_path).values(), items)
        encoder = shared_encoder()
        if self.spans:
            routed = {item.id: (item, v) for item, name, _ in answers if (v := self.vocabularies.named(name))}
            learnt = learnt_answers(list(routed.values()), answers, encoder, progress=self.progress)
            self.notes.append(f"ranked the texts' runs of words by what {learnt.positives} mentions of known "
                              "values (hidden a fold at a time) look like" if learnt.learnt else
                              f"only {learnt.positives} mentions of known values in the texts, too few to learn "
                              "from: proposing the model's answers, ranked by support")
            answers = learnt.answers
        return suggest(self.vocabularies, answers, encoder=encoder, **options)
