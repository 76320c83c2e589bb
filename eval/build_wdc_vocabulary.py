"""Build the built-in `wdc-pave` vocabularies from the WDC-PAVE training data.

    python eval/build_wdc_vocabulary.py                 # wdc-pave: values of every offer (what users get)
    python eval/build_wdc_vocabulary.py --split train   # wdc-pave-train: values of the train split only

`wdc-pave-train` is the honest yardstick for validation figures: a value that occurs only in
validation offers is not in it, so no run (LLM or baseline) is handed the validation answers
through the vocabulary. `tagsmith eval` scores with it by default on WDC-PAVE data.

One YAML file per category. Policy, from the attribute descriptions' data types:
- identifier attributes (part/model/stock numbers, UPCs: data type "Unique ... ID") are
  *extractive*: their values are copied from the offer, no list could hold them; the normalized
  data writes them as upper-case alphanumerics ("461137B21" for the text's "461137-b21"), so
  they declare `normalize: [alnum, upper]`: the model copies the text, tagsmith normalizes;
- every other attribute is *closed*: its allowed values are the normalized values seen in
  `train_large.jsonl`; spellings that differ only in case or spacing are merged into one
  value (the most frequent spelling) with the others as aliases;
- a closed facet of bare numbers that the offers' texts state in another unit (Width "61.0" for
  24") declares the unit its values are in (`unit: cm`), found by `value_spans.conversions`:
  templates then show the texts' measurements converted to it.
All WDC-PAVE attributes take one value per offer (several gold values are alternatives).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from tagsmith.gold import in_validation
from tagsmith.text import fold, slug
from tagsmith.value_spans import conversions

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wdc-pave"
DEFAULT_OUT = ROOT / "src" / "tagsmith" / "vocabularies" / "wdc-pave"


def stored_unit(values: list[str], texts: list[str]) -> str | None:
    """The unit a facet's bare numbers are in, where the texts state them in another one."""
    return next((c.target for c in conversions(values, texts)), None)


def build(data: Path, split: str = "all", normalized: bool = True) -> dict[str, dict]:
    descriptions = {(r["Category"], r["Attribute"]): r for r in
                    csv.DictReader((data / "attribute_descriptions.csv").open(encoding="utf-8"),
                                   delimiter=";")}
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    order: dict[str, list[str]] = defaultdict(list)
    texts: dict[str, list[str]] = defaultdict(list)
    with (data / "wdc_with_all_attributes_normalized" / "train_large.jsonl").open(encoding="utf-8") as f:
        for line in f:
            offer = json.loads(line)
            if split == "train" and in_validation(str(offer["id"])):
                continue
            cat = offer["category"]
            texts[cat].append(f"{offer['input_title']}\n{offer['input_description']}")
            for attr, values in offer["target_scores"].items():
                if attr not in order[cat]:
                    order[cat].append(attr)
                for v in values:
                    if v != "n/a" and v.strip():
                        counts[(cat, attr)][v.strip()] += 1
    vocabularies = {}
    for cat, attrs in sorted(order.items()):
        facets = []
        for attr in attrs:
            meta = descriptions.get((cat, attr), {})
            facet: dict = {"name": attr}
            if meta.get("Human_Description"):
                facet["description"] = " ".join(meta["Human_Description"].split())
            if "Unique" in meta.get("Data_Types", ""):
                facet["extractive"] = True
                if normalized:  # the normalized data writes identifiers as upper-case alphanumerics
                    facet["normalize"] = ["alnum", "upper"]
            else:
                groups: dict[str, Counter[str]] = defaultdict(Counter)
                for v, n in counts[(cat, attr)].items():
                    groups[fold(v)][v] += n
                values = []
                for spellings in sorted(groups.values(), key=lambda c: (-sum(c.values()), min(c))):
                    canonical, *aliases = [s for s, _ in spellings.most_common()]
                    values.append({"value": canonical, "aliases": aliases} if aliases else canonical)
                if not values:
                    continue
                facet["values"] = values
                unit = stored_unit(list(counts[(cat, attr)]), texts[cat])
                if unit:
                    facet["unit"] = unit
            facets.append(facet)
        prefix = "wdc-pave" if split == "all" else f"wdc-pave-{split}"
        vocabularies[slug(cat)] = {
            "name": f"{prefix}/{slug(cat)}",
            "description": f"WDC-PAVE attributes of '{cat}' offers, values from train_large.jsonl"
                           + ("" if split == "all" else f" ({split} split only)"),
            "category": cat,
            "facets": facets,
        }
    return vocabularies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--split", choices=["all", "train"], default="all",
                    help="values from every offer, or only from the train split (tagsmith's stable 80%% by id)")
    ap.add_argument("--out", type=Path, default=None, help="[default: vocabularies/wdc-pave or wdc-pave-train]")
    args = ap.parse_args()
    out = args.out or DEFAULT_OUT.with_name("wdc-pave" if args.split == "all" else f"wdc-pave-{args.split}")
    out.mkdir(parents=True, exist_ok=True)
    header = ("# Generated by eval/build_wdc_vocabulary.py from WDC-PAVE train_large.jsonl"
              + ("" if args.split == "all" else f" --split {args.split}") + "; do not edit.\n")
    for name, vocab in build(args.data, args.split).items():
        path = out / f"{name}.yaml"
        path.write_text(header + yaml.safe_dump(vocab, sort_keys=False, allow_unicode=True, width=100),
                        encoding="utf-8")
        n = sum(len(f.get("values", [])) for f in vocab["facets"])
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
              f"{len(vocab['facets'])} facets, {n} values")


if __name__ == "__main__":
    main()
