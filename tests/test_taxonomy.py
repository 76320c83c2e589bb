"""Category trees: the taxonomy loader, level-by-level decoding on a hand-made tree, and the
hierarchical metrics."""

import json

import pytest

from tagsmith.config import TaggingSettings
from tagsmith.engines import fake
from tagsmith.evaluation.hierarchy import hierarchy_scores, item_counts, paired_leaf_delta
from tagsmith.items import Item
from tagsmith.option_scoring import NO_VALUE
from tagsmith.tagger import Tagger
from tagsmith.taxonomy import CATEGORY, load_taxonomy, read_source, write_compact
from tagsmith.tree_decoding import children_of
from tagsmith.vocabulary import parse_vocabulary, resolve_vocabularies

TREE = {"name": "shop", "facets": [{"name": "Category", "hierarchy": {"separator": " > "}, "values": [
    "Apparel > Dresses", "Apparel > Shirts > T-Shirts", "Apparel > Shirts > Polos", "Garden > Hoses",
    "Garden > Seeds"]}]}
NO_PRIOR = TaggingSettings(option_prior_weight=0.0, ranked_prior_weight=0.0, option_calibration=False,
                           hierarchy_decoding="tree")


def option_of(continuation_text: str) -> str:
    values = json.loads(continuation_text.rstrip(",}"))
    return values[0] if values else NO_VALUE


def tree_engine(likes: dict[str, float]):
    """Scores an option by `likes` (unknown options and "no value" get -5)."""
    return fake.FakeEngine(scores=lambda r: [likes.get(option_of(c), -5.0) for c in r.continuations])


def test_children_of_a_tree():
    facet = parse_vocabulary(TREE).facets[0]
    tree = children_of(facet)
    assert tree[()] == ["Apparel", "Garden"]
    assert tree[("Apparel", "Shirts")] == ["T-Shirts", "Polos"]
    assert ("Garden", "Seeds") not in tree


def test_tree_decoding_walks_down_and_may_stop_at_an_inner_node(template):
    facet_vocab = parse_vocabulary(TREE)
    eng = tree_engine({"Apparel": -0.1, "Garden": -3.0, "Shirts": -0.2, "Dresses": -2.0,
                       "Polos": -0.3, "T-Shirts": -1.0})
    (r,) = Tagger(eng, facet_vocab, template, NO_PRIOR).tag_batch([Item("1", "pique polo shirt")])
    assert r.tags == {"Category": ["Apparel > Shirts > Polos"]} and r.error is None
    assert eng.requests == []  # every step scored, nothing generated
    assert len(eng.score_requests) == 3  # root, Apparel, Apparel > Shirts
    # the first step offers only the root's children, and must answer (no empty root)
    first = eng.score_requests[0]
    assert sorted(option_of(c) for c in first.continuations) == ["Apparel", "Garden"]
    assert 0 < r.scores["Category"]["Apparel > Shirts > Polos"] < 1
    # below the root, "no value" wins: the item stays at the inner node
    stop = tree_engine({"Apparel": -0.1, NO_VALUE: -0.01})
    (r,) = Tagger(stop, facet_vocab, template, NO_PRIOR).tag_batch([Item("1", "some clothing")])
    assert r.tags == {"Category": ["Apparel"]}


def test_ranked_decoding_scores_whole_paths_of_the_item_shortlist(template, tmp_path):
    from test_shortlist import HashEncoder

    from tagsmith.shortlist import Shortlister

    facet_vocab = parse_vocabulary(TREE)
    eng = tree_engine({"Apparel > Shirts > Polos": -0.2, "Apparel": -0.1, "Garden > Seeds": -3.0})
    settings = NO_PRIOR.model_copy(update={"hierarchy_decoding": "ranked"})
    (r,) = Tagger(eng, facet_vocab, template, settings).tag_batch([Item("1", "pique polo shirt")])
    assert r.tags == {"Category": ["Apparel"]} and r.error is None  # a small tree: every path, inner ones too
    assert eng.requests == [] and len(eng.score_requests) == 1
    assert sorted(option_of(c) for c in eng.score_requests[0].continuations) == sorted(facet_vocab.facets[0].allowed)
    # a tree larger than ranked_k: the item's k nearest paths are the options, and one of them the answer
    eng = tree_engine({"Garden > Seeds": -0.1})
    lister = Shortlister(k=50, above=500, encoder=HashEncoder(), cache=tmp_path)
    tagger = Tagger(eng, facet_vocab, template, settings.model_copy(update={"ranked_k": 3}), shortlister=lister)
    (r,) = tagger.tag_batch([Item("1", "garden seeds for tomatoes")])
    offered = [option_of(c) for c in eng.score_requests[0].continuations]
    assert len(offered) == 3 and "Garden > Seeds" in offered and NO_VALUE not in offered
    assert r.tags == {"Category": ["Garden > Seeds"]} and 0 < r.scores["Category"]["Garden > Seeds"] < 1
    # the run's threshold applies to the chosen path like any tag
    unsure = Tagger(eng, facet_vocab, template, settings.model_copy(update={"ranked_k": 3, "min_confidence": 0.999}),
                    shortlister=lister).tag(Item("1", "garden seeds for tomatoes"))
    assert unsure.tags == {} and [x["value"] for x in unsure.rejected] == ["Garden > Seeds"]


class WordEncoder:
    """Bag of words over the hand-made tree's words: similarities a test can work out."""

    name = "tree-words"
    WORDS = ["category", "apparel", "dresses", "shirts", "t-shirts", "polos", "garden", "hoses", "seeds"]

    def encode(self, texts, progress=False):
        import re

        import numpy as np

        out = np.zeros((len(texts), len(self.WORDS)), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in re.findall(r"[a-z-]+", text.lower()):
                if w in self.WORDS:
                    out[i, self.WORDS.index(w)] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.mark.parametrize(("penalty", "expected"), [(0.0, "Apparel > Shirts > Polos"), (0.2, "Apparel")])
def test_ranked_prior_is_the_path_similarity_less_the_depth_penalty(template, tmp_path, penalty, expected):
    """A model that likes every path alike leaves the answer to the prior: "apparel polos" is
    nearest "Polos (Apparel > Shirts)" (cosine 0.71 against 0.50 for "Apparel"), but two levels
    at 0.2 each cost it more than that."""
    from tagsmith.shortlist import Shortlister

    lister = Shortlister(k=50, above=500, encoder=WordEncoder(), cache=tmp_path)
    settings = TaggingSettings(option_calibration=False, ranked_k=3, hierarchy_depth_penalty=penalty)
    eng = tree_engine({})
    (r,) = Tagger(eng, parse_vocabulary(TREE), template, settings, shortlister=lister).tag_batch(
        [Item("1", "apparel polos")])
    assert r.tags == {"Category": [expected]} and r.error is None
    offered = [option_of(c) for c in eng.score_requests[0].continuations]
    assert offered[0] == "Apparel" and len(offered) == 3  # mentioned word for word: listed first


def test_flat_decoding_stays_available(template):
    eng = fake.FakeEngine(answer=json.dumps({"Category": ["Garden > Seeds"]}))
    settings = NO_PRIOR.model_copy(update={"hierarchy_decoding": "flat", "option_scoring": "off"})
    (r,) = Tagger(eng, parse_vocabulary(TREE), template, settings).tag_batch([Item("1", "tomato seeds")])
    assert r.tags == {"Category": ["Garden > Seeds"]} and len(eng.requests) == 1


def test_hierarchical_metrics_on_hand_made_cases():
    facet = parse_vocabulary(TREE).facets[0]
    assert item_counts(("A", "B", "C"), ("A", "B", "C")) == (1, 3, 3, 3)
    assert item_counts(("A", "B", "C"), ("A", "B", "D")) == (0, 2, 3, 3)  # a sibling: shared ancestors
    assert item_counts(("A", "B", "C"), ("A",)) == (0, 1, 1, 3)  # stopped early: precise, less recall
    assert item_counts(("A", "B"), ()) == (0, 0, 0, 2)
    pairs = [("1", ["Apparel > Shirts > Polos"], ["Apparel > Shirts > Polos"]),
             ("2", ["Apparel > Shirts > Polos"], ["Apparel > Shirts > T-Shirts"]),
             ("3", ["Garden > Seeds"], ["Apparel"]),
             ("4", ["Garden > Hoses"], [])]
    h = hierarchy_scores(facet, pairs, bootstrap=50)
    assert h.n == 4 and h.leaf_accuracy == pytest.approx(0.25)
    assert h.depth_accuracy == {1: pytest.approx(0.5), 2: pytest.approx(0.5), 3: pytest.approx(0.5)}
    shared, answered, gold = 3 + 2 + 0 + 0, 3 + 3 + 1 + 0, 3 + 3 + 2 + 2
    assert h.hierarchical_precision == pytest.approx(shared / answered)
    assert h.hierarchical_recall == pytest.approx(shared / gold)
    better = hierarchy_scores(facet, [(i, g, g) for i, g, _ in pairs], bootstrap=50)
    delta, (lo, hi) = paired_leaf_delta(h, better, n=200)
    assert delta == pytest.approx(0.75) and lo <= delta <= hi
    # per depth: items with gold that deep, the accuracy's interval, and the paired difference
    assert h.depth_n == {1: 4, 2: 4, 3: 2}
    assert all(lo <= h.depth_accuracy[d] <= hi for d, (lo, hi) in h.depth_interval.items())
    assert paired_leaf_delta(h, better, n=200, depth=3)[0] == pytest.approx(0.5)  # item 2 only: 0 -> 1 of 2
    assert paired_leaf_delta(h, better, n=200, depth=1)[0] == pytest.approx(0.5)  # items 3 and 4


def test_the_report_gives_depth_intervals_and_paired_depth_differences():
    from types import SimpleNamespace

    from tagsmith.evaluation.report import hierarchy_markdown

    facet = parse_vocabulary(TREE).facets[0]
    gold = [("1", ["Apparel > Shirts > Polos"]), ("2", ["Garden > Seeds"])]
    worse = hierarchy_scores(facet, [(i, g, ["Apparel"]) for i, g in gold], bootstrap=50)
    right = hierarchy_scores(facet, [(i, g, g) for i, g in gold], bootstrap=50)
    runs = [SimpleNamespace(config=SimpleNamespace(name=n), hierarchy=[h]) for n, h in (("first", worse), ("second", right))]
    text = "\n".join(hierarchy_markdown(runs))
    assert "depth 3 (n=1)" in text and "| second | 100.0 [100.0, 100.0] | 50.0 [" in text


def test_taxonomy_source_folder_and_compact_file(tmp_path):
    root = tmp_path / "tax"
    (root / "dist" / "en").mkdir(parents=True)
    (root / "data" / "categories").mkdir(parents=True)
    (root / "dist" / "en" / "categories.txt").write_text(
        "# header\ngid://shopify/TaxonomyCategory/aa : Apparel\n"
        "gid://shopify/TaxonomyCategory/aa-1 : Apparel > Dresses\n")
    (root / "data" / "categories" / "aa.yml").write_text(
        "- id: aa\n  name: Apparel\n  attributes: [color]\n- id: aa-1\n  name: Dresses\n  attributes: [color, neck_line]\n")
    (root / "dist" / "en" / "attributes.json").write_text(json.dumps({"attributes": [
        {"id": "gid://shopify/TaxonomyAttribute/1", "name": "Color", "handle": "color", "extended_attributes": [],
         "values": [{"id": "gid://shopify/TaxonomyValue/7", "name": "Red", "handle": "color__red"}]},
        {"id": "gid://shopify/TaxonomyAttribute/2", "name": "Neckline", "handle": "neck-line",
         "extended_attributes": [{"name": "Collar", "handle": "collar"}],
         "values": [{"id": "gid://shopify/TaxonomyValue/8", "name": "V-neck", "handle": "neck__v"}]}]}))
    (root / "VERSION").write_text("2099-01\n")
    tax = read_source(root)
    assert tax.version == "2099-01" and tax.category_id("apparel > dresses") == "aa-1"
    dresses = tax.attribute_vocabulary("aa-1")
    assert [f.name for f in dresses.facets] == ["Color", "Neckline"]  # neck_line and neck-line are one handle
    assert tax.value_id("Neckline", "v-neck") == "8" and tax.attributes["collar"].values == tax.attributes["neck-line"].values
    vocab = resolve_vocabularies(root).vocabularies[0]  # a folder of a newer release: no build step
    assert vocab.facets[0].hierarchy and vocab.facets[0].allowed == ("Apparel", "Apparel > Dresses")
    write_compact(tax, tmp_path / "t.json.gz")
    assert load_taxonomy(str(tmp_path / "t.json.gz")).categories == tax.categories


def test_the_shipped_shopify_taxonomy():
    tax = load_taxonomy("shopify")
    assert len(tax.categories) == 10595
    facet = resolve_vocabularies("shopify").vocabularies[0].facets[0]
    assert facet.name == CATEGORY and len(facet.allowed) == 10595
    cid = tax.category_id("Apparel & Accessories > Clothing > Dresses")
    names = [f.name for f in tax.attribute_vocabulary(cid).facets]
    assert "Color" in names and "Neckline" in names


def test_taxonomy_tagging_tags_the_chosen_categorys_attributes_and_names_ids(template, tmp_path):
    from tagsmith.taxonomy import CategoryAttributes

    tax = load_taxonomy("shopify")
    vocab = tax.category_vocabulary()
    likes = {"Apparel & Accessories": -0.1, "Clothing": -0.1, "Dresses": -0.1, NO_VALUE: -9.0}

    def answer(request):  # the attribute step is generated: a red dress, V-neck
        props = request.schema.data["properties"]
        return json.dumps({name: (["Red"] if name == "Color" else ["V-neck"] if name == "Neckline" else [])
                           for name in props})

    eng = fake.FakeEngine(answer=answer, scores=lambda r: [likes.get(option_of(c), -5.0) for c in r.continuations])
    tagger = Tagger(eng, vocab, template, NO_PRIOR, attributes=CategoryAttributes(tax))
    (r,) = tagger.tag_batch([Item("1", "Red V-neck midi dress")])
    assert r.tags["Category"] == ["Apparel & Accessories > Clothing > Dresses"]
    assert r.tags["Color"] == ["Red"] and r.tags["Neckline"] == ["V-neck"]
    assert r.ids["Category"] == [tax.category_id("Apparel & Accessories > Clothing > Dresses")]
    assert r.ids["Color"] == [tax.value_id("Color", "Red")] and r.ids["Color"][0]
    assert "ids" in r.to_dict()
