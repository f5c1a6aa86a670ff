"""The code sandbox against hostile snippets: each one is contained, reported as a failure, and the host
(files beside the sandbox, the project, the network, the process table) is left untouched."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from curation.paths import REPO_ROOT
from synthesis.textbook.verify.sandbox import run_python


@pytest.fixture
def sentinel(tmp_path):
    """A secret file outside the sandbox's working directory; its survival proves the host was not touched."""
    d = tmp_path / "host"
    d.mkdir()
    f = d / "secret.txt"
    f.write_text("TOP-SECRET-4711")
    return f


def _assert_untouched(sentinel):
    assert sentinel.read_text() == "TOP-SECRET-4711"
    assert (REPO_ROOT / "pyproject.toml").is_file()


def test_passing_and_failing_code_are_told_apart():
    ok = run_python("def add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint('fine')")
    assert ok.passed and ok.reason == "passed" and "fine" in ok.stdout
    bad = run_python("def add(a, b):\n    return a - b\nassert add(2, 3) == 5")
    assert not bad.passed and bad.reason == "tests_failed" and "AssertionError" in bad.stderr


def test_infinite_loop_times_out():
    t0 = time.monotonic()
    r = run_python("while True:\n    pass", timeout_s=2)
    assert not r.passed and r.reason in ("timeout", "killed_by_SIGKILL", "killed_by_SIGXCPU")
    assert time.monotonic() - t0 < 15


def test_fork_bomb_is_contained(sentinel):
    before = len(os.listdir("/proc"))
    r = run_python("import os\nwhile True:\n    os.fork()", timeout_s=3)
    assert not r.passed
    time.sleep(0.5)
    # no stray processes: the table is about as large as before (other engineers' jobs come and go)
    assert len(os.listdir("/proc")) < before + 20
    _assert_untouched(sentinel)


def test_fork_bomb_via_subprocess_is_contained():
    r = run_python("import subprocess, sys\nwhile True:\n    subprocess.Popen([sys.executable, '-c', 'pass'])",
                   timeout_s=3)
    assert not r.passed


def test_ten_gigabyte_allocation_fails_inside():
    r = run_python("x = bytearray(10 * 1024 ** 3)\nprint(len(x))", memory_mb=512)
    assert not r.passed and "MemoryError" in r.stderr


def test_network_access_is_refused():
    # a real listener on the host's loopback: the snippet must not reach it
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass
    t = threading.Thread(target=accept)
    t.start()
    try:
        for code in (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
                     f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))",
                     "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)"):
            r = run_python(code, timeout_s=5)
            assert not r.passed, code
    finally:
        t.join()
        server.close()
    assert not accepted


def test_reading_files_outside_the_workdir_fails(sentinel):
    for path in (sentinel, REPO_ROOT / "pyproject.toml", "/etc/shadow"):
        r = run_python(f"print(open({str(path)!r}).read())")
        assert not r.passed, path
        assert "TOP-SECRET" not in r.stdout and "[project]" not in r.stdout


def test_deleting_files_fails_and_host_is_untouched(sentinel):
    code = (f"import os, shutil\n"
            f"shutil.rmtree({str(sentinel.parent)!r})\n"
            f"os.remove({str(REPO_ROOT / 'pyproject.toml')!r})\n")
    r = run_python(code)
    assert not r.passed
    _assert_untouched(sentinel)


def test_environment_secrets_are_not_inherited(monkeypatch):
    monkeypatch.setenv("PHI_TEST_SECRET", "hunter2")
    r = run_python("import os\nprint(sorted(os.environ))\nassert 'PHI_TEST_SECRET' not in os.environ")
    assert r.passed and "hunter2" not in r.stdout


def test_the_project_venv_is_not_importable():
    r = run_python("import pyarrow")
    assert not r.passed and "ModuleNotFoundError" in r.stderr


def test_writing_in_the_workdir_works_and_is_thrown_away():
    r = run_python("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.path.abspath('scratch.txt'))")
    assert r.passed
    assert not os.path.exists(r.stdout.strip())


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace + uid layers need root (containers, CI)")
def test_operating_system_layers_contain_without_the_audit_hook(sentinel):
    """Defence in depth: with the in-interpreter audit hook off, namespaces, the uid drop and rlimits alone
    stop the same attacks."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        attacks = {
            "fork bomb": "import os\nwhile True:\n    os.fork()",
            "network": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
            "read": f"print(open({str(sentinel)!r}).read())",
            "read project": f"print(open({str(REPO_ROOT / 'pyproject.toml')!r}).read())",
            "delete": f"import shutil\nshutil.rmtree({str(sentinel.parent)!r})",
        }
        for name, code in attacks.items():
            r = run_python(code, timeout_s=3, audit_hook=False)
            assert not r.passed, name
            assert "audit_hook" not in r.isolation
            assert "TOP-SECRET" not in r.stdout and "[project]" not in r.stdout
        server.settimeout(0.2)
        with pytest.raises(OSError):
            server.accept()
    finally:
        server.close()
    _assert_untouched(sentinel)
