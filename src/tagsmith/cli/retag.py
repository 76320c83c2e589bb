"""`tagsmith retag`: update earlier results after a vocabulary change."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tagsmith.cli.app import friendly_errors, main, say
from tagsmith.cli.options import progress_option, run_options


@main.command()
@click.option("--old-vocab", required=True, metavar="PATH|NAME", help="The vocabulary the items were tagged with.")
@click.option("--vocab", "-v", "vocab", required=True, metavar="PATH|NAME", help="The new vocabulary.")
@click.option("--input", "-i", "input_path", required=True, type=click.Path(path_type=Path),
              help="The items (.jsonl/.csv), as given to `tagsmith tag`.")
@click.option("--previous", "previous_path", required=True, type=click.Path(path_type=Path),
              help="Results of the earlier `tagsmith tag --output` run.")
@click.option("--output", "-o", "output_path", required=True, type=click.Path(path_type=Path),
              help="New results, one line per item (re-running continues an interrupted run).")
@click.option("--diff", "diff_path", required=True, type=click.Path(path_type=Path),
              help="Per changed item: tags added and removed, and why it was re-tagged (JSONL).")
@click.option("--all", "retag_all", is_flag=True,
              help="Re-tag every item of a changed vocabulary, not only those a change can affect.")
@run_options
@progress_option
@friendly_errors
def retag(old_vocab: str, vocab: str, input_path: Path, previous_path: Path, output_path: Path, diff_path: Path,
          retag_all: bool, model: str | None, engine: str | None, template: str | None, adapter: str | None,
          config: Path | None, progress: bool) -> None:
    """Update tags after a vocabulary change: re-tag only the items the change can affect.

    Removed values and facets are dropped, renamed values (the new value lists the old one as
    an alias) rewritten in place; an item goes back to the model when it held a removed value,
    when its vocabulary gained a facet, or when its text mentions an added value (--all: every
    item of a changed vocabulary). Unaffected items keep their tags without a model call.
    """
    from tagsmith.retagging import retag as run_retag
    from tagsmith.runtime import RunSpec, build_tagger, job_record
    from tagsmith.vocab_diff import diff_vocabularies
    from tagsmith.vocabulary import resolve_vocabularies

    spec = RunSpec(vocab=vocab, model=model, engine=engine, adapter=adapter, template=template,
                   config=str(config) if config else None)
    settings = spec.settings()
    old, new = resolve_vocabularies(old_vocab), resolve_vocabularies(vocab)
    changes = diff_vocabularies(old, new)
    say(*(c.summary() for c in changes.values()))

    job = {**job_record(spec, new, input_path), "previous": str(previous_path.resolve()),
           "old_vocabularies": {v.name: v.digest for v in old}}

    def make_tagger():  # type: ignore[no-untyped-def]
        built = build_tagger(spec, new)
        say(*built.plan.notes)
        return built.tagger

    try:
        stats = run_retag(make_tagger, new, changes, input_path, previous_path, output_path, diff_path,
                          settings=settings.tagging, retag_all=retag_all,
                          batch_size=settings.engine.batch_size or 32, progress=progress, job=job)
    except KeyboardInterrupt:
        say(f"interrupted; re-run the same command to continue ({output_path})")
        sys.exit(130)
    say(f"{stats.kept} items kept without a model call, {stats.retagged} re-tagged; "
        f"{stats.changed} changed -> {output_path}, {diff_path}")
