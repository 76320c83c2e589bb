"""Settings from TOML files: the packaged defaults, then a user file, then CLI options.

Validated with pydantic (`extra="forbid"`) so a misspelt key is an error naming the key
and the file, not a silently ignored setting.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tagsmith.answers import AnswerShape
from tagsmith.engines.options import FakeOptions, OpenAIOptions, TransformersOptions, VLLMOptions
from tagsmith.errors import ConfigError

DEFAULTS = Path(__file__).parent / "defaults.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Section):
    name: str = "embedded"


class EngineSettings(_Section):
    name: str = "auto"
    #: items per engine call; 0 = the engine's own default
    batch_size: int = Field(0, ge=0, le=4096)
    #: 'auto' for a job of at most this many items (one product on the command line) picks
    #: transformers, which starts in seconds, over vLLM, which starts slowly and then tags fast
    few_items: int = Field(8, ge=0)
    transformers: TransformersOptions = TransformersOptions()
    vllm: VLLMOptions = VLLMOptions()
    openai: OpenAIOptions = OpenAIOptions()
    fake: FakeOptions = FakeOptions()


class TaggingSettings(_Section):
    """How the tagger treats items and answers: the one settings class the tagger, training
    and the CLI share (frozen: a tagger's settings do not change under it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str = "default"
    #: item text beyond this is cut at a word boundary, and the result says so
    max_text_chars: int = Field(2000, ge=50)
    #: upper bound on answer tokens; the vocabulary's own bound applies when smaller
    max_new_tokens: int = Field(1024, ge=16)
    strip_html: bool = True
    #: facets with more than `shortlist_above` values are cut to `shortlist_k` candidates per item
    #: (see shortlist.py); 0 turns shortlists off
    shortlist_k: int = Field(50, ge=0)
    shortlist_above: int = Field(500, ge=1)
    #: gold-labelled file (any format `tagsmith eval --data` reads) whose items most similar to
    #: each item are shown in the prompt as worked examples (examples.py); none = no examples
    examples: str | None = None
    examples_k: int = Field(3, ge=0, le=20)
    #: where option scoring (option_scoring.py) answers closed single-valued facets of at most
    #: `option_scoring_max` values by ranking every value with the model's token probabilities
    #: instead of greedy decoding: "closed" = only in vocabularies made of such facets alone
    #: (classification-like option lists: no generation at all), "all" = such facets of every
    #: vocabulary (the rest is generated first), "off". Engines that cannot score (openai) decode.
    option_scoring: Literal["off", "closed", "all"] = "closed"
    option_scoring_max: int = Field(20, ge=1, le=1000)
    #: subtract each option's score for a content-free item (the model's bias toward it)
    option_calibration: bool = True
    #: weight of the sentence-embedding similarity of item and option (0 = the model alone)
    option_prior_weight: float = Field(1.0, ge=0)
    option_prior_temperature: float = Field(0.05, gt=0)
    #: tags whose confidence is below this are withheld (moved to `rejected` with their
    #: score): an empty answer costs only recall, a wrong one precision too. None = the
    #: threshold tuned for the run's adapter (its manifest's `min_confidence`), else none
    min_confidence: float | None = Field(None, ge=0, le=1)
    #: every decoded tag gets a confidence too (confidence.py: the probability of its tokens,
    #: scored after generation), on engines that can score; off saves that extra model pass
    decoded_confidence: bool = True
    #: how answers are written (answers.py): "full" = every facet, an empty one as [];
    #: "filled" = only the facets with a value, so empty facets cost no decoding steps;
    #: "auto" = the shape the run's adapter was trained in (its manifest), else "full"
    answer_shape: Literal["auto", "full", "filled"] = "auto"
    #: a vocabulary of one hierarchical facet (a category tree): "ranked" = the item's
    #: `ranked_k` nearest whole paths by sentence embedding, each scored by the model and fused
    #: with that similarity (tree_decoding.py); "flat" = one generated choice from the item's
    #: shortlist of paths; "tree" = level by level among a node's children (README compares them)
    hierarchy_decoding: Literal["ranked", "tree", "flat"] = "ranked"
    #: ranked decoding: how many paths the model ranks
    ranked_k: int = Field(10, ge=2, le=100)
    #: ranked decoding: weight and temperature of the path similarity (leaf first, less the depth
    #: penalty) fused with the model's scores of the ranked paths, as `option_prior_*` for options
    ranked_prior_weight: float = Field(2.0, ge=0)
    ranked_prior_temperature: float = Field(0.02, gt=0)
    #: a category tree's paths ranked by sentence embedding (shortlists, the ranked decoder's
    #: prior): each level below the top costs this much cosine similarity, so a product goes to
    #: the deeper category only where its text is clearly nearer it than to the one above (the
    #: nearest path alone runs deeper than a title supports: "Wetsuit Boots" for a desert boot;
    #: README, "A product taxonomy"). 0 = the nearest path at any depth
    hierarchy_depth_penalty: float = Field(0.01, ge=0, le=1)
    #: ranked decoding: a path whose own name the text states word for word (plurals folded:
    #: "Tablecloth" names "... > Table Linens > Tablecloths") gains this much similarity
    mention_bonus: float = Field(0.1, ge=0, le=1)
    #: tree decoding: a node with more children offers the item only this many (nearest first)
    tree_max_children: int = Field(20, ge=2, le=200)

    @property
    def shape(self) -> AnswerShape:
        """The answer shape these settings write ("auto" left unresolved by a plan: "full")."""
        return "full" if self.answer_shape == "auto" else self.answer_shape

    @property
    def shortlist_threshold(self) -> int:
        """Facets above this size are shortlisted: never below k, or a shortlist would grow them."""
        return max(self.shortlist_above, self.shortlist_k)


class Settings(_Section):
    model: ModelSettings = ModelSettings()
    engine: EngineSettings = EngineSettings()
    tagging: TaggingSettings = TaggingSettings()

    def engine_options(self, engine_name: str) -> dict[str, Any]:
        """Keyword options for the engine `engine_name` (a resolved name, not 'auto'): its own
        table of the settings, plus the batch size when one is set."""
        own = getattr(self.engine, engine_name, None)
        options: dict[str, Any] = own.model_dump() if isinstance(own, BaseModel) else {}
        if self.engine.batch_size:  # 0 = each engine's own default
            options["batch_size"] = self.engine.batch_size
        return options


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


def _drop_none(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: _drop_none(v) if isinstance(v, dict) else v for k, v in overrides.items() if v is not None}


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults, then the file at `path` (else $TAGSMITH_CONFIG, if set), then `overrides`
    (None values mean "not given")."""
    path = path or os.environ.get("TAGSMITH_CONFIG") or None
    data = _read(DEFAULTS)
    source = str(DEFAULTS)
    if path is not None:
        data = _merge(data, _read(Path(path)))
        source = str(path)
    data = _merge(data, _drop_none(overrides or {}))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{source}: [{where}] {msg}") from None
