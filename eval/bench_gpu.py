"""Items/s on a GPU for the embedded model's architecture, with random weights.

    python eval/bench_gpu.py --export DIR         # on a machine with the embedded model: its config
                                                  # and tokenizer, no weights (a few MB)
    python eval/bench_gpu.py --skeleton DIR [--n 256] [--answer-tokens 64] [--lora-rank 16]
                             [--engines transformers,transformers+lora,vllm,vllm+lora] [--layers N]

A machine lent for GPU checks may receive only a few tens of MB, so the model's weights cannot
travel; its architecture can. `--skeleton` builds SmolLM2-135M from the exported config with
random weights (the same compute per token as the real model), saves it beside a random LoRA
adapter, and tags N synthetic products with the shipped wdc-pave vocabularies and the `compact`
template through the same path as `tagsmith tag` (schema, parsing, confidences), on each engine:
the transformers engine without and with the adapter (applied per token by peft), and vLLM
where it is installed. Random weights write arbitrary answers, so every answer is capped at
`--answer-tokens` (`[tagging] max_new_tokens`) and the table reports output tokens/s beside
items/s; `decode` is the bare model generating exactly that many tokens per item without a
schema, batch by batch, the ceiling the tagging path is measured against. `--layers` shrinks
the model (a smoke test on a CPU; figures then mean nothing). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

SKELETON_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                  "chat_template.jinja")
WORDS = ("HP", "Xeon", "2.0GHz", "kit", "stainless", "steel", "shelf", "48\"", "rose", "gold", "ring", "14k",
         "Epson", "paper", "white", "organic", "green", "tea", "100", "bags", "black", "leather", "SATA", "1TB")


def export(target: Path) -> None:
    from tagsmith.model_store import resolve_model

    source = Path(resolve_model("embedded").path)
    target.mkdir(parents=True, exist_ok=True)
    for name in SKELETON_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    print(f"{target}: {sum(f.stat().st_size for f in target.iterdir()) / 2**20:.1f} MB")


def build(skeleton: Path, work: Path, layers: int | None, lora_rank: int, device: str) -> tuple[Path, Path]:
    """A model folder with random weights and a random LoRA adapter for it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(skeleton)
    if layers:
        config.num_hidden_layers = layers
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    model_dir, adapter_dir = work / "model", work / "adapter"
    model.save_pretrained(model_dir)
    for name in SKELETON_FILES:
        if (skeleton / name).is_file() and name != "config.json":
            shutil.copy2(skeleton / name, model_dir / name)
    lora = LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, init_lora_weights=False,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    # the adapter names its base by folder (tagsmith checks an adapter belongs to the model)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=model.dtype)
    get_peft_model(base, lora).save_pretrained(adapter_dir)
    return model_dir, adapter_dir


def products(n: int) -> list[Any]:
    from tagsmith.items import Item

    rng = random.Random(0)
    categories = ["Computers And Accessories", "Home And Garden", "Jewelry", "Office Products",
                  "Grocery And Gourmet Food"]
    return [Item(str(i), " ".join(rng.choices(WORDS, k=rng.randint(6, 14))),
                 " ".join(rng.choices(WORDS, k=rng.randint(20, 120))), category=categories[i % len(categories)])
            for i in range(n)]


def tag(engine: str, model: Path, adapter: Path | None, items: list[Any], answer_tokens: int,
        work: Path) -> dict[str, float]:
    from tagsmith.runtime import RunSpec, build_tagger, close_shared_engines

    config = work / f"{engine}.toml"
    config.write_text(f"[tagging]\nmax_new_tokens = {answer_tokens}\nmin_confidence = 0.0\n"
                      "[engine.vllm]\nmax_lora_rank = 64\n")
    spec = RunSpec(vocab="wdc-pave", model=str(model), engine=engine, adapter=str(adapter) if adapter else "none",
                   template="compact", answer_shape="filled", config=str(config))
    t0 = time.perf_counter()
    built = build_tagger(spec)
    load = time.perf_counter() - t0
    tagger, inner = built.tagger, built.tagger.engine
    tokens = [0]
    generate = inner.generate

    def counted(requests: Any) -> Any:
        out = generate(requests)
        tokens[0] += sum(g.completion_tokens for g in out)
        return out

    inner.generate = counted  # type: ignore[method-assign]
    tagger.tag_batch(items[:8])  # warm-up: kernels, grammar compilation
    tokens[0] = 0
    t0 = time.perf_counter()
    results = [r for i in range(0, len(items), inner.batch_size) for r in tagger.tag_batch(items[i:i + inner.batch_size])]
    seconds = time.perf_counter() - t0
    close_shared_engines()  # the next run loads its own (a vLLM holds most of the GPU's memory)
    return {"load_s": load, "items_per_s": len(items) / seconds, "out_tokens_per_s": tokens[0] / seconds,
            "errors": sum(bool(r.error) for r in results)}


def decode(model_dir: Path, items: list[Any], answer_tokens: int, batch_size: int, device: str) -> dict[str, float]:
    """The bare model writing exactly `answer_tokens` per item, no schema: the ceiling."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    model.to(device).eval()
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": f"{i.title}\n{i.description}"}],
                                             tokenize=False, add_generation_prompt=True) for i in items]
    t0 = time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(device)
        with torch.inference_mode():
            model.generate(**batch, max_new_tokens=answer_tokens, min_new_tokens=answer_tokens, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id or 0)
    seconds = time.perf_counter() - t0
    return {"items_per_s": len(items) / seconds, "out_tokens_per_s": len(items) * answer_tokens / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--export", type=Path, help="write the embedded model's config and tokenizer here, then stop")
    ap.add_argument("--skeleton", type=Path, help="a folder written by --export")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--answer-tokens", type=int, default=64)
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--engines", default="transformers,transformers+lora,vllm,vllm+lora")
    ap.add_argument("--layers", type=int, default=None, help="fewer layers (a smoke test; figures mean nothing)")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures here as JSON")
    args = ap.parse_args()
    if args.export:
        export(args.export)
        return
    if not args.skeleton:
        ap.error("give --export DIR or --skeleton DIR")
    import importlib.util

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    items = products(args.n)
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir, adapter_dir = build(args.skeleton, work, args.layers, args.lora_rank, device)
        print(f"{args.n} synthetic products, {name}, answers capped at {args.answer_tokens} tokens", flush=True)
        rows["decode (bare model, no schema, batches of 8)"] = decode(model_dir, items, args.answer_tokens, 8, device)
        for spec in args.engines.split(","):
            engine, _, lora = spec.partition("+")
            if engine == "vllm" and importlib.util.find_spec("vllm") is None:
                print(f"{spec}: vLLM is not installed, skipped", flush=True)
                continue
            rows[spec] = tag(engine, model_dir, adapter_dir if lora else None, items, args.answer_tokens, work)
            print(spec, {k: round(v, 2) for k, v in rows[spec].items()}, flush=True)
    print(f"\n| run ({name}) | items/s | output tokens/s |\n|---|---|---|")
    for label, row in rows.items():
        print(f"| {label} | {row['items_per_s']:.2f} | {row['out_tokens_per_s']:.0f} |")
    if args.out:
        args.out.write_text(json.dumps({"device": name, "n": args.n, "answer_tokens": args.answer_tokens,
                                        "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
