"""Option scoring: short closed facets answered by ranking every option (option_scoring.py),
with a fake engine whose log-probabilities the tests set."""

import json
import math

import numpy as np
import pytest

from tagsmith.config import TaggingSettings
from tagsmith.engines import fake
from tagsmith.engines.base import common_prefix_length
from tagsmith.items import Item
from tagsmith.option_scoring import (NO_VALUE, answer_prefix, continuation, embedding_prior, options, scorable)
from tagsmith.schema import build_schema
from tagsmith.tagger import Tagger
from tagsmith.vocabulary import parse_vocabulary

NECK = {"name": "neck", "facets": [{"name": "Neckline", "required": True,
                                    "values": ["V-Neck", "Crew Neck", "Scoop Neck"]}]}
MIXED = {"name": "mixed", "facets": [
    {"name": "Brand", "extractive": True},
    {"name": "Color", "values": ["Red", "Blue"]},
    {"name": "Tags", "max_values": 3, "values": ["a", "b"]},
]}
# decoded tags' own confidences (test_confidence.py) are off: these tests count scoring calls
NO_PRIOR = TaggingSettings(option_scoring="all", option_scoring_max=10, option_prior_weight=0.0,
                           option_calibration=False, decoded_confidence=False)


def option_of(continuation_text: str) -> str:
    values = json.loads(continuation_text.rstrip(",}"))
    return values[0] if values else NO_VALUE


def engine(logprobs, answer="{}"):
    """Scores each continuation by `logprobs(option, request)`."""
    return fake.FakeEngine(answer=answer, scores=lambda r: [logprobs(option_of(c), r) for c in r.continuations])


def test_prefix_and_continuations_are_the_compact_answer():
    vocab = parse_vocabulary(MIXED)
    prefix = answer_prefix(vocab, {"Brand": ["ACME"]}, 1)
    assert prefix == '{"Brand":["ACME"],"Color":'
    assert json.loads(prefix + continuation("Red", False) + '"Tags":[]}') == {"Brand": ["ACME"], "Color": ["Red"],
                                                                             "Tags": []}
    assert continuation(NO_VALUE, True) == "[]}"
    assert [f.name for f in vocab.facets if scorable(f, 10)] == ["Color"]  # not extractive, not multi-valued
    assert not scorable(vocab.facets[1], 1)  # more options than the limit
    assert options(parse_vocabulary(NECK).facets[0]) == ["V-Neck", "Crew Neck", "Scoop Neck"]  # required: no empty
    assert options(vocab.facets[1]) == ["Red", "Blue", NO_VALUE]


def test_required_facet_schema_has_min_items():
    schema = build_schema(parse_vocabulary(NECK))
    assert schema["properties"]["Neckline"]["minItems"] == 1
    with pytest.raises(Exception, match="extractive facet cannot be required"):
        parse_vocabulary({"name": "x", "facets": [{"name": "P", "extractive": True, "required": True}]})


def test_common_prefix_leaves_a_token_to_score():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 1  # the shorter keeps its last token
    assert common_prefix_length([[5, 6, 7]]) == 2


def test_fully_scored_vocabulary_needs_no_generation(template):
    eng = engine(lambda o, r: {"V-Neck": -3.0, "Crew Neck": -1.0, "Scoop Neck": -2.0}[o])
    tagger = Tagger(eng, parse_vocabulary(NECK), template, NO_PRIOR)
    (r,) = tagger.tag_batch([Item("1", "A dress")])
    assert eng.requests == []  # nothing generated
    assert r.tags == {"Neckline": ["Crew Neck"]} and r.error is None
    assert json.loads(r.raw) == {"Neckline": ["Crew Neck"]}
    probs = r.scores["Neckline"]
    assert list(probs) == ["Crew Neck", "Scoop Neck", "V-Neck"]
    z = sum(math.exp(x) for x in (-1, -2, -3))
    assert probs["Crew Neck"] == pytest.approx(math.exp(-1) / z, abs=1e-4)
    (req,) = eng.score_requests
    assert req.prefix == '{"Neckline":' and "A dress" in req.messages[0]["content"]


def test_calibration_removes_the_content_free_bias(template):
    # the model likes V-Neck for any input; for this item Crew Neck is only a little behind,
    # while for the content-free item it is far behind: calibrated, Crew Neck wins
    def lp(o, r):
        content_free = "N/A" in r.messages[0]["content"]
        return {"V-Neck": -0.5, "Crew Neck": -3.0 if content_free else -1.0, "Scoop Neck": -4.0}[o]

    vocab = parse_vocabulary(NECK)
    plain = Tagger(engine(lp), vocab, template, NO_PRIOR).tag(Item("1", "A dress"))
    calibrated = Tagger(engine(lp), vocab, template, NO_PRIOR.model_copy(update={"option_calibration": True}))
    assert plain.tags == {"Neckline": ["V-Neck"]}
    assert calibrated.tag(Item("1", "A dress")).tags == {"Neckline": ["Crew Neck"]}


def test_generated_facets_are_kept_and_short_ones_rescored(template):
    answer = json.dumps({"Brand": ["ACME"], "Color": ["Red"], "Tags": ["a", "b"]}, separators=(",", ":"))
    eng = engine(lambda o, r: {"Red": -2.0, "Blue": -0.1, NO_VALUE: -3.0}[o], answer=answer)
    (r,) = Tagger(eng, parse_vocabulary(MIXED), template, NO_PRIOR).tag_batch([Item("1", "ACME blue pen")])
    assert len(eng.requests) == 1  # generated once, then Color rescored
    assert r.tags == {"Brand": ["ACME"], "Color": ["Blue"], "Tags": ["a", "b"]}
    assert r.raw == answer  # what the model wrote stays visible
    assert eng.score_requests[0].prefix == '{"Brand":["ACME"],"Color":'
    assert set(r.scores) == {"Color"}


def test_empty_answer_can_win_and_removes_the_tag(template):
    answer = '{"Brand":[],"Color":["Red"],"Tags":[]}'
    eng = engine(lambda o, r: {"Red": -2.0, "Blue": -3.0, NO_VALUE: -0.2}[o], answer=answer)
    (r,) = Tagger(eng, parse_vocabulary(MIXED), template, NO_PRIOR).tag_batch([Item("1", "a pen")])
    assert r.tags == {} and r.scores["Color"][NO_VALUE] > 0.5


def test_engine_that_cannot_score_decodes(template):
    eng = fake.FakeEngine(answer='{"Neckline":["V-Neck"]}')
    tagger = Tagger(eng, parse_vocabulary(NECK), template, NO_PRIOR)
    assert tagger.option_scorer is None
    assert tagger.tag(Item("1", "A dress")).tags == {"Neckline": ["V-Neck"]} and len(eng.requests) == 1


def test_embedding_prior_is_zero_when_uniform_and_favours_the_closer_option():
    uniform = embedding_prior(np.full(3, 1 / math.sqrt(3), dtype=np.float32), 0.05)
    assert np.allclose(uniform, 0.0, atol=1e-5)
    near_second = embedding_prior(np.array([0.1, 0.9, 0.1], dtype=np.float32), 0.05)
    assert near_second.argmax() == 1 and near_second[1] > 0 > near_second[0]
    # a sharper temperature pushes the farther options further down
    assert embedding_prior(np.array([0.1, 0.9, 0.1]), 0.02)[0] < near_second[0]


def test_prior_breaks_a_model_tie(template):
    class Encoder:  # items mentioning "crew" sit on the Crew Neck option
        name = "stub"

        def encode(self, texts, progress=False):
            rows = []
            for t in texts:
                v = np.array([1.0, 0.0, 0.0]) if "V-Neck" in t else np.array([0.0, 1.0, 0.0]) if "Crew" in t \
                    else np.array([0.0, 0.0, 1.0]) if "Scoop" in t else np.array([0.1, 0.9, 0.1])
                rows.append(v / np.linalg.norm(v))
            return np.array(rows, dtype=np.float32)

    settings = TaggingSettings(option_scoring="all", option_scoring_max=10, option_calibration=False)
    tagger = Tagger(engine(lambda o, r: -1.0), parse_vocabulary(NECK), template, settings)
    tagger.option_scorer._encoder = Encoder()
    assert tagger.tag(Item("1", "a shirt with a crew collar")).tags == {"Neckline": ["Crew Neck"]}


def test_an_item_the_engine_cannot_score_gets_its_own_error(template):
    def lp(o, r):
        if "poison" in r.messages[0]["content"]:
            raise ValueError("prompt too long for the model's context")
        return {"V-Neck": -1.0, "Crew Neck": -2.0, "Scoop Neck": -3.0}[o]

    tagger = Tagger(engine(lp), parse_vocabulary(NECK), template, NO_PRIOR)
    good, bad = tagger.tag_batch([Item("1", "A dress"), Item("2", "poison")])
    assert good.tags == {"Neckline": ["V-Neck"]} and good.error is None
    assert bad.tags == {} and "option scoring failed: prompt too long" in bad.error


def test_min_confidence_withholds_unsure_tags_with_their_score(template):
    lp = {"V-Neck": -1.0, "Crew Neck": -1.1, "Scoop Neck": -1.2}  # nearly a three-way tie
    settings = NO_PRIOR.model_copy(update={"min_confidence": 0.5})
    (r,) = Tagger(engine(lambda o, r: lp[o]), parse_vocabulary(NECK), template, settings).tag_batch([Item("1", "x")])
    assert r.tags == {}
    (rej,) = r.rejected
    assert rej["code"] == "low_confidence" and rej["value"] == "V-Neck" and 0.3 < rej["score"] < 0.4
    sure = {"V-Neck": -0.01, "Crew Neck": -6.0, "Scoop Neck": -6.0}
    (r,) = Tagger(engine(lambda o, r: sure[o]), parse_vocabulary(NECK), template, settings).tag_batch([Item("1", "x")])
    assert r.tags == {"Neckline": ["V-Neck"]} and r.rejected == []


def test_run_spec_carries_option_scoring_settings():
    from tagsmith.runtime import RunSpec

    t = RunSpec(vocab="wdc-pave", option_scoring="all", option_scoring_max=7, min_confidence=0.4).settings().tagging
    assert t.option_scoring == "all" and t.option_scoring_max == 7 and t.min_confidence == 0.4
    assert RunSpec(vocab="wdc-pave").settings().tagging.min_confidence is None  # the adapter's, if tuned


def test_constrained_probabilities_sum_to_one_over_the_options():
    import math as m

    from tagsmith.engines.base import constrained_logprobs

    # tails [1, 2], [1, 3], [4]: the model puts mass elsewhere too (unnormalized within the trie)
    table = {(0, 1): -1.0, (0, 4): -2.0, (1, 2): -0.5, (1, 3): -1.5}

    def step(i, j, token):
        return table[(j, token)]

    got = constrained_logprobs([[1, 2], [1, 3], [4]], step)
    assert sum(m.exp(x) for x in got) == pytest.approx(1.0)
    first = m.exp(-1.0) / (m.exp(-1.0) + m.exp(-2.0))
    second = m.exp(-0.5) / (m.exp(-0.5) + m.exp(-1.5))
    assert m.exp(got[0]) == pytest.approx(first * second)


def test_no_value_must_beat_all_values_together(template):
    # "no value" is the single most probable option (0.4) but the values together hold 0.6:
    # a decoder's first step would write a value, and the best whole value is the answer
    p = {"Red": 0.35, "Blue": 0.25, NO_VALUE: 0.4}
    answer = '{"Brand":[],"Color":[],"Tags":[]}'
    eng = engine(lambda o, r: math.log(p[o]), answer=answer)
    (r,) = Tagger(eng, parse_vocabulary(MIXED), template, NO_PRIOR).tag_batch([Item("1", "a pen")])
    assert r.tags == {"Color": ["Red"]}


def test_closed_mode_scores_only_vocabularies_of_short_closed_facets(template):
    settings = NO_PRIOR.model_copy(update={"option_scoring": "closed"})
    eng = engine(lambda o, r: {"V-Neck": -1.0, "Crew Neck": -2.0, "Scoop Neck": -3.0}.get(o, -1.0),
                 answer='{"Brand":[],"Color":["Red"],"Tags":[]}')
    neck = Tagger(eng, parse_vocabulary(NECK), template, settings).tag(Item("1", "dress"))
    mixed = Tagger(eng, parse_vocabulary(MIXED), template, settings).tag(Item("2", "pen"))
    assert neck.tags == {"Neckline": ["V-Neck"]} and neck.scores
    assert mixed.tags == {"Color": ["Red"]} and mixed.scores == {}  # decoded: it has an extractive facet
    assert len(eng.requests) == 1
