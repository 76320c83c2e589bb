"""Text keys shared by every module that compares strings: one folding rule, one word rule.

Vocabulary aliases, shortlists' exact mentions, vocabulary diffs, dataset category names
and the eval scripts all match text through these two functions, so "Stainless  STEEL"
means the same thing everywhere.
"""

from __future__ import annotations

import re


def fold(text: str) -> str:
    """Case- and space-insensitive key used to match aliases and spot duplicates."""
    return " ".join(text.casefold().split())


def words(text: str) -> list[str]:
    """Case-folded words, keeping "2.5", "1/2" and "o'clock" whole: what an exact mention matches on."""
    return re.findall(r"\w+(?:[.,/'-]\w+)*", fold(text))


def slug(text: str) -> str:
    """A file-name-safe key: "Office Products" -> "office-products"."""
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")
