"""Tagging through a local Ray: the same results as one process, nothing lost when a worker
dies, nothing twice when a half-written output is resumed.

A local Ray with 2 CPUs is started once for the module; the fake engine's keyword tagger
(`answer = "mentions"`) makes every item's tags depend on its text, so "the same output"
compares real per-item answers.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray")

from tagsmith.cli import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

VOCAB = """\
name: kitchen
facets:
  - name: Color
    max_values: 2
    values: [Red, Black, Blue, Green, White]
  - name: Material
    values: [Steel, Cast Iron, Wood, Glass]
"""
COLORS = ["red", "black", "blue", "green", "white", "navy"]
MATERIALS = ["steel", "cast iron", "wood", "glass", "clay"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def setup_files(folder: Path, n: int, delay: float = 0.0) -> tuple[Path, Path, Path]:
    items = folder / "items.jsonl"
    with items.open("w") as f:
        for i in range(n):
            title = f"{COLORS[i % 6]} {MATERIALS[(i // 6) % 5]} pan no {i}"
            f.write(json.dumps({"id": f"p{i}", "title": title}) + "\n")
    vocab = folder / "kitchen.yaml"
    vocab.write_text(VOCAB)
    config = folder / "fake.toml"
    config.write_text(f'[engine]\nname = "fake"\n[engine.fake]\nanswer = "mentions"\ndelay = {delay}\n')
    return items, vocab, config


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def batch(items: Path, vocab: Path, config: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["batch", str(items), "-v", str(vocab), "--config", str(config), "-o", str(out),
                                     "--no-progress", "--actors", "2", *extra])


def test_ray_output_equals_single_process_output(local_ray, tmp_path):
    items, vocab, config = setup_files(tmp_path, 300)
    r = batch(items, vocab, config, tmp_path / "ray.jsonl")
    assert r.exit_code == 0, r.output
    assert "tagged 300 items on 2 actors" in r.output
    single = CliRunner().invoke(main, ["tag", "-i", str(items), "-o", str(tmp_path / "one.jsonl"), "-v", str(vocab),
                                       "--config", str(config), "--no-progress"])
    assert single.exit_code == 0, single.output
    by_ray = {x["id"]: x["tags"] for x in lines(tmp_path / "ray.jsonl")}
    by_one = {x["id"]: x["tags"] for x in lines(tmp_path / "one.jsonl")}
    assert len(lines(tmp_path / "ray.jsonl")) == 300 and by_ray == by_one
    assert by_ray["p0"] == {"Color": ["Red"], "Material": ["Steel"]}
    assert by_ray["p5"] == {"Material": ["Steel"]}  # navy is no value of the vocabulary
    assert len({json.dumps(t, sort_keys=True) for t in by_ray.values()}) > 10  # answers differ per item
    # the job record names the run, so a re-run with other settings is refused
    job = json.loads((tmp_path / "ray.jsonl.job").read_text())
    assert job["input"] == str(items.resolve())
    again = batch(items, vocab, config, tmp_path / "ray.jsonl")
    assert again.exit_code == 0 and "tagged 0 items" in again.output and "300 already done" in again.output


def actor_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "TaggerActor" in cmdline:
                pids.append(int(proc.name))
    return pids


def test_a_killed_worker_loses_nothing_and_duplicates_nothing(local_ray, tmp_path):
    items, vocab, config = setup_files(tmp_path, 300, delay=0.1)
    out = tmp_path / "out.jsonl"
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("r", batch(items, vocab, config, out, "-b", "16")))
    worker.start()
    killed = None
    deadline = time.time() + 120
    while time.time() < deadline and killed is None:
        written = len(out.read_text().splitlines()) if out.exists() else 0
        pids = actor_pids()
        if written >= 32 and pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)  # mid-run: the actor's batch in flight is lost with it
        time.sleep(0.2)
    worker.join(timeout=300)
    assert killed is not None, "no actor process to kill was found"
    r = result["r"]
    assert r.exit_code == 0, r.output
    ids = [x["id"] for x in lines(out)]
    assert len(ids) == 300 and set(ids) == {f"p{i}" for i in range(300)}  # nothing lost, nothing twice
    assert all(x["error"] is None for x in lines(out))


def test_a_half_written_output_is_resumed(local_ray, tmp_path):
    items, vocab, config = setup_files(tmp_path, 200)
    out = tmp_path / "out.jsonl"
    r = batch(items, vocab, config, out, "--limit", "80")
    assert r.exit_code == 0 and "tagged 80 items" in r.output
    with out.open("a") as f:
        f.write('{"id": "p199", "tags": {"Col')  # the process died while writing a line
    r = batch(items, vocab, config, out)
    assert r.exit_code == 0, r.output
    assert "tagged 120 items" in r.output and "80 already done" in r.output
    ids = [x["id"] for x in lines(out)]
    assert len(ids) == 200 and len(set(ids)) == 200


def test_rows_without_ids_and_bad_inputs_are_one_line_errors(local_ray, tmp_path):
    _, vocab, config = setup_files(tmp_path, 1)
    no_ids = tmp_path / "no-ids.jsonl"
    no_ids.write_text('{"title": "red pan"}\n')
    r = batch(no_ids, vocab, config, tmp_path / "o.jsonl")
    assert r.exit_code == 2 and "has no id" in r.output and "Traceback" not in r.output
    r = batch(tmp_path / "missing.jsonl", vocab, config, tmp_path / "o2.jsonl")
    assert r.exit_code == 2 and "input not found" in r.output
    r = batch(no_ids, vocab, config, no_ids)
    assert r.exit_code == 2 and "the output is the input" in r.output


def test_real_offers_through_ray_with_the_embedded_model(local_ray, tmp_path):
    """20 WDC-PAVE offers, the embedded model with its shipped adapter (transformers engine) in
    2 actors: every item tagged once, no errors, tags from the vocabulary."""
    from conftest import WDC_TRAIN, require_shared

    require_shared()
    items = tmp_path / "offers.jsonl"
    items.write_text("".join(WDC_TRAIN.read_text().splitlines(keepends=True)[:20]))
    out = tmp_path / "tagged.jsonl"
    r = CliRunner().invoke(main, ["batch", str(items), "-v", "wdc-pave", "-e", "transformers", "-o", str(out),
                                  "--no-progress", "-b", "4", "--actors", "2"])
    assert r.exit_code == 0, r.output
    results = lines(out)
    assert len(results) == 20 and len({x["id"] for x in results}) == 20
    assert all(x["error"] is None for x in results)
    assert sum(1 for x in results if any(x["tags"].values())) >= 15
    assert "using adapter wdc-pave-smollm2" in r.output and "tagged 20 items on 2 actors" in r.output


def test_a_parquet_output_is_a_table_of_the_same_results(local_ray, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    items, vocab, config = setup_files(tmp_path, 60)
    r = batch(items, vocab, config, tmp_path / "tagged.parquet")
    assert r.exit_code == 0, r.output
    assert "(60 rows; resumable from" in r.output
    table = {row["id"]: json.loads(row["tags"]) for row in pq.read_table(tmp_path / "tagged.parquet").to_pylist()}
    assert table == {x["id"]: x["tags"] for x in lines(tmp_path / "tagged.parquet.jsonl")} and len(table) == 60
    assert table["p0"] == {"Color": ["Red"], "Material": ["Steel"]}
