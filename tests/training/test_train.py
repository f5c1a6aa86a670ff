"""Pretraining (issue 8) on real text: the tiny preset on a real `python -m training mixture build` output.

The build's sources are contract datasets made from the shared samples by tests/fixtures/mixture/sources.py
(Dolma CC web pages with fasttext language ID; DCLM pages with their human quality label): phase 1 is the
web data, phase 2 the human-rated high-quality pages plus a web replay, as in a Phi-3-style two-phase mix.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from fixtures.mixture.sources import build_quality, build_web

from training.checkpoint import latest_checkpoint, list_checkpoints
from training.cli import main as training_cli
from training.config import RunConfig, load_config
from training.data import Permutation, TrainLoader, Windows, read_mixture, window_ids
from training.model import PRESETS, build_model, count_params, flops_per_token, phi3_config
from training.report import read_metrics
from training.schedule import WSD, wsd_from_config

REPO = Path(__file__).resolve().parents[2]
SEQ = 64

MIXTURE = """\
name: train-test
seed: 0
seq_len: 64
heldout_fraction: 0.1
shard_tokens: 150000              # several shards per phase: the loader crosses shard boundaries
tokenizer:
  train: {{vocab_size: 1024, sample_documents: 2000}}
phases:
  - name: phase1
    tokens: 600000
    sources:
      - {{name: web, dataset: "{web}", weight: 1.0, max_epochs: 2}}
  - name: phase2
    tokens: 150000
    sources:
      - {{name: hq, dataset: "{quality}", filter: "quality_label = 1", weight: 0.7, max_epochs: 4}}
      - {{name: web_replay, dataset: "{web}", weight: 0.3, max_epochs: 2}}
"""


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def mixture(shared_data: Path, models: Path, tmp_path_factory) -> Path:
    """`python -m training mixture build` of a two-phase mixture over real contract datasets."""
    root = tmp_path_factory.mktemp("train_mixture")
    web = build_web(shared_data, models, root / "sources" / "web").parent
    quality = build_quality(shared_data, models, root / "sources" / "dclm_quality").parent
    (root / "mix.yaml").write_text(MIXTURE.format(web=web, quality=quality))
    assert training_cli(["mixture", "build", str(root / "mix.yaml"), "--output", str(root / "build")]) == 0
    return root / "build"


def run_config(mixture: Path, out_dir: Path, **overrides) -> dict:
    """The tiny CPU config of configs/train/tiny-cpu.yaml, pointed at the test mixture."""
    cfg = yaml.safe_load((REPO / "configs" / "train" / "tiny-cpu.yaml").read_text())
    cfg.update(mixture=str(mixture), out_dir=str(out_dir), **overrides)
    return cfg


def write_config(tmp_path: Path, cfg: dict, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_cli(config: Path, *extra: str, nproc: int = 1, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if nproc == 1:
        cmd = [sys.executable, "-m", "training", "run", str(config), *extra]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "training",
            "run",
            str(config),
            *extra,
        ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def train_curve(out_dir: Path) -> list[tuple[str, int, float]]:
    return [
        (r["phase"], r["global_step"], r["loss"])
        for r in read_metrics(out_dir / "metrics.jsonl")
        if r["kind"] == "train"
    ]


# ---------------------------------------------------------------------------------------------- units
def test_presets_build_phi3_shapes():
    cfg = phi3_config("125m", vocab_size=32000, seq_len=2048, eos_id=0)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size) == (768, 12, 32000)
    assert phi3_config("tiny", vocab_size=1000, seq_len=64, eos_id=0).vocab_size == 1024  # padded to 64
    mini = phi3_config("phi3-mini", vocab_size=32064, seq_len=4096, eos_id=0)
    # the analytic FLOPs count uses the same parameter count the model has (built on the meta device: no
    # memory)
    with torch.device("meta"):
        n = count_params(build_model(mini))
    assert 3.7e9 < n < 3.9e9
    assert flops_per_token(mini, 4096) == pytest.approx(6 * n + 12 * 32 * 3072 * 4096)
    with pytest.raises(ValueError, match="preset 'huge' unknown"):
        phi3_config("huge", 100, 64, 0)
    assert set(PRESETS) == {"tiny", "125m", "350m", "1b", "phi3-mini"}


def test_causal_sdpa_builds_no_mask_even_compiled_and_matches_hf_attention(monkeypatch):
    """The default attention takes SDPA's is_causal path (flash on GPU) eager and under torch.compile, where
    transformers' 'sdpa' materialises a mask, and computes the same function as HF's eager attention."""
    torch.manual_seed(0)
    hf_eager = build_model(phi3_config("tiny", 256, 32, 0, attn_implementation="eager"))
    ours = build_model(phi3_config("tiny", 256, 32, 0))
    ours.load_state_dict(hf_eager.state_dict())
    calls, sdpa = [], torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append((kwargs.get("attn_mask") is None, kwargs.get("is_causal")))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    x = torch.randint(0, 256, (2, 32))
    expected = hf_eager(input_ids=x).logits
    assert calls == []
    torch.testing.assert_close(ours(input_ids=x).logits, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        torch.compile(ours, backend="eager")(input_ids=x).logits, expected, rtol=1e-5, atol=1e-5
    )
    assert len(calls) == 2 * 2 and set(calls) == {(True, True)}  # 2 layers x (eager, compiled): no mask


def test_checkpoints_are_atomic_keep_the_last_k_and_restore_exactly(tmp_path):
    from training import checkpoint

    torch.manual_seed(0)
    model = build_model(phi3_config("tiny", 256, 32, 0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (2, 33))
    for step in (2, 4, 6):
        model(input_ids=x[:, :-1], labels=x[:, 1:]).loss.backward()
        opt.step()
        opt.zero_grad()
        checkpoint.save(tmp_path, step, model, opt, {"phase_step": step}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000004", "step-00000006"]
    # a save killed half way leaves only a .tmp folder, which is never loaded
    (tmp_path / "step-00000008.tmp").mkdir()
    (tmp_path / "step-00000008.tmp" / "__0_0.distcp").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).name == "step-00000006"
    fresh = build_model(phi3_config("tiny", 256, 32, 0))
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    assert checkpoint.load(latest_checkpoint(tmp_path), fresh, fresh_opt) == {"phase_step": 6}
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for p_old, p_new in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(opt.state[p_old]["exp_avg_sq"], fresh_opt.state[p_new]["exp_avg_sq"])
    # the next save replaces the stale .tmp
    checkpoint.save(tmp_path, 8, model, opt, {"phase_step": 8}, keep=2)
    assert (
        latest_checkpoint(tmp_path).name == "step-00000008" and not (tmp_path / "step-00000008.tmp").exists()
    )


def test_wsd_schedule_warmup_stable_decay():
    s = WSD(peak_lr=1.0, warmup_steps=10, decay_start=60, total_steps=100, shape="linear", min_lr_ratio=0.1)
    lrs = [s.lr(i) for i in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == 1.0  # linear warmup
    assert set(lrs[10:60]) == {1.0}  # stable
    assert all(a > b for a, b in itertools.pairwise(lrs[60:]))  # strictly decaying
    assert lrs[99] == pytest.approx(0.1)  # reaches min_lr at the last step
    with pytest.raises(ValueError, match="warmup_steps"):
        WSD(1.0, warmup_steps=50, decay_start=40, total_steps=100)


def test_wsd_decay_starts_at_phase2(mixture, tmp_path):
    cfg = RunConfig.model_validate(
        run_config(mixture, tmp_path, schedule={"warmup_steps": 2, "decay_start": "phase2"})
    )
    s = wsd_from_config(cfg)
    n1 = cfg.phase_steps("phase1")
    assert s.decay_start == n1 and s.total_steps == n1 + cfg.phase_steps("phase2")
    assert s.lr(n1 - 1) == cfg.optimizer.lr > s.lr(n1)


def test_permutation_is_a_bijection_and_seeded():
    for n in (1, 7, 1000, 4097):
        perm = Permutation(n, seed=3, epoch=0)(np.arange(n))
        assert sorted(perm.tolist()) == list(range(n))
    a = Permutation(1000, seed=3, epoch=0)(np.arange(1000))
    assert not np.array_equal(a, Permutation(1000, seed=3, epoch=1)(np.arange(1000)))  # reshuffled per epoch
    assert not np.array_equal(a, Permutation(1000, seed=4, epoch=0)(np.arange(1000)))
    assert np.array_equal(a, Permutation(1000, seed=3, epoch=0)(np.arange(1000)))
    # positions past the end wrap into the next epoch's permutation
    assert np.array_equal(
        window_ids(1000, 3, np.arange(1000, 1010)), Permutation(1000, seed=3, epoch=1)(np.arange(10))
    )


def test_loader_is_deterministic_and_rank_slices_partition_the_step(mixture):
    build = read_mixture(mixture)
    windows = Windows(build.train["phase1"], build.dtype, SEQ)
    one = TrainLoader(windows, seed=0, global_batch=8, micro_batch=2, rank=0, world_size=1)
    two = [TrainLoader(windows, seed=0, global_batch=8, micro_batch=2, rank=r, world_size=2) for r in (0, 1)]
    for _step in range(3):
        full = one.next()
        assert full.shape == (4, 2, SEQ + 1)
        halves = torch.cat([ld.next().flatten(0, 1) for ld in two])
        assert torch.equal(full.flatten(0, 1), halves)  # same sequences, split across ranks
    # resuming from state gives the same next batch
    state = one.state_dict()
    expected = one.next()
    again = TrainLoader(windows, seed=0, global_batch=8, micro_batch=2, rank=0, world_size=1)
    again.load_state_dict(state)
    assert torch.equal(again.next(), expected)
    # each sequence is window k of a shard file: tokens [k*SEQ, k*SEQ + SEQ + 1) read straight from disk
    files = build.train["phase1"]
    shards = [np.fromfile(p, dtype=build.dtype).astype(np.int64) for p in files.paths]
    per_shard = [(len(t) - 1) // SEQ for t in shards]
    ids = window_ids(windows.count, 0, np.arange(3 * 8, 4 * 8))  # step 3 of a global batch of 8
    for row, w in zip(expected.flatten(0, 1).numpy(), ids):
        s = 0
        while w >= per_shard[s]:
            w, s = w - per_shard[s], s + 1
        assert np.array_equal(row, shards[s][w * SEQ : w * SEQ + SEQ + 1])
    assert len(files.paths) > 1 and len(set(ids.tolist())) == 8
    for ld in (one, again, *two):
        ld.close()
    with pytest.raises(ValueError, match="seed was 0, now 1"):
        TrainLoader(windows, seed=1, global_batch=8, micro_batch=2, rank=0, world_size=1).load_state_dict(
            state
        )


def test_manifest_errors_name_file_and_field(mixture, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(FileNotFoundError, match="manifest.json not found"):
        read_mixture(bad)
    manifest = json.loads((mixture / "manifest.json").read_text())
    manifest["phases"][0]["shards"][0]["tokens"] += 1
    (bad / "manifest.json").write_text(json.dumps(manifest))
    for phase in ("phase1", "phase2"):
        (bad / phase).symlink_to(mixture / phase)
    with pytest.raises(
        ValueError,
        match=r"phases\[0\] \(phase1\): shard .*shard-00000.bin has \d+ bytes but "
        r"manifest.json says tokens=",
    ):
        read_mixture(bad)
    del manifest["tokenizer"]["eos_id"]
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="field tokenizer.eos_id missing"):
        read_mixture(bad)


def test_config_errors_name_field_and_value(mixture, tmp_path):
    cfg = run_config(mixture, tmp_path, micro_batch=3)
    with pytest.raises(ValueError, match="not divisible by micro_batch=3"):
        load_config(write_config(tmp_path, cfg)).grad_accum(1)
    cfg = run_config(mixture, tmp_path, preset="7b")
    with pytest.raises(ValueError, match=r"preset: .*got '7b'"):
        load_config(write_config(tmp_path, cfg))
    cfg = run_config(mixture, tmp_path, checkpoint_every=7, log_every=5)
    with pytest.raises(ValueError, match="checkpoint_every=7 must be a multiple of log_every=5"):
        load_config(write_config(tmp_path, cfg))
    cfg = run_config(mixture, tmp_path, learning_rate=1.0)
    with pytest.raises(ValueError, match=r"learning_rate: Extra inputs are not permitted"):
        load_config(write_config(tmp_path, cfg))


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_tiny_loss_falls_on_real_text_and_phase2_continues_into_decay(mixture, tmp_path):
    out = tmp_path / "run"
    config = write_config(
        tmp_path,
        run_config(
            mixture,
            out,
            eval_tokens=32768,
            eval_every=40,
            phases={"phase1": {"steps": 80}, "phase2": {"steps": 20}},
        ),
    )
    early = train_cli(config, "--phase", "phase2", check=False)  # phase 2 needs phase 1's final checkpoint
    assert early.returncode == 2 and "run phase1 first" in early.stderr
    train_cli(config, "--phase", "phase1")  # each phase runs alone
    train_cli(config, "--phase", "phase2")
    records = read_metrics(out / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    evals = {(r["global_step"], r["source"]): r["loss"] for r in records if r["kind"] == "eval"}
    cfg = load_config(tmp_path / "run.yaml")
    n1, n2 = cfg.phase_steps("phase1"), cfg.phase_steps("phase2")
    # held-out web loss: the untrained model is near ln(vocab); after phase 1 it is > 1 nat lower and beats
    # the unigram model of the training tokens (it learned context, not only token frequencies)
    build = read_mixture(mixture)
    train_tokens = np.concatenate([np.fromfile(p, dtype=build.dtype) for p in build.train["phase1"].paths])
    held = Windows(build.heldout["phase1"]["web"], build.dtype, SEQ)
    targets = held.gather(np.arange(min(held.count, 32768 // SEQ)))[:, 1:]  # exactly the eval's targets
    unigram = np.bincount(train_tokens, minlength=build.vocab_size) + 1.0
    unigram_xent = -np.log(unigram[targets] / unigram.sum()).mean()
    assert evals[(0, "phase1/web")] > 6.5
    assert evals[(n1, "phase1/web")] < evals[(0, "phase1/web")] - 1.0
    assert evals[(n1, "phase1/web")] < unigram_xent - 0.3
    assert train[-1]["loss"] < train[0]["loss"] - 0.8
    # phase 2 starts from phase 1's final checkpoint: its global steps continue, the LR is the same schedule
    p2 = [r for r in train if r["phase"] == "phase2"]
    assert p2[0]["global_step"] == n1 + cfg.log_every and p2[-1]["global_step"] == n1 + n2
    sched = wsd_from_config(cfg)
    assert all(r["lr"] == pytest.approx(sched.lr(r["global_step"] - 1)) for r in train)
    assert p2[-1]["lr"] < p2[0]["lr"] <= cfg.optimizer.lr  # decaying through phase 2
    # and phase 2 improves the phase-2 held-out 'hq' loss
    assert evals[(n1 + n2, "phase2/hq")] < evals[(n1, "phase2/hq")]
    assert latest_checkpoint(out / "checkpoints" / "phase1").name == f"step-{n1:08d}"
    assert len(list_checkpoints(out / "checkpoints" / "phase1")) <= cfg.keep_checkpoints
    assert (out / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_kill_and_resume_gives_a_bit_identical_loss_curve(mixture, tmp_path):
    cfg = run_config(
        mixture,
        tmp_path / "straight",
        checkpoint_every=4,
        log_every=1,
        eval_every=1000,
        phases={"phase1": {"steps": 12}, "phase2": {"steps": 8}},
    )
    train_cli(write_config(tmp_path, cfg, "straight.yaml"))
    reference = train_curve(tmp_path / "straight")

    cfg["out_dir"] = str(tmp_path / "killed")
    config = write_config(tmp_path, cfg, "killed.yaml")
    n1 = cfg["phases"]["phase1"]["steps"]
    for kill_at in (6, n1 + 3):  # mid phase 1 (between checkpoints), then mid phase 2
        proc = train_cli(config, "--fail-at-step", str(kill_at), check=False)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        assert max(s for _, s, _ in train_curve(tmp_path / "killed")) == kill_at
    train_cli(config)
    resumed = train_curve(tmp_path / "killed")
    assert [s for _, s, _ in resumed] == [s for _, s, _ in reference]
    assert resumed == reference  # exact float equality, every step, both phases


@pytest.mark.slow
def test_two_process_ddp_and_fsdp_equal_one_process(mixture, tmp_path):
    """torchrun --nproc_per_node=2 with gloo: same global batch, so the same loss curve within fp
    tolerance."""
    base = dict(
        log_every=1,
        eval_every=1000,
        checkpoint_every=1000,
        phases={"phase1": {"steps": 8}},
        schedule={"warmup_steps": 2, "decay_fraction": 0.25},
    )
    train_cli(write_config(tmp_path, run_config(mixture, tmp_path / "one", **base), "one.yaml"))
    one = train_curve(tmp_path / "one")
    assert [s for _, s, _ in one] == list(range(1, 9)) and one[-1][2] < one[0][2]
    for parallel in ("ddp", "fsdp"):
        cfg = run_config(mixture, tmp_path / parallel, parallel=parallel, **base)
        train_cli(write_config(tmp_path, cfg, f"{parallel}.yaml"), nproc=2)
        two = train_curve(tmp_path / parallel)
        assert [s for _, s, _ in two] == [s for _, s, _ in one]
        np.testing.assert_allclose([x for *_, x in two], [x for *_, x in one], rtol=2e-5, err_msg=parallel)
        # both ranks wrote their share of every DCP checkpoint
        assert (
            len(list((tmp_path / parallel / "checkpoints" / "phase1" / "step-00000008").glob("*.distcp")))
            == 2
        )


# ----------------------------------------------------------------------------------------- budgets (issue 17)
def test_a_run_asking_more_tokens_than_built_is_refused_before_step_0(mixture, tmp_path):
    from training.budget import budget_problems

    built = read_mixture(mixture)
    phase1 = next(p for p in built.manifest["phases"] if p["name"] == "phase1")
    steps = phase1["tokens"] // 1024 + 50  # 1,024 tokens per step: past the build
    out = tmp_path / "over"
    config = write_config(tmp_path, run_config(mixture, out, phases={"phase1": {"steps": steps}}))
    proc = train_cli(config, check=False)
    assert proc.returncode != 0
    assert (
        f"{steps * 1024:,} tokens" in proc.stderr
        and f"built {phase1['tokens']:,} training tokens" in proc.stderr
    )
    assert "allow_repetition" in proc.stderr
    assert not (out / "metrics.jsonl").exists() and not (out / "checkpoints").exists()  # nothing trained

    # allow_repetition: up to the tightest source's max_epochs / the epochs the build already spent on it
    web = phase1["sources"][0]
    max_passes = web["max_epochs"] / web["epochs"]
    served = sum((t - 1) // SEQ for t in built.train["phase1"].tokens) * SEQ
    within = int(served * min(max_passes, 1.5)) // 1024
    cfg = RunConfig.model_validate(
        run_config(mixture, out, allow_repetition=True, phases={"phase1": {"steps": within}})
    )
    assert within * 1024 > served and budget_problems(cfg, built) == []
    beyond = int(served * max_passes) // 1024 + 20
    cfg = RunConfig.model_validate(
        run_config(mixture, out, allow_repetition=True, phases={"phase1": {"steps": beyond}})
    )
    [problem] = budget_problems(cfg, built)
    assert f"permits {max_passes:.2f} passes" in problem and "'web'" in problem


def test_shipped_run_configs_fit_the_budgets_of_the_mixtures_they_read():
    """Each configs/train/*.yaml reads out/mixtures/<name>, built from configs/mixtures/<name>.yaml (or the
    demo's): its steps x tokens/step must fit the phase budget minus the < seq_len tokens each shard may leave
    unread."""
    for path in sorted((REPO / "configs" / "train").glob("*.yaml")):
        cfg = load_config(path)
        mix_yaml = REPO / "configs" / "mixtures" / f"{Path(cfg.mixture).name}.yaml"
        mix = yaml.safe_load(mix_yaml.read_text())
        assert not cfg.allow_repetition, path
        for phase in mix["phases"]:
            if phase["name"] not in cfg.phases:
                continue
            shards = -(-phase["tokens"] // mix["shard_tokens"])
            servable = phase["tokens"] - shards * mix["seq_len"]
            asked = cfg.phase_steps(phase["name"]) * cfg.global_batch_tokens
            assert asked <= servable, (
                f"{path.name} {phase['name']}: asks {asked:,}, {mix_yaml.name} builds {servable:,}"
            )
