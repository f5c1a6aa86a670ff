"""The local stack's settings: ports, services, paths and secrets, and the environment every process gets.

Defaults are the ports assigned to this project's local stack (high, non-default ports so that a developer's
own Airflow or Spark on 8080/7077 does not collide); each is overridable by `PHI_STACK_<FIELD>` (upper case,
tuples comma-separated). The Airflow settings shared with compose come from docker/airflow.env (one source
of truth); secrets come from the repository's `.env` (generated on first use, git-ignored), the file compose
reads.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation.paths import REPO_ROOT

SHARED_ENV_FILE = REPO_ROOT / "docker" / "airflow.env"
SECRETS_FILE = REPO_ROOT / ".env"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
POOLS_FILE = REPO_ROOT / "docker" / "pools.json"


class StackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = REPO_ROOT / "out" / "stack"  # logs/, pids, airflow home, spark work dirs
    data_root: Path | None = None  # PHI_DATA_ROOT of the stack; default state_dir/data
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_database: str = "phi_airflow"
    # the Iceberg catalog of the stack's dataset tables (curation/tables): its own database on the same server
    iceberg_database: str = "phi_iceberg"
    # where the web corpus lives: version folders (mirrored into the tables) or the table alone
    # (PHI_CORPUS_STORE, dags/lib/table_store.py)
    corpus_store: Literal["folders", "table"] = "folders"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = Field(11, ge=0, le=15)  # the Celery broker's own db number
    api_port: int = 28080
    scheduler_health_port: int = 28974
    triggerer_log_port: int = 28795
    worker_log_ports: tuple[int, int] = (28793, 28794)  # queue default, queue gpu
    spark_master_port: int = 27077
    spark_ui_port: int = 28180
    spark_worker_ui_ports: tuple[int, int] = (28181, 28182)
    spark_worker_memory: str = "1g"
    # sized for a shared 2-core machine: a handful of task slots, one parsing process
    parallelism: int = 4
    default_worker_concurrency: int = 2
    # a task whose worker died (no heartbeat for this long) is failed and retried; Airflow's default is 300 s
    task_heartbeat_timeout_s: int = Field(60, ge=10)
    admin_user: str = "admin"

    @field_validator("worker_log_ports", "spark_worker_ui_ports", mode="before")
    @classmethod
    def _split(cls, v):
        return tuple(int(p) for p in v.split(",")) if isinstance(v, str) else v

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> StackConfig:
        environ = os.environ if environ is None else environ
        given = {
            name: environ[f"PHI_STACK_{name.upper()}"]
            for name in cls.model_fields
            if environ.get(f"PHI_STACK_{name.upper()}")
        }
        return cls(**given)

    # ---- derived locations
    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def datasets(self) -> Path:
        return self.data_root or self.state_dir / "data"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def spark_master_url(self) -> str:
        return f"spark://127.0.0.1:{self.spark_master_port}"

    @property
    def spark_ui_url(self) -> str:
        return f"http://127.0.0.1:{self.spark_ui_port}"

    @property
    def pg_url(self) -> str:
        return f"postgresql://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_database}"

    @property
    def iceberg_catalog_uri(self) -> str:
        return f"postgresql+psycopg2://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.iceberg_database}"

    @property
    def warehouse(self) -> Path:
        """The Iceberg warehouse (data and metadata files of the tables), in the data root as in compose."""
        return self.datasets / "_warehouse"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (the subset of the dotenv format compose and this stack both read: no quotes,
    no interpolation); comments and blank lines ignored. A malformed line is an error naming it."""
    values = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{path}:{n}: expected KEY=VALUE, got {line!r}")
        values[key.strip()] = value.strip()
    return values


def ensure_secrets(path: Path = SECRETS_FILE) -> dict[str, str]:
    """The stack's secrets from `.env`, generating the missing ones (first run: `.env.example` filled in).
    The same file and names compose uses, so `docker compose` and `make stack` share one set of secrets."""
    from cryptography.fernet import Fernet

    if not path.exists():
        path.write_text(ENV_EXAMPLE.read_text())
    values = read_env_file(path)
    generated = {
        "AIRFLOW_FERNET_KEY": lambda: Fernet.generate_key().decode(),
        "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(48),
        "PHI_STACK_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12),
    }
    missing = {k: make() for k, make in generated.items() if not values.get(k)}
    if missing:
        kept = [ln for ln in path.read_text().splitlines() if ln.partition("=")[0].strip() not in missing]
        kept += [f"{k}={v}" for k, v in missing.items()]
        path.write_text("\n".join(kept) + "\n")
        values.update(missing)
    path.chmod(0o600)
    return values


def airflow_env(cfg: StackConfig, secret: dict[str, str]) -> dict[str, str]:
    """Environment of every Airflow process of the local stack: the shared settings of docker/airflow.env,
    then the host-specific ones (what compose's x-airflow-common sets with container names)."""
    venv_bin = Path(sys.executable).parent
    spark_conn = {"conn_type": "spark", "host": "spark://127.0.0.1", "port": cfg.spark_master_port}
    import json

    env = {
        **read_env_file(SHARED_ENV_FILE),
        "AIRFLOW_HOME": str(cfg.airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{cfg.pg_url.removeprefix('postgresql://')}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{cfg.pg_url}",
        "AIRFLOW__CELERY__BROKER_URL": cfg.redis_url,
        "AIRFLOW__CORE__FERNET_KEY": secret["AIRFLOW_FERNET_KEY"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secret["AIRFLOW_JWT_SECRET"],
        "AIRFLOW__API__SECRET_KEY": secret["AIRFLOW_JWT_SECRET"],
        "AIRFLOW__API__BASE_URL": cfg.api_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{cfg.api_url}/execution/",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{cfg.admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(cfg.airflow_home / "passwords.json"),
        "AIRFLOW__CORE__PARALLELISM": str(cfg.parallelism),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(cfg.default_worker_concurrency),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(cfg.scheduler_health_port),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(cfg.task_heartbeat_timeout_s),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(cfg.triggerer_log_port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(cfg.worker_log_ports[0]),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(cfg.logs_dir / "tasks"),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(spark_conn),
        "SPARK_MASTER": cfg.spark_master_url,
        "SPARK_DRIVER_MEMORY": "1g",
        "PHI_DATA_ROOT": str(cfg.datasets),
        # every dataset version that goes live is also an Iceberg table snapshot (curation/tables/publish.py)
        "PHI_ICEBERG_WAREHOUSE": str(cfg.warehouse),
        "PHI_ICEBERG_CATALOG_URI": cfg.iceberg_catalog_uri,
        "PHI_CORPUS_STORE": cfg.corpus_store,
        "PHI_GPU_QUEUE": "gpu",
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
    }
    return env


def spark_env(cfg: StackConfig) -> dict[str, str]:
    """Environment of the Spark daemons, the drivers spark-submit starts and (inherited) their executors."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    return {
        "SPARK_HOME": str(spark_home),
        "SPARK_CONF_DIR": str(cfg.state_dir / "spark" / "conf"),
        "SPARK_LOG_DIR": str(cfg.logs_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": "384m",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO_ROOT),  # executors' Python workers import this checkout's code
    }


def spark_defaults(cfg: StackConfig) -> str:
    """spark-defaults.conf of the cluster: what every application submitted to it gets unless its
    spark-submit --conf says otherwise (curation/spark.py leaves these alone on a cluster)."""
    return "\n".join(
        [
            f"spark.master {cfg.spark_master_url}",
            "spark.driver.host 127.0.0.1",
            "spark.driver.bindAddress 127.0.0.1",
            "spark.executor.cores 1",
            "spark.executor.memory 768m",
            "spark.sql.adaptive.enabled true",
            "spark.sql.adaptive.coalescePartitions.enabled true",
            f"spark.executorEnv.PYTHONPATH {REPO_ROOT}",
            "spark.executorEnv.PHI_MODELS_DIR "
            f"{os.environ.get('PHI_MODELS_DIR', REPO_ROOT / '.cache' / 'models')}",
            "spark.ui.showConsoleProgress false",
            "",
        ]
    )
