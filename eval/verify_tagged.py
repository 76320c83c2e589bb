"""Check a `tagsmith tag` output file independently of the tagger's own post-check.

    python eval/verify_tagged.py --input offers.jsonl --output tagged.jsonl [--vocab wdc-pave]

Counts items, errors, tags, tags outside the vocabulary, duplicate tags and extractive
spans not found in the item's text; exits 1 if any of the last three is not zero.
"""

from __future__ import annotations

import argparse
import json
import sys

from tagsmith.items import read_items
from tagsmith.text import find_span, fold
from tagsmith.vocabulary import resolve_vocabularies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--vocab", default="wdc-pave")
    args = ap.parse_args()
    vocabularies = {v.name: v for v in resolve_vocabularies(args.vocab)}
    items = {i.id: i for i in read_items(args.input)}
    rows = [json.loads(line) for line in open(args.output, encoding="utf-8")]
    counts = dict(items=len(rows), unique_ids=len({r["id"] for r in rows}), errors=0, items_with_tags=0,
                  tags=0, out_of_vocabulary=0, duplicates=0, spans_not_in_text=0, rejected_by_post_check=0)
    for r in rows:
        counts["errors"] += bool(r["error"])
        counts["items_with_tags"] += bool(r["tags"])
        counts["rejected_by_post_check"] += len(r["rejected"])
        if not r["tags"]:
            continue
        vocab, item = vocabularies[r["vocabulary"]], items[r["id"]]
        text = f"{item.title}\n{item.description}"
        for facet_name, values in r["tags"].items():
            facet = vocab.facet(facet_name)
            counts["tags"] += len(values)
            counts["duplicates"] += len(values) - len({fold(v) for v in values})
            for v in values:
                if facet is None or (not facet.extractive and v not in facet.allowed):
                    counts["out_of_vocabulary"] += 1
                elif facet.extractive and facet.normal(find_span(v, text, facet.normalize) or "") != v:
                    counts["spans_not_in_text"] += 1
    seconds = [r["seconds"] for r in rows]
    print(json.dumps({**counts, "mean_seconds_per_item": round(sum(seconds) / max(1, len(seconds)), 2)}))
    sys.exit(1 if counts["out_of_vocabulary"] or counts["duplicates"] or counts["spans_not_in_text"] else 0)


if __name__ == "__main__":
    main()
