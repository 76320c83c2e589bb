"""A product taxonomy as vocabularies: Shopify's Standard Product Taxonomy, or any copy of it.

Shopify classifies in two steps, the category first and then the attributes that category
carries; so does tagsmith. The category tree becomes one hierarchical facet (`Category`, values
are paths such as "Apparel & Accessories > Clothing > Dresses"), and each category's
attributes become a vocabulary of closed facets (their values from the taxonomy) used once the
category is known.

Sources: a folder laid out as Shopify's repository is (`dist/en/categories.txt`,
`dist/en/attributes.json`, `data/categories/*.yml`), so a newer release works without code
changes, or the compact file this package ships (`vocabularies/shopify/taxonomy.json.gz`,
made by `eval/build_shopify_taxonomy.py`, MIT license beside it). Loading is cached per
process; the compact file loads in well under a second.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tagsmith.errors import VocabularyError
from tagsmith.text import fold
from tagsmith.vocabulary import Facet, Hierarchy, Value, Vocabulary, VocabularySet

BUILTIN = Path(__file__).parent / "vocabularies" / "shopify" / "taxonomy.json.gz"
SEPARATOR = " > "
CATEGORY = "Category"


@dataclass(frozen=True)
class Attribute:
    handle: str
    name: str
    #: (value id, value name)
    values: tuple[tuple[str, str], ...]


@dataclass
class Taxonomy:
    """Categories by id (their path, and the handles of the attributes they carry) and the
    attributes by handle."""

    version: str
    categories: dict[str, tuple[str, tuple[str, ...]]]
    attributes: dict[str, Attribute]
    _by_path: dict[str, str] = field(default_factory=dict, repr=False)
    _value_ids: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_path = {fold(path): cid for cid, (path, _) in self.categories.items()}

    def category_id(self, path: str) -> str | None:
        return self._by_path.get(fold(path))

    def category_vocabulary(self) -> Vocabulary:
        """One hierarchical facet of every category path (inner nodes are answers too: a
        product may be placed no deeper than the text allows)."""
        values = tuple(Value(value=path) for path, _ in self.categories.values())
        facet = Facet(name=CATEGORY, description="the product's category in the taxonomy",
                      hierarchy=Hierarchy(separator=SEPARATOR), values=values)
        return Vocabulary(name=f"shopify-{self.version}", facets=(facet,))

    def attribute_vocabulary(self, category_id: str) -> Vocabulary | None:
        """The closed facets of the attributes a category carries (None if it carries none)."""
        path, handles = self.categories[category_id]
        facets = []
        for handle in handles:
            attribute = self.attributes.get(handle)
            if attribute is None or not attribute.values:
                continue
            names = list({fold(n): n for _, n in attribute.values}.values())
            facets.append(Facet(name=attribute.name, values=tuple(Value(value=n) for n in names)))
        if not facets:
            return None
        return Vocabulary(name=f"shopify-{self.version}/{category_id}", category=path, facets=tuple(facets))

    def value_id(self, attribute_name: str, value: str) -> str | None:
        """The id of a value of the attribute of that name (attributes sharing a name share values)."""
        if not self._value_ids:
            for a in self.attributes.values():
                for vid, name in a.values:
                    self._value_ids.setdefault((a.name, fold(name)), vid)
        return self._value_ids.get((attribute_name, fold(value)))

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version,
                "categories": [[cid, path, list(handles)] for cid, (path, handles) in self.categories.items()],
                "attributes": [[a.handle, a.name, [list(v) for v in a.values]] for a in self.attributes.values()]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Taxonomy:
        return cls(str(data["version"]),
                   {cid: (path, tuple(handles)) for cid, path, handles in data["categories"]},
                   {h: Attribute(h, name, tuple((vid, n) for vid, n in values)) for h, name, values in data["attributes"]})


def _handle(text: str) -> str:
    """Attribute handles as categories and attributes both spell them ("target_gender",
    "target-gender", "skirt/dress-length-type" -> "skirt-dress-length-type")."""
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")


def read_source(folder: str | Path) -> Taxonomy:
    """A taxonomy from a folder laid out as Shopify's repository."""
    import yaml

    root = Path(folder)
    categories_txt = root / "dist" / "en" / "categories.txt"
    attributes_json = root / "dist" / "en" / "attributes.json"
    if not categories_txt.is_file() or not attributes_json.is_file():
        raise VocabularyError("not a taxonomy folder (needs dist/en/categories.txt and dist/en/attributes.json)",
                              path=str(root))
    paths: dict[str, str] = {}
    for line in categories_txt.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or " : " not in line:
            continue
        gid, path = line.split(" : ", 1)
        paths[gid.strip().rsplit("/", 1)[-1]] = path.strip()
    links: dict[str, tuple[str, ...]] = {}
    for yml in sorted((root / "data" / "categories").glob("*.yml")):
        for entry in yaml.safe_load(yml.read_text(encoding="utf-8")) or []:
            links[str(entry["id"])] = tuple(_handle(h) for h in entry.get("attributes") or [])
    attributes = {}
    for a in json.loads(attributes_json.read_text(encoding="utf-8"))["attributes"]:
        values = tuple((v["id"].rsplit("/", 1)[-1], v["name"]) for v in a.get("values") or [])
        attributes[_handle(a["handle"])] = Attribute(_handle(a["handle"]), a["name"], values)
        for extended in a.get("extended_attributes") or []:  # another name, the same values
            attributes[_handle(extended["handle"])] = Attribute(_handle(extended["handle"]), extended["name"], values)
    version_file = root / "VERSION"
    version = version_file.read_text().strip() if version_file.is_file() else "unknown"
    return Taxonomy(version, {cid: (path, links.get(cid, ())) for cid, path in paths.items()}, attributes)


def write_compact(taxonomy: Taxonomy, path: str | Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(taxonomy.to_json(), handle, ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=4)
def load_taxonomy(spec: str = "shopify") -> Taxonomy:
    """'shopify' (the shipped snapshot), a compact .json.gz, or a taxonomy source folder."""
    if spec == "shopify":
        path = BUILTIN
    else:
        path = Path(spec)
        if path.is_dir():
            return read_source(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return Taxonomy.from_json(json.load(handle))
    except (OSError, ValueError, KeyError) as exc:
        raise VocabularyError(f"cannot read the taxonomy ({exc})", path=str(path)) from None


def is_taxonomy(spec: str | Path) -> bool:
    s = str(spec)
    return s == "shopify" or s.endswith(".json.gz") or (Path(s) / "dist" / "en" / "categories.txt").is_file()


def taxonomy_vocabularies(spec: str | Path) -> VocabularySet:
    """The category vocabulary of a taxonomy, as `--vocab shopify` resolves it."""
    taxonomy = load_taxonomy(str(spec))
    return VocabularySet([taxonomy.category_vocabulary()], source=f"taxonomy:{spec}")


class CategoryAttributes:
    """The second step of taxonomy tagging: once an item's category is chosen, the attributes
    that category carries (its own vocabulary), and the taxonomy's ids of what was chosen."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._vocabs: dict[str, Vocabulary | None] = {}

    def vocabulary(self, category_path: str) -> Vocabulary | None:
        cid = self.taxonomy.category_id(category_path)
        if cid is None:
            return None
        if cid not in self._vocabs:
            self._vocabs[cid] = self.taxonomy.attribute_vocabulary(cid)
        return self._vocabs[cid]

    def ids(self, tags: dict[str, list[str]]) -> dict[str, list[str]]:
        """Taxonomy ids of the category and attribute values in `tags`."""
        out: dict[str, list[str]] = {}
        for facet, values in tags.items():
            if facet == CATEGORY:
                found = [self.taxonomy.category_id(v) for v in values]
            else:
                found = [self.taxonomy.value_id(facet, v) for v in values]
            out[facet] = [i for i in found if i]
        return out
