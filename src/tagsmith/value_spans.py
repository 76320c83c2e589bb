"""Which runs of an item's words could be a value its facet lacks, learnt from the facet itself.

A vocabulary already shows what its values look like and where texts state them: "32 gallon"
and "12 gallon" are Capacity values, a brand opens the title, a material follows "made of".
`SpanRanker` learns that from the vocabulary's own values, with no labelled items: each facet's
values are split into folds, one fold at a time is hidden, and the runs of words that state a
hidden value are the positives among all other runs of the same items (a value the vocabulary
lacks is, to the facet, exactly such a hidden one). The features compare a run with the facet's
visible values (sentence-embedding similarity, the shape of its numbers and units, shared words,
the words around the values' mentions), say where it stands (title, first words) and how common
it is, and whether the model's open answer wrote it. One logistic regression over every facet then
scores each run against all of its facet's values; `learnt_answers` hands each item's likely runs,
with their probabilities, to `vocab_suggest.suggest`, which adds them up per candidate value.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tagsmith.items import Item
from tagsmith.measures import parse_number
from tagsmith.text import fold
from tagsmith.units import CONVERSIONS, spellings_pattern, unit_of
from tagsmith.vocab_health import loose_key
from tagsmith.vocabulary import Facet, Value, Vocabulary

TOKEN = re.compile(r"[\w][\w.,/'&+-]*[\w]|[\w]")
#: a run of words neither starts nor ends with one of these (the value is beside them)
EDGE_WORDS = frozenset("a an and or of the with for to in on at by from as is are be this that it its your "
                       "you our we can will x w".split())
_BASE_FEATURES = ("similarity", "similarity_top3", "shape_share", "word_share", "left_context", "right_context",
                  "log_items", "specificity", "other_facet_value", "facet_name", "one_word", "two_words",
                  "three_words", "four_words", "has_digit", "only_digits", "capitalized", "upper_case",
                  "in_title", "opens_title", "model_wrote", "inside_model_answer", "log_chars",
                  "other_facets_similarity", "similarity_margin", "converted", "item_states_known",
                  "model_answered_known", "format_share")
#: every feature again, set only for facets whose values are mostly numbers: what marks a missing
#: number (its format, the words around it) is not what marks a missing name, and one linear
#: ranker over both kinds of facet could only average the two
FEATURES = _BASE_FEATURES + tuple(f"numeric_facet:{name}" for name in _BASE_FEATURES)
#: the units a text may state a number in that a vocabulary stores in another unit ("61.0" for
#: 24"); which conversions a facet uses is found from its values (`conversions`)
_SOURCES = list(dict.fromkeys(unit for unit, _, _ in CONVERSIONS))
_MARKS, _WORDS = spellings_pattern(_SOURCES, words=False), spellings_pattern(_SOURCES, marks=False)
NUMBER = re.compile(r"(?<![\w.,/-])(\d+(?:\.\d+)?(?:[- ]\d+/\d+)?|\d+/\d+)(?![\d.,/]*\d)"
                    rf"\s*({_MARKS}|(?:{_WORDS})\b)?", re.IGNORECASE)


class Conversion(NamedTuple):
    """Numbers a text states in `unit` are written as a facet's values in `target`."""

    unit: str
    target: str
    factor: float
    #: the facet values' usual number of decimals
    decimals: int


@dataclass(frozen=True)
class Span:
    """A run of words of an item's text, or a value the model wrote for one facet (`facet` set)."""

    item: Item
    text: str
    where: str = "answer"          # "title", "description" or "answer"
    first: bool = False            # the title's first words
    left: str = ""                 # the folded word before it, "^title"/"^description" at a start
    right: str = ""                # the folded word after it, "$" at an end
    facet: str | None = None       # an answer's or a converted number's facet; text runs stand for every facet
    converted: bool = False        # a number of the text in the facet's unit ("61.0" for 24")


def text_spans(item: Item, *, max_words: int = 4, max_chars: int = 500) -> list[Span]:
    """Every run of 1..max_words words of the title and the description's first `max_chars`."""
    spans = []
    for where, text in (("title", item.title), ("description", item.description[:max_chars])):
        tokens = TOKEN.findall(text)
        folded = [t.casefold() for t in tokens]
        for i, word in enumerate(folded):
            if word in EDGE_WORDS:
                continue
            for j in range(i + 1, min(i + max_words, len(tokens)) + 1):
                if folded[j - 1] in EDGE_WORDS:
                    continue
                spans.append(Span(item, " ".join(tokens[i:j]), where, where == "title" and i == 0,
                                  folded[i - 1] if i else f"^{where}", folded[j] if j < len(tokens) else "$"))
    return spans


def stated_numbers(text: str) -> list[tuple[float, str | None, int, int]]:
    """The numbers a text states, with their unit symbol if one follows (24" -> (24.0, "in")), and
    where they stand (start, end of the number and its unit)."""
    out = []
    for m in NUMBER.finditer(text):
        if not m.group(2) and re.match(r"[^\W\d_]{2}", text[m.end():]):
            continue  # a unit of its own ("1.9GHz", "4MB"); one letter may name the side ("36w")
        try:
            value = parse_number(m.group(1))
        except (ValueError, ZeroDivisionError):
            continue
        out.append((value, unit_of(m.group(2)) if m.group(2) else None, m.start(), m.end()))
    return out


_BARE_NUMBER = re.compile(r"\d+(?:\.(\d+))?")


def conversions(values: Sequence[str], texts: Sequence[str], *, min_share: float = 0.1,
                min_hits: int = 3) -> list[Conversion]:
    """The unit conversions that turn numbers of the texts into this facet's values, when its values
    are mostly bare numbers: each conversion of the units table whose numbers stated in its unit
    reproduce at least `min_hits` distinct values and `min_share` of them. Converted candidates
    (`converted_spans`) then include numbers stated without a unit ("36 x 18")."""
    matches = [m for v in values if (m := _BARE_NUMBER.fullmatch(v.strip()))]
    if len(matches) < max(2, len(values) / 2):
        return []
    decimals = Counter(len(m.group(1) or "") for m in matches).most_common(1)[0][0]
    known = {loose_key(m.group()) for m in matches}
    stated = [(x, unit) for text in texts for x, unit, _, _ in stated_numbers(text)]

    def hits(unit: str | None, factor: float) -> int:
        return len({k for x, u in stated if u == unit and (k := loose_key(f"{x * factor:.{decimals}f}")) in known})

    # Found from numbers that name the unit; a conversion must explain more values than the bare
    # numbers as stated do (a facet of counts, "500" sheets, matches converted numbers by chance)
    # and only the best target of each unit counts.
    as_stated = hits(None, 1.0)
    best: dict[str, tuple[int, Conversion]] = {}
    for unit, target, factor in CONVERSIONS:
        n = hits(unit, factor)
        if n >= max(min_hits, min_share * len(known)) and n > as_stated and n > best.get(unit, (0,))[0]:
            best[unit] = (n, Conversion(unit, target, factor, decimals))
    return [conversion for _, conversion in best.values()]


def converted_spans(item: Item, facet: str, found: Sequence[Conversion], *, max_chars: int = 500) -> list[Span]:
    """The item's numbers in the facet's unit, as spans with the words around them for context."""
    spans = []
    for where, text in (("title", item.title), ("description", item.description[:max_chars])):
        for x, stated_unit, start, end in stated_numbers(text):
            before = TOKEN.findall(text[:start])
            after = re.match(r"\s*([^\W\d_]+|\d+)", text[end:])
            for c in found:
                if stated_unit in (None, c.unit):
                    spans.append(Span(item, f"{x * c.factor:.{c.decimals}f}", where, where == "title" and start == 0,
                                      before[-1].casefold() if before else f"^{where}",
                                      after.group(1).casefold() if after else "$", facet, converted=True))
    return spans


def _alpha_words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", fold(text))


def shape(text: str, unit_words: Iterable[str] = (), *, decimals: bool = False) -> str:
    """A run's form: numbers as 0, units as their symbol, the facet's own unit words kept, other
    words as w. "44 quart" and "12 quart" share "0 quart" when quart is a unit word of the
    facet; "2.5-GHz" and "3GHz" share "0 ghz". With `decimals`, a number's decimal places count
    too ("61.0" is "0.d", "24" is "0"): a facet stores its numbers in one format, and a number of
    the text in another is seldom one of its values."""
    units = set(unit_words)

    def number(t: str) -> str:
        return "0" + ("." + "d" * len(t.rsplit(".", 1)[1]) if decimals and "." in t else "")

    return " ".join(number(t) if t[0].isdigit() else unit_of(t) or (t if t in units else "w")
                    for t in re.findall(r"\d+(?:[.,/]\d+)*|[^\W\d_]+", fold(text)))


@dataclass
class SpanTable:
    """The runs of one vocabulary's items (and the model's answers for them), embedded once."""

    vocab: Vocabulary
    spans: list[Span]
    keys: list[str]
    vectors: Any
    #: items of this vocabulary whose text has a run with this loose key
    item_freq: Counter[str]
    #: (item id, facet) -> loose keys of the model's answers
    answered: dict[tuple[str, str], set[str]]
    #: facet -> each span's highest similarity to that facet's values
    nearest: dict[str, Any] = field(default_factory=dict)
    #: (item id, facet or None) -> loose keys of the item's text runs (None) and of its numbers
    #: converted to that facet's unit (the facet)
    stated: dict[tuple[str, str | None], set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, vocab: Vocabulary, items: Sequence[Item], answers: Iterable[tuple[Item, dict[str, Sequence[str]]]],
              embed: Callable[[list[str]], Any], *, max_words: int = 4, max_chars: int = 500) -> SpanTable:
        spans: list[Span] = []
        item_freq: Counter[str] = Counter()
        for item in items:
            runs = [s for s in text_spans(item, max_words=max_words, max_chars=max_chars) if loose_key(s.text)]
            spans += runs
            item_freq.update({loose_key(s.text) for s in runs})
        answered: dict[tuple[str, str], set[str]] = {}
        closed = {f.name for f in vocab.facets if not f.extractive}
        for item, tags in answers:
            for facet, values in tags.items():
                for value in values:
                    text = " ".join(str(value).split())
                    if facet in closed and loose_key(text):
                        spans.append(Span(item, text, facet=facet))
                        answered.setdefault((item.id, facet), set()).add(loose_key(text))
        texts = [t for item in items for t in (item.title, item.description[:max_chars])]
        for f in vocab.facets:
            found = [] if f.extractive else conversions(f.allowed, texts)
            if found:
                spans += [s for item in items for s in converted_spans(item, f.name, found, max_chars=max_chars)]
        keys = [loose_key(s.text) for s in spans]
        stated: dict[tuple[str, str | None], set[str]] = {}
        for s, key in zip(spans, keys, strict=True):
            if s.where != "answer":
                stated.setdefault((s.item.id, s.facet), set()).add(key)
        vectors = embed([s.text for s in spans])
        nearest = {}
        for f in vocab.facets:
            if not f.extractive:
                values = embed([v.value for v in f.values])
                nearest[f.name] = np.concatenate([(vectors[i:i + 20000] @ values.T).max(axis=1)
                                                  for i in range(0, len(spans), 20000)] or [np.zeros(0)])
        return cls(vocab, spans, keys, vectors, item_freq, answered, nearest, stated)

    def known_stated(self, item: Item, facet: str, known: set[str]) -> tuple[set[str], bool]:
        """The known values of the facet that the item's text states (loose keys), and whether the
        model's answer for it was one: an item the vocabulary already tags is seldom where a value
        it lacks shows up."""
        text = (self.stated.get((item.id, None), set()) | self.stated.get((item.id, facet), set())) & known
        return text, bool(self.answered.get((item.id, facet), set()) & known)

    def other_facets_similarity(self, facet: str) -> Any:
        """Each span's highest similarity to the values of the vocabulary's other closed facets."""
        others = [v for name, v in self.nearest.items() if name != facet]
        return np.max(others, axis=0) if others else np.zeros(len(self.spans), dtype=np.float32)

    def rows(self, facet: str) -> np.ndarray:
        """The spans that may stand for `facet`: every text run, the answers written for it and the
        numbers converted to its unit."""
        return np.array([n for n, s in enumerate(self.spans) if s.facet in (None, facet)], dtype=int)


@dataclass
class FacetProfile:
    """What a facet's known values look like, and where the items' texts state them."""

    keys: set[str]
    vectors: Any
    words: set[str]
    unit_words: frozenset[str]
    shapes: Counter[str]
    formats: Counter[str]
    n_values: int
    left: Counter[str]
    right: Counter[str]
    mentions: int
    name_words: set[str]
    other_keys: set[str]
    #: most of the facet's values hold a number
    numeric: bool = False

    @classmethod
    def of(cls, facet: Facet, values: Sequence[Value], value_vectors: Any, table: SpanTable) -> FacetProfile:
        keys = {loose_key(x) for v in values for x in (v.value, *v.aliases)} - {""}
        counts = Counter(w for v in values for w in set(_alpha_words(v.value)))
        unit_words = frozenset(w for w, c in counts.items() if c >= 2)
        left: Counter[str] = Counter()
        right: Counter[str] = Counter()
        for span, key in zip(table.spans, table.keys, strict=True):
            if span.where != "answer" and span.facet in (None, facet.name) and key in keys:
                left[span.left] += 1
                right[span.right] += 1
        others = {loose_key(x) for f in table.vocab.facets if f.name != facet.name and not f.extractive
                  for x in f.allowed}
        return cls(keys, value_vectors, set(counts), unit_words, Counter(shape(v.value, unit_words) for v in values),
                   Counter(shape(v.value, unit_words, decimals=True) for v in values),
                   len(values), left, right, sum(left.values()), set(_alpha_words(facet.name)), others,
                   2 * sum(any(c.isdigit() for c in v.value) for v in values) >= max(1, len(values)))


def features(table: SpanTable, facet: str, profile: FacetProfile, rows: np.ndarray,
             all_freq: Counter[str], chunk: int = 20000) -> np.ndarray:
    """One row of FEATURES per span in `rows`, relative to the facet's (visible) values."""
    X = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
    context_scale = math.log1p(profile.mentions + 1)
    others = table.other_facets_similarity(facet)
    known: dict[str, tuple[set[str], bool]] = {}
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        if len(profile.vectors):
            sims = -np.sort(-(table.vectors[part] @ profile.vectors.T), axis=1)
        else:
            sims = np.zeros((len(part), 1), dtype=np.float32)
        for k, n in enumerate(part):
            span, key = table.spans[n], table.keys[n]
            if span.item.id not in known:
                known[span.item.id] = table.known_stated(span.item, facet, profile.keys)
            stated = known[span.item.id]
            words = _alpha_words(span.text)
            answers = table.answered.get((span.item.id, facet), ())
            n_words = len(span.text.split())
            X[start + k, :len(_BASE_FEATURES)] = (
                sims[k, 0], sims[k, :3].mean(),
                profile.shapes.get(shape(span.text, profile.unit_words), 0) / max(1, profile.n_values),
                sum(w in profile.words for w in words) / len(words) if words else 0.0,
                math.log1p(profile.left[span.left]) / context_scale if span.where != "answer" else 0.0,
                math.log1p(profile.right[span.right]) / context_scale if span.where != "answer" else 0.0,
                math.log1p(table.item_freq[key]), table.item_freq[key] / max(1, all_freq[key]),
                key in profile.other_keys, bool(words) and all(w in profile.name_words for w in words),
                n_words == 1, n_words == 2, n_words == 3, n_words >= 4,
                any(c.isdigit() for c in span.text), bool(re.fullmatch(r"[\d.,/]+", span.text)),
                span.text[:1].isupper(), span.text.isupper() and len(span.text) > 1,
                span.where == "title", span.first,
                key in answers, any(key in a for a in answers), math.log(len(span.text)),
                others[n], sims[k, 0] - others[n], span.converted,
                bool(stated[0] - {key}), stated[1],
                profile.formats.get(shape(span.text, profile.unit_words, decimals=True), 0) / max(1, profile.n_values))
    if profile.numeric:
        X[:, len(_BASE_FEATURES):] = X[:, :len(_BASE_FEATURES)]
    return X


def fit_logistic(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, *, l2: float = 1e-4,
                 iterations: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted L2 logistic regression by Newton's method with step halving.

    Returns (coefficients with the intercept first, feature means, feature scales): features are
    standardized, so one penalty suits all of them."""
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = np.hstack([np.ones((len(X), 1)), (X - mean) / scale])
    t = np.asarray(y, dtype=float)
    penalty = np.full(Z.shape[1], l2)
    penalty[0] = 0.0

    def loss(beta: np.ndarray) -> float:
        z = Z @ beta
        return float(w @ (np.logaddexp(0, z) - t * z) + 0.5 * penalty @ beta ** 2)

    beta = np.zeros(Z.shape[1])
    current = loss(beta)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(Z @ beta)))
        grad = Z.T @ (w * (p - t)) + penalty * beta
        hess = (Z * (w * p * (1 - p))[:, None]).T @ Z + np.diag(penalty + 1e-12)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-4 and (new := loss(beta - size * step)) > current:
            size /= 2
        if size <= 1e-4:
            break
        beta, done = beta - size * step, current - new < 1e-10
        current = new
        if done:
            break
    return beta, mean, scale


@dataclass
class SpanRanker:
    """The probability that a run states a value of the facet, given FEATURES."""

    coefficients: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    positives: int = 0

    def probability(self, X: np.ndarray) -> np.ndarray:
        z = self.coefficients[0] + ((X - self.mean) / self.scale) @ self.coefficients[1:]
        return 1 / (1 + np.exp(-z))

    @classmethod
    def fit(cls, tables: Sequence[SpanTable], embed: Callable[[list[str]], Any], all_freq: Counter[str], *,
            folds: int = 5, negative_share: float = 0.15, max_negatives: int = 10000,
            seed: int = 0) -> SpanRanker | None:
        """Learn from every closed facet's own values, hidden a fold at a time (None: no facet has
        two values stated in its items' texts, so there is nothing to learn from). Each fold keeps
        every positive and a sample of the other runs (`negative_share`, at most `max_negatives`),
        weighted back to their number; a hidden value's mentions share one weight between them."""
        rng = np.random.default_rng(seed)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for table in tables:
            keys = np.array(table.keys, dtype=object)
            for facet in table.vocab.facets:
                values = list(facet.values)
                if not _ranked(facet) or len(values) < 2:
                    continue
                vectors = embed([v.value for v in values])
                rows = table.rows(facet.name)
                order = rng.permutation(len(values))
                for k in range(min(folds, len(values))):
                    hidden = set(order[k::folds].tolist())
                    visible = [n for n in range(len(values)) if n not in hidden]
                    prof = FacetProfile.of(facet, [values[n] for n in visible], vectors[visible], table)
                    hidden_keys = {loose_key(x) for n in hidden for x in (values[n].value, *values[n].aliases)}
                    hidden_keys -= prof.keys
                    row_keys = keys[rows]
                    positive = np.array([key in hidden_keys for key in row_keys], dtype=bool)
                    known = np.array([key in prof.keys for key in row_keys], dtype=bool)
                    share = min(negative_share, max_negatives / max(1, int((~known & ~positive).sum())))
                    keep = ~known & (positive | (rng.random(len(rows)) < share))
                    if not positive[keep].any():
                        continue
                    X = features(table, facet.name, prof, rows[keep], all_freq)
                    # each hidden value weighs the same however often the texts state it: the
                    # values a vocabulary lacks are mostly rare ones
                    kept_keys, y = row_keys[keep], positive[keep]
                    mentions = Counter(kept_keys[y])
                    weight = np.where(y, [1.0 / mentions.get(key, 1) for key in kept_keys], 1 / share)
                    weight[y] *= y.sum() / weight[y].sum()
                    parts.append((X, y, weight))
        if not parts:
            return None
        y = np.concatenate([p[1] for p in parts])
        coefficients, mean, scale = fit_logistic(np.concatenate([p[0] for p in parts]), y,
                                                 np.concatenate([p[2] for p in parts]))
        return cls(coefficients, mean, scale, int(y.sum()))


def _ranked(facet: Facet) -> bool:
    """Closed facets whose values are flat: a category tree's missing node is no run of words."""
    return not facet.extractive and facet.hierarchy is None


def _likely(rows: np.ndarray, p: np.ndarray, keys: Sequence[str], min_probability: float,
            min_keys: int) -> list[tuple[int, float]]:
    """(row, probability) of the runs at or above `min_probability`, of the most likely others
    until `min_keys` distinct keys are in, and of every run of a key kept (all its items count)."""
    kept, seen = [], set()
    for k in np.argsort(-p, kind="stable"):
        if p[k] < min_probability and len(seen) >= min_keys and keys[k] not in seen:
            continue
        kept.append((int(rows[k]), float(p[k])))
        seen.add(keys[k])
    return kept


def _cached_embedder(encoder: Any) -> Callable[[list[str]], Any]:
    cache: dict[str, Any] = {}

    def embed(texts: list[str]) -> Any:
        new = [t for t in dict.fromkeys(texts) if t not in cache]
        if new:
            cache.update(zip(new, encoder.encode(new), strict=True))
        dim = next(iter(cache.values())).shape[0] if cache else 0
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, dim), dtype=np.float32)

    return embed


@dataclass
class LearntAnswers:
    """`learnt_answers`' result: weighted answers, and what was learnt from (for notes)."""

    answers: list[tuple[Item, str, dict[str, list[tuple[str, float]]]]] = field(default_factory=list)
    #: mentions of known values the ranker learnt from
    positives: int = 0
    #: False: too few of them; the answers are the model's, unweighted
    learnt: bool = True


def learnt_answers(routed: Sequence[tuple[Item, Vocabulary]],
                   model_answers: Sequence[tuple[Item, str, dict[str, Sequence[str]]]], encoder: Any, *,
                   min_positives: int = 20, min_probability: float = 0.01, min_keys: int = 100,
                   max_words: int = 4, max_chars: int = 500, seed: int = 0,
                   progress: bool = False) -> LearntAnswers:
    """Each item's runs of words (and the model's answers) that may be a value its closed facets
    lack, with the ranker's probability, as (item, vocabulary name, {facet: [(text, p)]}).

    Runs below `min_probability` are dropped, except the most likely ones of each facet until
    `min_keys` distinct values are in: only the order within a facet matters to the suggestions,
    and a facet whose values look unlike the others' can have every run below any fixed level.

    With fewer than `min_positives` mentions of known values in the texts there is too little to
    learn from (a handful of items): the model's answers come back as they are, weighing 1.
    Answers for a category tree's facet always do (`_ranked`)."""
    embed = _cached_embedder(encoder)
    by_vocab: dict[str, tuple[Vocabulary, list[Item]]] = {}
    for item, vocab in routed:
        by_vocab.setdefault(vocab.name, (vocab, []))[1].append(item)
    answers_by_vocab: dict[str, list[tuple[Item, dict[str, Sequence[str]]]]] = {}
    for item, name, tags in model_answers:
        answers_by_vocab.setdefault(name, []).append((item, tags))
    tables = [SpanTable.build(vocab, items, answers_by_vocab.get(name, []), embed, max_words=max_words,
                              max_chars=max_chars) for name, (vocab, items) in by_vocab.items()]
    all_freq: Counter[str] = Counter()
    for table in tables:
        all_freq.update(table.item_freq)
    ranker = SpanRanker.fit(tables, embed, all_freq, seed=seed)
    positives = ranker.positives if ranker else 0
    per_item: dict[tuple[str, str], tuple[Item, dict[str, list[tuple[str, float]]]]] = {}
    for item, name, tags in model_answers:
        vocab = by_vocab.get(name, (None, []))[0]
        for facet in vocab.facets if vocab else ():
            if not facet.extractive and tags.get(facet.name) and (ranker is None or positives < min_positives
                                                                   or not _ranked(facet)):
                entry = per_item.setdefault((name, item.id), (item, {}))
                entry[1].setdefault(facet.name, []).extend((str(v), 1.0) for v in tags[facet.name])
    if ranker is None or positives < min_positives:
        return LearntAnswers([(item, name, tags) for (name, _), (item, tags) in per_item.items()], positives, False)
    from tqdm import tqdm

    ranked = [(table, facet) for table in tables for facet in table.vocab.facets if _ranked(facet)]
    for table, facet in tqdm(ranked, desc="rank runs of words", unit="facet", disable=not progress):
        prof = FacetProfile.of(facet, list(facet.values), embed([v.value for v in facet.values]), table)
        rows = table.rows(facet.name)
        known = np.array([table.keys[n] in prof.keys for n in rows], dtype=bool)
        # a known value's other spellings go through unscored: suggest proposes them as aliases
        scored = [(n, 0.0) for n in rows[known]]
        unknown = rows[~known]
        if len(unknown):
            p = ranker.probability(features(table, facet.name, prof, unknown, all_freq))
            scored += _likely(unknown, p, [table.keys[n] for n in unknown], min_probability, min_keys)
        for n, prob in scored:
            span = table.spans[n]
            entry = per_item.setdefault((table.vocab.name, span.item.id), (span.item, {}))
            entry[1].setdefault(facet.name, []).append((span.text, prob))
    return LearntAnswers([(item, name, tags) for (name, _), (item, tags) in per_item.items()], positives)
