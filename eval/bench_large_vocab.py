"""Benchmark tagging against large vocabularies: preparation per item and latency per item.

    python eval/bench_large_vocab.py [--sizes 100,1000,10000,100000] [--engines vllm,transformers] [--n 8]

Vocabularies of each size are generated from real WDC-PAVE values: one facet "Product" whose
values are the real values (all categories) and, past their count, pairs "A B" of them (a
combination, not invented words), plus two small real facets. For each size it prints
  - index_s: embedding the vocabulary's values once (cached on disk afterwards: the next run
    prints the cache load),
  - prep_ms: per-item preparation after the first batch (shortlist embedding, per-item schema,
    prompt), the figure the issue bounds at 100 ms,
  - per engine, s/item tagging N offers with shortlists (k=50), with every answer checked to be
    in the vocabulary,
  - on vLLM also s/item with the whole vocabulary as the schema (no shortlist), to show what the
    shortlist saves; the transformers engine is run without a shortlist only up to 1,000 values,
    to keep the benchmark short.
A benchmark, not a test: minutes on a CPU.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from tagsmith.engines import create_engine
from tagsmith.items import read_items
from tagsmith.prompts import load_template
from tagsmith.shortlist import Shortlister
from tagsmith.config import TaggingSettings
from tagsmith.tagger import Tagger
from tagsmith.text import fold
from tagsmith.vocabulary import Vocabulary, parse_vocabulary, resolve_vocabularies

DATA = Path(__file__).resolve().parents[2] / "shared/data/wdc-pave/wdc_with_all_attributes_normalized/train_large.jsonl"


def make_vocabulary(size: int) -> Vocabulary:
    real = list(dict.fromkeys(v for voc in resolve_vocabularies("wdc-pave") for f in voc.facets
                              if not f.extractive for v in f.allowed))
    folded: set[str] = set()
    values = []
    for v in itertools.chain(real, (f"{a} {b}" for a, b in itertools.product(real, real) if a != b)):
        key = fold(v)
        if key not in folded:
            folded.add(key)
            values.append(v)
        if len(values) == size:
            break
    return parse_vocabulary({"name": f"bench-{size}", "facets": [
        {"name": "Product", "max_values": 2, "values": values},
        {"name": "Color", "values": ["Black", "White", "Red", "Blue", "Silver", "Gold"]},
        {"name": "Part Number", "extractive": True}]})


def in_vocabulary(results, vocab: Vocabulary) -> bool:
    return all(r.error or all(vocab.facet(f).extractive or set(v) <= set(vocab.facet(f).allowed)
                              for f, v in r.tags.items()) for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000,100000")
    ap.add_argument("--engines", default="vllm,transformers")
    ap.add_argument("--n", type=int, default=8, help="offers tagged per size and engine")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    offers = list(read_items(args.data))
    items, warm = offers[:args.n], offers[-args.n:]
    prep_items = offers[100:164]
    template = load_template("default")
    settings = TaggingSettings(shortlist_k=args.k, shortlist_above=args.k)
    shortlister = Shortlister(args.k, args.k, progress=True)
    engines = {name: create_engine(name, "embedded") for name in args.engines.split(",") if name}
    rows = []
    for size in map(int, args.sizes.split(",")):
        vocab = make_vocabulary(size)
        t0 = time.perf_counter()
        shortlister.index(vocab)
        row: dict[str, object] = {"values": vocab.size, "index_s": round(time.perf_counter() - t0, 2)}
        offline = Tagger(engines.get("vllm") or next(iter(engines.values())), vocab, template, settings,
                         shortlister=shortlister)
        offline.requests(warm[:4])
        t0 = time.perf_counter()
        offline.requests(prep_items)
        row["prep_ms"] = round(1000 * (time.perf_counter() - t0) / len(prep_items), 1)
        for name, engine in engines.items():
            tagger = Tagger(engine, vocab, template, settings, shortlister=shortlister)
            tagger.tag_batch(warm[:2])
            t0 = time.perf_counter()
            results = tagger.tag_batch(items)
            row[f"{name}_s_item"] = round((time.perf_counter() - t0) / len(items), 2)
            row[f"{name}_in_vocab"] = in_vocabulary(results, vocab)
            if name == "vllm" or size <= 1000:
                whole = Tagger(engine, vocab, template, TaggingSettings(shortlist_k=0))
                t0 = time.perf_counter()
                try:
                    whole.tag_batch(items)
                    row[f"{name}_whole_s_item"] = round((time.perf_counter() - t0) / len(items), 2)
                except Exception as exc:  # e.g. llguidance: "schema too large" at 100,000 values
                    row[f"{name}_whole_s_item"] = f"fails: {str(exc).splitlines()[0][:60]}"
        rows.append(row)
        print(row, flush=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "-")) for k in keys) + " |")
    for e in engines.values():
        e.close()


if __name__ == "__main__":
    main()
