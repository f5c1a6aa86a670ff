"""The scheduling policy of the DAGs (issue 14), without the stack: the schedule cascade read from the DAG
definitions, promotion against the incumbent on real fasttext models, the mixture pins on real documents,
and the alert wiring (every task bounded and alerting, the nightly deadline, a failing task's alert reaching
the log, a webhook and an SMTP server through a real `dag.test()`). The operational guards (ledger on S3,
writer lease) are in test_dags_ops.py."""

from __future__ import annotations

import asyncio
import copy
import http.server
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagtest_helpers import migrate_airflow_db

from curation.paths import REPO_ROOT

DAGS = REPO_ROOT / "dags"
LABELS = "quality_labels_dclm_human/majority_data_disputed.jsonl"


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags


# ---- the schedule cascade, from the DAG definitions -------------------------------------------------------


def _names(cond) -> set[str]:
    if cond is None:
        return set()
    return {cond.name} if hasattr(cond, "name") else set().union(*(_names(c) for c in cond.objects))


def test_a_web_curated_event_triggers_one_mixture_build_and_nothing_else(dags):
    scheduled_on = {d: _names(getattr(dag.timetable, "asset_condition", None)) for d, dag in dags.items()}
    emitted_by = {}  # asset -> [(dag, task)]
    for d, dag in dags.items():
        for t in dag.tasks:
            for a in t.outlets:
                emitted_by.setdefault(a.name, []).append((d, t.task_id))
    # follow every asset event a triggered DAG can emit
    reached, frontier = set(), {"web_curated"}
    while frontier:
        asset = frontier.pop()
        for d, on in scheduled_on.items():
            if asset in on and d not in reached:
                reached.add(d)
                frontier |= {a.name for t in dags[d].tasks for a in t.outlets}
    assert reached == {"mixture_build", "pretrain"}  # no edu retrain: a night never starts one
    assert scheduled_on["edu_classifier"] == {"edu_label_files"}
    assert type(dags["edu_classifier"].timetable).__name__ == "AssetOrTimeSchedule"  # + weekly
    assert dags["edu_classifier"].timetable.timetable.expression == "0 5 * * 0"
    # pretrain only on the opt-in request, which only mixture_build's request_pretrain emits ...
    assert scheduled_on["pretrain"] == {"pretrain_request"}
    assert emitted_by["pretrain_request"] == [("mixture_build", "request_pretrain")]
    # ... and which skips (no event) unless the mixture says auto_pretrain: true
    from airflow.sdk.exceptions import AirflowSkipException

    request = dags["mixture_build"].task_dict["request_pretrain"].python_callable
    with pytest.raises(AirflowSkipException, match="auto_pretrain"):
        request({"auto_pretrain": False, "name": "tiny"}, {"version": "v1"})
    # nothing but web_curation / nightly_refresh publishes the corpus, and they share one writer lease
    assert sorted(emitted_by["web_curated"]) == [("nightly_refresh", "publish"), ("web_curation", "publish")]
    for d in ("nightly_refresh", "web_curation"):
        assert dags[d].task_dict["writer_unlock"].is_teardown and dags[d].task_dict["writer_lock"].is_setup
        assert dags[d].task_dict["writer_lock"].downstream_task_ids >= {"plan"}


def test_every_task_is_bounded_and_alerts(dags):
    from airflow.sdk import DeadlineReference

    from dags.lib.alerts import AlertNotifier

    for d, dag in dags.items():
        for t in dag.tasks:
            assert t.execution_timeout is not None and t.execution_timeout > timedelta(0), (d, t.task_id)
            callbacks = (
                t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
            )
            assert any(isinstance(c, AlertNotifier) for c in callbacks), (d, t.task_id)
    curate = dags["nightly_refresh"].task_dict["curate"]
    assert curate.execution_timeout == timedelta(hours=4) and dags["pretrain"].task_dict[
        "phase1"
    ].execution_timeout == timedelta(hours=72)
    [deadline] = (
        dags["nightly_refresh"].deadline
        if isinstance(dags["nightly_refresh"].deadline, list)
        else [dags["nightly_refresh"].deadline]
    )
    assert deadline.reference == DeadlineReference.DAGRUN_LOGICAL_DATE and deadline.interval == timedelta(
        hours=3
    )
    assert deadline.callback.path == "dags.lib.alerts.deadline_missed"  # 03:00 + 3 h = done by 06:00 UTC


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def webhook():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()


PROBE = """
from airflow.sdk import dag, task
from dags._common import DEFAULT_ARGS

@dag(dag_id="alert_probe", schedule=None, default_args={**DEFAULT_ARGS, "retries": 0})
def alert_probe():
    @task
    def boom():
        raise RuntimeError("planted failure")
    boom()

alert_probe()
"""
RUN = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.get_dag("alert_probe").test()
print("RESULT " + json.dumps({"state": str(run.state)}))
"""


def test_a_failed_task_alerts_the_log_and_the_webhook(tmp_path, webhook):
    url, received = webhook
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "alert_probe.py").write_text(PROBE)
    alerts = tmp_path / "alerts.jsonl"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "PHI_ALERT_LOG": str(alerts),
        "PHI_ALERT_WEBHOOK": url,
        "PYTHONPATH": str(REPO_ROOT),
    }
    migrate_airflow_db(env)
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(tmp_path / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert '"state": "failed"' in proc.stdout, (proc.stdout + proc.stderr)[-4000:]
    [alert] = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert (alert["kind"], alert["dag_id"], alert["task_id"]) == ("task_failed", "alert_probe", "boom")
    assert "RuntimeError: planted failure" in alert["message"] and alert["delivered"] == {"webhook": "ok"}
    assert [r["message"] for r in received] == [alert["message"]]


def test_a_missed_deadline_alerts_and_an_unreachable_webhook_does_not_hide_it(tmp_path, monkeypatch):
    from dags.lib.alerts import deadline_missed, read_alerts

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("PHI_ALERT_LOG", str(tmp_path / "alerts.jsonl"))
    monkeypatch.setenv("PHI_ALERT_WEBHOOK", f"http://127.0.0.1:{dead}/hook")
    # the context the scheduler hands a deadline callback (models/deadline.py: handle_miss)
    context = {
        "dag_run": {
            "dag_id": "nightly_refresh",
            "dag_run_id": "scheduled__2026-12-06T03:00:00+00:00",
            "state": "running",
        },
        "deadline": {"id": "x", "deadline_time": "2026-12-06T06:00:00+00:00"},
    }
    asyncio.run(deadline_missed(context=context))
    [alert] = read_alerts()
    assert alert["kind"] == "deadline_missed" and alert["dag_id"] == "nightly_refresh"
    assert "2026-12-06T06:00:00" in alert["message"] and alert["delivered"]["webhook"].startswith("URLError")


class _Smtp(socketserver.StreamRequestHandler):
    """A minimal SMTP server (EHLO, MAIL, RCPT, DATA, QUIT): what smtplib really says, kept."""

    mails: ClassVar[list] = []

    def handle(self):
        def say(line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        say("220 phi-test")
        body: list[str] | None = None
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if body is not None:
                if line == ".":
                    self.mails.append("\n".join(body))
                    body = None
                    say("250 queued")
                else:
                    body.append(line)
            elif line[:4].upper() == "DATA":
                body = []
                say("354 end with .")
            elif line[:4].upper() == "QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")


def test_alerts_go_by_smtp_when_configured(tmp_path, monkeypatch):
    from dags.lib.alerts import raise_alert

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    _Smtp.mails = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for k, v in {
            "PHI_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
            "PHI_ALERT_SMTP_HOST": "127.0.0.1",
            "PHI_ALERT_SMTP_PORT": str(server.server_address[1]),
            "PHI_ALERT_EMAIL_TO": "data-oncall@example.org",
        }.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("PHI_ALERT_WEBHOOK", raising=False)
        alert = raise_alert("task_failed", "nightly_refresh", "r1", "OSError: disk full", task_id="curate")
    finally:
        server.shutdown()
    assert alert["delivered"] == {"smtp": "ok"}
    [mail] = _Smtp.mails
    assert "Subject: [phi-data] task_failed: nightly_refresh curate" in mail
    assert "To: data-oncall@example.org" in mail and "OSError: disk full" in mail


# ---- promotion: the new model must beat the incumbent on the same held-out split --------------------------


def _train(registry, labels: Path, **fasttext):
    from curation.edu.labels import read_label_file
    from curation.edu.train import EduTrainConfig, FastTextParams
    from curation.edu.workflow import train_and_register

    cfg = EduTrainConfig(
        fasttext=FastTextParams(**{"dim": 16, "bucket": 20_000, **fasttext}), max_score=1, threshold=0.5
    )
    return train_and_register(read_label_file(labels, max_score=1), cfg, registry, human_labels=None).version


def test_promotion_against_the_incumbent(tmp_path, shared_data):
    from curation.edu.registry import ModelRegistry
    from dags.lib.promotion import promotion_verdict

    reg = ModelRegistry(tmp_path / "reg")
    labels = shared_data / LABELS
    few = tmp_path / "few.jsonl"
    few.write_text("".join(labels.read_text().splitlines(keepends=True)[:40]))
    floors = {"min_macro_f1": 0.0, "min_spearman": None}

    weak = _train(reg, few, epoch=1, dim=2)
    first = promotion_verdict(reg.root, weak, "r1", floors, [str(few)], margin=0.01)
    assert first["promotable"] and first["incumbent"] is None and first["heldout"] is None  # floors decide
    reg.promote(weak)

    strong = _train(reg, labels)
    v = promotion_verdict(reg.root, strong, "r2", floors, [str(labels)], margin=0.01)
    scores = v["heldout"]["scores"]
    assert set(scores) == {strong, weak} and scores[strong]["n"] == scores[weak]["n"] == v["heldout"]["n"] > 0
    assert v["gain"] == pytest.approx(scores[strong]["macro_f1"] - scores[weak]["macro_f1"])
    assert v["gain"] >= 0.01 and v["promotable"], v["reason"]
    reg.promote(strong)

    # the same labels and config again: the same model, no better than the incumbent -> not promoted
    again = _train(reg, labels)
    v2 = promotion_verdict(reg.root, again, "r3", floors, [str(labels)], margin=0.01)
    assert v2["gain"] == pytest.approx(0.0) and not v2["promotable"] and v2["misses"] == []
    assert "incumbent" in v2["reason"] and reg.promoted() == strong
    # a floor miss is a miss whatever the incumbent
    v3 = promotion_verdict(reg.root, again, "r4", {"min_macro_f1": 0.99}, [str(labels)], margin=0.0)
    assert v3["misses"] and not v3["promotable"]
    # both models' scores are recorded beside the candidate and in the registry's log
    saved = json.loads((reg.root / again / "eval" / "promotion-r3.json").read_text())
    assert saved["heldout"]["scores"] == v2["heldout"]["scores"]
    log = [json.loads(line) for line in (reg.root / "promotions.jsonl").read_text().splitlines()]
    assert [e["run"] for e in log] == ["r1", "r2", "r3", "r4"]


# ---- mixtures: an edu_score filter against the model that scored the corpus --------------------------------


def _scored(folder: Path, shared_data: Path, models: list[str]) -> Path:
    """A folder of parquet documents (real texts) whose edu scores came from `models`, in turn."""
    rows = [json.loads(line) for line in (shared_data / LABELS).read_text().splitlines()[:60]]
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "id": [f"d{i}" for i in range(len(rows))],
                "text": [r["text"] for r in rows],
                "edu_score": [float(r["label"]) for r in rows],
                "edu_model": [models[i % len(models)] for i in range(len(rows))],
            }
        ),
        folder / "part-0.parquet",
    )
    return folder


MIXTURE = """\
name: pinned
seq_len: 128
tokenizer:
  train: {{vocab_size: 1024}}
phases:
  - name: phase1
    tokens: 2000
    sources:
      - name: web
        dataset: {dataset}
        filter: "edu_score >= 0.5"
        weight: 1.0
{pin}"""


@pytest.mark.parametrize(
    ("models", "pin", "problem"),
    [
        (["edu-A"], None, None),
        (["edu-A"], "edu-A", None),
        (
            ["edu-A"],
            "edu-B",
            (
                r":13: phases\[0\]\.sources\[0\]\.edu_model: .*scored by \['edu-A'\] besides/instead of "
                r"the pinned edu model 'edu-B'"
            ),
        ),
        (
            ["edu-A", "edu-B"],
            None,
            r":11: phases\[0\]\.sources\[0\]\.filter: .*scored by 2 models \['edu-A', 'edu-B'\]",
        ),
        (
            ["edu-A", "edu-B"],
            "edu-A",
            r":13: phases\[0\]\.sources\[0\]\.edu_model: .*scored by \['edu-B'\] besides",
        ),
    ],
)
def test_an_edu_filter_is_refused_against_another_model(tmp_path, shared_data, models, pin, problem):
    from training.mixture.validate import MixtureValidationError, check_mixture

    data = _scored(tmp_path / "scored", shared_data, models)
    yaml = tmp_path / "mixture.yaml"
    yaml.write_text(MIXTURE.format(dataset=data, pin=f"        edu_model: {pin}\n" if pin else ""))
    if problem is None:
        assert check_mixture(yaml).config.phases[0].sources[0].edu_model == pin
        return
    with pytest.raises(MixtureValidationError, match=problem):
        check_mixture(yaml)


def test_a_mixture_is_built_once_per_set_of_input_versions(tmp_path, shared_data, monkeypatch):
    from dags.lib.train import built_from, plan_build, record_inputs

    monkeypatch.setenv("PHI_DATA_ROOT", str(tmp_path / "data"))
    data = _scored(tmp_path / "scored", shared_data, ["edu-A"])
    yaml = tmp_path / "mixture.yaml"
    yaml.write_text(MIXTURE.format(dataset=data, pin="auto_pretrain: true\n"))
    first = plan_build(yaml, "pinned", "v1")
    assert first["built"] is None and first["auto_pretrain"] is True
    (Path(first["build_dir"])).mkdir(parents=True)
    (Path(first["build_dir"]) / "manifest.json").write_text("{}")  # published
    record_inputs(first["root"], first["inputs_key"], first["inputs"], "v1")
    assert plan_build(yaml, "pinned", "v2")["built"] == "v1"  # the same inputs: nothing to build
    pq.write_table(
        pa.table(
            {
                "id": ["new"],
                "text": ["another document, another input version"],
                "edu_score": [1.0],
                "edu_model": ["edu-A"],
            }
        ),
        data / "part-1.parquet",
    )
    second = plan_build(yaml, "pinned", "v2")
    assert second["inputs_key"] != first["inputs_key"] and second["built"] is None
    assert built_from(first["root"], "0" * 16) is None


def test_web_curation_mode_param(dags):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dags["web_curation"].params)
    assert params["mode"] == "add"
    with pytest.raises(ParamValidationError, match="is not one of"):
        params["mode"] = "overwrite"
