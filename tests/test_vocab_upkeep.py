"""Vocabulary upkeep: audit (near-duplicates, usage), suggest (values the vocabulary lacks),
patches and apply, then retag of only the affected items."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import SMALL_VOCAB, FakeEngine
from tagsmith.cli import main
from tagsmith.errors import VocabularyError
from tagsmith.items import Item
from tagsmith.vocab_health import audit, loose_key, near_duplicates
from tagsmith.vocab_patch import FacetPatch, apply_patch, dump_patch, load_patch, vocabulary_yaml
from tagsmith.vocab_suggest import gather, open_answers, open_vocabulary, rejected_answers, suggest
from tagsmith.vocabulary import VocabularySet, load_vocabulary, parse_vocabulary


class FakeEncoder:
    """Texts in one group embed to the same unit vector; every other text to its own."""

    def __init__(self, *groups: set[str]):
        self.groups = [{g.casefold() for g in group} for group in groups]
        self.seen: dict[str, int] = {}

    def encode(self, texts):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for n, t in enumerate(texts):
            g = next((k for k, group in enumerate(self.groups) if t.casefold() in group), None)
            if g is None:
                g = len(self.groups) + self.seen.setdefault(t.casefold(), len(self.seen))
            out[n, g] = 1.0
        return out


def vocab_with(values, name="v"):
    return parse_vocabulary({"name": name, "facets": [{"name": "F", "values": values},
                                                      {"name": "Code", "extractive": True}]})


@pytest.mark.parametrize("a, b", [("Men's", "mens"), ("10 cm", "10 Centimeters"), ("2.0 GHz", "2GHz"),
                                  ("Batteries", "battery"), ("Stainless-Steel", "stainless steel"),
                                  ('12"', "12 inches"), ("1,000 mAh", "1000mAh"),
                                  ("3.00GHz", "3 GHz"), ("3.20GHz", "3.2 ghz"), ("44-gal", "44 gallon"),
                                  ("2-1/2 gallon", "2 1/2 gal")])
def test_loose_key_joins_spellings_of_one_value(a, b):
    assert loose_key(a) == loose_key(b)


@pytest.mark.parametrize("a, b", [("4 GB", "4 TB"), ("1.5", "15"), ("Glass", "Gla"), ("Red", "Reds Blue"),
                                  ("1/2 Gal", "12 gallon"), ('3/4"', '34"')])
def test_loose_key_keeps_different_values_apart(a, b):
    assert loose_key(a) != loose_key(b)


def test_near_duplicates_by_spelling_and_by_meaning():
    vocab = vocab_with(["Ladies", "Men's", "mens", "Women", "Kids", "MEN\u2019S"])
    facet = vocab.facets[0]
    (spelling,) = near_duplicates(facet)
    assert spelling.values == ["Men's", "mens", "MEN\u2019S"]
    found = near_duplicates(facet, FakeEncoder({"Ladies", "Women"}))
    assert [d.values for d in found] == [["Men's", "mens", "MEN\u2019S"], ["Ladies", "Women"]]
    assert found[1].similarity == 1.0
    sizes = vocab_with(["2 GB", "4 GB"]).facets[0]
    assert near_duplicates(sizes, FakeEncoder({"2 GB", "4 GB"})) == []  # other numbers: other values


def test_audit_reports_usage_and_proposes_merges_into_the_most_used_value():
    vocabs = VocabularySet([vocab_with(["Ladies", "Men's", "mens", "Kids", "Toddlers"])])
    records = [{"id": str(i), "vocabulary": "v", "tags": {"F": [v]}, "rejected": []}
               for i, v in enumerate(["mens", "mens", "Ladies", "Men's"])]
    records.append({"id": "9", "vocabulary": "v", "tags": {}, "rejected": [{"facet": "F", "value": "Unisex"}] * 2})
    result = audit(vocabs, records, rare=0)
    (fa,) = result.facets  # the extractive facet has no values to audit
    assert fa.rare == [("Kids", 0), ("Toddlers", 0)]
    text = result.markdown()
    assert "Men's / mens" in text and "Kids (0), Toddlers (0)" in text and "'Unisex' x2" in text
    assert "- v / F" not in text.split("almost always empty")[1].split("###")[0]  # 4 of 5 items have a value
    patch = result.patch()
    (merge,) = patch["v"]["F"].merge
    assert merge["into"] == "mens" and merge["aliases"] == ["Men's"] and merge["used"] == {"Men's": 1, "mens": 2}


def test_patch_round_trip_and_apply():
    vocabs = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    patch = {"test-kitchen": {"Color": FacetPatch(
        add=[{"value": "Navy", "support": 3, "examples": ["1: navy pan"]}],
        merge=[{"into": "Black", "aliases": ["Red", "jet"]}], remove=["Stainless Steel"])}}
    text = dump_patch(patch)
    assert text.startswith("# tagsmith vocabulary patch")
    (new,) = apply_patch(vocabs, load_patch_text(text))
    color = new.facet("Color")
    assert color.allowed == ("Black", "Navy")
    assert color.canonical("red") == "Black" and color.canonical("jet") == "Black"  # old tags map forward
    assert new.facet("Material") == next(iter(vocabs)).facet("Material")
    again = parse_vocabulary(yaml.safe_load(vocabulary_yaml(new)))
    assert again == new


def load_patch_text(text, tmp=None):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "patch.yaml"
        p.write_text(text)
        return load_patch(p)


@pytest.mark.parametrize("changes, message", [
    ({"remove": ["Purple"]}, "cannot remove 'Purple'"),
    ({"merge": [{"into": "Purple", "aliases": ["x"]}]}, "cannot merge into 'Purple'"),
    ({"add": ["red"]}, "cannot add 'red': already a value"),
    ({"add": ["inox2"], "merge": [{"into": "Black", "aliases": ["inox"]}]}, "duplicate value 'inox'"),
])
def test_patch_mistakes_are_clear_errors(changes, message):
    vocabs = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    text = dump_patch({"test-kitchen": {"Color": FacetPatch(**changes)}})
    with pytest.raises(VocabularyError, match=message):
        apply_patch(vocabs, load_patch_text(text))
    with pytest.raises(VocabularyError, match="does not have: nope"):
        apply_patch(vocabs, load_patch_text(dump_patch({"nope": {"Color": FacetPatch(remove=["Red"])}})))
    with pytest.raises(VocabularyError, match="expected only 'add', 'merge' and 'remove'"):
        load_patch_text("vocabularies:\n  test-kitchen:\n    Color:\n      rename: [x]\n")


def test_open_vocabulary_asks_closed_facets_as_open_questions():
    opened = open_vocabulary(parse_vocabulary(SMALL_VOCAB))
    color = opened.facet("Color")
    assert color.extractive and color.max_values == 2 and "Known values include: Black, Red" in color.description
    assert opened.facet("Part Number") == parse_vocabulary(SMALL_VOCAB).facet("Part Number")


def test_suggest_ranks_new_values_and_finds_new_spellings():
    vocabs = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    items = [Item(str(i), f"item {i}") for i in range(6)]
    answers = [(items[0], "test-kitchen", {"Color": ["Navy"], "Material": ["Bamboo"]}),
               (items[1], "test-kitchen", {"Color": ["navy blue"], "Material": ["bamboo."]}),
               (items[2], "test-kitchen", {"Color": ["NAVY"]}),
               (items[3], "test-kitchen", {"Color": ["Red"], "Material": ["Stainless-steel"]}),  # known / spelling
               (items[4], "test-kitchen", {"Color": ["Teal"], "Material": ["stainless steel"]}),
               (items[5], "other", {"Color": ["Pink"]})]  # not this vocabulary
    encoder = FakeEncoder({"navy", "navy blue"}, {"steel", "stainless steel", "stainless-steel"})
    patch = suggest(vocabs, answers, encoder=encoder, min_support=2)
    color = patch["test-kitchen"]["Color"]
    assert [(a["value"], a["support"]) for a in color.add] == [("Navy", 3)]  # Teal has one item
    assert sorted(color.add[0]["other_spellings"]) == ["NAVY", "navy blue"]
    material = patch["test-kitchen"]["Material"]
    # "stainless steel" is an alias of a Color value, but not a Material: proposed, next to Steel
    assert [a["value"] for a in material.add] == ["Bamboo", "Stainless-steel"]
    assert material.add[1]["nearest"][0] == "Steel" and material.merge == []
    found = gather(vocabs.vocabularies[0].facet("Color"), [(items[0], ["inox", "Stainless-Steel", "Reds"])])
    assert list(found.spellings) == ["Stainless Steel", "Red"] and found.new == []


def test_suggest_ranks_by_evidence_and_keeps_other_numbers_apart():
    vocabs = VocabularySet([vocab_with(["1 GB", "Red"])])
    items = [Item(str(i), f"item {i}") for i in range(5)]
    answers = [(items[0], "v", {"F": [("Teal", 0.9)]}),
               *[(items[i], "v", {"F": [("Cyan", 0.1)]}) for i in (1, 2, 3)],
               (items[1], "v", {"F": [("2 GB", 0.5)]}), (items[2], "v", {"F": [("4 GB", 0.4)]})]
    patch = suggest(vocabs, answers, encoder=FakeEncoder({"2 GB", "4 GB"}), threshold=0.5, min_support=1)
    # one strong item outweighs three weak ones; embedding-close numbers are other values
    assert [(a["value"], a["score"], a["support"]) for a in patch["v"]["F"].add] == [
        ("Teal", 0.9, 1), ("2 GB", 0.5, 1), ("4 GB", 0.4, 1), ("Cyan", 0.271, 3)]


def test_open_answers_keep_what_the_model_wrote_but_the_text_does_not_state():
    record = {"tags": {"Color": ["Navy"]}, "rejected": [
        {"facet": "Color", "value": "Midnight", "code": "not_in_text"},
        {"facet": "Material", "value": "Teak", "code": "not_in_text"},
        {"facet": "Color", "value": "Sky", "code": "low_confidence", "score": 0.05},
        {"facet": "Color", "value": "x" * 100, "code": "too_long"}]}
    assert open_answers(record) == {"Color": ["Navy", "Midnight", "Sky"], "Material": ["Teak"]}


def test_rejected_answers_of_a_closed_run_are_evidence():
    items = {"1": Item("1", "a")}
    records = [{"id": "1", "vocabulary": "v", "rejected": [{"facet": "F", "value": "Teal", "reason": "x"}]},
               {"id": "2", "vocabulary": "v", "rejected": [{"facet": "F", "value": "Pink"}]}]
    assert rejected_answers(records, items) == [(items["1"], "v", {"F": ["Teal"]})]


def test_vocab_cli_audit_suggest_apply(tmp_path, monkeypatch):
    from tagsmith import runtime

    vocab = tmp_path / "kitchen.yaml"
    vocab.write_text(yaml.safe_dump(SMALL_VOCAB))
    r = CliRunner().invoke(main, ["vocab", "audit", str(vocab), "--no-embeddings", "--patch", str(tmp_path / "a.yaml")])
    assert r.exit_code == 0, r.output
    assert "Near-duplicate values (0)" in r.output

    items = tmp_path / "items.jsonl"
    titles = ["Navy pan", "navy knife", "Bamboo spoon", "bamboo board", "Red pan"]
    items.write_text("".join(json.dumps({"id": str(i), "title": t}) + "\n" for i, t in enumerate(titles)))

    def answer(request):
        title = request.messages[-1]["content"].split("Product title: ")[1].split("\n")[0]
        first = title.split()[0]
        return json.dumps({"Color": [first] if title.lower().startswith(("navy", "red")) else [],
                           "Material": [first] if title.lower().startswith("bamboo") else [],
                           "Part Number": [], "Category": []})

    engines = []
    monkeypatch.setattr(runtime, "create_engine", lambda *a, **k: engines.append(FakeEngine(answer)) or engines[-1])
    patch = tmp_path / "suggested.yaml"
    args = ["vocab", "suggest", "-i", str(items), "-v", str(vocab), "-o", str(patch), "--no-progress", "-a", "none",
            "-e", "fake"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "test-kitchen / Color: Navy (2)" in r.output and "test-kitchen / Material: Bamboo (2)" in r.output
    request = engines[0].requests[0]
    assert request.schema is not None  # still a schema-shaped answer
    assert (tmp_path / "suggested.answers.jsonl").exists()
    r = CliRunner().invoke(main, args)  # every answer is there already: the model is not even started
    assert r.exit_code == 0 and len(engines) == 1, r.output
    assert "test-kitchen / Color: Navy (2)" in r.output and "the model was not started" in r.output
    with (tmp_path / "items.jsonl").open("a") as f:  # a new item: only it is tagged
        f.write(json.dumps({"id": "9", "title": "Navy bowl"}) + "\n")
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and len(engines) == 2 and len(engines[1].requests) == 1, r.output
    assert "test-kitchen / Color: Navy (3)" in r.output
    r = CliRunner().invoke(main, [*args[:2], "-i", str(tmp_path / "missing.jsonl"), *args[4:]])
    assert r.exit_code == 2 and len(engines) == 2 and "missing.jsonl" in r.output, r.output

    out = tmp_path / "kitchen-v2.yaml"
    r = CliRunner().invoke(main, ["vocab", "apply", str(patch), str(vocab), "-o", str(out)])
    assert r.exit_code == 0, r.output
    new = load_vocabulary(out)
    assert "Navy" in new.facet("Color").allowed and "Bamboo" in new.facet("Material").allowed
    assert "test-kitchen" in r.output and "+1" in r.output
    r = CliRunner().invoke(main, ["vocab", "apply", str(tmp_path / "none.yaml"), str(vocab), "-o", str(out)])
    assert r.exit_code == 2 and "patch file not found" in r.output


def test_apply_to_a_folder_of_vocabularies_writes_a_folder(tmp_path):
    src = tmp_path / "vocabs"
    src.mkdir()
    for name in ("a", "b"):
        (src / f"{name}.yaml").write_text(yaml.safe_dump({**SMALL_VOCAB, "name": name, "category": name}))
    patch = tmp_path / "p.yaml"
    patch.write_text(dump_patch({"b": {"Material": FacetPatch(add=[{"value": "Glass"}])}}))
    r = CliRunner().invoke(main, ["vocab", "apply", str(patch), str(src), "-o", str(tmp_path / "new")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["a.yaml", "b.yaml"]
    assert "Glass" in load_vocabulary(tmp_path / "new" / "b.yaml").facet("Material").allowed
    assert load_vocabulary(tmp_path / "new" / "a.yaml") == load_vocabulary(src / "a.yaml")


@pytest.mark.slow
def test_applied_patch_retags_only_affected_items_on_the_embedded_model(tmp_path):
    """suggest -> apply -> retag for real: a value added to Color is re-asked only of the item
    that mentions it; a value merged into another is rewritten in place, without the model."""
    old = tmp_path / "kitchen.yaml"
    old.write_text(yaml.safe_dump(SMALL_VOCAB))
    items = tmp_path / "items.jsonl"
    titles = ["Navy blue steel frying pan", "Red wooden spoon", "Black plastic bowl", "Wooden chopping board"]
    items.write_text("".join(json.dumps({"id": str(i), "title": t}) + "\n" for i, t in enumerate(titles)))
    run = ["--no-progress"]  # the default engine and adapter: a session holds them once for every test
    previous = tmp_path / "tagged.jsonl"
    r = CliRunner().invoke(main, ["tag", "-i", str(items), "-o", str(previous), "-v", str(old), *run])
    assert r.exit_code == 0, r.output
    before = {x["id"]: x for x in map(json.loads, previous.read_text().splitlines())}

    patch = tmp_path / "patch.yaml"
    patch.write_text(dump_patch({"test-kitchen": {"Color": FacetPatch(
        add=[{"value": "Navy"}], merge=[{"into": "Black", "aliases": ["Red"]}])}}))
    new = tmp_path / "kitchen-v2.yaml"
    r = CliRunner().invoke(main, ["vocab", "apply", str(patch), str(old), "-o", str(new)])
    assert r.exit_code == 0, r.output

    out, diff = tmp_path / "tagged-v2.jsonl", tmp_path / "changes.jsonl"
    r = CliRunner().invoke(main, ["retag", "--old-vocab", str(old), "--vocab", str(new), "-i", str(items),
                                  "--previous", str(previous), "-o", str(out), "--diff", str(diff), *run])
    assert r.exit_code == 0, r.output
    assert "3 items kept without a model call, 1 re-tagged" in r.output  # only the navy pan
    after = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
    assert set(after) == set(before)
    for i in ("1", "2", "3"):  # untouched by the model: old tags, "Red" now spelled "Black"
        expected = {f: ["Black" if v == "Red" else v for v in vs] for f, vs in before[i]["tags"].items()}
        assert {f: list(dict.fromkeys(vs)) for f, vs in after[i]["tags"].items()} == {
            f: list(dict.fromkeys(vs)) for f, vs in expected.items()}
    assert all(v in load_vocabulary(new).facet("Color").allowed for v in after["0"]["tags"].get("Color", []))
