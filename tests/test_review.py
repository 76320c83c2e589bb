"""Human review: choosing unsure items, Label Studio tasks and configuration, CSV, and reading
reviews back as gold; one slow test does the whole round trip through a real Label Studio."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SMALL_VOCAB
from tagsmith import review as rv
from tagsmith.cli import main
from tagsmith.errors import InputError
from tagsmith.gold import load_dataset
from tagsmith.items import Item
from tagsmith.vocabulary import VocabularySet, parse_vocabulary

ITEMS = [
    {"id": "a1", "title": "Red steel knife KN-100", "description": "A sharp knife"},
    {"id": "a2", "title": "Wooden pan", "description": 'Pan & "lid" <b>bold</b>'},
    {"id": "a3", "title": "Black plastic spoon", "description": ""},
    {"id": "a4", "title": "Steel pan", "description": ""},
]
TAGGED = [
    {"id": "a1", "vocabulary": "test-kitchen", "error": None, "rejected": [],
     "tags": {"Color": ["Red"], "Material": ["Steel"], "Part Number": ["KN-100"], "Category": ["Kitchen > Knives"]},
     "scores": {"Material": {"Steel": 0.9, "Wood": 0.05, "": 0.05}}},
    {"id": "a2", "vocabulary": "test-kitchen", "error": None, "rejected": [],
     "tags": {"Color": [], "Material": ["Wood"], "Part Number": [], "Category": ["Kitchen > Cookware > Pans"]},
     "scores": {"Material": {"Wood": 0.4, "Steel": 0.3, "": 0.3}, "Color": {"": 0.8, "Red": 0.2}}},
    {"id": "a3", "vocabulary": "test-kitchen", "tags": {}, "error": "unparseable answer", "rejected": []},
    {"id": "a4", "vocabulary": "test-kitchen", "error": None, "tags": {"Material": ["Steel"]},
     "rejected": [{"facet": "Color", "value": "Purple", "reason": "not in the vocabulary"}]},
]


@pytest.fixture
def vocabs() -> VocabularySet:
    return VocabularySet([parse_vocabulary(SMALL_VOCAB)])


@pytest.fixture
def files(tmp_path):
    """Items, their tagged output and the vocabulary, as files a user has."""
    (tmp_path / "vocab.json").write_text(json.dumps(SMALL_VOCAB))
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ITEMS))
    (tmp_path / "tagged.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TAGGED))
    return tmp_path


def items() -> list[Item]:
    return [Item(r["id"], r["title"], r["description"]) for r in ITEMS]


def test_confidence_of_an_answer_is_its_least_sure_value():
    record = {"tags": {"Color": ["Red", "Black"], "Material": []},
              "scores": {"Color": {"Red": 0.7, "Black": 0.4}, "Material": {"": 0.6, "Steel": 0.4}}}
    assert rv.facet_confidence(record, "Color") == 0.4
    assert rv.facet_confidence(record, "Material") == 0.6  # an empty answer: P(no value)
    assert rv.facet_confidence(record, "Part Number") is None


def test_select_takes_unsure_errored_and_rejected_items(vocabs):
    records = {r["id"]: r for r in TAGGED}
    chosen = rv.select(items(), records, vocabs, below=0.5)
    assert [r.item.id for r in chosen.items] == ["a2", "a3", "a4"]  # a1 is sure (0.9)
    assert chosen.considered == 4 and chosen.unscored == 2
    assert [r.item.id for r in rv.select(items(), records, vocabs, below=0.95).items] == ["a1", "a2", "a3", "a4"]
    assert len(rv.select(items(), records, vocabs, below=None).items) == 4
    sample = rv.select(items(), records, vocabs, below=None, sample=2, seed=1)
    assert len(sample.items) == 2 and sample.items == rv.select(items(), records, vocabs, below=None,
                                                              sample=2, seed=1).items
    other = VocabularySet([parse_vocabulary({**SMALL_VOCAB, "name": "other"})])
    with pytest.raises(InputError, match="which --vocab does not hold"):
        rv.select(items(), {"a1": {**TAGGED[0], "vocabulary": "gone"}}, VocabularySet([*vocabs, *other]))


def test_label_config_has_a_control_per_facet(vocabs):
    (vocab,) = vocabs
    root = ET.fromstring(rv.label_config(vocab))
    names = rv.control_names(vocab)
    controls = {el.get("name"): el for el in root if el.get("toName")}
    assert set(controls) == set(names.values())
    color = controls[names["Color"]]
    assert color.tag == "Choices" and color.get("choice") == "multiple"  # max_values 2
    assert [c.get("value") for c in color] == ["Black", "Red", "Stainless Steel"]
    assert controls[names["Material"]].get("choice") == "single-radio"
    assert controls[names["Part Number"]].tag == "TextArea"
    category = controls[names["Category"]]
    assert category.tag == "Taxonomy"
    (kitchen,) = category
    assert kitchen.get("value") == "Kitchen" and [c.get("value") for c in kitchen] == ["Knives", "Cookware"]
    long = parse_vocabulary({"name": "long", "facets": [{"name": "Size", "values": [f"S{i}" for i in range(40)]}]})
    (size,) = [el for el in ET.fromstring(rv.label_config(long)) if el.get("toName")]
    assert size.tag == "Taxonomy" and len(size) == 40  # a searchable list, not 40 buttons


def test_control_names_are_identifiers_and_unique():
    vocab = parse_vocabulary({"name": "x", "facets": [{"name": "Size (cm)", "values": ["1"]},
                                                     {"name": "size cm", "values": ["2"]}]})
    assert rv.control_names(vocab) == {"Size (cm)": "facet_size_cm", "size cm": "facet_size_cm_2"}


def test_tasks_prefill_the_tags_with_their_confidence(vocabs):
    chosen = rv.select(items(), {r["id"]: r for r in TAGGED}, vocabs, below=None).items
    tasks = rv.label_studio_tasks(chosen)
    first = tasks[0]
    assert first["data"]["title"] == "Red steel knife KN-100"
    assert first["data"]["confidence"] == "Material: Steel 90%"
    results = {x["from_name"]: x for x in first["predictions"][0]["result"]}
    names = rv.control_names(chosen[0].vocabulary)
    assert results[names["Material"]] == {"from_name": names["Material"], "to_name": "title", "type": "choices",
                                          "value": {"choices": ["Steel"]}, "score": 0.9}
    assert results[names["Part Number"]]["value"] == {"text": ["KN-100"]}
    assert results[names["Category"]]["value"] == {"taxonomy": [["Kitchen", "Knives"]]}
    assert first["predictions"][0]["score"] == 0.9
    assert "no answer: unparseable answer" == tasks[2]["data"]["confidence"]


def annotate(task: dict, result: list[dict], **extra) -> dict:
    """A task as Label Studio exports it, with one annotation."""
    return {"id": 1, "data": task["data"], "predictions": task["predictions"],
            "annotations": [{"id": 1, "result": result, "was_cancelled": False,
                             "updated_at": "2026-01-01T00:00:00Z", **extra}]}


def test_label_studio_export_becomes_gold(vocabs, tmp_path):
    tasks = rv.label_studio_tasks(rv.select(items(), {r["id"]: r for r in TAGGED}, vocabs, below=None).items)
    names = rv.control_names(next(iter(vocabs)))
    reviewed = annotate(tasks[0], [
        {"from_name": names["Color"], "to_name": "title", "type": "choices", "value": {"choices": ["Black", "Red"]}},
        {"from_name": names["Category"], "to_name": "title", "type": "taxonomy",
         "value": {"taxonomy": [["Kitchen", "Cookware", "Pans"]]}},
        {"from_name": names["Part Number"], "to_name": "title", "type": "textarea", "value": {"text": [" KN-100 "]}}])
    # a later annotation wins over an earlier one; a cancelled one (skipped) never counts
    reviewed["annotations"].insert(0, {"id": 0, "result": [], "was_cancelled": False, "updated_at": "2025-01-01"})
    skipped = annotate(tasks[1], [], was_cancelled=True)
    export = tmp_path / "export.json"
    export.write_text(json.dumps([reviewed, skipped]))
    imported = rv.read_label_studio_export(export, vocabs)
    assert imported.unannotated == 1
    (record,) = imported.records
    assert record["gold"] == {"Color": ["Black", "Red"], "Material": [], "Part Number": ["KN-100"],
                              "Category": ["Kitchen > Cookware > Pans"]}
    gold = tmp_path / "gold.jsonl"
    rv.write_gold(imported.records, gold)
    assert load_dataset(gold).items[0].gold["Color"] == ["Black", "Red"]  # eval and train read it


def test_bad_exports_are_one_line_errors(tmp_path, vocabs):
    path = tmp_path / "export.json"
    for content, message in (("{", "not a Label Studio JSON export"), ('{"a": 1}', "expected a list"),
                             ('[{"facet_color": "Red"}]', "export as JSON"),
                             ('[{"data": {}, "annotations": []}]', "not made by `tagsmith review export`")):
        path.write_text(content)
        with pytest.raises(InputError, match=message):
            rv.read_label_studio_export(path, vocabs)


def test_csv_round_trip_checks_values(vocabs, tmp_path):
    chosen = rv.select(items(), {r["id"]: r for r in TAGGED}, vocabs, below=None).items
    path = tmp_path / "review.csv"
    rv.write_csv(chosen, path)
    text = path.read_text()
    assert "Material confidence" in text.splitlines()[0] and "0.900" in text
    records = rv.read_csv(path, vocabs)
    assert records[0]["gold"] == {"Color": ["Red"], "Material": ["Steel"], "Part Number": ["KN-100"],
                                  "Category": ["Kitchen > Knives"]}
    # a reviewer's edit: an alias maps to its value; a value not in the vocabulary names its row
    path.write_text(text.replace("Red,", "inox | black,", 1))
    assert rv.read_csv(path, vocabs)[0]["gold"]["Color"] == ["Stainless Steel", "Black"]
    path.write_text(text.replace("Red,", "Purple,", 1))
    with pytest.raises(InputError, match=r"review.csv:2: Color: 'Purple' is not a value"):
        rv.read_csv(path, vocabs)


def test_cli_export_and_import(files):
    r = CliRunner().invoke(main, ["review", "export", str(files / "tagged.jsonl"), "-v", str(files / "vocab.json"),
                                  "-i", str(files / "items.jsonl"), "--out", str(files / "review.json")])
    assert r.exit_code == 0, r.output
    assert "3 of 4 items (test-kitchen)" in r.output and "2 of 4 items have no confidence" in r.output
    ET.fromstring((files / "review.label-config.xml").read_text())
    assert len(json.loads((files / "review.json").read_text())) == 3
    r = CliRunner().invoke(main, ["review", "export", str(files / "tagged.jsonl"), "-v", str(files / "vocab.json"),
                                  "-i", str(files / "items.jsonl"), "--all", "--out", str(files / "review.csv")])
    assert r.exit_code == 0 and "4 of 4 items" in r.output
    r = CliRunner().invoke(main, ["review", "import", str(files / "review.csv"), "--out", str(files / "g.jsonl"),
                                  "-v", str(files / "vocab.json")])
    assert r.exit_code == 0 and "4 reviewed items" in r.output
    r = CliRunner().invoke(main, ["review", "import", str(files / "review.csv"), "--out", str(files / "g.jsonl")])
    assert r.exit_code == 2 and "needs --vocab" in r.output


def test_cli_export_finds_the_input_in_the_job_record(files):
    (files / "tagged.jsonl.job").write_text(json.dumps({"input": str(files / "items.jsonl")}))
    r = CliRunner().invoke(main, ["review", "export", str(files / "tagged.jsonl"), "-v", str(files / "vocab.json"),
                                  "--out", str(files / "review.json")])
    assert r.exit_code == 0, r.output
    (files / "tagged.jsonl.job").unlink()
    r = CliRunner().invoke(main, ["review", "export", str(files / "tagged.jsonl"), "-v", str(files / "vocab.json"),
                                  "--out", str(files / "review.json")])
    assert r.exit_code == 2 and "give --input" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["review", "export", str(files / "tagged.jsonl"), "-v", str(files / "vocab.json"),
                                  "--out", str(files / "review.txt")])
    assert r.exit_code == 2 and "must end in .json" in r.output


# ----------------------------------------------------------------------------- a real Label Studio

REPO = Path(__file__).resolve().parents[1]
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def label_studio_binary() -> str | None:
    """Label Studio in its own environment (.ci/run makes .venv-label-studio), or on PATH."""
    local = REPO / ".venv-label-studio" / "bin" / "label-studio"
    return str(local) if local.exists() else shutil.which("label-studio")


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    binary = label_studio_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("Label Studio is not installed (.ci/run installs it into .venv-label-studio)")
        pytest.skip("Label Studio is not installed (python -m venv .venv-label-studio && "
                    ".venv-label-studio/bin/pip install label-studio)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("label-studio")
    log = (data / "server.log").open("w")
    env = {**os.environ, "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    server = subprocess.Popen(
        [binary, "start", "--no-browser", "--port", str(port), "--internal-host", "127.0.0.1",
         "--data-dir", str(data), "--username", "reviewer@example.com", "--password", "review-password",
         "--user-token", TOKEN, "--enable-legacy-api-token"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240  # first start migrates its database
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail("Label Studio did not start:\n" + (data / "server.log").read_text()[-3000:])
        time.sleep(2)
    yield url
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def api(url: str, method: str, path: str, body: object = None) -> object:
    request = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.mark.slow
def test_review_round_trip_through_label_studio(label_studio, files):
    r = CliRunner().invoke(main, ["review", "export", str(files / "tagged.jsonl"), "-v", str(files / "vocab.json"),
                                  "-i", str(files / "items.jsonl"), "--all", "--out", str(files / "review.json")])
    assert r.exit_code == 0, r.output
    # the generated configuration is accepted by Label Studio, and so are the pre-filled tasks
    project = api(label_studio, "POST", "/api/projects", {
        "title": "tagsmith review", "label_config": (files / "review.label-config.xml").read_text()})
    pid = project["id"]  # type: ignore[index]
    imported = api(label_studio, "POST", f"/api/projects/{pid}/import", json.loads((files / "review.json").read_text()))
    assert imported["task_count"] == 4 and imported["prediction_count"] == 4  # type: ignore[index]
    listed = api(label_studio, "GET", f"/api/tasks?project={pid}&page_size=100")
    tasks = {t["data"]["id"]: t for t in (listed["tasks"] if isinstance(listed, dict) else listed)}  # type: ignore[index,union-attr]
    names = rv.control_names(parse_vocabulary(SMALL_VOCAB))
    # a reviewer corrects item a2: two colours, a part number, and keeps tagsmith's category
    api(label_studio, "POST", f"/api/tasks/{tasks['a2']['id']}/annotations", {"result": [
        {"from_name": names["Color"], "to_name": "title", "type": "choices", "value": {"choices": ["Black", "Red"]}},
        {"from_name": names["Material"], "to_name": "title", "type": "choices", "value": {"choices": ["Wood"]}},
        {"from_name": names["Part Number"], "to_name": "title", "type": "textarea", "value": {"text": ["PN-7"]}},
        {"from_name": names["Category"], "to_name": "title", "type": "taxonomy",
         "value": {"taxonomy": [["Kitchen", "Cookware", "Pans"]]}}]})
    request = urllib.request.Request(f"{label_studio}/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true",
                                     headers={"Authorization": f"Token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        (files / "export.json").write_bytes(response.read())
    r = CliRunner().invoke(main, ["review", "import", str(files / "export.json"), "--out", str(files / "gold.jsonl"),
                                  "-v", str(files / "vocab.json")])
    assert r.exit_code == 0, r.output
    assert "1 reviewed items" in r.output and "3 tasks not annotated" in r.output
    (record,) = [json.loads(x) for x in (files / "gold.jsonl").read_text().splitlines()]
    assert record == {"id": "a2", "title": "Wooden pan", "description": 'Pan & "lid" <b>bold</b>', "category": None,
                      "gold": {"Color": ["Black", "Red"], "Material": ["Wood"], "Part Number": ["PN-7"],
                               "Category": ["Kitchen > Cookware > Pans"]}}
