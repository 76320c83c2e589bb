"""The ranker of runs of words that may be a value a facet lacks (value_spans)."""

from __future__ import annotations

import numpy as np

from tagsmith.items import Item
from tagsmith.value_spans import (
    FEATURES,
    FacetProfile,
    SpanTable,
    conversions,
    features,
    fit_logistic,
    learnt_answers,
    shape,
    stated_numbers,
    text_spans,
)
from tagsmith.vocab_health import loose_key
from tagsmith.vocab_suggest import suggest
from tagsmith.vocabulary import VocabularySet, parse_vocabulary


class HashEncoder:
    """Each text its own random unit vector (texts nearly orthogonal): similarity features say
    little, so what ranks is the shape, words, context and position the ranker learns."""

    def encode(self, texts):
        import zlib

        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=256) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def test_text_spans_are_runs_of_words_with_the_words_around_them():
    spans = text_spans(Item("1", "Navy blue pan, 2.5-GHz", "made of teak"), max_words=2)
    by_text = {(s.text, s.where): s for s in spans}
    navy = by_text[("Navy", "title")]
    assert navy.first and navy.left == "^title" and navy.right == "blue"
    assert by_text[("2.5-GHz", "title")].right == "$"
    assert by_text[("teak", "description")].left == "of"
    assert ("Navy blue", "title") in by_text and ("blue pan", "title") in by_text
    assert not any(s.text.split()[0] in ("of", "made of") or s.text.endswith(" of") for s in spans)


def test_stated_numbers_read_fractions_units_and_sides():
    found = stated_numbers('Table 24" wide, 13-1/2"H, 36w x 18d 26 3/4h, 68 lbs., 9oz, 1.9GHz, E5-2420, 4 MB, '
                           "12 inches, 2 feet, 250 grams")
    assert [(x, unit) for x, unit, _, _ in found] == [
        (24.0, "in"), (13.5, "in"), (36.0, None), (18.0, None), (26.75, None), (68.0, "lb"), (9.0, "oz"),
        (12.0, "in"), (2.0, "ft"), (250.0, "g")]


def test_conversions_are_found_from_numbers_that_name_their_unit():
    centimetres = ["61.0", "91.4", "76.2", "12.7", "30.5"]
    texts = ['Work table, 24" wide', '36" x 30"', 'Shelf, 5" tall', '12 in. deep', "a 36 x 18 mat"]
    assert conversions(centimetres, texts) == [("in", "cm", 2.54, 1)]
    # counts: the numbers as stated explain them; a conversion hitting some by chance does not count
    assert conversions(["12", "24", "36", "100"], ['12 pack, 1" thick', "24 per case", '36 rolls, 4"']) == []
    assert conversions(["Red", "Blue"], texts) == []


def test_fit_logistic_finds_the_feature_that_separates_the_classes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 2))
    y = (X[:, 0] + 0.3 * rng.normal(size=4000)) > 1.0
    coefficients, mean, scale = fit_logistic(X, y)
    assert coefficients[1] > 3 and abs(coefficients[2]) < 0.3
    p = 1 / (1 + np.exp(-(coefficients[0] + ((X - mean) / scale) @ coefficients[1:])))
    assert abs(p.mean() - y.mean()) < 0.01  # calibrated on average
    weights = np.where(y, 1.0, 4.0)  # negatives count four times: lower probabilities
    shifted, _, _ = fit_logistic(X, y, weights)
    assert shifted[0] < coefficients[0]


GALLONS = {"name": "bins", "facets": [
    {"name": "Capacity", "values": ["10 gallon", "12 gallon", "20 gallon", "32 gallon", "40 gallon", "55 gallon"]},
    {"name": "Width", "values": ["61.0", "76.2", "91.4", "45.7", "50.8"]},
    {"name": "Category", "hierarchy": {"separator": " > "}, "values": ["Bins > Outdoor", "Bins > Indoor"]}]}


def test_learnt_answers_rank_a_new_value_by_how_the_facets_own_values_look():
    vocab = parse_vocabulary(GALLONS)
    rows = [("10 gallon", 24), ("12 gallon", 30), ("20 gallon", 36), ("32 gallon", 18), ("40 gallon", 20),
            ("55 gallon", 24), ("32 gallon", 30), ("20 gallon", 36), ("10 gallon", 18), ("12 gallon", 20)]
    items = [Item(str(n), f"Waste container, {cap}, {w}\"W, black", "Sturdy plastic lid with handles.")
             for n, (cap, w) in enumerate(rows)]
    items.append(Item("new", 'Waste container, 44 gallon, 48"W, black', "Sturdy plastic lid with handles."))
    answers = [(items[-1], "bins", {"Category": ["Bins > Big"], "Capacity": ["44 gallon"]})]
    learnt = learnt_answers([(i, vocab) for i in items], answers, HashEncoder(), min_positives=5)
    assert learnt.learnt and learnt.positives >= 10
    patch = suggest(VocabularySet([vocab]), learnt.answers, top=1)
    assert patch["bins"]["Capacity"].add[0]["value"] == "44 gallon"
    assert patch["bins"]["Width"].add[0]["value"] == "121.9"  # 48" in the facet's centimetres
    # no run reaches the level: each facet still keeps its most likely ones, in the same order
    floor = learnt_answers([(i, vocab) for i in items], answers, HashEncoder(), min_positives=5,
                           min_probability=1.1, min_keys=1)
    kept = suggest(VocabularySet([vocab]), floor.answers, top=5)
    assert [a["value"] for a in kept["bins"]["Capacity"].add] == ["44 gallon"]
    assert [a["value"] for a in kept["bins"]["Width"].add] == ["121.9"]
    # a category tree's answers are the model's, unscored
    assert patch["bins"]["Category"].add[0] == {"value": "Bins > Big", "score": 1.0, "support": 1,
                                                 "examples": ["new: Waste container, 44 gallon, 48\"W, black"]}


def test_too_few_mentions_to_learn_from_give_the_model_answers_back():
    vocab = parse_vocabulary(GALLONS)
    items = [Item("1", "Bin, 44 gallon"), Item("2", "Bin, 10 gallon")]
    answers = [(items[0], "bins", {"Capacity": ["44 gallon"]})]
    learnt = learnt_answers([(i, vocab) for i in items], answers, HashEncoder(), min_positives=1000)
    assert not learnt.learnt
    assert learnt.answers == [(items[0], "bins", {"Capacity": [("44 gallon", 1.0)]})]


def test_shape_with_decimals_tells_a_facets_number_format_apart():
    assert shape("61.0") == shape("24") == "0"
    assert shape("61.0", decimals=True) == "0.d" and shape("24", decimals=True) == "0"
    assert shape("2.25 quart", ["quart"], decimals=True) == "0.dd quart"


def test_known_stated_finds_the_known_values_an_item_already_states():
    vocab = parse_vocabulary(GALLONS)
    items = [Item("1", 'Bin, 10 gallon, 24"W'), Item("2", "Bin, 44 gallon")]
    items += [Item(f"w{n}", f'Bin, {w}"W') for n, w in enumerate((30, 36, 18, 20))]  # widths in inches
    answers = [(items[0], {"Capacity": ["10 gallon"]}), (items[1], {"Capacity": ["44 gallon"]})]
    table = SpanTable.build(vocab, items, answers, HashEncoder().encode)
    capacity = {loose_key(v) for v in vocab.facet("Capacity").allowed}
    width = {loose_key(v) for v in vocab.facet("Width").allowed}
    assert table.known_stated(items[0], "Capacity", capacity) == ({loose_key("10 gallon")}, True)
    assert table.known_stated(items[1], "Capacity", capacity) == (set(), False)
    # a number converted to the facet's unit counts as stated: 24" is the known 61.0 cm
    assert table.known_stated(items[0], "Width", width) == ({loose_key("61.0")}, False)


def test_a_facet_of_numbers_gets_its_own_copy_of_the_features():
    vocab = parse_vocabulary(GALLONS)
    items = [Item("1", 'Bin, 10 gallon, 24"W'), Item("2", "Bin, 44 gallon")]
    table = SpanTable.build(vocab, items, [], HashEncoder().encode)
    half = len(FEATURES) // 2
    for name, numeric in (("Capacity", True), ("Category", False)):
        facet = vocab.facet(name)
        profile = FacetProfile.of(facet, list(facet.values), HashEncoder().encode(list(facet.allowed)), table)
        X = features(table, name, profile, table.rows(name), table.item_freq)
        assert profile.numeric is numeric and X[:, :half].any()
        assert np.array_equal(X[:, half:], X[:, :half] if numeric else np.zeros_like(X[:, :half]))
