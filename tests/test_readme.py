"""The README's Python example runs as written (on the embedded model, in a scratch folder
holding the README's own kitchen vocabulary and a small gold file)."""

import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    (vocabulary,) = [b for b in blocks("yaml") if "name: kitchen" in b]
    (example,) = [b for b in blocks("python") if "import tagsmith" in b]
    (tmp_path / "kitchen.yaml").write_text(vocabulary, encoding="utf-8")
    gold = [{"id": "k1", "title": "Black steel chef knife", "gold": {"Color": ["Black"]}},
            {"id": "k2", "title": "Stainless frying pan", "gold": {"Color": ["Stainless Steel"]}}]
    (tmp_path / "kitchen-gold.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gold), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    out = capsys.readouterr().out
    tags = scope["results"]
    assert [r.id for r in tags] == ["1", "2"] and all(r.error is None for r in tags)
    vocab = scope["tagsmith"].load_vocabulary("kitchen.yaml")
    for r in tags:  # the promise: every tag is a value of the vocabulary (or a span of the text)
        for facet, values in r.tags.items():
            f = vocab.facet(facet)
            assert f is not None and all(f.extractive or v in f.allowed for v in values)
    report = scope["report"]
    assert report.results[0].scores.n_items == 2 and "tagsmith eval" in out
