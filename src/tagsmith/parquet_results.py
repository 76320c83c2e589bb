"""Results as a Parquet table, for the warehouse that takes a catalogue's tags.

Tagging always writes the resumable JSONL first (a Parquet file cannot be appended to a batch at
a time and survive a crash); the table is made from it once the run is done, and replaced whole,
so a reader never sees half of one. Results have per-vocabulary shapes, so every nested field
(tags, confidences, evidence) is a JSON text column: one schema for every catalogue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tagsmith.errors import InputError
from tagsmith.results_store import read_results, replace_file

#: fields kept as plain text columns; everything else is stored as JSON text
TEXT_FIELDS = ("id", "vocabulary", "error")


def is_parquet(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".parquet"


def results_beside(path: str | Path) -> Path:
    """The resumable JSONL a Parquet output is built from (`tagged.parquet.jsonl`)."""
    path = Path(path)
    return path.with_name(path.name + ".jsonl")


def column_value(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if key in TEXT_FIELDS:
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def write_parquet(results: str | Path, output: str | Path) -> int:
    """Write the results in `results` (tagsmith JSONL) as the Parquet table `output`, one row
    per id in the order first written; returns the row count."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("Parquet output needs pyarrow: pip install pyarrow (Ray Data brings it)") from None
    records = list(read_results(results).values())
    keys = list(TEXT_FIELDS) + sorted({k for r in records for k in r} - set(TEXT_FIELDS))
    table = pa.table({k: pa.array([column_value(k, r.get(k)) for r in records], type=pa.string()) for k in keys})
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    replace_file(Path(output), buffer.getvalue().to_pybytes())
    return len(records)
