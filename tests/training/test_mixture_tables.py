"""Time travel for mixtures: a mixture source naming an Iceberg table (`dataset: iceberg:<table>`) pinned to a
version (run id or snapshot id) reads exactly that snapshot, so it builds identically (same content hashes,
byte-identical shards) after three more nights were appended to the table, the last one bringing an edu column
(a schema update). Real documents (the dolma CC sample); local warehouse and moto's S3 server."""

from __future__ import annotations

import hashlib
import json
import uuid

import pyarrow.parquet as pq
import pytest
from tables_helpers import moto_s3, real_docs, to_table, warehouse_config, write_files

from curation.tables import Warehouse, commit_version, snapshot_id
from training.mixture.build import build

MIXTURE = """\
name: pinned
seed: 3
seq_len: 64
heldout_fraction: 0.05
tokenizer:
  train: {{vocab_size: 512, sample_documents: 60}}
phases:
  - name: p1
    tokens: 600000
    sources:
      - name: web
        dataset: "iceberg:corpus"
        {version}
        weight: 1.0
        max_epochs: 20
"""


@pytest.fixture(scope="module")
def docs(shared_data):
    return real_docs(shared_data, 100)


def _night(wh: Warehouse, run_id: str, rows: list[dict]) -> int:
    table = wh.ensure("corpus", to_table(rows[:1]).schema)
    return commit_version(
        table, write_files(table, run_id, [rows[: len(rows) // 2], rows[len(rows) // 2 :]]), run_id
    ).snapshot_id


def _build(tmp, version_line: str) -> tuple[dict, dict[str, str], set[str]]:
    """(the source's manifest entry, sha256 of every file of the phase, the ids of the documents written)"""
    name = uuid.uuid4().hex[:8]
    (tmp / f"{name}.yaml").write_text(MIXTURE.format(version=version_line))
    out = tmp / f"build-{name}"
    result = build(tmp / f"{name}.yaml", out)
    shards = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "p1").rglob("*"))
        if p.is_file()
    }
    ids = set(pq.read_table(out / "p1" / "documents.parquet", columns=["id"]).column("id").to_pylist())
    return result.manifest["phases"][0]["sources"][0], shards, ids


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_mixture_pinned_to_a_snapshot_builds_identically_after_later_nights(
    kind, docs, tmp_path, request, monkeypatch
):
    if kind == "s3":
        aws = tmp_path / "aws"
        aws.mkdir()
        ctx = moto_s3(aws)
        ctx.__enter__()
        request.addfinalizer(lambda: ctx.__exit__(None, None, None))
    cfg = warehouse_config(kind, tmp_path)
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", cfg.warehouse)
    monkeypatch.setenv("PHI_ICEBERG_CATALOG_URI", cfg.resolved_catalog_uri())
    monkeypatch.setenv("PHI_ICEBERG_CACHE", str(tmp_path / "cache"))
    wh = Warehouse()
    n1 = _night(wh, "n1", docs[:40])
    by_run, shards, ids = _build(tmp_path, "version: n1")
    by_id, shards_by_id, _ = _build(
        tmp_path, f"version: {n1}"
    )  # unquoted: YAML reads the snapshot id as an int
    assert by_run["version"] == by_id["version"] == str(n1)
    assert by_run["content_hash"] == by_id["content_hash"] and shards == shards_by_id
    assert ids <= {d["id"] for d in docs[:40]} and len(ids) >= 36

    _night(wh, "n2", docs[40:60])
    _night(wh, "n3", docs[60:80])
    _night(wh, "n4", [{**d, "edu_score": 2.5} for d in docs[80:100]])
    assert "edu_score" in wh.table("corpus").schema().column_names

    again, shards_again, ids_again = _build(tmp_path, "version: n1")
    assert {k: again[k] for k in ("version", "content_hash", "documents", "tokens")} == {
        k: by_run[k] for k in ("version", "content_hash", "documents", "tokens")
    }
    assert shards_again == shards and ids_again == ids
    current, _, ids_now = _build(tmp_path, "")
    assert current["version"] == str(snapshot_id(wh.table("corpus"), "n4"))
    assert current["content_hash"] != by_run["content_hash"]
    assert ids_now - ids and ids_now - ids <= {d["id"] for d in docs[40:100]}
    assert json.dumps(by_run["dataset"]) == '"iceberg:corpus"'


def test_an_unknown_table_or_version_is_a_clear_error(docs, tmp_path, monkeypatch):
    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    _night(Warehouse(), "n1", docs[:10])
    with pytest.raises(ValueError, match="no version .* 'n9'"):
        _build(tmp_path, "version: n9")
    (tmp_path / "other.yaml").write_text(MIXTURE.format(version="").replace("iceberg:corpus", "iceberg:nope"))
    with pytest.raises(ValueError, match="no Iceberg table 'phi.nope'"):
        build(tmp_path / "other.yaml", tmp_path / "out")


def test_a_build_pins_what_it_read_so_retention_spares_it_until_the_build_moves_on(
    docs, tmp_path, monkeypatch, capsys
):
    from curation.cli import main as curation_cli
    from curation.tables import expire_versions, versions
    from curation.tables.pins import pins

    monkeypatch.setenv("PHI_ICEBERG_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("PHI_ICEBERG_CATALOG_URI", raising=False)
    wh = Warehouse()
    n1 = _night(wh, "n1", docs[:40])
    _build(tmp_path, "version: n1")
    assert pins(wh.table("corpus")) == {f"pin/mixture/pinned@{n1}": n1}
    for k, run in enumerate(("n2", "n3")):
        _night(wh, run, docs[40 + 20 * k : 60 + 20 * k])
    # retention keeps the newest version and the pinned n1, not n2
    expire_versions(wh.table("corpus"), keep=1)
    assert [v["run_id"] for v in versions(wh.table("corpus"))] == ["n1", "n3"]
    again, _, _ = _build(tmp_path, "version: n1")  # n1 is still readable, bit for bit
    assert again["version"] == str(n1)

    # the mixture moves on to the current version: its pin moves with it, and n1 may now expire
    _build(tmp_path, "")
    n3 = snapshot_id(wh.table("corpus"), "n3")
    assert pins(wh.table("corpus")) == {f"pin/mixture/pinned@{n3}": n3}
    expire_versions(wh.table("corpus"), keep=1)
    assert [v["run_id"] for v in versions(wh.table("corpus"))] == ["n3"]

    # by hand: pin for a training run, list, release
    args = ["tables", "pin", "--table", "corpus", "--to", "n3", "--holder", "run/phi-test"]
    assert curation_cli(args) == 0
    assert set(pins(wh.table("corpus"))) == {f"pin/mixture/pinned@{n3}", f"pin/run/phi-test@{n3}"}
    assert curation_cli(["tables", "unpin", "--table", "corpus", "--holder", "run/phi-test"]) == 0
    assert set(pins(wh.table("corpus"))) == {f"pin/mixture/pinned@{n3}"}
    assert curation_cli(["tables", "unpin", "--table", "corpus", "--tag", "pin/nope@1"]) != 0
    assert "no pin 'pin/nope@1'" in capsys.readouterr().err
