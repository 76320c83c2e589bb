"""Vocabulary updates: what changed, which items it can affect, and `tagsmith retag`."""

import json

import pytest
import yaml
from click.testing import CliRunner

from tagsmith.cli import main
from tagsmith.vocab_diff import diff_vocabulary, plan_update, tag_diff
from tagsmith.vocabulary import parse_vocabulary

from conftest import SMALL_VOCAB


def edited():
    """SMALL_VOCAB with Wood removed, Glass added, 'inox' Stainless Steel renamed Steel Grey
    (the old name kept as an alias), and a new Size facet."""
    raw = json.loads(json.dumps(SMALL_VOCAB))
    raw["facets"][0]["values"][2] = {"value": "Steel Grey", "aliases": ["Stainless Steel", "inox"]}
    raw["facets"][1]["values"] = ["Steel", "Plastic", "Glass"]
    raw["facets"].append({"name": "Size", "values": ["S", "M"]})
    return raw


def test_diff_finds_added_removed_renamed_and_new_facets():
    change = diff_vocabulary(parse_vocabulary(SMALL_VOCAB), parse_vocabulary(edited()))
    assert change.added_facets == ["Size"] and not change.removed_facets
    assert change.facets["Color"].renamed == {"Stainless Steel": "Steel Grey"}
    assert change.facets["Color"].added == [] and change.facets["Color"].removed == []
    assert change.facets["Material"].added == ["Glass"] and change.facets["Material"].removed == ["Wood"]
    assert "Category" not in change.facets


def test_plan_renames_in_place_and_retags_only_affected_items():
    no_new_facet = edited()
    no_new_facet["facets"].pop()
    change = diff_vocabulary(parse_vocabulary(SMALL_VOCAB), parse_vocabulary(no_new_facet))
    kept = plan_update({"Color": ["Stainless Steel"], "Material": ["Steel"]}, "steel knife", change)
    assert not kept.retag and kept.tags == {"Color": ["Steel Grey"], "Material": ["Steel"]}
    gone = plan_update({"Material": ["Wood"]}, "wood spoon", change)
    assert gone.retag and "Wood removed" in gone.reasons[0]
    mention = plan_update({"Material": []}, "Glass bowl", change)
    assert mention.retag and "mentions a new value" in mention.reasons[0]
    assert not plan_update({"Material": []}, "fiberglass bowl", change).retag  # whole words only
    assert plan_update({"Material": []}, "plain bowl", change, retag_all=True).retag


def test_tag_diff():
    assert tag_diff({"A": ["x", "y"], "B": []}, {"A": ["y"], "B": ["z"]}) == {
        "added": {"B": ["z"]}, "removed": {"A": ["x"]}}


@pytest.fixture
def fake(use_fake_engine):
    use_fake_engine.answer(json.dumps({"Color": ["Red"], "Material": ["Glass"], "Part Number": [],
                                       "Category": [], "Size": ["M"]}))
    return use_fake_engine.created


def retag_files(tmp_path):
    """Old and new vocabularies, items, previous results, and the outputs' paths."""
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(yaml.safe_dump(SMALL_VOCAB))
    edit = edited()
    edit["facets"].pop()  # no new facet: otherwise every item is affected
    new.write_text(yaml.safe_dump(edit))
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": 1, "title": "inox knife"}, {"id": 2, "title": "wood spoon"}, {"id": 3, "title": "glass bowl"},
        {"id": 4, "title": "red pan"}]))
    previous = tmp_path / "prev.jsonl"
    previous.write_text("".join(json.dumps({"id": str(i), "tags": t}) + "\n" for i, t in [
        (1, {"Color": ["Stainless Steel"]}), (2, {"Material": ["Wood"]}), (3, {"Material": []}),
        (4, {"Color": ["Red"]})]))
    return old, new, items, previous, tmp_path / "new.jsonl", tmp_path / "diff.jsonl"


def run_retag(old, new, items, previous, out, diff):
    return CliRunner().invoke(main, ["retag", "--old-vocab", old, "--vocab", new, "-i", items, "--previous", previous,
                                     "-o", out, "--diff", diff, "--no-progress", "--adapter", "none"])


def test_retag_command_calls_the_model_only_for_affected_items(fake, tmp_path):
    old, new, items, previous, out, diff = retag_files(tmp_path)
    r = run_retag(old, new, items, previous, out, diff)
    assert r.exit_code == 0, r.output
    results = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
    assert set(results) == {"1", "2", "3", "4"}
    assert results["1"]["tags"] == {"Color": ["Steel Grey"]}  # renamed, no model call
    assert results["4"]["tags"] == {"Color": ["Red"]}  # untouched
    assert len(fake) == 1 and "2 items kept without a model call, 2 re-tagged" in r.output
    # the model saw items 2 (held Wood) and 3 (mentions Glass)
    diffs = {x["id"]: x for x in map(json.loads, diff.read_text().splitlines())}
    assert diffs["1"]["added"] == {"Color": ["Steel Grey"]} and diffs["1"]["removed"] == {"Color": ["Stainless Steel"]}
    assert diffs["2"]["removed"] == {"Material": ["Wood"]} and diffs["2"]["added"]["Material"] == ["Glass"]
    assert "4" not in diffs


def test_retag_resumes_without_duplicates_and_refuses_to_mix_jobs(fake, tmp_path):
    old, new, items, previous, out, diff = retag_files(tmp_path)
    kept = previous.read_bytes()
    r = run_retag(old, new, items, previous, previous, diff)
    assert r.exit_code == 2 and "the output is the input file" in r.output and previous.read_bytes() == kept
    assert run_retag(old, new, items, previous, out, diff).exit_code == 0
    written = out.read_bytes(), diff.read_bytes()
    r = run_retag(old, new, items, previous, out, diff)  # finished: a re-run adds nothing
    assert r.exit_code == 0 and (out.read_bytes(), diff.read_bytes()) == written
    r = run_retag(new, old, items, previous, out, diff)  # another change into the same files
    assert r.exit_code == 2 and "holds results of another job" in r.output
    assert (out.read_bytes(), diff.read_bytes()) == written
