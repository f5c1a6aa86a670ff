"""The stack's configuration without starting it: one source of Airflow settings for compose and the local
stack, the preflight's errors when Postgres or Redis is missing, and the Spark session's respect for
spark-submit --conf (fast; the stack itself runs in tests/dags/test_stack.py)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from curation.paths import REPO_ROOT
from dags.service.config import SHARED_ENV_FILE, StackConfig, airflow_env, read_env_file
from dags.service.health import ServiceMissing, check_postgres, check_redis

COMPOSE = REPO_ROOT / "docker-compose.yml"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
    "trainer",
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    """Compose's resolved configuration (the real Compose v2 binary, as in tests/dags/test_compose.py)."""
    from cryptography.fernet import Fernet
    from test_compose import compose_binary, run_compose

    docker = tmp_path_factory.mktemp("docker-config")
    (docker / "cli-plugins").mkdir()
    (docker / "cli-plugins" / "docker-compose").symlink_to(compose_binary())
    env_file = docker / ".env"
    env_file.write_text(
        f"AIRFLOW_FERNET_KEY={Fernet.generate_key().decode()}\n"
        f"AIRFLOW_JWT_SECRET={secrets.token_urlsafe(48)}\n"
    )
    proc = run_compose(docker, "--profile", "gpu", "config", "--format", "json", env_file=env_file)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_compose_and_the_local_stack_read_one_settings_file(config):
    shared = read_env_file(SHARED_ENV_FILE)
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in AIRFLOW_SERVICES:
        env = config["services"][name]["environment"]
        assert {k: env.get(k) for k in shared} == shared, name
    local = airflow_env(StackConfig(), {"AIRFLOW_FERNET_KEY": "k", "AIRFLOW_JWT_SECRET": "s"})
    assert {k: local[k] for k in shared} == shared
    # written once: compose's own environment blocks do not repeat a shared key
    assert not [k for k in shared if f"{k}:" in COMPOSE.read_text()]


def test_every_airflow_service_gets_the_alert_settings(config):
    """The notifier settings dags/lib/alerts.py reads reach every Airflow process: task failures alert from
    the workers, DAG failures from the dag-processor, the nightly deadline from the triggerer."""
    import re

    names = set(re.findall(r"PHI_ALERT_[A-Z_]+", (REPO_ROOT / "dags" / "lib" / "alerts.py").read_text()))
    assert {"PHI_ALERT_LOG", "PHI_ALERT_WEBHOOK", "PHI_ALERT_SMTP_HOST", "PHI_ALERT_EMAIL_TO"} <= names
    for name in AIRFLOW_SERVICES:
        env = config["services"][name]["environment"]
        assert sorted(names - set(env)) == [], name
    assert config["services"]["airflow-worker"]["environment"]["PHI_ALERT_SMTP_PORT"] == "25"


def test_compose_and_the_local_stack_keep_the_tables_catalog_on_postgres(config):
    """Every published dataset version is also a table snapshot (curation/tables/publish.py): the catalog is
    a database of the stack's PostgreSQL, created by compose's init script and by the local stack's
    preflight."""
    init = {v["target"]: v["source"] for v in config["services"]["postgres"]["volumes"]}
    script = Path(init["/docker-entrypoint-initdb.d"]) / "10-iceberg.sql"
    assert "CREATE DATABASE iceberg" in script.read_text()
    for name in AIRFLOW_SERVICES:
        env = config["services"][name]["environment"]
        assert env["PHI_ICEBERG_CATALOG_URI"].endswith("@postgres/iceberg"), name
        assert env["PHI_ICEBERG_WAREHOUSE"] == "/opt/phi/data/_warehouse", name
        assert env["PHI_CORPUS_STORE"] == "folders", name  # the table store is opted into
    cfg = StackConfig()
    local = airflow_env(cfg, {"AIRFLOW_FERNET_KEY": "k", "AIRFLOW_JWT_SECRET": "s"})
    assert local["PHI_ICEBERG_CATALOG_URI"] == cfg.iceberg_catalog_uri
    assert local["PHI_ICEBERG_CATALOG_URI"].endswith(f"/{cfg.iceberg_database}")
    assert local["PHI_ICEBERG_WAREHOUSE"] == str(cfg.datasets / "_warehouse")
    assert local["PHI_CORPUS_STORE"] == "folders"
    assert (
        airflow_env(
            StackConfig(corpus_store="table"), {"AIRFLOW_FERNET_KEY": "k", "AIRFLOW_JWT_SECRET": "s"}
        )["PHI_CORPUS_STORE"]
        == "table"
    )


def test_airflow_init_fills_the_models_volume(config):
    init = config["services"]["airflow-init"]
    script = " ".join(init["command"])
    models = init["environment"]["PHI_MODELS_DIR"]
    assert f"PHI_MODELS_DIR={models} bash /opt/phi/scripts/fetch_models.sh" in script
    assert models == config["services"]["airflow-worker"]["environment"]["PHI_MODELS_DIR"]
    mounts = {v["target"]: v["source"] for v in init["volumes"]}
    assert mounts["/opt/phi/data"] == "phi-data" and models.startswith("/opt/phi/data/")


def test_settings_come_from_the_environment_and_are_checked():
    cfg = StackConfig.from_env({"PHI_STACK_API_PORT": "29080", "PHI_STACK_WORKER_LOG_PORTS": "29793,29794"})
    assert cfg.api_url == "http://127.0.0.1:29080" and cfg.worker_log_ports == (29793, 29794)
    with pytest.raises(ValidationError, match="api_port"):
        StackConfig.from_env({"PHI_STACK_API_PORT": "http"})
    with pytest.raises(ValidationError, match="redis_db"):
        StackConfig(redis_db=16)
    from dags.stack import all_ports

    ports = all_ports(StackConfig())
    assert len(ports) == len(set(ports)) and all(p > 20000 for p in ports)


def test_a_missing_postgres_or_redis_is_named():
    with pytest.raises(ServiceMissing, match=r"PostgreSQL is not reachable at 127\.0\.0\.1:\d+"):
        check_postgres(StackConfig(pg_port=closed_port()))
    with pytest.raises(ServiceMissing, match=r"Redis is not reachable at 127\.0\.0\.1:\d+"):
        check_redis(StackConfig(redis_port=closed_port()))
    check_redis(StackConfig())  # the machine's own servers answer
    check_postgres(StackConfig())


def test_up_refuses_to_start_without_postgres(tmp_path):
    """No SQLite fallback: the CLI exits non-zero naming the service, and starts nothing."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PHI_STACK_STATE_DIR": str(tmp_path / "stack"),
        "PHI_STACK_PG_PORT": str(closed_port()),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "dags.stack", "up"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "PostgreSQL is not reachable" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "stack" / "stack.json").exists()


def test_restart_names_what_is_missing(tmp_path):
    """`python -m dags.stack restart NAME` needs a running stack and one of its services (the soak restarts a
    killed worker with it: tests/dags/test_stack_soak.py)."""
    from dags.stack import restart, write_state

    cfg = StackConfig(state_dir=tmp_path / "stack")
    with pytest.raises(RuntimeError, match=r"the stack is not running .*make stack"):
        restart(cfg, "spark-worker-1")
    cfg.state_dir.mkdir()
    write_state(cfg, "r1", [])
    with pytest.raises(RuntimeError, match=r"no service 'celery-typo' in the stack"):
        restart(cfg, "celery-typo")


SESSION = """
from curation.spark import get_spark
s = get_spark()
conf = s.conf
print("CONF", conf.get("spark.sql.shuffle.partitions"), conf.get("spark.sql.execution.arrow.pyspark.enabled"))
s.stop()
"""


@pytest.mark.parametrize("conf, expected", [([], "8"), (["--conf", "spark.sql.shuffle.partitions=3"], "3")])
def test_the_spark_session_keeps_spark_submit_conf(tmp_path, conf, expected):
    app = tmp_path / "app.py"
    app.write_text(SESSION)
    submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("SPARK_SHUFFLE_PARTITIONS", None)
    proc = subprocess.run(
        [submit, "--master", "local[1]", *conf, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"CONF {expected} true" in proc.stdout
