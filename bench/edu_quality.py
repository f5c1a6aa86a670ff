"""Quality of the edu classifier pipeline: trained on human labels vs on the embedded teacher's labels.

human    FineWeb-C Danish (3-annotator human edu labels 0-4): train with the default config, held-out
         validation metrics vs the majority-class baseline.
teacher  a label dataset from `python -m synthesis label-edu` over the DCLM human-labelled pages
         (SmolLM2-135M by default): parse rate, score distribution, the teacher's own agreement with the
         DCLM human quality labels on the same pages (AUC), then the classifier trained on those labels,
         evaluated against the DCLM human labels of the pages the teacher did NOT see.

  python bench/edu_quality.py --teacher-labels DIR [--threshold 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.edu.evaluate import human_agreement
from curation.edu.labels import LabelSet, read_label_dataset, read_label_file
from curation.edu.registry import ModelRegistry
from curation.edu.scorer import EduScorer
from curation.edu.train import EduTrainConfig
from curation.edu.workflow import train_and_register
from curation.paths import shared_data_dir

OUT = Path(__file__).resolve().parent / "out" / "edu_quality"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--teacher-labels", type=Path, help="label dataset from `synthesis label-edu` on DCLM pages"
    )
    ap.add_argument("--threshold", type=float, default=2.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    shutil.rmtree(OUT, ignore_errors=True)
    registry = ModelRegistry(OUT / "registry")
    d = shared_data_dir()
    dclm = read_label_file(d / "quality_labels_dclm_human" / "majority_data_disputed.jsonl", max_score=1)
    out: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    danish = read_label_file(d / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv", max_score=4)
    ref = train_and_register(
        danish, EduTrainConfig(max_score=4, threshold=args.threshold), registry, human_labels=None
    )
    out["human_finewebc_danish"] = {"labels": danish.counts(), "model": ref.version, **ref.card.metrics}

    if args.teacher_labels:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from curation.contract import iter_parquet_files, resolve_version_dir

        vdir = resolve_version_dir(args.teacher_labels)
        manifest = json.loads((vdir / "manifest.json").read_text())
        labels = read_label_dataset(vdir)
        human_by_text = dict(zip(dclm.texts, dclm.scores))
        seen = set(labels.texts)
        rejects = pa.concat_tables([pq.read_table(p) for p in iter_parquet_files(vdir, "rejects")])
        seen |= set(rejects.column("text").to_pylist())
        teacher_vs_human = human_agreement(
            [human_by_text[t] for t in labels.texts], labels.scores, args.threshold
        )
        stage = manifest["stages"][0]
        res = {
            "teacher": manifest["extra"]["teacher_model"],
            "prompt": manifest["extra"]["prompt_version"],
            "documents": stage["rows_in"],
            "parsed": stage["rows_kept"],
            "unusable": stage["reasons"],
            "score_counts": labels.counts(),
            "teacher_vs_dclm_human_same_pages": teacher_vs_human,
        }
        if len(labels.counts()) >= 2:
            ref_t = train_and_register(
                labels,
                EduTrainConfig(threshold=args.threshold, validation_fraction=0.25),
                registry,
                human_labels=None,
            )
            unseen = [i for i, t in enumerate(dclm.texts) if t not in seen]
            held = LabelSet(dclm.table.take(pa.array(unseen, type=pa.int64())))
            s, _ = EduScorer(ref_t).score(held.texts)
            res["classifier"] = {
                "model": ref_t.version,
                "validation_vs_teacher": ref_t.card.metrics["validation"],
                "vs_dclm_human_unseen_pages": human_agreement(held.scores, s, args.threshold),
            }
        else:
            res["classifier"] = "not trained: teacher labels have a single class"
        out["embedded_teacher"] = res
    (OUT / "results.json").write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
