"""Durable results: one SQLite row per request key.

Why SQLite rather than parquet shards:
- Results arrive one at a time over hours. SQLite commits each one as a small transaction (WAL mode), so a
  SIGKILL loses at most the requests that were in flight, never a finished answer. Parquet would need a write
  buffer (lost on a kill) or one tiny file per result (millions of files) plus a compaction step.
- Exactly-once is a PRIMARY KEY on the request key, enforced by the database itself: a finished ("ok") row
  is never overwritten, a failed row is replaced when a later run succeeds. With parquet shards the
  de-duplication would be a read-time convention every reader must remember.
- "Skip finished keys" on a rerun is one indexed lookup, not a scan of every shard.
Downstream jobs (Spark, DuckDB) want columnar files, so `export_parquet` writes a snapshot once a batch ends.

WAL with synchronous=NORMAL survives a process crash (what SIGKILL is); `fsync=True` selects FULL for
surviving an OS crash / power loss too, at a per-commit fsync cost.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Self

import pyarrow as pa
import pyarrow.parquet as pq

from synthesis.teacher.request import Choice, SamplingParams, TeacherResult

log = logging.getLogger(__name__)

_COLUMNS = [
    "key",
    "request_id",
    "status",
    "choices",
    "error_type",
    "error",
    "model_id",
    "backend",
    "sampling",
    "template_version",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "attempts",
    "run_id",
    "created_at",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    request_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    choices TEXT NOT NULL,            -- JSON list of {text, finish_reason, parsed}
    error_type TEXT,
    error TEXT,
    model_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    sampling TEXT NOT NULL,           -- JSON of SamplingParams
    template_version TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s REAL,
    attempts INTEGER NOT NULL,
    run_id TEXT,
    created_at TEXT
);
CREATE INDEX IF NOT EXISTS results_status ON results(status);
"""

# A finished answer is final; a failure is replaced by whatever a later attempt produced.
_UPSERT = (
    f"INSERT INTO results ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT(key) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS if c != "key")
    + " WHERE results.status != 'ok'"
)

ARROW_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("request_id", pa.string()),
        pa.field("status", pa.string()),
        pa.field("text", pa.string()),
        pa.field("texts", pa.list_(pa.string())),
        pa.field("finish_reason", pa.string()),
        pa.field("parsed_json", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("error", pa.string()),
        pa.field("model_id", pa.string()),
        pa.field("backend", pa.string()),
        pa.field("sampling_json", pa.string()),
        pa.field("template_version", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("latency_s", pa.float64()),
        pa.field("attempts", pa.int64()),
        pa.field("run_id", pa.string()),
        pa.field("created_at", pa.string()),
    ]
)


class ResultStore:
    """The results of every request ever run against one store file, keyed by request key."""

    def __init__(self, path: str | Path, fsync: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise ValueError(f"teacher result store {self.path} is not a usable SQLite database: {e}") from e

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- writes --------------------------------------------------------------------------------------

    def put(self, result: TeacherResult) -> None:
        """Commit one result now (its own transaction: durable as soon as this returns)."""
        self._db.execute(_UPSERT, _row(result))

    def put_many(self, results: Iterable[TeacherResult]) -> None:
        """Commit several results in one transaction (for engines that finish a whole batch at once)."""
        rows = [_row(r) for r in results]
        if not rows:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(_UPSERT, rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # ---- reads ---------------------------------------------------------------------------------------

    def statuses(self, keys: Iterable[str]) -> dict[str, str]:
        """key -> status for those of `keys` that have a row."""
        out: dict[str, str] = {}
        keys = list(keys)
        for i in range(0, len(keys), 500):  # stay under SQLite's host-parameter limit
            chunk = keys[i : i + 500]
            q = f"SELECT key, status FROM results WHERE key IN ({','.join('?' * len(chunk))})"
            out.update(self._db.execute(q, chunk).fetchall())
        return out

    def failure_types(self, keys: Iterable[str]) -> dict[str, str | None]:
        """key -> error_type for those of `keys` whose row is a failure."""
        out: dict[str, str | None] = {}
        keys = list(keys)
        for i in range(0, len(keys), 500):  # stay under SQLite's host-parameter limit
            chunk = keys[i : i + 500]
            q = (
                f"SELECT key, error_type FROM results WHERE status = 'failed' "
                f"AND key IN ({','.join('?' * len(chunk))})"
            )
            out.update(self._db.execute(q, chunk).fetchall())
        return out

    def get(self, key: str) -> TeacherResult | None:
        row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM results WHERE key = ?", (key,)).fetchone()
        return _result(row) if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, TeacherResult]:
        out: dict[str, TeacherResult] = {}
        keys = list(keys)
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            q = f"SELECT {', '.join(_COLUMNS)} FROM results WHERE key IN ({','.join('?' * len(chunk))})"
            out.update((row[0], _result(row)) for row in self._db.execute(q, chunk))
        return out

    def iter_results(self, status: str | None = None) -> Iterator[TeacherResult]:
        q = f"SELECT {', '.join(_COLUMNS)} FROM results"
        args: tuple = ()
        if status is not None:
            q, args = q + " WHERE status = ?", (status,)
        for row in self._db.execute(q + " ORDER BY rowid", args):
            yield _result(row)

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall())

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    # ---- export --------------------------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        cols: dict[str, list] = {f.name: [] for f in ARROW_SCHEMA}
        for r in self.iter_results():
            texts = [c.text for c in r.choices]
            values = {
                "key": r.key,
                "request_id": r.request_id,
                "status": r.status,
                "text": texts[0] if texts else None,
                "texts": texts,
                "finish_reason": r.finish_reason,
                "parsed_json": json.dumps(r.parsed) if r.choices and r.parsed is not None else None,
                "error_type": r.error_type,
                "error": r.error,
                "model_id": r.model_id,
                "backend": r.backend,
                "sampling_json": r.sampling.model_dump_json(),
                "template_version": r.template_version,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "latency_s": r.latency_s,
                "attempts": r.attempts,
                "run_id": r.run_id,
                "created_at": r.created_at,
            }
            for k, v in values.items():
                cols[k].append(v)
        return pa.Table.from_pydict(cols, schema=ARROW_SCHEMA)

    def export_parquet(self, path: str | Path) -> Path:
        """Write a snapshot of every row to one parquet file (atomically, via a temp name)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(self.to_arrow(), tmp)
        tmp.replace(path)
        return path


def _row(r: TeacherResult) -> tuple:
    return (
        r.key,
        r.request_id,
        r.status,
        json.dumps([c.model_dump(mode="json") for c in r.choices]),
        r.error_type,
        r.error,
        r.model_id,
        r.backend,
        r.sampling.model_dump_json(),
        r.template_version,
        r.prompt_tokens,
        r.completion_tokens,
        r.latency_s,
        r.attempts,
        r.run_id,
        r.created_at,
    )


def _result(row: tuple) -> TeacherResult:
    d = dict(zip(_COLUMNS, row))
    d["choices"] = [Choice.model_validate(c) for c in json.loads(d["choices"])]
    d["sampling"] = SamplingParams.model_validate_json(d["sampling"])
    return TeacherResult.model_validate(d)
