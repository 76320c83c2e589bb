"""The eval matrix as one library call: `evaluate(EvalPlan(...)) -> Report`.

Every engine x model x adapter x template combination runs on the same items (the first
is the reference every other run is compared to, with a paired bootstrap interval), plus
the TF-IDF baseline trained on the rest of the data. `tagsmith eval`, training's validation
run and notebooks call this; the CLI only prints the report and saves it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagsmith.answers import AnswerShape
from tagsmith.config import Settings, TaggingSettings, load_settings
from tagsmith.engines import Engine, create_engine
from tagsmith.errors import InputError
from tagsmith.evaluation import report
from tagsmith.gold import Dataset, canonical_gold, load_dataset, select_categories, split
from tagsmith.evaluation.runner import RunConfig, RunResult, run, with_threshold
from tagsmith.prompts import PromptTemplate, load_template
from tagsmith.examples import ExampleIndex
from tagsmith.runtime import example_index, loaded_engine, plan_run, without_lora
from tagsmith.tagger import Tagger
from tagsmith.vocabulary import VocabularySet, resolve_vocabularies


DEFAULT_VOCAB = "wdc-pave-train"


@dataclass
class EvalPlan:
    """What to score, on what. Empty lists mean the settings' default (one run)."""

    data: str | Path
    #: None: the data's own vocabularies (ImplicitAVE's option lists) where it has them, else
    #: WDC-PAVE's values from its train split only (validation answers are not in the vocabulary)
    vocab: str | None = None
    split: str = "validation"
    categories: Sequence[str] = ()
    exclude_categories: Sequence[str] = ()
    models: Sequence[str] = ()
    templates: Sequence[str] = ()
    engines: Sequence[str] = ()
    adapters: Sequence[str] = ("auto",)
    baseline: bool = True
    #: also the zero-shot baseline: each closed facet's value nearest the item by sentence embedding
    embedding_baseline: bool = False
    llm: bool = True
    #: gold file whose items most similar to each scored item are shown as worked examples
    #: (never a scored item: their ids are left out of the pool), and how many per item: each
    #: count is a run of the matrix (0 = without examples), default the settings' examples_k.
    #: 'auto': when scoring the validation split, the train split of `data` (the labelled items
    #: the baseline trains on, which a user with that data has too); else none. None/'none': none.
    examples: str | Path | None = "auto"
    examples_k: Sequence[int] = ()
    limit: int | None = None
    batch_size: int | None = None
    config: str | Path | None = None
    #: where generations are cached per configuration and item (None: no cache)
    cache_dir: Path | None = None
    progress: bool = False


@dataclass
class Report:
    dataset: Dataset
    results: list[RunResult]
    comparisons: list[dict[str, Any]]
    markdown: str
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: per item id: the gold as scored (mapped to the vocabulary's canonical spelling)
    gold: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def run(self, name: str) -> RunResult:
        return next(r for r in self.results if r.config.name == name)

    def below(self, f1_percent: float) -> list[RunResult]:
        """LLM runs whose micro F1 (in %) is under the gate."""
        return [r for r in self.results if r.config.kind == "llm" and 100 * r.scores.f1 < f1_percent]

    def save(self, out_dir: Path) -> Path:
        """report.md, report.html, summary.json and per-run predictions in a new folder under out_dir."""
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{self.meta.get('data_name', 'eval')}"
        target = out_dir / stem
        n = 1
        while target.exists():  # two evals in one second must not overwrite each other
            n += 1
            target = out_dir / f"{stem}-{n}"
        items = [{"id": g.item.id, "title": g.item.title, "description": g.item.description,
                  "category": g.item.category, "gold": self.gold.get(g.item.id, g.gold)} for g in self.dataset.items]
        report.save(target, self.results, self.comparisons, self.markdown, self.meta, items)
        return target


def model_label(model_spec: str | None) -> str:
    """How reports name a model: a folder by its name (a merged adapter's folder is named for it)."""
    path = Path(model_spec) if model_spec else None
    return path.name if path is not None and path.is_dir() else str(model_spec)


@dataclass(frozen=True)
class LlmRun:
    """One column of the matrix on a given engine and model."""

    adapter: str | None
    prompt: PromptTemplate
    examples: ExampleIndex | None = None
    #: tags below this confidence are withheld (the plan's: the adapter's tuned threshold or the
    #: settings'); the run is then scored with it and, paired, without it
    min_confidence: float = 0.0
    #: how answers are written (the plan's: the adapter's shape or the settings')
    answer_shape: AnswerShape = "full"

    @property
    def key(self) -> tuple[str | None, str, int, float, str]:
        return (self.adapter, self.prompt.name, self.examples.k if self.examples else 0, self.min_confidence,
                self.answer_shape)


def llm_runs(engine_name: str, model_spec: str | None, runs: Sequence[LlmRun], dataset: Dataset,
             vocabularies: VocabularySet, settings: Settings, *, cache_dir: Path | None = None,
             progress: bool = False) -> list[RunResult]:
    """One run per (adapter, template, worked examples) on one (engine, model); the model loads
    once, and only if some item is not cached yet. An engine this process already holds
    (`load_tagger` in a notebook) is used and left open; one loaded here is closed at the end."""
    from tagsmith.model_store import folder_digest

    options = settings.engine_options(engine_name)  # as the cache keys have them: outputs are alike
    loaded = without_lora(engine_name, options, [r.adapter for r in runs])
    engine: Engine | None = loaded_engine(engine_name, model_spec, loaded)
    borrowed = engine is not None
    results = []
    for r in runs:
        adapter, prompt, examples = r.adapter, r.prompt, r.examples
        # generated without a threshold (it is applied to the stored answers below), so that a
        # threshold never changes what is cached and one generation gives both figures
        tagging = settings.tagging.model_copy(update={"min_confidence": 0.0, "answer_shape": r.answer_shape, **(
            {"examples": None} if examples is None else
            {"examples": settings.tagging.examples, "examples_k": examples.k})})
        cfg = RunConfig(
            name=(f"{model_label(model_spec)}{'+' + Path(adapter).name if adapter else ''}"
                  f"|{prompt.name}{f'+{examples.k}ex' if examples else ''}"
                  f"{'+filled' if r.answer_shape == 'filled' else ''}|{engine_name}"),
            kind="llm",
            settings={"model": model_spec, "template": prompt.name, "template_digest": prompt.digest,
                      "vocabularies": sorted(v.digest for v in vocabularies), "engine": engine_name,
                      "engine_options": options, "dtype": run_dtype(options),
                      "tagging": tagging.model_dump(), "adapter": adapter,
                      "examples": examples.digest if examples else None,
                      **({"adapter_digest": folder_digest(adapter)} if adapter and Path(adapter).is_dir() else {})})

        def predict(batch: Any, _run: LlmRun = r, _tagging: TaggingSettings = tagging) -> list[dict[str, Any]]:
            nonlocal engine
            if engine is None:
                engine = create_engine(engine_name, model_spec, **loaded)
            tagger = Tagger(engine, vocabularies, _run.prompt, _tagging, adapter=_run.adapter, examples=_run.examples,
                            keep_prompts=True, evidence=True)
            return [r.to_dict() for r in tagger.tag_batch([g.item for g in batch])]

        result = run(cfg, dataset, predict, cache_dir=cache_dir, vocabularies=vocabularies,
                     batch_size=settings.engine.batch_size or 32, progress=progress)
        if r.min_confidence > 0:
            results.append(with_threshold(result, dataset, vocabularies, r.min_confidence))
        results.append(result)
    if engine is not None and not borrowed:
        engine.close()
    return results


def run_dtype(options: dict[str, Any]) -> str:
    """The dtype a local engine will compute in here ('auto' resolved): bfloat16 and float32
    generations differ, so they must not share an eval cache."""
    import torch

    from tagsmith.device import pick_dtype

    return pick_dtype(str(options.get("dtype", "auto")), "cuda" if torch.cuda.is_available() else "cpu")


def baseline_run(train: Dataset, dataset: Dataset, vocabularies: VocabularySet) -> RunResult:
    from tagsmith.evaluation.baseline import TfidfBaseline

    model = TfidfBaseline(vocabularies).fit(train.items)
    cfg = RunConfig(name="tfidf-svm baseline", kind="baseline",
                    settings={"train": train.name, "n_train": len(train.items),
                              "vocabularies": sorted(v.digest for v in vocabularies)})
    return run(cfg, dataset, model.predict, cache_dir=None, vocabularies=vocabularies, batch_size=256,
               progress=False)


def embedding_run(dataset: Dataset, vocabularies: VocabularySet) -> RunResult:
    from tagsmith.evaluation.baseline import EmbeddingBaseline

    model = EmbeddingBaseline(vocabularies)
    cfg = RunConfig(name="embedding baseline", kind="baseline",
                    settings={"vocabularies": sorted(v.digest for v in vocabularies)})
    return run(cfg, dataset, model.predict, cache_dir=None, vocabularies=vocabularies, batch_size=256,
               progress=False)


def example_pool(plan: EvalPlan, full: Dataset) -> str | Path | None:
    """The worked-example file the plan's runs draw from ('auto' resolved; see EvalPlan)."""
    if plan.examples is None or str(plan.examples).lower() == "none":
        return None
    if str(plan.examples).lower() != "auto":
        if not Path(plan.examples).is_file():
            raise InputError(f"--examples {plan.examples}: no such file")
        return plan.examples
    if plan.split == "validation" and split(full, "train").items:
        return plan.data
    return None


def evaluate(plan: EvalPlan) -> Report:
    """Score every configuration of `plan` on the same items and compare them."""
    full = select_categories(load_dataset(plan.data), tuple(plan.categories), tuple(plan.exclude_categories))
    pool = example_pool(plan, full)
    settings = load_settings(plan.config, {"engine": {"batch_size": plan.batch_size},
                                           "tagging": {"examples": str(pool) if pool else None}})
    vocabularies = (resolve_vocabularies(plan.vocab) if plan.vocab else
                    full.vocabularies or resolve_vocabularies(DEFAULT_VOCAB))
    dataset = split(full, plan.split)
    if plan.limit:
        dataset = dataset.subset(dataset.name, dataset.items[:plan.limit])
    if not dataset.items:
        raise InputError(f"no items in {dataset.name}")
    prompts = [load_template(t) for t in plan.templates]
    notes: list[str] = []
    if pool and plan.llm and str(plan.examples).lower() == "auto":
        notes.append(f"note: worked examples from the train split of {plan.data} (--examples none for none)")
    results: list[RunResult] = []
    if plan.llm:
        # never show a scored item's gold; when scoring validation, no validation item's at all
        # (the baseline trains on the train split only, and so may the examples)
        hidden = [*dataset.ids, *(split(full, "validation").ids if plan.split == "validation" else [])]
        counts = plan.examples_k or ([settings.tagging.examples_k] if settings.tagging.examples else [0])
        per_k = {k: settings.model_copy(update={"tagging": settings.tagging.model_copy(update={"examples_k": k})})
                 for k in dict.fromkeys(counts)}
        demos = {k: example_index(s, vocabularies, exclude_ids=hidden) for k, s in per_k.items()}
        # (engine, model) -> each (adapter, template, examples) once; 'auto' may place an adapter per
        # engine, and per example count (an adapter trained with examples only runs with them)
        groups: dict[tuple[str, str | None], dict[tuple[str | None, str, int], LlmRun]] = {}
        for engine_spec in dict.fromkeys(plan.engines or (settings.engine.name,)):
            for model_spec in plan.models or (settings.model.name,):
                for spec in plan.adapters or ("auto",):
                    for k, index in demos.items():
                        p = plan_run(per_k[k], vocabularies, adapter=spec, engine=engine_spec, model=model_spec)
                        notes.extend(n for n in p.notes if n not in notes)
                        runs = groups.setdefault((p.engine, p.model), {})
                        for prompt in prompts or [p.template]:
                            r = LlmRun(p.adapter, prompt, index, p.min_confidence, p.answer_shape)
                            runs.setdefault(r.key, r)
        for (engine_name, model_spec), runs in groups.items():
            results.extend(llm_runs(engine_name, model_spec, list(runs.values()), dataset, vocabularies,
                                    settings, cache_dir=plan.cache_dir, progress=plan.progress))
    if plan.baseline:
        train = split(full, "train") if plan.split == "validation" else None
        if train is None or not train.items:
            notes.append("note: baseline skipped (it needs --split validation to train on the rest)")
        else:
            results.append(baseline_run(train, dataset, vocabularies))
    if plan.embedding_baseline:
        results.append(embedding_run(dataset, vocabularies))
    if not results:
        raise InputError("nothing to run (both the LLM runs and the baseline are off)")
    comps = report.comparisons(results, dataset.ids)
    md = report.markdown(results, comps, dataset.name, len(dataset.items))
    meta = {"dataset": dataset.name, "data_path": str(plan.data), "split": plan.split,
            "examples": str(pool) if pool else None,
            "n_items": len(dataset.items), "vocab": plan.vocab or (vocabularies.source if full.vocabularies else DEFAULT_VOCAB), "limit": plan.limit,
            "data_name": full.name.split(":")[-1].replace("/", "-"), "mode": dataset.mode}
    gold = {g.item.id: canonical_gold(g.gold, vocabularies, g.item.category) for g in dataset.items}
    return Report(dataset, results, comps, md, meta, notes, gold)
