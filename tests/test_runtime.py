"""The library core the CLI, the benchmarks and Ray workers share: plain settings that pickle,
one place that plans a run, streaming with resume, and the eval matrix as a function."""

import json
import pickle

import pytest

import tagsmith
from tagsmith.errors import ConfigError
from tagsmith.items import Item
from tagsmith.runtime import FileJob, RunSpec, build_tagger, open_output, plan_run, tag_stream

from conftest import SMALL_VOCAB

ANSWER = json.dumps({"Color": ["Red"], "Material": [], "Part Number": [], "Category": []})


@pytest.fixture
def kitchen(tmp_path):
    path = tmp_path / "kitchen.json"
    path.write_text(json.dumps(SMALL_VOCAB))
    return str(path)


def test_run_spec_pickles_and_builds_the_same_tagger(use_fake_engine, kitchen):
    use_fake_engine.answer(ANSWER)
    spec = pickle.loads(pickle.dumps(RunSpec(vocab=kitchen, adapter="none", batch_size=3)))
    built = build_tagger(spec)
    assert built.tagger.engine.name == "fake" and built.tagger.engine.batch_size == 3
    assert built.plan.template.name == "default" and built.plan.adapter is None
    assert built.tagger.tag(Item("1", "red knife")).tags == {"Color": ["Red"]}


def test_plan_picks_the_shipped_adapter_and_its_template_and_says_so():
    settings = tagsmith.load_settings(None, {"engine": {"name": "fake"}})
    plan = plan_run(settings, tagsmith.resolve_vocabularies("wdc-pave"))
    assert plan.choice.name == "wdc-pave-smollm2" and plan.template.name == "compact"
    assert any("using adapter wdc-pave-smollm2" in n for n in plan.notes)
    asked = plan_run(settings, tagsmith.resolve_vocabularies("wdc-pave"), template="default")
    assert asked.template.name == "default" and any("trained with template 'compact'" in n for n in asked.notes)
    bare = plan_run(settings, tagsmith.resolve_vocabularies("wdc-pave"), adapter="none")
    assert bare.adapter is None and bare.template.name == "default" and bare.notes == []


def test_engines_take_only_their_own_options(kitchen, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[engine]\nname = "fake"\n[engine.fake]\nthreads = 2\n')
    with pytest.raises(ConfigError, match=r"\[engine.fake.threads\] unknown key"):
        build_tagger(RunSpec(vocab=kitchen, config=str(config)))


def test_tag_stream_resumes_skips_duplicates_and_limits(use_fake_engine, kitchen):
    use_fake_engine.answer(ANSWER)
    tagger = build_tagger(RunSpec(vocab=kitchen, adapter="none")).tagger
    items = [Item(str(i % 5), f"knife {i}") for i in range(7)]  # ids 0 and 1 twice
    seen: list[list[str]] = []
    stats = tag_stream(tagger, items, lambda rs: seen.append([r.id for r in rs]), done={"2"}, batch_size=2)
    assert seen == [["0", "1"], ["3", "4"]]
    assert (stats.tagged, stats.already_done, stats.duplicate_ids, stats.errors) == (4, 1, 2, 0)
    limited: list[str] = []
    tag_stream(tagger, items, lambda rs: limited.extend(r.id for r in rs), limit=3)
    assert limited == ["0", "1", "2"]


def test_file_job_writes_only_what_is_missing(use_fake_engine, kitchen, tmp_path):
    use_fake_engine.answer(ANSWER)
    tagger = build_tagger(RunSpec(vocab=kitchen, adapter="none")).tagger
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "title": f"pan {i}"}) + "\n" for i in range(5)))
    from tagsmith.items import read_items

    assert FileJob(tagger, src, read_items(src), open_output(src, out), limit=2).run().tagged == 2
    assert FileJob(tagger, src, read_items(src), open_output(src, out)).run().tagged == 3
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == ["0", "1", "2", "3", "4"]


def test_tag_records_takes_dicts_and_dataframes(use_fake_engine, kitchen):
    use_fake_engine.answer(ANSWER)
    tagger = tagsmith.load_tagger(kitchen, adapter="none")
    results = tagger.tag_records([{"sku": "a", "name": "red pan"}, {"title": "knife"}], batch_size=1)
    assert [r.id for r in results] == ["a", "1"] and results[0].tags == {"Color": ["Red"]}
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"id": ["x", "y"], "title": ["pan", "knife"], "description": [None, "steel"]})
    assert [r.id for r in tagger.tag_records(frame)] == ["x", "y"]


def test_evaluate_is_a_library_call(use_fake_engine, tmp_path, kitchen):
    use_fake_engine.answer(ANSWER)
    data = tmp_path / "gold.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "title": f"red knife {i}",
                                        "gold": {"Color": ["Red" if i % 2 else "Black"]}}) + "\n" for i in range(10)))
    report = tagsmith.evaluate(tagsmith.EvalPlan(data=data, vocab=kitchen, split="all", adapters=["none"],
                                                 templates=["default", "compact"], baseline=False))
    assert [r.config.name for r in report.results] == ["embedded|default|fake", "embedded|compact|fake"]
    assert report.results[0].scores.precision == pytest.approx(0.5)
    assert report.comparisons[0]["delta_f1"] == 0
    saved = report.save(tmp_path / "runs")
    assert json.loads((saved / "summary.json").read_text())["n_items"] == 10
    assert len(use_fake_engine.created) == 1  # one engine for both templates


def test_worked_examples_are_a_matrix_dimension_and_never_show_a_scored_item(use_fake_engine, tmp_path, kitchen):
    use_fake_engine.answer(ANSWER)
    data = tmp_path / "gold.jsonl"
    rows = [{"id": str(i), "title": f"{'red' if i % 2 else 'black'} knife number{i}",
             "gold": {"Color": ["Red" if i % 2 else "Black"]}} for i in range(40)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = tagsmith.evaluate(tagsmith.EvalPlan(data=data, vocab=kitchen, adapters=["none"], baseline=False,
                                                 examples=data, examples_k=[0, 2]))
    assert [r.config.name for r in report.results] == ["embedded|default|fake", "embedded|default+2ex|fake"]
    (engine,) = use_fake_engine.created
    scored = {f"number{g.item.id}" for g in report.dataset.items}
    with_examples = [r.messages[0]["content"] for r in engine.requests if "Products like it, tagged" in r.messages[0]["content"]]
    assert len(with_examples) == len(scored)
    for prompt in with_examples:  # the examples part holds only train-split items, never a scored one
        shown = prompt.split("Now this product.")[0]
        assert shown.count("JSON answer:") == 2 and not any(f"{s}\n" in shown for s in scored)


def test_fake_engine_mentions_answers_from_the_item_text_only():
    """The keyword tagger the Ray tests compare outputs with: values the item's text states,
    not the values every prompt lists."""
    from tagsmith.engines.fake import FakeEngine
    from tagsmith.prompts import load_template
    from tagsmith.tagger import Tagger
    from tagsmith.config import TaggingSettings
    from tagsmith.vocabulary import VocabularySet, parse_vocabulary

    vocab = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    tagger = Tagger(FakeEngine(answer="mentions"), vocab, load_template("default"), TaggingSettings())
    color = SMALL_VOCAB["facets"][0]
    first = color["values"][0] if isinstance(color["values"][0], str) else color["values"][0]["value"]
    tagged, untagged = tagger.tag_batch([Item("1", f"a {first.lower()}, nice pan"), Item("2", "a pan")])
    assert tagged.tags.get(color["name"]) == [first]
    assert not any(untagged.tags.values())


@pytest.mark.parametrize(("memory_gib", "cache_gib"), [(4, 1), (8, 1), (16, 2), (24, 4), (256, 4)])
def test_vllm_cpu_key_value_cache_is_sized_to_the_machine(monkeypatch, memory_gib, cache_gib):
    import os

    from tagsmith.engines import vllm_offline

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": memory_gib * 2**30 // 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert vllm_offline._cpu_kv_cache_gib() == cache_gib


def test_vllm_options_take_a_key_value_cache_size(kitchen, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[engine.vllm]\ncpu_kv_cache_gib = 0\n')
    with pytest.raises(ConfigError, match=r"cpu_kv_cache_gib"):
        tagsmith.load_settings(config)
    config.write_text('[engine.vllm]\ncpu_kv_cache_gib = 6\n')
    assert tagsmith.load_settings(config).engine.vllm.cpu_kv_cache_gib == 6


def test_a_shared_engine_that_its_caller_closed_is_loaded_again():
    from tagsmith import runtime

    first = runtime.shared_engine("fake", None, {})
    first.close()
    assert runtime.loaded_engine("fake", None, {}) is None
    second = runtime.shared_engine("fake", None, {})
    assert second is not first and not second.closed
    second.close()
