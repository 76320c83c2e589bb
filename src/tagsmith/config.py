"""Settings from TOML files: the packaged defaults, then a user file, then CLI options.

Validated with pydantic (`extra="forbid"`) so a misspelt key is an error naming the key
and the file, not a silently ignored setting.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tagsmith.errors import ConfigError
from tagsmith.tagger import TaggerSettings

DEFAULTS = Path(__file__).parent / "defaults.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Section):
    name: str = "embedded"


class EngineSettings(_Section):
    name: str = "auto"
    batch_size: int = Field(0, ge=0, le=4096)
    threads: int = Field(0, ge=0)
    dtype: str = Field("auto", pattern="^(auto|float32|bfloat16|float16)$")
    #: For the openai engine: the server's base URL (else $TAGSMITH_OPENAI_URL or localhost:8000).
    base_url: str | None = None


class TaggingSettings(_Section):
    template: str = "default"
    max_text_chars: int = Field(2000, ge=50)
    max_new_tokens: int = Field(1024, ge=16)
    strip_html: bool = True
    shortlist_k: int = Field(50, ge=0)
    shortlist_above: int = Field(500, ge=1)


class Settings(_Section):
    model: ModelSettings = ModelSettings()
    engine: EngineSettings = EngineSettings()
    tagging: TaggingSettings = TaggingSettings()

    def engine_options(self, engine_name: str) -> dict[str, Any]:
        """Keyword options for the factory of `engine_name` (a resolved name, not 'auto')."""
        options: dict[str, Any] = {"threads": self.engine.threads, "dtype": self.engine.dtype}
        if self.engine.batch_size:  # 0 = each engine's own default
            options["batch_size"] = self.engine.batch_size
        if engine_name == "openai" and self.engine.base_url:
            options["base_url"] = self.engine.base_url
        return options

    def tagger_settings(self) -> TaggerSettings:
        t = self.tagging
        return TaggerSettings(max_text_chars=t.max_text_chars, strip_html=t.strip_html,
                              max_new_tokens=t.max_new_tokens, shortlist_k=t.shortlist_k,
                              shortlist_above=max(t.shortlist_above, t.shortlist_k))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    data = _read(DEFAULTS)
    source = str(DEFAULTS)
    if path is not None:
        data = _merge(data, _read(Path(path)))
        source = str(path)
    data = _merge(data, {k: {kk: vv for kk, vv in v.items() if vv is not None}
                         for k, v in (overrides or {}).items()})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{source}: [{where}] {msg}") from None
