"""Parquet outputs: a table made from the resumable JSONL results."""

from __future__ import annotations

import json

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from tagsmith.parquet_results import results_beside, write_parquet  # noqa: E402


def test_results_become_one_row_per_id_with_nested_fields_as_json(tmp_path):
    lines = tmp_path / "tagged.parquet.jsonl"
    rows = [{"id": "a", "tags": {"Color": ["Red"]}, "vocabulary": "kitchen", "error": None},
            {"id": 7, "tags": {}, "vocabulary": "kitchen", "error": "engine failed", "raw": "{"},
            {"id": "a", "tags": {"Color": ["Blue"]}, "vocabulary": "kitchen", "error": None}]  # a retried id
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert results_beside(tmp_path / "tagged.parquet") == lines
    assert write_parquet(lines, tmp_path / "tagged.parquet") == 2
    table = pq.read_table(tmp_path / "tagged.parquet").to_pylist()
    assert [r["id"] for r in table] == ["a", "7"]
    assert json.loads(table[0]["tags"]) == {"Color": ["Blue"]}  # the last line of an id wins
    assert table[1]["error"] == "engine failed" and table[0]["error"] is None and table[0]["raw"] is None
    assert not list(tmp_path.glob(".*tmp"))  # replaced whole, no temporary left
