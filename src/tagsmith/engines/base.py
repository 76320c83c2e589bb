"""The one interface every generation backend implements.

The tagger and the eval harness only see `Engine.generate(requests)`: a batch of chat
requests, each carrying its own JSON schema and (optionally) its own adapter, in; one
`Generation` per request, in order, out. Backends decide how to batch, cache compiled
constraints and apply chat templates, so nothing backend-specific leaks upward.

Engines that can read the model's token probabilities also implement `Engine.score`: the
log-probability of each of several continuations of one answer prefix, which lets the
tagger rank every option of a short closed facet instead of trusting greedy decoding
(see option_scoring.py). `can_score` says whether an engine does. `Engine.answer_logprobs`
reads the log-probability of every token of a whole written answer in one pass, which gives
each decoded tag its confidence (confidence.py); `reads_answers` says whether it does. An
engine that knows those numbers while generating puts them in `Generation.token_logprobs`
instead, which saves that pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

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
    #: each generated token's characters in `text` and the model's own log-probability of it
    #: (before any grammar mask), from engines that can tell while generating; None from the
    #: rest (confidence.py then reads the answer back through `Engine.answer_logprobs`)
    token_logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True)
class ScoreRequest:
    """Alternative continuations of one answer: after the chat's generation prompt, the
    answer so far is `prefix`, and each of `continuations` is scored as what comes next."""

    messages: tuple[dict[str, str], ...]
    prefix: str
    continuations: tuple[str, ...]
    adapter: str | None = None


@dataclass(frozen=True)
class ContinuationScore:
    #: natural-log probability of the continuation's tokens given the prompt and prefix
    logprob: float
    #: how many tokens were scored (a token that spans the prefix's last characters included)
    tokens: int
    #: the same with every step renormalized over the next tokens of the request's
    #: continuations that share the tokens so far: the probability a decoder constrained to
    #: these continuations gives this one (they sum to 1 over a request's continuations)
    constrained: float = 0.0


@dataclass(frozen=True)
class AnswerRequest:
    """A whole answer to read the model's token probabilities of: after the chat's generation
    prompt, the model writes `text`."""

    messages: tuple[dict[str, str], ...]
    text: str
    adapter: str | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One token of an answer: the characters of `AnswerRequest.text` it covers (`start` 0 for
    a token that also spans the end of the prompt) and its log-probability there."""

    start: int
    end: int
    logprob: float


def generated_spans(tokenizer: Any, token_ids: Sequence[int], text: str) -> list[tuple[int, int]] | None:
    """Each generated token's characters in `text` (the detokenized generation), found by
    decoding ever longer prefixes; None where a prefix is not a prefix of `text` (a character
    split across tokens, a tokenizer that cleans up spaces), so no span is ever guessed."""
    spans, end = [], 0
    for k in range(len(token_ids)):
        prefix = tokenizer.decode(token_ids[:k + 1], skip_special_tokens=True)
        if not text.startswith(prefix) or len(prefix) < end:
            return None
        spans.append((end, len(prefix)))
        end = len(prefix)
    return spans if end == len(text) else None


def answer_tokens(tokenizer: Any, request: AnswerRequest) -> tuple[list[int], list[tuple[int, int]], int]:
    """The prompt and answer tokenized together (a Hugging Face fast tokenizer and its chat
    template), each token's character span within the answer, and the index of the first token
    that covers part of the answer."""
    chat = tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)
    encoded = tokenizer(chat + request.text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(encoded["input_ids"]), [(int(a), int(b)) for a, b in encoded["offset_mapping"]]
    first = next((i for i, (_, end) in enumerate(offsets) if end > len(chat)), len(ids))
    first = max(first, 1)  # the first token has no prediction
    spans = [(max(0, a - len(chat)), b - len(chat)) for a, b in offsets]
    return ids, spans, first


def constrained_logprobs(tails: Sequence[Sequence[int]], step_logprob: Callable[[int, int, int], float],
                         ) -> list[float]:
    """Per tail, sum over its steps of log p(token) - log(sum of p over the tokens any tail
    sharing this step's prefix continues with). `step_logprob(i, j, token)` is the model's
    log-probability of `token` at step j of tail i (the same for every tail with that prefix)."""
    children: dict[tuple[int, ...], set[int]] = {}
    owner: dict[tuple[int, ...], tuple[int, int]] = {}
    for i, t in enumerate(tails):
        for j in range(len(t)):
            node = tuple(t[:j])
            children.setdefault(node, set()).add(t[j])
            owner.setdefault(node, (i, j))
    norm = {}
    for node, tokens in children.items():
        i, j = owner[node]
        values = [step_logprob(i, j, tok) for tok in tokens]
        top = max(values)
        norm[node] = top + math.log(sum(math.exp(v - top) for v in values))
    return [sum(step_logprob(i, j, t[j]) - norm[tuple(t[:j])] for j in range(len(t))) for i, t in enumerate(tails)]


def continuation_tokens(tokenizer: Any, request: ScoreRequest) -> tuple[list[list[int]], int]:
    """Each continuation tokenized together with the chat prompt and prefix (a Hugging Face
    tokenizer's chat template), and how many leading tokens are context: shared by all of
    them and no further than the prompt and prefix reach, so every token of a continuation
    is scored (a single continuation too) and a token spanning the boundary counts as its."""
    chat = tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)
    seqs = [tokenizer.encode(chat + request.prefix + c, add_special_tokens=False) for c in request.continuations]
    context = tokenizer.encode(chat + request.prefix, add_special_tokens=False)
    if not seqs:
        return seqs, 0
    reach = next((i for i, (a, b) in enumerate(zip(context, seqs[0], strict=False)) if a != b),
                 min(len(context), len(seqs[0])))
    return seqs, min(common_prefix_length(seqs), reach)


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Tokens every sequence starts with, leaving at least one token of each to score."""
    if not sequences:
        return 0
    n = min(len(s) for s in sequences) - 1
    first = sequences[0]
    for i in range(max(0, n)):
        if any(s[i] != first[i] for s in sequences[1:]):
            return i
    return max(0, n)


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

    #: whether `score` is implemented (it reads token probabilities, which not every backend exposes)
    can_score: ClassVar[bool] = False

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """For each request, one score per continuation, in order. Continuations are
        tokenized together with the prompt and prefix, so a token spanning the boundary is
        scored as the model would have produced it."""
        raise NotImplementedError(f"the {self.name} engine cannot score continuations")

    #: whether `answer_logprobs` is implemented (decoded tags' confidences)
    reads_answers: ClassVar[bool] = False

    def answer_logprobs(self, requests: Sequence[AnswerRequest]) -> list[list[TokenLogprob]]:
        """For each request, the log-probability of each token of its answer text given the
        prompt and the answer before it (the model's own, no grammar mask), in order."""
        raise NotImplementedError(f"the {self.name} engine cannot read token probabilities")

    #: set by `close`: a process-wide cache of engines (runtime.shared_engine) loads a fresh one
    #: instead of handing out one that a caller closed
    closed: bool = False

    def close(self) -> None:
        """Release the model; the engine is unusable afterwards. Engines that free something
        override this and call it too."""
        self.closed = True

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
