"""`tagsmith tag`: one product from the command line, or a file of products."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tagsmith.cli.app import friendly_errors, main, say
from tagsmith.cli.options import progress_option, run_options


@main.command()
@click.argument("text", required=False)
@click.option("--vocab", "-v", "vocab", required=True, metavar="PATH|NAME",
              help="Vocabulary file (.yaml/.json), folder of per-category files, or a built-in name "
                   "such as 'wdc-pave'.")
@click.option("--input", "-i", "input_path", type=click.Path(path_type=Path),
              help="Items to tag: .jsonl (one object per line) or .csv with a header.")
@click.option("--output", "-o", "output_path", type=click.Path(path_type=Path),
              help="Write results here as JSONL, one line per item, and the job's record beside it "
                   "(FILE.job). Re-running the same command skips ids already in the file, so an "
                   "interrupted run continues where it stopped; a run with other settings is refused. "
                   "Without it, results go to standard output.")
@click.option("--description", "-d", default="", help="With TEXT: the item's description.")
@click.option("--category", "-c", default=None,
              help="With TEXT: the item's category, to pick a per-category vocabulary.")
@run_options
@click.option("--base-url", default=None, help="With --engine openai: the server [default: $TAGSMITH_OPENAI_URL "
                                                "or http://127.0.0.1:8000/v1].")
@click.option("--batch-size", "-b", type=click.IntRange(1, 4096), default=None,
              help="Items per engine call [default: the engine's own, 8 for transformers, 512 for vllm].")
@click.option("--limit", type=click.IntRange(1), default=None, help="Tag at most this many items.")
@click.option("--shortlist-k", type=click.IntRange(0), default=None,
              help="Large vocabularies: offer each item only its K nearest values of every facet with more "
                   "than [tagging] shortlist_above values (default 500); 0 = always the whole list "
                   "[default: 50]. `tagsmith vocab recall` helps pick K.")
@click.option("--examples", "examples", type=click.Path(path_type=Path), default=None,
              help="Gold-labelled JSONL (any format `tagsmith eval --data` reads): each item's most similar "
                   "labelled items are shown in the prompt as worked examples.")
@click.option("--examples-k", type=click.IntRange(0, 20), default=None,
              help="How many worked examples per item [default: 3].")
@click.option("--option-scoring", type=click.Choice(["off", "closed", "all"]), default=None,
              help="Answer closed single-valued facets of at most --option-scoring-max values by ranking all "
                   "their values with the model's token probabilities (each such tag then gets a confidence in "
                   "'scores'): 'closed' = in vocabularies made only of such facets (no generation at all), "
                   "'all' = in every vocabulary, 'off' = greedy decoding [default: [tagging] option_scoring].")
@click.option("--option-scoring-max", type=click.IntRange(1, 1000), default=None,
              help="The most values a facet may have to be option-scored [default: 20].")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=None,
              help="Withhold tags whose confidence is below P (they go to 'rejected' with their score) "
                   "[default: the threshold tuned for the adapter, if its manifest has one; 0 keeps all].")
@click.option("--id-field", default=None, help="Input field with the item id [default: id, item_id, sku].")
@click.option("--title-field", default=None,
              help="Input field with the title [default: title, input_title, name].")
@click.option("--description-field", default=None,
              help="Input field with the description [default: description, input_description, body, text].")
@click.option("--category-field", default=None, help="Input field with the category [default: category].")
@click.option("--retry-errors/--keep-errors", default=True,
              help="With --output: tag again the items whose earlier result has an 'error' (their old lines "
                   "are removed first), or keep those results as they are [default: retry].")
@click.option("--raw/--no-raw", default=False, help="With TEXT: also print the model's raw output.")
@click.option("--evidence", is_flag=True,
              help="Each result gets \"evidence\": per tag, the span of the item's text that states it "
                   "(null where the text does not: the model inferred it).")
@progress_option
@friendly_errors
def tag(text: str | None, vocab: str, input_path: Path | None, output_path: Path | None,
        description: str, category: str | None, model: str | None, engine: str | None, template: str | None,
        adapter: str | None, config: Path | None, base_url: str | None, batch_size: int | None,
        limit: int | None, shortlist_k: int | None, examples: Path | None, examples_k: int | None,
        option_scoring: str | None, option_scoring_max: int | None, min_confidence: float | None, id_field: str | None, title_field: str | None,
        description_field: str | None, category_field: str | None, retry_errors: bool, raw: bool,
        evidence: bool, progress: bool) -> None:
    """Tag one product (TEXT, its title) or a file of products (--input).

    Every tag in the output comes from the vocabulary; extractive facets (part numbers and
    the like) hold text copied from the item itself.
    """
    from tagsmith.items import FieldMap, Item, read_items
    from tagsmith.runtime import FileJob, RunSpec, build_tagger, count_lines, job_record, open_output
    from tagsmith.vocabulary import resolve_vocabularies

    if (text is None) == (input_path is None):
        raise click.UsageError("give either TEXT or --input FILE (not both)")
    expected = 1 if text is not None else count_lines(input_path) if input_path.is_file() else None
    if expected is not None and limit is not None:
        expected = min(expected, limit)
    spec = RunSpec(vocab=vocab, model=model, engine=engine, adapter=adapter, template=template,
                   config=str(config) if config else None, batch_size=batch_size, base_url=base_url,
                   shortlist_k=shortlist_k, examples=str(examples) if examples else None, examples_k=examples_k,
                   option_scoring=option_scoring, option_scoring_max=option_scoring_max,
                   min_confidence=min_confidence, evidence=evidence, expected_items=expected)
    # Everything cheap is checked before the model loads, so mistakes fail in a second.
    spec.settings()
    vocabularies = resolve_vocabularies(vocab)
    fields = FieldMap.with_overrides(id=id_field, title=title_field, description=description_field,
                                     category=category_field)
    store = None
    if input_path is not None:
        next(iter(read_items(input_path, fields)), None)  # opens and checks the format
        if output_path is not None:
            store = open_output(input_path, output_path, job_record(spec, vocabularies, input_path),
                                retry_errors=retry_errors)
    try:
        built = build_tagger(spec, vocabularies)
    except BaseException:
        if store:
            store.close()
        raise
    say(*built.plan.notes)
    if text is not None:
        result = built.tagger.tag(Item(id="1", title=text, description=description, category=category))
        out = result.to_dict()
        if not raw:
            out.pop("raw")
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        if result.error:
            sys.exit(1)
        return
    assert input_path is not None
    job = FileJob(built.tagger, input_path, read_items(input_path, fields), store, batch_size, limit)
    try:
        stats = job.run(progress=progress, note=say,
                        echo=lambda record: click.echo(json.dumps(record, ensure_ascii=False)))
    except KeyboardInterrupt:
        where = f"; re-run the same command to continue ({output_path})" if output_path else ""
        say(f"interrupted{where}")
        sys.exit(130)
    skipped = f", {stats.already_done} already done" if stats.already_done else ""
    dup = f", {stats.duplicate_ids} duplicate ids skipped" if stats.duplicate_ids else ""
    say(f"tagged {stats.tagged} items ({stats.errors} with errors{skipped}{dup})"
        + (f" -> {output_path}" if output_path else ""))
    if stats.tagged and stats.errors == stats.tagged:
        say("every item failed (see each line's 'error'); nothing was tagged")
        sys.exit(1)
