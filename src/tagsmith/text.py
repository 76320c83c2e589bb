"""Text keys shared by every module that compares strings: one folding rule, one word rule.

Vocabulary aliases, shortlists' exact mentions, vocabulary diffs, dataset category names
and the eval scripts all match text through these two functions, so "Stainless  STEEL"
means the same thing everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence


def fold(text: str) -> str:
    """Case- and space-insensitive key used to match aliases and spot duplicates."""
    return " ".join(text.casefold().split())


def words(text: str) -> list[str]:
    """Case-folded words, keeping "2.5", "1/2" and "o'clock" whole: what an exact mention matches on."""
    return re.findall(r"\w+(?:[.,/'-]\w+)*", fold(text))


def singular(word: str) -> str:
    """An English plural's singular, by rule ("dresses" -> "dress", "accessories" ->
    "accessory", "shoes" -> "shoe"): enough that a title's "Mug" names the category "Mugs"."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith("ss"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    return word[:-1]


def slug(text: str) -> str:
    """A file-name-safe key: "Office Products" -> "office-products"."""
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


#: Named clean-ups a vocabulary may apply to extractive values (Facet.normalize), in order.
NORMALIZERS: dict[str, Callable[[str], str]] = {
    "alnum": lambda s: re.sub(r"[\W_]+", "", s),     # "461137-B21" -> "461137B21"
    "upper": str.upper,
    "lower": str.lower,
    "spaces": lambda s: " ".join(s.split()),
}


def normalize(value: str, steps: Sequence[str]) -> str:
    for step in steps:
        value = NORMALIZERS[step](value)
    return value


def find_span(span: str, text: str, steps: Sequence[str] = ()) -> str | None:
    """Where `span` occurs in `text`, as the text writes it, or None.

    Matching ignores case and runs of spaces. With normalization `steps` that include "alnum",
    the span may also be the normalized form of the text's: "461137B21" finds "461137-b21"
    (any non-alphanumeric characters between its characters)."""
    words_ = span.split()
    if not words_:
        return None
    match = re.search(r"\s+".join(re.escape(w) for w in words_), text, flags=re.IGNORECASE)
    if match is None and "alnum" in steps:
        chars = re.sub(r"[\W_]+", "", span)
        if chars:
            match = re.search(r"[\W_]*".join(re.escape(c) for c in chars), text, flags=re.IGNORECASE)
    return match.group(0) if match else None
