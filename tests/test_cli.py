"""CLI behaviour with a fake engine: user mistakes give one-line errors, batch runs resume."""

import json

import pytest
from click.testing import CliRunner

from tagsmith.cli import main

from conftest import run_cli as run, write_items

ANSWER = json.dumps({"Product Type": ["Rings/Bands"], "Brand": ["TACORI"], "Model Number": []})


@pytest.fixture
def fake(use_fake_engine):
    use_fake_engine.answer(ANSWER)
    return use_fake_engine.created


def test_tag_text(fake):
    r = run("tag", "Tacori platinum ring", "--vocab", "wdc-pave", "--category", "Jewelry")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["tags"] == {"Product Type": ["Rings/Bands"], "Brand": ["TACORI"]}
    assert "raw" not in out


def test_batch_resume_after_a_crash(fake, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_items(src, 5)
    r = run("tag", "--input", src, "--output", out, "--vocab", "wdc-pave", "--limit", 3, "-b", 2)
    assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == 3
    with open(out, "a") as f:  # a run killed in the middle of writing a line
        f.write('{"id": "3", "tags": {"Bra')
    write_items(src, 2, start=5)
    r = run("tag", "--input", src, "--output", out, "--vocab", "wdc-pave", "-b", 2)
    assert r.exit_code == 0, r.output
    assert "partly written line" in r.output and "3 already done" in r.output
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids, key=int) == [str(i) for i in range(7)]  # nothing lost, nothing twice
    r = run("tag", "--input", src, "--output", out, "--vocab", "wdc-pave")
    assert "tagged 0 items" in r.output


def test_batch_to_stdout_and_duplicate_ids(fake, tmp_path):
    src = tmp_path / "in.jsonl"
    write_items(src, 2)
    write_items(src, 1)  # id 0 again
    r = run("tag", "-i", src, "--vocab", "wdc-pave", "--no-progress")
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert [x["id"] for x in lines] == ["0", "1"]
    assert "1 duplicate ids skipped" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["tag", "x", "--vocab", "nope.yaml"], "nope.yaml: no such file or folder"),
    (["tag", "--vocab", "wdc-pave"], "give either TEXT or --input"),
    (["tag", "x", "--vocab", "wdc-pave", "--template", "nope"], "no template 'nope'"),
    (["tag", "-i", "missing.jsonl", "--vocab", "wdc-pave"], "input file not found"),
    (["vocab", "check", "nope.yaml"], "no such file"),
])
def test_user_mistakes_are_one_line_errors(fake, args, message):
    r = run(*args)
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output
    assert not fake, "no model may load before the cheap checks pass"


def test_invalid_vocab_and_config(fake, tmp_path):
    v = tmp_path / "v.yaml"
    v.write_text("name: x\nfacets:\n  - name: Color\n    values: [Red, red]\n")
    r = run("tag", "x", "--vocab", v)
    assert r.exit_code == 2 and "facet 'Color'" in r.output
    c = tmp_path / "c.toml"
    c.write_text("[engine]\nbatchsize = 3\n")
    r = run("tag", "x", "--vocab", "wdc-pave", "--config", c)
    assert r.exit_code == 2 and "[engine.batchsize] unknown key" in r.output


def test_missing_model_path_is_a_clear_error(tmp_path):
    r = run("tag", "x", "--vocab", "wdc-pave", "--model", tmp_path / "no-model")
    assert r.exit_code == 2
    assert "no model folder or .gguf file at this path" in r.output


def test_help_explains():
    r = run("--help")
    assert r.exit_code == 0 and "tag" in r.output and "vocab" in r.output
    r = run("tag", "--help")
    assert "--output" in r.output and "continues where" in r.output


def test_vocab_commands():
    r = run("vocab", "check", "wdc-pave")
    assert r.exit_code == 0 and r.output.count("ok ") == 5
    r = run("vocab", "schema", "src/tagsmith/vocabularies/wdc-pave/jewelry.yaml")
    assert json.loads(r.stdout)["title"] == "wdc-pave/jewelry"
    assert "wdc-pave" in run("vocab", "list").output


def test_serve_keeps_the_key_off_command_lines_and_warns_when_exposed(monkeypatch):
    from tagsmith import serving

    monkeypatch.setattr(serving, "resolve_model", lambda spec: type("L", (), {"path": "/m"})())
    r = run("serve", "--dry-run", "--host", "0.0.0.0")
    assert r.exit_code == 0 and "without an API key" in r.stderr
    r = CliRunner(env={"TAGSMITH_API_KEY": "s3cret-key"}).invoke(main, ["serve", "--dry-run", "--host", "0.0.0.0"])
    assert r.exit_code == 0 and "s3cret-key" not in r.output and "without an API key" not in r.output
    cmd, env = serving.server_command(None, api_key="s3cret-key")
    assert "s3cret-key" not in " ".join(cmd) and env["VLLM_API_KEY"] == "s3cret-key"
    r = run("serve", "--dry-run", "--", "--api-key", "x")
    assert r.exit_code == 2 and "not to vLLM" in r.output
    assert not run("serve", "--dry-run").stderr.count("without an API key")
