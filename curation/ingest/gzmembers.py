"""Gzip members, verified before any of their bytes become rows.

Python's gzip module (and warcio) hand out decompressed bytes as they go and check a member's CRC-32 and
length only at its end: a flipped byte yields altered text first and the error later. Here a file is
scanned once, member by member, with zlib (which verifies the gzip trailer), discarding the output; the
readers then decompress only the members that passed. A member that fails is skipped and reading
resynchronises on the next gzip header (magic `1f 8b 08`) whose member decompresses cleanly and starts
like a record of the format (`accept`): WARC.gz files are one member per record and multi-member
.jsonl.gz files exist, so everything after a damaged member is recovered.

The cost is a second decompression of the file (zlib inflates at hundreds of MB/s; the readers are slower).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

GZIP_MEMBER_MAGIC = b"\x1f\x8b\x08"
_CHUNK = 1 << 16
_OUT_STEP = 1 << 20  # inflate at most this much per call: a gzip bomb costs time, never memory
HEAD_BYTES = 4096  # decompressed bytes kept per member for `accept` and reject details


@dataclass
class Member:
    start: int  # byte offset of the member (or damaged span) in the file
    end: int  # offset after it
    status: str  # "ok" | "corrupt" (CRC/length/deflate error) | "truncated" (file ends inside it)
    head: bytes = b""  # its first decompressed bytes
    error: str | None = None


def _inflate(fh: BinaryIO, start: int) -> Member:
    """Decompress the member at `start` to its end, keeping only the head: ok, corrupt or truncated."""
    fh.seek(start)
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    head, fed = b"", 0
    while data := fh.read(_CHUNK):
        buf = data
        try:
            while buf:
                out = d.decompress(buf, _OUT_STEP)
                if len(head) < HEAD_BYTES:
                    head += out[: HEAD_BYTES - len(head)]
                if d.eof:
                    return Member(start, start + fed + len(data) - len(d.unused_data), "ok", head)
                buf = d.unconsumed_tail
        except zlib.error as e:  # bad header, bad deflate data, "incorrect data check" / "length check"
            return Member(start, start + fed + len(data), "corrupt", head, f"zlib.error: {e}")
        fed += len(data)
    return Member(start, start + fed, "truncated", head, "the file ends inside this gzip member")


def _resync(fh: BinaryIO, after: int, accept: Callable[[bytes], bool]) -> Member | None:
    """The first member after offset `after` that decompresses cleanly and whose head `accept`s."""
    pos = after
    while True:
        fh.seek(pos)
        window = fh.read(_CHUNK + len(GZIP_MEMBER_MAGIC) - 1)
        if len(window) < len(GZIP_MEMBER_MAGIC):
            return None
        i = window.find(GZIP_MEMBER_MAGIC)
        while i >= 0:
            cand = _inflate(fh, pos + i)
            if cand.status == "ok" and accept(cand.head):
                return cand
            i = window.find(GZIP_MEMBER_MAGIC, i + 1)
        pos += _CHUNK


def scan_members(fh: BinaryIO, accept: Callable[[bytes], bool]) -> Iterator[Member]:
    """Every member of a gzip file in order; a damaged stretch is one "corrupt" Member from the failing
    member's start to the next good one (or the end of the file); a cut final member is "truncated"."""
    size = fh.seek(0, 2)
    pos = 0
    while pos < size:
        member = _inflate(fh, pos)
        if member.status == "ok":
            yield member
            pos = member.end
            continue
        good = _resync(fh, pos + 1, accept)
        end = good.start if good else size
        if member.status == "truncated":
            yield member
        else:
            yield Member(pos, end, "corrupt", member.head, member.error)
        if good is None:
            return
        pos = good.start


def ok_spans(members: list[Member]) -> list[tuple[int, int]]:
    """Runs of consecutive good members as (start, end) byte ranges."""
    spans: list[tuple[int, int]] = []
    for m in members:
        if m.status != "ok":
            continue
        if spans and spans[-1][1] == m.start:
            spans[-1] = (spans[-1][0], m.end)
        else:
            spans.append((m.start, m.end))
    return spans


class RangeReader:
    """A read-only file object over bytes [start, end) of `fh` (what warcio and GzipFile read from)."""

    def __init__(self, fh: BinaryIO, start: int, end: int):
        self.fh, self.pos, self.end = fh, start, end

    def read(self, n: int = -1) -> bytes:
        left = self.end - self.pos
        n = left if n is None or n < 0 else min(n, left)
        if n <= 0:
            return b""
        self.fh.seek(self.pos)
        data = self.fh.read(n)
        self.pos += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:  # the underlying file belongs to the caller
        pass
