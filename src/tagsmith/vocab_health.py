"""What a vocabulary should change, read off the vocabulary itself and the tags it produced.

`audit` finds, per closed facet,
  - near-duplicate values: the same key once case, punctuation, plurals, unit spellings and
    number formats are set aside ("Men's" / "mens", "10 cm" / "10cm" / "10 centimeters"), and,
    with a sentence encoder, pairs whose embeddings are very close ("Ladies" / "Women");
  - with tagged output: values never or rarely given, facets almost always left empty, and the
    answers the post-check rejected most often (what the model wanted to say but could not).
Merges are proposed as a patch (`vocab_patch`): the most used value of a group (else the first
in the file) keeps its name and the others become its aliases, so old tags map forward.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tagsmith.text import fold, singular
from tagsmith.units import unit_of
from tagsmith.vocab_patch import FacetPatch, Patch
from tagsmith.vocabulary import Facet, VocabularySet


def loose_key(value: str) -> str:
    """The key two spellings of one value share: folded case, units and numbers in one form,
    apostrophes and other punctuation and spaces dropped, a plural's final s dropped."""
    text = fold(value).replace("\u2019", "'")
    text = re.sub(r"(\d)\s*(\"|'')", r"\1 in ", text)
    text = re.sub(r"(\d),(\d{3})(?!\d)", r"\1\2", text)                     # 1,000 -> 1000
    text = NUMBER.sub(lambda m: _number(m.group()), text)                    # 2.50 -> 2.5, 3.0 -> 3
    # a fraction stays one token: "1/2 gal" and "12 gal" are two values
    tokens = re.findall(r"\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?|[^\W\d_]+", text.replace("'", ""))
    return "".join(singular(unit_of(t) or t) for t in tokens)


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _number(text: str) -> str:
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    return (whole.lstrip("0") or "0") + (f".{fraction}" if fraction else "")


def numbers(value: str) -> list[str]:
    """The numbers a value states, in one form: values that state different numbers ("2 GB",
    "4 GB") are different values however close their embeddings are."""
    return [_number(n) for n in NUMBER.findall(value.replace(",", ""))]


@dataclass
class Duplicates:
    """Values of one facet that look like one value written several ways."""

    values: list[str]
    why: str
    similarity: float | None = None


def near_duplicates(facet: Facet, encoder: Any = None, threshold: float = 0.9) -> list[Duplicates]:
    """Groups of near-duplicate values of a closed facet. With `encoder` (a TextEncoder), also
    pairs whose embeddings have cosine similarity of at least `threshold` and that state the
    same numbers."""
    groups: dict[str, list[str]] = {}
    for v in facet.allowed:
        groups.setdefault(loose_key(v), []).append(v)
    found = [Duplicates(vs, "same letters and digits once case, punctuation, plurals and units are set aside")
             for vs in groups.values() if len(vs) > 1]
    if encoder is not None and len(facet.allowed) > 1:
        singles = [vs[0] for vs in groups.values()]  # one per spelling group, so pairs are new
        vectors = encoder.encode(singles)
        sims = vectors @ vectors.T
        taken: set[int] = set()
        for i in range(len(singles)):
            for j in range(i + 1, len(singles)):
                if (sims[i, j] >= threshold and i not in taken and j not in taken
                        and numbers(singles[i]) == numbers(singles[j])):
                    found.append(Duplicates([singles[i], singles[j]], "close in meaning (sentence embeddings)",
                                            round(float(sims[i, j]), 3)))
                    taken.update((i, j))
    return found


@dataclass
class FacetUsage:
    items: int = 0            # items tagged with this facet's vocabulary
    with_value: int = 0       # of them, with a value for this facet
    values: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)


def usage(records: Iterable[dict[str, Any]], vocabularies: VocabularySet) -> dict[tuple[str, str], FacetUsage]:
    """Per (vocabulary, facet): how often it got a value, each value's count, rejected answers."""
    out: dict[tuple[str, str], FacetUsage] = {}
    for r in records:
        vocab = vocabularies.named(r.get("vocabulary"))
        if vocab is None or r.get("error"):
            continue
        tags = r.get("tags") or {}
        for f in vocab.facets:
            u = out.setdefault((vocab.name, f.name), FacetUsage())
            u.items += 1
            given = tags.get(f.name) or []
            u.with_value += bool(given)
            u.values.update(given)
        for rej in r.get("rejected") or []:
            if isinstance(rej, dict) and rej.get("facet") and (vocab.name, rej["facet"]) in out:
                out[(vocab.name, rej["facet"])].rejected[str(rej.get("value", ""))] += 1
    return out


@dataclass
class FacetAudit:
    vocabulary: str
    facet: str
    duplicates: list[Duplicates]
    usage: FacetUsage | None = None
    #: values given at most `rare` times (with tagged output)
    rare: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Audit:
    facets: list[FacetAudit]
    #: share of items under which a facet counts as almost always empty
    empty_share: float = 0.05

    def patch(self) -> Patch:
        """Alias merges for every duplicate group: the most used value keeps its name."""
        out: Patch = {}
        for fa in self.facets:
            merges = []
            for d in fa.duplicates:
                counts = fa.usage.values if fa.usage else Counter()
                into = max(d.values, key=lambda v: (counts[v], -d.values.index(v)))
                entry: dict[str, Any] = {"into": into, "aliases": [v for v in d.values if v != into], "why": d.why}
                if d.similarity is not None:
                    entry["similarity"] = d.similarity
                if counts:
                    entry["used"] = {v: counts[v] for v in d.values}
                merges.append(entry)
            if merges:
                out.setdefault(fa.vocabulary, {})[fa.facet] = FacetPatch(merge=merges)
        return out

    def markdown(self) -> str:
        lines = ["## Vocabulary audit", ""]
        dupes = [(fa, d) for fa in self.facets for d in fa.duplicates]
        lines += [f"### Near-duplicate values ({len(dupes)})", ""]
        if dupes:
            lines += ["| vocabulary | facet | values | why |", "|---|---|---|---|"]
            lines += [f"| {fa.vocabulary} | {fa.facet} | {' / '.join(d.values)} | {d.why}"
                      + (f" ({d.similarity:.2f})" if d.similarity is not None else "") + " |" for fa, d in dupes]
        else:
            lines.append("none found")
        used = [fa for fa in self.facets if fa.usage is not None]
        if used:
            total = sum(1 for fa in used for _ in fa.rare)
            lines += ["", f"### Values never or rarely given ({total})", ""]
            for fa in used:
                if fa.rare:
                    shown = ", ".join(f"{v} ({n})" for v, n in fa.rare[:30])
                    more = f", ... ({len(fa.rare) - 30} more)" if len(fa.rare) > 30 else ""
                    lines.append(f"- {fa.vocabulary} / {fa.facet}: {shown}{more}")
            empty = [fa for fa in used if fa.usage and fa.usage.items
                     and fa.usage.with_value / fa.usage.items < self.empty_share]
            lines += ["", f"### Facets almost always empty (a value on under {100 * self.empty_share:.0f}% of items)", ""]
            lines += [f"- {fa.vocabulary} / {fa.facet}: {fa.usage.with_value} of {fa.usage.items} items"
                      for fa in empty if fa.usage] or ["none"]
            rejected = [(fa, v, n) for fa in used if fa.usage for v, n in fa.usage.rejected.most_common(10)]
            lines += ["", "### Answers most often rejected by the post-check (candidate missing values)", ""]
            lines += [f"- {fa.vocabulary} / {fa.facet}: {v!r} x{n}" for fa, v, n in rejected] or ["none"]
        return "\n".join(lines) + "\n"


def audit(vocabularies: VocabularySet, records: Sequence[dict[str, Any]] | None = None, *,
          encoder: Any = None, threshold: float = 0.9, rare: int = 0) -> Audit:
    """Audit every closed facet; with `records` (tagged output), usage too: values given at
    most `rare` times are listed."""
    use = usage(records, vocabularies) if records is not None else None
    out = []
    for vocab in vocabularies:
        for f in vocab.facets:
            if f.extractive:
                continue
            u = use.get((vocab.name, f.name), FacetUsage()) if use is not None else None
            few = sorted(((v, u.values[v]) for v in f.allowed if u.values[v] <= rare), key=lambda x: x[1]) if u else []
            out.append(FacetAudit(vocab.name, f.name, near_duplicates(f, encoder, threshold), u, few))
    return Audit(out)
