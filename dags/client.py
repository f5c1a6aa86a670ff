"""Drive the stack the way an operator does: over Airflow's REST API v2, with a JWT from /auth/token.

    python -m dags.client status
    python -m dags.client trigger web_curation --conf '{"input_globs": ["/data/x.warc.gz"]}' [--wait]
    python -m dags.client wait web_curation RUN_ID
    python -m dags.client tasks web_curation RUN_ID
    python -m dags.client logs web_curation RUN_ID validate
    python -m dags.client reviews [--dag synthetic_data] [--all]    # human-in-the-loop tasks to answer
    python -m dags.client review synthetic_data RUN_ID --approve|--reject [--flag ID ...]

The address and the credentials default to the local stack's (dags/service/config.py, `.env`);
--url / --user / --password (or AIRFLOW_API_URL, AIRFLOW_USER, AIRFLOW_PASSWORD) point it anywhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from urllib.parse import quote

import httpx

DONE = {"success", "failed"}


class ApiError(RuntimeError):
    pass


class AirflowClient:
    def __init__(self, url: str, user: str, password: str, timeout: float = 30.0):
        self.url, self.user, self.password = url.rstrip("/"), user, password
        self.http = httpx.Client(base_url=self.url, timeout=timeout)
        self._token: str | None = None

    def token(self, renew: bool = False) -> str:
        if self._token is None or renew:
            r = self.http.post("/auth/token", json={"username": self.user, "password": self.password})
            if r.status_code not in (200, 201):
                raise ApiError(
                    f"POST {self.url}/auth/token as {self.user!r}: HTTP {r.status_code} {r.text[:300]}"
                )
            self._token = r.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        """One API call; a 401 (expired token) renews the token once."""
        for renew in (False, True):
            headers = {"Authorization": f"Bearer {self.token(renew)}", **kw.pop("headers", {})}
            r = self.http.request(method, f"/api/v2{path}", headers=headers, **kw)
            if r.status_code != 401:
                break
        if r.status_code >= 400:
            raise ApiError(f"{method} /api/v2{path}: HTTP {r.status_code} {r.text[:500]}")
        return r

    def get(self, path: str, **params) -> dict:
        return self.request("GET", path, params=params or None).json()

    # ---- DAGs and runs
    def wait_for_dag(self, dag_id: str, timeout_s: float = 120.0) -> dict:
        """The DAG once the dag-processor has serialized it (right after `up` it may not be yet)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.get(f"/dags/{dag_id}")
            except ApiError as e:
                if "HTTP 404" not in str(e) or time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict | None = None, unpause: bool = True) -> dict:
        """Create a manual run (the trigger form's params are `conf`); unpause the DAG so it runs."""
        self.wait_for_dag(dag_id)
        if unpause:
            self.set_paused(dag_id, False)
        return self.request(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        ).json()

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/dags/{dag_id}/dagRuns/{quote(run_id)}")

    def wait(self, dag_id: str, run_id: str, timeout_s: float = 900.0, poll_s: float = 2.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while (run := self.run(dag_id, run_id))["state"] not in DONE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}/{run_id} still {run['state']} after {timeout_s:.0f} s")
            time.sleep(poll_s)
        return run

    def runs(self, dag_id: str = "~", **params) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, **params)["dag_runs"]

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict]:
        body = self.get(f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
        if try_number is None:
            try_number = max(self.tasks(dag_id, run_id)[task_id]["try_number"], 1)
        body = self.get(
            f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/logs/{try_number}",
            full_content="true",
        )
        # structured log records (one dict per line: timestamp, level, event, ...) -> readable lines
        lines = []
        for rec in body["content"]:
            if isinstance(rec, dict):
                lines.append(
                    f"{rec.get('timestamp', '')} {rec.get('level', '')} {rec.get('event', '')}".strip()
                )
                lines += [str(e) for e in rec.get("error_detail") or []]
            else:
                lines.append(str(rec))
        return "\n".join(lines)

    def triggering_events(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{quote(run_id)}/upstreamAssetEvents")["asset_events"]

    def asset_events(self, asset_name: str) -> list[dict]:
        assets = self.get("/assets", name_pattern=asset_name)["assets"]
        ids = [a["id"] for a in assets if a["name"] == asset_name]
        return self.get("/assets/events", asset_id=ids[0], limit=100)["asset_events"] if ids else []

    def upsert_pool(self, name: str, slots: int, description: str, include_deferred: bool) -> None:
        body = {
            "name": name,
            "slots": slots,
            "description": description,
            "include_deferred": include_deferred,
        }
        try:
            self.request("PATCH", f"/pools/{name}", json=body)
        except ApiError as e:
            if "HTTP 404" not in str(e):
                raise
            self.request("POST", "/pools", json=body)

    # ---- human-in-the-loop reviews (Airflow 3.3's hitlDetails endpoints)
    def reviews(self, dag_id: str = "~", run_id: str = "~", pending: bool = True) -> list[dict]:
        """HITL requests (subject, body, options, params, task_instance); `pending` keeps the unanswered
        ones."""
        params = {"limit": 100, **({"response_received": "false"} if pending else {})}
        return self.get(f"/dags/{dag_id}/dagRuns/{quote(run_id)}/hitlDetails", **params)["hitl_details"]

    def respond(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen: list[str],
        params_input: dict | None = None,
        map_index: int = -1,
    ) -> dict:
        """Answer a waiting HITL task as this client's user (recorded as the responder)."""
        return self.request(
            "PATCH",
            f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/{map_index}/hitlDetails",
            json={"chosen_options": chosen, "params_input": params_input or {}},
        ).json()

    def status(self) -> dict:
        dags = self.get("/dags", limit=100)["dags"]
        latest = {}
        for d in dags:
            runs = self.get(f"/dags/{d['dag_id']}/dagRuns", limit=1, order_by="-run_after")["dag_runs"]
            latest[d["dag_id"]] = {
                "paused": d["is_paused"],
                "last_run": {k: runs[0][k] for k in ("dag_run_id", "state")} if runs else None,
            }
        return {"health": self.get("/monitor/health"), "dags": latest}


def local_client() -> AirflowClient:
    """A client for the local stack (or wherever AIRFLOW_API_URL / AIRFLOW_USER / AIRFLOW_PASSWORD point)."""
    from dags.service.config import StackConfig, ensure_secrets

    cfg = StackConfig.from_env()
    password = os.environ.get("AIRFLOW_PASSWORD") or ensure_secrets()["PHI_STACK_ADMIN_PASSWORD"]
    return AirflowClient(
        os.environ.get("AIRFLOW_API_URL", cfg.api_url),
        os.environ.get("AIRFLOW_USER", cfg.admin_user),
        password,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dags.client", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="health of each component, and each DAG's last run")
    t = sub.add_parser("trigger", help="start a run (unpauses the DAG)")
    t.add_argument("dag_id")
    t.add_argument("--conf", default="{}", help="JSON object: the run's params")
    t.add_argument("--wait", action="store_true", help="wait for the run to finish; exit 1 if it failed")
    for name in ("wait", "tasks"):
        s = sub.add_parser(name)
        s.add_argument("dag_id")
        s.add_argument("run_id")
    lg = sub.add_parser("logs", help="a task's log (its latest try)")
    lg.add_argument("dag_id")
    lg.add_argument("run_id")
    lg.add_argument("task_id")
    rs = sub.add_parser(
        "reviews", help="human-in-the-loop tasks waiting for an answer (subject, body = the sample)"
    )
    rs.add_argument("--dag", default="~", help="only this DAG's")
    rs.add_argument("--all", action="store_true", help="answered ones too")
    rv = sub.add_parser(
        "review", help="answer a run's review task: approve (publish) or reject (publish nothing)"
    )
    rv.add_argument("dag_id")
    rv.add_argument("run_id")
    decision = rv.add_mutually_exclusive_group(required=True)
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", action="store_true")
    rv.add_argument(
        "--flag", action="append", default=[], metavar="ID", help="an item id to reject (repeatable)"
    )
    rv.add_argument("--task", default="review", help="the HITL task id (default: review)")
    args = p.parse_args(argv)
    client = local_client()
    if args.command == "reviews":
        for r in client.reviews(args.dag, pending=not args.all):
            ti = r["task_instance"]
            print(
                f"## {ti['dag_id']} {ti['dag_run_id']} {ti['task_id']}: {r['subject']} {r['options']}"
                f" answered={r['response_received']}\n{r.get('body') or ''}\n"
            )
        return 0
    if args.command == "review":
        answer = client.respond(
            args.dag_id,
            args.run_id,
            args.task,
            ["Approve" if args.approve else "Reject"],
            {"flag_ids": args.flag},
        )
        print(json.dumps(answer, default=str))
        return 0
    if args.command == "status":
        print(json.dumps(client.status(), indent=2))
        return 0
    if args.command == "logs":
        print(client.log(args.dag_id, args.run_id, args.task_id))
        return 0
    if args.command == "tasks":
        tasks = client.tasks(args.dag_id, args.run_id)
        print(json.dumps({t: ti["state"] for t, ti in tasks.items()}, indent=2))
        return 0
    if args.command == "trigger":
        run = client.trigger(args.dag_id, json.loads(args.conf))
        print(json.dumps({"dag_id": args.dag_id, "run_id": run["dag_run_id"], "state": run["state"]}))
        if not args.wait:
            return 0
        args.run_id = run["dag_run_id"]
    run = client.wait(args.dag_id, args.run_id)
    print(json.dumps({"dag_id": args.dag_id, "run_id": run["dag_run_id"], "state": run["state"]}))
    return 0 if run["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
