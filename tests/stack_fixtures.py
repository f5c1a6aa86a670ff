"""The local production stack (`python -m dags.stack`) as one session fixture, shared by every
tests/test_stack*.py file so that it comes up once (~60 s, ~5 GB). Loaded by tests/conftest.py through
`pytest_plugins`.

A test that takes the stack down (the `stack_last` marker) is moved to the end of the session, after every
other test that uses the stack; the fixture's own teardown then only confirms that nothing is left.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from curation.paths import REPO_ROOT
from dags.client import AirflowClient
from dags.service.config import StackConfig, ensure_secrets


def pytest_configure(config):
    config.addinivalue_line("markers", "stack_last: takes the stack down; runs after every other test")


def pytest_collection_modifyitems(config, items):
    # stable: the other tests keep their order, the stack_last ones follow them
    items.sort(key=lambda item: item.get_closest_marker("stack_last") is not None)


def stack_cli(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dags.stack", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A fresh stack (its own metadata database and broker db emptied) with its datasets in a temp dir.
    The services it needs are the machine's own: without Postgres or Redis the bring-up fails, naming the
    missing one; nothing is skipped."""
    installed = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "install_chromium.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert installed.returncode == 0, f"headless chromium could not be installed: {installed.stderr[-2000:]}"
    data = tmp_path_factory.mktemp("stack-data")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PHI_STACK_DATA_ROOT": str(data)}
    stack_cli("down", env=env)  # leftovers of an interrupted earlier session (only what it recorded)
    up = stack_cli("up", "--fresh", env=env)
    assert up.returncode == 0, f"stack up failed:\n{up.stderr[-5000:]}"
    yield StackConfig.from_env(env)
    down = stack_cli("down", env=env)
    assert down.returncode == 0, down.stderr[-3000:]


@pytest.fixture(scope="session")
def api(stack) -> AirflowClient:
    return AirflowClient(stack.api_url, stack.admin_user, ensure_secrets()["PHI_STACK_ADMIN_PASSWORD"])
