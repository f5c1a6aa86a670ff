"""Language ID: fasttext lid.176.ftz vs py3langid, accuracy on labelled real text and docs/s.

Labelled sets (all in $PHI_SHARED_DATA):
  - FineWeb-C Danish (806 docs, all Danish by construction)                  -> 'da'
  - DCLM human-quality sample (218 English Common Crawl docs)                 -> 'en'
  - trafilatura eval pages: the ground-truth main-text snippets of each page, joined, labelled by the
    country TLD of the page's URL (.de/.at -> de, .pl -> pl, .fr -> fr, .it -> it, .uk -> en); a TLD is
    a weak label (some .de sites write English), so this set measures agreement, not truth.

Run: python bench/langid_compare.py
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import defaultdict

from curation.paths import models_dir, shared_data_dir
from curation.steps.langid import load_fasttext_model, predict_languages

TLD_LANG = {"de": "de", "at": "de", "pl": "pl", "fr": "fr", "it": "it", "uk": "en"}


def labelled_sets() -> dict[str, list[tuple[str, str]]]:
    data = shared_data_dir()
    csv.field_size_limit(sys.maxsize)
    with open(data / "edu_labels_finewebc_danish" / "fineweb-c_danish.csv", newline="") as f:
        danish = [(row["text"], "da") for row in csv.DictReader(f)]
    with open(data / "quality_labels_dclm_human" / "majority_data_disputed.jsonl") as f:
        english = [(json.loads(line)["text"], "en") for line in f]
    with open(data / "html_trafilatura_eval" / "evaldata.json") as f:
        pages = json.load(f)
    tld = []
    for url, page in pages.items():
        host = url.split("/")[2] if "://" in url else ""
        lang = TLD_LANG.get(host.rsplit(".", 1)[-1])
        text = " ".join(page.get("with", []))
        if lang and len(text) >= 80:
            tld.append((text, lang))
    return {"finewebc_danish": danish, "dclm_english": english, "trafilatura_tld": tld}


def main() -> None:
    import py3langid.langid as py3

    ft = load_fasttext_model(models_dir() / "lid.176.ftz")
    systems = {
        "fasttext lid.176.ftz": lambda texts: [lang for lang, _ in predict_languages(ft, texts)],
        "py3langid 0.4.0": lambda texts: [py3.classify(t)[0] for t in texts],  # its packaged model
    }
    sets = labelled_sets()
    print(f"{'set':<18}{'docs':>6}  " + "  ".join(f"{name:>22}" for name in systems))
    totals = defaultdict(float)
    n_docs = sum(len(v) for v in sets.values())
    for set_name, rows in sets.items():
        texts, gold = [t for t, _ in rows], [g for _, g in rows]
        accs = []
        for name, predict in systems.items():
            t0 = time.perf_counter()
            pred = predict(texts)
            totals[name] += time.perf_counter() - t0
            accs.append(sum(p == g for p, g in zip(pred, gold)) / len(gold))
        print(f"{set_name:<18}{len(rows):>6}  " + "  ".join(f"{a:>21.1%} " for a in accs))
    print(f"{'docs/s':<24}  " + "  ".join(f"{n_docs / totals[name]:>21.0f} " for name in systems))


if __name__ == "__main__":
    main()
