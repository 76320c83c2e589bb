"""Why a tag was given: the span of the item's own text that supports it.

A reviewer trusts a tag faster when the words behind it are shown. For an extractive facet the
evidence is the span the value was copied from (found again with the facet's normalization, so
"461137B21" points at "461137-b21"); for a closed value, the first whole-word mention of the
value or one of its aliases (for a category path, of its last step), as the text writes it.
None means the text does not state it: the model inferred the tag, which is exactly what a
reviewer should look at first.
"""

from __future__ import annotations

import re

from tagsmith.text import find_span
from tagsmith.vocabulary import Facet, Vocabulary


def _mention(form: str, text: str) -> str | None:
    words = form.split()
    if not words:
        return None
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
    match = re.search(pattern, text, flags=re.IGNORECASE)
    return match.group(0) if match else None


def value_evidence(facet: Facet, value: str, text: str) -> str | None:
    """The span of `text` that states `value` for `facet`, or None."""
    if facet.extractive:
        return find_span(value, text, facet.normalize)
    forms = [value]
    for v in facet.values:
        if v.value == value:
            forms += v.aliases
    if facet.hierarchy:
        forms.append(facet.path(value)[-1])
    for form in sorted(dict.fromkeys(forms), key=len, reverse=True):  # the most specific first
        span = _mention(form, text)
        if span is not None:
            return span
    return None


def tag_evidence(text: str, vocabulary: Vocabulary, tags: dict[str, list[str]]) -> dict[str, dict[str, str | None]]:
    """Per facet and value: the supporting span of `text` (the item's title and description as
    the model saw them), or None."""
    out: dict[str, dict[str, str | None]] = {}
    for facet_name, values in tags.items():
        facet = vocabulary.facet(facet_name)
        if facet is not None and values:
            out[facet_name] = {v: value_evidence(facet, v, text) for v in values}
    return out
