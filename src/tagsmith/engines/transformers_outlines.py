"""transformers + outlines: the engine that runs anywhere torch runs (CPU included).

With llguidance (the default structured backend) answers are decoded by tagsmith's own loop
(guided.py), which fast-forwards the tokens the schema forces and keeps every token's
log-probability. With the other backends outlines compiles a JSON schema into a token-level
automaton once; compiling is the slow part, so compiled generators are kept per schema text
and reused across batches. Requests are grouped by (schema, adapter) and run in chunks of
`batch_size` with left padding, which is what outlines' batch generation expects.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from tagsmith.device import pick_dtype
from tagsmith.engines.base import (AnswerRequest, ContinuationScore, Engine, Generation, GenerationRequest,
                                   ScoreRequest, TokenLogprob, answer_tokens, constrained_logprobs,
                                   continuation_tokens)
from tagsmith.errors import EngineError, ModelNotFoundError
from tagsmith.model_store import resolve_model
from tagsmith.schema import AnswerSchema

#: Compact JSON: no whitespace between tokens. Far fewer answer tokens than the default pattern,
#: and no runs of blanks until max_tokens.
WHITESPACE = ""


#: outlines' structured-output backends. outlines-core compiles an enum into a token automaton
#: up front (minutes for tens of thousands of values); llguidance compiles lazily at a small
#: cost per token.
BACKENDS = ("outlines_core", "llguidance", "xgrammar")


def _transformers_without_sklearn() -> None:
    """Tell transformers, before its generation code first loads, that scikit-learn is absent.

    transformers imports scikit-learn's metrics (over a second of a one-product run's start-up)
    only for assisted generation's adaptive threshold, which tagsmith never uses; scikit-learn
    itself stays importable (the eval baseline uses it). Once transformers' generation module
    is loaded this changes nothing."""
    import sys

    if "transformers.generation" in sys.modules:
        return
    import transformers.utils
    import transformers.utils.import_utils

    def absent() -> bool:
        return False

    transformers.utils.is_sklearn_available = absent
    transformers.utils.import_utils.is_sklearn_available = absent


class TransformersEngine(Engine):
    name = "transformers"
    can_score = True
    reads_answers = True

    def __init__(self, model: str | None = None, *, dtype: str = "auto", batch_size: int = 8,
                 threads: int = 0, device: str | None = None, cache_size: int = 16,
                 seed: int = 0, structured_backend: str = "auto", score_contexts: int = 32) -> None:
        _transformers_without_sklearn()
        import torch

        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self._torch = torch
        location = resolve_model(model)
        self.model_id = location.model_id
        self.batch_size = max(1, batch_size)
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        #: scoring contexts (adapter, tokens) -> (key/value cache, next-token log-probs), most recent last
        self._contexts: OrderedDict[tuple[str | None, tuple[int, ...]], tuple[Any, Any]] = OrderedDict()
        self._context_slots = max(0, score_contexts)
        self._structured: Any = None  # the outlines backend, built on first use
        self._decoder: Any = None  # guided.GuidedDecoder, built on first use
        if structured_backend == "auto":
            # llguidance where installed (a dependency), else outlines-core: faster with identical
            # answers in `python eval/bench_structured_backends.py`, and the only one that compiles
            # 10,000+ values at all.
            import importlib.util

            structured_backend = "llguidance" if importlib.util.find_spec("llguidance") else "outlines_core"
        self.structured_backend = structured_backend
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = pick_dtype(dtype, device)
        self._hf_model, self._tokenizer = self._load(location.path, self.dtype, device, location.is_local)
        self._adapters: dict[str, str] = {}
        self._peft: Any = None

        import outlines

        self._outlines_model = outlines.from_transformers(self._hf_model, self._tokenizer)

    @staticmethod
    def _load(path: str, dtype: str, device: str, is_local: bool) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
        if not is_local:
            kwargs["local_files_only"] = os.environ.get("HF_HUB_OFFLINE") == "1"
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # generation-config chatter from older checkpoints
                model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"cannot load model {path!r}: {str(exc).splitlines()[0]}") from None
        model.to(device)
        model.eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer

    def _generator(self, schema: AnswerSchema | None) -> Any:
        key = schema.text if schema else ""
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        import outlines
        from outlines.generator import SteerableGenerator

        if not schema:
            generator = outlines.Generator(self._outlines_model)
        else:
            backend = self._backend()
            if self.structured_backend == "llguidance":  # no whitespace between tokens, said llguidance's way
                from tagsmith.engines.guided import llguidance_schema

                processor = backend.get_json_schema_logits_processor(llguidance_schema(schema))
            else:
                processor = backend.get_json_schema_logits_processor(schema.text, whitespace_pattern=WHITESPACE)
            generator = SteerableGenerator.from_processor(self._outlines_model, processor)
        self._cache[key] = generator
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return generator

    def _backend(self) -> Any:
        """One outlines backend per engine: building one converts the whole tokenizer vocabulary
        (seconds), which `outlines.Generator` would redo for every new schema, i.e. every item
        once shortlists give each item its own schema."""
        if self._structured is None:
            from outlines import backends

            cls = {"outlines_core": backends.OutlinesCoreBackend, "llguidance": backends.LLGuidanceBackend,
                   "xgrammar": backends.XGrammarBackend}[self.structured_backend]
            self._structured = cls(self._outlines_model)
        return self._structured

    @contextlib.contextmanager
    def _adapter(self, adapter: str | None) -> Iterator[None]:
        """Activate a peft adapter (loaded on first use) or, for None, the bare base model.

        peft injects LoRA layers into the model in place, so the outlines wrapper, which
        holds the same model object, generates through them."""
        if adapter is None:
            if self._peft is None:
                yield
            else:
                with self._peft.disable_adapter():
                    yield
            return
        path = str(Path(adapter).expanduser().resolve())
        if not Path(path, "adapter_config.json").is_file():
            raise EngineError(f"{adapter}: not a peft adapter folder (no adapter_config.json)")
        name = self._adapters.setdefault(path, f"adapter{len(self._adapters)}")
        if self._peft is None:
            from peft import PeftModel

            self._peft = PeftModel.from_pretrained(self._hf_model, path, adapter_name=name)
            self._peft.eval()
        elif name not in self._peft.peft_config:
            self._peft.load_adapter(path, adapter_name=name)
        self._peft.set_adapter(name)
        yield

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Requests with a schema, under the llguidance backend, go through tagsmith's own
        decoding loop (guided.py: forced tokens fast-forwarded, each token's log-probability
        kept), batched per adapter whatever their schemas; the rest through outlines, grouped
        by (schema, adapter)."""
        from outlines.inputs import Chat

        results: list[Generation | None] = [None] * len(requests)
        # (guided, schema, adapter): a guided batch mixes schemas, each row has its own matcher
        groups: dict[tuple[bool, AnswerSchema | None, str | None], list[int]] = {}
        for i, r in enumerate(requests):
            guided = r.schema is not None and self.structured_backend == "llguidance"
            groups.setdefault((guided, None if guided else r.schema, r.adapter), []).append(i)
        for (guided, schema, adapter), indices in groups.items():
            if guided:
                run = self._guided
            else:
                generator = self._generator(schema)
                run = lambda chunk, g=generator: self._run(g, chunk, Chat)  # noqa: E731
            with self._adapter(adapter):
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start:start + self.batch_size]
                    for i, gen in zip(chunk, run([requests[i] for i in chunk]), strict=True):
                        results[i] = gen
        return [r for r in results if r is not None]

    def _guided(self, chunk: list[GenerationRequest]) -> list[Generation]:
        if self._decoder is None:
            from tagsmith.engines.guided import GuidedDecoder

            self._decoder = GuidedDecoder(self._hf_model, self._tokenizer)
        prompts = [self._tokenizer.apply_chat_template(list(r.messages), tokenize=False, add_generation_prompt=True)
                   for r in chunk]
        try:
            outputs = self._decoder.generate(prompts, [r.schema for r in chunk],  # type: ignore[misc]
                                             [r.max_tokens for r in chunk])
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        return [Generation(text=o.text, completion_tokens=len(o.token_ids), finish_reason=o.finish_reason,
                           token_logprobs=o.token_logprobs) for o in outputs]

    def _run(self, generator: Any, chunk: list[GenerationRequest], chat: Any) -> list[Generation]:
        max_tokens = max(r.max_tokens for r in chunk)
        # llguidance applies its token mask through a torch.compile'd function, whose first call
        # compiles for seconds in every new process: more than a few items' whole generation,
        # and the eager function applies the same mask at the same speed afterwards
        with self._torch.inference_mode(), self._torch.compiler.set_stance("force_eager"):
            texts = generator.batch([chat(list(r.messages)) for r in chunk], max_new_tokens=max_tokens,
                                    do_sample=False)
        out = []
        for r, text in zip(chunk, texts, strict=True):
            n = len(self._tokenizer.encode(text, add_special_tokens=False))
            out.append(Generation(text=text, completion_tokens=n,
                                  finish_reason="length" if n >= r.max_tokens else "stop"))
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """The shared prompt runs once per request; its key/value cache is then repeated for
        the continuations, which run as one right-padded batch (only a few tokens each)."""
        out: list[list[ContinuationScore]] = []
        for r in requests:
            with self._adapter(r.adapter):
                out.append(self._score_one(r))
        return out

    def answer_logprobs(self, requests: Sequence[AnswerRequest]) -> list[list[TokenLogprob]]:
        """One forward pass over prompt and answer per request, logits computed only where
        answer tokens are predicted (the vocabulary projection of every prompt position would
        cost more than the pass itself)."""
        torch = self._torch
        out = []
        device = next(self._hf_model.parameters()).device
        for r in requests:
            ids, spans, first = answer_tokens(self._tokenizer, r)
            with self._adapter(r.adapter), torch.inference_mode():
                model = self._peft if self._peft is not None else self._hf_model
                keep = len(ids) - first + 1
                logits = model(input_ids=torch.tensor([ids], device=device),
                               logits_to_keep=keep).logits[0, -keep:-1].float()
                chosen = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(ids[first:], device=device)[:, None])
            out.append([TokenLogprob(*spans[first + j], float(lp)) for j, lp in enumerate(chosen[:, 0].tolist())])
        return out

    def _score_one(self, r: ScoreRequest) -> list[ContinuationScore]:
        torch = self._torch
        seqs, shared = continuation_tokens(self._tokenizer, r)
        model = self._peft if self._peft is not None else self._hf_model
        device = next(self._hf_model.parameters()).device
        with torch.inference_mode():
            cache, first = self._context(model, tuple(seqs[0][:shared]), r.adapter, device)
            tails = [s[shared:] for s in seqs]
            width = max(len(t) for t in tails)
            logprobs = None
            if width > 1:
                cache.batch_repeat_interleave(len(tails))
                pad = self._tokenizer.pad_token_id or 0
                batch = torch.tensor([t + [pad] * (width - len(t)) for t in tails], device=device)
                mask = torch.ones((len(tails), shared + width - 1), dtype=torch.long, device=device)
                logits = model(input_ids=batch[:, :-1], past_key_values=cache, use_cache=False,
                               attention_mask=mask).logits.float()
                logprobs = torch.log_softmax(logits, dim=-1)

            def step(i: int, j: int, token: int) -> float:
                return float(first[token] if j == 0 else logprobs[i, j - 1, token])  # type: ignore[index]

            constrained = constrained_logprobs(tails, step)
        return [ContinuationScore(sum(step(i, j, t[j]) for j in range(len(t))), len(t), c)
                for i, (t, c) in enumerate(zip(tails, constrained, strict=True))]

    def _context(self, model: Any, tokens: tuple[int, ...], adapter: str | None, device: Any) -> tuple[Any, Any]:
        """Key/value cache of `tokens` (a private copy the caller may change) and the log-probs
        of the next token. The facets of one item share most of their context (prompt plus the
        answer so far), so the cached context sharing the longest start with `tokens` is
        extended instead of running the whole prompt again."""
        import copy

        torch = self._torch
        best, common = None, 0
        for (key_adapter, key), entry in self._contexts.items():
            if key_adapter != adapter:
                continue
            n = 0
            limit = min(len(key), len(tokens))
            while n < limit and key[n] == tokens[n]:
                n += 1
            if n > common:
                best, common = (key_adapter, key), n
        if best is not None and common == len(tokens) == len(best[1]):
            self._contexts.move_to_end(best)
            cache, first = self._contexts[best]
            return copy.deepcopy(cache), first
        if best is not None:
            # the longer context replaces the one it extends: the next facet of this item extends
            # it in turn, and one slot per item in flight keeps the others' contexts in the cache
            cache = self._contexts.pop(best)[0] if common == len(best[1]) else copy.deepcopy(self._contexts[best][0])
            common = min(common, len(tokens) - 1)  # the last token must run to give the next one's logits
            if len(best[1]) > common:
                cache.crop(common - len(best[1]))  # negative: drop that many tokens from the end
        else:
            cache, common = None, 0
        out = model(input_ids=torch.tensor([tokens[common:]], device=device), past_key_values=cache, use_cache=True)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        self._contexts[(adapter, tokens)] = (copy.deepcopy(out.past_key_values), first)
        while len(self._contexts) > self._context_slots:
            self._contexts.popitem(last=False)
        return out.past_key_values, first

    def close(self) -> None:
        super().close()
        self._cache.clear()
        self._contexts.clear()
        self._decoder = None
        self._structured = None
        self._outlines_model = None
        self._hf_model = None
