"""Near-dup removal on real documents with planted duplicates: found, distinct ones untouched, chains in
one component, empty/short documents by rule, counts reconcile, keep rule, CLI and config errors."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from test_near_dedup_helpers import clusters_from_duplicates, jaccard, planted_corpus, publish_docs

from curation.contract import DOC_COLUMNS, Manifest
from curation.dedup.job import run_near_dedup
from curation.dedup.near_config import NearDedupConfig, candidate_probability

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus():
    return planted_corpus()


@pytest.fixture(scope="module")
def deduped(spark, corpus, tmp_path_factory):
    docs, _ = corpus
    tmp = tmp_path_factory.mktemp("near")
    publish_docs(tmp / "in", "v1", docs)
    cfg = NearDedupConfig(keep_order=["date asc"])
    result = run_near_dedup(tmp / "in", tmp / "out", cfg, run_id="d1", spark=spark)
    return result, {d["id"]: d for d in docs}


def _read(version_dir, part):
    return pq.read_table(version_dir / part).to_pylist()


def test_planted_premises_hold(corpus):
    docs, expected = corpus
    text = {d["id"]: d["text"] for d in docs}
    c = sorted(expected["chain"] - {"chain-b", "chain-c"})[0]
    assert jaccard(text[c], text["chain-b"]) >= 0.8 and jaccard(text["chain-b"], text["chain-c"]) >= 0.8
    assert jaccard(text[c], text["chain-c"]) < 0.8  # only the chain links them
    for name in ("upper", "edited", "boiler"):
        x, y = sorted(expected[name])
        assert jaccard(text[x], text[y]) >= 0.8, name


def test_planted_duplicates_found_and_chains_in_one_component(deduped, corpus):
    result, _ = deduped
    _, expected = corpus
    clusters = clusters_from_duplicates(_read(result.version_dir, "duplicates"))
    for name, members in expected.items():
        assert frozenset(members) in clusters, f"{name}: {sorted(members)} not one cluster in {clusters}"


def test_distinct_documents_untouched(deduped, corpus):
    result, by_id = deduped
    _, expected = corpus
    planted = set().union(*expected.values())
    removed = {r["id"] for r in _read(result.version_dir, "rejects")}
    kept = {r["id"] for r in _read(result.version_dir, "data")}
    assert removed <= planted | _natural_duplicates(by_id)
    for special in ("empty", "blank", "null-text", "short-3"):
        assert special in kept  # no words / no partner: kept by rule, never a candidate
    assert kept | removed == set(by_id) and not kept & removed


def _natural_duplicates(by_id) -> set[str]:
    """Fixture documents that already have a >= 0.8 partner among the real ones (none expected)."""
    real = [i for i in by_id if i.startswith(("web-", "dclm-"))]
    out = set()
    for i, x in enumerate(real):
        for y in real[i + 1 :]:
            if jaccard(by_id[x]["text"], by_id[y]["text"]) >= 0.8:
                out |= {x, y}
    return out


def test_keep_rule_and_audit_rows(deduped, corpus):
    result, by_id = deduped
    dups = {r["doc_id"]: r for r in _read(result.version_dir, "duplicates")}
    # the boilerplate copy has the earlier date, so keep_order ["date asc"] keeps it over the original
    boiler_orig = next(i for i, r in dups.items() if r["kept_id"] == "copy-boiler")
    assert boiler_orig.startswith(("web-", "dclm-"))
    # ties on date fall back to the smallest id
    assert dups["short-2"]["kept_id"] == "short-1"
    for r in dups.values():
        assert r["similarity"] >= 0.8 or r["cluster_id"] == dups.get("chain-c", {}).get("cluster_id")
    upper = [r for i, r in dups.items() if "copy-upper" in (i, r["kept_id"])]
    assert len(upper) == 1 and upper[0]["similarity"] == 1.0  # case differences vanish in normalization
    rejects = {r["id"]: r for r in _read(result.version_dir, "rejects")}
    assert set(rejects) == set(dups)
    assert {r["reject_reason"] for r in rejects.values()} == {"near_duplicate"}
    assert all(r["reject_detail"] == f"kept {dups[i]['kept_id']}" for i, r in rejects.items())


def test_output_schema_and_manifest_reconcile(deduped):
    result, by_id = deduped
    m = Manifest.read(result.version_dir)
    m.check()
    kept = pq.read_table(result.version_dir / "data")
    assert kept.column_names == DOC_COLUMNS
    assert m.rows == kept.num_rows and m.rejected_rows == len(_read(result.version_dir, "rejects"))
    assert m.rows + m.rejected_rows == len(by_id)
    assert m.stages[0].reasons == {"near_duplicate": m.rejected_rows}
    assert m.extra["near_dedup"]["documents_without_words"] == 3
    assert m.extra["duplicates_rows"] == m.rejected_rows


def test_duplicate_ids_are_a_clear_error(spark, tmp_path, corpus):
    docs, _ = corpus
    publish_docs(tmp_path / "in", "v1", docs[:5] + [dict(docs[0])])
    with pytest.raises(ValueError, match="repeated `id`"):
        run_near_dedup(tmp_path / "in", tmp_path / "out", NearDedupConfig(), run_id="x", spark=spark)
    assert not any(p.name.startswith(".staging") for p in (tmp_path / "out").iterdir())


def test_config_rejects_bands_beyond_num_perm():
    with pytest.raises(ValidationError, match="bands\\*rows"):
        NearDedupConfig(num_perm=64, bands=20, rows=6)
    with pytest.raises(ValidationError):
        NearDedupConfig(thresold=0.7)


def test_default_s_curve_targets_jaccard_08():
    cfg = NearDedupConfig()
    assert candidate_probability(0.8, cfg.bands, cfg.rows) > 0.99
    assert candidate_probability(0.3, cfg.bands, cfg.rows) < 0.02


def test_cli_dedup_standalone(spark, tmp_path, corpus, capsys):
    from curation.cli import main

    docs, _ = corpus
    publish_docs(tmp_path / "in", "v1", docs[:20] + [dict(docs[0], id="clone")])
    rc = main(
        ["dedup", "--input", str(tmp_path / "in" / "v1"), "--output", str(tmp_path / "out"), "--run-id", "c1"]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "near_dedup" in out and "1 near duplicates removed" in out
    assert (tmp_path / "out" / "CURRENT").read_text().strip() == "c1"
    assert main(["dedup", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o2")]) == 2
