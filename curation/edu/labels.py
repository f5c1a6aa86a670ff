"""Label sets for the edu classifier: (id, text, score) rows from any of the three sources teams mix.

  - a label file: JSONL (optionally .gz), parquet or CSV with `text` and an integer `score` / `label` /
    `int_score` column (human annotations, an external teacher's output);
  - a teacher label dataset written by `python -m synthesis label-edu` (a published dataset version whose
    rows carry `score`, null where the teacher's answer could not be parsed);
  - the DCLM reference-vs-random recipe: positives (score 1) from a reference corpus the user names,
    negatives (score 0) sampled from the web corpus, seeded.

Every row that cannot be used is counted under a reason (and the first example of each is logged with its
file, line and value), never dropped silently. A source that yields no usable row is an error.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from curation.contract import iter_parquet_files, resolve_version_dir, text_hash
from curation.edu.text_source import open_text_source

log = logging.getLogger(__name__)

LABEL_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("text", pa.string()),
        pa.field("score", pa.int64()),
        pa.field("label_source", pa.string()),
    ]
)

#: Score columns looked for, in this order, when the caller does not name one.
SCORE_FIELDS = ("score", "label", "int_score")


@dataclass
class LabelSet:
    """Usable labelled rows plus the bookkeeping of what was not usable and where it came from."""

    table: pa.Table
    sources: list[str] = field(default_factory=list)
    rejects: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.table.num_rows

    def counts(self) -> dict[int, int]:
        return dict(sorted(Counter(self.table.column("score").to_pylist()).items()))

    @property
    def texts(self) -> list[str]:
        return self.table.column("text").to_pylist()

    @property
    def scores(self) -> list[int]:
        return self.table.column("score").to_pylist()


class _Rejects:
    """Counts rejects per reason and remembers the first example of each for the log."""

    def __init__(self, source: str):
        self.source = source
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def add(self, reason: str, where: str) -> None:
        self.counts[reason] += 1
        self.examples.setdefault(reason, where)

    def log(self) -> None:
        if self.counts:
            detail = "; ".join(f"{r}={n} (first: {self.examples[r]})" for r, n in sorted(self.counts.items()))
            log.warning("%s: %d row(s) not usable: %s", self.source, sum(self.counts.values()), detail)


def parse_score(value: Any, max_score: int) -> tuple[int | None, str | None]:
    """An integer score in [0, max_score], or (None, reason). Integral floats and numeric strings are
    accepted (CSV and JSON writers disagree about 3 vs 3.0 vs "3"); anything else is not guessed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, "missing_score"
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None, "score_not_a_number"
    if not isinstance(value, (int, float)):
        return None, "score_not_a_number"
    if float(value) != int(value):
        return None, "score_not_integer"
    if not 0 <= int(value) <= max_score:
        return None, "score_out_of_range"
    return int(value), None


# ---- raw records from a file ----------------------------------------------------------------------------


def _read_records(path: Path, rejects: _Rejects) -> list[dict[str, Any]]:
    """Rows of a JSONL/parquet/CSV file as dicts, each with `_pos` (file:line or file row N) for messages."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")):
        opener = gzip.open if name.endswith(".gz") else open
        rows = []
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    rejects.add("invalid_json", f"{path}:{lineno}: {e}")
                    continue
                if not isinstance(row, dict):
                    rejects.add("not_an_object", f"{path}:{lineno}")
                    continue
                row["_pos"] = f"{path}:{lineno}"
                rows.append(row)
        return rows
    if name.endswith(".parquet"):
        table = pq.read_table(path)
    elif name.endswith((".csv", ".csv.gz")):
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True))
    else:
        raise ValueError(f"label file {path}: unsupported format (expected .jsonl[.gz], .parquet or .csv)")
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        row["_pos"] = f"{path} row {i}"
    return rows


def _pick_score_field(path: Path, rows: list[dict[str, Any]], score_field: str | None) -> str:
    present = set().union(*(r.keys() for r in rows[:100])) if rows else set()
    if score_field is not None:
        if score_field not in present:
            raise ValueError(
                f"label file {path}: no field {score_field!r} (fields: {sorted(present - {'_pos'})})"
            )
        return score_field
    for candidate in SCORE_FIELDS:
        if candidate in present:
            return candidate
    raise ValueError(
        f"label file {path}: none of the score fields {list(SCORE_FIELDS)} present"
        f" (fields: {sorted(present - {'_pos'})}); name one with --score-field"
    )


def read_label_file(
    path: str | Path, score_field: str | None = None, text_field: str = "text", max_score: int = 5
) -> LabelSet:
    """Labelled rows from a JSONL/parquet/CSV file with a text field and an integer score field."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"label file {p} does not exist")
    rejects = _Rejects(str(p))
    rows = _read_records(p, rejects)
    if not rows:
        raise ValueError(f"label file {p}: no rows")
    sfield = _pick_score_field(p, rows, score_field)
    ids, texts, scores = [], [], []
    for row in rows:
        text = row.get(text_field)
        if not isinstance(text, str) or not text.strip():
            rejects.add("missing_text", f"{row['_pos']}: {text_field}={str(text)[:40]!r}")
            continue
        score, reason = parse_score(row.get(sfield), max_score)
        if reason:
            rejects.add(reason, f"{row['_pos']}: {sfield}={row.get(sfield)!r}")
            continue
        ids.append(str(row["id"]) if row.get("id") is not None else text_hash(text))
        texts.append(text)
        scores.append(score)
    rejects.log()
    if not texts:
        raise ValueError(f"label file {p}: no usable row (field {sfield!r}; rejects {dict(rejects.counts)})")
    table = pa.table(
        {"id": ids, "text": texts, "score": scores, "label_source": [f"file:{p.name}"] * len(texts)},
        schema=LABEL_SCHEMA,
    )
    log.info(
        "%s: %d labelled rows via field %r, scores %s",
        p,
        len(texts),
        sfield,
        dict(sorted(Counter(scores).items())),
    )
    return LabelSet(table, [f"file:{p}#{sfield}"], dict(rejects.counts))


def read_label_dataset(path: str | Path, max_score: int = 5) -> LabelSet:
    """A teacher label dataset (contract layout) written by `synthesis label-edu`. Rows whose teacher answer
    was unparseable have a null score and are counted, not guessed."""
    vdir = resolve_version_dir(path)
    files = list(iter_parquet_files(vdir))
    if not files:
        raise ValueError(f"label dataset {vdir}: no data/*.parquet")
    table = pa.concat_tables(pq.read_table(f) for f in files)
    for col in ("id", "text", "score"):
        if col not in table.column_names:
            raise ValueError(f"label dataset {vdir}: missing column {col!r} (has {table.column_names})")
    teacher = table.column("teacher_model").to_pylist() if "teacher_model" in table.column_names else None
    rejects = _Rejects(str(vdir))
    ids, texts, scores, srcs = [], [], [], []
    for i, (doc_id, text, raw) in enumerate(
        zip(*(table.column(c).to_pylist() for c in ("id", "text", "score")))
    ):
        if not text:
            rejects.add("missing_text", f"id={doc_id}")
            continue
        if raw is None:
            rejects.add("unparseable_teacher_score", f"id={doc_id}")
            continue
        score, reason = parse_score(raw, max_score)
        if reason:
            rejects.add(reason, f"id={doc_id}: score={raw!r}")
            continue
        ids.append(doc_id)
        texts.append(text)
        scores.append(score)
        srcs.append(f"teacher:{teacher[i]}" if teacher else f"dataset:{vdir.parent.name}")
    rejects.log()
    if not texts:
        raise ValueError(f"label dataset {vdir}: no usable row (rejects {dict(rejects.counts)})")
    return LabelSet(
        pa.table({"id": ids, "text": texts, "score": scores, "label_source": srcs}, schema=LABEL_SCHEMA),
        [f"dataset:{vdir}"],
        dict(rejects.counts),
    )


def read_labels(path: str | Path, score_field: str | None = None, max_score: int = 5) -> LabelSet:
    """A label file or a teacher label dataset, whichever `path` is."""
    p = Path(path)
    if p.is_dir():
        return read_label_dataset(p, max_score)
    return read_label_file(p, score_field, max_score=max_score)


# ---- the reference-vs-random recipe ---------------------------------------------------------------------


def sample_texts(path: str | Path, n: int | None, seed: int) -> pa.Table:
    """Up to `n` (id, text) rows from a text source, a deterministic pseudo-random sample for a seed.
    Runs in DuckDB, so sampling negatives from a large curated corpus streams instead of loading it."""
    with open_text_source(path, f"text source {Path(path)}") as src:
        limit = f"LIMIT {int(n)}" if n is not None else ""
        # md5 of (id, seed) orders rows pseudo-randomly but reproducibly, on any DuckDB version.
        query = (
            f"SELECT {src.id_expr} AS id, text FROM {src.table}"
            " WHERE text IS NOT NULL AND length(trim(text)) > 0 "
            f"ORDER BY md5({src.id_expr} || '|' || '{int(seed)}') {limit}"
        )
        return src.con.sql(query).to_arrow_table()


def reference_vs_random(
    reference: list[str | Path], random: str | Path, n: int | None = None, seed: int = 0
) -> LabelSet:
    """DCLM recipe: reference documents are positives (1), an equal number of random web documents are
    negatives (0). `n` caps the positives (None: all of them)."""
    positives = pa.concat_tables(sample_texts(r, None, seed) for r in reference)
    if n is not None and positives.num_rows > n:
        positives = positives.slice(0, n)  # rows are already in seeded pseudo-random order per source
    if positives.num_rows == 0:
        raise ValueError(f"reference corpus {[str(r) for r in reference]}: no documents with text")
    negatives = sample_texts(random, positives.num_rows, seed)
    if negatives.num_rows < positives.num_rows:
        log.warning(
            "random corpus %s has only %d documents for %d positives",
            random,
            negatives.num_rows,
            positives.num_rows,
        )
    table = pa.table(
        {
            "id": positives.column("id").to_pylist() + negatives.column("id").to_pylist(),
            "text": positives.column("text").to_pylist() + negatives.column("text").to_pylist(),
            "score": [1] * positives.num_rows + [0] * negatives.num_rows,
            "label_source": ["reference"] * positives.num_rows + ["random"] * negatives.num_rows,
        },
        schema=LABEL_SCHEMA,
    )
    log.info(
        "reference-vs-random: %d positives from %s, %d negatives from %s",
        positives.num_rows,
        [str(r) for r in reference],
        negatives.num_rows,
        random,
    )
    return LabelSet(table, [f"reference:{r}" for r in reference] + [f"random:{random}"], {})


# ---- combining ------------------------------------------------------------------------------------------


def combine(sets: list[LabelSet], key=None) -> LabelSet:
    """All sets in order; a text seen again (after `key`, e.g. the classifier's normalisation) is
    counted as `duplicate_text` and only its first label is kept, so a document cannot be trained on
    twice or land on both sides of the train/validation split."""
    if not sets:
        raise ValueError("no label source given")
    table = pa.concat_tables(s.table for s in sets)
    rejects: Counter[str] = Counter()
    for s in sets:
        rejects.update(s.rejects)
    keys = [text_hash(key(t) if key else t) for t in table.column("text").to_pylist()]
    seen: set[str] = set()
    keep = []
    for i, k in enumerate(keys):
        if k in seen:
            rejects["duplicate_text"] += 1
        else:
            seen.add(k)
            keep.append(i)
    if len(keep) < table.num_rows:
        log.info("dropped %d duplicate labelled texts", table.num_rows - len(keep))
        table = table.take(pa.array(keep, type=pa.int64()))
    return LabelSet(table, [src for s in sets for src in s.sources], dict(rejects))
