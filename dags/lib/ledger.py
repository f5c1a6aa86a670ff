"""The processed-segments ledger of the nightly refresh: which crawl segments already went into a
published version, so a night only curates what is new; and the log of every night, empty ones included.

    <root>/_ledger/segments.json   segment -> {version, recorded_at, bytes}
    <root>/_ledger/nights.jsonl    one line per night: run, status (published | empty), segments matched/new
    <root>/_ledger/nights.md       the same as a table, rewritten with each line (the nights' report)

Rewritten atomically (temp file + rename) under an exclusive file lock. Segments are recorded only after
their version is published, so a failed night leaves them pending and the next night picks them up again.

Segments are listed by the curation job's own lister (curation.ingest.listing.fsspec_glob: local paths, file:,
s3://, s3a:// and whatever else fsspec serves), so nightly_refresh reads the same object stores as
`curation run`. A glob that matches nothing, or whose location does not exist, is an error (NoSegments)
and never a quiet empty night: an empty night is one whose globs match only segments already consumed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import uuid
from pathlib import Path

from curation.contract import now_iso
from curation.ingest.files import url_to_fs

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class NoSegments(FileNotFoundError):
    """A segment glob matched no file: a typo, a missing mount, an empty bucket prefix."""


def _location(g: str) -> str:
    """The folder part of a glob before its first wildcard (what must exist for the glob to match)."""
    head = re.split(r"[*?\[]", g, maxsplit=1)[0]
    return head if head.endswith("/") or head == g else head.rsplit("/", 1)[0] + "/"


def _exists(location: str) -> bool:

    from curation.ingest import fsspec_uri

    try:
        fs, path = url_to_fs(fsspec_uri(location))
        return bool(fs.exists(path.rstrip("/") or "/"))
    except Exception:  # noqa: BLE001 - unreachable store: reported as a location that is not there
        return False


def list_segments(g: str) -> list[str]:
    """The files a glob matches, with the curation job's lister and its rule (names starting with '.' or
    '_' are not data). NoSegments says whether the glob's location exists at all."""
    from curation.ingest.listing import fsspec_glob, visible

    found = visible(fsspec_glob(g))
    if not found:
        where = _location(g)
        why = "matches no file" if _exists(where) else f"names a location that does not exist ({where})"
        raise NoSegments(f"segment glob {g!r} {why}")
    return found


class SegmentLedger:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def for_root(cls, root: str | os.PathLike) -> SegmentLedger:
        return cls(Path(root) / "_ledger" / "segments.json")

    @property
    def nights_path(self) -> Path:
        return self.path.with_name("nights.jsonl")

    def entries(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(
                f"segment ledger {self.path} is not valid JSON ({e}); fix or move it aside"
            ) from e
        if not isinstance(data, dict):
            raise TypeError(f"segment ledger {self.path}: expected an object of segment -> entry")
        return data

    @staticmethod
    def key(path: str) -> str:
        return path if _SCHEME.match(path) else os.path.abspath(path)

    def scan(self, globs: list[str]) -> tuple[list[str], list[str]]:
        """(every segment the globs match, those no published version has consumed yet); sorted keys.
        Raises NoSegments for a glob that matches nothing."""
        done = self.entries()
        found = sorted({self.key(p) for g in globs for p in list_segments(g)})
        return found, [p for p in found if p not in done]

    def discover(self, globs: list[str]) -> list[str]:
        """Segments matching the globs that no published version has consumed yet (sorted keys)."""
        return self.scan(globs)[1]

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _size(key: str) -> int | None:

        from curation.ingest import fsspec_uri

        try:
            fs, path = url_to_fs(fsspec_uri(key))
            return int(fs.size(path))
        except Exception:  # noqa: BLE001 - the size is informative; a vanished segment was still consumed
            return None

    def record(self, segments: list[str], version: str) -> int:
        """Mark segments as consumed by `version`; returns how many were new (re-recording is a no-op)."""
        with self._locked():
            data = self.entries()
            added = 0
            for seg in segments:
                k = self.key(seg)
                if k in data:
                    continue
                data[k] = {"version": version, "recorded_at": now_iso(), "bytes": self._size(k)}
                added += 1
            tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
            os.replace(tmp, self.path)
        return added

    def nights(self) -> list[dict]:
        p = self.nights_path
        return (
            [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []
        )

    def record_night(
        self,
        run: str,
        status: str,
        matched: int,
        new: int,
        version: str | None = None,
        rows: int | None = None,
    ) -> dict:
        """Log one night (`published`: its version and corpus rows; `empty`: every matched segment was
        consumed already) and rewrite the nights' table. A rerun of the same night replaces its line."""
        entry = {
            "run": run,
            "status": status,
            "segments_matched": matched,
            "segments_new": new,
            "version": version,
            "rows": rows,
            "recorded_at": now_iso(),
        }
        with self._locked():
            nights = [n for n in self.nights() if n["run"] != run] + [entry]
            for path, text in (
                (self.nights_path, "".join(json.dumps(n) + "\n" for n in nights)),
                (self.path.with_name("nights.md"), _nights_table(nights)),
            ):
                tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
                tmp.write_text(text)
                os.replace(tmp, path)
        return entry


def _nights_table(nights: list[dict]) -> str:
    lines = [
        "# nightly_refresh: nights",
        "",
        "| run | status | segments matched | new | version | rows |",
        "|---|---|---:|---:|---|---:|",
    ]
    lines += [
        f"| {n['run']} | {n['status']} | {n['segments_matched']} | {n['segments_new']} | "
        f"{n['version'] or '-'} | {n['rows'] if n['rows'] is not None else '-'} |"
        for n in nights
    ]
    return "\n".join(lines) + "\n"
