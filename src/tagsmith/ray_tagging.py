"""Tagging on a Ray cluster with the same tagger as one machine.

Ray Data reads the input (JSONL, CSV or Parquet files or folders, local paths or any URI its
readers take), a pool of actors tags it with `map_batches` (each actor builds one tagger from
the same picklable `RunSpec` that `tagsmith tag` uses, so constrained answers, the post-check,
shortlists, adapters and option scoring are all the same), and the driver streams the results
into the same resumable JSONL output single-machine tagging writes (`ResultsFile`: the job
record, the one-writer lock, fsync per batch). So the guarantees are the same too: a re-run
skips the ids already written, a worker that dies has its batch retried by Ray (the actor is
restarted), nothing is written twice, and an item that fails is a row with `error` set.

Rows are handed between stages as JSON text, not as Arrow structs: items and results have
per-vocabulary shapes that an Arrow schema would have to unify across blocks.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagsmith.errors import InputError, TagsmithError
from tagsmith.items import FieldMap, item_from_record, jsonl_records
from tagsmith.parquet_results import is_parquet, results_beside, write_parquet
from tagsmith.results_store import ResultsFile
from tagsmith.runtime import RunSpec, TagStats, job_record, refuse_same_file

#: input suffixes and the Ray Data reader for each
#: (JSON lines are read as text and parsed here: Arrow's JSON reader would have to unify the
#: schema of records whose nested fields differ, such as gold labels per vocabulary)
READERS = {".jsonl": "read_text", ".ndjson": "read_text", ".csv": "read_csv", ".parquet": "read_parquet"}

LIGHT_CPUS = 0.1
#: bytes of input block per row of an actor call (a product's title and description)
BLOCK_BYTES_PER_ROW = 1024
#: CPUs kept free of actors so the read and resume-filter stages can always be scheduled
FEED_CPUS = 0.5


@dataclass(frozen=True)
class RaySettings:
    """How the work is spread: actors (one tagger each), what each holds, and the cluster."""

    #: actors in the pool (each loads one engine); more than the cluster can place wait.
    #: None = one per GPU share where actors hold GPUs, else one per node (an engine on a CPU
    #: already uses every core: two on one node only contend)
    actors: int | None = None
    #: GPUs per actor (0 on CPU nodes; 1 puts one vLLM per GPU)
    gpus_per_actor: float = 0.0
    #: CPUs per actor; None = one each, less where the cluster is too small for that
    cpus_per_actor: float | None = None
    #: rows per actor call; 0 = 32 (small blocks are written soon; a vLLM actor keeps its batch
    #: fuller with more, README, Engines)
    batch_size: int = 0
    #: an existing cluster ('auto' = the one `ray start` made here), else a local Ray starts
    address: str | None = None

    def __post_init__(self) -> None:
        if ((self.actors is not None and self.actors < 1) or self.gpus_per_actor < 0 or self.batch_size < 0
                or (self.cpus_per_actor is not None and self.cpus_per_actor <= 0)):
            raise InputError("actors must be >= 1, GPUs >= 0, CPUs > 0 and batch size >= 0")


@dataclass
class RayStats(TagStats):
    actors: int = 0
    seconds: float = 0.0
    #: rows of a Parquet output (every result so far, this run's and earlier runs'); None for JSONL
    rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def reader_for(paths: Sequence[str]) -> str:
    """The Ray Data reader for the inputs (all of one format; a folder by the files in it)."""
    kinds = set()
    for spec in paths:
        p = Path(spec)
        if "://" not in spec and p.is_dir():
            kinds |= {READERS[f.suffix.lower()] for f in p.iterdir() if f.suffix.lower() in READERS}
        elif Path(spec.split("?")[0]).suffix.lower() in READERS:
            kinds.add(READERS[Path(spec.split("?")[0]).suffix.lower()])
        else:
            raise InputError(f"{spec}: unsupported input (use .jsonl, .csv or .parquet files or a folder of them)")
        if "://" not in spec and not p.exists():
            raise InputError(f"{spec}: input not found")
    if len(kinds) != 1:
        raise InputError(f"inputs mix formats or hold none ({', '.join(sorted(kinds)) or 'no known files'})")
    return kinds.pop()


def to_records(batch: Any) -> list[dict[str, Any]]:
    """A pandas batch as plain records (NaN, a missing cell, becomes None); JSON lines read as
    text (one `text` column) are parsed."""
    if list(batch.columns) == ["text"]:  # (a bad line is named by its place in the block Ray read)
        return [record for _, record in jsonl_records(batch["text"], Path("input block"))]
    return [{k: (None if v != v else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in batch.to_dict("records")]


def pending(done: frozenset[str], fields: FieldMap) -> Callable[[Any], Any]:
    """The first stage: input rows as (id, record as JSON text), less the ids an earlier run
    wrote (resume). A row without an id is refused: across workers there is no line number
    to name it by, and without an id a re-run could not tell it was done."""

    def rows(batch: Any) -> Any:
        import pandas as pd

        ids, records = [], []
        for record in to_records(batch):
            item = item_from_record(record, fields, "")
            if not item.id:
                raise InputError(f"an input row has no id (looked for {', '.join(fields.id)}; name the column "
                                 "with --id-field): a distributed run finds finished items by id")
            if item.id not in done:
                ids.append(item.id)
                records.append(json.dumps(record, ensure_ascii=False, default=str))
        return pd.DataFrame({"id": ids, "record": records})

    return rows


class TaggerActor:
    """One tagger per actor, built once from the spec; called on batches of pending rows."""

    def __init__(self, spec: RunSpec, fields: FieldMap) -> None:
        from tagsmith.runtime import build_tagger

        self.tagger = build_tagger(spec).tagger
        self.fields = fields

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        items = [item_from_record(json.loads(r), self.fields, i) for i, r in zip(batch["id"], batch["record"],
                                                                                 strict=True)]
        results = self.tagger.tag_batch(items)
        return pd.DataFrame({"id": [r.id for r in results],
                             "result": [json.dumps(r.to_dict(), ensure_ascii=False) for r in results]})


def user_error(exc: BaseException) -> InputError | None:
    """The InputError a worker raised, out of Ray's task errors (which may carry it only as
    the remote traceback's text); None if it was something else."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, InputError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    found = re.search(r"tagsmith\.errors\.InputError: (.+)", str(exc))
    return InputError(found.group(1).strip()) if found else None


def check_first_row(ds: Any, fields: FieldMap) -> None:
    """The usual mistake (no id column) found on one row, before the job starts."""
    rows = ds.limit(1).take(1)
    if rows:
        import pandas as pd

        pending(frozenset(), fields)(pd.DataFrame(rows))


def connect(settings: RaySettings) -> None:
    """Join the cluster at `address`, or start a local Ray sized to this machine."""
    import ray

    if ray.is_initialized():
        return
    env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("TAGSMITH_")}}
    if settings.address:
        ray.init(address=settings.address, runtime_env=env, log_to_driver=False, logging_level="warning")
    else:
        ray.init(include_dashboard=False, runtime_env=env, log_to_driver=False, logging_level="warning")


def actor_count(settings: RaySettings, nodes: int, cluster_gpus: float) -> int:
    """The pool size: as asked, else one actor per GPU share, else one per node."""
    if settings.actors is not None:
        return settings.actors
    if settings.gpus_per_actor:
        return max(1, int(cluster_gpus // settings.gpus_per_actor))
    return max(1, nodes)


def actor_cpus(settings: RaySettings, cluster_cpus: float, actors: int) -> float:
    """CPUs per actor that leave the feeding stages room. Actors that held every CPU would wait
    forever for input that no read task could be scheduled to produce, so the default shares
    what the cluster has (one each at most), and an explicit share that leaves nothing is refused."""
    room = cluster_cpus - FEED_CPUS
    if settings.cpus_per_actor is None:
        if room <= 0:
            raise InputError(f"the Ray cluster has {cluster_cpus:g} CPUs: too few to feed and run actors")
        return round(min(1.0, room / actors), 3)
    if actors * settings.cpus_per_actor > room:
        raise InputError(f"{actors} actors x {settings.cpus_per_actor:g} CPUs leave no CPU for reading "
                         f"the input on this {cluster_cpus:g}-CPU cluster: use fewer actors or CPUs per actor")
    return settings.cpus_per_actor


def tag_dataset(spec: RunSpec, inputs: Sequence[str], store: ResultsFile, *, settings: RaySettings = RaySettings(),
                fields: FieldMap = FieldMap(), limit: int | None = None,
                on_batch: Callable[[int], None] | None = None, progress: bool = False) -> RayStats:
    """Tag `inputs` on Ray into `store`, skipping ids it already holds. Blocks until done;
    results are written (and fsync'ed) as each batch comes back."""
    import time

    check_ray()
    import ray

    started = time.perf_counter()
    reader = reader_for(inputs)
    connect(settings)
    cluster = ray.cluster_resources()
    actors = actor_count(settings, sum(1 for n in ray.nodes() if n.get("Alive")), float(cluster.get("GPU", 0)))
    cpus = actor_cpus(settings, float(cluster.get("CPU", 0)), actors)
    rows = settings.batch_size or 32
    ctx = ray.data.DataContext.get_current()
    before = (ctx.enable_progress_bars, ctx.target_max_block_size)  # put back after: a notebook's later jobs
    ctx.enable_progress_bars = progress  # Ray Data's own bars, per stage
    # small blocks (about one actor call's rows of product text): an actor hands back, and the
    # driver writes, a block at a time, and Ray Data's default blocks hold tens of thousands of
    # items, so a crash would lose hours and progress would come in leaps; an explicit
    # repartition would be a stage of a whole CPU per task, which a small machine whose CPUs the
    # actors hold could never schedule
    ctx.target_max_block_size = max(BLOCK_BYTES_PER_ROW * rows, 32 * 1024)
    # reading and the resume filter are light: a small CPU share each, so that actors holding
    # every CPU of a small machine never starve the stages that feed them
    read = ds = getattr(ray.data, reader)(list(inputs), num_cpus=LIGHT_CPUS)
    ds = ds.map_batches(pending(frozenset(store.done), fields), batch_format="pandas", num_cpus=LIGHT_CPUS)
    if limit is not None:
        ds = ds.limit(limit)
    ds = ds.map_batches(
        TaggerActor, fn_constructor_args=(spec, fields), batch_format="pandas", batch_size=rows,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=settings.gpus_per_actor or None, num_cpus=cpus)  # Ray Data restarts a dead actor and retries its batch
    stats = RayStats(actors=actors, already_done=len(store.done))
    written: set[str] = set(store.done)
    try:
        check_first_row(read, fields)
        for batch in ds.iter_batches(batch_format="pandas", batch_size=None):
            records = []
            for item_id, text in zip(batch["id"], batch["result"], strict=True):
                if item_id in written:  # a repeated id in the input: tagged once, as on one machine
                    stats.duplicate_ids += 1
                    continue
                written.add(item_id)
                records.append(json.loads(text))
            if records:
                store.write(records)
                stats.tagged += len(records)
                stats.errors += sum(1 for r in records if r.get("error"))
                if on_batch:
                    on_batch(len(records))
    except Exception as exc:
        cause = user_error(exc)
        if cause is not None:
            raise InputError(str(cause)) from None
        raise
    finally:
        ctx.enable_progress_bars, ctx.target_max_block_size = before
    stats.seconds = time.perf_counter() - started
    return stats


def check_ray() -> None:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise TagsmithError("Ray is not installed: pip install 'ray[data]' (or tagsmith's 'ray' extra)") from None


def run_batch(spec: RunSpec, inputs: Sequence[str], output: str | Path, *, settings: RaySettings = RaySettings(),
              fields: FieldMap = FieldMap(), limit: int | None = None, retry_errors: bool = True,
              on_batch: Callable[[int], None] | None = None, note: Callable[[str], None] = print,
              progress: bool = False) -> RayStats:
    """`tagsmith batch`: check everything cheap (vocabulary, settings, inputs, the output and its
    job record) before Ray starts, then tag on Ray into the resumable output. The run's plan
    (engine, adapter, template) is made here once and told through `note`: a merged adapter is
    then built before the actors start, not by each of them at once."""
    from tagsmith.runtime import plan_run
    from tagsmith.vocabulary import resolve_vocabularies

    check_ray()
    run_settings = spec.settings()
    vocabularies = resolve_vocabularies(spec.vocab)
    reader_for(inputs)
    if Path(output).suffix.lower() not in (".jsonl", ".ndjson", ".parquet"):
        raise InputError(f"{output}: the output is JSON lines (.jsonl) or Parquet (.parquet)")
    # a Parquet output is made at the end from resumable JSON lines beside it
    lines = results_beside(output) if is_parquet(output) else Path(output)
    for source in inputs:
        for target in {lines, Path(output)}:
            if "://" not in source:
                refuse_same_file(Path(source), target)
    store = ResultsFile(lines, job=job_record(spec, vocabularies, list(inputs)), retry_errors=retry_errors)
    try:
        for line in plan_run(run_settings, vocabularies, adapter=spec.adapter, template=spec.template).notes:
            note(line)
        stats = tag_dataset(spec, inputs, store, settings=settings, fields=fields, limit=limit, on_batch=on_batch,
                            progress=progress)
    finally:
        store.close()
    if is_parquet(output):
        stats.rows = write_parquet(lines, output)
    return stats
