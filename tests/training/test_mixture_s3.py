"""Mixture sources on object storage (issue 16), against moto's S3 server: a dataset root with CURRENT and a
folder of plain JSONL.gz, uploaded from a local tree, build the same mixture as the local tree (same token
shards, same per-source counts and content hashes), and the build manifest records what it read (the resolved
objects, and the version id of the dataset version). Real documents (the dolma CC sample)."""

from __future__ import annotations

import gzip
import hashlib
import json
import textwrap

import pyarrow.parquet as pq
import pytest
from manifest_helpers import make_manifest
from tables_helpers import BUCKET, moto_s3, real_docs, to_table

from curation.contract import StageCounts
from training.mixture.build import build


@pytest.fixture
def local_tree(shared_data, tmp_path):
    """web/ : a dataset root (CURRENT -> v1, two data files, a rejects file that must not be read);
    plain/: a JSONL.gz file beside a README."""
    docs = real_docs(shared_data, 90)
    root = tmp_path / "tree"
    v1 = root / "web" / "v1"
    (v1 / "data").mkdir(parents=True)
    (v1 / "rejects").mkdir()
    pq.write_table(to_table(docs[:30]), v1 / "data" / "part-0.parquet")
    pq.write_table(to_table(docs[30:60]), v1 / "data" / "part-1.parquet")
    pq.write_table(to_table(docs[60:62]), v1 / "rejects" / "part-0.parquet")
    make_manifest(
        "web",
        "v1",
        60,
        columns=list(to_table(docs[:1]).schema.names),
        stages=[StageCounts(stage="curate", rows_in=60, rows_kept=60, rows_rejected=0)],
    ).write(v1)
    (root / "web" / "CURRENT").write_text("v1\n")
    (root / "plain").mkdir()
    lines = "".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in docs[62:90])
    (root / "plain" / "docs.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    (root / "plain" / "README").write_text("not a document")
    return root


def _mixture_yaml(tmp_path, name: str, web: str, plain: str):
    y = tmp_path / f"{name}.yaml"
    y.write_text(
        textwrap.dedent(f"""\
        name: {name}
        seed: 5
        seq_len: 64
        tokenizer:
          train: {{vocab_size: 512, sample_documents: 80}}
        phases:
          - name: p1
            tokens: 60000
            sources:
              - {{name: web, dataset: "{web}", weight: 0.6, max_epochs: 20}}
              - {{name: plain, dataset: "{plain}", weight: 0.4, max_epochs: 20}}
        """)
    )
    return y


def _build(tmp_path, name: str, web: str, plain: str) -> tuple[dict, dict[str, str]]:
    """(the sources' manifest entries by name, sha256 of every file of the phase)"""
    out = tmp_path / f"build-{name}"
    result = build(_mixture_yaml(tmp_path, name, web, plain), out)
    shards = {
        str(p.relative_to(out / "p1")): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "p1").rglob("*.bin"))
    }
    return {s["name"]: s for s in result.manifest["phases"][0]["sources"]}, shards


def _upload(local_tree, prefix: str = "tree"):
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    for p in local_tree.rglob("*"):
        if p.is_file():
            fs.put_file(str(p), f"{BUCKET}/{prefix}/{p.relative_to(local_tree)}")
    return fs


def test_a_mixture_from_s3_equals_the_one_from_the_local_copy(local_tree, tmp_path):
    local, local_shards = _build(tmp_path, "local", str(local_tree / "web"), str(local_tree / "plain"))
    with moto_s3(tmp_path) as _:
        _upload(local_tree)
        remote, remote_shards = _build(
            tmp_path, "remote", f"s3://{BUCKET}/tree/web", f"s3a://{BUCKET}/tree/plain/"
        )
    assert local_shards and remote_shards == local_shards
    for name in ("web", "plain"):
        counted = ("documents", "tokens", "content_hash", "version")
        assert {k: remote[name][k] for k in counted} == {k: local[name][k] for k in counted}, name
    assert remote["web"]["version"] == "v1" and remote["web"]["dataset"] == f"s3://{BUCKET}/tree/web/v1"
    assert remote["web"]["files"] == [
        f"s3://{BUCKET}/tree/web/v1/data/part-0.parquet",
        f"s3://{BUCKET}/tree/web/v1/data/part-1.parquet",
    ]
    assert local["web"]["files"] == [
        str(local_tree / "web" / "v1" / "data" / f"part-{i}.parquet") for i in (0, 1)
    ]
    assert remote["plain"]["files"] == [f"s3a://{BUCKET}/tree/plain/docs.jsonl.gz"]
    assert remote["plain"]["version"] is None


def test_s3_sources_resolve_versions_and_registry_roots_or_say_what_is_missing(local_tree, tmp_path):
    from training.mixture import sources as S

    with moto_s3(tmp_path) as _:
        _upload(local_tree / "web", "web")
        root = f"s3://{BUCKET}/web"
        pinned = S.resolve(root, "v1", {}, tmp_path)
        via_registry = S.resolve("web", None, S.load_registry(_registry(tmp_path, root)), tmp_path)
        assert pinned.version == via_registry.version == "v1" and pinned.files == via_registry.files
        assert pinned.label == f"{root}/v1" and via_registry.reference == "web"
        with pytest.raises(
            FileNotFoundError, match=r"dataset 's3://phi-lake/web' has no published version 'v9'"
        ):
            S.resolve(root, "v9", {}, tmp_path)
        with pytest.raises(FileNotFoundError, match=r"matches no file"):
            S.resolve(f"s3://{BUCKET}/nothing-here/", None, {}, tmp_path)


def test_the_mixture_dag_keys_s3_inputs_by_version_and_by_object(local_tree, tmp_path):
    """mixture_build skips a build whose inputs did not change: a dataset version on S3 is keyed by its URI
    (versions are immutable), a plain object by its size and ETag, so replacing it changes the key."""
    from dags.lib.train import input_versions
    from training.mixture.validate import check_mixture

    with moto_s3(tmp_path) as _:
        fs = _upload(local_tree)
        y = _mixture_yaml(tmp_path, "keyed", f"s3://{BUCKET}/tree/web", f"s3://{BUCKET}/tree/plain/")
        key, inputs = input_versions(check_mixture(y))
        assert inputs["p1/web"] == f"s3://{BUCKET}/tree/web/v1"
        [stamp] = inputs["p1/plain"]
        assert stamp.startswith(f"s3://{BUCKET}/tree/plain/docs.jsonl.gz:")
        assert input_versions(check_mixture(y))[0] == key
        plain = local_tree / "plain" / "docs.jsonl.gz"
        lines = gzip.decompress(plain.read_bytes()).decode().splitlines(keepends=True)
        fs.pipe_file(f"{BUCKET}/tree/plain/docs.jsonl.gz", gzip.compress("".join(lines[:-1]).encode()))
        assert input_versions(check_mixture(y))[0] != key


def _registry(tmp_path, root: str):
    path = tmp_path / "registry.yaml"
    path.write_text(f"datasets:\n  web: {root}\n")
    return path
