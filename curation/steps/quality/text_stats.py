"""Per-document text views shared by every quality filter, each computed at most once per document.

Word splitting, line splitting and n-gram counting are most of the cost of heuristic filtering; the
reference implementation (datatrove) redoes them in every filter and builds a joined string per
n-gram. Here a `TextStats` computes each view lazily, the filters of one batch share it through
`stats_for(batch, i)`, and n-grams are tuples of the (already hashed) word strings.

Words follow the reference pipelines' tokenizer shape (spaCy's rules as datatrove uses them): runs of
word characters with inner apostrophes/decimal points kept together, punctuation as separate tokens
("..." as one), whitespace dropped. A regex is far cheaper than running spaCy; speed and the
keep/reject agreement with datatrove (98% on real documents) are measured in bench/filters_throughput.py.
"""

from __future__ import annotations

import re
import weakref
from functools import cached_property
from itertools import accumulate, filterfalse

import numpy as np
import regex

from curation.steps.base import DocBatch

# URLs whole; words (letters, digits, combining marks) joined across inner . , / : - between word
# characters; a clitic ('s, n't-style 're) split off as its own word; "..." one symbol; any other
# non-space character a one-character symbol.
_WORD_RE = regex.compile(
    r"(?:https?://|www\.)[^\s]*[^\s.,;:!?)\]\"'”’]"
    r"|[\w\p{M}]+(?:[.,/:\-][\w\p{M}]+)*"
    r"|['’][\w\p{M}]+"
    r"|\.\.\.+|[^\w\s]"
)
_LINE_RUNS_RE = re.compile(r"\n+")
_PARAGRAPH_RE = re.compile(r"\n{2,}")
_HAS_ALPHA_RE = re.compile(r"[^\W\d_]")
_POLY = np.uint64(0x100000001B3)  # odd multiplier; uint64 arithmetic wraps


def split_words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def _has_alpha(word: str) -> bool:
    return word.isalpha() or (not word.isdigit() and _HAS_ALPHA_RE.search(word) is not None)


def duplicate_counts(items: list[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in them): every occurrence after the first counts."""
    seen: set[str] = set()
    dup_elems = dup_chars = 0
    for item in items:
        if item in seen:
            dup_elems += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup_elems, dup_chars


class TextStats:
    """Lazily computed views of one document's text. Immutable text; build a new one if it changes."""

    def __init__(self, text: str):
        self.text = text

    # ---- splits ---------------------------------------------------------------------------------
    @cached_property
    def words(self) -> list[str]:
        return split_words(self.text)

    @cached_property
    def word_is_symbol(self) -> list[bool]:
        """True for punctuation-only tokens: the tokenizer emits those as one character or as '...'."""
        return [(len(w) == 1 and not w.isalnum()) or w[:2] == ".." for w in self.words]

    @cached_property
    def non_symbol_words(self) -> list[str]:
        return [w for w, sym in zip(self.words, self.word_is_symbol) if not sym]

    @cached_property
    def lines(self) -> list[str]:
        """str.splitlines(): what the Gopher quality and C4 rules look at."""
        return self.text.splitlines()

    @cached_property
    def newline_runs(self) -> list[str]:
        """Split on runs of \\n: the 'lines' of the Gopher repetition rules."""
        return _LINE_RUNS_RE.split(self.text)

    @cached_property
    def paragraphs(self) -> list[str]:
        return _PARAGRAPH_RE.split(self.text.strip())

    @cached_property
    def nonblank_lines(self) -> list[str]:
        """Lines split on \\n, blank ones dropped, not stripped: the FineWeb rules' lines."""
        return [line for line in self.text.split("\n") if line.strip()]

    # ---- counts ---------------------------------------------------------------------------------
    @cached_property
    def alpha_word_count(self) -> int:
        # most words are purely alphabetic (a C-level test); only the rest need the regex
        pure = sum(map(str.isalpha, self.non_symbol_words))
        return pure + sum(1 for w in filterfalse(str.isalpha, self.non_symbol_words) if _has_alpha(w))

    @cached_property
    def word_prefix_chars(self) -> list[int]:
        """prefix[i] = characters in words[:i], so an n-gram's joined length is a subtraction."""
        return list(accumulate(map(len, self.words), initial=0))

    # ---- n-grams as 64-bit hashes ---------------------------------------------------------------
    # An n-gram is a polynomial hash of its words' (cached) string hashes, built for every position at
    # once with numpy and extended from the (n-1)-gram hashes; collisions at 64 bits are negligible
    # for statistics within one document.

    def ngram_hashes(self, n: int) -> np.ndarray:
        cache = self._ngram_cache
        if n not in cache:
            k = max(j for j in cache if j < n)
            h, word_h = cache[k], cache[1]
            for j in range(k + 1, n + 1):
                h = h[:-1] * _POLY + word_h[j - 1 :]
                cache[j] = h
        return cache[n]

    @cached_property
    def _ngram_cache(self) -> dict[int, np.ndarray]:
        words = self.words
        return {1: np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)}

    def top_ngram_chars(self, n: int) -> int:
        """Characters covered by the most frequent word n-gram (joined with spaces) times its count;
        ties go to the n-gram seen first. 0 if the document has fewer than n words."""
        if len(self.words) < n:
            return 0
        _, first, counts = np.unique(self.ngram_hashes(n), return_index=True, return_counts=True)
        top = int(counts.max())
        i = int(first[counts == top].min())
        prefix = self.word_prefix_chars
        return (prefix[i + n] - prefix[i] + n - 1) * top

    def duplicate_ngram_chars(self, n: int) -> int:
        """Characters in word n-grams that repeat an earlier n-gram, scanning left to right and jumping
        past each repeat so overlapping repeats are not counted twice (the Gopher definition).

        Same result as the plain position-by-position scan, but Python only steps through positions
        whose n-gram occurred before (usually few): runs of first occurrences between them are
        added to the seen-set in one C-level update."""
        if len(self.words) < n:
            return 0
        h = self.ngram_hashes(n)
        m = len(h)
        uniq, first, inverse = np.unique(h, return_index=True, return_inverse=True)
        if len(uniq) == m:  # common case: nothing repeats
            return 0
        first_pos = first[inverse]  # per position: where its n-gram first occurs (the n-gram's id)
        repeats = np.flatnonzero(first_pos != np.arange(m)).tolist()
        gram_id = first_pos.tolist()
        prefix = self.word_prefix_chars
        seen: set[int] = set()
        repeated = idx = 0
        for pos in repeats:
            if pos < idx:  # inside the span of the last counted repeat: skipped by the scan
                continue
            seen.update(gram_id[idx:pos])  # first occurrences the scan visits on its way to pos
            if gram_id[pos] in seen:
                repeated += prefix[pos + n] - prefix[pos]
                idx = pos + n
            else:  # its earlier occurrences were all skipped: a first sighting for the scan
                seen.add(gram_id[pos])
                idx = pos + 1
        return repeated


# ---- sharing between the filters of one batch --------------------------------------------------------

_BATCH_STATS: weakref.WeakKeyDictionary[DocBatch, list[TextStats | None]] = weakref.WeakKeyDictionary()


def stats_for(batch: DocBatch, i: int) -> TextStats:
    """The TextStats of row i, shared by every filter that looks at this batch; rebuilt if an earlier
    step replaced the row's text (e.g. C4 line removal)."""
    per_row = _BATCH_STATS.get(batch)
    if per_row is None:
        per_row = [None] * batch.n
        _BATCH_STATS[batch] = per_row
    text = batch["text"][i] or ""
    stats = per_row[i]
    if stats is None or stats.text is not text:
        stats = per_row[i] = TextStats(text)
    return stats
