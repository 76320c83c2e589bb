"""Eval harness logic: datasets, split, cache, rates, baseline, CLI gate (fake engine)."""

import json
import re

import pytest
from click.testing import CliRunner

from tagsmith.cli import main
from tagsmith.errors import InputError
from tagsmith.evaluation.baseline import TfidfBaseline
from tagsmith.evaluation.runner import RunConfig, run
from tagsmith.gold import canonical_gold, load_dataset, select_categories, split
from tagsmith.vocabulary import VocabularySet, parse_vocabulary



def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def wdc_record(i, brand, category="Jewelry"):
    return {"id": i, "category": category, "input_title": f"{brand} ring {i}", "input_description": "",
            "target_scores": {"Brand": {brand: {"pid": [0], "score": 1}}, "Gender": {"n/a": 1}}}


def test_loaders_detect_format(tmp_path):
    wdc = load_dataset(write_jsonl(tmp_path / "w.jsonl", [wdc_record(1, "TACORI")]))
    assert wdc.mode == "alternatives" and wdc.items[0].gold == {"Brand": ["TACORI"], "Gender": []}
    egpt = load_dataset(write_jsonl(tmp_path / "e.jsonl", [
        {"input": "Men shorts", "category": "Shorts", "target_scores": {"Gender": {"Men": 1}}}]))
    assert egpt.items[0].item.title == "Men shorts"
    gen = load_dataset(write_jsonl(tmp_path / "g.jsonl", [{"id": "a", "title": "x", "gold": {"C": ["Red"]}}]))
    assert gen.mode == "set" and gen.items[0].gold == {"C": ["Red"]}
    with pytest.raises(InputError, match="expected a 'gold' object"):
        load_dataset(write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "title": "x"}]))


def test_validation_split_is_stable_and_disjoint(tmp_path):
    data = load_dataset(write_jsonl(tmp_path / "w.jsonl", [wdc_record(i, "TACORI") for i in range(500)]))
    val, train = split(data, "validation"), split(data, "train")
    assert set(val.ids).isdisjoint(train.ids) and len(val.ids) + len(train.ids) == 500
    assert 70 < len(val.ids) < 130
    assert split(data, "validation").ids == val.ids


def test_categories_are_selected_or_held_out(tmp_path):
    data = load_dataset(write_jsonl(tmp_path / "w.jsonl", [
        wdc_record(i, "TACORI", "Jewelry" if i % 2 else "Office Products") for i in range(10)]))
    held_out = select_categories(data, exclude=("office-products",))
    only = select_categories(data, include=("OFFICE  products",))
    assert {g.item.category for g in held_out.items} == {"Jewelry"} and len(held_out.items) == 5
    assert {g.item.category for g in only.items} == {"Office Products"} and len(only.items) == 5
    assert select_categories(data) is data
    with pytest.raises(InputError, match="no items of category 'Offce'.*Jewelry, Office Products"):
        select_categories(data, exclude=("Offce",))


def test_eval_cli_filters_categories(fake_llm, tmp_path):
    data = write_jsonl(tmp_path / "w.jsonl", [wdc_record(i, "TACORI", "Jewelry" if i % 2 else "Office Products")
                                              for i in range(40)])
    args = ["eval", "--data", str(data), "--split", "all", "--out", str(tmp_path / "runs"), "--no-progress", "--no-baseline", "-a", "none"]
    r = CliRunner().invoke(main, [*args, "--category", "jewelry"])
    assert r.exit_code == 0, r.output
    (out,) = (tmp_path / "runs").iterdir()
    assert json.loads((out / "summary.json").read_text())["n_items"] == 20
    r = CliRunner().invoke(main, [*args, "--exclude-category", "toys"])
    assert r.exit_code == 2 and "no items of category 'toys'" in r.output


def test_gold_is_mapped_to_canonical_spelling(small_vocab):
    vs = VocabularySet([small_vocab])
    assert canonical_gold({"Color": ["inox", "Purple"], "Part Number": ["ab"]}, vs, None) == \
        {"Color": ["Stainless Steel", "Purple"], "Part Number": ["ab"]}


def test_run_caches_generations_and_scores(tmp_path):
    data = load_dataset(write_jsonl(tmp_path / "w.jsonl", [wdc_record(i, "TACORI") for i in range(6)]))
    calls = []

    def predictor(batch):
        calls.append(len(batch))
        return [{"tags": {"Brand": ["TACORI"]}, "raw": '{"Brand": ["TACORI", "TACORI"]}', "duplicates": 1}
                for _ in batch]

    cfg = RunConfig("a", "llm", {"template": "x"})
    first = run(cfg, data, predictor, cache_dir=tmp_path / "cache", batch_size=4, progress=False)
    assert sum(calls) == 6 and first.cached_items == 0
    assert first.scores.f1 == 1.0 and first.rates["duplicate_rate"] == pytest.approx(0.5)
    again = run(cfg, data, predictor, cache_dir=tmp_path / "cache", progress=False)
    assert sum(calls) == 6 and again.cached_items == 6 and again.scores.f1 == 1.0
    run(RunConfig("b", "llm", {"template": "y"}), data, predictor, cache_dir=tmp_path / "cache", progress=False)
    assert sum(calls) == 12  # a changed configuration is a new column


def test_a_threshold_is_scored_on_the_stored_answers_with_and_without(tmp_path):
    from tagsmith.evaluation.runner import with_threshold

    data = load_dataset(write_jsonl(tmp_path / "w.jsonl", [wdc_record(i, "TACORI") for i in range(6)]))

    def predictor(batch):  # half right and sure, half wrong and unsure
        return [{"tags": {"Brand": ["TACORI"] if n % 2 else ["ACME"]},
                 "scores": {"Brand": {"TACORI": 0.9} if n % 2 else {"ACME": 0.2}}} for n, _ in enumerate(batch)]

    plain = run(RunConfig("a", "llm"), data, predictor, cache_dir=None, batch_size=6, progress=False)
    cut = with_threshold(plain, data, None, 0.5)
    assert plain.scores.precision == 0.5 and cut.scores.precision == 1.0
    assert cut.scores.f1 > plain.scores.f1 and cut.config.name == "a @0.5"
    withheld = [r for p in cut.predictions.values() for r in p["rejected"]]
    assert len(withheld) == 3 and {r["code"] for r in withheld} == {"low_confidence"}
    assert plain.predictions != cut.predictions and cut.confidence is None  # reported with the plain run
    assert plain.confidence is not None and plain.confidence.best_threshold > 0.2


def test_rates_count_out_of_vocabulary_and_unparseable(tmp_path):
    data = load_dataset(write_jsonl(tmp_path / "w.jsonl", [wdc_record(i, "TACORI") for i in range(2)]))
    preds = iter([{"tags": {}, "raw": '{"Brand": ["FREE"]}',
                   "rejected": [{"facet": "Brand", "value": "FREE", "reason": "not in the vocabulary",
                                 "code": "not_in_vocabulary"}]},
                  {"tags": {}, "raw": "{oops", "error": "unparseable output: x"}])
    r = run(RunConfig("s", "llm"), data, lambda b: [next(preds) for _ in b], cache_dir=None, progress=False)
    assert r.rates == {"oov_rate": 1.0, "duplicate_rate": 0.0, "unparseable_rate": 0.5}


def test_baseline_learns_a_separable_facet():
    vocab = parse_vocabulary({"name": "v", "facets": [
        {"name": "Color", "values": ["Red", "Blue"]}, {"name": "PN", "extractive": True}]})
    from tagsmith.gold import GoldItem
    from tagsmith.items import Item

    def item(i, color):
        return GoldItem(Item(str(i), f"{color.lower()} cotton shirt {i}"), {"Color": [color], "PN": ["x"]})

    train = [item(i, "Red" if i % 2 else "Blue") for i in range(20)]
    model = TfidfBaseline(VocabularySet([vocab])).fit(train)
    preds = model.predict([item(100, "Red"), item(101, "Blue")])
    assert [p["tags"] for p in preds] == [{"Color": ["Red"]}, {"Color": ["Blue"]}]


@pytest.fixture
def fake_llm(use_fake_engine):
    use_fake_engine.answer(json.dumps({"Brand": ["TACORI"]}))
    return use_fake_engine


def test_eval_cli_reports_and_gate(fake_llm, tmp_path):
    data = write_jsonl(tmp_path / "w.jsonl",
                       [wdc_record(i, "TACORI" if i % 3 else "BENCHMARK") for i in range(120)])
    args = ["eval", "--data", str(data), "--vocab", "wdc-pave", "--out", str(tmp_path / "runs"),
            "--no-progress"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    # by default the shipped adapter for this model + vocabulary runs, with its own template, and
    # 3 worked examples from the train split (the items the baseline trains on)
    run_name = "embedded+wdc-pave-smollm2|compact+3ex+filled|fake"
    assert run_name in r.output and "tfidf-svm baseline" in r.output
    assert "worked examples from the train split" in r.output
    assert f"vs {run_name}: delta F1" in r.output
    (out,) = (tmp_path / "runs").iterdir()
    summary = json.loads((out / "summary.json").read_text())
    assert [x["kind"] for x in summary["runs"]] == ["llm", "baseline"]
    assert "<svg" in (out / "report.html").read_text()
    r = CliRunner().invoke(main, [*args, "--fail-under", "99.9", "--no-baseline"])
    assert r.exit_code == 3 and "FAIL: F1 below 99.9" in r.output
    assert summary["runs"][0]["cached_items"] == 0
    again = json.loads(sorted((tmp_path / "runs").iterdir())[-1].joinpath("summary.json").read_text())
    assert again["runs"][0]["cached_items"] == again["n_items"]


def test_eval_default_shows_train_split_examples_and_picks_the_adapter_trained_with_them(fake_llm, tmp_path):
    """The default configuration on a validation split: the examples-trained adapter (for the
    train-only vocabulary it was trained on) with worked examples drawn from train items only."""
    data = write_jsonl(tmp_path / "w.jsonl", [wdc_record(i, "TACORI") for i in range(40)])
    args = ["eval", "--data", str(data), "--out", str(tmp_path / "runs"), "--no-progress", "--no-baseline"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "embedded+wdc-pave-smollm2-examples|compact+3ex|fake" in r.output
    out = sorted((tmp_path / "runs").iterdir())[-1]
    scored = {json.loads(line)["id"] for line in (out / "items.jsonl").read_text().splitlines()}
    (pred_file,) = out.glob("predictions-*.jsonl")
    shown = pred_file.read_text()
    shown_ids = set(re.findall(r"TACORI ring (\d+)", shown))
    assert scored and shown_ids - scored  # train items shown as examples...
    assert not (shown_ids - scored) & set(split(load_dataset(data), "validation").ids)  # ...never validation
    r = CliRunner().invoke(main, [*args, "--examples", "none"])
    assert r.exit_code == 0 and "embedded+wdc-pave-smollm2|compact+filled|fake" in r.output
    r = CliRunner().invoke(main, [*args, "--examples", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 2 and "no such file" in r.output


def test_eval_cli_bad_data_is_a_clear_error(tmp_path):
    r = CliRunner().invoke(main, ["eval", "--data", str(tmp_path / "none.jsonl")])
    assert r.exit_code == 2 and "dataset file not found" in r.output


def test_eval_cli_adapter_matrix(fake_llm, tmp_path):
    data = write_jsonl(tmp_path / "w.jsonl", [wdc_record(i, "TACORI") for i in range(60)])
    adapter = tmp_path / "my-lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    args = ["eval", "--data", str(data), "--out", str(tmp_path / "runs"), "--no-progress", "--no-baseline"]
    r = CliRunner().invoke(main, [*args, "-a", "none", "-a", str(adapter)])
    assert r.exit_code == 0, r.output
    assert "embedded+my-lora|default+3ex|fake vs embedded|default+3ex|fake" in r.output
    r = CliRunner().invoke(main, [*args, "-a", str(tmp_path)])
    assert r.exit_code == 2 and "not a peft adapter folder" in r.output


def implicitave_dir(tmp_path, rows):
    """A tiny ImplicitAVE layout: options/ beside a domain folder with val.tsv."""
    (tmp_path / "options").mkdir()
    (tmp_path / "options" / "options_Food.json").write_text(json.dumps(
        {"Container": ["Bag", "Box", "Tin"], "Flavor": ["Vanilla", "Lemon"]}), encoding="utf-8")
    (tmp_path / "Food").mkdir()
    header = "id\timages\tcategory\ttexts\tattribute_names\tattribute_values\n"
    body = "".join(f"{i}\t{i}.jpg\tCandy\t[Title] {title}\t{attr}\t{value}\n" for i, title, attr, value in rows)
    path = tmp_path / "Food" / "val.tsv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_implicitave_rows_bring_their_own_option_lists(tmp_path):
    path = implicitave_dir(tmp_path, [("B1", "Mints in a metal tin", "Container", "Tin"),
                                      ("B1", "Mints in a metal tin", "Flavor", "Vanilla")])
    data = load_dataset(path)
    assert [g.item.id for g in data.items] == ["B1:container", "B1:flavor"]  # one product, two questions
    first = data.items[0]
    assert first.item.title == "Mints in a metal tin" and first.item.description == "Category: Candy"
    assert first.gold == {"Container": ["Tin"]}
    vocab = data.vocabularies.for_category(first.item.category)
    (facet,) = vocab.facets
    assert facet.name == "Container" and facet.allowed == ("Bag", "Box", "Tin") and facet.required
    assert {v.name for v in data.vocabularies} == {"implicitave/food/container", "implicitave/food/flavor"}
    assert split(data, "all").vocabularies is data.vocabularies  # subsets keep the vocabularies
    (tmp_path / "Food" / "bad.tsv").write_text("id\ttexts\n1\tx\n", encoding="utf-8")
    with pytest.raises(InputError, match="not an ImplicitAVE file"):
        load_dataset(tmp_path / "Food" / "bad.tsv")


def test_eval_cli_scores_implicitave_with_its_vocabulary(use_fake_engine, tmp_path):
    path = implicitave_dir(tmp_path, [(f"B{i}", f"Mints {i}", "Container", "Tin" if i % 2 else "Box")
                                      for i in range(10)])
    use_fake_engine.answer(json.dumps({"Container": ["Tin"]}))
    r = CliRunner().invoke(main, ["eval", "--data", str(path), "--split", "all", "--no-baseline",
                                  "--out", str(tmp_path / "runs"), "--no-progress"])
    assert r.exit_code == 0, r.output
    (out,) = (tmp_path / "runs").iterdir()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["vocab"] == "implicitave:Food"
    scores = summary["runs"][0]["scores"]
    assert scores["recall"] == pytest.approx(0.5)  # the 5 Tin rows right, the 5 Box rows wrong


def test_a_validation_run_records_its_threshold_only_where_it_helps(tmp_path):
    from tagsmith.training import validation_record

    data = load_dataset(write_jsonl(tmp_path / "w.jsonl", [wdc_record(i, "TACORI") for i in range(6)]))

    def unsure_where_wrong(batch):
        return [{"tags": {"Brand": ["TACORI"] if n % 2 else ["ACME"]},
                 "scores": {"Brand": {"TACORI": 0.9} if n % 2 else {"ACME": 0.2}}} for n, _ in enumerate(batch)]

    def unsure_where_right(batch):
        return [{"tags": {"Brand": ["TACORI"]}, "scores": {"Brand": {"TACORI": 0.3}}} for _ in batch]

    helped = validation_record(run(RunConfig("a", "llm"), data, unsure_where_wrong, cache_dir=None, batch_size=6,
                                   progress=False), "w", 6)
    assert 0.2 < helped["min_confidence"] <= 0.9
    assert helped["validation"]["f1_at_min_confidence"] > helped["validation"]["f1"] == 0.5
    kept = validation_record(run(RunConfig("b", "llm"), data, unsure_where_right, cache_dir=None, batch_size=6,
                                 progress=False), "w", 6)
    assert "min_confidence" not in kept and kept["validation"]["f1"] == 1.0
