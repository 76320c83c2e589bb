"""Engine registry: names map to lazily imported backends so `import tagsmith` stays light.

`auto` picks the fastest backend that imports here; an unknown name gets a
"did you mean" hint.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from typing import Any

from tagsmith.engines.base import Engine, Generation, GenerationRequest
from tagsmith.errors import ConfigError

__all__ = ["Engine", "Generation", "GenerationRequest", "ENGINES", "create_engine", "resolve_engine_name"]

#: name -> "module:factory"; the factory takes (model_path_or_id, **options).
ENGINES: dict[str, str] = {
    "vllm": "tagsmith.engines.vllm_offline:VLLMEngine",
    "transformers": "tagsmith.engines.transformers_outlines:TransformersEngine",
    "openai": "tagsmith.engines.openai_server:OpenAIEngine",
}

#: Tried in order by `auto`: (engine name, module that must import for it to work).
AUTO_ORDER: list[tuple[str, str]] = [("vllm", "vllm"), ("transformers", "outlines")]


def resolve_engine_name(name: str) -> str:
    if name == "auto":
        for candidate, module in AUTO_ORDER:
            if candidate in ENGINES and importlib.util.find_spec(module) is not None:
                return candidate
        raise ConfigError("no engine is installed (install tagsmith with its default dependencies)")
    if name not in ENGINES:
        close = difflib.get_close_matches(name, [*ENGINES, "auto"], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown engine {name!r} (choose from auto, {', '.join(ENGINES)}){hint}")
    return name


def create_engine(name: str, model: str, **options: Any) -> Engine:
    """Build the engine `name` for `model` (an HF folder or hub id), passing options through."""
    module_name, attr = ENGINES[resolve_engine_name(name)].split(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(model, **options)
