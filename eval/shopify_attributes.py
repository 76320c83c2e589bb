"""The taxonomy's second step, measured: attribute values of ImplicitAVE products.

    python eval/shopify_attributes.py --sample 300 --scoring closed --scoring all [--engine transformers]

Each ImplicitAVE validation row names one attribute of a product and its value (Neckline:
V-Neck). A row is gold for `--vocab shopify`'s attribute step where the product's category is
the name of exactly one Shopify category (as `shopify_gold.py`), that category carries an
attribute of the same name (loose key: case, punctuation and plurals aside) and the value is
one of that attribute's values (loose key again); nothing is mapped by hand, so most rows do
not qualify. Each such product is tagged with its gold category's whole attribute vocabulary
(the category given: the category step's errors are not counted here) and the answer for that
one attribute is scored. ImplicitAVE's values are implicit (the title does not state them), so
this is hard for every configuration; it compares them.

Printed: per configuration (`--scoring`: the `[tagging] option_scoring` of the run; the
embedding baseline, the value nearest the title by sentence embedding, always), the share of
products whose answer for the gold attribute is the gold value, and how often it is left
empty, with 95% bootstrap intervals; then each configuration against the first, paired. The
data stays in ../shared; nothing is written but the output files under --out.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from tagsmith.items import Item
from tagsmith.runtime import RunSpec, build_tagger
from tagsmith.shortlist import value_texts
from tagsmith.taxonomy import CategoryAttributes, load_taxonomy
from tagsmith.text import fold
from tagsmith.vocab_health import loose_key
from tagsmith.vocabulary import VocabularySet

sys.path.insert(0, str(Path(__file__).parent))
from shopify_gold import DATA, DOMAINS, categories_by_name  # noqa: E402


def gold_rows(data: Path, split: str, taxonomy: str) -> tuple[list[dict], VocabularySet]:
    """The qualifying rows (id, title, category path, attribute, value) and the attribute
    vocabularies of their categories."""
    tax = load_taxonomy(taxonomy)
    attributes = CategoryAttributes(tax)
    by_name = categories_by_name(tax)
    rows, vocabs = [], {}
    for domain in DOMAINS:
        with (data / domain / f"{split}.tsv").open(encoding="utf-8", newline="") as handle:
            for r in csv.DictReader(handle, delimiter="\t"):
                leaves = by_name.get(fold(r["category"]), [])
                vocab = attributes.vocabulary(leaves[0]) if len(leaves) == 1 else None
                if vocab is None:
                    continue
                name = loose_key(r["attribute_names"])
                facet = next((f for f in vocab.facets if loose_key(f.name) == name), None)
                value = next((a for a in facet.allowed if loose_key(a) == loose_key(r["attribute_values"])),
                             None) if facet else None
                if value is None:
                    continue
                vocabs[vocab.name] = vocab
                rows.append({"id": f"{r['id']}:{facet.name}", "title": r["texts"].removeprefix("[Title]").strip(),
                             "category": leaves[0], "facet": facet.name, "value": value, "domain": domain})
    return rows, VocabularySet(list(vocabs.values()))


def bootstrap(values: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def embedding_answers(rows: list[dict], vocabularies: VocabularySet) -> list[str]:
    from tagsmith.embeddings import shared_encoder

    encoder = shared_encoder()
    titles = encoder.encode([r["title"] for r in rows])
    values: dict[tuple[str, str], np.ndarray] = {}  # each category's attribute embedded once
    out = []
    for r, vector in zip(rows, titles, strict=True):
        facet = vocabularies.for_category(r["category"]).facet(r["facet"])
        key = (r["category"], r["facet"])
        if key not in values:
            values[key] = encoder.encode(value_texts(facet))
        out.append(facet.allowed[int(np.argmax(values[key] @ vector))])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default="val", choices=["val", "train"])
    ap.add_argument("--taxonomy", default="shopify")
    ap.add_argument("--sample", type=int, default=300, help="the first N rows in a stable order (sha256 of the id)")
    ap.add_argument("--scoring", action="append", choices=["off", "closed", "all"],
                    help="[tagging] option_scoring of a configuration; repeat to compare (default: closed)")
    ap.add_argument("--engine", default="transformers")
    ap.add_argument("--config", default=None, help="a settings file every configuration starts from")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("runs/shopify-attributes"))
    args = ap.parse_args()

    rows, vocabularies = gold_rows(args.data, args.split, args.taxonomy)
    total = len(rows)
    rows = sorted(rows, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[:args.sample]
    print(f"{total} qualifying rows ({args.split}); scoring {len(rows)}, "
          f"{len({r['facet'] for r in rows})} attributes, {len(vocabularies)} categories", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    answers: dict[str, list[str | None]] = {"embedding: nearest value": embedding_answers(rows, vocabularies)}
    items = [Item(r["id"], r["title"], "", r["category"]) for r in rows]
    for scoring in args.scoring or ["closed"]:
        built = build_tagger(RunSpec(vocab=args.taxonomy, engine=args.engine, config=args.config,
                                     option_scoring=scoring), vocabularies)
        name = f"tagsmith, option_scoring={scoring}"
        got: list[str | None] = []
        with (args.out / f"answers-{scoring}.jsonl").open("w", encoding="utf-8") as out:
            for start in range(0, len(items), args.batch_size):
                for r, result in zip(rows[start:start + args.batch_size],
                                     built.tagger.tag_batch(items[start:start + args.batch_size]), strict=True):
                    got.append((result.tags.get(r["facet"]) or [None])[0])
                    out.write(json.dumps({"id": r["id"], "facet": r["facet"], "gold": r["value"], "answer": got[-1],
                                          "tags": result.tags, "error": result.error}, ensure_ascii=False) + "\n")
                print(f"{name}: {len(got)}/{len(items)}", file=sys.stderr)
        answers[name] = got
    right = {name: np.array([a == r["value"] for a, r in zip(got, rows, strict=True)], dtype=float)
             for name, got in answers.items()}
    print(f"\n| run | products | accuracy [95% CI] | left empty |\n|---|---|---|---|")
    for name, hits in right.items():
        lo, hi = bootstrap(hits)
        empty = np.mean([a is None for a in answers[name]])
        print(f"| {name} | {len(hits)} | {100 * hits.mean():.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | {100 * empty:.1f} |")
    names = list(right)
    print(f"\nAgainst {names[0]}, paired: difference in points [95% CI]\n")
    for name in names[1:]:
        diff = right[name] - right[names[0]]
        lo, hi = bootstrap(diff)
        print(f"- {name}: {100 * diff.mean():+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    if len(names) > 2:
        diff = right[names[-1]] - right[names[1]]
        lo, hi = bootstrap(diff)
        print(f"- {names[-1]} against {names[1]}: {100 * diff.mean():+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    print(f"\ncommand: python eval/shopify_attributes.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
