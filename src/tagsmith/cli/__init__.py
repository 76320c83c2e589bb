"""The `tagsmith` command line: one module per subcommand, each only parsing arguments,
calling the library (runtime, evaluation, training, ...) and printing."""

from tagsmith.cli import batch, eval, model, retag, review, serve, tag, train, vocab  # noqa: F401 - registers the commands
from tagsmith.cli.app import main

__all__ = ["main"]
