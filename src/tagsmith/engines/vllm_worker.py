"""Inside vLLM's worker: logits leave the model as log-probabilities, before any grammar mask.

A decoded tag's confidence is the model's own probability of the value's tokens, before the
structured-output mask (confidence.py says why). vLLM applies that mask to the logits before
its sampler, so the log-probabilities it reports for generated tokens are masked ones in every
`logprobs_mode`; reading each answer back through the model once more gives the unmasked
numbers, but costs a second prefill of the whole prompt per item.

This module removes that second pass. Imported in each worker process (the engine names
`UnmaskedLogprobs` as vLLM's `worker_extension_cls`, which vLLM imports there before it loads
the model), it makes the model's logits layer return `log_softmax(logits)` instead of the
logits. That shifts every row by a constant, which changes nothing vLLM does with them (greedy
choice, temperature sampling, top-k/p, the grammar mask, prompt and sampled log-probabilities
are all shift-invariant), but in `logprobs_mode="raw_logits"` the value vLLM reports for each
generated token is now exactly the model's unmasked log-probability of it: the mask only sets
other tokens to -inf. The engine asks each worker (`collective_rpc`) whether the layer is
patched and refuses to start where it is not (raw logits would pass for log-probabilities);
`VLLMEngine(generation_logprobs=False)` runs vLLM unpatched and reads answers back instead.
"""

from __future__ import annotations

from typing import Any

_PATCHED = False


def _patch() -> bool:
    global _PATCHED
    if _PATCHED:
        return True
    try:
        import torch
        from vllm.model_executor.layers.logits_processor import LogitsProcessor
    except ImportError:
        return False
    original = LogitsProcessor.forward

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        logits = original(self, *args, **kwargs)
        return None if logits is None else torch.log_softmax(logits.float(), dim=-1)

    LogitsProcessor.forward = forward  # type: ignore[method-assign]
    _PATCHED = True
    return True


_patch()


class UnmaskedLogprobs:
    """vLLM worker extension (mixed into the worker class): importing it patches the logits."""

    def tagsmith_logits_are_logprobs(self) -> bool:
        return _PATCHED
