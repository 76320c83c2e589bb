"""After a vocabulary change, update earlier results: re-tag only the items a change can affect.

Removed values and facets are dropped, renamed values (the new value lists the old one as
an alias) rewritten in place; an item goes back to the model when it held a removed value,
when its vocabulary gained a facet, or when its text mentions an added value (`retag_all`:
every item of a changed vocabulary). Unaffected items keep their tags without a model call,
and the model loads only if some item needs it. Output and diff are resumable JSONL.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith.config import TaggingSettings
from tagsmith.items import Item, read_items
from tagsmith.results_store import JobRecord, ResultsFile, read_results
from tagsmith.runtime import count_lines, refuse_same_file
from tagsmith.tagger import Tagger, clean_item
from tagsmith.vocab_diff import VocabularyChange, plan_update, tag_diff
from tagsmith.vocabulary import VocabularySet


@dataclass
class RetagStats:
    kept: int = 0
    retagged: int = 0
    changed: int = 0


def retag(make_tagger: Callable[[], Tagger], new: VocabularySet, changes: dict[str, VocabularyChange],
          input_path: Path, previous_path: Path, output_path: Path, diff_path: Path, *,
          settings: TaggingSettings, retag_all: bool = False, batch_size: int = 32,
          progress: bool = False, job: JobRecord | None = None) -> RetagStats:
    """Write every item of `input_path` to `output_path` with tags for the `new` vocabulary,
    and each changed item's added/removed tags to `diff_path`. `make_tagger` is called once,
    on the first item that needs the model. `job` is recorded beside both outputs (a re-run
    with other inputs or settings is refused instead of mixing two jobs' lines)."""
    from tqdm import tqdm

    previous = read_results(previous_path)
    for other in (input_path, previous_path):
        refuse_same_file(other, output_path)
        refuse_same_file(other, diff_path)
    refuse_same_file(output_path, diff_path)
    store = ResultsFile(output_path, job=job)
    try:
        diffs = ResultsFile(diff_path, required=("id",), job=job)
    except BaseException:
        store.close()
        raise
    tagger: Tagger | None = None
    stats = RetagStats()
    pending: list[tuple[Item, list[str], dict[str, list[str]]]] = []
    kept: list[dict[str, Any]] = []
    kept_diffs: list[dict[str, Any]] = []

    def flush() -> None:  # one fsync per batch, model calls batched too
        nonlocal tagger
        records, changes_out = kept[:], kept_diffs[:]
        kept.clear()
        kept_diffs.clear()
        if pending:
            tagger = tagger or make_tagger()
            results = tagger.tag_batch([p[0] for p in pending])
            records += [r.to_dict() for r in results]
            for (_, reasons, before), r in zip(pending, results, strict=True):
                changes_out.append({"id": r.id, **tag_diff(before, r.tags), "reasons": reasons, "error": r.error})
                stats.changed += r.tags != before
            stats.retagged += len(results)
            pending.clear()
        if records:
            store.write(records)
        if changes_out:
            diffs.write(changes_out)

    bar = tqdm(total=count_lines(input_path), unit="item", disable=not progress, file=sys.stderr)
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
                title, description, _ = clean_item(item, settings)
                plan = plan_update(tags, f"{title}\n{description}", changes.get(vocabulary.name), retag_all)
                if plan.retag:
                    pending.append((item, plan.reasons, tags))
                else:
                    kept.append({**before, "tags": plan.tags, "vocabulary": vocabulary.name})
                    stats.kept += 1
                    if plan.tags != tags:
                        stats.changed += 1
                        kept_diffs.append({"id": item.id, **tag_diff(tags, plan.tags), "reasons": ["renamed"]})
            if len(pending) >= batch_size or len(kept) >= 1000:
                flush()
        flush()
    finally:
        bar.close()
        store.close()
        diffs.close()
    return stats
