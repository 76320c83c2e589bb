"""Benchmark the transformers engine's structured-output backends on the same offers.

    python eval/bench_structured_backends.py [--n 16] [--backends outlines_core,llguidance]
                                             [--template compact] [--adapter wdc-pave-smollm2]
                                             [--shortlist-above 500]

Tags the first N WDC-PAVE validation offers once per backend (a fresh engine each, so every
schema is compiled inside the timing, as in a real run) and prints s/item, the share of
answers identical to the first backend's, and F1-free sanity figures (errors, tags per item).
`--shortlist-above 50` gives every facet over 50 values a per-item shortlist, so each item
brings its own schema: the case where compile cost per schema decides. This is the
measurement behind the transformers engine's `structured_backend="auto"` rule.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tagsmith.adapters import choose_adapter
from tagsmith.engines import create_engine
from tagsmith.gold import load_dataset, split
from tagsmith.model_store import model_id
from tagsmith.prompts import load_template
from tagsmith.config import TaggingSettings
from tagsmith.tagger import Tagger
from tagsmith.vocabulary import resolve_vocabularies

DATA = Path(__file__).resolve().parents[2] / "shared/data/wdc-pave/wdc_with_all_attributes_normalized/train_large.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--backends", default="outlines_core,llguidance")
    ap.add_argument("--template", default="compact")
    ap.add_argument("--adapter", default="wdc-pave-smollm2", help="none, a shipped adapter's name or a folder")
    ap.add_argument("--shortlist-above", type=int, default=500)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    items = [g.item for g in split(load_dataset(args.data), "validation").items[:args.n]]
    vocabularies = resolve_vocabularies("wdc-pave")
    adapter = choose_adapter(args.adapter, model_id("embedded"), vocabularies).path
    settings = TaggingSettings(shortlist_above=args.shortlist_above)
    reference = None
    for backend in args.backends.split(","):
        engine = create_engine("transformers", "embedded", structured_backend=backend)
        tagger = Tagger(engine, vocabularies, load_template(args.template), settings, adapter=adapter)
        t0 = time.perf_counter()
        results = [r for i in range(0, len(items), engine.batch_size)
                   for r in tagger.tag_batch(items[i:i + engine.batch_size])]
        seconds = time.perf_counter() - t0
        engine.close()
        raws = [r.raw for r in results]
        reference = reference or raws
        same = sum(a == b for a, b in zip(raws, reference)) / len(raws)
        tags = sum(len(v) for r in results for v in r.tags.values()) / len(results)
        print(f"{backend}: {seconds / len(items):.2f} s/item, identical to first {100 * same:.0f}%, "
              f"errors {sum(bool(r.error) for r in results)}, tags/item {tags:.1f}", flush=True)


if __name__ == "__main__":
    main()
