"""Benchmark engines on the same offers: items/s, and the ratios that matter.

    python eval/bench_engines.py [--n 200] [--engines vllm,transformers] [--template default]
                                 [--adapter none|NAME|PATH [--merge]] [--data PATH] [--batch-size N]

Tags the first N offers of WDC-PAVE train_large (all categories, the built-in wdc-pave
vocabularies) with each engine, after one warm-up batch that is not timed (schema
compilation, CPU kernels). Every engine gets the same items, template and adapter (default:
the bare model), so the ratios compare engines and nothing else. Prints items/s and output
tokens/s per engine, the ratio vllm/transformers, and on vLLM the ratio
constrained/unconstrained throughput (the same prompts with no schema) and the share of the
bare engine's unconstrained rate that the whole tagging path reaches. Unconstrained answers
are capped at the length of the same item's constrained answer, so output tokens/s with and
without the schema compare the cost of the mask and nothing else. --merge folds the
adapter into the weights (`tagsmith model merge`) so no engine applies LoRA at run time. A
benchmark, not a test: minutes per engine on a CPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tagsmith.adapters import choose_adapter, trained_shape
from tagsmith.engines.base import GenerationRequest
from tagsmith.items import read_items
from tagsmith.model_store import merge_adapter, resolve_model
from tagsmith.runtime import RunSpec, build_tagger
from tagsmith.vocabulary import resolve_vocabularies

DATA = Path(__file__).resolve().parents[2] / "shared/data/wdc-pave/wdc_with_all_attributes_normalized/train_large.jsonl"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench(engine_name: str, items, warmup, model: str, template: str, adapter: str | None,
          shape: str, batch_size: int | None = None) -> dict[str, float]:
    spec = RunSpec(vocab="wdc-pave", model=model, engine=engine_name, adapter=adapter or "none", template=template,
                   answer_shape=shape, batch_size=batch_size)
    built, load_s = timed(lambda: build_tagger(spec))
    tagger, engine = built.tagger, built.tagger.engine
    tagger.tag_batch(warmup)
    results, seconds = timed(lambda: [r for i in range(0, len(items), engine.batch_size)
                                      for r in tagger.tag_batch(items[i:i + engine.batch_size])])
    row = {"load_s": load_s, "items_per_s": len(items) / seconds, "errors": sum(bool(r.error) for r in results),
           "tags_per_item": sum(len(v) for r in results for v in r.tags.values()) / len(items)}
    if engine_name == "vllm":
        # Same prompts through the engine alone in one call, with and without the schema. Each
        # answer without it may run at most as many tokens as the same item's constrained answer:
        # an unconstrained model need not stop where the schema stops it, and a longer answer is
        # not the mask's cost.
        constrained = tagger.requests(items)
        runs = {"constrained": timed(lambda: engine.generate(constrained))}
        free = [GenerationRequest(r.messages, None, max(1, o.completion_tokens), r.adapter)
                for r, o in zip(constrained, runs["constrained"][0], strict=True)]
        runs["unconstrained"] = timed(lambda: engine.generate(free))
        for label, (outs, secs) in runs.items():
            row[f"{label}_items_per_s"] = len(outs) / secs
            row[f"{label}_out_tokens_per_s"] = sum(o.completion_tokens for o in outs) / secs
    engine.close()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--engines", default="vllm,transformers")
    ap.add_argument("--template", default="default", help="prompt template (name or file) for every engine")
    ap.add_argument("--adapter", default="none", help="none (bare model), a shipped adapter's name or a folder")
    ap.add_argument("--merge", action="store_true", help="run the adapter merged into the weights")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="items per engine call for every engine [default: each engine's own]")
    args = ap.parse_args()
    offers = list(read_items(args.data))
    items, warmup = offers[:args.n], offers[-8:]
    vocabularies = resolve_vocabularies("wdc-pave")
    base = resolve_model("embedded")
    model, adapter = base.path, choose_adapter(args.adapter, base.model_id, vocabularies).path
    # answers written as the adapter was trained to write them (merged, the run has no adapter to ask)
    shape = trained_shape(adapter) if adapter else "full"
    if args.merge and adapter:
        model, adapter = merge_adapter(base, adapter).path, None
    print(f"{len(items)} offers, template {args.template}, adapter {args.adapter}{' merged' * args.merge}, "
          f"{shape} answers", flush=True)
    rows = {}
    for name in args.engines.split(","):
        rows[name] = bench(name, items, warmup, model, args.template, adapter, shape, args.batch_size)
        print(name, {k: round(v, 3) for k, v in rows[name].items()}, flush=True)
    if "vllm" in rows and "transformers" in rows:
        print(f"vllm/transformers items/s: {rows['vllm']['items_per_s'] / rows['transformers']['items_per_s']:.1f}x")
    if "unconstrained_items_per_s" in rows.get("vllm", {}):
        v = rows["vllm"]
        print(f"vllm constrained/unconstrained (capped at the constrained length): output tokens/s "
              f"{v['constrained_out_tokens_per_s'] / v['unconstrained_out_tokens_per_s']:.2f}, "
              f"items/s {v['constrained_items_per_s'] / v['unconstrained_items_per_s']:.2f}")
        # the tagger's whole path (prompts, schema, parsing, confidences) against the bare engine
        print(f"vllm tagging/unconstrained engine items/s: {v['items_per_s'] / v['unconstrained_items_per_s']:.2f}")


if __name__ == "__main__":
    main()
