"""HTML extraction quality and speed: our Extract step (each setting) vs datatrove's trafilatura extractor.

Scores every setting on the trafilatura evaluation corpus (../shared/data/html_trafilatura_eval): for each
page, `with` snippets found in the output are true positives (missing: false negatives), `without` snippets
found are false positives (absent: true negatives), whitespace-normalised substring matching as in
trafilatura's tests/evaluate.py; precision / recall / F1 / accuracy over the pooled counts. Time is the
extraction call only, one process, pages interleaved across settings so machine noise hits all alike.

    python bench/extraction_quality.py [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from curation.paths import shared_data_dir
from curation.steps.extract import Extract, ExtractConfig

WS = re.compile(r"\s+")


def norm(text: str) -> str:
    return WS.sub(" ", text).strip()


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    seconds: float = 0.0
    docs: int = 0
    empty: int = 0
    errors: int = 0

    def add(self, item: dict, text: str | None) -> None:
        out = norm(text or "")
        found = sum(1 for s in item["with"] if norm(s) in out)
        leaked = sum(1 for s in item["without"] if norm(s) in out)
        self.tp += found
        self.fn += len(item["with"]) - found
        self.fp += leaked
        self.tn += len(item["without"]) - leaked
        self.docs += 1
        self.empty += not out

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / total if total else 0.0

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds if self.seconds else 0.0


def load_corpus(root: Path, limit: int | None, seed: int = 0) -> list[tuple[dict, bytes]]:
    evaldata = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    items = list(evaldata.values())
    if limit:
        random.Random(seed).shuffle(items)
        items = items[:limit]
    return [(item, gzip.decompress((root / "html" / f"{item['file']}.gz").read_bytes())) for item in items]


def ours(**settings) -> Callable[[bytes], str | None]:
    step = Extract(ExtractConfig(**settings))
    step.setup()
    return lambda html: step.extract_one(html)[0]


def datatrove_trafilatura() -> Callable[[bytes], str | None]:
    """datatrove 0.10.1's extractor block itself (favour_precision, deduplicate, full cascade), called
    directly without its timeout sandbox process; it receives decoded text, as its WARC reader gives it."""
    from datatrove.pipeline.extractors import Trafilatura
    from trafilatura.utils import decode_file

    extractor = Trafilatura()
    return lambda html: extractor.extract(decode_file(html))


SETTINGS: dict[str, Callable[[], Callable[[bytes], str | None]]] = {
    "datatrove Trafilatura (favour_precision, full cascade)": datatrove_trafilatura,
    "ours default: trafilatura fast+precision, full cascade below 700 chars": lambda: ours(),
    "ours: trafilatura fast+precision, no fallback": lambda: ours(fallback_below_chars=0),
    "ours: trafilatura fast+precision, full cascade below 300 chars": lambda: ours(fallback_below_chars=300),
    "ours: trafilatura fast+precision, full cascade below 1000 chars": lambda: ours(
        fallback_below_chars=1000
    ),
    "ours: trafilatura fast (no precision)": lambda: ours(favor_precision=False, fallback_below_chars=0),
    "ours: trafilatura full cascade + precision": lambda: ours(fast=False),
    "ours: resiliparse main_content": lambda: ours(extractor="resiliparse"),
}


def run(corpus: list[tuple[dict, bytes]], names: list[str]) -> dict[str, Score]:
    fns = {name: SETTINGS[name]() for name in names}
    for fn in fns.values():  # pay imports and lazy init before timing
        fn(b"<html><body><p>warm up</p></body></html>")
    scores = {name: Score() for name in names}
    for i, (item, html) in enumerate(corpus, 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            try:
                text = fn(html)
            except Exception:  # noqa: BLE001 -- counted as a full miss, as evaluate.py does
                text = None
                scores[name].errors += 1
            scores[name].seconds += time.perf_counter() - t0
            scores[name].add(item, text)
        if i % 100 == 0:
            print(f"{i}/{len(corpus)} pages", file=sys.stderr, flush=True)
    return scores


def table(scores: dict[str, Score], reference: str) -> str:
    ref = scores.get(reference)
    lines = [
        "| setting | precision | recall | F1 | accuracy | docs/s | x datatrove | empty |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in scores.items():
        ratio = f"{s.docs_per_s / ref.docs_per_s:.2f}" if ref and ref.docs_per_s else "-"
        lines.append(
            f"| {name} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.accuracy:.3f} |"
            f" {s.docs_per_s:.1f} | {ratio} | {s.empty} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "html_trafilatura_eval")
    parser.add_argument("--limit", type=int, default=None, help="pages (random sample, seed 0); default all")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    corpus = load_corpus(args.data, args.limit)
    print(f"{len(corpus)} pages, {sum(len(h) for _, h in corpus) / 1e6:.1f} MB of HTML", file=sys.stderr)
    scores = run(corpus, args.settings)
    print(table(scores, next(iter(SETTINGS))))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": platform.platform(),
                    "pages": len(corpus),
                    "scores": {
                        n: {
                            "precision": s.precision,
                            "recall": s.recall,
                            "f1": s.f1,
                            "accuracy": s.accuracy,
                            "docs_per_s": s.docs_per_s,
                            "empty": s.empty,
                            "errors": s.errors,
                        }
                        for n, s in scores.items()
                    },
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
