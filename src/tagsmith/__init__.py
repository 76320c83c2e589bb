"""tagsmith: tag products with a language model, inside a controlled vocabulary.

The data path, top to bottom: vocabulary -> schema -> prompt -> engine -> parsed tags
(-> metrics in eval). Heavy modules (engines) import lazily.
"""

from tagsmith.errors import TagsmithError
from tagsmith.items import Item
from tagsmith.prompts import PromptTemplate, load_template
from tagsmith.schema import build_schema
from tagsmith.tagger import Tagger, TaggerSettings, TagResult
from tagsmith.vocabulary import Facet, Value, Vocabulary, VocabularySet, load_vocabulary, resolve_vocabularies

__version__ = "0.1.0"

__all__ = [
    "Facet", "Item", "PromptTemplate", "TagResult", "Tagger", "TaggerSettings", "TagsmithError",
    "Value", "Vocabulary", "VocabularySet", "build_schema", "load_template", "load_vocabulary",
    "resolve_vocabularies", "__version__",
]
