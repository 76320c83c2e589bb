"""Zero-shot tagging where the text states the value: new closed option lists on ExtractGPT's test files.

    python eval/zeroshot_stated.py [--n 150] [--sources ae-110k,oa-mine] [--engine transformers]
                                   [--runs embedding,adapter,scored,fused] [--seed 0]

ImplicitAVE (eval/zeroshot_implicitave.py) asks for values the title only implies; this asks
for values it states. From each source's *test* file (AE-110K, OA-Mine: product titles with
attribute values marked in them; the shipped adapters never trained on either), N (title,
attribute) pairs with a value are drawn at random (seeded), and each becomes a one-facet,
required, closed vocabulary: the gold value plus 3 to 13 other values of the same attribute in
the same product category (as a shop's closed list would hold them), shuffled. Scored by
accuracy (the chosen option is the gold one). Runs as in eval/zeroshot_implicitave.py:

- `embedding`: the option most similar to the title (all-MiniLM-L6-v2, as the prior)
- `adapter`: greedy constrained decoding with `--adapter auto` (the WDC-PAVE adapter here)
- `scored`: option scoring, calibrated, without the embedding prior
- `fused`: option scoring with the embedding prior: the default configuration for such
  vocabularies (`[tagging] option_scoring = "closed"`)
- `bare`, `bare-scored`, `bare-fused`, `*-default` (the `default` template, every option listed)

Prints per source and as the mean, accuracy with a 95% bootstrap interval and the paired
difference against `embedding`. A benchmark, not a test: the LLM runs take minutes on a CPU.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from tagsmith.embeddings import TextEncoder
from tagsmith.gold import Dataset, GoldItem, load_extractgpt
from tagsmith.items import Item
from tagsmith.text import fold
from tagsmith.vocabulary import Facet, Value, Vocabulary, VocabularySet
from zeroshot_implicitave import LLM_RUNS, chosen, embedding, llm, print_table

DATA = Path(__file__).resolve().parents[2] / "shared/data/extractgpt/processed_datasets"
SOURCES = ("ae-110k", "oa-mine")
RUNS = ("embedding", *LLM_RUNS)
#: options per list, the gold value included (ImplicitAVE's lists are of this order)
MIN_OPTIONS, MAX_OPTIONS = 4, 14


def stated_tasks(path: Path, n: int, seed: int) -> Dataset:
    """N (title, attribute) pairs of an ExtractGPT file, each with its own closed option list."""
    data = load_extractgpt(path)
    seen: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)  # (category, attribute) -> fold -> value

    def values_of(g: GoldItem, attr: str) -> dict[str, str]:
        return seen[(fold(g.item.category or ""), attr)]

    for g in data.items:
        for attr, values in g.gold.items():
            for v in values:
                values_of(g, attr).setdefault(fold(v), v)
    pool = [(g, attr) for g in data.items for attr, values in g.gold.items()
            if values and len(values_of(g, attr)) >= MIN_OPTIONS]
    rng = random.Random(seed)
    items, vocabs = [], []
    for k, (g, attr) in enumerate(rng.sample(pool, min(n, len(pool)))):
        value = g.gold[attr][0]
        others = [v for key, v in values_of(g, attr).items() if key != fold(value)]
        listed = [value, *rng.sample(others, min(len(others), rng.randint(MIN_OPTIONS, MAX_OPTIONS) - 1))]
        rng.shuffle(listed)
        name = f"{path.parent.name}/{k}"
        vocabs.append(Vocabulary(name=name, category=name,
                                 facets=(Facet(name=attr, required=True, values=tuple(Value(value=v) for v in listed)),)))
        items.append(GoldItem(Item(f"{g.item.id}:{k}", g.item.title, g.item.description, name), {attr: [value]}))
    return Dataset(f"stated:{path.parent.name}", items, "alternatives", VocabularySet(vocabs, source=str(path)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--n", type=int, default=150, help="(title, attribute) pairs per source")
    ap.add_argument("--sources", default=",".join(SOURCES), help="comma-separated, of: " + ", ".join(SOURCES))
    ap.add_argument("--runs", default="embedding,adapter,scored,fused", help="comma-separated, of: " + ", ".join(RUNS))
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--adapter", default="auto", help="adapter of the runs that use `--adapter auto`")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    runs = chosen(ap, args.runs, RUNS)
    sources = chosen(ap, args.sources, SOURCES, "source")
    encoder = TextEncoder()
    table: dict[str, dict[str, np.ndarray]] = {}
    for source in sources:
        test = stated_tasks(args.data / source / "test.jsonl", args.n, args.seed)
        gold = [g.gold[next(iter(g.gold))][0] for g in test.items]
        table[source] = {}
        for run in runs:
            print(f"{source}: {run}", file=sys.stderr)
            pred = embedding(test, encoder) if run == "embedding" else llm(run, test, args.engine, args.adapter)
            table[source][run] = np.array([p == g for p, g in zip(pred, gold, strict=True)], dtype=float)
    print_table(table, runs, f"{args.n} (title, attribute) pairs per source, seed {args.seed}")
    print(f"\ncommand: python eval/zeroshot_stated.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
