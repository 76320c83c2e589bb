"""Do the transformers engine's own decoding loop and outlines write the same answers?

    python eval/compare_decoders.py [--n 48] [--dtype float32|bfloat16|auto] [--data PATH]

The first N WDC-PAVE train offers, the shipped adapter merged, `compact` template, its answer
shape: each prompt answered by `engines/guided.py` (forced tokens fast-forwarded) and by
outlines token by token with the same llguidance masks, batches of 8 both ways. Prints how
many answers are identical and each engine path's time; the answers that differ are listed.
Under greedy decoding with the same masks they can differ only where the multi-token passes
round differently (bf16), never in float32 unless the loop is wrong.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tagsmith.adapters import choose_adapter, trained_shape
from tagsmith.items import read_items
from tagsmith.model_store import merge_adapter, resolve_model
from tagsmith.runtime import RunSpec, build_tagger
from tagsmith.vocabulary import resolve_vocabularies

DATA = Path(__file__).resolve().parents[2] / "shared/data/wdc-pave/wdc_with_all_attributes_normalized/train_large.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--dtype", default="float32", choices=["auto", "float32", "bfloat16"])
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    from outlines.inputs import Chat

    offers = list(read_items(args.data))[:args.n]
    base = resolve_model("embedded")
    adapter = choose_adapter("wdc-pave-smollm2", base.model_id, resolve_vocabularies("wdc-pave")).path
    config = Path(tempfile.mkdtemp()) / "dtype.toml"
    config.write_text(f'[engine.transformers]\ndtype = "{args.dtype}"\n')
    built = build_tagger(RunSpec(vocab="wdc-pave", model=merge_adapter(base, adapter).path, engine="transformers",
                                 adapter="none", template="compact", answer_shape=trained_shape(adapter),
                                 config=str(config)))
    engine = built.tagger.engine
    requests = built.tagger.requests(offers)
    t0 = time.perf_counter()
    guided = [g.text for i in range(0, len(requests), 8) for g in engine.generate(requests[i:i + 8])]
    guided_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outlines = []
    for r in requests:  # one at a time through outlines (a batch of one schema)
        outlines.append(engine._run(engine._generator(r.schema), [r], Chat)[0].text)
    outlines_s = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(guided, outlines, strict=True))
    print(f"{same}/{len(requests)} identical answers ({args.dtype}); guided {guided_s:.1f} s, "
          f"outlines one at a time {outlines_s:.1f} s")
    for offer, a, b in zip(offers, guided, outlines, strict=True):
        if a != b:
            print(f"\n{offer.id}\n  guided:   {a}\n  outlines: {b}")


if __name__ == "__main__":
    main()
