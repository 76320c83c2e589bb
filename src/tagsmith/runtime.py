"""Building a tagger from plain settings, and tagging a stream of items into a sink.

Everything that runs a model goes through here: `tagsmith tag`, `retag`, `eval`, training's
validation run, the benchmarks and the Python API. `RunSpec` is plain data (it pickles), so
a Ray worker or a service builds the same tagger from it as the CLI does. `plan_run` is the
one place that resolves which engine, model, adapter and template a run uses.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from tagsmith.answers import AnswerShape
from tagsmith.adapters import AUTO, NONE, AdapterChoice, choose_adapter, read_manifest, trained_shape
from tagsmith.config import Settings, TaggingSettings, load_settings
from tagsmith.engines import Engine, create_engine, reads_answers, resolve_engine_name
from tagsmith.errors import InputError
from tagsmith.examples import ExampleIndex, load_examples
from tagsmith.items import Item
from tagsmith.prompts import PromptTemplate, load_template
from tagsmith.results_store import JobRecord, ResultsFile
from tagsmith.tagger import Tagger, TagResult
from tagsmith.vocabulary import VocabularySet, resolve_vocabularies

log = logging.getLogger("tagsmith")


@dataclass(frozen=True)
class RunSpec:
    """What a tagging run uses, as plain values (None = the setting's default).

    `adapter` is 'auto' (the shipped adapter for this model and vocabulary, if any), 'none',
    a shipped adapter's name or a folder; `template` a name from prompts/ or a .jinja path;
    `config` a TOML settings file. Options given here override the file."""

    vocab: str
    model: str | None = None
    engine: str | None = None
    adapter: str | None = None
    template: str | None = None
    config: str | None = None
    batch_size: int | None = None
    base_url: str | None = None
    shortlist_k: int | None = None
    #: gold file whose nearest items are shown as worked examples, and how many per item
    examples: str | None = None
    examples_k: int | None = None
    #: where option scoring answers short closed facets ("off", "closed", "all"), and how short
    option_scoring: str | None = None
    option_scoring_max: int | None = None
    #: tags below this confidence are withheld (None: the adapter's tuned threshold, if any)
    min_confidence: float | None = None
    #: "full", "filled" or "auto" (None: the settings'; auto = the adapter's shape, answers.py)
    answer_shape: str | None = None
    #: each result carries the text span behind every tag (output only: not a tagging setting)
    evidence: bool = False
    #: how many items the run will tag, when known: 'auto' starts the quickest engine for a few
    expected_items: int | None = None

    def settings(self) -> Settings:
        return load_settings(self.config, {
            "model": {"name": self.model},
            "engine": {"name": self.engine, "batch_size": self.batch_size,
                       "openai": {"base_url": self.base_url}},
            "tagging": {"template": self.template, "shortlist_k": self.shortlist_k,
                        "examples": self.examples, "examples_k": self.examples_k,
                        "option_scoring": self.option_scoring,
                        "option_scoring_max": self.option_scoring_max, "min_confidence": self.min_confidence,
                        "answer_shape": self.answer_shape}})


@dataclass
class RunPlan:
    """What will actually run, and what the user should be told about the choices made."""

    engine: str
    #: the model handed to the engine: the asked-for spec, or a merged adapter's folder
    model: str | None
    #: the adapter handed to the engine per request (None: bare model, or merged into `model`)
    adapter: str | None
    template: PromptTemplate
    choice: AdapterChoice
    notes: list[str] = field(default_factory=list)
    #: tags below this confidence are withheld: the settings' threshold, else the one tuned for
    #: the adapter (its manifest's `min_confidence`), else 0
    min_confidence: float = 0.0
    #: how answers are written: the settings' shape, else the one the adapter was trained in
    answer_shape: AnswerShape = "full"

    def tagging(self, settings: TaggingSettings) -> TaggingSettings:
        """`settings` with what the plan decided in place of what they left open."""
        return settings.model_copy(update={"min_confidence": self.min_confidence, "answer_shape": self.answer_shape})


def choose_run_adapter(engine_name: str, model_spec: str | None, vocabularies: VocabularySet,
                       spec: str | None, notes: list[str], examples: bool = False) -> AdapterChoice:
    """Resolve --adapter for this engine and model (`examples`: the run shows worked examples);
    explanations go to `notes`."""
    if engine_name == "openai":  # adapters live on the server, addressed by name
        return AdapterChoice(None if (spec or AUTO).lower() in (AUTO, NONE) else spec)
    from tagsmith.model_store import model_id

    choice = choose_adapter(spec, model_id(model_spec), vocabularies, examples=examples)
    notes.extend(f"warning: {w}" for w in choice.warnings)
    if choice.path and spec in (None, AUTO):
        trained_k = ((read_manifest(choice.path) or {}).get("examples") or {}).get("k")
        why = (f"trained for this model and vocabulary{f' with {trained_k} worked examples per prompt' if trained_k else ''}"
               if choice.trained_on_vocabulary else
               "trained for this model on these categories, whose vocabularies have changed since"
               if choice.same_categories else
               "the general tagging adapter, trained on many small vocabularies to read a facet's options"
               if choice.general else
               "trained for this model on other vocabularies: it carries the task to new ones")
        notes.append(f"using adapter {choice.name} ({why}; --adapter none for the bare model)")
    return choice


def placement(engine_spec: str, model_spec: str | None, adapter: str | None,
              notes: list[str], *, few: bool = False) -> tuple[str, str | None, str | None]:
    """(engine, model, adapter) a run uses. 'auto' is vLLM where it is installed, except for a
    job of a few items (`few`), which gets transformers: it starts in seconds where vLLM takes
    a while. Without a GPU 'auto' runs a local adapter merged into the weights (`tagsmith model
    merge`, built once and cached), because both engines apply LoRA per token slowly on a CPU
    (README, Engines, has the figures)."""
    name = resolve_engine_name(engine_spec)
    if engine_spec == "auto" and few and name == "vllm":
        name = "transformers"
        notes.append("note: a few items: the transformers engine (it starts fastest; --engine vllm to override)")
    if adapter and Path(adapter).is_dir() and name in ("vllm", "transformers"):
        import torch

        if not torch.cuda.is_available():
            if engine_spec != "auto":  # asked for by name: kept as asked, but said what it costs
                notes.append(f"note: no GPU: the {name} engine applies adapter {Path(adapter).name} per token, "
                             "which is slow on a CPU; --engine auto runs it merged into the model's weights")
                return name, model_spec, adapter
            from tagsmith.model_store import merge_adapter, resolve_model

            notes.append(f"note: no GPU: running adapter {Path(adapter).name} merged into the model's weights "
                         "(LoRA applied per token is slow on a CPU)")
            return name, merge_adapter(resolve_model(model_spec), adapter).path, None
    return name, model_spec, adapter


def run_template(choice: AdapterChoice, asked: str | None, configured: str, notes: list[str]) -> PromptTemplate:
    """An adapter brings the template it was trained with unless one is asked for (then a
    warning: the adapter never saw that prompt)."""
    if asked is None and choice.template:
        return load_template(choice.template)
    prompt = load_template(asked or configured)
    if choice.path and choice.template and prompt.name != choice.template:
        notes.append(f"warning: adapter {choice.name} was trained with template {choice.template!r}, "
                     f"not {prompt.name!r}")
    return prompt


def plan_run(settings: Settings, vocabularies: VocabularySet, *, adapter: str | None = None,
             template: str | None = None, engine: str | None = None, model: str | None = None,
             expected_items: int | None = None) -> RunPlan:
    """The one place a run's engine, model, adapter and template are decided.

    `engine`/`model` default to the settings'; `template` None means the adapter's own (or the
    settings' template for the bare model)."""
    engine_spec = engine or settings.engine.name
    model_spec = model or settings.model.name
    notes: list[str] = []
    shows_examples = bool(settings.tagging.examples and settings.tagging.examples_k)
    choice = choose_run_adapter(resolve_engine_name(engine_spec), model_spec, vocabularies, adapter, notes,
                                examples=shows_examples)
    few = expected_items is not None and expected_items <= settings.engine.few_items
    name, run_model, run_adapter = placement(engine_spec, model_spec, choice.path, notes, few=few)
    prompt = run_template(choice, template, settings.tagging.template, notes)
    trained_k = ((read_manifest(choice.path) or {}).get("examples") or {}).get("k") if choice.path else None
    if trained_k and not shows_examples:
        notes.append(f"warning: adapter {choice.name} was trained with {trained_k} worked examples per prompt; "
                     "pass --examples FILE (labelled items) to tag the way it was trained")
    reads = settings.tagging.decoded_confidence and reads_answers(name)
    return RunPlan(name, run_model, run_adapter, prompt, choice, notes,
                   run_threshold(settings.tagging.min_confidence, choice, model_spec, vocabularies, reads, notes),
                   run_shape(settings.tagging.answer_shape, choice, notes))


def run_shape(asked: str, choice: AdapterChoice, notes: list[str]) -> AnswerShape:
    """The answer shape of a run: the one asked for, else the one its adapter was trained in
    (its manifest's `answer_shape`; adapters from before the setting wrote the full shape).
    An adapter asked to write another shape than it learnt gets a warning, as a template does."""
    trained: AnswerShape | None = None
    if choice.path:
        trained = trained_shape(choice.path)  # type: ignore[assignment]
    if asked == "auto":
        return trained or "full"
    if trained and asked != trained:
        notes.append(f"warning: adapter {choice.name} was trained to write the {trained!r} answer shape, "
                     f"not {asked!r}")
    return asked  # type: ignore[return-value]


def run_threshold(asked: float | None, choice: AdapterChoice, model_spec: str | None,
                  vocabularies: VocabularySet, reads: bool, notes: list[str]) -> float:
    """The confidence threshold of a run: the one asked for, else the one tuned for its adapter
    (`tagsmith train` stores the F1-best threshold of its validation run in the manifest) where
    the run's vocabularies are those it was tuned on (or their categories): on other
    vocabularies the confidences mean other things (an option list's softmax, say). A tuned
    threshold was chosen on decoded tags' confidences: a run whose tags get none (`reads`
    False) would withhold nothing, and says nothing of it."""
    if asked is not None:
        return asked
    if not reads:
        return 0.0
    from tagsmith.adapters import same_categories, trained_for
    from tagsmith.model_store import model_id

    manifest = (read_manifest(choice.path) or {}) if choice.path else {}
    tuned = manifest.get("min_confidence")
    if not tuned or not (trained_for(manifest, model_id(model_spec), vocabularies)
                         or same_categories(manifest, vocabularies)):
        return 0.0
    notes.append(f"note: withholding tags below confidence {tuned:g}, the threshold tuned for adapter "
                 f"{choice.name} (--min-confidence 0 keeps every tag)")
    return float(tuned)


#: Engines built by `build_tagger` in this process, by (engine, model, options): re-running a
#: notebook cell or tagging twice in one service reuses the loaded model instead of loading a
#: second copy (on a GPU a second vLLM would not even fit beside the first).
_SHARED: dict[str, Engine] = {}


def _key(name: str, model: str | None, options: dict[str, Any]) -> str:
    return json.dumps([name, model, options], sort_keys=True, default=str)


def loaded_engine(name: str, model: str | None, options: dict[str, Any]) -> Engine | None:
    """The shared engine for (name, model, options) if this process has loaded it already (and
    nobody closed it)."""
    engine = _SHARED.get(_key(name, model, options))
    return engine if engine is not None and not engine.closed else None


def without_lora(engine: str, options: dict[str, Any], adapters: Sequence[str | None]) -> dict[str, Any]:
    """vLLM options for runs that send no adapter per request (none, or one merged into the
    weights): LoRA support off, which vLLM would otherwise reserve memory and compute for."""
    if engine == "vllm" and not any(adapters):
        return {**options, "enable_lora": False}
    return options


def shared_engine(name: str, model: str | None, options: dict[str, Any]) -> Engine:
    """The engine for (name, model, options), loaded on first use and kept for this process
    (loaded again if a caller closed it)."""
    key = _key(name, model, options)
    if key not in _SHARED or _SHARED[key].closed:
        _SHARED[key] = create_engine(name, model, **options)
    return _SHARED[key]


def close_shared_engines() -> None:
    """Free every engine `shared_engine` holds (a service shutting down, a test session ending)."""
    while _SHARED:
        _SHARED.popitem()[1].close()


@dataclass
class BuiltTagger:
    tagger: Tagger
    plan: RunPlan
    settings: Settings


def build_tagger(spec: RunSpec, vocabularies: VocabularySet | None = None,
                 engine: Engine | None = None) -> BuiltTagger:
    """A ready tagger for `spec` (its engine loaded), with the plan that says what runs.

    Pass `vocabularies` when they are already loaded, `engine` to use one you built. Otherwise
    the engine is loaded once per process and reused by later calls with the same engine, model
    and options (`close_shared_engines` frees them); the fake engine is always built anew."""
    settings = spec.settings()
    vocabularies = vocabularies if vocabularies is not None else resolve_vocabularies(spec.vocab)
    plan = plan_run(settings, vocabularies, adapter=spec.adapter, template=spec.template,
                    expected_items=spec.expected_items)
    if engine is None:
        options = without_lora(plan.engine, settings.engine_options(plan.engine), [plan.adapter])
        engine = (create_engine(plan.engine, plan.model, **options) if plan.engine == "fake"
                  else shared_engine(plan.engine, plan.model, options))
    tagger = Tagger(engine, vocabularies, plan.template, plan.tagging(settings.tagging), adapter=plan.adapter,
                    examples=example_index(settings, vocabularies), evidence=spec.evidence,
                    attributes=category_attributes(spec.vocab))
    return BuiltTagger(tagger, plan, settings)


def category_attributes(vocab: str) -> Any:
    """For a taxonomy (`--vocab shopify`), the step after the category: its attributes."""
    from tagsmith.taxonomy import CategoryAttributes, is_taxonomy, load_taxonomy

    return CategoryAttributes(load_taxonomy(str(vocab))) if is_taxonomy(vocab) else None


def example_index(settings: Settings, vocabularies: VocabularySet,
                  exclude_ids: Sequence[str] = ()) -> ExampleIndex | None:
    """The worked-example index the settings ask for ([tagging] examples), or None."""
    t = settings.tagging
    if not t.examples or not t.examples_k:
        return None
    return load_examples(t.examples, vocabularies, k=t.examples_k, settings=t, exclude_ids=exclude_ids)


def load_tagger(vocab: str, **options: Any) -> Tagger:
    """The Python API's short way: `load_tagger("wdc-pave", engine="transformers")`.

    Takes the fields of `RunSpec`; the plan's notes (which adapter, merges) are logged to the
    "tagsmith" logger instead of printed."""
    built = build_tagger(RunSpec(vocab=vocab, **options))
    for note in built.plan.notes:
        log.info(note)
    return built.tagger


# --------------------------------------------------------------------------- streaming


@dataclass
class TagStats:
    tagged: int = 0
    errors: int = 0
    already_done: int = 0
    duplicate_ids: int = 0


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def tag_stream(tagger: Tagger, items: Iterable[Item], sink: Callable[[Sequence[TagResult]], None], *,
               done: set[str] | frozenset[str] = frozenset(), batch_size: int | None = None,
               limit: int | None = None, progress: bool = False, total: int | None = None) -> TagStats:
    """Tag `items` batch by batch and hand each batch's results to `sink` as soon as it is done.

    Ids in `done` are skipped (resume), a repeated id is tagged once, `limit` caps how many are
    tagged. A crash loses at most the batch in flight when the sink persists each call."""
    from tqdm import tqdm

    stats = TagStats()
    seen: set[str] = set()

    def todo() -> Iterator[Item]:
        for item in items:
            if item.id in seen:
                stats.duplicate_ids += 1
                continue
            seen.add(item.id)
            if item.id in done:
                stats.already_done += 1
            else:
                yield item

    stream = islice(todo(), limit) if limit is not None else todo()
    bar = tqdm(total=total, unit="item", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for batch in batches(stream, batch_size or tagger.engine.batch_size):
            results = tagger.tag_batch(batch)
            sink(results)
            stats.tagged += len(results)
            stats.errors += sum(1 for r in results if r.error)
            bar.update(len(results))
    finally:
        bar.close()
    return stats


def refuse_same_file(source: Path, output: Path) -> None:
    """An output that is an input would be appended to (and its items taken for finished work)."""
    if output.exists() and source.exists() and output.samefile(source):
        raise InputError(f"{output}: the output is the input file; choose another --output")


def count_lines(path: Path) -> int | None:
    """Items in a JSONL/CSV file, for a progress bar's total (None if it cannot be read)."""
    try:
        with path.open("rb") as handle:
            n = sum(1 for line in handle if line.strip())
        return n - 1 if path.suffix.lower() == ".csv" else n
    except OSError:
        return None


def input_key(spec: str | Path) -> str:
    """An input as a job record names it: a local path made absolute, a URI as it is."""
    return str(spec) if "://" in str(spec) else str(Path(spec).resolve())


def job_record(spec: RunSpec, vocabularies: VocabularySet, input_path: str | Path | Sequence[str | Path]) -> JobRecord:
    """What makes a file job's results one job's: the input(s) and everything that decides the
    tags (not the engine, batch size or workers, which a resumed run may change)."""
    settings = spec.settings()
    inputs = (input_key(input_path) if isinstance(input_path, (str, Path)) else
              input_key(input_path[0]) if len(input_path) == 1 else [input_key(i) for i in input_path])
    return {"input": inputs,
            "vocabularies": {v.name: v.digest for v in vocabularies},
            "model": settings.model.name, "adapter": spec.adapter or AUTO, "template": spec.template,
            "tagging": settings.tagging.model_dump(mode="json", exclude={"template"})}


def open_output(input_path: Path, output_path: Path, job: JobRecord | None = None, *,
                retry_errors: bool = True) -> ResultsFile:
    """The output of a file job, checked before any model loads: not the input, tagsmith
    results of this job only, one writer. With `retry_errors` errored results are removed so
    that this run tags their items again."""
    refuse_same_file(input_path, output_path)
    return ResultsFile(output_path, job=job, retry_errors=retry_errors)


@dataclass
class FileJob:
    """Tagging one input file into a resumable JSONL output (`open_output`) or into a callback."""

    tagger: Tagger
    input_path: Path
    items: Iterable[Item]
    store: ResultsFile | None = None
    batch_size: int | None = None
    limit: int | None = None

    def run(self, *, progress: bool = False, echo: Callable[[dict[str, Any]], None] | None = None,
            note: Callable[[str], None] = log.info) -> TagStats:
        """Tag what the output does not hold yet (the store is closed at the end). Without an
        output, each record goes to `echo`."""
        store = self.store
        done = set(store.done) if store else set()
        if store and store.repaired:
            note(f"note: {store.path} ended in a partly written line; it was removed")
        if store and store.retrying:
            note(f"note: {store.retrying} items that failed before are tagged again")
        total = count_lines(self.input_path)
        if total is not None:
            total = max(0, total - len(done))
            if self.limit is not None:
                total = min(total, self.limit)

        def sink(results: Sequence[TagResult]) -> None:
            records = [r.to_dict() for r in results]
            if store:
                store.write(records)
            elif echo:
                for r in records:
                    echo(r)

        try:
            return tag_stream(self.tagger, self.items, sink, done=done, batch_size=self.batch_size,
                              limit=self.limit, progress=progress, total=total)
        finally:
            if store:
                store.close()
