"""What changed between two versions of a vocabulary, and which tagged items it touches.

When a shop edits its vocabulary, re-tagging millions of items is wasteful: most answers
cannot change. An item is re-tagged only when
  - it holds a value that was removed (or a value of a removed facet),
  - its vocabulary gained a facet (nothing was ever asked about it), or
  - a value added to one of its facets (or a new alias) occurs word for word in its text.
A renamed or merged value (a value of the new vocabulary lists the old one among its aliases)
is rewritten in place, without a model call. The last rule is a heuristic, stated as such: an added value that the
text never mentions can still be the right answer (say, a new colour family); `--all` re-tags
every item of a changed vocabulary for that case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tagsmith.text import fold, words
from tagsmith.vocabulary import Vocabulary, VocabularySet


@dataclass
class FacetChange:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # old value -> new value
    new_forms: list[str] = field(default_factory=list)  # surface forms (values, aliases) not accepted before


@dataclass
class VocabularyChange:
    name: str
    facets: dict[str, FacetChange] = field(default_factory=dict)
    added_facets: list[str] = field(default_factory=list)
    removed_facets: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added_facets or self.removed_facets or self.facets)

    def summary(self) -> str:
        parts = []
        if self.added_facets:
            parts.append(f"facets added: {', '.join(self.added_facets)}")
        if self.removed_facets:
            parts.append(f"facets removed: {', '.join(self.removed_facets)}")
        for name, c in self.facets.items():
            bits = [f"+{len(c.added)}" if c.added else "", f"-{len(c.removed)}" if c.removed else "",
                    f"{len(c.renamed)} renamed" if c.renamed else ""]
            parts.append(f"{name}: {' '.join(b for b in bits if b) or 'aliases changed'}")
        return f"{self.name}: " + ("; ".join(parts) if parts else "unchanged")


def diff_vocabulary(old: Vocabulary, new: Vocabulary) -> VocabularyChange:
    change = VocabularyChange(new.name)
    old_facets = {f.name: f for f in old.facets}
    new_facets = {f.name: f for f in new.facets}
    change.added_facets = [n for n in new_facets if n not in old_facets]
    change.removed_facets = [n for n in old_facets if n not in new_facets]
    for name in new_facets.keys() & old_facets.keys():
        a, b = old_facets[name], new_facets[name]
        if a.extractive or b.extractive:
            if a.extractive != b.extractive:  # a different kind of facet: treat as replaced
                change.removed_facets.append(name)
                change.added_facets.append(name)
            continue
        old_allowed, new_allowed = set(a.allowed), set(b.allowed)
        c = FacetChange()
        for value in a.allowed:
            if value in new_allowed:
                continue
            # a value that now lists the old one as an alias: a rename, or a merge into a value
            # that was there already (`vocab apply`); either way old tags map forward
            target = b.canonical(value)
            if target is not None:
                c.renamed[value] = target
            else:
                c.removed.append(value)
        c.added = [v for v in b.allowed if v not in old_allowed and v not in c.renamed.values()]
        old_forms = {fold(s) for s in a.surface_forms}
        c.new_forms = [s for s in b.surface_forms if fold(s) not in old_forms and s not in c.renamed.values()]
        if c.added or c.removed or c.renamed or c.new_forms:
            change.facets[name] = c
    return change


def diff_vocabularies(old: VocabularySet, new: VocabularySet) -> dict[str, VocabularyChange]:
    """Per vocabulary name of `new`; a vocabulary new in `new` counts as all facets added."""
    before = {v.name: v for v in old}
    out = {}
    for v in new:
        if v.name in before:
            out[v.name] = diff_vocabulary(before[v.name], v)
        else:
            out[v.name] = VocabularyChange(v.name, added_facets=[f.name for f in v.facets])
    return out


def _mentions(text: str, forms: list[str]) -> bool:
    """Does the text contain one of the forms as whole words (case-insensitive)? Same word
    splitting as the shortlist's exact mentions."""
    padded = f" {' '.join(words(text))} "
    return any(f" {' '.join(w)} " in padded for w in map(words, forms) if w)


@dataclass
class Update:
    """What to do with one previously tagged item."""

    retag: bool
    reasons: list[str]
    tags: dict[str, list[str]]  # the previous tags with renames applied (final when not re-tagged)


def plan_update(previous: dict[str, list[str]], text: str, change: VocabularyChange | None,
                retag_all: bool = False) -> Update:
    tags = {k: list(v) for k, v in previous.items()}
    if change is None or not change.changed:
        return Update(False, [], tags)
    reasons = []
    for name in change.removed_facets:
        if tags.pop(name, None):
            reasons.append(f"facet {name!r} removed")
    if change.added_facets:
        reasons.append(f"new facet(s) {', '.join(change.added_facets)}")
    for name, c in change.facets.items():
        held = tags.get(name, [])
        if name in tags:
            tags[name] = list(dict.fromkeys(c.renamed.get(v, v) for v in held if v not in c.removed))
        gone = [v for v in held if v in c.removed]
        if gone:
            reasons.append(f"{name}: {', '.join(gone)} removed")
        if c.new_forms and _mentions(text, c.new_forms):
            reasons.append(f"{name}: text mentions a new value")
    if retag_all and not reasons:
        reasons.append("vocabulary changed (--all)")
    return Update(bool(reasons), reasons, tags)


def tag_diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, Any]:
    """Added/removed tags per facet, only facets that changed."""
    added, removed = {}, {}
    for name in dict.fromkeys([*before, *after]):
        b, a = before.get(name, []), after.get(name, [])
        if plus := [v for v in a if v not in b]:
            added[name] = plus
        if minus := [v for v in b if v not in a]:
            removed[name] = minus
    return {"added": added, "removed": removed}
