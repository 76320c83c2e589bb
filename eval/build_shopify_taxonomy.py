"""Build the compact Shopify taxonomy the package ships (`--vocab shopify`).

    python eval/build_shopify_taxonomy.py [--source ../shared/data/shopify-taxonomy] \
        [--out src/tagsmith/vocabularies/shopify/taxonomy.json.gz]

Reads a folder laid out as Shopify's product-taxonomy repository (`dist/en/categories.txt`,
`dist/en/attributes.json`, `data/categories/*.yml`, `VERSION`) and writes categories (id, path,
attribute handles) and attributes (handle, name, value ids and names) as one gzipped JSON, with
the taxonomy's MIT license beside it. A newer release: point `--source` at it, or pass its
folder as `--vocab` directly (no build needed).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tagsmith.taxonomy import BUILTIN, read_source, write_compact

SOURCE = Path(__file__).resolve().parents[2] / "shared/data/shopify-taxonomy"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--out", type=Path, default=BUILTIN)
    args = ap.parse_args()
    taxonomy = read_source(args.source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_compact(taxonomy, args.out)
    shutil.copy(args.source / "LICENSE", args.out.parent / "LICENSE")
    linked = sum(1 for _, handles in taxonomy.categories.values() if handles)
    print(f"{len(taxonomy.categories)} categories ({linked} with attributes), {len(taxonomy.attributes)} attributes, "
          f"{sum(len(a.values) for a in taxonomy.attributes.values())} values, version {taxonomy.version} "
          f"-> {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
