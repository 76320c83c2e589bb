"""Append-only JSONL results that survive a killed run.

Each result is one line, flushed and fsync'ed as soon as its batch is done. On re-run
the ids already present are skipped, so a crash loses at most the batch in flight and
duplicates nothing. A last line cut off mid-write (the process died during `write`) is
detected and trimmed before appending; a damaged line anywhere else is refused with its
line number (trimming there would delete good results after it). A file whose lines are
not results of this kind is refused, and one writer at a time holds the file (a second
run writing the same output stops at once instead of writing every item twice).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

from tagsmith.errors import InputError


class ResultsFile:
    def __init__(self, path: str | Path, required: tuple[str, ...] = ("id", "tags")) -> None:
        """`required`: the keys every line of such a file has (tagsmith results: id and tags)."""
        self.path = Path(path)
        self.required = required
        self.done: set[str] = set()
        self.repaired = False
        self._handle: IO[str] | None = None
        self._lock()
        try:
            if self.path.stat().st_size:
                self._load()
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._handle.close()
            self._handle = None
            raise InputError(f"{self.path}: another tagsmith run is writing this file; wait for it "
                             "or choose another output") from None

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read existing output ({exc})") from None
        good_end = 0
        ends = _line_ends(data)
        for n, line_end in enumerate(ends, start=1):
            line = data[good_end:line_end]
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(f"{self.path}:{n}: damaged line in the middle of the file; tagsmith only "
                                 "repairs a torn last line (fix or remove that line, then re-run)") from None
            if not isinstance(record, dict) or any(k not in record for k in self.required):
                raise InputError(f"{self.path}:{n}: existing file is not tagsmith output "
                                 "(choose another --output)")
            self.done.add(str(record["id"]))
            good_end = line_end
        if good_end < len(data):
            # Torn last write (no newline: the process died during `write`): drop it so the
            # file stays valid JSONL.
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
            self.repaired = True

    def write(self, records: list[dict[str, Any]]) -> None:
        if self._handle is None:
            raise InputError(f"{self.path}: results file is closed")
        for r in records:
            self._handle.write(json.dumps(r, ensure_ascii=False) + "\n")
            self.done.add(str(r["id"]))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line_ends(data: bytes) -> list[int]:
    """Offsets just past each complete (newline-terminated) line."""
    ends = []
    start = 0
    while (nl := data.find(b"\n", start)) != -1:
        ends.append(nl + 1)
        start = nl + 1
    return ends


def read_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """Records of an earlier run by id (the last line of an id wins)."""
    out: dict[str, dict[str, Any]] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for n, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise InputError(f"{path}:{n}: not JSON (expected tagsmith output)") from None
                if not isinstance(record, dict) or "id" not in record:
                    raise InputError(f"{path}:{n}: not tagsmith output (no 'id')")
                out[str(record["id"])] = record
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return out
