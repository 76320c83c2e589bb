"""Does `tagsmith vocab suggest` find values a vocabulary lacks? Remove some, see if they come back.

    python eval/bench_vocab_suggest.py [--share 0.1] [--seed 0] [--limit N] [--top 10 --top 20]
                                       [--min-support 1] [--engine auto] [--adapter auto] [--template T]
                                       [--out DIR]

From WDC-PAVE's train-split vocabulary (`wdc-pave-train`) a share of the closed facets' values
is removed at random (seeded), and `vocab suggest` runs over the train items with the reduced
vocabulary. A removed value counts as recovered when one of its facet's top-k suggestions has
the same loose key (`vocab_health.loose_key`: case, punctuation, plurals and units aside) as
the value or one of its aliases. The model's open answers are kept in OUT/answers.jsonl, so a
second run with other options costs only the ranking. Reported, for each k of --top:

- recall@k over the removed values that are the gold value of at least one scored item (the
  others cannot come back from these items), over those whose text also states them
  verbatim (what an open, copying answer can find at all), and over those that the reduced
  vocabulary does not still hold in another spelling with the same loose key ("44 gallon"
  removed, "44-gal" kept: suggest proposes it as a spelling of the kept value, not a new one);
- precision@k: the share of the top-k suggestions that are a removed value (the rest are new
  spellings, other values, or noise; the patch shows them with their evidence).

95% intervals: percentile bootstrap over values (recall) and over suggestions (precision).
A benchmark, not a test: the open tagging run takes minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from tagsmith.gold import canonical_gold, load_dataset, split
from tagsmith.runtime import RunSpec
from tagsmith.text import find_span
from tagsmith.vocab_health import loose_key
from tagsmith.vocab_patch import FacetPatch, apply_patch, write_vocabularies
from tagsmith.vocab_suggest import SuggestRun
from tagsmith.vocabulary import resolve_vocabularies

DATA = Path(__file__).resolve().parents[2] / "shared/data/wdc-pave/wdc_with_all_attributes_normalized/train_large.jsonl"


def interval(hits: list[int], n: int = 1000, seed: int = 0) -> tuple[float, float]:
    if not hits:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    a = np.array(hits, dtype=float)
    means = a[rng.integers(0, len(a), size=(n, len(a)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--vocab", default="wdc-pave-train")
    ap.add_argument("--share", type=float, default=0.1, help="share of closed values removed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N train items")
    ap.add_argument("--top", type=int, action="append", help="k: suggestions per facet that count "
                    "(repeatable; default 10 and 20)")
    ap.add_argument("--min-support", type=int, default=1)
    ap.add_argument("--engine", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--adapter", default="auto")
    ap.add_argument("--template", default=None)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-vocab-suggest"))
    args = ap.parse_args()
    tops = sorted(set(args.top or [10, 20]))

    vocabularies = resolve_vocabularies(args.vocab)
    closed = [(v.name, f.name, value.value) for v in vocabularies for f in v.facets if not f.extractive
              for value in f.values]
    removed = random.Random(args.seed).sample(closed, round(args.share * len(closed)))
    for vocab in vocabularies:  # a facet keeps at least one value (an empty list is no facet)
        for f in vocab.facets:
            gone = [r for r in removed if r[:2] == (vocab.name, f.name)]
            if gone and len(gone) == len(f.values):
                removed.remove(gone[0])
    patch: dict[str, dict[str, FacetPatch]] = {}
    for vocab, facet, value in removed:
        patch.setdefault(vocab, {}).setdefault(facet, FacetPatch()).remove.append(value)
    reduced = apply_patch(vocabularies, patch)
    args.out.mkdir(parents=True, exist_ok=True)
    reduced_dir = args.out / f"vocab-minus-{args.share:g}-seed{args.seed}"
    write_vocabularies(reduced, args.vocab, reduced_dir)

    data = split(load_dataset(args.data), "train")
    golds = data.items[:args.limit] if args.limit else data.items
    items_path = args.out / "items.jsonl"
    with items_path.open("w", encoding="utf-8") as f:
        for g in golds:
            f.write(json.dumps({"id": g.item.id, "title": g.item.title, "description": g.item.description,
                                "category": g.item.category}, ensure_ascii=False) + "\n")
    # which removed values are some scored item's gold, and which of those its text states
    gold_of: dict[tuple[str, str, str], list[str]] = {}
    for g in golds:
        vocab = vocabularies.for_category(g.item.category)
        if vocab is None:
            continue
        for facet, values in canonical_gold(g.gold, vocabularies, g.item.category).items():
            for value in values:
                gold_of.setdefault((vocab.name, facet, value), []).append(f"{g.item.title}\n{g.item.description}")
    occurring = [r for r in removed if r in gold_of]
    stated = [r for r in occurring if any(find_span(r[2], text) for text in gold_of[r])]

    spec = RunSpec(vocab=str(reduced_dir), model=args.model, engine=args.engine, adapter=args.adapter,
                   template=args.template)
    run = SuggestRun(spec, resolve_vocabularies(reduced_dir), items_path, args.out / "answers.jsonl", progress=True)
    suggested = run.run(min_support=args.min_support, top=max(tops))
    print("\n".join(run.notes), file=sys.stderr)
    from tagsmith.vocab_patch import dump_patch

    (args.out / "suggested.yaml").write_text(dump_patch(suggested), encoding="utf-8")

    def keys(vocab: str, facet: str, value: str) -> set[str]:
        f = vocabularies.named(vocab).facet(facet)
        aliases = next((v.aliases for v in f.values if v.value == value), ()) if f else ()
        return {loose_key(x) for x in (value, *aliases)}

    def forms(entry: dict) -> list[str]:
        return [entry["value"], *entry.get("other_spellings", [])]

    def found(r: tuple[str, str, str], k: int) -> bool:
        fp = suggested.get(r[0], {}).get(r[1])
        want = keys(*r)
        return fp is not None and any(loose_key(form) in want for a in fp.add[:k] for form in forms(a))

    removed_keys = {(v, f): set() for v, f, _ in removed}
    for r in removed:
        removed_keys[(r[0], r[1])] |= keys(*r)

    def kept_keys(vocab: str, facet: str) -> set[str]:
        f = reduced.named(vocab).facet(facet)
        return {loose_key(x) for value in f.values for x in (value.value, *value.aliases)} if f else set()

    # "44 gallon" removed while "44-gal" stays: the vocabulary does not lack it, and suggest
    # rightly proposes it as a spelling of the kept value, not as a new one
    lacking = [r for r in occurring if not keys(*r) & kept_keys(r[0], r[1])]
    rows = [("removed values that are some item's gold", occurring), ("... and stated verbatim in its text", stated),
            ("... not kept under another spelling (loose key)", lacking)]
    print(f"\n{len(closed)} closed values, {len(removed)} removed (share {args.share}, seed {args.seed}); "
          f"{len(golds)} train items; min support {args.min_support}\n")
    print("| measure | n | value [95% CI] |\n|---|---|---|")
    for k in tops:
        for label, values in rows:
            hits = [int(found(r, k)) for r in values]
            lo, hi = interval(hits)
            print(f"| recall@{k}, {label} | {len(values)} | {100 * np.mean(hits or [0]):.1f} "
                  f"[{100 * lo:.1f}, {100 * hi:.1f}] |")
        precision_hits = [int(any(loose_key(form) in removed_keys.get((vocab, facet), set()) for form in forms(a)))
                          for vocab, facets in suggested.items() for facet, fp in facets.items() for a in fp.add[:k]]
        lo, hi = interval(precision_hits)
        print(f"| precision@{k} (suggestions that are removed values) | {len(precision_hits)} | "
              f"{100 * np.mean(precision_hits or [0]):.1f} [{100 * lo:.1f}, {100 * hi:.1f}] |")
    print(f"\ncommand: python eval/bench_vocab_suggest.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
