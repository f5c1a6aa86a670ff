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
    r = run_python(
        "import subprocess, sys\nwhile True:\n    subprocess.Popen([sys.executable, '-c', 'pass'])",
        timeout_s=3,
    )
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
        for code in (
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
            f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))",
            "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)",
        ):
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
    code = (
        f"import os, shutil\n"
        f"shutil.rmtree({str(sentinel.parent)!r})\n"
        f"os.remove({str(REPO_ROOT / 'pyproject.toml')!r})\n"
    )
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
            "read via /proc/<parent>/root": (
                f"import os\nprint(open(f'/proc/{{os.getppid()}}/root{sentinel}').read())"
            ),
        }
        for name, code in attacks.items():
            r = run_python(code, timeout_s=3, audit_hook=False)
            assert not r.passed, name
            assert "audit_hook" not in r.isolation and r.missing == []
            assert {"netns", "mountns_hide_project", "unprivileged_uid"} <= set(
                r.isolation
            )  # as the child reports
            assert "TOP-SECRET" not in r.stdout and "[project]" not in r.stdout
        server.settimeout(0.2)
        with pytest.raises(OSError):
            server.accept()
    finally:
        server.close()
    _assert_untouched(sentinel)


# ---- the non-root path: the same attacks from an unprivileged user -----------------------------------

# Runs as the unprivileged user: loads the sandbox (stdlib only), plants a secret it owns itself (so file
# permissions cannot be what protects it), runs each attack with the audit hook off and reports as JSON.
_UNPRIVILEGED_DRIVER = r"""
import json, logging, os, shutil, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from synthesis.textbook.verify import sandbox
port, mode = int(sys.argv[2]), sys.argv[3]
host = tempfile.mkdtemp(prefix="phi-host-")
secret = os.path.join(host, "secret.txt")
open(secret, "w").write("TOP-SECRET-4711")
project = os.path.join(sys.argv[1], "pyproject.toml")
attacks = {
    "benign": ("open('scratch.txt', 'w').write('x')\nprint(sorted(os.listdir('.')))", True),
    "loop": ("while True:\n    pass", False),
    "memory": ("x = bytearray(10 * 1024 ** 3)", False),
    "network": (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)", False),
    "read secret": (f"print(open({secret!r}).read())", False),
    "read project": (f"print(open({project!r}).read())", False),
    "read via /proc/<parent>/root": (
        f"print(open('/proc/%d/root' % os.getppid() + {secret!r}).read())", False),
    "parent environ": ("print(open('/proc/%d/environ' % os.getppid()).read())", False),
    "delete": (f"import shutil\nshutil.rmtree({host!r})", False),
    "fork bomb": ("while True:\n    os.fork()", False),
    "escapee": ("import time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(120)\n", False),
}
if mode == "no_userns":   # a kernel that forbids unprivileged user namespaces: the namespaces fail
    sandbox._CLONE_NEWUSER = 0
    attacks = {"benign": attacks["benign"], "network": (attacks["network"][0], True),
               "network without the hook": attacks["network"]}
out = {"uid": os.geteuid(), "results": {}}
for name, (code, hook) in attacks.items():
    r = sandbox.run_python("import os\n" + code, timeout_s=2, memory_mb=256, audit_hook=hook)
    out["results"][name] = {"passed": r.passed, "reason": r.reason, "isolation": r.isolation,
                            "missing": r.missing, "stdout": r.stdout, "stderr": r.stderr[-300:],
                            "seconds": r.seconds}
out["secret"] = open(secret).read()
def alive():   # our uid's processes but us; killed ones (zombies, or exiting: no cmdline left) aside
    found = []
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and int(p) != os.getpid() and os.stat(f"/proc/{p}").st_uid == os.geteuid():
                state = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]
                cmdline = open(f"/proc/{p}/cmdline").read()
                if state != "Z" and cmdline:
                    found.append(f"{p}:{state}:{cmdline[:60]}")
        except OSError:
            pass
    return found
for _ in range(20):
    out["leftover"] = alive()
    if not out["leftover"]:
        break
    time.sleep(0.1)
shutil.rmtree(host)
print(json.dumps(out))
"""


def _run_unprivileged(port: int, mode: str = "userns") -> tuple[dict, str]:
    """The driver as `nobody` when we are root (setpriv), else as ourselves: either way the sandbox takes its
    non-root branch. The system interpreter runs it: the venv's base interpreter may sit under /root."""
    import json
    import shutil
    import subprocess
    import sys

    if os.geteuid() == 0:
        setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
        if setpriv is None or not os.access(python, os.X_OK):
            pytest.skip("needs setpriv and /usr/bin/python3 to run the sandbox as an unprivileged user")
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python]
    else:
        cmd = [sys.executable]
    proc = subprocess.run(
        [*cmd, "-I", "-c", _UNPRIVILEGED_DRIVER, str(REPO_ROOT), str(port), mode],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    yield server
    server.close()


def test_non_root_path_contains_hostile_snippets(listener):
    """The branch an unprivileged worker takes (user namespace instead of root's uid drop), with the audit
    hook off: the OS layers alone time out the loop, cap memory, refuse the network, hide files outside the
    work dir (even ones our own uid may read and delete), keep /proc/<parent> closed and sweep escaped
    children."""
    out, _ = _run_unprivileged(listener.getsockname()[1])
    assert out["uid"] != 0
    res = out["results"]
    if "userns" not in res["benign"]["isolation"]:
        assert res["benign"]["missing"] == ["network", "host_files"]  # reported, not silently claimed
        pytest.skip("this kernel forbids unprivileged user namespaces (the sandbox reports it as missing)")
    for name, r in res.items():
        assert {"userns", "netns", "mountns_hide_project"} <= set(r["isolation"]), name
        assert "unprivileged_uid" not in r["isolation"] and r["missing"] == [], name
        assert (
            "TOP-SECRET" not in r["stdout"] and "[project]" not in r["stdout"] and "PATH=" not in r["stdout"]
        )
        assert r["passed"] == (name in ("benign", "escapee")), (name, r)
    assert res["benign"]["stdout"].strip() == "['main.py', 'scratch.txt']"
    assert res["loop"]["reason"] in ("timeout", "killed_by_SIGKILL", "killed_by_SIGXCPU")
    assert "MemoryError" in res["memory"]["stderr"]
    assert "unreachable" in res["network"]["stderr"] or "Errno" in res["network"]["stderr"]
    for name in ("read secret", "read project", "delete"):
        assert "FileNotFoundError" in res[name]["stderr"], name  # hidden, not merely forbidden
    for name in ("read via /proc/<parent>/root", "parent environ"):
        assert "PermissionError" in res[name]["stderr"], name
    assert "BlockingIOError" in res["fork bomb"]["stderr"] or res["fork bomb"]["reason"] == "timeout"
    assert out["secret"] == "TOP-SECRET-4711"
    assert out["leftover"] == []  # the escaped, sleeping child was swept with the user namespace
    with pytest.raises(OSError):
        listener.accept()


def test_non_root_path_without_user_namespaces_reports_what_is_missing(listener):
    """Where the kernel forbids unprivileged user namespaces the namespaces cannot be made: the result and a
    warning say so. The audit hook still refuses the network; without it a connection gets through, which is
    exactly what `missing` warns of."""
    out, stderr = _run_unprivileged(listener.getsockname()[1], mode="no_userns")
    res = out["results"]
    assert res["benign"]["passed"] and res["benign"]["missing"] == ["network", "host_files"]
    assert not {"netns", "userns", "mountns_hide_project"} & set(res["benign"]["isolation"])
    assert "no network / host_files containment" in stderr
    assert not res["network"]["passed"] and "sandbox: socket" in res["network"]["stderr"]
    assert res["network without the hook"]["passed"]
    listener.accept()[0].close()
