"""Option scoring: answer a short closed facet by ranking every one of its values.

Greedy constrained decoding commits to a value token by token, so the first token decides:
an option whose first token is common ("Round" before "Round Toe") wins over a better one
whose first token is rarer. Here every allowed value of a short closed, single-valued facet
(and the empty answer, unless the facet is `required`) is scored as the continuation of the
answer at that facet, `{..."Neckline":` -> `["V-Neck"],`, with the engine's token
log-probabilities (`Engine.score`), each step renormalized over the tokens that continue some
option (`ContinuationScore.constrained`: the probability a decoder held to these options gives
each). "No value" wins when it is at least as probable as all values together (the decision a
decoder's first step makes); otherwise the most probable whole value is the answer. Two
corrections, both switchable in `[tagging]`:

- **Calibration against a content-free item** (Zhao et al., "Calibrate before use", 2021):
  the log-probability each option gets for an item whose title is "N/A" measures the
  model's prior bias toward it (position in the list, frequency, tokenization); it is
  subtracted. The empty answer is left uncalibrated: for a content-free item "no value" is
  the right answer, so calibrating it would only push every facet to answer something.
- **The embedding prior**: the cosine similarity between the item's text and each option
  (its facet, value, aliases and description, as shortlists embed them) with the sentence
  encoder tagsmith ships, softmaxed over the options at `option_prior_temperature` and
  added with weight `option_prior_weight` (0 = the model alone). A uniform prior adds
  nothing, and the empty answer gets the uniform share. A caller that has its own
  similarities (the ranked decoder of a category tree: paths embedded leaf first, less a
  depth penalty) passes them instead (`ScoringJob.similarities`).

The softmax of the final scores over the options is the confidence of each answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tagsmith.answers import AnswerShape
from tagsmith.config import TaggingSettings
from tagsmith.embeddings import TextEncoder, shared_encoder
from tagsmith.engines.base import Engine, ScoreRequest
from tagsmith.items import Item
from tagsmith.prompts import PromptTemplate
from tagsmith.shortlist import value_texts
from tagsmith.vocabulary import Facet, Vocabulary

#: What the content-free item says: nothing about any product.
CONTENT_FREE_TITLE = "N/A"
#: Key of the empty answer in a facet's option scores.
NO_VALUE = ""


def scorable(facet: Facet, max_options: int) -> bool:
    """Closed, single-valued facets of at most `max_options` values (hierarchies included:
    each path or ancestor is one option)."""
    return (max_options > 0 and not facet.extractive and facet.max_values == 1
            and 0 < len(facet.allowed) <= max_options)


def answer_prefix(vocab: Vocabulary, answers: dict[str, list[str]], upto: int,
                  shape: AnswerShape = "full") -> str:
    """The compact JSON answer up to facet `upto`'s key, earlier facets as `answers` has them
    (in the filled shape, those without a value left out). The options are then scored as
    `[value]` or `[]` in either shape: in the filled shape "no value" is really the key's
    absence, which a single continuation cannot express, so `[]` stands in for it there."""
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    parts = [f"{json.dumps(f.name, **compact)}:{json.dumps(answers.get(f.name, []), **compact)}"
             for f in vocab.facets[:upto] if shape == "full" or answers.get(f.name)]
    key = json.dumps(vocab.facets[upto].name, ensure_ascii=False)
    return "{" + "".join(p + "," for p in parts) + key + ":"


def options(facet: Facet) -> list[str]:
    """The options scored for a facet: its allowed values, then (unless required) no value."""
    return [*facet.allowed, *([] if facet.required else [NO_VALUE])]


def continuation(option: str, last: bool) -> str:
    """How the answer goes on after the facet's key when `option` is chosen."""
    body = "[]" if option == NO_VALUE else json.dumps([option], ensure_ascii=False)
    return body + ("}" if last else ",")


@dataclass
class FacetChoice:
    value: str | None
    #: probability of each option (NO_VALUE for the empty answer), highest first
    probabilities: dict[str, float] = field(default_factory=dict)


def softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def option_vectors(encoder: TextEncoder, facet: Facet) -> Any:
    """Unit embeddings of a facet's allowed values, in `facet.allowed` order."""
    return encoder.encode(value_texts(facet))


def embedding_prior(cosines: Any, temperature: float) -> Any:
    """log(n * softmax(cosine / temperature)) over one item's n values: 0 for a uniform prior,
    so the prior only moves options apart where the text is closer to some of them."""
    import numpy as np

    logits = np.asarray(cosines, dtype=np.float64) / temperature
    logits -= logits.max()
    return logits - np.log(np.exp(logits).sum()) + math.log(len(logits))


#: Content-free scores per (engine, adapter, template, vocabulary, facet) and option embeddings
#: per (encoder, vocabulary, facet), kept for the process: taggers are cheap to rebuild (the
#: eval harness builds one per batch), these are not.
_CONTENT_FREE: dict[tuple[Any, ...], list[float]] = {}
_OPTION_VECTORS: dict[tuple[str, str, str], Any] = {}
_CACHE_MAX = 20_000


class OptionScorer:
    """Scores options of short facets for a tagger."""

    def __init__(self, engine: Engine, template: PromptTemplate, settings: TaggingSettings,
                 adapter: str | None = None, encoder: TextEncoder | None = None) -> None:
        self.engine = engine
        self.template = template
        self.settings = settings
        self.adapter = adapter
        self._encoder = encoder

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = shared_encoder()
        return self._encoder

    def facets(self, vocab: Vocabulary) -> list[int]:
        """Positions of the facets of `vocab` this scorer answers."""
        found = [i for i, f in enumerate(vocab.facets) if scorable(f, self.settings.option_scoring_max)]
        if self.settings.option_scoring == "closed" and len(found) < len(vocab.facets):
            return []
        return found if self.settings.option_scoring != "off" else []

    def facet_names(self, vocab: Vocabulary) -> set[str]:
        """Names of the facets of `vocab` this scorer answers."""
        return {vocab.facets[i].name for i in self.facets(vocab)}

    def covers(self, vocab: Vocabulary) -> bool:
        """Every facet is scored, so no generation is needed at all."""
        return len(self.facets(vocab)) == len(vocab.facets)

    def _request(self, messages: Sequence[dict[str, str]], vocab: Vocabulary, position: int,
                 answers: dict[str, list[str]]) -> ScoreRequest:
        facet = vocab.facets[position]
        last = position == len(vocab.facets) - 1
        return ScoreRequest(tuple(messages), answer_prefix(vocab, answers, position, self.settings.shape),
                            tuple(continuation(o, last) for o in options(facet)), self.adapter)

    def _calibrations(self, vocabs: Sequence[Vocabulary], position: int) -> list[list[float]]:
        """Each vocabulary's content-free scores of facet `position`'s options; the ones not
        seen before in this process are scored in one engine call."""
        keys = [(self.engine.name, self.engine.model_id, self.adapter, self.template.digest, v.digest,
                 v.facets[position].name) for v in vocabs]
        missing = {k: v for k, v in zip(keys, vocabs, strict=True) if k not in _CONTENT_FREE}
        if missing:
            item = Item("content-free", CONTENT_FREE_TITLE, "")
            requests = [self._request(self.template.messages(item, {"title": CONTENT_FREE_TITLE, "description": ""}, v),
                                      v, position, {}) for v in missing.values()]
            _remember(_CONTENT_FREE, zip(missing, ([s.constrained for s in row] for row in self.engine.score(requests)),
                                         strict=True))
        return [_CONTENT_FREE[k] for k in keys]

    def _priors(self, position: int, jobs: Sequence[ScoringJob]) -> list[Any]:
        """Per job, the weighted log prior over its facet's options (0 where it is uniform or
        off). Each item's text is embedded once however many of its facets are scored, and
        each vocabulary's options once per process."""
        import numpy as np

        if self.settings.option_prior_weight == 0:
            return [np.zeros(len(options(j.vocabulary.facets[position]))) for j in jobs]
        keys = [(self.encoder.name, j.vocabulary.digest, j.vocabulary.facets[position].name) for j in jobs]
        missing = {k: j.vocabulary.facets[position] for k, j in zip(keys, jobs, strict=True)
                   if k not in _OPTION_VECTORS and j.similarities is None}
        if missing:
            texts = [value_texts(f) for f in missing.values()]
            vectors = self.encoder.encode([t for ts in texts for t in ts])
            bounds = np.cumsum([0, *(len(ts) for ts in texts)])
            _remember(_OPTION_VECTORS, ((k, vectors[a:b]) for k, a, b in zip(missing, bounds[:-1], bounds[1:], strict=True)))
        todo = [j for j in jobs if j.vector is None and j.similarities is None]
        for job, vector in zip(todo, self.encoder.encode([j.text for j in todo]) if todo else [], strict=True):
            job.vector = vector
        out = []
        for key, job in zip(keys, jobs, strict=True):
            cosines = (np.asarray(job.similarities, dtype=np.float64) if job.similarities is not None
                       else _OPTION_VECTORS[key] @ job.vector)
            log_p = embedding_prior(cosines, self.settings.option_prior_temperature)
            if not job.vocabulary.facets[position].required:
                log_p = np.append(log_p, 0.0)
            out.append(self.settings.option_prior_weight * log_p)
        return out

    def choose(self, jobs: Sequence[ScoringJob], position: int) -> list[FacetChoice]:
        """Answer facet `position` for every job, in one engine call. Jobs may have vocabularies
        of their own (an item's shortlist of a large facet) with the same facets in the same
        order."""
        if not jobs:
            return []
        raw = self.engine.score([self._request(j.messages, j.vocabulary, position, j.answers) for j in jobs])
        vocabs = [j.vocabulary for j in jobs]
        calibrations = (self._calibrations(vocabs, position) if self.settings.option_calibration
                        else [[0.0] * len(options(v.facets[position])) for v in vocabs])
        out = []
        for job, scores, calibration, prior in zip(jobs, raw, calibrations, self._priors(position, jobs), strict=True):
            facet = job.vocabulary.facets[position]
            opts = options(facet)
            final = [s.constrained - (c if o != NO_VALUE else 0.0) + float(prior[k])
                     for k, (o, s, c) in enumerate(zip(opts, scores, calibration, strict=True))]
            probs = softmax(final)
            ranked = sorted(zip(opts, probs, strict=True), key=lambda x: -x[1])
            values = [(o, p) for o, p in ranked if o != NO_VALUE]
            # "no value" against all values together, as a decoder's first step decides it; then
            # the best whole value, which is where greedy decoding goes wrong
            empty = sum(p for o, p in ranked if o == NO_VALUE)
            best = NO_VALUE if not values or empty >= 1 - empty else values[0][0]
            job.answers[facet.name] = [] if best == NO_VALUE else [best]
            out.append(FacetChoice(None if best == NO_VALUE else best,
                                   {o: round(p, 4) for o, p in ranked if p >= 0.001}))
        return out


def _remember(cache: dict[tuple[Any, ...], Any], entries: Any) -> None:
    """Add to a process cache, emptied first when full: items with a shortlist of their own
    each bring a vocabulary, so a long run would otherwise grow it without bound."""
    entries = list(entries)
    if len(cache) + len(entries) > _CACHE_MAX:
        cache.clear()
    cache.update(entries)


@dataclass
class ScoringJob:
    """One item's answer being completed facet by facet."""

    messages: tuple[dict[str, str], ...]
    vocabulary: Vocabulary
    #: text the embedding prior compares with the options
    text: str
    #: the answer so far, facet -> values (generated, or chosen by scoring)
    answers: dict[str, list[str]]
    #: embedding of `text`, computed on first need
    vector: Any = None
    #: the caller's similarity of the item to each value of the scored facet (in `allowed`
    #: order), used for the prior instead of embedding the values (one-facet vocabularies)
    similarities: Sequence[float] | None = None
