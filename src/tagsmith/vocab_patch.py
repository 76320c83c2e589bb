"""Vocabulary patches: proposed changes a person reads, edits and applies.

`tagsmith vocab suggest` (values the vocabulary lacks) and `tagsmith vocab audit` (near-duplicate
values to merge) write their proposals as one YAML patch; `tagsmith vocab apply` turns the
edited patch into a new vocabulary, and `tagsmith retag` then updates only the items the change
touches. A patch, per vocabulary name and facet:

    vocabularies:
      kitchen:
        Color:
          add:                      # new values (support, examples, nearest: evidence only)
          - value: Navy
            support: 12
            examples: ["17: Navy linen apron"]
            nearest: [Blue]
          merge:                    # these become aliases of `into`, so old tags map forward
          - into: Stainless Steel
            aliases: [Stainless-Steel, stainless steels]
            why: same letters and digits
          remove: [Chrome]          # values dropped (retag re-tags the items that held them)

Everything but `value`, `into`, `aliases` and `remove` is evidence for the reader and is ignored
when applying. Deleting an entry rejects that proposal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tagsmith.errors import VocabularyError
from tagsmith.text import fold
from tagsmith.vocabulary import (Facet, Value, Vocabulary, VocabularySet, parse_vocabulary, vocabulary_files,
                                 vocabulary_path)

HEADER = "# tagsmith vocabulary patch: edit it, then `tagsmith vocab apply PATCH VOCAB -o NEW`\n"


@dataclass
class FacetPatch:
    add: list[dict[str, Any]] = field(default_factory=list)
    merge: list[dict[str, Any]] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.merge or self.remove)


#: vocabulary name -> facet name -> changes
Patch = dict[str, dict[str, FacetPatch]]


def dump_patch(patch: Patch) -> str:
    body = {"vocabularies": {
        vocab: {facet: {k: v for k, v in (("add", fp.add), ("merge", fp.merge), ("remove", fp.remove)) if v}
                for facet, fp in facets.items() if fp}
        for vocab, facets in patch.items() if any(facets.values())}}
    return HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def load_patch(path: str | Path) -> Patch:
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VocabularyError("patch file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise VocabularyError(f"not a readable YAML patch ({exc})", path=str(p)) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("vocabularies") or {}, dict):
        raise VocabularyError("expected a mapping with 'vocabularies'", path=str(p))
    out: Patch = {}
    for vocab, facets in (raw.get("vocabularies") or {}).items():
        if not isinstance(facets, dict):
            raise VocabularyError(f"{vocab}: expected facet names mapping to add/merge/remove", path=str(p))
        for facet, changes in facets.items():
            where = f"{vocab} / {facet}"
            if not isinstance(changes, dict) or set(changes) - {"add", "merge", "remove"}:
                raise VocabularyError(f"{where}: expected only 'add', 'merge' and 'remove'", path=str(p))
            add = [{"value": a} if isinstance(a, str) else a for a in changes.get("add") or []]
            merge = changes.get("merge") or []
            remove = changes.get("remove") or []
            if not all(isinstance(a, dict) and isinstance(a.get("value"), str) for a in add):
                raise VocabularyError(f"{where}: each 'add' entry needs a 'value'", path=str(p))
            if not all(isinstance(m, dict) and isinstance(m.get("into"), str)
                       and isinstance(m.get("aliases"), list) for m in merge):
                raise VocabularyError(f"{where}: each 'merge' entry needs 'into' and a list of 'aliases'", path=str(p))
            if not isinstance(remove, list) or not all(isinstance(r, str) for r in remove):
                raise VocabularyError(f"{where}: 'remove' must be a list of values", path=str(p))
            out.setdefault(str(vocab), {})[str(facet)] = FacetPatch(add, merge, [str(r) for r in remove])
    return out


def _apply_facet(facet: Facet, changes: FacetPatch, where: str) -> Facet:
    if facet.extractive:
        raise VocabularyError(f"{where}: an extractive facet has no values to change")
    values: dict[str, Value] = {v.value: v for v in facet.values}
    by_fold = {fold(v): v for v in values}

    def existing(name: str) -> str | None:
        return by_fold.get(fold(name))

    for name in changes.remove:
        key = existing(name)
        if key is None:
            raise VocabularyError(f"{where}: cannot remove {name!r}: not a value")
        del values[key]
    for entry in changes.merge:
        into = existing(entry["into"])
        if into is None or into not in values:
            raise VocabularyError(f"{where}: cannot merge into {entry['into']!r}: not a value")
        aliases = list(values[into].aliases)
        for alias in map(str, entry["aliases"]):
            key = existing(alias)
            if key == into:
                continue
            if key is not None and key in values:  # a value merged away: it and its aliases map to `into`
                aliases += [values[key].value, *values.pop(key).aliases]
            else:
                aliases.append(alias)
        values[into] = values[into].model_copy(update={"aliases": tuple(dict.fromkeys(aliases))})
    for entry in changes.add:
        if existing(entry["value"]) is not None and existing(entry["value"]) in values:
            raise VocabularyError(f"{where}: cannot add {entry['value']!r}: already a value")
        values[entry["value"]] = Value(value=entry["value"])
    return facet.model_copy(update={"values": tuple(values.values())})


def apply_patch(vocabularies: VocabularySet, patch: Patch) -> VocabularySet:
    """The vocabularies with the patch applied; every change is checked (a value to merge into
    or remove must exist, an added one must not) and the result validated as a vocabulary."""
    unknown = sorted(name for name in patch if vocabularies.named(name) is None)
    if unknown:
        raise VocabularyError(f"the patch names vocabularies this one does not have: {', '.join(unknown)}")
    out = []
    for vocab in vocabularies:
        facets_patch = patch.get(vocab.name, {})
        missing = sorted(set(facets_patch) - {f.name for f in vocab.facets})
        if missing:
            raise VocabularyError(f"{vocab.name}: the patch names facets it does not have: {', '.join(missing)}")
        facets = [(_apply_facet(f, facets_patch[f.name], f"{vocab.name} / {f.name}") if f.name in facets_patch else f)
                  for f in vocab.facets]
        # validated again from plain data: duplicate aliases and the like are refused here
        out.append(parse_vocabulary(vocab.model_copy(update={"facets": tuple(facets)}).model_dump(mode="json")))
    return VocabularySet(out, source=vocabularies.source)


def vocabulary_yaml(vocab: Vocabulary) -> str:
    """A vocabulary as YAML a person edits: defaults left out, plain values as plain strings."""
    raw = vocab.model_dump(mode="json", exclude_defaults=True)
    for f in raw["facets"]:
        if "values" in f:
            f["values"] = [v["value"] if set(v) == {"value"} else v for v in f["values"]]
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)


def write_vocabularies(vocabularies: VocabularySet, source: str | Path, out: str | Path) -> list[Path]:
    """Write patched vocabularies as `source` was laid out: one file, or a folder of files with
    the same names (a built-in name's folder becomes `out/`)."""
    src, target = vocabulary_path(source), Path(out)
    if src.is_file():
        if target.is_dir():
            target = target / src.name
        target.write_text(vocabulary_yaml(next(iter(vocabularies))), encoding="utf-8")
        return [target]
    if target.exists() and not target.is_dir():
        raise VocabularyError("the vocabulary is a folder of files: -o must be a folder", path=str(target))
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for file, vocab in zip(vocabulary_files(src), vocabularies, strict=True):
        path = target / file.with_suffix(".yaml").name
        path.write_text(vocabulary_yaml(vocab), encoding="utf-8")
        written.append(path)
    return written
