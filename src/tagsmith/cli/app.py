"""The command group, and the one place errors become user messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from tagsmith import __version__
from tagsmith.errors import TagsmithError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Print a TagsmithError as one line and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TagsmithError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def say(*notes: str) -> None:
    """Notes and warnings for the user: stderr, so stdout stays clean output."""
    for note in notes:
        click.echo(note, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tagsmith")
def main() -> None:
    """Tag e-commerce products with a language model, using only the tags of a controlled vocabulary.

    \b
    Quick start (no GPU, no network: the embedded SmolLM2-135M model is used):
      tagsmith tag "HP 435952-B21 Xeon E5335 2.0GHz processor kit" --vocab wdc-pave
      tagsmith tag --input offers.jsonl --output tagged.jsonl --vocab wdc-pave
      tagsmith vocab check my-vocabulary.yaml
      tagsmith eval --data gold.jsonl -t default -t my-template.jinja

    Run `tagsmith COMMAND --help` for each command's options.
    """
