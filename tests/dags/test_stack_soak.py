"""Seven nights of nightly_refresh on the real stack (tests/stack_fixtures.py), driven over the REST API
with successive logical dates: the past seven nights at 03:00 UTC, run now, one after the other (a backfill;
the scheduler refuses a future logical date). Every such night is past its 06:00 deadline when it runs, so
each raises one `deadline_missed` alert from the triggerer: counted apart from the failure alerts.
Each night lands new crawl segments cut from the shared crawl data; faults are planted:

  1  two segments: dolma JSONL, the first half of a WARC
  2  a new segment + night 1's segment delivered again; a manual web_curation (mode add) triggered while the
     night holds the writer lease
  3  a new segment + a corrupt one (bytes flipped in a gzip member) + a near copy of a published document
     and a re-crawled id with new text; the second half of the WARC; mid-job, a Spark worker running an
     executor is SIGKILLed with it (Spark reschedules its tasks; the worker is restarted afterwards)
  4  the Celery worker running `curate` SIGKILLed with everything it started (restarted: the task is retried)
  5  the input glob mistyped: the night fails at discover and alerts; its segment stays pending
  6  the glob fixed: the night curates night 5's segment and its own
  7  nothing new landed: an empty night, recorded in the ledger

After every run that published: the version chains to the previous one (base_version), holds every document
of it, no id or text twice, every input record is a document of it or a reject row with a reason, and the
counts reconcile with the manifest (tests/soak_helpers.py). After every night: no edu_classifier run that a
night started, no pretraining, at most one mixture build per published version. The figures go to
out/stack/soak.md (+ .json) and OPERATIONS.md ("Soak on the real stack").
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest
from soak_helpers import (
    Inputs,
    Landing,
    Version,
    check_version,
    kill_a_spark_worker_mid_job,
    kill_tree,
    near_copy,
    read_alerts,
    read_jsonl_gz,
    reject_of,
    restart,
    run_stats,
    service_pid,
    spark_worker_running,
    task_running,
    wait_until,
    write_report,
)

from curation.contract import DatasetRoot
from curation.paths import REPO_ROOT

pytestmark = [pytest.mark.stack, pytest.mark.slow]
NIGHTLY, MANUAL = "nightly_refresh", "web_curation"
REPORT = REPO_ROOT / "out" / "stack" / "soak.md"
WEBTEXT = "webtext_cc2019_dolma_sample/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
WARC = "warc_commoncrawl_samples/dolma-sample-0000.warc.gz"


class Soak:
    """What carries from night to night: the landing folder, the versions published in order, the figures."""

    def __init__(self, stack, api, shared_data, tmp):
        self.stack, self.api = stack, api
        self.landing = Landing(tmp / "landing")
        self.config = tmp / "curation.yaml"
        self.config.write_text("output_partitions: 1\n")
        self.rows = read_jsonl_gz(shared_data / WEBTEXT)
        self.warc = shared_data / WARC
        self.root = stack.datasets / "web_curated"
        self.alerts = stack.datasets / "_alerts" / "alerts.jsonl"
        self.published: list[str] = []
        self.kept_ids: set[str] = set()
        self.inputs_seen: dict[str, str] = {}
        self.nights: list[dict] = []
        self.alerts_seen = 0
        today = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
        self.first = today - timedelta(days=7)

    def start_clean(self) -> None:
        """The stack is the session's: earlier stack tests published their own corpus into the same data root
        and started downstream runs. The week starts from an empty corpus (theirs is moved aside, with its
        ledger and band index) and counts only the runs created after this point."""
        if self.root.exists():
            assert not (self.root / "_writer.lock").exists(), "a run still holds the corpus's writer lease"
            self.root.rename(self.root.with_name(f"{self.root.name}.before-soak-{int(time.time())}"))
        self.earlier_runs = {
            d: {r["dag_run_id"] for r in self.api.runs(d)}
            for d in ("edu_classifier", "mixture_build", "pretrain")
        }

    def new_runs(self, dag_id: str) -> list[dict]:
        return [r for r in self.api.runs(dag_id) if r["dag_run_id"] not in self.earlier_runs[dag_id]]

    def segment(self, k: int, n: int = 60) -> list[dict]:
        return self.rows[k * n : (k + 1) * n]

    def trigger(self, night: int | None, globs: list[str] | None = None) -> str:
        """A nightly run for night `night` (its logical date), or a manual one (None: as an operator)."""
        conf = {"segment_globs": globs or [self.landing.glob], "config_path": str(self.config)}
        logical = (self.first + timedelta(days=night - 1)).isoformat() if night else None
        self.api.wait_for_dag(NIGHTLY)
        body = {"logical_date": logical, "conf": conf}
        return self.api.request("POST", f"/dags/{NIGHTLY}/dagRuns", json=body).json()["dag_run_id"]

    def published_by(self, dag_id: str, run_id: str) -> str | None:
        events = [e for e in self.api.asset_events("web_curated") if e["source_run_id"] == run_id]
        assert len(events) <= 1 and all(e["source_dag_id"] == dag_id for e in events), events
        return events[0]["extra"]["version"] if events else None

    def check_published(self, dag_id: str, run_id: str, inputs: Inputs) -> dict | None:
        version = self.published_by(dag_id, run_id)
        if version is None:
            return None
        figures = check_version(self.root, version, self.published[-1] if self.published else None, inputs)
        self.published.append(version)
        self.kept_ids |= figures.pop("kept_ids")
        self.inputs_seen |= inputs.doc_ids
        return figures

    def stop_others(self) -> None:
        """Stop the runs a publication started downstream (mixture_build; edu_classifier's weekly cron tick
        when the soak runs on a Sunday): counted by check_policy, computed by their own DAGs' tests."""
        for dag_id in ("edu_classifier", "mixture_build"):
            for run in self.api.runs(dag_id, state=["queued", "running"]):
                path = f"/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'])}"
                self.api.request("PATCH", path, json={"state": "failed"})

    def wait(self, dag_id: str, run_id: str, timeout_s: float = 1200) -> dict:
        deadline = time.monotonic() + timeout_s
        while (run := self.api.run(dag_id, run_id))["state"] not in ("success", "failed"):
            assert time.monotonic() < deadline, f"{dag_id}/{run_id} still {run['state']} after {timeout_s} s"
            self.stop_others()
            time.sleep(3)
        return run

    def check_policy(self) -> dict:
        """Nights start no retrain and no pretraining; mixture builds: at most one per published version."""
        time.sleep(5)  # the scheduler creates asset-triggered runs within a loop or two of the event
        self.stop_others()
        counts = {
            d: Counter(r["run_type"] for r in self.new_runs(d))
            for d in ("edu_classifier", "mixture_build", "pretrain")
        }
        assert counts["pretrain"] == {}, counts
        assert set(counts["edu_classifier"]) <= {"scheduled"}, counts  # the weekly cron only
        for run in self.new_runs("edu_classifier"):  # Sunday 05:00 UTC ticks, never a night's doing
            assert datetime.fromisoformat(run["logical_date"]).strftime("%a %H:%M") == "Sun 05:00", run
        assert set(counts["mixture_build"]) <= {"asset_triggered"}, counts
        assert sum(counts["mixture_build"].values()) <= len(self.published), (counts, self.published)
        return {d: sum(c.values()) for d, c in counts.items()}

    def record(self, night: int, what: str, runs: list[tuple[str, str]], inputs: list[Inputs | None]) -> dict:
        """Check every run of the night (in publish order), then its figures (one table row), written out."""
        stats = [run_stats(self.api, d, r) for d, r in runs]
        ends = [s["task_end"].get("publish") or "~" for s in stats]
        order = sorted(range(len(runs)), key=lambda i: ends[i])
        figures = [self.check_published(*runs[i], inputs[i]) for i in order if inputs[i] is not None]
        figures = [f for f in figures if f]
        if self.published:
            assert DatasetRoot(self.root).current() == self.published[-1]
        alerts = read_alerts(self.alerts)[self.alerts_seen :]
        self.alerts_seen += len(alerts)
        mine = [a for a in alerts if a["run_id"] in {r for _, r in runs}]
        ours = [a for a in mine if a["kind"] != "deadline_missed"]
        late = [a for a in mine if a["kind"] == "deadline_missed"]
        consumed = {n["version"] for n in self.ledger_nights() if n["status"] == "published"}
        row = {
            "night": night,
            "what": what,
            "runs": ", ".join(f"{d} {s['state']}" for (d, _), s in zip(runs, stats)),
            "segments_new": sum(
                n["segments_new"]
                for n in self.ledger_nights()
                if n["version"] in {f["version"] for f in figures}
            ),
            "docs_in": sum(f["docs_in"] for f in figures),
            "kept": sum(f["kept"] for f in figures),
            "rejected": sum(f["rejected"] for f in figures),
            "wall_s": round(
                (max(s["end"] for s in stats) - min(s["start"] for s in stats)).total_seconds(), 1
            ),
            "tasks_run": sum(s["tasks_run"] for s in stats),
            "retries": sum(s["retries"] for s in stats),
            "alerts": len(ours),
            "late": len(late),
            "corpus_rows": Version(self.root, self.published[-1]).manifest.rows if self.published else 0,
            "reasons": {f["version"]: f["reasons"] for f in figures},
            "policy": self.check_policy(),
            "runs_detail": [{k: v for k, v in s.items() if k not in ("start", "end")} for s in stats],
            "alert_list": [{k: a.get(k) for k in ("kind", "dag_id", "task_id", "message")} for a in alerts],
            "ledger_published": len(consumed),
        }
        self.nights.append(row)
        self.write()
        return row

    def ledger_segments(self) -> dict[str, dict]:
        from dags.lib.ledger import SegmentLedger

        return SegmentLedger.for_root(self.root).entries()

    def ledger_nights(self) -> list[dict]:
        from dags.lib.ledger import SegmentLedger

        return SegmentLedger.for_root(self.root).nights()

    def write(self, totals: dict | None = None) -> None:
        write_report(self.nights, totals or {}, REPORT)


@pytest.fixture(scope="module")
def soak(stack, api, shared_data, tmp_path_factory) -> Soak:
    s = Soak(stack, api, shared_data, tmp_path_factory.mktemp("soak"))
    s.start_clean()
    stop_the_cron_tick(s, api)
    for dag_id in ("edu_classifier", "mixture_build", "pretrain"):  # so that the policy check can fail
        api.wait_for_dag(dag_id)
        api.set_paused(dag_id, False)
    return s


def stop_the_cron_tick(soak: Soak, api) -> None:
    """Unpausing nightly_refresh makes the scheduler create the run of its latest cron tick (today 03:00,
    the default segment glob): stopped while it is queued, before it takes the writer lease, so that the
    soak's nights are the only writers of its corpus. (A paused DAG would not run the soak's nights.)"""
    api.wait_for_dag(NIGHTLY)
    api.set_paused(NIGHTLY, False)
    tick = wait_until(lambda: api.runs(NIGHTLY, run_type="scheduled"), 120, "the cron tick's run", poll_s=0.1)
    path = f"/dags/{NIGHTLY}/dagRuns/{quote(tick[0]['dag_run_id'])}"
    api.request("PATCH", path, json={"state": "failed"})
    states = {t: ti["state"] for t, ti in api.tasks(NIGHTLY, tick[0]["dag_run_id"]).items()}
    assert states.get("writer_lock") != "success", states
    assert not (soak.root / "_writer.lock").exists() and DatasetRoot(soak.root).current() is None
    soak.alerts_seen = len(read_alerts(soak.alerts))


def test_night_1_first_segments(soak):
    segs = [
        soak.landing.jsonl("n1-webtext-00", soak.segment(0)),
        soak.landing.warc_part(soak.warc, "n1-warc-part0", 0, 2),
    ]
    run = soak.trigger(1)
    assert soak.wait(NIGHTLY, run)["state"] == "success"
    row = soak.record(1, "JSONL + half a WARC", [(NIGHTLY, run)], [Inputs.read(segs)])
    assert (row["segments_new"], row["retries"], row["alerts"]) == (2, 0, 0), row
    assert row["kept"] > 0 and row["corpus_rows"] == row["kept"]


def test_night_2_redelivered_segment_and_a_manual_run_beside_it(soak, api, tmp_path):
    assert len(soak.nights) == 1, "night 1 did not complete"
    first = soak.landing.folder / "n1-webtext-00.jsonl.gz"
    segs = [
        soak.landing.jsonl("n2-webtext-01", soak.segment(1)),
        soak.landing.duplicate(first, "n2-redelivered"),
    ]
    manual_seg = Landing(tmp_path / "manual").jsonl("manual-webtext-06", soak.segment(6))
    run = soak.trigger(2)
    wait_until(
        lambda: api.tasks(NIGHTLY, run).get("writer_lock", {}).get("state") == "success",
        600,
        "the night holding the writer lease",
    )
    conf = {"input_globs": [str(manual_seg)], "config_path": str(soak.config)}  # mode add (the default)
    manual = api.trigger(MANUAL, conf)["dag_run_id"]
    assert soak.wait(NIGHTLY, run)["state"] == "success"
    assert soak.wait(MANUAL, manual)["state"] == "success"
    night, man = api.tasks(NIGHTLY, run), api.tasks(MANUAL, manual)
    # one writer: the manual run waited for the night's lease, planned after the night published, on top of it
    assert "waiting for nightly_refresh/" in api.log(MANUAL, manual, "writer_lock")
    assert datetime.fromisoformat(man["plan"]["start_date"]) > datetime.fromisoformat(
        night["publish"]["end_date"]
    )
    row = soak.record(
        2,
        "segment 1 redelivered; manual web_curation during the night",
        [(NIGHTLY, run), (MANUAL, manual)],
        [Inputs.read(segs), Inputs.read([manual_seg])],
    )
    nightly_v, manual_v = soak.published[-2:]
    assert Version(soak.root, manual_v).manifest.base_version == nightly_v
    redelivered = Inputs.read([first]).doc_ids
    assert all(reject_of(soak.root, nightly_v, i) for i in redelivered)  # each one a reject with its reason
    assert row["segments_new"] == 2 and row["alerts"] == 0, row


def test_night_3_corrupt_segment_near_copy_recrawled_id_and_a_spark_worker_killed(soak, api, stack):
    assert len(soak.nights) == 2, "night 2 did not complete"
    current = Version(soak.root, soak.published[-1])
    docs = [
        d
        for d in pq.read_table(current.dir / "data", columns=["id", "text", "lang"]).to_pylist()
        if d["lang"] == "en" and 1500 <= len(d["text"]) <= 8000 and d["id"] in soak.kept_ids
    ]
    source, recrawled = docs[0], docs[1]
    planted = [
        {"id": "soak-near-copy-0001", "text": near_copy(source["text"]), "metadata": {"url": "soak.test/n"}},
        {"id": recrawled["id"], "text": soak.rows[-1]["text"], "metadata": {"url": "soak.test/recrawl"}},
    ]
    segs = [
        soak.landing.jsonl("n3-webtext-02", soak.segment(2)),
        soak.landing.corrupt("n3-webtext-03-corrupt", soak.segment(3), line=5),
        soak.landing.jsonl("n3-planted", planted),
        soak.landing.warc_part(soak.warc, "n3-warc-part1", 1, 2),
    ]
    run = soak.trigger(3)
    name = kill_a_spark_worker_mid_job(api, stack, NIGHTLY, run)
    assert soak.wait(NIGHTLY, run)["state"] == "success"
    log = api.log(NIGHTLY, run, "curate", try_number=1)  # Spark saw the executor go, and went on
    assert re.search(r"(?i)lost executor|executor \S+ (lost|removed)", log), log[-3000:]
    what = f"corrupt gzip member; near copy; re-crawled id; {name} SIGKILLed mid-job"
    row = soak.record(3, what, [(NIGHTLY, run)], [Inputs.read(segs)])
    version = soak.published[-1]
    near = reject_of(soak.root, version, "soak-near-copy-0001")
    assert near["reject_reason"] == "near_duplicate" and source["id"] in near["reject_detail"], near
    assert reject_of(soak.root, version, recrawled["id"]) is not None  # the new text is a reject ...
    assert Version(soak.root, version).text_of(recrawled["id"]) == recrawled["text"]  # ... the old one stays
    assert row["reasons"][version]["ingest:corrupt_gzip"] == 1
    assert row["segments_new"] == 4 and row["alerts"] == 0, row


def test_night_4_celery_worker_killed_mid_curate(soak, api, stack):
    assert len(soak.nights) == 3, "night 3 did not complete"
    segs = [soak.landing.jsonl("n4-webtext-04", soak.segment(4))]
    run = soak.trigger(4)
    wait_until(
        lambda: (
            task_running(api, NIGHTLY, run, "curate")
            and spark_worker_running(stack.spark_ui_url, "phi-curation")
        ),
        900,
        "curate running on the cluster",
    )
    killed = kill_tree(service_pid(stack.state_file, "celery-default"))
    assert len(killed) > 3, killed  # worker, pool process, task supervisor and process, spark-submit ...
    restart(stack, "celery-default")
    assert soak.wait(NIGHTLY, run)["state"] == "success"
    assert api.tasks(NIGHTLY, run)["curate"]["try_number"] == 2
    row = soak.record(4, "Celery worker SIGKILLed mid-curate", [(NIGHTLY, run)], [Inputs.read(segs)])
    assert row["retries"] >= 1 and row["alerts"] == 0, row


def test_night_5_mistyped_glob_fails_and_alerts(soak, api):
    assert len(soak.nights) == 4, "night 4 did not complete"
    soak.landing.jsonl("n5-webtext-05", soak.segment(5))
    typo = str(soak.landing.folder.with_name("landng") / "*.gz")
    bad = soak.trigger(5, [typo])
    assert soak.wait(NIGHTLY, bad)["state"] == "failed"
    discover = api.tasks(NIGHTLY, bad)["discover"]
    assert (discover["state"], discover["try_number"]) == ("failed", 1)
    alerts = [a for a in read_alerts(soak.alerts) if a["run_id"] == bad and a["task_id"] == "discover"]
    assert alerts and "names a location that does not exist" in alerts[0]["message"], alerts
    row = soak.record(5, "segment glob mistyped: fails, alerts", [(NIGHTLY, bad)], [None])
    assert row["alerts"] >= 1 and not any("n5-webtext-05" in k for k in soak.ledger_segments()), row


def test_night_6_picks_up_what_the_failed_night_left(soak):
    assert len(soak.nights) == 5, "night 5 did not complete"
    segs = [
        soak.landing.folder / "n5-webtext-05.jsonl.gz",
        soak.landing.jsonl("n6-webtext-07", soak.segment(7)),
    ]
    run = soak.trigger(6)
    assert soak.wait(NIGHTLY, run)["state"] == "success"
    row = soak.record(6, "glob fixed: night 5's segment + its own", [(NIGHTLY, run)], [Inputs.read(segs)])
    assert row["segments_new"] == 2 and row["alerts"] == 0, row


def test_night_7_nothing_landed_is_an_empty_night(soak, api):
    assert len(soak.nights) == 6, "night 6 did not complete"
    before = soak.published[-1]
    run = soak.trigger(7)
    assert soak.wait(NIGHTLY, run)["state"] == "success"
    states = {t: ti["state"] for t, ti in api.tasks(NIGHTLY, run).items()}
    assert states["discover"] == "success" and states["publish"] == "skipped", states
    assert soak.ledger_nights()[-1]["status"] == "empty" and soak.ledger_nights()[-1]["segments_new"] == 0
    row = soak.record(7, "nothing landed (empty night)", [(NIGHTLY, run)], [None])
    assert DatasetRoot(soak.root).current() == before and row["alerts"] == 0, row


def test_the_week_lost_and_duplicated_nothing(soak):
    assert len(soak.nights) == 7, "the week did not complete"
    final = Version(soak.root, DatasetRoot(soak.root).current())
    ids = final.ids()
    rejected = {r["id"] for v in soak.published for r in Version(soak.root, v).rejects()}
    lost = [i for i in soak.inputs_seen if i not in set(ids) and i not in rejected]
    twice = len(ids) - len(set(ids))
    totals = {
        "docs in": sum(n["docs_in"] for n in soak.nights),
        "kept": sum(n["kept"] for n in soak.nights),
        "rejected": sum(n["rejected"] for n in soak.nights),
        "corpus rows": len(ids),
        "versions published": len(soak.published),
        "input documents neither kept nor rejected": len(lost),
        "ids twice in the corpus": twice,
        "retries": sum(n["retries"] for n in soak.nights),
        "failure alerts": sum(n["alerts"] for n in soak.nights),
        "deadline alerts": sum(n["late"] for n in soak.nights),
    }
    soak.write(totals)
    assert set(ids) == soak.kept_ids and not lost and twice == 0, totals
    assert totals["docs in"] == totals["kept"] + totals["rejected"] and totals["kept"] == len(ids), totals
    chain = [Version(soak.root, v).manifest.base_version for v in soak.published]
    assert chain == [None, *soak.published[:-1]], chain
