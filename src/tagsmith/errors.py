"""One exception root for everything tagsmith raises on purpose.

Library code raises these with enough context to act on (file, facet, item id,
raw model output); only the CLI turns them into one-line user messages, so a
user mistake never surfaces as a traceback.
"""

from __future__ import annotations


class TagsmithError(Exception):
    """Base class: any error that is the user's input or environment, not a bug."""

    #: Whether trying the same call again may succeed (e.g. a server that timed out).
    retryable: bool = False


class VocabularyError(TagsmithError):
    """A vocabulary file is missing, unreadable or invalid."""

    def __init__(self, message: str, *, path: str | None = None, facet: str | None = None):
        self.path = path
        self.facet = facet
        where = ": ".join(p for p in (path, f"facet {facet!r}" if facet else None) if p)
        super().__init__(f"{where}: {message}" if where else message)


class TemplateError(TagsmithError):
    """A prompt template is missing or fails to render."""


class ModelNotFoundError(TagsmithError):
    """The model named by the user cannot be found or loaded."""


class ConfigError(TagsmithError):
    """A configuration file or option is invalid."""


class InputError(TagsmithError):
    """An input file of items cannot be read."""


class EngineError(TagsmithError):
    """A generation backend failed; carries what is known for diagnosis."""

    def __init__(self, message: str, *, raw: str | None = None, retryable: bool = False,
                 status: int | None = None):
        #: the model's raw output, where one came back (e.g. an answer that breaks the schema)
        self.raw = raw
        self.retryable = retryable
        #: the HTTP status a server answered with, for remote engines
        self.status = status
        super().__init__(message)
