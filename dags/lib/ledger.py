"""The processed-segments ledger of the nightly refresh: which crawl segments already went into a
published version, so a night only curates what is new.

A JSON file beside the dataset (`<root>/_ledger/segments.json`), rewritten atomically (temp file +
rename) under an exclusive file lock. Segments are recorded only after their version is published, so
a failed night leaves them pending and the next night picks them up again.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import uuid
from pathlib import Path

from curation.contract import now_iso


class SegmentLedger:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def for_root(cls, root: str | os.PathLike) -> SegmentLedger:
        return cls(Path(root) / "_ledger" / "segments.json")

    def entries(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"segment ledger {self.path} is not valid JSON ({e}); fix or move it aside") from e
        if not isinstance(data, dict):
            raise TypeError(f"segment ledger {self.path}: expected an object of segment -> entry")
        return data

    @staticmethod
    def key(path: str) -> str:
        return os.path.abspath(path)

    def discover(self, globs: list[str]) -> list[str]:
        """Files matching the globs that no published version has consumed yet (sorted, absolute)."""
        done = self.entries()
        found = sorted({self.key(p) for g in globs for p in glob.glob(g) if os.path.isfile(p)})
        return [p for p in found if p not in done]

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def record(self, segments: list[str], version: str) -> int:
        """Mark segments as consumed by `version`; returns how many were new (re-recording is a no-op)."""
        with self._locked():
            data = self.entries()
            added = 0
            for seg in segments:
                k = self.key(seg)
                if k in data:
                    continue
                size = os.path.getsize(k) if os.path.exists(k) else None
                data[k] = {"version": version, "recorded_at": now_iso(), "bytes": size}
                added += 1
            tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
            os.replace(tmp, self.path)
        return added
