"""Greedy decoding under a JSON schema, with llguidance's token masks, for a Hugging Face model.

outlines' generator (which the transformers engine used for every schema) asks the model for
one token per step and returns only the text. Two things that matter for tagging it cannot do:

- **Fast-forward forced tokens.** Most of a compact answer is fixed by the schema once the
  model has chosen where to go: the rest of a facet's name, `":["`, a value's closing quote.
  llguidance says which tokens are forced (`compute_ff_tokens`); they are fed to the model in
  the same forward pass as the token chosen before them, so a step is spent only where the
  model has a choice. The answer is the same as one token at a time: a forced token is the only
  one the mask allows.
- **Report each token's own log-probability** (before the mask) while generating, forced
  tokens included (their rows come out of the same pass), so decoded tags get their confidence
  without reading the answer back (confidence.py).

Rows of a batch are left-padded prompts; each step feeds every unfinished row its new tokens,
right-padded to the longest, and the padding is masked out of attention for good, so rows move
through their answers at their own pace in one key/value cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tagsmith.engines.base import TokenLogprob, generated_spans
from tagsmith.schema import AnswerSchema


def llguidance_schema(schema: AnswerSchema) -> str:
    """The schema as llguidance reads it: no whitespace between tokens (compact answers), said
    llguidance's way; key order kept, since it is the order facets are written in."""
    return json.dumps({**schema.data, "x-guidance": {"whitespace_flexible": False}})


@dataclass
class GuidedOutput:
    token_ids: list[int]
    text: str
    finish_reason: str
    token_logprobs: tuple[TokenLogprob, ...] | None


@dataclass
class _Row:
    matcher: Any
    max_tokens: int
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    feed: list[int] = field(default_factory=list)
    done: bool = False
    finish: str = "stop"


class GuidedDecoder:
    """Constrained greedy decoding for one model and tokenizer; compiled grammars are kept
    per schema text (compiling is cheap next to converting the tokenizer, done once here)."""

    def __init__(self, model: Any, tokenizer: Any, cache_size: int = 64) -> None:
        import llguidance.hf

        self.model = model
        self.tokenizer = tokenizer
        self.vocab_size = int(model.config.vocab_size)
        self._lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=self.vocab_size)
        self._eos = self._lltok.eos_token
        self._grammars: dict[str, str] = {}
        self._cache_size = cache_size

    def _matcher(self, schema: AnswerSchema) -> Any:
        import llguidance

        grammar = self._grammars.get(schema.text)
        if grammar is None:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(llguidance_schema(schema))
            if len(self._grammars) >= self._cache_size:
                self._grammars.pop(next(iter(self._grammars)))
            self._grammars[schema.text] = grammar
        matcher = llguidance.LLMatcher(self._lltok, grammar)
        if matcher.is_error():
            raise ValueError(f"the answer schema cannot be compiled: {matcher.get_error()}")
        return matcher

    def generate(self, prompts: Sequence[str], schemas: Sequence[AnswerSchema],
                 max_tokens: Sequence[int]) -> list[GuidedOutput]:
        """Answer each chat-formatted prompt under its schema, in one batch. (A peft adapter
        injected into the model in place is applied: it is the same module.)"""
        from transformers import DynamicCache

        model = self.model
        device = next(model.parameters()).device
        rows = [_Row(self._matcher(s), m) for s, m in zip(schemas, max_tokens, strict=True)]
        encoded = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        width = max(len(e) for e in encoded)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=device)
        attention = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        bitmask = np.zeros((self.vocab_size + 31) // 32, dtype=np.int32)
        cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=attention, position_ids=positions,
                        past_key_values=cache, use_cache=True, logits_to_keep=1)
            last = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # next-token log-probs per row
            while True:
                for i, row in enumerate(rows):
                    if not row.done:
                        self._advance(row, last[i], bitmask)
                step = max(len(r.feed) for r in rows)
                if step == 0:
                    break
                feed = torch.tensor([r.feed + [pad] * (step - len(r.feed)) for r in rows], device=device)
                fresh = torch.tensor([[1] * len(r.feed) + [0] * (step - len(r.feed)) for r in rows], device=device)
                start = attention.sum(-1, keepdim=True)
                positions = start + fresh.cumsum(-1) - 1
                attention = torch.cat([attention, fresh], dim=-1)
                out = model(input_ids=feed, attention_mask=attention, position_ids=positions,
                            past_key_values=cache, use_cache=True, logits_to_keep=step)
                logprobs = torch.log_softmax(out.logits[:, -step:].float(), dim=-1)
                for i, row in enumerate(rows):
                    n = len(row.feed)
                    if n > 1:  # forced tokens: each one's row is the position before it
                        forced = torch.tensor(row.feed[1:], device=device)
                        row.logprobs += logprobs[i, :n - 1].gather(1, forced[:, None])[:, 0].tolist()
                    if n:
                        last[i] = logprobs[i, n - 1]
                    row.feed = []
        return [self._output(r) for r in rows]

    def _advance(self, row: _Row, logprobs: Any, bitmask: np.ndarray) -> None:
        """Choose the row's next token (or take the forced ones) and queue them to be fed;
        a token's log-probability is recorded from the position before it."""
        matcher = row.matcher
        forced = matcher.compute_ff_tokens()
        if forced:
            chosen = None
        else:
            matcher.unsafe_compute_mask_ptr(bitmask.ctypes.data, bitmask.nbytes)
            allowed = np.unpackbits(bitmask.view(np.uint8), bitorder="little")[:self.vocab_size].astype(bool)
            candidates = np.flatnonzero(allowed)
            if len(candidates) == 0:
                row.done, row.finish = True, "stop"
                return
            chosen = int(candidates[int(logprobs[torch.as_tensor(candidates, device=logprobs.device)].argmax())])
            if chosen == self._eos:
                row.done = True
                return
            matcher.consume_token(chosen)
            forced = matcher.compute_ff_tokens() if not matcher.is_stopped() else []
        tokens = ([chosen] if chosen is not None else []) + list(forced)
        room = row.max_tokens - len(row.tokens)
        if len(tokens) >= room:
            tokens, row.done, row.finish = tokens[:room], True, "length"
        if chosen is None:
            matcher.consume_tokens(tokens)
        elif len(tokens) > 1:
            matcher.consume_tokens(tokens[1:])
        if tokens:
            row.logprobs.append(float(logprobs[tokens[0]]))
        row.tokens += tokens
        row.feed = tokens if len(tokens) > 1 or not (row.done or matcher.is_stopped()) else []
        if matcher.is_stopped():
            row.done = True

    def _output(self, row: _Row) -> GuidedOutput:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        spans = generated_spans(self.tokenizer, row.tokens, text)
        scored = None
        if spans is not None and len(row.logprobs) == len(row.tokens):
            scored = tuple(TokenLogprob(a, b, lp) for (a, b), lp in zip(spans, row.logprobs, strict=True))
        return GuidedOutput(row.tokens, text, row.finish, scored)
