"""An engine that loads nothing and answers every request with one fixed text.

For tests of everything around the model (CLI, resume, reports, Ray workers) and for trying
a pipeline end to end in a second: `--engine fake` (answer set by `[engine.fake] answer`, or
`"mentions"` for a keyword tagger; `delay` makes each request take that long).
Tests may pass `answer` as a callable of the request instead, and `scores` (a callable of
a `ScoreRequest` returning one log-probability per continuation) to make it score options,
and `logprobs` (a callable of an `AnswerRequest` returning its tokens) to make it read answers.
Every request it saw is kept in `requests` (the others in `score_requests`, `answer_requests`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from tagsmith.engines.base import (AnswerRequest, ContinuationScore, Engine, Generation, GenerationRequest,
                                   ScoreRequest, TokenLogprob)
from tagsmith.text import words

MENTIONS = "mentions"


def mentions(request: GenerationRequest) -> str:
    """Per facet of the request's schema, the allowed values (up to its maxItems) whose words
    occur in the item's text (the last message from its last "Product title:", where the
    templates put the item): deterministic, item-dependent answers."""
    content = request.messages[-1]["content"]
    item_text = content[content.rfind("Product title:"):]  # not the listing of allowed values
    text = f" {' '.join(words(item_text))} "
    properties = request.schema.data.get("properties", {}) if request.schema else {}
    required = set(request.schema.data.get("required", [])) if request.schema else set()
    answer = {}
    for name, spec in properties.items():
        allowed = spec.get("items", {}).get("enum", [])
        found = [v for v in allowed if words(v) and f" {' '.join(words(v))} " in text]
        if found or name in required:  # an optional facet (the filled answer shape) is left out
            answer[name] = found[:spec.get("maxItems", 1)]
    return json.dumps(answer)


class FakeEngine(Engine):
    name = "fake"

    def __init__(self, model: str | None = None, *, answer: str | Callable[[GenerationRequest], str] = "{}",
                 batch_size: int = 8, scores: Callable[[ScoreRequest], list[float]] | None = None,
                 logprobs: Callable[[AnswerRequest], list[TokenLogprob]] | None = None,
                 delay: float = 0.0) -> None:
        self.model_id = model or "fake"
        self.batch_size = batch_size
        self.delay = delay
        self._answer = (answer if callable(answer) else mentions if answer == MENTIONS
                        else (lambda _request: answer))
        self._scores = scores
        self._logprobs = logprobs
        self.reads_answers = logprobs is not None  # type: ignore[misc]
        self.answer_requests: list[AnswerRequest] = []
        self.can_score = scores is not None  # type: ignore[misc]
        self.requests: list[GenerationRequest] = []
        self.score_requests: list[ScoreRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.requests.extend(requests)
        if self.delay:
            time.sleep(self.delay * len(requests))
        return [Generation(text=self._answer(r)) for r in requests]

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        if self._scores is None:
            return super().score(requests)
        self.score_requests.extend(requests)
        return [[ContinuationScore(lp, 1, lp) for lp in self._scores(r)] for r in requests]

    def answer_logprobs(self, requests: Sequence[AnswerRequest]) -> list[list[TokenLogprob]]:
        if self._logprobs is None:
            return super().answer_logprobs(requests)
        self.answer_requests.extend(requests)
        return [self._logprobs(r) for r in requests]
