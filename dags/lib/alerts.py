"""Alerts: task failures and missed deadlines, to a local alert log (always) and to the notifier the
environment configures (a webhook, SMTP, or both).

    PHI_ALERT_LOG         JSON-lines file every alert is appended to (default
                          `$PHI_DATA_ROOT/_alerts/alerts.jsonl`); the tests and an operator's `tail -f`
                          read it
    PHI_ALERT_WEBHOOK     URL that gets each alert as a JSON POST (Slack/Teams/Alertmanager-style receivers)
    PHI_ALERT_SMTP_HOST   SMTP server (port PHI_ALERT_SMTP_PORT, default 25; STARTTLS when
                          PHI_ALERT_SMTP_STARTTLS=1; login from PHI_ALERT_SMTP_USER / PHI_ALERT_SMTP_PASSWORD)
    PHI_ALERT_EMAIL_TO    comma-separated recipients (required with SMTP); PHI_ALERT_EMAIL_FROM the sender

A notifier that fails to deliver logs the error and still leaves the alert in the log: an unreachable
webhook must not hide the failure it reports.

Wiring (dags/_common.py): every task's `on_failure_callback` is `AlertNotifier("task_failed")` (it fires
after the last retry), every DAG's is `AlertNotifier("dag_failed")`, and nightly_refresh's DeadlineAlert
calls `deadline_missed` in the triggerer.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from airflow.sdk import BaseNotifier

from dags.lib.paths import data_root

log = logging.getLogger(__name__)


def alert_log() -> Path:
    return Path(os.environ.get("PHI_ALERT_LOG") or data_root() / "_alerts" / "alerts.jsonl")


def read_alerts(path: str | Path | None = None) -> list[dict]:
    p = Path(path) if path else alert_log()
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []


def _post_webhook(url: str, alert: dict) -> None:
    import urllib.request

    req = urllib.request.Request(
        url, data=json.dumps(alert).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def _send_mail(alert: dict) -> None:
    import smtplib
    from email.message import EmailMessage

    to = [a.strip() for a in os.environ.get("PHI_ALERT_EMAIL_TO", "").split(",") if a.strip()]
    if not to:
        raise ValueError("PHI_ALERT_SMTP_HOST is set but PHI_ALERT_EMAIL_TO names no recipient")
    msg = EmailMessage()
    msg["Subject"] = f"[phi-data] {alert['kind']}: {alert['dag_id']} {alert.get('task_id') or ''}".strip()
    msg["From"] = os.environ.get("PHI_ALERT_EMAIL_FROM", "phi-data@localhost")
    msg["To"] = ", ".join(to)
    msg.set_content(json.dumps(alert, indent=2, default=str))
    port = int(os.environ.get("PHI_ALERT_SMTP_PORT", "25"))
    with smtplib.SMTP(os.environ["PHI_ALERT_SMTP_HOST"], port, timeout=10) as smtp:
        if os.environ.get("PHI_ALERT_SMTP_STARTTLS") == "1":
            smtp.starttls()
        if os.environ.get("PHI_ALERT_SMTP_USER"):
            smtp.login(os.environ["PHI_ALERT_SMTP_USER"], os.environ.get("PHI_ALERT_SMTP_PASSWORD", ""))
        smtp.send_message(msg)


def raise_alert(kind: str, dag_id: str, run_id: str | None, message: str, task_id: str | None = None) -> dict:
    """Append the alert to the alert log, then deliver it to the configured notifiers. Returns the alert
    with `delivered` (channel -> "ok" or the error)."""
    alert = {
        "at": datetime.now(UTC).isoformat(),
        "kind": kind,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "message": message[-4000:],
    }
    delivered = {}
    channels = {
        "webhook": (os.environ.get("PHI_ALERT_WEBHOOK"), _post_webhook),
        "smtp": (os.environ.get("PHI_ALERT_SMTP_HOST"), lambda _url, a: _send_mail(a)),
    }
    for name, (target, send) in channels.items():
        if not target:
            continue
        try:
            send(target, alert)
            delivered[name] = "ok"
        except Exception as e:  # noqa: BLE001 - any delivery error is reported, never raised over the alert
            log.error("alert %s not delivered by %s: %s", kind, name, e)
            delivered[name] = f"{type(e).__name__}: {e}"
    alert["delivered"] = delivered
    path = alert_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:  # one write of one line: appends from several workers do not interleave
        f.write(json.dumps(alert, default=str) + "\n")
    log.warning("ALERT %s %s %s: %s", kind, dag_id, task_id or "", message[:500])
    return alert


class AlertNotifier(BaseNotifier):
    """A failure callback (task or DAG): the alert names the DAG, run, task and the exception."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def notify(self, context) -> None:
        ti = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or "?"
        run = context.get("dag_run")
        run_id = getattr(run, "run_id", None) or context.get("run_id")
        error = context.get("exception") or context.get("reason") or "failed"
        raise_alert(
            self.kind,
            dag_id,
            run_id,
            f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error),
            task_id=getattr(ti, "task_id", None),
        )


async def deadline_missed(context: dict, **_kwargs) -> None:
    """The DeadlineAlert callback (runs in the triggerer): `context` is what the scheduler sends, the run
    as JSON and the deadline's time."""
    run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    raise_alert(
        "deadline_missed",
        run.get("dag_id", "?"),
        run.get("dag_run_id") or run.get("run_id"),
        f"run still not finished at its deadline {deadline} (state {run.get('state')})",
    )
