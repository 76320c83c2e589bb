"""Gold Shopify categories for ImplicitAVE products: the zero-shot yardstick for `--vocab shopify`.

    python eval/shopify_gold.py --split val --out /tmp/shopify-val.jsonl [--sample 200]

ImplicitAVE names each product's category (for example "Dresses"); where that name is the name
of exactly one Shopify category (the last step of its path), that path is the product's gold
category (exact, case-insensitive name matches only: no guessing; a name two categories share
is left out). One line per product (ImplicitAVE has
a row per product and attribute), generic gold JSONL `{"id", "title", "gold": {"Category":
[path]}}` with the title alone: the ImplicitAVE category is the answer, so it is not in the text.
The data stays outside the package; write the file anywhere and score it with

    tagsmith eval --data /tmp/shopify-val.jsonl --vocab shopify --split all
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

from tagsmith.taxonomy import CATEGORY, load_taxonomy
from tagsmith.text import fold

DATA = Path(__file__).resolve().parents[2] / "shared/data/implicitave"
DOMAINS = ("Clothing", "Footwear", "Jewlery_and_General_Apparel", "Food", "Home")


def categories_by_name(taxonomy) -> dict[str, list[str]]:
    """Category paths by their last step's name (folded)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for path, _ in taxonomy.categories.values():
        by_name[fold(path.rsplit(" > ", 1)[-1])].append(path)
    return by_name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default="val", choices=["val", "train"])
    ap.add_argument("--taxonomy", default="shopify")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sample", type=int, default=None,
                    help="keep the first N products in a stable order (sha256 of the id): every domain in proportion")
    args = ap.parse_args()
    by_name = categories_by_name(load_taxonomy(args.taxonomy))
    products: dict[str, dict] = {}
    rows = matched = 0
    names: set[str] = set()
    for domain in DOMAINS:
        with (args.data / domain / f"{args.split}.tsv").open(encoding="utf-8", newline="") as handle:
            for r in csv.DictReader(handle, delimiter="\t"):
                rows += 1
                leaves = by_name.get(fold(r["category"]), [])
                if len(leaves) != 1:
                    continue
                matched += 1
                names.add(r["category"])
                title = r["texts"].removeprefix("[Title]").strip()
                products.setdefault(r["id"], {"id": r["id"], "title": title, "domain": domain,
                                              "gold": {CATEGORY: leaves}})
    kept = list(products.values())
    if args.sample:
        kept = sorted(kept, key=lambda p: hashlib.sha256(p["id"].encode()).hexdigest())[:args.sample]
    with args.out.open("w", encoding="utf-8") as out:
        for p in kept:
            out.write(json.dumps(p, ensure_ascii=False) + "\n")
    print(f"{rows} rows, {matched} with a category naming exactly one Shopify category ({len(names)} categories); "
          f"{len(products)} products, {len(kept)} written -> {args.out}")


if __name__ == "__main__":
    main()
