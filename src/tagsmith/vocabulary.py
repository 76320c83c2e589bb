"""Controlled vocabularies: the only tags a model is allowed to produce.

A vocabulary is a list of *facets* (Color, Material, Product Type, ...). A closed
facet lists its allowed values (each with optional aliases, e.g. "stainless steel"
for "Stainless Steel"); an *extractive* facet has no list and takes a span copied
from the item's own text (part numbers, model numbers). A hierarchical facet holds
category paths ("Home > Kitchen > Knives"); every ancestor of a listed path is an
allowed answer too, so a model may stop at a coarser level but never invent a node.

Vocabularies are YAML or JSON files; loading validates them and names the file and
facet in every error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tagsmith.errors import VocabularyError
from tagsmith.measures import Target, targets
from tagsmith.units import MEASURES
from tagsmith.text import fold, normalize

VOCAB_SUFFIXES = (".yaml", ".yml", ".json")
BUILTIN_DIR = Path(__file__).parent / "vocabularies"


class _Cached(BaseModel):
    """A frozen model whose `cached_property` values are worked out from its fields: a copy with
    changed fields (`model_copy(update=...)`) must work them out again, not inherit the
    original's (pydantic copies the instance dict, caches included)."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        if update:
            for name in _cached_properties(type(self)):
                copy.__dict__.pop(name, None)
        return copy


def _cached_properties(cls: type) -> list[str]:
    return [name for klass in cls.__mro__ for name, member in vars(klass).items()
            if isinstance(member, cached_property)]


class Value(BaseModel):
    """One allowed value of a closed facet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    description: str | None = None

    @field_validator("value")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a value may not be blank")
        return v.strip()


class Hierarchy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    separator: str = " > "


class Facet(_Cached):
    """One attribute to tag. Exactly one of `values` or `extractive` defines what it accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str | None = None
    max_values: int = Field(default=1, ge=1, le=100)
    #: Every item has a value for this facet (the answer may not be empty): for option lists
    #: that cover all items, such as a product type every product has.
    required: bool = False
    values: tuple[Value, ...] = ()
    extractive: bool = False
    max_length: int = Field(default=64, ge=1, le=1000,
                            description="longest span an extractive facet may copy")
    #: Extractive facets: how a copied span becomes the stored value, in order (text.NORMALIZERS):
    #: e.g. [alnum, upper] turns the text's "461137-b21" into "461137B21". The model copies the
    #: text's own form; tagsmith normalizes it, and finds the span of a normalized gold value.
    normalize: tuple[Literal["alnum", "upper", "lower", "spaces"], ...] = ()
    hierarchy: Hierarchy | None = None
    #: The unit this facet's numbers are stored in ("cm" for values like "61.0"): templates show
    #: measurements the text states in another unit of the same kind converted to it (measures.py).
    unit: str | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _plain_strings(cls, v: Any) -> Any:
        # A plain string is shorthand for {value: ...}; keeps hand-written files short.
        if isinstance(v, list):
            return [{"value": x} if isinstance(x, str) else x for x in v]
        return v

    @model_validator(mode="after")
    def _check(self) -> Facet:
        if self.extractive and self.values:
            raise ValueError("an extractive facet takes no 'values' list")
        if self.extractive and self.hierarchy:
            raise ValueError("an extractive facet cannot be hierarchical")
        if not self.extractive and not self.values:
            raise ValueError("facet has no values (list some, or mark it 'extractive: true')")
        if self.required and self.extractive:
            raise ValueError("an extractive facet cannot be required (its text may not state a value)")
        if self.unit is not None and self.unit not in MEASURES:
            raise ValueError(f"unknown unit {self.unit!r} (known: {', '.join(MEASURES)})")
        if self.normalize and not self.extractive:
            raise ValueError("'normalize' applies to extractive facets (closed facets list their values' spellings)")
        seen: dict[str, str] = {}
        for v in self.values:
            for surface in (v.value, *v.aliases):
                key = fold(surface)
                if key in seen and seen[key] != v.value:  # same value's own spelling: fine
                    raise ValueError(
                        f"duplicate value {surface!r} (clashes with {seen[key]!r}); "
                        "values and aliases must be unique ignoring case")
                seen[key] = v.value
        return self

    def normal(self, value: str) -> str:
        """`value` in the form this facet stores (its `normalize` steps applied)."""
        return normalize(value, self.normalize)

    def path(self, value: str) -> tuple[str, ...]:
        """A value's steps from the root ("Kitchen > Knives" -> Kitchen, Knives); one step for
        a flat facet."""
        if not self.hierarchy:
            return (value,)
        return tuple(p.strip() for p in value.split(self.hierarchy.separator.strip()))

    def join(self, path: Sequence[str]) -> str:
        """The value a path of steps names (the inverse of `path`)."""
        return self.hierarchy.separator.join(path) if self.hierarchy else " ".join(path)

    @cached_property
    def allowed(self) -> tuple[str, ...]:
        """Canonical values a model may answer, hierarchy ancestors included, in file order."""
        if not self.hierarchy:
            return tuple(v.value for v in self.values)
        out: dict[str, None] = {}
        for v in self.values:
            parts = self.path(v.value)
            for i in range(1, len(parts) + 1):
                out[self.join(parts[:i])] = None
        return tuple(out)

    @cached_property
    def surface_forms(self) -> tuple[str, ...]:
        """Every string the schema accepts for this facet: allowed values plus aliases."""
        forms = dict.fromkeys(self.allowed)
        for v in self.values:
            forms.update(dict.fromkeys(v.aliases))
        return tuple(forms)

    @cached_property
    def _canonical(self) -> dict[str, str]:
        table = {fold(a): a for a in self.allowed}
        for v in self.values:
            for alias in v.aliases:
                table[fold(alias)] = v.value
        return table

    def canonical(self, answer: str) -> str | None:
        """The canonical value an answer stands for, or None when it is not in the vocabulary."""
        return self._canonical.get(fold(answer))


class Vocabulary(_Cached):
    """A named set of facets, optionally bound to one product category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str | None = None
    category: str | None = Field(
        default=None, description="items whose category field equals this use this vocabulary")
    version: str | None = None
    facets: tuple[Facet, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_facets(self) -> Vocabulary:
        names = [f.name for f in self.facets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate facet name(s): {', '.join(dupes)}")
        return self

    def facet(self, name: str) -> Facet | None:
        return next((f for f in self.facets if f.name == name), None)

    @property
    def size(self) -> int:
        """Number of allowed values across closed facets."""
        return sum(len(f.allowed) for f in self.facets)

    @cached_property
    def unit_targets(self) -> dict[str, Target]:
        """Per kind of measure, the unit its facets store it in (`measures.targets`): worked out
        once per vocabulary, not for every text a template shows in its units."""
        return targets(self)

    @cached_property
    def digest(self) -> str:
        """Stable content hash; adapters and eval caches record it to detect a changed vocabulary.
        Fields left at their defaults are not part of it, so a field added to the format later
        changes no existing vocabulary's digest (and invalidates no adapter trained on it)."""
        payload = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _describe_error(err: dict[str, Any], raw: Any) -> tuple[str | None, str]:
    """Turn a pydantic error location into (facet name, message) a person can act on."""
    loc = list(err.get("loc", ()))
    facet = None
    if len(loc) >= 2 and loc[0] == "facets" and isinstance(loc[1], int):
        try:
            facet = raw["facets"][loc[1]].get("name") or f"#{loc[1] + 1}"
        except (KeyError, IndexError, TypeError, AttributeError):
            facet = f"#{loc[1] + 1}"
        loc = loc[2:]
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = f"unknown key {loc[-1]!r}"
        loc = loc[:-1]
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    where = ".".join(str(p) for p in loc)
    return facet, f"{where}: {msg}" if where else msg


def parse_vocabulary(raw: Any, *, path: str | None = None) -> Vocabulary:
    """Validate an already-parsed mapping (from YAML/JSON or code)."""
    if not isinstance(raw, dict):
        raise VocabularyError("expected a mapping with 'name' and 'facets'", path=path)
    try:
        return Vocabulary.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # a facet that fails also leaves the facet list "too short": one problem, not two
        if any(len(e["loc"]) > 1 and e["loc"][0] == "facets" for e in errors):
            errors = [e for e in errors if not (e["type"] == "too_short" and tuple(e["loc"]) == ("facets",))]
        facet, msg = _describe_error(errors[0], raw)
        more = len(errors) - 1
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise VocabularyError(msg, path=path, facet=facet) from None


def load_vocabulary(path: str | Path) -> Vocabulary:
    """Read and validate one vocabulary file (YAML or JSON)."""
    p = Path(path)
    if p.suffix.lower() not in VOCAB_SUFFIXES:
        raise VocabularyError(f"not a vocabulary file (expected {', '.join(VOCAB_SUFFIXES)})",
                              path=str(p))
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VocabularyError("file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabularyError(f"cannot read file ({exc})", path=str(p)) from None
    try:
        raw = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise VocabularyError(f"not valid {p.suffix.lstrip('.').upper()}: {exc}",
                              path=str(p)) from None
    return parse_vocabulary(raw, path=str(p))


@dataclass
class VocabularySet:
    """The vocabularies of one run: a single one, or one per product category."""

    vocabularies: list[Vocabulary]
    source: str = ""
    _by_category: dict[str, Vocabulary] = field(init=False, repr=False)
    _by_name: dict[str, Vocabulary] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.vocabularies:
            raise VocabularyError("no vocabulary files found", path=self.source or None)
        self._by_category = {}
        self._by_name = {v.name: v for v in self.vocabularies}
        for v in self.vocabularies:
            if v.category:
                key = fold(v.category)
                if key in self._by_category:
                    raise VocabularyError(
                        f"two vocabularies for category {v.category!r}: "
                        f"{self._by_category[key].name!r} and {v.name!r}", path=self.source or None)
                self._by_category[key] = v

    def named(self, name: str | None) -> Vocabulary | None:
        """The vocabulary of this name (what an output line's "vocabulary" records), or None."""
        return self._by_name.get(name or "")

    def __iter__(self) -> Iterator[Vocabulary]:
        return iter(self.vocabularies)

    def __len__(self) -> int:
        return len(self.vocabularies)

    def for_category(self, category: str | None) -> Vocabulary | None:
        """The vocabulary for an item's category; the only one when there is just one."""
        if category is not None and fold(category) in self._by_category:
            return self._by_category[fold(category)]
        if len(self.vocabularies) == 1:
            return self.vocabularies[0]
        return None

    @property
    def categories(self) -> list[str]:
        return [v.category for v in self.vocabularies if v.category]


def builtin_vocabularies() -> list[str]:
    """Names accepted by `resolve_vocabularies` besides paths (folders under vocabularies/)."""
    if not BUILTIN_DIR.is_dir():
        return []
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if p.is_dir() or p.suffix in VOCAB_SUFFIXES)


def vocabulary_path(spec: str | Path) -> Path:
    """The file or folder a vocabulary spec names: a path, or a built-in name (e.g. 'wdc-pave')."""
    p = Path(spec).expanduser()
    if p.exists():
        return p
    builtin = BUILTIN_DIR / str(spec)
    if builtin.exists():
        return builtin
    names = builtin_vocabularies()
    hint = f" (built-in vocabularies: {', '.join(names)})" if names else ""
    raise VocabularyError(f"no such file or folder{hint}", path=str(spec))


def vocabulary_files(folder: Path) -> list[Path]:
    """A folder's vocabulary files, in the order `resolve_vocabularies` loads them."""
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in VOCAB_SUFFIXES)


def resolve_vocabularies(spec: str | Path) -> VocabularySet:
    """Load a vocabulary file, a folder of per-category files, a built-in name (e.g. 'wdc-pave'),
    or a taxonomy ('shopify', or a folder laid out as Shopify's taxonomy repository)."""
    from tagsmith.taxonomy import is_taxonomy, taxonomy_vocabularies

    if is_taxonomy(spec):
        return taxonomy_vocabularies(spec)
    p = vocabulary_path(spec)
    if p.is_dir():
        return VocabularySet([load_vocabulary(f) for f in vocabulary_files(p)], source=str(p))
    return VocabularySet([load_vocabulary(p)], source=str(p))
