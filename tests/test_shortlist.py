"""Candidate shortlists: large facets cut per item, exact mentions first, answers stay inside
the vocabulary, value embeddings cached on disk."""

import json

import numpy as np
import pytest

from tagsmith.items import Item
from tagsmith.shortlist import Shortlister, restricted
from tagsmith.config import TaggingSettings
from tagsmith.tagger import Tagger
from tagsmith.vocabulary import parse_vocabulary

from conftest import FakeEngine


class HashEncoder:
    """Deterministic stand-in for the sentence encoder: bag of hashed words (a value and an item
    sharing words are close). Counts calls so caching can be checked."""

    name = "hash-words"

    def __init__(self):
        self.encoded = 0

    def encode(self, texts, progress=False):
        self.encoded += len(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(":", " ").split():
                out[i, hash(w) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


COLORS = [f"Shade {i}" for i in range(600)] + ["Navy Blue", "Crimson Red"]


def big_vocab():
    return parse_vocabulary({"name": "big", "facets": [
        {"name": "Color", "values": COLORS[:-1] + [{"value": "Crimson Red", "aliases": ["scarlet"]}]},
        {"name": "Size", "values": ["S", "M", "L"]},
        {"name": "Category", "hierarchy": {}, "values": [f"Home > Room {i} > Shelf {j}"
                                                      for i in range(30) for j in range(30)]},
        {"name": "Part Number", "extractive": True},
    ]})


@pytest.fixture
def shortlister(tmp_path):
    return Shortlister(k=5, above=100, encoder=HashEncoder(), cache=tmp_path)


def test_large_facets_are_cut_to_k_with_exact_mentions_first(shortlister):
    vocab = big_vocab()
    [c] = shortlister.candidates(vocab, ["Scarlet wool scarf, shade 12, navy blue trim"])
    assert set(c) == {"Color", "Category"}  # Size (3 values) is used whole
    assert len(c["Color"]) == 5 and len(c["Category"]) == 5
    # alias 'scarlet' and 'Navy Blue' and 'Shade 12' are all in the text: they come first
    assert set(c["Color"][:3]) == {"Crimson Red", "Navy Blue", "Shade 12"}


def test_restricted_vocabulary_is_a_subset_that_keeps_aliases_and_hierarchy(shortlister):
    vocab = big_vocab()
    small = restricted(vocab, {"Color": ["Crimson Red", "Shade 3"], "Category": ["Home > Room 2 > Shelf 5"]})
    color = small.facet("Color")
    assert color.allowed == ("Crimson Red", "Shade 3") and color.canonical("scarlet") == "Crimson Red"
    assert small.facet("Category").allowed == ("Home", "Home > Room 2", "Home > Room 2 > Shelf 5")
    assert small.facet("Size") is vocab.facet("Size") and small.name == vocab.name
    assert set(small.facet("Category").allowed) <= set(vocab.facet("Category").allowed)


def test_value_embeddings_are_computed_once_per_vocabulary(tmp_path):
    enc = HashEncoder()
    Shortlister(k=5, above=100, encoder=enc, cache=tmp_path).candidates(big_vocab(), ["navy"])
    first = enc.encoded
    assert first == 602 + 900 + 30 + 1 + 1  # colors + shelves + rooms + Home + the item
    enc2 = HashEncoder()
    Shortlister(k=5, above=100, encoder=enc2, cache=tmp_path).candidates(big_vocab(), ["navy"])
    assert enc2.encoded == 1  # values come from the disk cache; only the item is embedded


def test_tagger_sends_per_item_shortlisted_prompt_and_schema(shortlister, template):
    vocab = big_vocab()

    def answer(request):
        schema = request.schema.data
        colors = schema["properties"]["Color"]["items"]["enum"]
        assert len(colors) <= 6  # k values (+ an alias) of 602
        return json.dumps({"Color": [colors[0]], "Size": [], "Category": [], "Part Number": []})

    engine = FakeEngine(answer)
    tagger = Tagger(engine, vocab, template, TaggingSettings(shortlist_k=5, shortlist_above=100),
                    shortlister=shortlister)
    results = tagger.tag_batch([Item("1", "Navy blue shirt"), Item("2", "Crimson red mug, scarlet")])
    assert [r.error for r in results] == [None, None]
    assert results[0].tags["Color"] == ["Navy Blue"] and results[1].tags["Color"] == ["Crimson Red"]
    prompt = engine.requests[0].messages[-1]["content"]
    assert "Navy Blue" in prompt and prompt.count("Shade") <= 5


def test_small_vocabularies_never_load_the_encoder(small_vocab, template):
    tagger = Tagger(FakeEngine("{}"), small_vocab, template)
    tagger.tag(Item("1", "knife"))
    assert tagger._shortlister is None


@pytest.mark.slow
def test_real_encoder_finds_the_value_a_text_means_without_naming_it(tmp_path):
    """all-MiniLM-L6-v2 from its PyPI package, offline: a shortlist of 5 out of 600+ holds the
    category a product belongs to although the text never names it."""
    from tagsmith.embeddings import TextEncoder

    rooms = ["Kitchen > Knives", "Garden > Hoses", "Bathroom > Towels", "Office > Staplers", "Pets > Dog Beds"]
    filler = [f"Warehouse > Bin {i}" for i in range(600)]
    vocab = parse_vocabulary({"name": "cats", "facets": [{"name": "Category", "hierarchy": {},
                                                         "values": rooms + filler}]})
    lister = Shortlister(k=5, above=100, encoder=TextEncoder(), cache=tmp_path)
    texts = ["8 inch chef's blade with a pakka wood handle, forged German steel",
             "50 ft expandable watering pipe with spray nozzle",
             "Orthopedic memory foam bed for large breeds"]
    picks = [c["Category"] for c in lister.candidates(vocab, texts)]
    assert "Kitchen > Knives" in picks[0] and "Garden > Hoses" in picks[1] and "Pets > Dog Beds" in picks[2], picks


def test_a_shortlisted_facet_short_enough_is_answered_by_option_scoring(shortlister, template):
    """Each item's own shortlist is what option scoring ranks: its options are the item's
    candidates (different per item), and the answer and its scores stay inside them."""
    vocab = parse_vocabulary({"name": "colors", "facets": [
        {"name": "Color", "required": True, "values": COLORS[:-1] + [{"value": "Crimson Red", "aliases": ["scarlet"]}]}]})
    from tagsmith.engines import fake

    def scores(request):  # the model prefers whatever the item's list offers last
        return [-1.0 if i == len(request.continuations) - 1 else -5.0 for i in range(len(request.continuations))]

    engine = fake.FakeEngine(answer="{}", scores=scores)
    settings = TaggingSettings(shortlist_k=5, shortlist_above=100, option_scoring_max=5,
                               option_calibration=False, option_prior_weight=0.0, decoded_confidence=False)
    tagger = Tagger(engine, vocab, template, settings, shortlister=shortlister)
    navy, crimson = tagger.tag_batch([Item("1", "Navy blue shirt"), Item("2", "Crimson red mug, scarlet")])
    shown = [c["Color"] for c in shortlister.candidates(vocab, ["Navy blue shirt", "Crimson red mug, scarlet"])]
    assert navy.tags == {"Color": [shown[0][-1]]} and crimson.tags == {"Color": [shown[1][-1]]}
    assert set(navy.scores["Color"]) <= set(shown[0]) and set(crimson.scores["Color"]) <= set(shown[1])
    assert shown[0] != shown[1]
    assert engine.requests == []  # every facet scored: nothing generated


def test_depth_penalty_ranks_shallower_paths_first(tmp_path):
    """Each level below the top costs `depth_penalty` of similarity: 1.0 a level puts the top
    node first; the scores are the cosine less the penalty."""
    enc = HashEncoder()
    text = ["shelves in a room"]  # names no value: similarity alone ranks
    plain = Shortlister(k=3, above=100, encoder=enc, cache=tmp_path).scored_candidates(big_vocab(), text)
    steep = Shortlister(k=3, above=100, encoder=enc, cache=tmp_path, depth_penalty=1.0).scored_candidates(
        big_vocab(), text)
    assert plain[0]["Category"][0][0] != "Home"
    assert steep[0]["Category"][0][0] == "Home"
    assert all(v.count(" > ") == 1 for v, _ in steep[0]["Category"][1:])
    scores = [s for _, s in plain[0]["Category"]]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0
    # flat facets are not penalized
    assert [v for v, _ in steep[0]["Color"]] == [v for v, _ in plain[0]["Color"]]


def test_a_path_is_mentioned_by_its_own_name_plurals_folded(tmp_path):
    vocab = parse_vocabulary({"name": "home", "facets": [{"name": "Category", "hierarchy": {}, "values": [
        "Kitchen > Drinkware > Mugs", "Kitchen > Drinkware > Glasses", "Linens > Tablecloths",
        *(f"Garden > Bed {i}" for i in range(20))]}]})
    enc = HashEncoder()
    plain = Shortlister(k=4, above=10, encoder=enc, cache=tmp_path)
    bonus = Shortlister(k=4, above=10, encoder=enc, cache=tmp_path, mention_bonus=0.5)
    (found,) = plain.scored_candidates(vocab, ["Funny coffee mug, 11 oz"])
    (boosted,) = bonus.scored_candidates(vocab, ["Funny coffee mug, 11 oz"])
    assert found["Category"][0][0] == "Kitchen > Drinkware > Mugs"  # "mug" names "Mugs"
    assert boosted["Category"][0] == (found["Category"][0][0], pytest.approx(found["Category"][0][1] + 0.5))
    (found,) = plain.scored_candidates(vocab, ["Round tablecloth, glass beads"])
    assert [v for v, _ in found["Category"][:2]] == ["Linens > Tablecloths", "Kitchen > Drinkware > Glasses"]
