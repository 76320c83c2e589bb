"""`tagsmith vocab`: check, inspect and export controlled vocabularies."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tagsmith.cli.app import friendly_errors, main


@main.group()
def vocab() -> None:
    """Check, inspect and export controlled vocabularies."""


@vocab.command("check")
@click.argument("paths", nargs=-1, required=True)
@friendly_errors
def vocab_check(paths: tuple[str, ...]) -> None:
    """Validate vocabulary files or folders; exits non-zero on the first invalid one."""
    from tagsmith.vocabulary import resolve_vocabularies

    for p in paths:
        for v in resolve_vocabularies(p):
            kinds = sum(1 for f in v.facets if f.extractive)
            click.echo(f"ok  {v.name}: {len(v.facets)} facets ({kinds} extractive), "
                       f"{v.size} values" + (f", category {v.category!r}" if v.category else ""))


@vocab.command("schema")
@click.argument("path")
@friendly_errors
def vocab_schema(path: str) -> None:
    """Print the JSON schema the decoder enforces for a vocabulary file."""
    from tagsmith.schema import build_schema
    from tagsmith.vocabulary import resolve_vocabularies

    schemas = [build_schema(v) for v in resolve_vocabularies(path)]
    click.echo(json.dumps(schemas[0] if len(schemas) == 1 else schemas, ensure_ascii=False, indent=2))


@vocab.command("list")
def vocab_list() -> None:
    """List the built-in vocabularies (usable by name with --vocab)."""
    from tagsmith.vocabulary import builtin_vocabularies

    for name in builtin_vocabularies():
        click.echo(name)


@vocab.command("recall")
@click.option("--data", "data_path", required=True, type=click.Path(path_type=Path),
              help="Gold data (WDC-PAVE, ExtractGPT or generic JSONL).")
@click.option("--vocab", "-v", "vocab_spec", default="wdc-pave", show_default=True, metavar="PATH|NAME")
@click.option("-k", "ks", multiple=True, type=click.IntRange(1), default=(5, 10, 20, 50), show_default=True,
              help="Shortlist sizes to score; repeat.")
@click.option("--split", "part", type=click.Choice(["validation", "train", "all"]), default="validation",
              show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Use only the first N items.")
@friendly_errors
def vocab_recall(data_path: Path, vocab_spec: str, ks: tuple[int, ...], part: str, limit: int | None) -> None:
    """Recall@k of candidate shortlists: how many gold values a k-shortlist keeps.

    Tagging a large vocabulary only offers each item its k nearest values per facet (the
    [tagging] shortlist_k setting); a gold value outside them cannot be found. Use this to
    pick k for your data: the smallest k whose recall you can accept.
    """
    from tagsmith.config import TaggingSettings
    from tagsmith.embeddings import TextEncoder
    from tagsmith.gold import load_dataset, split
    from tagsmith.shortlist import recall_at_k
    from tagsmith.tagger import clean_item
    from tagsmith.vocabulary import resolve_vocabularies

    vocabularies = resolve_vocabularies(vocab_spec)
    items = split(load_dataset(data_path), part).items[:limit]
    encoder = TextEncoder()  # loaded once for every vocabulary
    click.echo("| vocabulary | " + " | ".join(f"recall@{k}" for k in sorted(ks)) + " |")
    click.echo("|---|" + "---|" * len(ks))
    for v in vocabularies:
        mine = [g for g in items if vocabularies.for_category(g.item.category) is v]
        if not mine:
            continue
        texts = ["\n".join(clean_item(g.item, TaggingSettings())[:2]) for g in mine]
        scores = recall_at_k(v, texts, [g.gold for g in mine], ks, encoder=encoder)
        click.echo(f"| {v.name} ({len(mine)} items) | " + " | ".join(
            "all facets <= k" if n == 0 else f"{100 * r:.1f} ({n})" for r, n in scores.values()) + " |")
