"""Evidence: the span of an item's text behind each tag."""

import json

from click.testing import CliRunner

from conftest import SMALL_VOCAB
from tagsmith.cli import main
from tagsmith.evidence import tag_evidence, value_evidence
from tagsmith.vocabulary import parse_vocabulary

VOCAB = parse_vocabulary({**SMALL_VOCAB, "facets": [
    *SMALL_VOCAB["facets"], {"name": "Code", "extractive": True, "normalize": ["alnum", "upper"]}]})


def test_closed_values_point_at_their_mention_or_alias_as_written():
    color = VOCAB.facet("Color")
    text = "Shredder in INOX finish, red handle"
    assert value_evidence(color, "Stainless Steel", text) == "INOX"  # an alias
    assert value_evidence(color, "Red", text) == "red"
    assert value_evidence(color, "Red", "Shredded cheese") is None  # whole words only
    assert value_evidence(color, "Black", text) is None  # inferred, not stated
    category = VOCAB.facet("Category")
    assert value_evidence(category, "Kitchen > Knives", "Chef set") is None
    assert value_evidence(category, "Kitchen > Knives", "Chef Knives, 3") == "Knives"  # the path's last step


def test_extractive_values_point_at_the_copied_span_through_normalization():
    assert value_evidence(VOCAB.facet("Code"), "461137B21", "HP 461137-b21 kit") == "461137-b21"


def test_tag_evidence_covers_every_given_value():
    tags = {"Color": ["Red", "Black"], "Material": [], "Part Number": ["AB-12"]}
    assert tag_evidence("Red knife AB-12", VOCAB, tags) == {"Color": {"Red": "Red", "Black": None},
                                                             "Part Number": {"AB-12": "AB-12"}}


def test_tag_evidence_flag_on_the_cli(use_fake_engine, tmp_path):
    use_fake_engine.answer(json.dumps({"Color": ["Stainless Steel"], "Material": ["Wood"], "Part Number": [],
                                       "Category": []}))
    vocab = tmp_path / "v.json"
    vocab.write_text(json.dumps(SMALL_VOCAB))
    r = CliRunner().invoke(main, ["tag", "Inox pan", "-v", str(vocab), "-a", "none", "--evidence"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{"):])
    assert out["evidence"] == {"Color": {"Stainless Steel": "Inox"}, "Material": {"Wood": None}}
    r = CliRunner().invoke(main, ["tag", "Inox pan", "-v", str(vocab), "-a", "none"])
    assert "evidence" not in json.loads(r.output[r.output.index("{"):])
