"""Jinja prompt templates: one environment factory, templates found by name or path.

Templates are rendered in a sandbox with StrictUndefined: a typo in a template fails
loudly instead of rendering an empty string, and template authors cannot reach Python
internals. Item text is only ever passed in as data, never compiled, so a product
titled "{{ 7*7 }}" is tagged as that literal text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tagsmith.errors import TemplateError
from tagsmith.items import Item
from tagsmith.measures import in_units
from tagsmith.vocabulary import Vocabulary

TEMPLATE_SUFFIX = ".jinja"


def prompt_dirs() -> list[Path]:
    """Where named templates live: the package copy (wheel installs) then the repo's prompts/."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "prompts", here.parents[1] / "prompts") if d.is_dir()]


def make_environment(folder: str | None = None) -> jinja2.Environment:
    """The one Jinja environment every template renders in. `{% include %}` and `{% extends %}`
    find templates beside the including one (`folder`), then in prompts/."""
    search = ([folder] if folder else []) + [str(d) for d in prompt_dirs()]
    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    environment.filters["in_units"] = in_units
    return environment


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template; `digest` identifies its exact text in adapters and eval caches."""

    name: str
    source: str
    #: the folder the template was read from (where its includes are looked up first)
    folder: str | None = None

    @cached_property
    def _environment(self) -> jinja2.Environment:
        return make_environment(self.folder)

    @cached_property
    def digest(self) -> str:
        """Hash of the template's text and of every template it includes, recursively: editing
        an included file must change the digest that keys eval caches and adapter manifests."""
        h = hashlib.sha256(self.source.encode())
        for name in self._included(self.source, set()):
            h.update(name.encode())
            h.update(self._environment.loader.get_source(self._environment, name)[0].encode())  # type: ignore[union-attr]
        return h.hexdigest()[:16]

    def _included(self, source: str, seen: set[str]) -> list[str]:
        from jinja2 import meta

        try:
            names = [n for n in meta.find_referenced_templates(self._environment.parse(source)) if n]
        except jinja2.TemplateSyntaxError:
            return []
        out = []
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            try:
                child = self._environment.loader.get_source(self._environment, name)[0]  # type: ignore[union-attr]
            except jinja2.TemplateNotFound:
                raise TemplateError(f"template {self.name!r} includes {name!r}, which is not found") from None
            out += [name, *self._included(child, seen)]
        return out

    @cached_property
    def _compiled(self) -> jinja2.Template:
        try:
            return self._environment.from_string(self.source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {self.name!r} line {exc.lineno}: {exc.message}") from None

    def render(self, item: Item, text: dict[str, str], vocabulary: Vocabulary,
               examples: Sequence[Any] = (), **extra: Any) -> str:
        """Render the user message for one item (`text` holds its cleaned title/description;
        `examples` the worked examples shown before it, each with title, description, answer)."""
        try:
            return self._compiled.render(item=item, title=text["title"],
                                         description=text["description"],
                                         vocabulary=vocabulary, facets=vocabulary.facets,
                                         examples=list(examples), **extra)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {self.name!r}: included template {exc.name!r} not found") from None
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
    template = PromptTemplate(name=p.stem, source=source, folder=str(p.resolve().parent))
    template._compiled  # noqa: B018 - compile now so syntax errors surface before any model loads
    template.digest  # noqa: B018 - and a missing include too
    return template
