"""`tagsmith batch`: tag files on a Ray cluster (or a local Ray) into one resumable output."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tagsmith.cli.app import friendly_errors, main, say
from tagsmith.cli.options import progress_option, run_options


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--vocab", "-v", "vocab", required=True, metavar="PATH|NAME",
              help="Vocabulary file, folder of per-category files, or a built-in name such as 'wdc-pave'.")
@click.option("--output", "-o", "output_path", type=click.Path(path_type=Path), required=True,
              help="JSONL results, one line per item, with the job's record beside it (FILE.job), written "
                   "as batches come back. Re-running the same command skips ids already in it. A .parquet "
                   "output is a table made at the end from FILE.parquet.jsonl, which resumes the same way.")
@run_options
@click.option("--ray-address", default=None, metavar="auto|ADDRESS",
              help="Join this Ray cluster ('auto': the one `ray start` made on this machine) "
                   "[default: start a local Ray on this machine].")
@click.option("--actors", type=click.IntRange(1), default=None,
              help="Actors in the pool; each loads one engine and tags whole batches [default: one per "
                   "GPU share with --gpus-per-actor, else one per node: an engine on a CPU already uses "
                   "every core, so two on one machine only contend].")
@click.option("--gpus-per-actor", type=click.FloatRange(0), default=0.0, show_default=True,
              help="GPUs each actor holds (1 on GPU nodes: one vLLM per GPU).")
@click.option("--cpus-per-actor", type=click.FloatRange(0, min_open=True), default=None,
              help="CPUs each actor holds [default: 1, or a share that leaves the cluster half a CPU "
                   "to read the input with].")
@click.option("--batch-size", "-b", type=click.IntRange(1, 4096), default=None,
              help="Rows per actor call [default: 32].")
@click.option("--limit", type=click.IntRange(1), default=None, help="Tag at most this many (new) items.")
@click.option("--id-field", default=None, help="Input field with the item id [default: id, item_id, sku].")
@click.option("--title-field", default=None, help="Input field with the title [default: title, input_title, name].")
@click.option("--description-field", default=None,
              help="Input field with the description [default: description, input_description, body, text].")
@click.option("--category-field", default=None, help="Input field with the category [default: category].")
@click.option("--retry-errors/--keep-errors", default=True,
              help="Tag again the items whose earlier result has an 'error', or keep them [default: retry].")
@progress_option
@friendly_errors
def batch(inputs: tuple[str, ...], vocab: str, output_path: Path, model: str | None, engine: str | None,
          template: str | None, adapter: str | None, config: Path | None, ray_address: str | None, actors: int | None,
          gpus_per_actor: float, cpus_per_actor: float | None, batch_size: int | None, limit: int | None,
          id_field: str | None, title_field: str | None, description_field: str | None,
          category_field: str | None, retry_errors: bool, progress: bool) -> None:
    """Tag JSONL, CSV or Parquet files (or folders of them; local paths or any URI Ray Data reads)
    on a pool of Ray actors, each holding the same tagger `tagsmith tag` builds.

    Every row needs an id. Results stream into --output as each batch is done; a worker that dies
    has its batch retried, and re-running the same command continues after the ids written.
    """
    from tagsmith.items import FieldMap
    from tagsmith.parquet_results import results_beside
    from tagsmith.ray_tagging import RaySettings, run_batch
    from tagsmith.runtime import RunSpec

    spec = RunSpec(vocab=vocab, model=model, engine=engine, adapter=adapter, template=template,
                   config=str(config) if config else None, batch_size=batch_size)
    settings = RaySettings(actors=actors, gpus_per_actor=gpus_per_actor, cpus_per_actor=cpus_per_actor,
                           batch_size=batch_size or 0, address=ray_address)
    fields = FieldMap.with_overrides(id=id_field, title=title_field, description=description_field,
                                     category=category_field)
    try:  # progress: Ray Data's own bars, one per stage
        stats = run_batch(spec, list(inputs), output_path, settings=settings, fields=fields, limit=limit,
                          retry_errors=retry_errors, note=say, progress=progress)
    except KeyboardInterrupt:
        say(f"interrupted; re-run the same command to continue ({output_path})")
        sys.exit(130)
    skipped = f", {stats.already_done} already done" if stats.already_done else ""
    dup = f", {stats.duplicate_ids} duplicate ids skipped" if stats.duplicate_ids else ""
    table = f" ({stats.rows} rows; resumable from {results_beside(output_path)})" if stats.rows is not None else ""
    say(f"tagged {stats.tagged} items on {stats.actors} actor{'s' if stats.actors != 1 else ''} in {stats.seconds:.1f} s "
        f"({stats.errors} with errors{skipped}{dup}) -> {output_path}{table}")
    if stats.tagged and stats.errors == stats.tagged:
        say("every item failed (see each line's 'error')")
        sys.exit(1)
