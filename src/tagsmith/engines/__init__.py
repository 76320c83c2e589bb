"""Engine registry: names map to lazily imported backends so `import tagsmith` stays light.

`auto` picks the fastest backend that imports here; an unknown name gets a "did you mean"
hint. Each engine takes its own options (engines/options.py), checked here before anything
heavy is imported, so a misspelt option is a one-line error.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from typing import Any

from pydantic import ValidationError

from tagsmith.engines.base import ContinuationScore, Engine, Generation, GenerationRequest, ScoreRequest
from tagsmith.engines.options import OPTIONS
from tagsmith.errors import ConfigError

__all__ = ["ContinuationScore", "Engine", "Generation", "GenerationRequest", "ScoreRequest", "ENGINES", "create_engine", "reads_answers",
           "resolve_engine_name"]

#: name -> "module:class"; the class takes (model_path_or_id, *, batch_size=..., **its options).
ENGINES: dict[str, str] = {
    "vllm": "tagsmith.engines.vllm_offline:VLLMEngine",
    "transformers": "tagsmith.engines.transformers_outlines:TransformersEngine",
    "openai": "tagsmith.engines.openai_server:OpenAIEngine",
    "fake": "tagsmith.engines.fake:FakeEngine",
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


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options the engine `name` does not take, naming the first bad one."""
    schema = OPTIONS.get(name)
    if schema is None:
        return
    own = {k: v for k, v in options.items() if k != "batch_size" and not callable(v)}
    try:
        schema.model_validate(own)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        why = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{name} engine: {key}: {why}") from None


def reads_answers(name: str) -> bool:
    """Whether engine `name` gives decoded tags confidences (`Engine.answer_logprobs`), known
    before any model loads (the backends import their heavy parts on construction)."""
    module_name, attr = ENGINES[resolve_engine_name(name)].split(":")
    return bool(getattr(importlib.import_module(module_name), attr).reads_answers)


def create_engine(name: str, model: str | None, **options: Any) -> Engine:
    """Build the engine `name` for `model` (an HF folder or hub id), passing its options through."""
    resolved = resolve_engine_name(name)
    check_options(resolved, options)
    module_name, attr = ENGINES[resolved].split(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(model, **options)
