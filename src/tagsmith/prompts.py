"""Jinja prompt templates: one environment factory, templates found by name or path.

Templates are rendered in a sandbox with StrictUndefined: a typo in a template fails
loudly instead of rendering an empty string, and template authors cannot reach Python
internals. Item text is only ever passed in as data, never compiled, so a product
titled "{{ 7*7 }}" is tagged as that literal text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tagsmith.errors import TemplateError
from tagsmith.items import Item
from tagsmith.vocabulary import Vocabulary

TEMPLATE_SUFFIX = ".jinja"


def prompt_dirs() -> list[Path]:
    """Where named templates live: the package copy (wheel installs) then the repo's prompts/."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "prompts", here.parents[1] / "prompts") if d.is_dir()]


def make_environment() -> jinja2.Environment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template; `digest` identifies its exact text in adapters and eval caches."""

    name: str
    source: str

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    @cached_property
    def _compiled(self) -> jinja2.Template:
        try:
            return make_environment().from_string(self.source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {self.name!r} line {exc.lineno}: {exc.message}") from None

    def render(self, item: Item, text: dict[str, str], vocabulary: Vocabulary, **extra: Any) -> str:
        """Render the user message for one item (`text` holds its cleaned title/description)."""
        try:
            return self._compiled.render(item=item, title=text["title"],
                                         description=text["description"],
                                         vocabulary=vocabulary, facets=vocabulary.facets, **extra)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {self.name!r}: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(f"template {self.name!r}: not allowed in the sandbox: {exc}") from None

    def messages(self, *args: Any, **kwargs: Any) -> list[dict[str, str]]:
        """Chat messages for the engine; the chat format itself is each engine's business."""
        return [{"role": "user", "content": self.render(*args, **kwargs)}]


def available_templates() -> list[str]:
    return sorted({p.stem for d in prompt_dirs() for p in d.glob(f"*{TEMPLATE_SUFFIX}")})


def load_template(spec: str | Path) -> PromptTemplate:
    """A template by name (prompts/NAME.jinja) or by path to a .jinja file."""
    p = Path(spec).expanduser()
    if not p.is_file():
        for d in prompt_dirs():
            candidate = d / f"{spec}{TEMPLATE_SUFFIX}"
            if candidate.is_file():
                p = candidate
                break
        else:
            names = ", ".join(available_templates()) or "none found"
            raise TemplateError(f"no template {str(spec)!r} (available: {names})")
    try:
        source = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template {p}: {exc}") from None
    template = PromptTemplate(name=p.stem, source=source)
    template._compiled  # noqa: B018 - compile now so syntax errors surface before any model loads
    return template
