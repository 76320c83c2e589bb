"""What a careless user does to their files must never lose or damage data: driven through the
real CLI (fake engine), asserting exit codes, one-line messages and every byte of input kept."""

import csv
import json

import pytest

from conftest import run_cli as run, write_items

ANSWER = json.dumps({"Product Type": ["Rings/Bands"], "Brand": ["TACORI"], "Model Number": []})


@pytest.fixture(autouse=True)
def fake(use_fake_engine):
    use_fake_engine.answer(ANSWER)


def test_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path):
    src = write_items(tmp_path / "in.jsonl", 3)
    before = src.read_bytes()
    r = run("tag", "-i", src, "-o", src, "--vocab", "wdc-pave")
    assert r.exit_code == 2 and "the output is the input file" in r.output
    assert src.read_bytes() == before


def test_a_file_that_is_not_tagsmith_output_is_refused(tmp_path):
    src, other = write_items(tmp_path / "in.jsonl", 3), write_items(tmp_path / "other.jsonl", 2)
    before = other.read_bytes()
    r = run("tag", "-i", src, "-o", other, "--vocab", "wdc-pave")
    assert r.exit_code == 2 and "not tagsmith output" in r.output and other.read_bytes() == before


def test_csv_with_byte_order_mark_keeps_its_title_column(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    with open(src, "w", encoding="utf-8-sig", newline="") as f:  # Excel's "CSV UTF-8"
        w = csv.writer(f)
        w.writerow(["title", "id", "category"])
        w.writerow(["Tacori ring", "a", "Jewelry"])
    r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave", "--no-progress")
    assert r.exit_code == 0, r.output
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["id"] == "a" and line["tags"] and "empty item" not in json.dumps(line["warnings"])


def test_no_title_column_is_a_one_line_error_before_anything_is_written(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    src.write_text("name_of_product,sku,category\nring,1,Jewelry\n")
    r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave")
    assert r.exit_code == 2 and "no title column" in r.output and "--title-field" in r.output
    assert not out.exists() or out.read_text() == ""
    r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave", "--title-field", "name_of_product")
    assert r.exit_code == 0, r.output


def test_damage_in_the_middle_is_refused_with_its_line_and_nothing_is_deleted(tmp_path):
    src, out = write_items(tmp_path / "in.jsonl", 6), tmp_path / "out.jsonl"
    assert run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave", "--limit", 4, "-b", 2).exit_code == 0
    lines = out.read_text().splitlines()
    lines[1] = lines[1][:20]  # a damaged line with good lines after it
    out.write_text("\n".join(lines) + "\n")
    before = out.read_bytes()
    r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave")
    assert r.exit_code == 2 and f"{out}:2: damaged line" in r.output
    assert out.read_bytes() == before


def test_a_second_writer_is_refused(tmp_path):
    from tagsmith.results_store import ResultsFile

    src, out = write_items(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    with ResultsFile(out):  # another run holds the output
        r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave")
    assert r.exit_code == 2 and "another tagsmith run is writing" in r.output
    assert out.read_text() == ""


def test_output_of_another_job_is_refused_and_kept(tmp_path):
    src, out = write_items(tmp_path / "in.jsonl", 4), tmp_path / "out.jsonl"
    assert run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave", "--limit", 2).exit_code == 0
    before = out.read_bytes()
    r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave", "--template", "compact")
    assert r.exit_code == 2 and "holds results of another job" in r.output and "template" in r.output
    other = write_items(tmp_path / "other.jsonl", 4)
    r = run("tag", "-i", other, "-o", out, "--vocab", "wdc-pave")
    assert r.exit_code == 2 and "input" in r.output and out.read_bytes() == before
    r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave", "--engine", "fake", "-b", 1)  # same job
    assert r.exit_code == 0 and "2 already done" in r.output and len(out.read_text().splitlines()) == 4


def test_output_without_a_job_record_must_hold_this_runs_vocabularies(tmp_path):
    src, out = write_items(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    assert run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave").exit_code == 0
    (tmp_path / "out.jsonl.job").unlink()  # written by an older tagsmith, or copied
    vocab = tmp_path / "mine.yaml"
    vocab.write_text("name: mine\nfacets:\n  - name: Color\n    values: [Red, Blue]\n")
    before = out.read_bytes()
    r = run("tag", "-i", src, "-o", out, "--vocab", vocab)
    assert r.exit_code == 2 and "holds results for vocabulary" in r.output and out.read_bytes() == before
    assert run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave").exit_code == 0  # its own: resumed
    assert len(out.read_text().splitlines()) == 2


def test_errored_items_are_tagged_again_without_duplicates(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"

    def write(category_of_b):
        src.write_text(json.dumps({"id": "a", "title": "Tacori ring", "category": "Jewelry"}) + "\n"
                       + json.dumps({"id": "b", "title": "Tacori band", "category": category_of_b}) + "\n")

    def results():
        return {json.loads(x)["id"]: json.loads(x) for x in out.read_text().splitlines()}

    write("Toys")  # no vocabulary for that category: an error for b
    assert run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave").exit_code == 0
    assert results()["b"]["error"] and not results()["a"]["error"]
    write("Jewelry")  # the user fixes the input
    r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave", "--keep-errors")
    assert r.exit_code == 0 and results()["b"]["error"]
    r = run("tag", "-i", src, "-o", out, "--vocab", "wdc-pave")
    assert r.exit_code == 0 and "1 items that failed before are tagged again" in r.output
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and not results()["b"]["error"] and results()["b"]["tags"]


def test_every_item_failing_is_a_failed_run(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "title": "x", "category": "Toys"}) + "\n" for i in range(2)))
    r = run("tag", "-i", src, "--vocab", "wdc-pave", "--no-progress")
    assert r.exit_code == 1 and "every item failed" in r.stderr


def test_train_refuses_an_ordinary_folder(tmp_path):
    folder = tmp_path / "my-notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    data = tmp_path / "gold.jsonl"
    data.write_text(json.dumps({"id": "1", "title": "ring", "gold": {"Brand": ["TACORI"]}}) + "\n")
    r = run("train", "--data", data, "--out", folder)
    assert r.exit_code == 2 and "not an adapter folder" in r.output
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("records,message", [
    ([{"id": "1", "title": "a", "gold": {"Brand": [3]}}], "expected a string or a list of strings"),
    ([{"id": "1", "title": "a", "gold": {}}, {"id": "1", "title": "b", "gold": {}}], "appears twice"),
    ([{"id": "1", "title": 5, "gold": {}}], "'title' must be a string"),
    ([{"input_title": "a", "target_scores": {}}], "does not fit the WDC-PAVE format"),
    (["just a string"], "expected a JSON object per line"),
])
def test_eval_names_the_bad_record_before_any_model_loads(tmp_path, use_fake_engine, records, message):
    data = tmp_path / "gold.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    r = run("eval", "--data", data, "--split", "all", "--no-baseline", "--out", tmp_path / "runs")
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert use_fake_engine.created == []
