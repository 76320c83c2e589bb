"""Append-only JSONL results that survive a killed run.

Each result is one line, flushed and fsync'ed as soon as its batch is done. On re-run
the ids already present are skipped, so a crash loses at most the batch in flight and
duplicates nothing. A last line cut off mid-write (the process died during `write`) is
detected and trimmed before appending; a damaged line anywhere else is refused with its
line number (trimming there would delete good results after it). A file whose lines are
not results of this kind is refused.

Beside the output lives its job record, `<output>.job` (JSON): what produced the results
(input, vocabularies, model, settings). It is also the lock: one writer at a time holds it,
so a second run writing the same output stops at once instead of writing every item twice,
and a run with other settings is refused instead of mixing two jobs' results in one file.
The lock is on the record, not the output, so the output can be replaced atomically when
errored results are dropped for a retry.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

from tagsmith.errors import InputError

JobRecord = dict[str, Any]


def job_path(path: str | Path) -> Path:
    """Where the job record of an output lives."""
    path = Path(path)
    return path.with_name(path.name + ".job")


class ResultsFile:
    def __init__(self, path: str | Path, required: tuple[str, ...] = ("id", "tags"), *,
                 job: JobRecord | None = None, retry_errors: bool = False) -> None:
        """`required`: the keys every line of such a file has (tagsmith results: id and tags).
        `job`: what this run is (compared with the record of the run that wrote the file);
        `retry_errors`: results with an `error` are removed, so their items are tagged again."""
        self.path = Path(path)
        self.required = required
        self.done: set[str] = set()
        self.repaired = False
        #: errored results removed for a retry
        self.retrying = 0
        self._handle: IO[str] | None = None
        self._record: IO[str] | None = None
        self._lock()
        try:
            vocabularies: set[str] = set()
            if self.path.exists() and self.path.stat().st_size:
                vocabularies = self._load(retry_errors)
            if job is not None:
                self._check_job(job, vocabularies)
            self._handle = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            self.close()
            raise InputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        record = job_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._record = open(record, "a+", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{record}: cannot write ({exc.strerror or exc})") from None
        try:
            fcntl.flock(self._record, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.close()
            raise InputError(f"{self.path}: another tagsmith run is writing this file; wait for it "
                             "or choose another output") from None

    def _load(self, retry_errors: bool) -> set[str]:
        """Read what is there (ids done, vocabularies used); repair a torn last line and drop
        errored results when retrying. Returns the vocabulary names the results name."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read existing output ({exc})") from None
        good_end = 0
        keep: list[bytes] = []
        vocabularies: set[str] = set()
        for n, line_end in enumerate(_line_ends(data), start=1):
            line = data[good_end:line_end]
            good_end = line_end
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(f"{self.path}:{n}: damaged line in the middle of the file; tagsmith only "
                                 "repairs a torn last line (fix or remove that line, then re-run)") from None
            if not isinstance(record, dict) or any(k not in record for k in self.required):
                raise InputError(f"{self.path}:{n}: existing file is not tagsmith output "
                                 "(choose another --output)")
            if retry_errors and record.get("error"):
                self.retrying += 1
                continue
            if isinstance(record.get("vocabulary"), str):
                vocabularies.add(record["vocabulary"])
            self.done.add(str(record["id"]))
            keep.append(line)
        self.repaired = good_end < len(data)
        if self.retrying:
            replace_file(self.path, b"".join(keep))
        elif self.repaired:
            # Torn last write (no newline: the process died during `write`): drop it so the
            # file stays valid JSONL.
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
        return vocabularies

    def _check_job(self, job: JobRecord, vocabularies: set[str]) -> None:
        """Refuse results of another job; record this one."""
        assert self._record is not None
        self._record.seek(0)
        text = self._record.read()
        if self.done:
            try:
                before = json.loads(text) if text.strip() else None
            except json.JSONDecodeError:
                before = None
            if isinstance(before, dict):
                differ = sorted(k for k in set(job) | set(before) if job.get(k) != before.get(k))
                if differ:
                    raise InputError(
                        f"{self.path}: holds results of another job (its {', '.join(differ)} differ from "
                        f"this run's, see {job_path(self.path).name}); re-run with the same settings or "
                        "choose another --output")
            else:  # no record (an older tagsmith, or a copied file): the results must fit at least
                ours = set(job.get("vocabularies") or ())
                foreign = sorted(vocabularies - ours) if ours else []
                if foreign:
                    raise InputError(f"{self.path}: holds results for vocabulary {foreign[0]!r}, not one of "
                                     "this run's; choose another --output")
        self._record.seek(0)
        self._record.truncate()
        self._record.write(json.dumps(job, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
        self._record.flush()
        os.fsync(self._record.fileno())

    def write(self, records: list[dict[str, Any]]) -> None:
        if self._handle is None:
            raise InputError(f"{self.path}: results file is closed")
        for r in records:
            self._handle.write(json.dumps(r, ensure_ascii=False) + "\n")
            self.done.add(str(r["id"]))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        for handle in (self._handle, self._record):
            if handle is not None:
                handle.close()
        self._handle = self._record = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` as `path` so that a crash leaves either the old file or the new one."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


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
