"""Human review of tags: send the unsure items to people, read their answers back as gold.

Teams accept the tags tagsmith is sure of and send the rest to reviewers. `select` picks the
items of a tagged output that need a look (a tag, or an empty answer, whose confidence is below
a threshold; an error; an answer the post-check rejected), or a sample, or all. They go out as

- a Label Studio import file (`label_studio_tasks`), one task per item, with each facet's
  control pre-filled from the tags and their confidences, and the labeling configuration that
  matches it (`label_config`, generated from the vocabulary: single or multiple choices, a
  searchable taxonomy for long or hierarchical lists, a text area for extractive facets), or
- a CSV for spreadsheet review (`write_csv`): one row per item, a column per facet.

What reviewers submit comes back through `read_label_studio_export` or `read_csv` as generic
gold records (`{"id", "title", "description", "category", "gold"}`) that `tagsmith eval --data`
and `tagsmith train --data` read.

Confidence comes from option scoring (`scores` in the output line): a facet decoded without
it has none, and such facets never make an item "unsure" on their own.
"""

from __future__ import annotations

import csv
import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagsmith.errors import InputError
from tagsmith.items import Item
from tagsmith.parsing import rejection_text
from tagsmith.vocabulary import Facet, Vocabulary, VocabularySet

#: closed facets with more options than this get a searchable taxonomy control, not buttons
MAX_BUTTONS = 25
#: the field of a Label Studio task that maps its controls back to facets
MAPPING_FIELD = "tagsmith"
VALUE_SEPARATOR = " | "


@dataclass
class ReviewItem:
    """One item to review: its text, the vocabulary it was tagged with, and what tagsmith said."""

    item: Item
    vocabulary: Vocabulary
    tags: dict[str, list[str]]
    #: per facet: the confidence of the answer given (the least sure of its values; for an empty
    #: answer, the probability of "no value"), None where the facet was not scored
    confidence: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None
    rejected: list[str] = field(default_factory=list)

    @property
    def least_confidence(self) -> float | None:
        known = [c for c in self.confidence.values() if c is not None]
        return min(known) if known else None


def facet_confidence(record: dict[str, Any], facet: str) -> float | None:
    """The confidence of a record's answer for one facet, from its option scores."""
    scores = (record.get("scores") or {}).get(facet)
    if not scores:
        return None
    given = (record.get("tags") or {}).get(facet) or [""]
    known = [scores[v] for v in given if v in scores]
    return min(known) if known else None


def review_item(item: Item, record: dict[str, Any], vocabulary: Vocabulary) -> ReviewItem:
    tags = {f.name: list((record.get("tags") or {}).get(f.name) or []) for f in vocabulary.facets}
    rejected = [rejection_text(r) for r in record.get("rejected") or [] if isinstance(r, dict)]
    return ReviewItem(item, vocabulary, tags, {f.name: facet_confidence(record, f.name) for f in vocabulary.facets},
                      record.get("error"), rejected)


@dataclass
class Selection:
    items: list[ReviewItem]
    #: tagged items considered, and how many of them had no confidence for any facet
    considered: int
    unscored: int
    #: output ids with no item in the input (reported, not reviewed)
    missing: int = 0


def select(items: Iterable[Item], records: dict[str, dict[str, Any]], vocabularies: VocabularySet, *,
           below: float | None = None, sample: int | None = None, seed: int = 0) -> Selection:
    """The items to review. `below`: those with an answer whose confidence is under it, or with
    an error or a rejected answer (None: every tagged item). `sample`: at most this many of
    those, drawn at random (reproducible with `seed`)."""
    chosen: list[ReviewItem] = []
    considered = unscored = 0
    seen: set[str] = set()
    for item in items:
        record = records.get(item.id)
        if record is None:
            continue
        seen.add(item.id)
        vocabulary = vocabularies.named(record.get("vocabulary")) or vocabularies.for_category(item.category)
        if vocabulary is None:
            raise InputError(f"item {item.id!r} was tagged with vocabulary {record.get('vocabulary')!r}, "
                             f"which --vocab does not hold (it has: {', '.join(v.name for v in vocabularies)})")
        r = review_item(item, record, vocabulary)
        considered += 1
        if r.least_confidence is None:
            unscored += 1
        unsure = r.error is not None or bool(r.rejected) or (r.least_confidence is not None
                                                            and below is not None and r.least_confidence < below)
        if below is None or unsure:
            chosen.append(r)
    if sample is not None and len(chosen) > sample:
        keep = set(random.Random(seed).sample(range(len(chosen)), sample))
        chosen = [r for n, r in enumerate(chosen) if n in keep]
    return Selection(chosen, considered, unscored, len(set(records) - seen))


# ----------------------------------------------------------------------------- Label Studio


def control_names(vocabulary: Vocabulary) -> dict[str, str]:
    """A Label Studio control name per facet (names must be plain identifiers there)."""
    out: dict[str, str] = {}
    for f in vocabulary.facets:
        base = "facet_" + (re.sub(r"\W+", "_", f.name).strip("_").lower() or "x")
        name, n = base, 1
        while name in out.values():
            n += 1
            name = f"{base}_{n}"
        out[f.name] = name
    return out


def _control_kind(facet: Facet) -> str:
    if facet.extractive:
        return "textarea"
    return "taxonomy" if facet.hierarchy or len(facet.allowed) > MAX_BUTTONS else "choices"


def _taxonomy_tree(parent: ET.Element, facet: Facet) -> None:
    """Nested <Choice> elements: a hierarchy's paths, or one level for a long flat list."""
    nodes: dict[tuple[str, ...], ET.Element] = {}
    for value in facet.allowed:
        path = facet.path(value)
        for depth in range(1, len(path) + 1):
            key = path[:depth]
            if key not in nodes:
                nodes[key] = ET.SubElement(nodes.get(key[:-1], parent), "Choice", value=key[-1])


def label_config(vocabulary: Vocabulary) -> str:
    """The labeling configuration (XML) for reviewing items tagged with `vocabulary`."""
    view = ET.Element("View")
    ET.SubElement(view, "Text", name="title", value="$title")
    ET.SubElement(view, "Text", name="description", value="$description")
    ET.SubElement(view, "Header", value="tagsmith's confidence", size="6")
    ET.SubElement(view, "Text", name="confidence", value="$confidence")
    for facet, name in control_names(vocabulary).items():
        f = vocabulary.facet(facet)
        assert f is not None
        label = f.name + (f" (up to {f.max_values})" if f.max_values > 1 else "")
        ET.SubElement(view, "Header", value=label, size="5")
        kind = _control_kind(f)
        attrs = {"name": name, "toName": "title"}
        if f.required:
            attrs["required"] = "true"
        if kind == "textarea":
            ET.SubElement(view, "TextArea", **attrs, maxSubmissions=str(f.max_values), editable="true",
                          placeholder="exact text from the product; leave empty for none")
        elif kind == "taxonomy":
            node = ET.SubElement(view, "Taxonomy", **attrs, maxUsages=str(f.max_values))
            if f.hierarchy:
                node.set("leafsOnly", "false")
            _taxonomy_tree(node, f)
        else:
            node = ET.SubElement(view, "Choices", **attrs, showInline="true",
                                 choice="single-radio" if f.max_values == 1 else "multiple")
            for value in f.allowed:
                ET.SubElement(node, "Choice", value=value)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def _result(facet: Facet, name: str, values: Sequence[str], score: float | None) -> dict[str, Any] | None:
    if not values:
        return None
    kind = _control_kind(facet)
    if kind == "textarea":
        value: dict[str, Any] = {"text": list(values)}
    elif kind == "taxonomy":
        value = {"taxonomy": [list(facet.path(v)) for v in values]}
    else:
        value = {"choices": list(values)}
    out = {"from_name": name, "to_name": "title", "type": kind, "value": value}
    if score is not None:
        out["score"] = round(score, 4)
    return out


def _confidence_text(r: ReviewItem) -> str:
    if r.error:
        return f"no answer: {r.error}"
    parts = [f"{facet}: {', '.join(r.tags[facet]) or '(none)'} {100 * c:.0f}%"
             for facet, c in r.confidence.items() if c is not None]
    parts += [f"rejected {x}" for x in r.rejected]
    return "; ".join(parts) or "not scored"


def label_studio_tasks(selected: Sequence[ReviewItem], model_version: str = "tagsmith") -> list[dict[str, Any]]:
    """Label Studio import tasks: the item's text as data, tagsmith's tags as a prediction."""
    tasks = []
    for r in selected:
        names = control_names(r.vocabulary)
        results = [x for facet, name in names.items() if (x := _result(
            r.vocabulary.facet(facet), name, r.tags.get(facet, []), r.confidence.get(facet))) is not None]  # type: ignore[arg-type]
        prediction: dict[str, Any] = {"model_version": model_version, "result": results}
        if r.least_confidence is not None:
            prediction["score"] = round(r.least_confidence, 4)
        tasks.append({
            "data": {"id": r.item.id, "title": r.item.title, "description": r.item.description,
                     "category": r.item.category, "vocabulary": r.vocabulary.name,
                     "confidence": _confidence_text(r),
                     MAPPING_FIELD: {"vocabulary": r.vocabulary.name, "controls": {v: k for k, v in names.items()}}},
            "predictions": [prediction],
        })
    return tasks


def _answer_values(result: dict[str, Any], facet: Facet | None) -> list[str]:
    """A result's values; a taxonomy path joined as the facet writes its values (" > " when the
    vocabulary is not at hand)."""
    value = result.get("value") or {}
    kind = result.get("type")
    if kind == "choices":
        return [str(v) for v in value.get("choices") or []]
    if kind == "taxonomy":
        paths = [[str(p) for p in path] for path in value.get("taxonomy") or []]
        return [facet.join(path) if facet else " > ".join(path) for path in paths]
    if kind == "textarea":
        return [t.strip() for t in value.get("text") or [] if str(t).strip()]
    return []


@dataclass
class Imported:
    records: list[dict[str, Any]]
    #: tasks without a submitted (not cancelled) annotation, left out
    unannotated: int = 0


def read_label_studio_export(path: str | Path, vocabularies: VocabularySet | None = None) -> Imported:
    """Gold records from a Label Studio JSON export of tasks made by `label_studio_tasks`: each
    task's latest submitted annotation; a facet the reviewer left empty has no value."""
    p = Path(path)
    try:
        tasks = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a Label Studio JSON export ({exc})") from None
    if not isinstance(tasks, list):
        raise InputError(f"{p}: not a Label Studio JSON export (expected a list of tasks)")
    out, unannotated = [], 0
    for n, task in enumerate(tasks, 1):
        if not isinstance(task, dict) or "data" not in task or "annotations" not in task:
            raise InputError(f"{p}: task {n} has no data and annotations: export as JSON "
                             "(Label Studio's JSON-MIN and CSV exports drop what maps answers to facets)")
        data = task["data"]
        mapping = data.get(MAPPING_FIELD) or {}
        controls = mapping.get("controls")
        if not isinstance(controls, dict):
            raise InputError(f"{p}: task {n} was not made by `tagsmith review export` (no {MAPPING_FIELD!r} field)")
        done = [a for a in task["annotations"] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            unannotated += 1
            continue
        latest = max(done, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
        vocabulary = vocabularies.named(mapping.get("vocabulary")) if vocabularies else None
        gold: dict[str, list[str]] = {facet: [] for facet in controls.values()}
        for result in latest.get("result") or []:
            facet = controls.get(result.get("from_name"))
            if facet is None:
                continue
            f = vocabulary.facet(facet) if vocabulary else None
            values = _answer_values(result, f)
            gold[facet] = list(dict.fromkeys(gold[facet] + values))
        out.append({"id": str(data.get("id")), "title": data.get("title") or "",
                    "description": data.get("description") or "", "category": data.get("category"), "gold": gold})
    return Imported(out, unannotated)


# ----------------------------------------------------------------------------- CSV

BASE_COLUMNS = ("id", "title", "description", "category", "vocabulary")


def write_csv(selected: Sequence[ReviewItem], path: str | Path) -> None:
    """One row per item, a column per facet (values joined by ' | ') and its confidence."""
    facets = list(dict.fromkeys(f.name for r in selected for f in r.vocabulary.facets))
    header = [*BASE_COLUMNS, *(c for f in facets for c in (f, f"{f} confidence")), "notes"]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(header)
        for r in selected:
            row = [r.item.id, r.item.title, r.item.description, r.item.category or "", r.vocabulary.name]
            for f in facets:
                c = r.confidence.get(f)
                row += [VALUE_SEPARATOR.join(r.tags.get(f, [])), "" if c is None else f"{c:.3f}"]
            row.append("; ".join(([f"error: {r.error}"] if r.error else []) + [f"rejected {x}" for x in r.rejected]))
            w.writerow(row)


def read_csv(path: str | Path, vocabularies: VocabularySet) -> list[dict[str, Any]]:
    """Gold records from a reviewed CSV made by `write_csv`. Values are checked against each
    row's vocabulary (aliases map to their value); an unknown one is an error naming its row."""
    p = Path(path)
    out = []
    try:
        handle = p.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("id", "vocabulary") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{p}: not a tagsmith review CSV (no {', '.join(missing)} column)")
        for n, row in enumerate(reader, 2):
            vocabulary = vocabularies.named(row.get("vocabulary"))
            if vocabulary is None:
                raise InputError(f"{p}:{n}: vocabulary {row.get('vocabulary')!r} is not in --vocab")
            gold: dict[str, list[str]] = {}
            for f in vocabulary.facets:
                cell = row.get(f.name)
                if cell is None:
                    raise InputError(f"{p}:{n}: no column for facet {f.name!r}")
                values = [v.strip() for v in cell.split(VALUE_SEPARATOR.strip()) if v.strip()]
                if not f.extractive:
                    canonical = [f.canonical(v) for v in values]
                    unknown = [v for v, c in zip(values, canonical, strict=True) if c is None]
                    if unknown:
                        raise InputError(f"{p}:{n}: {f.name}: {unknown[0]!r} is not a value of this facet")
                    values = [c for c in canonical if c is not None]
                gold[f.name] = list(dict.fromkeys(values))
            out.append({"id": row["id"], "title": row.get("title") or "", "description": row.get("description") or "",
                        "category": row.get("category") or None, "gold": gold})
    return out


def write_gold(records: Sequence[dict[str, Any]], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for r in records:
            handle.write(json.dumps(r, ensure_ascii=False) + "\n")
