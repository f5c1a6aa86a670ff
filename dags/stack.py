"""The production topology on one machine, without Docker: `python -m dags.stack up|down|status|restart NAME`
(`make stack`, `make stack-down`, `make stack-status`).

  Spark standalone  master + 2 workers (1 core each), pyspark's own spark-class, bound to 127.0.0.1
  Airflow 3         db migrate, api-server, scheduler, dag-processor, triggerer,
                    Celery workers for queue `default` and queue `gpu`
  external          PostgreSQL (metadata DB `phi_airflow`), Redis (Celery broker) - the machine's servers

Settings: dags/service/config.py (ports, PHI_STACK_* overrides), docker/airflow.env (shared with compose),
`.env` (secrets, generated). Logs, pids and the Airflow home live under out/stack/ (OPERATIONS.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from curation.paths import REPO_ROOT
from dags.service import health
from dags.service.config import (
    POOLS_FILE,
    StackConfig,
    airflow_env,
    ensure_secrets,
    spark_defaults,
    spark_env,
)
from dags.service.processes import (
    MARKER,
    Service,
    log_tail,
    marked,
    rss_bytes,
    stack_pids,
    start,
    stop,
    stop_group,
)

log = logging.getLogger("dags.stack")


def spark_services(cfg: StackConfig) -> list[tuple[str, list[str], dict]]:
    spark_class = str(Path(spark_env(cfg)["SPARK_HOME"]) / "bin" / "spark-class")
    master = [
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        str(cfg.spark_master_port),
        "--webui-port",
        str(cfg.spark_ui_port),
    ]
    out = [("spark-master", [spark_class, *master], {})]
    for n, ui_port in enumerate(cfg.spark_worker_ui_ports, 1):
        worker = [
            "org.apache.spark.deploy.worker.Worker",
            cfg.spark_master_url,
            "--host",
            "127.0.0.1",
            "--cores",
            "1",
            "--memory",
            cfg.spark_worker_memory,
            "--webui-port",
            str(ui_port),
            "--work-dir",
            str(cfg.state_dir / "spark" / f"work-{n}"),
        ]
        out.append((f"spark-worker-{n}", [spark_class, *worker], {}))
    return out


def airflow_services(cfg: StackConfig) -> list[tuple[str, list[str], dict]]:
    airflow = str(Path(sys.executable).parent / "airflow")
    workers = [
        (
            f"celery-{queue}",
            [
                airflow,
                "celery",
                "worker",
                "--queues",
                queue,
                "--concurrency",
                str(conc),
                "--celery-hostname",
                f"{queue}@%h",
            ],
            {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port)},
        )
        for queue, conc, port in (
            ("default", cfg.default_worker_concurrency, cfg.worker_log_ports[0]),
            ("gpu", 1, cfg.worker_log_ports[1]),
        )
    ]
    return [
        ("api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port", str(cfg.api_port)], {}),
        ("scheduler", [airflow, "scheduler"], {}),
        ("dag-processor", [airflow, "dag-processor"], {}),
        ("triggerer", [airflow, "triggerer"], {}),
        *workers,
    ]


def all_ports(cfg: StackConfig) -> list[int]:
    return [
        cfg.api_port,
        cfg.scheduler_health_port,
        cfg.triggerer_log_port,
        *cfg.worker_log_ports,
        cfg.spark_master_port,
        cfg.spark_ui_port,
        *cfg.spark_worker_ui_ports,
    ]


def read_state(cfg: StackConfig) -> dict | None:
    return json.loads(cfg.state_file.read_text()) if cfg.state_file.is_file() else None


def write_state(cfg: StackConfig, run_id: str, services: list[Service], **extra) -> None:
    state = {"run_id": run_id, "services": [s.as_dict() for s in services], **extra}
    cfg.state_file.write_text(json.dumps(state, indent=2))


def prepare(cfg: StackConfig, fresh: bool) -> dict[str, str]:
    """Preflight and files: services reachable, database present, secrets, Airflow home, Spark conf."""
    state = read_state(cfg)
    if state and (any(Service(**s).alive() for s in state["services"]) or marked(state["run_id"])):
        raise RuntimeError(
            f"the stack is already running (pids in {cfg.state_file}); `make stack-down` first"
        )
    health.check_postgres(cfg)
    health.check_redis(cfg)
    busy = health.busy_ports(all_ports(cfg))
    if busy:
        raise RuntimeError(
            f"ports already in use on 127.0.0.1: {busy}; free them or set PHI_STACK_*_PORT "
            f"(dags/service/config.py)"
        )
    if fresh:  # only now: never drop the database under a running stack
        health.check_postgres(cfg, fresh=True)
        health.check_redis(cfg, fresh=True)
        shutil.rmtree(cfg.warehouse, ignore_errors=True)  # its catalog was just dropped
    secret = ensure_secrets()
    for d in (cfg.airflow_home, cfg.logs_dir, cfg.state_dir / "spark" / "conf", cfg.datasets, cfg.warehouse):
        d.mkdir(parents=True, exist_ok=True)
    (cfg.airflow_home / "passwords.json").write_text(
        json.dumps({cfg.admin_user: secret["PHI_STACK_ADMIN_PASSWORD"]})
    )
    (cfg.state_dir / "spark" / "conf" / "spark-defaults.conf").write_text(spark_defaults(cfg))
    return secret


def migrate(env: dict[str, str], cfg: StackConfig) -> None:
    import subprocess

    path = cfg.logs_dir / "db-migrate.log"
    with open(path, "ab") as out:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed (exit {proc.returncode}); {path}:\n{log_tail(path)}")


def create_pools(cfg: StackConfig, password: str) -> None:
    """docker/pools.json through the REST API (what `airflow pools import` does in compose's airflow-init)."""
    from dags.client import AirflowClient

    client = AirflowClient(cfg.api_url, cfg.admin_user, password)
    for name, pool in json.loads(POOLS_FILE.read_text()).items():
        client.upsert_pool(
            name, pool["slots"], pool.get("description", ""), pool.get("include_deferred", False)
        )


def service_specs(cfg: StackConfig, run_id: str, secret: dict[str, str]) -> dict[str, tuple[list[str], dict]]:
    """name -> (argv, environment) of every service, in start order (Spark first), marked with `run_id`."""
    base = {**os.environ, **spark_env(cfg), MARKER: run_id}
    env = {**base, **airflow_env(cfg, secret)}
    specs = {name: (argv, {**base, **extra}) for name, argv, extra in spark_services(cfg)}
    specs |= {name: (argv, {**env, **extra}) for name, argv, extra in airflow_services(cfg)}
    return specs


def up(cfg: StackConfig, fresh: bool = False, timeout_s: float = 180.0) -> dict:
    t0 = time.monotonic()
    secret = prepare(cfg, fresh)
    run_id = uuid.uuid4().hex[:12]
    specs = service_specs(cfg, run_id, secret)
    spark = [name for name, _, _ in spark_services(cfg)]
    services: list[Service] = []
    try:
        for name in spark:
            services.append(start(name, *specs[name], cfg.logs_dir, REPO_ROOT))
        write_state(cfg, run_id, services)
        migrate({**os.environ, **spark_env(cfg), MARKER: run_id, **airflow_env(cfg, secret)}, cfg)
        for name, (argv, env) in specs.items():
            if name not in spark:
                services.append(start(name, argv, env, cfg.logs_dir, REPO_ROOT))
        write_state(cfg, run_id, services)

        def died():
            dead = [s for s in services if not s.alive()]
            if dead:
                raise RuntimeError(
                    "; ".join(f"{s.name} exited during bring-up; {s.log}:\n{log_tail(s.log)}" for s in dead)
                )

        health.wait_healthy(cfg, timeout_s - (time.monotonic() - t0), on_poll=died)
        create_pools(cfg, secret["PHI_STACK_ADMIN_PASSWORD"])
    except BaseException:
        left = stop(services, run_id)
        log.error("bring-up failed; stopped what was started%s", f" (still alive: {left})" if left else "")
        raise
    took = time.monotonic() - t0
    write_state(cfg, run_id, services, up_seconds=round(took, 1), started_at=time.time())
    return {"run_id": run_id, "up_seconds": round(took, 1), "api": cfg.api_url, "spark_ui": cfg.spark_ui_url}


def down(cfg: StackConfig) -> list[int]:
    """Stop what the last `up` started; returns pids still alive (empty: all gone)."""
    state = read_state(cfg)
    if state is None:
        return []
    left = stop([Service(**s) for s in state["services"]], state["run_id"])
    if not left:
        cfg.state_file.unlink()
    return left


def restart(cfg: StackConfig, name: str, timeout_s: float = 180.0) -> dict:
    """Start one service of the running stack again (after it died, or stop it first): the command and
    environment `up` builds (from the caller's environment, as `up` from its own) with the stack's run marker,
    recorded in the state file so that `down` stops the new process too."""
    state = read_state(cfg)
    if state is None:
        raise RuntimeError(f"the stack is not running (no {cfg.state_file}); `make stack` first")
    services = [Service(**s) for s in state["services"]]
    old = next((s for s in services if s.name == name), None)
    if old is None:
        raise RuntimeError(f"no service {name!r} in the stack; services: {[s.name for s in services]}")
    if old.alive():
        stop_group(old.pid)
    t0 = time.monotonic()
    argv, env = service_specs(cfg, state["run_id"], ensure_secrets())[name]
    new = start(name, argv, env, cfg.logs_dir, REPO_ROOT)
    services = [new if s.name == name else s for s in services]
    extra = {k: v for k, v in state.items() if k not in ("run_id", "services")}
    write_state(cfg, state["run_id"], services, **extra)
    health.wait_healthy(cfg, timeout_s)
    return {"service": name, "pid": new.pid, "replaced": old.pid, "seconds": round(time.monotonic() - t0, 1)}


def status(cfg: StackConfig) -> dict:
    state = read_state(cfg)
    if state is None:
        return {"running": False}
    services = {
        s["name"]: {"pid": s["pid"], "alive": Service(**s).alive(), "log": s["log"]}
        for s in state["services"]
    }
    pids = stack_pids([Service(**s) for s in state["services"]], state["run_id"])
    return {
        "running": any(s["alive"] for s in services.values()),
        "services": services,
        "airflow_health": health.airflow_health(cfg),
        "spark_alive_workers": len(health.spark_workers(cfg)),
        "processes": len(pids),
        "rss_mib": round(rss_bytes(pids) / 2**20),
        "api": cfg.api_url,
        "spark_ui": cfg.spark_ui_url,
        "up_seconds": state.get("up_seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dags.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "restart"])
    parser.add_argument("service", nargs="?", help="restart: a service (e.g. spark-worker-1, celery-default)")
    parser.add_argument(
        "--fresh", action="store_true", help="up: drop the stack's database and broker db first"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="up: seconds to wait for health")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cfg = StackConfig.from_env()
    try:
        if args.command == "up":
            print(json.dumps(up(cfg, fresh=args.fresh, timeout_s=args.timeout), indent=2))
        elif args.command == "down":
            left = down(cfg)
            if left:
                print(f"still alive after stop: {left}", file=sys.stderr)
                return 1
            print("stack stopped")
        elif args.command == "restart":
            if not args.service:
                parser.error("restart needs a service name (see `status`)")
            print(json.dumps(restart(cfg, args.service, timeout_s=args.timeout), indent=2))
        else:
            print(json.dumps(status(cfg), indent=2))
    except (health.ServiceMissing, RuntimeError, TimeoutError) as e:
        print(f"stack {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
