"""The filled answer shape: only facets with a value are written, in schema, targets, worked
examples, confidences and option-scoring prefixes alike, and a run takes its adapter's shape."""

import json
import math

import jsonschema
import pytest

import tagsmith
from tagsmith.adapters import read_manifest
from tagsmith.answers import answer_json, target_answer
from tagsmith.confidence import DecodedAnswer, compact_answer, decoded_confidences
from tagsmith.config import TaggingSettings
from tagsmith.engines.base import TokenLogprob
from tagsmith.engines.fake import FakeEngine
from tagsmith.examples import ExampleIndex
from tagsmith.gold import GoldItem
from tagsmith.items import Item
from tagsmith.option_scoring import answer_prefix
from tagsmith.runtime import plan_run
from tagsmith.schema import build_schema
from tagsmith.tagger import Tagger


@pytest.mark.parametrize("answer,ok", [
    ({}, True),
    ({"Color": ["Red"], "Part Number": ["AB-1"]}, True),
    ({"Color": []}, False),  # a facet written is never empty
    ({"Material": ["Steel", "Wood"]}, False),
    ({"Color": ["Blue"]}, False),
    ({"Extra": ["x"]}, False),
])
def test_filled_schema_takes_only_facets_with_values(small_vocab, answer, ok):
    schema = build_schema(small_vocab, "filled")
    assert schema["required"] == [] and list(schema["properties"]) == [f.name for f in small_vocab.facets]
    assert jsonschema.Draft202012Validator(schema).is_valid(answer) is ok


def test_filled_target_leaves_empty_facets_out(small_vocab):
    gold = {"Color": ["Red"], "Part Number": ["AB-12"]}
    full = target_answer(small_vocab, gold, "Chef knife AB-12, red")
    filled = target_answer(small_vocab, gold, "Chef knife AB-12, red", "filled")
    assert json.loads(full) == {"Color": ["Red"], "Material": [], "Part Number": ["AB-12"], "Category": []}
    assert filled == '{"Color":["Red"],"Part Number":["AB-12"]}'
    assert target_answer(small_vocab, {}, "nothing", "filled") == "{}"


def test_worked_examples_are_shown_in_the_runs_shape(small_vocab):
    class Encoder:
        name = "fixed"

        def encode(self, texts):
            import numpy as np
            return np.ones((len(texts), 2)) / np.sqrt(2)

    pool = [GoldItem(Item("a", "red pan", "", small_vocab.category), {"Color": ["Red"]})]
    index = ExampleIndex(pool, tagsmith.VocabularySet([small_vocab]), k=1, encoder=Encoder(), cache=False)
    (shown,) = index.nearest(small_vocab.name, [Item("b", "black pan", "", small_vocab.category)])
    assert json.loads(shown[0].answer)["Material"] == []
    assert shown[0].shaped("filled").answer == '{"Color":["Red"]}'


def test_filled_confidences_score_the_written_values_only(small_vocab):
    answer = {"Color": ["Red"]}
    text, spans = compact_answer(small_vocab, answer, "filled")
    assert text == answer_json(answer, "filled") == '{"Color":["Red"]}'
    # the key is the model's choice to fill the facet: part of the first value's probability
    assert [(f, v, text[a:b]) for f, v, a, b in spans] == [("Color", "Red", '"Color":["Red"]')]
    tokens = tuple(TokenLogprob(i, i + 1, -0.1 if text[i] in 'Cl' else 0.0) for i in range(len(text)))
    decoded = DecodedAnswer(({"role": "user", "content": "x"},), small_vocab, answer, "red pan",
                            shape="filled", raw=text, tokens=tokens)
    engine = FakeEngine()
    (found,) = decoded_confidences(engine, [decoded])
    # no "" score for empty facets; the key's tokens count ("C" and "l" of "Color": -0.2)
    assert found == {"Color": {"Red": round(math.exp(-0.2), 4)}}
    assert engine.answer_requests == []  # read from the generated tokens, no read-back


def test_option_prefix_in_the_filled_shape_skips_empty_facets(small_vocab):
    answers = {"Color": [], "Material": ["Steel"]}
    assert answer_prefix(small_vocab, answers, 2) == '{"Color":[],"Material":["Steel"],"Part Number":'
    assert answer_prefix(small_vocab, answers, 2, "filled") == '{"Material":["Steel"],"Part Number":'


def test_tagger_sends_the_filled_schema_and_parses_left_out_facets_as_empty(small_vocab, template):
    engine = FakeEngine(answer="mentions")
    tagger = Tagger(engine, small_vocab, template, TaggingSettings(answer_shape="filled"))
    result = tagger.tag(Item("1", "red pan", "", small_vocab.category))
    (request,) = engine.requests
    assert request.schema.data["required"] == []
    assert result.raw == '{"Color": ["Red"]}' and result.tags == {"Color": ["Red"]} and result.error is None


def test_a_run_takes_the_shape_its_adapter_was_trained_in():
    shipped = tagsmith.load_settings(None, {"engine": {"name": "fake"}})
    vocab = tagsmith.resolve_vocabularies("wdc-pave")
    plan = plan_run(shipped, vocab)  # the shipped adapter's manifest says which shape it writes
    assert plan.answer_shape == read_manifest(plan.choice.path).get("answer_shape", "full")
    assert plan.tagging(shipped.tagging).answer_shape == plan.answer_shape
    other = "full" if plan.answer_shape == "filled" else "filled"
    asked = tagsmith.load_settings(None, {"engine": {"name": "fake"}, "tagging": {"answer_shape": other}})
    forced = plan_run(asked, vocab)
    assert forced.answer_shape == other and any("answer shape" in n for n in forced.notes)
    assert plan_run(shipped, vocab, adapter="none").answer_shape == "full"
