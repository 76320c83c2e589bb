"""An engine that loads nothing and answers every request with one fixed text.

For tests of everything around the model (CLI, resume, reports, Ray workers) and for trying
a pipeline end to end in a second: `--engine fake` (answer set by `[engine.fake] answer`).
Tests may pass `answer` as a callable of the request instead, and `scores` (a callable of
a `ScoreRequest` returning one log-probability per continuation) to make it score options.
Every request it saw is kept in `requests` (score requests in `score_requests`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tagsmith.engines.base import ContinuationScore, Engine, Generation, GenerationRequest, ScoreRequest


class FakeEngine(Engine):
    name = "fake"

    def __init__(self, model: str | None = None, *, answer: str | Callable[[GenerationRequest], str] = "{}",
                 batch_size: int = 8, scores: Callable[[ScoreRequest], list[float]] | None = None) -> None:
        self.model_id = model or "fake"
        self.batch_size = batch_size
        self._answer = answer if callable(answer) else (lambda _request: answer)
        self._scores = scores
        self.can_score = scores is not None  # type: ignore[misc]
        self.requests: list[GenerationRequest] = []
        self.score_requests: list[ScoreRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.requests.extend(requests)
        return [Generation(text=self._answer(r)) for r in requests]

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        if self._scores is None:
            return super().score(requests)
        self.score_requests.extend(requests)
        return [[ContinuationScore(lp, 1, lp) for lp in self._scores(r)] for r in requests]
