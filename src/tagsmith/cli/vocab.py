"""`tagsmith vocab`: check, inspect and export controlled vocabularies."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tagsmith.cli.app import friendly_errors, main, say
from tagsmith.cli.options import progress_option, run_options


@main.group()
def vocab() -> None:
    """Check, inspect, export and maintain controlled vocabularies (audit, suggest, apply)."""


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
    settings = TaggingSettings()  # a category tree's paths ranked as tagging ranks them (depth penalty)
    click.echo("| vocabulary | " + " | ".join(f"recall@{k}" for k in sorted(ks)) + " |")
    click.echo("|---|" + "---|" * len(ks))
    for v in vocabularies:
        mine = [g for g in items if vocabularies.for_category(g.item.category) is v]
        if not mine:
            continue
        texts = ["\n".join(clean_item(g.item, settings)[:2]) for g in mine]
        scores = recall_at_k(v, texts, [g.gold for g in mine], ks, encoder=encoder,
                             depth_penalty=settings.hierarchy_depth_penalty)
        click.echo(f"| {v.name} ({len(mine)} items) | " + " | ".join(
            "all facets <= k" if n == 0 else f"{100 * r:.1f} ({n})" for r, n in scores.values()) + " |")


@vocab.command("suggest")
@click.option("--input", "-i", "input_path", required=True, type=click.Path(path_type=Path),
              help="Items (.jsonl/.csv) whose text may hold values the vocabulary lacks.")
@click.option("--vocab", "-v", "vocab", required=True, metavar="PATH|NAME", help="The vocabulary to extend.")
@click.option("--out", "-o", "out", required=True, type=click.Path(path_type=Path),
              help="The patch to write (YAML: proposed values, strongest evidence first, with their score, "
                   "support, example items and the nearest existing values; edit it, then "
                   "`tagsmith vocab apply`).")
@click.option("--answers", "answers_path", type=click.Path(path_type=Path), default=None,
              help="Where the model's open answers go [default: OUT with .answers.jsonl]; a re-run "
                   "continues from it, like `tag --output`.")
@click.option("--tagged", "tagged_path", type=click.Path(path_type=Path), default=None,
              help="Output of an earlier `tagsmith tag` run with this vocabulary: its rejected answers "
                   "(values not in the vocabulary) count as evidence too.")
@click.option("--min-support", type=click.IntRange(1), default=1, show_default=True,
              help="Items a proposed value needs (proposals are ranked by their evidence either way).")
@click.option("--top", type=click.IntRange(1), default=20, show_default=True, help="Proposals per facet at most.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N items.")
@run_options
@progress_option
@friendly_errors
def vocab_suggest(input_path: Path, vocab: str, out: Path, answers_path: Path | None, tagged_path: Path | None,
                  min_support: int, top: int, limit: int | None, model: str | None, engine: str | None,
                  template: str | None, adapter: str | None, config: Path | None, progress: bool) -> None:
    """Propose values the vocabulary lacks, from what the items' texts state.

    Each closed facet is asked as an open question (the model copies what the text says for it,
    the known values shown as examples). Those answers and the texts' short runs of words are
    scored by a ranker learnt from the vocabulary itself (how its known values look and where the
    texts state them; numbers are also tried in the unit the facet's values use, 24" as 61.0),
    normalized, clustered and ranked by that evidence. Spellings of existing values are proposed
    as aliases.
    """
    from tagsmith.runtime import RunSpec
    from tagsmith.vocab_patch import dump_patch
    from tagsmith.vocab_suggest import SuggestRun
    from tagsmith.vocabulary import resolve_vocabularies

    spec = RunSpec(vocab=vocab, model=model, engine=engine, adapter=adapter, template=template,
                   config=str(config) if config else None)
    spec.settings()
    job = SuggestRun(spec, resolve_vocabularies(vocab), input_path,
                     answers_path or out.with_suffix(".answers.jsonl"), tagged_path, limit=limit, progress=progress)
    try:
        patch = job.run(min_support=min_support, top=top)
    finally:
        say(*job.notes)
    out.write_text(dump_patch(patch), encoding="utf-8")
    for vocab_name, facets in patch.items():
        for facet, changes in facets.items():
            shown = ", ".join(f"{a['value']} ({a['support']})" for a in changes.add[:8])
            spellings = f"; {len(changes.merge)} new spellings of existing values" if changes.merge else ""
            click.echo(f"{vocab_name} / {facet}: {shown or 'no new values'}{spellings}")
    say(f"patch: {out}")


@vocab.command("audit")
@click.argument("vocab", metavar="VOCAB")
@click.option("--tagged", "tagged_path", type=click.Path(path_type=Path), default=None,
              help="Output of `tagsmith tag` with this vocabulary: adds usage (values never or rarely "
                   "given, facets almost always empty, answers most often rejected).")
@click.option("--rare", type=click.IntRange(0), default=0, show_default=True,
              help="With --tagged: list values given at most this many times.")
@click.option("--similarity", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Sentence-embedding similarity at which two values count as near-duplicates.")
@click.option("--no-embeddings", is_flag=True, help="Compare spellings only (no sentence encoder).")
@click.option("--patch", "patch_path", type=click.Path(path_type=Path), default=None,
              help="Write the proposed merges (as aliases) to this patch file.")
@friendly_errors
def vocab_audit(vocab: str, tagged_path: Path | None, rare: int, similarity: float, no_embeddings: bool,
                patch_path: Path | None) -> None:
    """Report near-duplicate values (case, punctuation, plurals, units, close meaning) and, with
    --tagged, how the vocabulary is used; print it as Markdown."""
    from tagsmith.results_store import read_results
    from tagsmith.vocab_health import audit
    from tagsmith.vocab_patch import dump_patch
    from tagsmith.vocabulary import resolve_vocabularies

    encoder = None
    if not no_embeddings:
        from tagsmith.embeddings import shared_encoder

        encoder = shared_encoder()
    records = list(read_results(tagged_path).values()) if tagged_path else None
    result = audit(resolve_vocabularies(vocab), records, encoder=encoder, threshold=similarity, rare=rare)
    click.echo(result.markdown())
    if patch_path:
        patch_path.write_text(dump_patch(result.patch()), encoding="utf-8")
        say(f"patch: {patch_path}")


@vocab.command("apply")
@click.argument("patch_path", metavar="PATCH", type=click.Path(path_type=Path))
@click.argument("vocab", metavar="VOCAB")
@click.option("--out", "-o", "out", required=True, type=click.Path(path_type=Path),
              help="Where the new vocabulary goes: a file, or a folder when VOCAB is a folder.")
@friendly_errors
def vocab_apply(patch_path: Path, vocab: str, out: Path) -> None:
    """Write VOCAB with PATCH applied: added values, merged values as aliases (so old tags map
    forward), removed values. Then `tagsmith retag --old-vocab VOCAB --vocab OUT` updates only
    the items the change touches."""
    from tagsmith.vocab_diff import diff_vocabularies
    from tagsmith.vocab_patch import apply_patch, load_patch, write_vocabularies
    from tagsmith.vocabulary import resolve_vocabularies

    old = resolve_vocabularies(vocab)
    new = apply_patch(old, load_patch(patch_path))
    for path in write_vocabularies(new, vocab, out):
        click.echo(f"wrote {path}")
    say(*(c.summary() for c in diff_vocabularies(old, new).values() if c.changed))
