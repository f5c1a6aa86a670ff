"""The teacher backend registry is the one list of backends (config union, CLI choices, DAG enums read it),
and `TEACHER_BASE_URL` points label-edu / synthetic runs at an OpenAI-compatible endpoint (here the real
llama.cpp server on loopback, which speaks the same API as `vllm serve`)."""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation.paths import REPO_ROOT
from synthesis.teacher import BACKEND_KINDS, BACKENDS, TeacherConfig
from synthesis.teacher.backends.base import TeacherBackendError
from synthesis.teacher.backends.openai_http import OpenAIHttpConfig
from synthesis.teacher.endpoint import ENV, served_model


def _subcommand(name: str) -> argparse.ArgumentParser:
    from synthesis.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _choices(parser: argparse.ArgumentParser, flag: str) -> list[str]:
    return next(a for a in parser._actions if flag in a.option_strings).choices


def test_every_consumer_reads_the_registry(tmp_path_factory):
    union = {m.model_fields["kind"].default for m in (cls.config for cls in BACKENDS.values())}
    assert union == set(BACKEND_KINDS) == {"embedded", "openai_http", "transformers", "vllm"}
    for kind in BACKEND_KINDS:  # the YAML union accepts every registered kind
        needs = (
            {"base_url": "http://127.0.0.1:1/v1", "model": "m"}
            if kind == "openai_http"
            else ({"model": "m"} if kind == "vllm" else {})
        )
        assert TeacherConfig.model_validate({"backend": {"kind": kind, **needs}}).backend.kind == kind
    for cmd in ("generate", "label-edu", "run"):
        assert _choices(_subcommand(cmd), "--backend") == BACKEND_KINDS
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    for name in ("edu_classifier", "synthetic_data"):
        bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{name}.py"))
        assert bag.import_errors == {}
        params = bag.dags[name].params
        assert params.get_param("backend").schema["enum"] == [None, *BACKEND_KINDS]
        assert params.get_param("model").schema["type"] == ["null", "string"]


def _literal_kind_groups(path: Path) -> list[int]:
    """Line numbers of list/tuple/set/dict literals naming two or more backend kinds."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        elts = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)) and elts:
            named = {e.value for e in elts if isinstance(e, ast.Constant) and e.value in BACKENDS}
            if len(named) >= 2:
                lines.append(node.lineno)
    return lines


def test_no_module_lists_backends_by_hand():
    """Adding a backend touches its module in synthesis/teacher/backends/, its line in registry.py and a test:
    no other code may enumerate backend names (that is what made it 5-6 files before). bench/ may compare
    named backends; the pipeline's code and the DAGs may not list them."""
    offenders = {}
    for pkg in ("synthesis", "dags", "curation", "training"):
        for path in (REPO_ROOT / pkg).rglob("*.py"):
            found = _literal_kind_groups(path)
            if found:
                offenders[str(path.relative_to(REPO_ROOT))] = found
    assert offenders == {}


def _args(**kw) -> argparse.Namespace:
    base = {
        "backend": None,
        "model": None,
        "base_url": None,
        "concurrency": None,
        "batch_size": None,
        "tensor_parallel_size": None,
        "request_timeout": None,
        "max_attempts": None,
        "no_retry_failed": False,
    }
    return argparse.Namespace(**{**base, **kw})


def test_teacher_base_url_points_the_teacher_at_the_served_model(llama_server, monkeypatch):
    from synthesis.commands.generate import teacher_config

    monkeypatch.setenv(ENV, llama_server.base_url)
    assert served_model(llama_server.base_url) == llama_server.model_alias
    # the embedded default becomes openai_http on that URL, with the one model the endpoint serves
    cfg = teacher_config({}, _args())
    assert cfg.backend == OpenAIHttpConfig(base_url=llama_server.base_url, model=llama_server.model_alias)
    # a run names the model (the DAGs' `model` param) without a YAML edit
    assert teacher_config({}, _args(model="teacher")).backend.model == "teacher"
    # an openai_http YAML keeps its knobs and gets the URL
    yaml_cfg = {
        "backend": {
            "kind": "openai_http",
            "base_url": "http://127.0.0.1:1/v1",
            "model": "m",
            "concurrency": 3,
        }
    }
    b = teacher_config(yaml_cfg, _args()).backend
    assert (b.base_url, b.model, b.concurrency) == (llama_server.base_url, "m", 3)
    # an explicit choice on the command line wins over the variable
    assert teacher_config({}, _args(backend="embedded")).backend.kind == "embedded"
    assert (
        teacher_config(
            {}, _args(backend="openai_http", base_url="http://127.0.0.1:2/v1", model="x")
        ).backend.base_url
        == "http://127.0.0.1:2/v1"
    )


def test_teacher_base_url_errors_name_the_variable(monkeypatch):
    from synthesis.commands.generate import teacher_config

    monkeypatch.setenv(ENV, "vllm:8000/v1")
    with pytest.raises(ValueError, match=r"TEACHER_BASE_URL='vllm:8000/v1' is not an http\(s\) URL"):
        teacher_config({}, _args())
    monkeypatch.setenv(ENV, "http://127.0.0.1:9/v1")  # discard port: nothing listens
    with pytest.raises(
        TeacherBackendError, match=r"TEACHER_BASE_URL=http://127.0.0.1:9/v1: cannot list.*--model"
    ):
        teacher_config({}, _args())


def test_label_edu_and_generate_use_teacher_base_url_end_to_end(llama_server, tmp_path, monkeypatch):
    """The real CLI with only the variable set: requests go to the served model over HTTP."""
    reqs = tmp_path / "r.jsonl"
    reqs.write_text(
        "\n".join(
            json.dumps(
                {"id": f"q{i}", "messages": [{"role": "user", "content": q}], "sampling": {"max_tokens": 8}}
            )
            for i, q in enumerate(["Define entropy.", "What is a prime number?"])
        )
        + "\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), ENV: llama_server.base_url}
    out = tmp_path / "gen"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthesis",
            "generate",
            "--requests",
            str(reqs),
            "--output",
            str(out),
            "--no-progress",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert (report["backend"], report["model_id"], report["ok_in_store"]) == (
        "openai_http",
        llama_server.model_alias,
        2,
    )

    from synthesis.commands.label_edu import load_config

    p = _subcommand("label-edu")
    args = p.parse_args(["--input", str(tmp_path), "--output", str(tmp_path / "labels")])
    monkeypatch.setenv(ENV, llama_server.base_url)
    cfg = load_config(args)
    assert (cfg.teacher.backend.kind, cfg.teacher.backend.base_url) == ("openai_http", llama_server.base_url)
