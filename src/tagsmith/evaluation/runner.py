"""Run one configuration over a gold dataset and score it.

Generations are cached on disk: one append-only JSONL per configuration (model, adapter,
template text, vocabularies, engine settings), one line per item keyed by the item's
content. Re-running an unchanged configuration costs nothing, changing a template
re-runs only that template's column, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tagsmith.confidence import withhold
from tagsmith.gold import Dataset, GoldItem, canonical_gold
from tagsmith.parsing import Reason
from tagsmith.evaluation.calibration import Confidence, confidence_report
from tagsmith.evaluation.hierarchy import HierarchyScores, run_hierarchy_scores
from tagsmith.evaluation.metrics import Scores, SlotScore, aggregate, score_slot
from tagsmith.results_store import ResultsFile
from tagsmith.vocabulary import VocabularySet

#: Predicts tags for a batch of gold items (the gold is not shown to it): returns per item
#: a dict with at least "tags", and optionally "raw", "rejected", "error".
Predictor = Callable[[Sequence[GoldItem]], list[dict[str, Any]]]


@dataclass
class RunConfig:
    """What identifies a run; its hash keys the generation cache."""

    name: str
    kind: str  # "llm" or "baseline"
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        payload = json.dumps({"kind": self.kind, **self.settings}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class RunResult:
    config: RunConfig
    dataset: str
    scores: Scores
    slots: list[SlotScore]
    predictions: dict[str, dict[str, Any]]
    rates: dict[str, float]
    seconds_per_item: float
    items_per_second: float
    cached_items: int
    #: calibration, AUROC and threshold curve of option-scored tags (None: no tag had a confidence)
    confidence: Confidence | None = None
    #: leaf and depth accuracy, hierarchical P/R/F1 of each hierarchical facet (a category tree)
    hierarchy: list[HierarchyScores] = field(default_factory=list)


def item_key(g: GoldItem) -> str:
    i = g.item
    return hashlib.sha256(json.dumps([i.id, i.title, i.description, i.category]).encode()).hexdigest()[:20]


#: rejection codes (parsing.Reason) of answers a constrained decoder can never produce
OOV_CODES = {r.name.lower() for r in Reason if r.out_of_vocabulary}


def _rates(predictions: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Out-of-vocabulary and duplicate shares of all answered values, and the share of
    unparseable answers. All 0 when decoding is constrained; a server that ignores the
    schema shows up here. Counted from what the parser recorded, not by re-parsing."""
    values = oov = dup = unparseable = 0
    for p in predictions:
        if str(p.get("error") or "").startswith(("unparseable", "output is not")):
            unparseable += 1
        rejected = p.get("rejected") or []
        duplicates = int(p.get("duplicates") or 0)
        values += sum(len(v) for v in (p.get("tags") or {}).values()) + len(rejected) + duplicates
        dup += duplicates
        oov += sum(1 for r in rejected if r.get("code") in OOV_CODES)
    return {"oov_rate": oov / max(1, values), "duplicate_rate": dup / max(1, values),
            "unparseable_rate": unparseable / max(1, len(predictions))}


def with_threshold(result: RunResult, dataset: Dataset, vocabularies: VocabularySet | None,
                   threshold: float, bootstrap: int = 1000) -> RunResult:
    """The same run with tags below `threshold` withheld, as the tagger withholds them: one
    generation scores a configuration with and without its confidence threshold."""
    predictions = {}
    for item_id, p in result.predictions.items():
        tags, withheld = withhold(p.get("tags") or {}, p.get("scores") or {}, threshold)
        predictions[item_id] = {**p, "tags": tags, "rejected": [*(p.get("rejected") or []), *withheld]}
    config = RunConfig(f"{result.config.name} @{threshold:g}", result.config.kind,
                       {**result.config.settings, "min_confidence": threshold})
    thresholded = scored_run(config, dataset, predictions, vocabularies, cached_items=result.cached_items,
                             bootstrap=bootstrap)
    # calibration is the model's, reported once with the run that keeps every tag
    thresholded.confidence = None
    thresholded.seconds_per_item, thresholded.items_per_second = result.seconds_per_item, result.items_per_second
    return thresholded


def run(config: RunConfig, dataset: Dataset, predictor: Predictor, *, cache_dir: Path | None,
        vocabularies: VocabularySet | None = None, batch_size: int = 8, progress: bool = True,
        bootstrap: int = 1000) -> RunResult:
    store = ResultsFile(cache_dir / f"{config.key}.jsonl") if cache_dir else None
    cached: dict[str, dict[str, Any]] = {}
    if store and store.path.exists():
        for line in store.path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            cached[record["id"]] = record
    keys = {g.item.id: item_key(g) for g in dataset.items}
    # Items of one category share a vocabulary (one schema, similar prompts): grouping them
    # keeps engine batches full instead of splitting every batch by schema.
    todo = sorted((g for g in dataset.items if keys[g.item.id] not in cached),
                  key=lambda g: g.item.category or "")
    bar = tqdm(total=len(todo), desc=config.name, unit="item", disable=not progress or not todo)
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            t0 = time.perf_counter()
            preds = predictor(batch)
            dt = time.perf_counter() - t0
            records = [{**p, "id": keys[g.item.id], "seconds": dt / len(batch)} for g, p in zip(batch, preds, strict=True)]
            for r in records:
                cached[r["id"]] = r
            if store:
                store.write(records)
            bar.update(len(batch))
    finally:
        bar.close()
        if store:
            store.close()
    predictions = {g.item.id: cached[keys[g.item.id]] for g in dataset.items}
    return scored_run(config, dataset, predictions, vocabularies, cached_items=len(dataset.items) - len(todo),
                      bootstrap=bootstrap)


def scored_run(config: RunConfig, dataset: Dataset, predictions: dict[str, dict[str, Any]],
               vocabularies: VocabularySet | None, *, cached_items: int = 0, bootstrap: int = 1000) -> RunResult:
    """Score one run's predictions (by item id) against the dataset's gold."""
    slots = []
    golds = {}
    for g in dataset.items:
        gold = canonical_gold(g.gold, vocabularies, g.item.category)
        golds[g.item.id] = (g.item.category, gold)
        tags = predictions[g.item.id].get("tags") or {}
        slots.extend(score_slot(g.item.id, facet, values, tags.get(facet, []), dataset.mode)
                     for facet, values in gold.items())
    all_seconds = [float(p.get("seconds", 0.0)) for p in predictions.values()]
    per_item = sum(all_seconds) / max(1, len(all_seconds))
    return RunResult(
        config=config, dataset=dataset.name,
        scores=aggregate(slots, dataset.ids, bootstrap=bootstrap),
        slots=slots, predictions=predictions, rates=_rates(list(predictions.values())),
        seconds_per_item=per_item, items_per_second=(1 / per_item) if per_item else float("inf"),
        cached_items=cached_items,
        confidence=confidence_report(slots, predictions),
        hierarchy=run_hierarchy_scores(vocabularies, golds, predictions),
    )
