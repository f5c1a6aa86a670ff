"""Mixture build end to end on real contract datasets: round trip (shards decode back to the source
documents), realised ratios measured from the shards, held-out documents never in training shards,
determinism (same YAML + seed -> byte-identical shards, in-process or with worker processes), incremental
rebuilds, a loaded tokenizer folder, and the SQL reports."""

from __future__ import annotations

import filecmp
import json
import shutil
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pytest
from fixtures.mixture.sources import build_all, build_edu
from tokenizers import Tokenizer

from training.cli import main as cli_main
from training.mixture.build import build
from training.mixture.report import run_report
from training.shards import document_offsets, open_shard, token_dtype

pytestmark = pytest.mark.slow

MIXTURE = """\
name: test-mix
seed: 11
seq_len: 128
heldout_fraction: 0.05
shard_tokens: 60000
tokenizer:
  train: {{vocab_size: 1024, sample_documents: 400}}
phases:
  - name: phase1
    tokens: 400000
    sources:
      - name: web
        dataset: {web}
        filter: "length(text) < 6000"
        weight: 0.7
        max_epochs: 3
      - name: edu
        dataset: {edu}
        weight: 0.3
        max_epochs: 2
  - name: phase2
    tokens: 150000
    sources:
      - name: edu_hi
        dataset: {edu}
        filter: "edu_score >= 1"
        weight: 0.5
        max_epochs: 3
      - name: quality
        dataset: {quality}
        filter: "quality_label = 1"
        weight: 0.5
        max_epochs: 3
"""
PHASE_SOURCES = {
    "phase1": {"web": ("web", "length(text) < 6000"), "edu": ("edu", None)},
    "phase2": {"edu_hi": ("edu", "edu_score >= 1"), "quality": ("quality", "quality_label = 1")},
}


@pytest.fixture(scope="module")
def env(tmp_path_factory, shared_data, models):
    root = tmp_path_factory.mktemp("mixture_build")
    built = build_all(shared_data, models, root / "sources")
    srcs = {k: v.parent for k, v in built.items()}
    yaml_path = root / "mix.yaml"
    yaml_path.write_text(MIXTURE.format(**{k: str(v) for k, v in srcs.items()}))
    result = build(yaml_path, root / "build")
    return {
        "root": root,
        "srcs": srcs,
        "yaml": yaml_path,
        "result": result,
        "out": root / "build",
        "shared": shared_data,
        "models": models,
    }


def source_texts(srcs: dict[str, Path], dataset: str, where: str | None) -> dict[str, str]:
    sql = f"SELECT id, text FROM read_parquet('{srcs[dataset]}/v1/data/*.parquet')"
    rows = duckdb.sql(sql + (f" WHERE {where}" if where else "")).fetchall()
    return {i: t for i, t in rows if t}


def read_docs(folder: Path, shards: list[dict], dtype) -> list[np.ndarray]:
    """Every document of the shards, split at the shard index offsets."""
    docs = []
    for sh in shards:
        toks = np.asarray(open_shard(folder / sh["file"], dtype))
        offs = document_offsets(folder / sh["file"])
        assert len(toks) == sh["tokens"] and len(offs) == sh["documents"]
        docs += np.split(toks, offs[1:])
    return docs


def test_layout_and_manifest(env):
    out, m = env["out"], env["result"].manifest
    assert json.loads((out / "manifest.json").read_text()) == m
    assert m["dtype"] == "uint16" == token_dtype(m["tokenizer"]["vocab_size"]).name
    assert m["tokenizer"]["vocab_size"] == 1024 and m["tokenizer"]["eos_id"] == 0
    assert m["mixture_yaml"] == env["yaml"].read_text()
    tok = Tokenizer.from_file(str(out / m["tokenizer"]["path"] / "tokenizer.json"))
    assert tok.id_to_token(m["tokenizer"]["eos_id"]) == "<|endoftext|>"
    for phase in m["phases"]:
        assert sum(s["tokens"] for s in phase["shards"]) == phase["tokens"] >= phase["budget"]
        assert len(phase["shards"]) >= 2  # shard_tokens 60,000 forces roll-over
        for s in phase["sources"]:
            assert {
                "documents",
                "tokens",
                "epochs",
                "content_hash",
                "target_weight",
                "realised_weight",
            } <= set(s)
            assert s["epochs"] == pytest.approx(s["tokens"] / s["available_tokens"])


def test_documents_without_text_are_counted_not_lost(env):
    """The Dolma sample has documents whose extracted text is empty: skipped, and counted in the manifest."""
    empty = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{env['srcs']['web']}/v1/data/*.parquet')"
        " WHERE (text IS NULL OR text = '') AND length(text) < 6000"
    ).fetchall()[0][0]
    web = env["result"].manifest["phases"][0]["sources"][0]
    assert empty > 0 and web["skipped_empty"] == empty
    kept = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{env['srcs']['web']}/v1/data/*.parquet')"
        " WHERE text <> '' AND length(text) < 6000"
    ).fetchall()[0][0]
    assert web["available_documents"] + web["heldout_documents"] == kept


def test_output_that_is_not_a_build_is_never_replaced(env, tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match="is not a mixture build"):
        build(env["yaml"], tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_round_trip_decodes_to_the_source_documents(env):
    out, m = env["out"], env["result"].manifest
    tok = Tokenizer.from_file(str(out / "tokenizer" / "tokenizer.json"))
    eos = m["tokenizer"]["eos_id"]
    for phase in m["phases"]:
        folder = out / phase["dir"]
        docs = read_docs(folder, phase["shards"], np.dtype(m["dtype"]))
        table = duckdb.sql(
            f"SELECT source, id FROM '{folder}/documents.parquet' WHERE split = 'train'"
        ).fetchall()
        assert len(docs) == len(table)
        texts = {
            name: source_texts(env["srcs"], *spec) for name, spec in PHASE_SOURCES[phase["name"]].items()
        }
        for tokens, (source, doc_id) in zip(docs, table):
            assert tokens[-1] == eos and eos not in tokens[:-1]
            assert tok.decode(tokens[:-1].tolist(), skip_special_tokens=False) == texts[source][doc_id]


def test_realised_ratios_measured_from_the_shards(env):
    """Attribute every document in the training shards to its source by decoding it and finding its text."""
    out, m = env["out"], env["result"].manifest
    tok = Tokenizer.from_file(str(out / "tokenizer" / "tokenizer.json"))
    for phase in m["phases"]:
        owner = {}
        for name, spec in PHASE_SOURCES[phase["name"]].items():
            owner.update({t: name for t in source_texts(env["srcs"], *spec).values()})
        tokens_by_source: dict[str, int] = {}
        docs = read_docs(out / phase["dir"], phase["shards"], np.dtype(m["dtype"]))
        for text, d in zip(tok.decode_batch([d[:-1].tolist() for d in docs]), docs):
            tokens_by_source[owner[text]] = tokens_by_source.get(owner[text], 0) + len(d)
        total = sum(tokens_by_source.values())
        for s in phase["sources"]:
            realised = tokens_by_source[s["name"]] / total
            assert realised == pytest.approx(s["realised_weight"], abs=1e-12)
            assert abs(realised - s["target_weight"]) < 0.005, (phase["name"], s["name"], realised)


def test_blend_tracks_the_targets_at_every_point(env):
    """Megatron-style: at every prefix of a phase the realised shares stay within a couple of documents of
    the targets (not just at the end)."""
    out, m = env["out"], env["result"].manifest
    for phase in m["phases"]:
        rows = duckdb.sql(
            f"SELECT source, tokens FROM '{out / phase['dir']}/documents.parquet' WHERE split = 'train'"
        ).fetchall()  # in write order
        targets = {s["name"]: s["target_weight"] for s in phase["sources"]}
        longest = max(t for _, t in rows)
        emitted = dict.fromkeys(targets, 0)
        total = 0
        for source, tokens in rows:
            emitted[source] += tokens
            total += tokens
            for name, w in targets.items():
                assert abs(emitted[name] - w * total) <= 2 * longest, (phase["name"], total, name)


def test_document_table_points_at_each_document_in_the_shards(env):
    out, m = env["out"], env["result"].manifest
    dtype = np.dtype(m["dtype"])
    for phase in m["phases"]:
        folder = out / phase["dir"]
        rows = duckdb.sql(
            f"SELECT split, shard, \"offset\", tokens FROM '{folder}/documents.parquet'"
        ).fetchall()
        shards = {}
        for _split, shard, offset, tokens in rows:
            toks = shards.setdefault(shard, np.asarray(open_shard(folder / shard, dtype)))
            doc = toks[offset : offset + tokens]
            assert len(doc) == tokens and doc[-1] == m["tokenizer"]["eos_id"]
            assert m["tokenizer"]["eos_id"] not in doc[:-1]


def test_heldout_documents_never_reach_training_shards(env):
    out, m = env["out"], env["result"].manifest
    for phase in m["phases"]:
        rows = duckdb.sql(
            f"SELECT split, source, id FROM '{out / phase['dir']}/documents.parquet'"
        ).fetchall()
        held = {(s, i) for sp, s, i in rows if sp == "heldout"}
        train = {(s, i) for sp, s, i in rows if sp == "train"}
        assert held and not held & train
        for s in phase["sources"]:
            hs = phase["heldout"][s["name"]]
            assert sum(h["documents"] for h in hs) == s["heldout_documents"] > 0
            assert (out / phase["dir"] / hs[0]["file"]).is_file()
    # the same document (FineWeb-C edu) is held out in phase 1 and in its filtered phase-2 subset alike
    p1 = duckdb.sql(
        f"SELECT id FROM '{out}/phase1/documents.parquet' WHERE split='heldout' AND source='edu'"
    ).fetchall()
    p2 = duckdb.sql(
        f"SELECT id FROM '{out}/phase2/documents.parquet' WHERE source='edu_hi' AND split='train'"
    ).fetchall()
    assert not {i for (i,) in p1} & {i for (i,) in p2}


def test_same_yaml_and_seed_give_byte_identical_shards(env):
    again = env["root"] / "build_again"
    build(env["yaml"], again, workers=2)  # fresh folder, tokenizer retrained, worker processes
    m = env["result"].manifest
    assert json.loads((again / "manifest.json").read_text())["tokenizer"]["hash"] == m["tokenizer"]["hash"]
    for phase in m["phases"]:
        names = [s["file"] for s in phase["shards"]] + [
            h["file"] for hs in phase["heldout"].values() for h in hs
        ]
        match, mismatch, errors = filecmp.cmpfiles(
            env["out"] / phase["dir"], again / phase["dir"], names, shallow=False
        )
        assert not mismatch and not errors and len(match) == len(names)


def test_rebuild_with_one_source_changed_rebuilds_only_that(env):
    out = env["root"] / "build_incremental"
    shutil.copytree(env["out"], out)
    unchanged = build(env["yaml"], out)
    assert unchanged.rebuilt == [] and "phase phase1" in unchanged.reused
    # A new version of the DCLM source (phase 2 only): the tokenizer (phase-1 sample) and phase 1 stay.
    dclm = env["srcs"]["quality"]
    text = env["yaml"].read_text().replace("quality_label = 1", "quality_label = 1 AND length(text) > 300")
    changed_yaml = env["root"] / "mix_changed.yaml"
    changed_yaml.write_text(text)
    before = (out / "phase1" / "shard-00000.bin").stat().st_ino
    r = build(changed_yaml, out)
    assert r.rebuilt == ["source phase2/quality", "phase phase2"]
    assert "tokenizer" in r.reused and "phase phase1" in r.reused and "source phase2/edu_hi" in r.reused
    assert (out / "phase1" / "shard-00000.bin").stat().st_ino == before  # hard-linked, not rewritten
    q = next(s for s in r.manifest["phases"][1]["sources"] if s["name"] == "quality")
    old_q = next(s for s in env["result"].manifest["phases"][1]["sources"] if s["name"] == "quality")
    assert q["content_hash"] != old_q["content_hash"] and dclm.exists()
    # A change to a phase-1 source's data changes the tokenizer's sample: the build says it rebuilds all.
    build_edu(env["shared"], env["models"], env["srcs"]["edu"], version="v2", limit=700)
    r2 = build(changed_yaml, out)
    assert "tokenizer" in r2.rebuilt and "phase phase1" in r2.rebuilt and "phase phase2" in r2.rebuilt
    assert any("tokenizer changed: every source is re-tokenized" in n for n in r2.notes)
    assert r2.manifest["phases"][0]["sources"][1]["dataset"].endswith("/v2")


def test_loaded_tokenizer_folder_and_uint32_shards(env, tmp_path):
    """A user-given tokenizer folder is used as is; a vocab over 65,536 ids switches the shards to uint32."""
    from tokenizers import decoders, models, pre_tokenizers

    big = Tokenizer.from_file(str(env["out"] / "tokenizer" / "tokenizer.json"))
    vocab = dict(big.get_vocab())
    for k in range(70_000 - len(vocab)):
        vocab[f"<|pad_{k}|>"] = len(vocab)
    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
        for m in json.loads(big.to_str())["model"]["merges"]
    ]
    wide = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    wide.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    wide.decoder = decoders.ByteLevel()
    wide.add_special_tokens(["<|endoftext|>"])
    (tmp_path / "tok").mkdir()
    wide.save(str(tmp_path / "tok" / "tokenizer.json"))
    text = (
        env["yaml"]
        .read_text()
        .replace("train: {vocab_size: 1024, sample_documents: 400}", f"path: {tmp_path / 'tok'}")
    )
    text = text[: text.index("  - name: phase2")]
    y = tmp_path / "loaded.yaml"
    y.write_text(text)
    r = build(y, tmp_path / "out")
    m = r.manifest
    assert (
        m["tokenizer"]["how"] == "loaded"
        and m["dtype"] == "uint32"
        and m["tokenizer"]["vocab_size"] >= 70_000
    )
    assert (tmp_path / "out" / "tokenizer" / "tokenizer.json").read_bytes() == (
        tmp_path / "tok" / "tokenizer.json"
    ).read_bytes()
    p1 = m["phases"][0]
    first = read_docs(tmp_path / "out" / "phase1", p1["shards"][:1], np.dtype("<u4"))[0]
    assert first[-1] == m["tokenizer"]["eos_id"]


def test_sql_reports(env, capsys):
    out, m = env["out"], env["result"].manifest
    comp = run_report("composition", out).as_dicts()
    assert {(r["phase"], r["source"]) for r in comp} == {
        ("phase1", "web"),
        ("phase1", "edu"),
        ("phase2", "edu_hi"),
        ("phase2", "quality"),
    }
    for r in comp:
        assert abs(r["deviation"]) < 0.005
    by_source = run_report("tokens_by_source", out).as_dicts()
    train = {(r["phase"], r["source"]): r["tokens"] for r in by_source if r["split"] == "train"}
    for phase in m["phases"]:
        for s in phase["sources"]:
            assert train[(phase["name"], s["name"])] == s["tokens"]
    domains = run_report("tokens_by_domain", out).as_dicts()
    assert any(r["phase"] == "phase1" and r["sources"] == "web" and "." in r["domain"] for r in domains)
    edu = run_report("tokens_by_edu", out).as_dicts()
    buckets = {r["edu_bucket"] for r in edu if r["source"] == "edu_hi"}
    assert buckets and min(buckets) >= 1  # the phase-2 filter edu_score >= 1 shows in the report
    assert cli_main(["mixture", "report", "composition", "--build", str(out)]) == 0
    assert "phase1" in capsys.readouterr().out


def test_sql_compare_two_builds(env):
    other = env["root"] / "build_compare"
    text = (
        env["yaml"]
        .read_text()
        .replace("weight: 0.7", "weight: 0.6")
        .replace("weight: 0.3\n        max_epochs: 2", "weight: 0.4\n        max_epochs: 2")
    )
    y = env["root"] / "mix_compare.yaml"
    y.write_text(text)
    build(y, other)
    rows = {(r["phase"], r["source"]): r for r in run_report("compare", env["out"], other).as_dicts()}
    assert rows[("phase1", "web")]["change"] == "weight changed"
    assert rows[("phase1", "web")]["target_b"] == 0.6
    assert rows[("phase2", "quality")]["change"] == "same"


def test_cli_build_reports_what_it_did(env, tmp_path, capsys):
    y = tmp_path / "one_phase.yaml"
    text = env["yaml"].read_text()
    y.write_text(text[: text.index("  - name: phase2")])
    assert cli_main(["mixture", "build", str(y), "--output", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "phase1" in out and "rebuilt: tokenizer" in out


def test_the_trainer_reads_the_build(env):
    """The trainer's reader (training/data.py, issue 8) accepts the build: shards, sizes, held-out sources."""
    from training.data import read_mixture

    mb = read_mixture(env["out"])
    m = env["result"].manifest
    assert mb.vocab_size == m["tokenizer"]["vocab_size"] and mb.eos_id == m["tokenizer"]["eos_id"]
    assert set(mb.train) == {"phase1", "phase2"}
    assert set(mb.heldout["phase2"]) == {"edu_hi", "quality"}


def test_plain_parquet_glob_source_with_integer_ids(env, tmp_path):
    """Not every source is a published contract dataset: a parquet glob with integer ids builds too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [
        t
        for (t,) in duckdb.sql(
            f"SELECT text FROM read_parquet('{env['srcs']['quality']}/v1/data/*.parquet')"
            " WHERE quality_label = 1"
        ).fetchall()
    ]
    (tmp_path / "plain").mkdir()
    half = len(texts) // 2
    for k, part in enumerate((texts[:half], texts[half:])):
        pq.write_table(
            pa.table({"id": pa.array(range(k * half, k * half + len(part)), pa.int64()), "text": part}),
            tmp_path / "plain" / f"p{k}.parquet",
        )
    y = tmp_path / "plain.yaml"
    y.write_text(
        textwrap.dedent(f"""\
        name: plain
        seq_len: 64
        tokenizer: {{path: {env["out"] / "tokenizer"}}}
        phases:
          - name: only
            tokens: 20000
            sources:
              - {{name: good, dataset: "{tmp_path}/plain/*.parquet", weight: 1.0}}
        """)
    )
    r = build(y, tmp_path / "out")
    src = r.manifest["phases"][0]["sources"][0]
    assert src["available_documents"] + src["heldout_documents"] == len(texts)
    ids = duckdb.sql(f"SELECT id FROM '{tmp_path}/out/only/documents.parquet'").fetchall()
    assert all(i.isdigit() for (i,) in ids)


def test_heldout_fraction_zero_builds_every_document_into_training(env, tmp_path):
    """heldout_fraction 0.0 holds nothing out: no held-out shards or manifest entries, every document in
    the training split, and the trainer reads the build (it used to crash writing an empty, null-typed
    held-out table)."""
    from training.data import read_mixture

    y = tmp_path / "no_heldout.yaml"
    text = env["yaml"].read_text().replace("heldout_fraction: 0.05", "heldout_fraction: 0.0")
    y.write_text(text)
    r = build(y, tmp_path / "b")
    for phase in r.manifest["phases"]:
        assert phase["heldout"] == {}
        assert all(s["heldout_documents"] == 0 for s in phase["sources"])
        docs = duckdb.sql(
            f"SELECT split, count(*) FROM read_parquet('{tmp_path / 'b' / phase['dir']}/documents.parquet')"
            " GROUP BY split"
        ).fetchall()
        assert docs and {s for s, _ in docs} == {"train"}
    assert not list((tmp_path / "b").glob("*/heldout"))
    web = source_texts(env["srcs"], "web", "length(text) < 6000")
    web_with = env["result"].manifest["phases"][0]["sources"][0]
    web_without = r.manifest["phases"][0]["sources"][0]
    assert web_without["available_documents"] == len(web)  # nothing held out
    assert web_with["available_documents"] + web_with["heldout_documents"] == len(web)
    assert web_with["heldout_documents"] > 0
    mb = read_mixture(tmp_path / "b")
    assert set(mb.train) == {"phase1", "phase2"} and mb.heldout == {"phase1": {}, "phase2": {}}
