"""The one interface every generation backend implements.

The tagger and the eval harness only see `Engine.generate(requests)`: a batch of chat
requests, each carrying its own JSON schema and (optionally) its own adapter, in; one
`Generation` per request, in order, out. Backends decide how to batch, cache compiled
constraints and apply chat templates, so nothing backend-specific leaks upward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from tagsmith.schema import AnswerSchema


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[dict[str, str], ...]
    #: JSON schema the answer must satisfy; None means unconstrained text.
    schema: AnswerSchema | None
    max_tokens: int
    #: Name or path of a LoRA adapter for this request only; None means the base model.
    adapter: str | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: "stop" when the model finished, "length" when it hit max_tokens, "error" when this
    #: request alone failed (`error` says why; the rest of the batch is unaffected).
    finish_reason: str = "stop"
    error: str | None = None


class Engine(ABC):
    """A loaded model that turns batches of requests into generations."""

    name: ClassVar[str]

    #: Identifies the model for caches and manifests (path or hub id, plus revision if known).
    model_id: str

    #: How many requests callers should hand over per `generate` call for best throughput.
    batch_size: int = 8

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Answer every request; the i-th generation belongs to the i-th request."""

    def close(self) -> None:  # noqa: B027 - optional hook, most engines have nothing to free
        """Release the model; the engine is unusable afterwards."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
