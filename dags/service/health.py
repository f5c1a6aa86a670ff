"""The stack's external services (Postgres, Redis) and the health checks `up` waits for.

Postgres and Redis are not started by the stack: they are the machine's own servers. When one is not
reachable the stack refuses to start and says which one and where; it never falls back to SQLite.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import httpx

from dags.service.config import StackConfig

log = logging.getLogger(__name__)


class ServiceMissing(RuntimeError):
    """A service the stack needs is not reachable (the message names it and its address)."""


def check_postgres(cfg: StackConfig, fresh: bool = False) -> None:
    """Connect to the server, create the stack's databases (Airflow's metadata, the Iceberg catalog) if
    missing (drop them first when `fresh`)."""
    import psycopg2

    try:
        conn = psycopg2.connect(
            host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname="postgres", connect_timeout=5
        )
    except psycopg2.OperationalError as e:
        raise ServiceMissing(
            f"PostgreSQL is not reachable at {cfg.pg_host}:{cfg.pg_port} as user {cfg.pg_user!r} "
            f"(Airflow's metadata database; set PHI_STACK_PG_HOST/PHI_STACK_PG_PORT/"
            f"PHI_STACK_PG_USER): {str(e).strip()}"
        ) from e
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for database in (cfg.pg_database, cfg.iceberg_database):
                if fresh:
                    cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{database}"')
    finally:
        conn.close()


def check_redis(cfg: StackConfig, fresh: bool = False) -> None:
    """PING the broker (and empty the stack's own db number when `fresh`: stale Celery messages)."""
    import redis

    client = redis.Redis(host=cfg.redis_host, port=cfg.redis_port, db=cfg.redis_db, socket_connect_timeout=5)
    try:
        client.ping()
        if fresh:
            client.flushdb()
    except redis.exceptions.ConnectionError as e:
        raise ServiceMissing(
            f"Redis is not reachable at {cfg.redis_host}:{cfg.redis_port} (the Celery broker; "
            f"set PHI_STACK_REDIS_HOST/PHI_STACK_REDIS_PORT): {e}"
        ) from e
    finally:
        client.close()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def busy_ports(ports: list[int]) -> list[int]:
    return [p for p in ports if port_open(p)]


def get_json(url: str, timeout: float = 3.0):
    try:
        r = httpx.get(url, timeout=timeout)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def http_ok(url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def airflow_health(cfg: StackConfig) -> dict[str, str]:
    """Component -> status from the api-server's /api/v2/monitor/health (empty if it does not answer)."""
    body = get_json(f"{cfg.api_url}/api/v2/monitor/health") or {}
    return {name: (part or {}).get("status") or "unknown" for name, part in body.items()}


def spark_workers(cfg: StackConfig) -> list[dict]:
    body = get_json(f"{cfg.spark_ui_url}/json/") or {}
    return [w for w in body.get("workers", []) if w.get("state") == "ALIVE"]


def checks(cfg: StackConfig) -> dict[str, Callable[[], bool]]:
    """What "up" means, one named check each."""

    def component(name):
        return lambda: airflow_health(cfg).get(name) == "healthy"

    return {
        "api-server /api/v2/monitor/health": lambda: bool(airflow_health(cfg)),
        "metadatabase": component("metadatabase"),
        "scheduler heartbeat": component("scheduler"),
        "triggerer heartbeat": component("triggerer"),
        "dag-processor heartbeat": component("dag_processor"),
        "scheduler /health": lambda: http_ok(f"http://127.0.0.1:{cfg.scheduler_health_port}/health"),
        "celery worker (default) log server": lambda: port_open(cfg.worker_log_ports[0]),
        "celery worker (gpu) log server": lambda: port_open(cfg.worker_log_ports[1]),
        "spark master: 2 alive workers": lambda: len(spark_workers(cfg)) == 2,
    }


def wait_healthy(cfg: StackConfig, timeout_s: float, on_poll: Callable[[], None] = lambda: None) -> None:
    """Poll every check until all pass; `on_poll` runs each round (it raises when a process died).
    On timeout, the error lists the checks still failing."""
    pending = checks(cfg)
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    while pending:
        on_poll()
        passed = [name for name, ok in pending.items() if ok()]
        for name in passed:
            log.info("healthy after %.0f s: %s", time.monotonic() - t0, name)
            del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack not healthy after {timeout_s:.0f} s; failing: {', '.join(pending)}")
        time.sleep(1.0)
