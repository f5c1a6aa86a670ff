"""HTML -> main text (and title) with a maintained extractor: trafilatura (default) or resiliparse.

The default was chosen by measuring both on the trafilatura evaluation corpus (990 pages with ground-truth
snippets; bench/extraction_quality.py, figures in BENCHMARKS.md). datatrove's setting (trafilatura's full
cascade with favor_precision) scores P=0.923 R=0.919 F1=0.921. trafilatura's `fast` mode (main extractor
only, no readability/justext comparison) with favor_precision keeps that precision at ~1.8x the speed
but loses recall (F1=0.908), almost all of it on pages where the fast pass finds little text. So pages whose
fast-mode text is under `fallback_below_chars` (700: ~11% of those pages) are re-run with the full cascade:
P=0.924 R=0.919 F1=0.922, no worse than datatrove on any of the three, for ~10-25% over the fast pass.
resiliparse is ~10x faster still but keeps far more boilerplate (P=0.77, F1=0.85), so it is opt-in.

Rows without `html` (WET, JSONL, parquet sources) pass through untouched.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from curation.steps.base import DocBatch, Step

log = logging.getLogger(__name__)


class ExtractConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"
    # pages over this are rejected (`html_too_large`) before any parsing: both extractors are
    # super-linear on some huge pages, and a 20 MB page is never worth the CPU
    max_html_bytes: int = Field(5_000_000, ge=1)
    # wall-clock guard per document (SIGALRM; only where the step runs on the main thread, as in
    # Spark's Python workers); 0 disables. Timed-out pages are rejected as `extraction_timeout`.
    timeout_s: float = Field(10.0, ge=0)
    # trafilatura settings (see module docstring for why these defaults)
    fast: bool = True
    favor_precision: bool = True
    include_comments: bool = False
    include_tables: bool = True
    fallback_below_chars: int = Field(
        700, ge=0
    )  # fast-mode output shorter than this -> full cascade; 0 = never


class ExtractionTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ExtractionTimeout in the block after `seconds` (no-op off the main thread or when 0).

    The alarm repeats every `seconds / 4` until the block ends, and an expiry is re-raised on exit:
    the extractors catch broad exceptions in places, and a swallowed one-shot alarm would let a
    pathological page run on (into the full cascade) for minutes.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    expired = []

    def _expire(signum, frame):
        expired.append(True)
        raise ExtractionTimeout(f"extraction took over {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, max(seconds / 4, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if expired:
        raise ExtractionTimeout(f"extraction took over {seconds:g}s")


def charset_of(content_type: str | None) -> str | None:
    """The charset parameter of an HTTP Content-Type header, if any."""
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'").lower()
    return None


def decode_html(html: bytes, content_type: str | None = None) -> str | None:
    """UTF-8 first (most pages), then the HTTP header's charset; None = let the extractor guess."""
    try:
        return html.decode("utf-8")
    except UnicodeDecodeError:
        pass
    charset = charset_of(content_type)
    if charset:
        try:
            return html.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return None


# ---- extractors: (html bytes, content type, url) -> (text, title) ------------------------------------

Extractor = Callable[[bytes, "str | None", "str | None"], "tuple[str, str | None]"]


def trafilatura_extractor(cfg: ExtractConfig) -> Extractor:
    from trafilatura import extract
    from trafilatura.metadata import extract_title
    from trafilatura.utils import load_html

    # trafilatura warns per page it finds nothing in ("discarding data"); our rejects already count those,
    # and at crawl scale the warnings would drown the worker logs
    logging.getLogger("trafilatura").setLevel(logging.ERROR)

    options = dict(
        favor_precision=cfg.favor_precision,
        include_comments=cfg.include_comments,
        include_tables=cfg.include_tables,
        include_formatting=False,
        include_links=False,
        include_images=False,
        deduplicate=False,
        with_metadata=False,
    )

    def run(html: bytes, content_type: str | None, url: str | None) -> tuple[str, str | None]:
        # one parse for title and text; trafilatura copies the tree before it prunes it
        tree = load_html(decode_html(html, content_type) or html)
        if tree is None:
            return "", None
        title = extract_title(tree)
        text = extract(tree, url=url, fast=cfg.fast, **options) or ""
        if cfg.fast and len(text) < cfg.fallback_below_chars:
            # the full cascade (readability/justext comparison) rescues pages the fast pass under-reads
            text = extract(tree, url=url, fast=False, **options) or text
        return text, title

    return run


def resiliparse_extractor(cfg: ExtractConfig) -> Extractor:
    try:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding
        from resiliparse.parse.html import HTMLTree
    except ImportError as e:
        raise ImportError(
            f"extract.extractor='resiliparse' needs the resiliparse package"
            f" (pip install resiliparse, or the project's [bench] extra): {e}"
        ) from e

    def run(html: bytes, content_type: str | None, url: str | None) -> tuple[str, str | None]:
        decoded = decode_html(html, content_type)
        if decoded is None:
            decoded = bytes_to_str(html, detect_encoding(html))
        tree = HTMLTree.parse(decoded)
        text = extract_plain_text(tree, main_content=True, comments=cfg.include_comments)
        return text, (tree.title or None)

    return run


EXTRACTORS: dict[str, Callable[[ExtractConfig], Extractor]] = {
    "trafilatura": trafilatura_extractor,
    "resiliparse": resiliparse_extractor,
}


class Extract(Step):
    """Fill `text` and `title` from `html`; reject pages too large to parse or with no main text."""

    name: ClassVar[str] = "extract"

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self._extract: Extractor | None = None

    def setup(self) -> None:
        self._extract = EXTRACTORS[self.cfg.extractor](self.cfg)

    def extract_one(
        self, html: bytes, content_type: str | None = None, url: str | None = None
    ) -> tuple[str | None, str | None, str | None, str | None]:
        """(text, title, reject reason, reject detail) for one page."""
        if self._extract is None:
            self.setup()
        if len(html) > self.cfg.max_html_bytes:
            return (
                None,
                None,
                "html_too_large",
                f"{len(html)} bytes > max_html_bytes {self.cfg.max_html_bytes}",
            )
        try:
            with time_limit(self.cfg.timeout_s):
                text, title = self._extract(html, content_type, url)
        except ExtractionTimeout as e:
            return None, None, "extraction_timeout", str(e)
        except Exception as e:  # noqa: BLE001 -- a parser crash on one page must not kill the batch
            return None, None, "extraction_error", f"{type(e).__name__}: {str(e)[:300]}"
        text = text.strip() if text else ""
        if not text:
            return None, title, "no_main_text", f"{self.cfg.extractor} found no main text"
        return text, title, None, None

    def apply(self, batch: DocBatch) -> None:
        html = batch.columns.get("html")
        if html is None:
            return
        texts, titles = batch.column("text"), batch.column("title")
        content_types = batch.column("content_type")
        urls = batch.column("url")
        done = rejected = 0
        t0 = time.perf_counter()
        for i in list(batch.active()):
            page = html[i]
            if page is None or texts[i] is not None:
                continue  # text sources (WET/JSONL/parquet) already carry their text
            text, title, reason, detail = self.extract_one(page, content_types[i], urls[i])
            html[i] = None  # the page is not needed downstream; free it early
            if title and not titles[i]:
                titles[i] = title
            if reason is not None:
                batch.reject(i, self.name, reason, detail)
                rejected += 1
            else:
                texts[i] = text
                done += 1
        if done or rejected:
            log.debug(
                "extract: %d pages -> %d texts, %d rejected in %.2fs",
                done + rejected,
                done,
                rejected,
                time.perf_counter() - t0,
            )
