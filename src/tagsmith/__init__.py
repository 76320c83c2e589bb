"""tagsmith: tag products with a language model, inside a controlled vocabulary.

The data path, top to bottom: vocabulary -> schema -> prompt -> engine -> parsed tags
(-> metrics in eval). Heavy modules (engines, evaluation) import lazily.

    import tagsmith
    tagger = tagsmith.load_tagger("wdc-pave", engine="transformers")
    results = tagger.tag_records([{"title": "Tacori platinum ring", "category": "Jewelry"}])
    report = tagsmith.evaluate(tagsmith.EvalPlan(data="gold.jsonl", vocab="my-vocab.yaml"))
"""

from typing import Any

from tagsmith.config import Settings, TaggingSettings, load_settings
from tagsmith.errors import TagsmithError
from tagsmith.items import Item
from tagsmith.prompts import PromptTemplate, load_template
from tagsmith.runtime import RunSpec, build_tagger, load_tagger
from tagsmith.schema import build_schema
from tagsmith.tagger import Tagger, TagResult
from tagsmith.vocabulary import Facet, Value, Vocabulary, VocabularySet, load_vocabulary, resolve_vocabularies

__version__ = "0.1.0"

__all__ = [
    "EvalPlan", "Facet", "Item", "PromptTemplate", "Report", "RunSpec", "Settings", "TagResult", "Tagger",
    "TaggingSettings", "TagsmithError", "Value", "Vocabulary", "VocabularySet", "build_schema", "build_tagger",
    "evaluate", "load_settings", "load_tagger", "load_template", "load_vocabulary", "resolve_vocabularies",
    "__version__",
]


def __getattr__(name: str) -> Any:  # the eval harness (numpy, scikit-learn) loads on first use
    if name in ("EvalPlan", "Report", "evaluate"):
        from tagsmith.evaluation import matrix

        return getattr(matrix, name)
    raise AttributeError(f"module 'tagsmith' has no attribute {name!r}")
