"""Confidence of decoded tags: how probable the model found each value it wrote.

Option scoring gives the facets it ranks a confidence (the softmax over their options); a
facet answered by decoding (extractive spans, long or multi-valued lists) has no such list to
rank. Here each value's confidence is the probability of its tokens, from its opening quote
to the delimiter after it (the model's decision to stop the value there), given the prompt
and the answer before it. Engines that report the model's own token log-probabilities while
generating (`Generation.token_logprobs`: vLLM, see engines/vllm_worker.py, and the transformers
engine's own decoding loop, engines/guided.py) give it for free;
otherwise the whole answer is read back through the model once (`Engine.answer_logprobs`,
one forward pass over prompt and answer). In the full answer shape a facet left empty gets
the probability of its `[]`, the decision to leave it empty; in the filled shape an empty
facet writes nothing, so it gets no score. The answer is read in its compact JSON form
(answers.answer_json), facets in vocabulary order, the form option scoring continues too.

The probability is the model's own, before any grammar mask: the mask only renormalizes over
the tokens it allows, which for a span copied from the text is nearly every token, so the raw
probability is the number that means the same for closed and extractive facets, and the one
every engine that can read probabilities gives alike (vLLM applies the structured-output
mask to the logits before its sampler, so its stock generation log-probabilities are masked
ones, whatever its `logprobs_mode`: the vLLM engine patches the logits layer to get the
unmasked ones). The generated tokens stand in for a read-back only where the generated text
is the compact answer itself, so both paths score the same token sequence.

A value the model wrote stands for a tag through the vocabulary (aliases, spelling, the
normalized span): its confidence is filed under that tag, as `TagResult.scores` has it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tagsmith.answers import AnswerShape
from tagsmith.engines.base import AnswerRequest, Engine, TokenLogprob
from tagsmith.option_scoring import NO_VALUE
from tagsmith.parsing import Reason, Rejection, tag_value
from tagsmith.vocabulary import Vocabulary


@dataclass(frozen=True)
class DecodedAnswer:
    """One generated answer to score: the prompt it answered and what it wrote per facet."""

    messages: tuple[dict[str, str], ...]
    vocabulary: Vocabulary
    #: the generated JSON's facets with their written values, as the model wrote them
    answer: dict[str, list[str]]
    #: the item's text (extractive values are mapped to the span they copy)
    text: str
    adapter: str | None = None
    #: the answer shape it was written in (answers.py)
    shape: AnswerShape = "full"
    #: the generated text and its tokens' unmasked log-probabilities, when the engine gave them
    raw: str | None = None
    tokens: tuple[TokenLogprob, ...] | None = None


def compact_answer(vocab: Vocabulary, answer: Mapping[str, Sequence[Any]], shape: AnswerShape = "full",
                   ) -> tuple[str, list[tuple[str, str | None, int, int]]]:
    """The answer as compact JSON (vocabulary order, written in `shape`) and, per written value
    (None for an empty facet), its facet and character span: a value from its opening quote to
    the delimiter after it, an empty facet its `[]` (the full shape's only). In the filled shape
    the facet's key is itself the model's choice (to fill the facet at all), so the first value's
    span starts at the key: its confidence is that of writing the facet with this value."""
    written_facets = [(f, [v for v in answer.get(f.name, []) if isinstance(v, str)]) for f in vocab.facets]
    if shape == "filled":
        written_facets = [(f, values) for f, values in written_facets if values]
    text, spans = "{", []
    for position, (facet, values) in enumerate(written_facets):
        key_at = len(text)
        text += json.dumps(facet.name, ensure_ascii=False) + ":"
        if not values:
            spans.append((facet.name, None, len(text), len(text) + 2))
            text += "[]"
        else:
            text += "["
            for k, value in enumerate(values):
                written = json.dumps(value, ensure_ascii=False) + ("," if k < len(values) - 1 else "]")
                start = key_at if shape == "filled" and k == 0 else len(text)
                spans.append((facet.name, value, start, len(text) + len(written)))
                text += written
        text += "," if position < len(written_facets) - 1 else "}"
    return (text if written_facets else "{}"), spans


def span_logprob(tokens: Sequence[TokenLogprob], start: int, end: int) -> float:
    """Sum of the log-probabilities of the tokens that cover any of characters [start, end)."""
    return sum(t.logprob for t in tokens if t.end > start and t.start < end)


def decoded_confidences(engine: Engine, answers: Sequence[DecodedAnswer],
                        skip: Sequence[set[str]] | None = None) -> list[dict[str, dict[str, float]]]:
    """Per answer, {facet: {tag: probability}} for its decoded facets (`""`: left empty), in
    at most one engine call. `skip[i]` names facets of answer i scored otherwise (option scoring).
    A value the vocabulary does not take (rejected by parsing) gets no score; a tag written
    twice keeps its first score. Answers generated with their tokens' log-probabilities (and
    written in the compact form) need no engine call; the rest are read back in one call, or
    get no scores from an engine that cannot read answers."""
    rendered = [compact_answer(a.vocabulary, a.answer, a.shape) for a in answers]
    read: list[Sequence[TokenLogprob] | None] = [
        a.tokens if a.tokens is not None and a.raw == text else None
        for a, (text, _) in zip(answers, rendered, strict=True)]
    missing = [i for i, tokens in enumerate(read) if tokens is None]
    if missing and engine.reads_answers:
        for i, tokens in zip(missing, engine.answer_logprobs(
                [AnswerRequest(answers[i].messages, rendered[i][0], answers[i].adapter) for i in missing]), strict=True):
            read[i] = tokens
    out: list[dict[str, dict[str, float]]] = []
    for i, (a, (_, spans), tokens) in enumerate(zip(answers, rendered, read, strict=True)):
        skipped = skip[i] if skip else set()
        found: dict[str, dict[str, float]] = {}
        out.append(found)
        if tokens is None:
            continue
        for facet_name, written, start, end in spans:
            facet = a.vocabulary.facet(facet_name)
            if facet_name in skipped or facet is None:
                continue
            tag = NO_VALUE if written is None else tag_value(facet, written, a.text)
            if tag is not None:
                found.setdefault(facet_name, {}).setdefault(tag, round(math.exp(span_logprob(tokens, start, end)), 4))
    return out


def withhold(tags: Mapping[str, Sequence[str]], scores: Mapping[str, Mapping[str, float]], threshold: float,
             ) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """The tags whose confidence reaches `threshold` (a tag without a score is kept) and a
    `low_confidence` rejection, score included, for each one withheld. The tagger applies it
    to every answer; `tagsmith eval` applies it to stored answers, so one generation gives the
    figures with and without a threshold."""
    if threshold <= 0:
        return {f: list(v) for f, v in tags.items()}, []
    kept: dict[str, list[str]] = {}
    withheld: list[dict[str, Any]] = []
    for facet, values in tags.items():
        for value in values:
            confidence = (scores.get(facet) or {}).get(value)
            if confidence is not None and confidence < threshold:
                rejection = Rejection(facet, value, Reason.LOW_CONFIDENCE, f"{confidence:.3f} < {threshold}")
                withheld.append({**rejection.to_dict(), "score": confidence})
            else:
                kept.setdefault(facet, []).append(value)
    return kept, withheld
