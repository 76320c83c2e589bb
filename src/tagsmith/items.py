"""Products to tag, read from JSONL or CSV, and the clean-up their text gets first.

Shop exports are messy: HTML descriptions, stray control characters, bytes that are
not UTF-8, 100 KB descriptions. Cleaning is applied the same way in tagging, training
and eval so a template sees identical text in all three, and every change made to an
item's text is reported back (in `TagResult.warnings`) rather than done silently.
"""

from __future__ import annotations

import csv
import html
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tagsmith.errors import InputError

_TAG_HINT = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")
_BLOCK_TAGS = {"p", "br", "li", "div", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "ul"}


@dataclass(frozen=True)
class Item:
    """One product. `fields` keeps the original record for templates that need more."""

    id: str
    title: str
    description: str = ""
    category: str | None = None
    fields: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


#: Chat-format control tokens of common model families (ChatML/Llama 3/Phi `<|...|>`, Gemma turns,
#: Llama 2/Mistral `<s>`, `[INST]`, `<<SYS>>`). Item text is data: written into a prompt as they
#: are, a tokenizer would read them as real role switches. A space after their first character
#: keeps them readable and makes them ordinary text for every tokenizer.
CONTROL_TOKENS = re.compile(r"<\|[^<>|\s]{1,40}\|>|<(?:start|end)_of_turn>|</?s>|\[/?INST\]|<</?SYS>>")


def strip_html(text: str) -> str:
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def clean_text(text: str, *, max_chars: int | None = None, html_to_text: bool = True
               ) -> tuple[str, list[str]]:
    """Normalise an item's text for a prompt; returns the text and notes on what changed."""
    notes: list[str] = []
    if html_to_text and _TAG_HINT.search(text):
        text = strip_html(text)
        notes.append("html removed")
    elif "&" in text:
        text = html.unescape(text)
    # Lone surrogates (undecodable bytes smuggled in via surrogateescape) and control chars.
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        text = text.encode("utf-8", "replace").decode("utf-8")
        notes.append("invalid characters replaced")
    text = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    text = " ".join(text.split())
    text, n = CONTROL_TOKENS.subn(lambda m: f"{m.group(0)[0]} {m.group(0)[1:]}", text)
    if n:
        notes.append("chat control tokens neutralized")
    if max_chars is not None and len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars + 1)
        text = text[: cut if cut > max_chars // 2 else max_chars].rstrip()
        notes.append(f"text truncated to {len(text)} characters")
    return text, notes


@dataclass(frozen=True)
class FieldMap:
    """Which input columns hold the id, title, description and category.

    Each entry lists candidates tried in order, so the WDC-PAVE names (`input_title`) and
    the plain ones (`title`) both work without options.
    """

    id: tuple[str, ...] = ("id", "item_id", "sku")
    title: tuple[str, ...] = ("title", "input_title", "name")
    description: tuple[str, ...] = ("description", "input_description", "body", "text")
    category: tuple[str, ...] = ("category",)

    @classmethod
    def with_overrides(cls, **names: str | None) -> FieldMap:
        base = cls()
        return cls(**{k: ((v,) if v else getattr(base, k)) for k, v in names.items()})


def _pick(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        value = record.get(n)
        if value is not None and value == value:  # NaN (a DataFrame's missing cell) is no value
            return value
    return None


def item_from_record(record: dict[str, Any], fields: FieldMap, fallback_id: str) -> Item:
    def text(v: Any) -> str:
        return "" if v is None else v if isinstance(v, str) else str(v)

    raw_id = _pick(record, fields.id)
    category = _pick(record, fields.category)
    return Item(
        id=text(raw_id) if raw_id not in (None, "") else fallback_id,
        title=text(_pick(record, fields.title)),
        description=text(_pick(record, fields.description)),
        category=text(category) if category not in (None, "") else None,
        fields=record,
    )


def read_items(path: str | Path, fields: FieldMap | None = None) -> Iterator[Item]:
    """Yield items from a .jsonl or .csv file. A byte-order mark (spreadsheets' "CSV UTF-8") is
    skipped; bytes that are not UTF-8 are replaced, not fatal. A file without a title column
    (CSV header, or the first JSON record) is an error naming the columns it has.

    Items without an id get `line-N`, so re-runs can still skip what is done.
    """
    fields = fields or FieldMap()
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: input file not found")
    suffix = p.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise InputError(f"{p}: unsupported input format (use .jsonl or .csv)")
    try:
        handle = p.open(encoding="utf-8-sig", errors="replace", newline="")
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc})") from None
    with handle:
        if suffix == ".csv":
            reader = csv.DictReader(handle)
            _check_title(p, reader.fieldnames or [], fields)
            for n, row in enumerate(reader, start=2):
                yield item_from_record(dict(row), fields, f"line-{n}")
            return
        first = True
        for n, record in jsonl_records(handle, p):
            if first:
                _check_title(p, list(record), fields, line=n)
                first = False
            yield item_from_record(record, fields, f"line-{n}")


def jsonl_records(lines: Iterable[str], path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object is an
    error naming the file and line. Items and gold files are both read through it."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}:{n}: expected a JSON object per line")
        yield n, record


def _check_title(path: Path, columns: list[str], fields: FieldMap, line: int | None = None) -> None:
    """Stop before tagging a whole file as empty items because its title column is named otherwise."""
    if not any(name in columns for name in (*fields.title, *fields.description)):
        where = f"{path}:{line}" if line else str(path)
        raise InputError(f"{where}: no title column (looked for {', '.join(fields.title)}; found "
                         f"{', '.join(columns[:12]) or 'none'}): name it with --title-field")
