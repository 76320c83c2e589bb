"""An engine that loads nothing and answers every request with one fixed text.

For tests of everything around the model (CLI, resume, reports, Ray workers) and for trying
a pipeline end to end in a second: `--engine fake` (answer set by `[engine.fake] answer`).
Tests may pass `answer` as a callable of the request instead. Every request it saw is kept
in `requests`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tagsmith.engines.base import Engine, Generation, GenerationRequest


class FakeEngine(Engine):
    name = "fake"

    def __init__(self, model: str | None = None, *, answer: str | Callable[[GenerationRequest], str] = "{}",
                 batch_size: int = 8) -> None:
        self.model_id = model or "fake"
        self.batch_size = batch_size
        self._answer = answer if callable(answer) else (lambda _request: answer)
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.requests.extend(requests)
        return [Generation(text=self._answer(r)) for r in requests]
