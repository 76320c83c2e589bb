"""Gold-labelled data: items with the values they should get, and the files that hold them.

Shared by evaluation, training and worked examples, so none of them imports another and
nothing below the tagger imports evaluation or training. Loaders for WDC-PAVE, ExtractGPT
(AE-110K/OA-Mine) and a generic JSONL all yield `GoldItem`s: the `Item` a tagger sees plus
gold values per facet, where an empty list means the item has no value for that facet.

Generic JSONL (bring your own), one object per line:

    {"id": "17", "title": "...", "description": "...", "category": "...",
     "gold": {"Color": ["Red"], "Material": []}}

scored in `set` mode (every gold value is expected) unless the file's loader is told
otherwise; WDC-PAVE and ExtractGPT are scored in `alternatives` mode, as published.

ImplicitAVE (`<domain>/val.tsv` beside an `options/` folder) brings its own vocabulary: each
row asks for one attribute of one product, from that attribute's option list, so every
(domain, attribute) becomes a one-facet vocabulary and the row's item is routed to it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith.errors import InputError
from tagsmith.items import Item, jsonl_records
from tagsmith.text import fold, slug
from tagsmith.vocabulary import Facet, Value, Vocabulary, VocabularySet


@dataclass(frozen=True)
class GoldItem:
    """The `Item` a tagger sees plus gold values per facet; an empty list means "no value"."""

    item: Item
    gold: dict[str, list[str]]


def canonical_gold(gold: dict[str, list[str]], vocabularies: VocabularySet | None,
                   category: str | None) -> dict[str, list[str]]:
    """Gold values spelled as the vocabulary spells them (aliases -> canonical; extractive values
    normalized as the facet declares), so a variant the tagger canonicalised is not scored as wrong. Values the vocabulary
    does not know are kept as written (and can then only be matched by extractive facets)."""
    vocab = vocabularies.for_category(category) if vocabularies else None
    if vocab is None:
        return gold
    out = {}
    for facet_name, values in gold.items():
        facet = vocab.facet(facet_name)
        if facet is not None and facet.extractive:
            out[facet_name] = [facet.normal(v) for v in values]
        else:
            out[facet_name] = [((facet.canonical(v) if facet else None) or v) for v in values]
    return out


@dataclass(frozen=True)
class Dataset:
    name: str
    items: list[GoldItem]
    #: "alternatives" (any gold value is right) or "set" (all gold values expected).
    mode: str
    #: the vocabularies the data defines itself (ImplicitAVE's option lists), else None
    vocabularies: VocabularySet | None = None

    @property
    def ids(self) -> list[str]:
        return [g.item.id for g in self.items]

    def subset(self, name: str, items: list[GoldItem]) -> Dataset:
        return Dataset(name, items, self.mode, self.vocabularies)


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise InputError(f"{path}: dataset file not found")
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        yield from jsonl_records(handle, path)


def _target_scores_gold(scores: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    return {attr: [v for v in values if v != "n/a"] for attr, values in scores.items()}


def load_wdc_pave(path: str | Path) -> Dataset:
    p = Path(path)
    items = [GoldItem(Item(str(r["id"]), r.get("input_title") or "", r.get("input_description") or "",
                           r.get("category"), r), _target_scores_gold(r["target_scores"]))
             for _, r in _records(p)]
    return Dataset(f"wdc-pave:{p.parent.name}/{p.stem}", items, "alternatives")


def load_extractgpt(path: str | Path) -> Dataset:
    p = Path(path)
    items = [GoldItem(Item(f"{p.stem}-{n}", r["input"], "", r.get("category"), r),
                      _target_scores_gold(r["target_scores"])) for n, r in _records(p)]
    return Dataset(f"extractgpt:{p.parent.name}/{p.stem}", items, "alternatives")


def _values(p: Path, n: int, facet: str, v: Any) -> list[str]:
    values = v if isinstance(v, list) else [] if v is None else [v]
    if not all(isinstance(x, str) for x in values):
        raise InputError(f"{p}:{n}: gold {facet!r}: expected a string or a list of strings, got {json.dumps(v)[:60]}")
    return values


def _text(p: Path, n: int, r: dict[str, Any], key: str) -> str:
    v = r.get(key)
    if v is not None and not isinstance(v, str):
        raise InputError(f"{p}:{n}: {key!r} must be a string")
    return v or ""


def load_generic(path: str | Path, mode: str = "set") -> Dataset:
    p = Path(path)
    items = []
    for n, r in _records(p):
        gold = r.get("gold")
        if not isinstance(gold, dict):
            raise InputError(f"{p}:{n}: expected a 'gold' object of facet -> list of values")
        category = r.get("category")
        items.append(GoldItem(Item(str(r.get("id", f"line-{n}")), _text(p, n, r, "title"), _text(p, n, r, "description"),
                                   str(category) if category is not None else None, r),
                              {str(k): _values(p, n, k, v) for k, v in gold.items()}))
    return Dataset(f"jsonl:{p.stem}", items, mode)


#: ImplicitAVE's domains and the option file each uses (the files are per Amazon top category).
IMPLICITAVE_OPTIONS = {"Clothing": "Clothing_Shoes_and_Jewelry", "Footwear": "Clothing_Shoes_and_Jewelry",
                       "Jewlery_and_General_Apparel": "Clothing_Shoes_and_Jewelry", "Food": "Food", "Home": "Home"}
IMPLICITAVE_COLUMNS = ("id", "category", "texts", "attribute_names", "attribute_values")


def implicitave_vocabularies(domain: str, option_lists: dict[str, list[str]]) -> VocabularySet:
    """One vocabulary per attribute: a single required facet whose values are its options
    (every ImplicitAVE row has a value). Items reach it by the category `<domain>/<attribute>`."""
    vocabs = [Vocabulary(name=f"implicitave/{slug(domain)}/{slug(attr)}", category=f"{domain}/{attr}",
                         facets=(Facet(name=attr, required=True, values=tuple(Value(value=v) for v in values)),))
              for attr, values in option_lists.items()]
    return VocabularySet(vocabs, source=f"implicitave:{domain}")


def load_implicitave(path: str | Path) -> Dataset:
    """An ImplicitAVE split file (`<domain>/train.tsv` or `val.tsv`) with the option lists from
    the `options/` folder beside the domain folders. Item ids are `<asin>:<attribute>` (one
    product may be asked several attributes); the product category goes into the description."""
    p = Path(path)
    domain = p.parent.name
    if domain not in IMPLICITAVE_OPTIONS:
        raise InputError(f"{p}: not an ImplicitAVE domain folder (known: {', '.join(IMPLICITAVE_OPTIONS)})")
    options_file = p.parent.parent / "options" / f"options_{IMPLICITAVE_OPTIONS[domain]}.json"
    try:
        option_lists = json.loads(options_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{options_file}: cannot read ImplicitAVE option lists ({exc})") from None
    with p.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    missing = [c for c in IMPLICITAVE_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise InputError(f"{p}: not an ImplicitAVE file (no column {', '.join(missing)})")
    items = []
    asked: set[str] = set()
    for r in rows:
        attr = r["attribute_names"]
        if attr not in option_lists:
            raise InputError(f"{p}: attribute {attr!r} has no option list in {options_file.name}")
        asked.add(attr)
        title = r["texts"].removeprefix("[Title]").strip()
        description = f"Category: {r['category']}" if r.get("category") else ""
        items.append(GoldItem(Item(f"{r['id']}:{slug(attr)}", title, description, f"{domain}/{attr}", dict(r)),
                              {attr: [r["attribute_values"]]}))
    vocabularies = implicitave_vocabularies(domain, {a: option_lists[a] for a in option_lists if a in asked})
    return Dataset(f"implicitave:{domain}/{p.stem}", items, "alternatives", vocabularies)


def load_dataset(spec: str | Path) -> Dataset:
    """Pick the loader from the file's records: WDC-PAVE, ExtractGPT or generic JSONL, or an
    ImplicitAVE TSV. A record that does not fit its format, or an id given twice, is an error
    naming the file and line."""
    p = Path(spec)
    if p.suffix == ".tsv" and p.is_file():
        return _unique_ids(p, load_implicitave(p))
    first = next((r for _, r in _records(p)), None)
    if first is None:
        raise InputError(f"{p}: dataset is empty")
    try:
        if "input_title" in first and "target_scores" in first:
            dataset = load_wdc_pave(p)
        elif "input" in first and "target_scores" in first:
            dataset = load_extractgpt(p)
        else:
            dataset = load_generic(p)
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{p}: a record does not fit the {_format(first)} format ({type(exc).__name__}: {exc})") from None
    return _unique_ids(p, dataset)


def _unique_ids(p: Path, dataset: Dataset) -> Dataset:
    seen: dict[str, int] = {}
    for n, g in enumerate(dataset.items, start=1):
        if g.item.id in seen:
            raise InputError(f"{p}: id {g.item.id!r} appears twice (records {seen[g.item.id]} and {n}); "
                             "each item must be scored once")
        seen[g.item.id] = n
    return dataset


def _format(first: dict[str, Any]) -> str:
    return "WDC-PAVE" if "input_title" in first else "ExtractGPT" if "input" in first else "generic"


def in_validation(item_id: str, fraction: float = 0.2) -> bool:
    """Stable split by id hash: the same items are held out on every machine and run."""
    h = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


def split(dataset: Dataset, part: str, fraction: float = 0.2) -> Dataset:
    """`part` is "validation" (a stable `fraction` by id), "train" (the rest) or "all"."""
    if part == "all":
        return dataset
    if part not in ("train", "validation"):
        raise InputError(f"unknown split {part!r} (use train, validation or all)")
    want = part == "validation"
    items = [g for g in dataset.items if in_validation(g.item.id, fraction) == want]
    return dataset.subset(f"{dataset.name}[{part}]", items)


def select_categories(dataset: Dataset, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> Dataset:
    """Keep (or drop) items by category, e.g. to hold a whole category out of training and
    tag it as a vocabulary the adapter never saw. Names match ignoring case, spaces, '-' and
    '_' ("office-products" = "Office Products"); an unknown name is an error, since a typo
    would silently hold out nothing."""
    if not include and not exclude:
        return dataset
    def key(name: str | None) -> str:
        return fold((name or "").replace("-", " ").replace("_", " "))

    present = {key(g.item.category): g.item.category for g in dataset.items if g.item.category}
    for name in (*include, *exclude):
        if key(name) not in present:
            known = ", ".join(sorted(present.values())) or "none: the items carry no category"
            raise InputError(f"no items of category {name!r} in {dataset.name} (categories: {known})")
    keep = {key(n) for n in include}
    drop = {key(n) for n in exclude}
    items = [g for g in dataset.items
             if (not keep or key(g.item.category) in keep) and key(g.item.category) not in drop]
    label = ",".join([*include, *(f"-{n}" for n in exclude)])
    return dataset.subset(f"{dataset.name}[{label}]", items)
