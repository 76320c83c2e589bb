"""Confidence of decoded tags (confidence.py) with a fake engine that reads every character of
an answer as one token, with log-probabilities the tests set per value."""

import json
import math

import pytest

from tagsmith.config import TaggingSettings
from tagsmith.confidence import DecodedAnswer, compact_answer, decoded_confidences, span_logprob
from tagsmith.engines import fake
from tagsmith.engines.base import TokenLogprob
from tagsmith.items import Item
from tagsmith.prompts import load_template
from tagsmith.tagger import Tagger
from tagsmith.vocabulary import parse_vocabulary

VOCAB = {"name": "v", "facets": [
    {"name": "Brand", "extractive": True},
    {"name": "Color", "max_values": 2, "values": [{"value": "Blue", "aliases": ["navy"]}, "Red", "Green"]},
    {"name": "Size", "values": ["S", "M"]},
]}
MESSAGES = ({"role": "user", "content": "tag it"},)
#: log-probability of a value's span (spread over its characters), by the text of the span
SPANS = {'"ACME"]': -0.1, '"navy",': -0.5, '"Red"]': -2.0, "[]": -0.3}


def reader(spans=SPANS):
    """One token per character; the characters of a span the test names share its log-probability."""
    def read(request):
        logprobs = [0.0] * len(request.text)
        for span, lp in spans.items():
            at = request.text.find(span)
            while at >= 0:
                for c in range(at, at + len(span)):
                    logprobs[c] = lp / len(span)
                at = request.text.find(span, at + 1)
        return [TokenLogprob(c, c + 1, lp) for c, lp in enumerate(logprobs)]
    return read


def test_compact_answer_spans_cover_each_value_and_its_delimiter():
    text, spans = compact_answer(parse_vocabulary(VOCAB), {"Color": ["navy", "Red"], "Brand": ["ACME"]})
    assert text == '{"Brand":["ACME"],"Color":["navy","Red"],"Size":[]}' and json.loads(text)
    assert [(f, v, text[a:b]) for f, v, a, b in spans] == [
        ("Brand", "ACME", '"ACME"]'), ("Color", "navy", '"navy",'), ("Color", "Red", '"Red"]'), ("Size", None, "[]")]
    # a token that spans two values counts for both
    tokens = [TokenLogprob(0, 3, -1.0), TokenLogprob(3, 6, -2.0)]
    assert span_logprob(tokens, 2, 4) == -3.0 and span_logprob(tokens, 3, 4) == -2.0


def test_each_written_value_gets_the_probability_of_its_tokens():
    eng = fake.FakeEngine(scores=lambda r: [], logprobs=reader())
    answer = {"Brand": ["ACME"], "Color": ["navy", "Red"], "Size": []}
    (found,) = decoded_confidences(eng, [DecodedAnswer(MESSAGES, parse_vocabulary(VOCAB), answer, "ACME pen, navy")])
    # filed under the tag each value stands for: the alias "navy" is Blue
    assert found == {"Brand": {"ACME": round(math.exp(-0.1), 4)},
                     "Color": {"Blue": round(math.exp(-0.5), 4), "Red": round(math.exp(-2.0), 4)},
                     "Size": {"": round(math.exp(-0.3), 4)}}
    (request,) = eng.answer_requests  # the whole answer read once
    assert request.text == '{"Brand":["ACME"],"Color":["navy","Red"],"Size":[]}' and request.messages == MESSAGES


def test_facets_scored_otherwise_and_values_outside_the_vocabulary_get_no_score():
    eng = fake.FakeEngine(scores=lambda r: [], logprobs=reader({'"Purple"]': -0.2, "[]": -0.1}))
    answer = {"Brand": ["ACME"], "Color": ["Purple"], "Size": []}
    (found,) = decoded_confidences(eng, [DecodedAnswer(MESSAGES, parse_vocabulary(VOCAB), answer, "pen")],
                                   skip=[{"Brand"}])
    assert found == {"Size": {"": round(math.exp(-0.1), 4)}}  # Purple is no tag; Brand skipped


def tagger(eng, **settings):
    return Tagger(eng, parse_vocabulary(VOCAB), load_template("default"),
                  TaggingSettings(option_scoring="off", **settings))


def test_tagger_attaches_scores_and_withholds_tags_below_min_confidence():
    answer = '{"Brand":["ACME"],"Color":["navy","Red"],"Size":[]}'
    eng = fake.FakeEngine(answer=answer, scores=lambda r: [], logprobs=reader())
    kept = tagger(eng).tag(Item("1", "ACME pen, navy"))
    assert kept.tags == {"Brand": ["ACME"], "Color": ["Blue", "Red"]}
    assert kept.scores["Color"]["Red"] == pytest.approx(math.exp(-2.0), abs=1e-4)
    cut = tagger(eng, min_confidence=0.5).tag(Item("1", "ACME pen, navy"))
    assert cut.tags == {"Brand": ["ACME"], "Color": ["Blue"]}  # Red (0.135) withheld
    (rejected,) = cut.rejected
    assert rejected["value"] == "Red" and rejected["code"] == "low_confidence"
    assert rejected["score"] == pytest.approx(math.exp(-2.0), abs=1e-4)


def test_reading_failure_keeps_the_tags_and_says_so():
    def refuse(r):
        raise RuntimeError("context too long")

    eng = fake.FakeEngine(answer='{"Brand":["ACME"],"Color":[],"Size":[]}', scores=lambda r: [], logprobs=refuse)
    result = tagger(eng, min_confidence=0.9).tag(Item("1", "ACME pen"))
    assert result.tags == {"Brand": ["ACME"]} and result.scores == {} and result.error is None
    assert any("confidence of decoded tags failed: context too long" in w for w in result.warnings)


def test_off_and_engines_that_cannot_score_leave_tags_unscored():
    answer = '{"Brand":["ACME"],"Color":[],"Size":[]}'
    eng = fake.FakeEngine(answer=answer, scores=lambda r: [], logprobs=reader())
    assert tagger(eng, decoded_confidence=False).tag(Item("1", "ACME pen")).scores == {}
    assert eng.answer_requests == []
    assert tagger(fake.FakeEngine(answer=answer)).tag(Item("1", "ACME pen")).scores == {}
