"""Confidence of decoded tags (confidence.py) with a fake engine that reads every character of
an answer as one token, with log-probabilities the tests set per value."""

import json
import math

import pytest

from tagsmith.config import TaggingSettings
from tagsmith.confidence import DecodedAnswer, compact_answer, decoded_confidences, span_logprob
from tagsmith.engines import fake
from tagsmith.engines.base import TokenLogprob, generated_spans
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


# Confidences from the tokens an engine generated (no read-back)


class PieceTokenizer:
    """Token i decodes to pieces[i] (a byte-level tokenizer's partial character: "\ufffd")."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(self.pieces[i] for i in ids)


def test_spans_of_generated_tokens_follow_the_decoded_prefixes():
    tok = PieceTokenizer(['{"', "Color", '":', '["', "Red", '"]}', ""])  # the last: a special token
    assert generated_spans(tok, list(range(7)), '{"Color":["Red"]}') == [
        (0, 2), (2, 7), (7, 9), (9, 11), (11, 14), (14, 17), (17, 17)]


def test_no_spans_when_a_prefix_does_not_decode_to_a_prefix():
    tok = PieceTokenizer(['{"', "Caf", "\ufffd", "é", '"}'])
    assert generated_spans(tok, [0, 1, 2], '{"Café"}') is None
    assert generated_spans(tok, [0, 1], '{"Café"}') is None  # decodes to less than the text


SMALL = parse_vocabulary({"name": "small", "facets": [{"name": "Color", "values": ["Red", "Blue"]},
                                                       {"name": "Brand", "values": ["Acme"]}]})


def tokens_of(text: str, logprob: dict[str, float]) -> tuple[TokenLogprob, ...]:
    """One token per character, each with the log-probability given for it (default 0)."""
    return tuple(TokenLogprob(i, i + 1, logprob.get(ch, 0.0)) for i, ch in enumerate(text))


class NoReadBack(fake.FakeEngine):
    def answer_logprobs(self, requests):
        raise AssertionError("answers that came with their tokens need no read-back")


def test_generated_tokens_give_the_confidences_without_an_engine_call():
    answer = {"Color": ["Red"], "Brand": []}
    text, _ = compact_answer(SMALL, answer)
    tokens = tokens_of(text, {"R": -0.5})
    engine = NoReadBack(logprobs=lambda r: [])
    [scores] = decoded_confidences(engine, [DecodedAnswer((), SMALL, answer, "red shirt", raw=text, tokens=tokens)])
    assert scores == {"Color": {"Red": round(math.exp(-0.5), 4)}, "Brand": {"": 1.0}}


def test_an_answer_not_in_compact_form_is_read_back():
    answer = {"Color": ["Red"], "Brand": []}
    text, _ = compact_answer(SMALL, answer)
    spaced = text.replace(":", ": ")
    seen = []

    def read(request):
        seen.append(request.text)
        return list(tokens_of(request.text, {"R": -1.0}))

    [scores] = decoded_confidences(fake.FakeEngine(logprobs=read), [
        DecodedAnswer((), SMALL, answer, "red shirt", raw=spaced, tokens=tokens_of(spaced, {}))])
    assert seen == [text]
    assert scores["Color"]["Red"] == round(math.exp(-1.0), 4)


def test_without_tokens_or_a_read_back_there_are_no_scores():
    answer = {"Color": ["Red"], "Brand": []}
    engine = fake.FakeEngine()  # reads no answers
    assert not engine.reads_answers
    assert decoded_confidences(engine, [DecodedAnswer((), SMALL, answer, "red shirt")]) == [{}]
