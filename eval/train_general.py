"""Train the general tagging adapter: many small vocabularies at once, so the model learns to read
a facet and its option list and pick (or copy), not one shop's values.

    python eval/train_general.py --out adapters/general-smollm2 [--per-dataset 400] [--epochs 1]
                                 [--exclude-category office-products] [--max-steps N]

Tasks are drawn from three labelled sources in ../shared/data, the same number from each so none
dominates: WDC-PAVE's train split (its five category vocabularies; each task asks 1-4 of the
category's facets, closed ones with their list cut to the gold values plus random other values,
extractive ones as spans), and ExtractGPT's AE-110K and OA-Mine train files (each task asks 1-3
of the item's attributes as closed facets whose options are the gold value and other values of
that attribute in the same category; an attribute marked n/a becomes an optional facet answered
empty). Facet order and option order are shuffled per task (seeded), so neither position nor a
fixed list can be learnt; option lists have 2 to 14 values, the range of ImplicitAVE's. Every
task is rendered through the same template and schema as tagging (`training.train`), with the
`default` template, which lists every option.

ImplicitAVE is never read here: it stays the zero-shot yardstick (eval/zeroshot_implicitave.py).
`--exclude-category` keeps one WDC-PAVE category out, to be scored as a new vocabulary.

The data stays in ../shared; only the adapter (LoRA weights) is written. Training is resumable:
the same command continues from OUT/.checkpoint after a kill. The manifest marks the adapter
`general` (no vocabulary of its own), which is how `--adapter auto` finds it for vocabularies no
specific adapter was trained on.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path

from tagsmith.config import TaggingSettings
from tagsmith.gold import GoldItem, load_dataset, split
from tagsmith.items import Item
from tagsmith.prompts import load_template
from tagsmith.text import fold, slug
from tagsmith.training import TrainSettings, train, write_manifest
from tagsmith.vocabulary import Facet, Value, Vocabulary, VocabularySet, resolve_vocabularies

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
WDC = SHARED / "wdc-pave/wdc_with_all_attributes_normalized/train_large.jsonl"
EXTRACTGPT = {"ae-110k": SHARED / "extractgpt/processed_datasets/ae-110k/train.jsonl",
              "oa-mine": SHARED / "extractgpt/processed_datasets/oa-mine/train.jsonl"}
MIN_OPTIONS, MAX_OPTIONS = 2, 14


def options(gold: list[str], pool: list[str], rng: random.Random) -> list[str]:
    """The gold values plus random others of the same facet, 2-14 in all, shuffled."""
    taken = {fold(v) for v in gold}
    others = list({fold(v): v for v in pool if fold(v) not in taken}.values())  # one spelling each
    size = rng.randint(MIN_OPTIONS, MAX_OPTIONS)
    picked = list(dict.fromkeys(gold)) + rng.sample(others, min(len(others), max(0, size - len(gold))))
    rng.shuffle(picked)
    return picked


def task(source: str, n: int, g: GoldItem, facets: list[Facet], gold: dict[str, list[str]]) -> tuple[GoldItem, Vocabulary]:
    name = f"general/{source}/{n}"
    item = Item(name, g.item.title, g.item.description, name)
    return GoldItem(item, gold), Vocabulary(name=name, category=name, facets=tuple(facets))


def wdc_tasks(n: int, rng: random.Random, exclude: set[str]) -> list[tuple[GoldItem, Vocabulary]]:
    data = split(load_dataset(WDC), "train")
    vocabularies = resolve_vocabularies("wdc-pave-train")
    items = [g for g in data.items if g.item.category and slug(g.item.category) not in exclude]
    out = []
    for k, g in enumerate(rng.sample(items, min(n, len(items)))):
        vocab = vocabularies.for_category(g.item.category)
        chosen = rng.sample(list(vocab.facets), rng.randint(1, min(4, len(vocab.facets))))
        facets, gold = [], {}
        for f in chosen:
            values = g.gold.get(f.name, [])
            if f.extractive:
                facets.append(f)
            else:
                canonical = [c for v in values if (c := f.canonical(v))]
                if len(canonical) != len(values):  # a gold value the train-only list lacks
                    continue
                keep = set(options(canonical, list(f.allowed), rng))
                facets.append(f.model_copy(update={"values": tuple(v for v in f.values if v.value in keep),
                                                   "hierarchy": None}))
                values = canonical
            gold[f.name] = values
        if facets:
            out.append(task("wdc-pave", k, g, facets, gold))
    return out


def extractgpt_tasks(source: str, n: int, rng: random.Random) -> list[tuple[GoldItem, Vocabulary]]:
    data = load_dataset(EXTRACTGPT[source])
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for g in data.items:
        for attr, values in g.gold.items():
            seen[(fold(g.item.category or ""), attr)].extend(values)
    out = []
    for k, g in enumerate(rng.sample(data.items, min(n, len(data.items)))):
        attrs = [a for a in g.gold if len(set(seen[(fold(g.item.category or ""), a)])) >= MIN_OPTIONS]
        if not attrs:
            continue
        facets, gold = [], {}
        for attr in rng.sample(attrs, rng.randint(1, min(3, len(attrs)))):
            values = g.gold[attr][:1]
            listed = options(values, seen[(fold(g.item.category or ""), attr)], rng)
            # a stated value: sometimes required, as option lists that cover every item are
            required = bool(values) and rng.random() < 0.5
            facets.append(Facet(name=attr, required=required, values=tuple(Value(value=v) for v in listed)))
            gold[attr] = values
        out.append(task(source, k, g, facets, gold))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-dataset", type=int, default=400, help="tasks drawn from each source")
    ap.add_argument("--exclude-category", action="append", default=None,
                    help="WDC-PAVE category kept out (scored as new); repeat for more [default: office-products]")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--max-text-chars", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.exclude_category = args.exclude_category or ["office-products"]
    rng = random.Random(args.seed)
    pairs = [*wdc_tasks(args.per_dataset, rng, set(args.exclude_category)),
             *(t for source in EXTRACTGPT for t in extractgpt_tasks(source, args.per_dataset, rng))]
    rng.shuffle(pairs)
    items = [g for g, _ in pairs]
    vocabularies = VocabularySet([v for _, v in pairs], source="general")
    counts = {s: sum(1 for g in items if g.item.id.startswith(f"general/{s}/")) for s in ("wdc-pave", *EXTRACTGPT)}
    print(f"{len(items)} tasks: {counts}")
    tagging = TaggingSettings(template="default", max_text_chars=args.max_text_chars)
    settings = TrainSettings(rank=args.rank, alpha=2 * args.rank, epochs=args.epochs, learning_rate=args.lr,
                             target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                             batch_size=4, max_length=768, seed=args.seed, max_steps=args.max_steps)
    result = train(items, vocabularies, load_template("default"), args.out, settings=settings, tagging=tagging)
    # no vocabulary of its own: `auto` gives it to vocabularies no specific adapter was trained on
    write_manifest(args.out, {"vocabularies": {}, "general": {
        "tasks": counts, "excluded_categories": args.exclude_category,
        "arguments": {k: str(v) for k, v in vars(args).items() if k != "out"}}})
    print(f"trained {result.steps} steps on {result.n_examples} tasks in {result.seconds:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
