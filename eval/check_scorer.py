"""Reproduce the ExtractGPT authors' micro-F1 from their released predictions with our scorer.

    python eval/check_scorer.py [--data ../shared/data/extractgpt]

Prints our F1 beside the figure listed in shared/data/extractgpt/README.md for each run;
the scorer is trusted only if they agree.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from tagsmith.evaluation.metrics import aggregate, score_slot

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "extractgpt"
#: file name prefix -> published micro-F1 (shared/data/extractgpt/README.md)
PUBLISHED = {
    "list-ae-110k-10-shots": 82.16, "list-oa-mine-10-shots": 74.01,
    "schema_ae_110k_gpt_4_0613_shots_10_SemanticSimilarity_0_2": 85.50,
    "schema_oa_mine_gpt_4_0613_shots_10_SemanticSimilarity_0_2": 80.19,
    "schema_ae_110k_gpt_4_0613_shots_10_SemanticSimilarity_1_0": 87.54,
    "schema_oa_mine_gpt_4_0613_shots_10_SemanticSimilarity_1_0": 82.16,
    "schema_ae_110k_gpt_4_0613_10_SemanticSimilarity_0_2___json_schema_ensembling": 85.92,
    "schema_oa_mine_gpt_4_0613_10_SemanticSimilarity_0_2___json_schema_ensembling": 81.97,
    "schema_ae_110k_gpt_4_0613_10_SemanticSimilarity_1_0___json_schema_ensembling": 87.61,
    "schema_oa_mine_gpt_4_0613_10_SemanticSimilarity_1_0___json_schema_ensembling": 83.43,
}


def prediction(raw: str) -> dict[str, str]:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def score_file(path: Path) -> tuple[float, int]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        examples = json.load(handle)["examples"]
    slots = []
    for n, ex in enumerate(examples):
        pred = prediction(ex.get("pred"))
        for attr, values in ex["target_scores"].items():
            gold = [v for v in values if v != "n/a"]
            p = pred.get(attr)
            p = "" if p is None or str(p).strip() in ("n/a", "") else str(p)
            slots.append(score_slot(str(n), attr, gold, [p] if p else []))
    return aggregate(slots, bootstrap=0).f1 * 100, len(examples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    args = ap.parse_args()
    worst = 0.0
    for path in sorted((args.data / "reference_predictions").glob("*.gz")):
        key = next((k for k in PUBLISHED if path.name.startswith(k)), None)
        f1, n = score_file(path)
        pub = PUBLISHED.get(key) if key else None
        diff = f"{f1 - pub:+.2f}" if pub is not None else "n/a"
        worst = max(worst, abs(f1 - pub)) if pub is not None else worst
        print(f"{path.name[:70]:72s} items {n:4d}  ours {f1:6.2f}  published {pub}  diff {diff}")
    print(f"largest difference: {worst:.2f} F1 points")


if __name__ == "__main__":
    main()
