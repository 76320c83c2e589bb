"""The command line of vLLM's OpenAI-compatible server for a tagsmith model.

The model is registered under the name tagsmith uses for it ('embedded' for the default),
so the openai engine works against it unchanged, with the same structured-output backend
and whitespace rule as the offline vLLM engine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tagsmith.adapters import is_adapter
from tagsmith.engines.vllm_offline import cpu_list
from tagsmith.errors import ConfigError
from tagsmith.model_store import resolve_model


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_dtype() -> str:
    """bfloat16 on a GPU or a CPU that has it natively; float32 elsewhere (emulated bf16 is slow)."""
    from tagsmith.device import pick_dtype

    return pick_dtype("auto", "cuda" if _cuda() else "cpu")


def _cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def parse_adapters(specs: Sequence[str]) -> list[str]:
    """NAME=PATH pairs, each PATH a peft folder, as vLLM's --lora-modules wants them."""
    modules = []
    for a in specs:
        name, sep, path = a.partition("=")
        if not sep or not name or not is_adapter(Path(path)):
            raise ConfigError(f"--adapter {a!r}: expected NAME=PATH to a peft adapter folder")
        modules.append(f"{name}={Path(path).resolve()}")
    return modules


def server_command(model: str | None, adapters: Sequence[str] = (), *, host: str = "127.0.0.1", port: int = 8000,
                   max_model_len: int = 4096, structured_backend: str = "guidance",
                   extra: Sequence[str] = (), api_key: str | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that run the server; `extra` goes to vLLM as it is. An API key goes
    into the environment (vLLM reads VLLM_API_KEY), never into argv, which any user can list."""
    location = resolve_model(model)
    structured = {"backend": structured_backend,
                  **({"disable_any_whitespace": True} if structured_backend in ("guidance", "xgrammar") else {})}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", location.path,
           "--served-model-name", model or "embedded", "--host", host, "--port", str(port),
           "--max-model-len", str(max_model_len), "--dtype", server_dtype(),
           "--structured-outputs-config", json.dumps(structured)]
    if adapters:
        cmd += ["--enable-lora", "--lora-modules", *parse_adapters(adapters)]
    cmd += list(extra)
    env = dict(os.environ)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    if not _cuda():
        env.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_list())
    return cmd, env
