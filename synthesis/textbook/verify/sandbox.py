"""Run untrusted teacher-written Python in a sandbox and say whether it passed.

Layers, each of which alone stops a class of damage (the tests in tests/synthesis/test_sandbox.py attack all
of them):
- a separate process with the base interpreter in isolated mode (`-I -S`: no PYTHON* variables, no
  site-packages, no cwd on sys.path) and a scrubbed environment (no secrets, HOME = the work dir);
- a fresh throwaway working directory under /dev/shm (or the system temp dir), deleted afterwards;
- rlimits: CPU seconds, address space (a 10 GB allocation is a MemoryError), file size, open files, no core
  dumps, and a process-count limit (fork bombs hit EAGAIN);
- a wall-clock timeout that kills the whole process group, and then every process of the sandbox uid (root)
  or of the sandbox's user namespace (not root);
- network and mount namespaces. The network namespace has no interfaces up, so no connection leaves; the
  mount namespace hides every top-level folder that is not the operating system (/work, /home, /root, /tmp,
  ...) and the rest of the work dir's parent (/dev/shm) behind empty read-only tmpfs mounts, so the
  project's files are not there to read or delete. As root (containers, CI) the namespaces are made directly
  and the snippet then drops to an unused uid. Not as root they are made inside a new unprivileged user
  namespace (Linux allows it unless `kernel.unprivileged_userns_clone=0`, `user.max_user_namespaces=0` or an
  AppArmor/seccomp policy forbids it): the snippet keeps our uid, and the user namespace also keeps it from
  reaching our other processes through /proc (`/proc/<pid>/root`, `/proc/<pid>/environ`);
- always: an audit hook installed before the snippet runs that refuses sockets, subprocesses, fork and exec
  (defence in depth, and a clear error message instead of a silent hang).
`SandboxResult.isolation` lists the layers that were active, as the sandboxed process itself reports them
(`netns`, `userns`, `mountns_hide_project`, `unprivileged_uid`, ...). When the namespaces cannot be made (not
root and user namespaces forbidden) `SandboxResult.missing` says so (`network`, `host_files`) and a warning is
logged once: the network is then refused only by the audit hook, and files outside the work dir that our uid
may read are readable by the snippet. That containment is impossible without root or user namespaces.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = (
    1,
    2,
    4,
    32,
    4096,
    16384,
    1 << 18,
)

#: top-level folders the snippet may see (the operating system and the interpreter); others are hidden
_SYSTEM_DIRS = {"usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin", "etc", "proc", "dev", "sys"}

try:
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None

# Runs before the snippet, in the sandboxed interpreter. Audit hooks cannot be removed once added.
_PRELUDE = r"""
import sys as _sys
def _phi_guard(event, args):
    if event in ("socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
                 "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                 "subprocess.Popen", "pty.spawn", "ctypes.dlopen", "ctypes.cdata", "os.kill", "os.killpg"):
        raise PermissionError(f"sandbox: {event} is not allowed")
_sys.addaudithook(_phi_guard)
del _phi_guard
"""


@dataclass
class SandboxResult:
    passed: bool
    returncode: int | None
    timed_out: bool
    seconds: float
    stdout: str
    stderr: str
    isolation: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """The containments this run lacked (see the module doc), from the layers in `isolation`."""
        return [
            name
            for name, layer in (("network", "netns"), ("host_files", "mountns_hide_project"))
            if layer not in self.isolation
        ]

    @property
    def reason(self) -> str:
        if self.passed:
            return "passed"
        if self.timed_out:
            return "timeout"
        if self.returncode is not None and self.returncode < 0:
            return (
                f"killed_by_{signal.Signals(-self.returncode).name}"
                if -self.returncode in signal.Signals._value2member_map_
                else f"signal_{-self.returncode}"
            )
        return "tests_failed"


def _base_python() -> str:
    """The interpreter without the project's venv (its site-packages stay out of reach)."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(exe)


def _work_base() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


_uid_counter = itertools.count()


def _sandbox_uid() -> int:
    """An unused uid per run (so the process limit and the final kill sweep touch only this run)."""
    return 200_000 + (os.getpid() % 1000) * 1000 + next(_uid_counter) % 1000


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> bool:
    def enc(v: str | None) -> bytes | None:
        return v.encode() if v is not None else None

    return _LIBC.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) == 0


def _remount_flags(path: str) -> int:
    """The flags of the mount holding `path` that a bind remount must keep: in a user namespace the flags of
    an inherited mount are locked, and a remount that would drop one fails with EPERM."""
    # ST_* and MS_* share values on Linux for these (nosuid 2, nodev 4, noexec 8, noatime 1024, ...)
    keep = os.ST_NOSUID | os.ST_NODEV | os.ST_NOEXEC | os.ST_NOATIME | os.ST_NODIRATIME | os.ST_RELATIME
    return os.statvfs(path).f_flag & keep


def _hide_everything_but_the_os(hidden: list[str], prefix: str, prefix_flags: int, workdir: str) -> bool:
    """In a fresh mount namespace: an empty read-only tmpfs over each hidden top-level folder, with the
    interpreter's prefix bound back (read-only) when it lives under one of them (e.g. /root/.pyenv), and one
    over the work dir's parent (/dev/shm: other runs' work dirs, shared memory) with the work dir bound back.
    True when every hidden folder and the work dir's parent are covered."""
    ok = _mount("none", "/", None, _MS_REC | _MS_PRIVATE)
    prefix_fd = os.open(prefix, os.O_RDONLY | os.O_DIRECTORY)
    work_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    for d in hidden:
        if not _mount("tmpfs", d, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k,mode=755"):
            ok = False
            continue
        if prefix == d or prefix.startswith(d + "/"):
            os.makedirs(prefix, mode=0o755, exist_ok=True)
            _mount(f"/proc/self/fd/{prefix_fd}", prefix, None, _MS_BIND | _MS_REC)
            _mount(None, prefix, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | prefix_flags)
        _mount(None, d, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    parent = os.path.dirname(workdir)
    if _mount("tmpfs", parent, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k,mode=755"):
        os.mkdir(workdir, 0o700)
        ok = _mount(f"/proc/self/fd/{work_fd}", workdir, None, _MS_BIND) and ok
        _mount(None, parent, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
        os.chdir(workdir)  # Popen's cwd is the folder now under the tmpfs; enter the bound one
    else:
        ok = False
    os.close(prefix_fd)
    os.close(work_fd)
    return ok


def _map_own_ids() -> None:
    """In a new user namespace, map our uid and gid to themselves (the only mapping an unprivileged process
    may write). Without a mapping the new tmpfs mounts refuse to create the folders the prefix and the work
    dir are bound onto (EOVERFLOW: an unmapped owner); the snippet still runs as our uid, with no capability
    after exec."""
    uid, gid = os.getuid(), os.getgid()
    for name, line in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _make_preexec(
    workdir: str, cpu_s: int, memory_bytes: int, uid: int | None, as_root: bool, status_fd: int
):
    """The function the child runs between fork and exec (only async-signal-safe-ish syscalls). It writes the
    layers it achieved, and its user namespace, to `status_fd` (closed before exec): the result reports what
    really held, and the kill sweep knows which processes are the sandbox's."""
    work_top = "/" + Path(workdir).parts[1]  # /dev for /dev/shm: kept visible (the shm part gets covered)
    hidden = [
        f"/{d}"
        for d in sorted(os.listdir("/"))
        if d not in _SYSTEM_DIRS
        and os.path.isdir(f"/{d}")
        and not os.path.islink(f"/{d}")
        and f"/{d}" != work_top
    ]
    prefix = os.path.realpath(sys.base_prefix)
    prefix_flags = _remount_flags(prefix)

    def preexec() -> None:
        os.setsid()
        layers, user_ns = [], ""
        if _LIBC is not None:
            # not root: the mount and network namespaces belong to a new user namespace, whose creator holds
            # every capability inside it until exec (all the mounts below need)
            flags = _CLONE_NEWNS | _CLONE_NEWNET | (0 if as_root else _CLONE_NEWUSER)
            if _LIBC.unshare(flags) == 0:
                layers.append("netns")
                if not as_root:
                    layers.append("userns")
                    user_ns = os.readlink("/proc/self/ns/user")
                    _map_own_ids()
                if _hide_everything_but_the_os(hidden, prefix, prefix_flags, workdir):
                    layers.append("mountns_hide_project")
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (32, 32))
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            layers.append("unprivileged_uid")
        os.write(status_fd, f"{','.join(layers)}\n{user_ns}".encode())

    return preexec


def _kill_matching(match) -> int:
    """SIGKILL every process for which `match(pid)` holds (escapees that left the process group)."""
    killed = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and match(entry):
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def _kill_uid(uid: int) -> int:
    """SIGKILL every process running as `uid`; returns how many."""

    def has_uid(entry: str) -> bool:
        try:
            with open(f"/proc/{entry}/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("Uid:")) == uid
        except (OSError, StopIteration, ValueError):
            return False

    return _kill_matching(has_uid)


def _kill_user_ns(user_ns: str) -> int:
    """SIGKILL every process in the user namespace `user_ns` (`user:[inode]`; the non-root sweep: those
    processes have our uid, so the uid sweep would hit our own)."""

    def in_ns(entry: str) -> bool:
        try:
            return os.readlink(f"/proc/{entry}/ns/user") == user_ns
        except OSError:
            return False

    return _kill_matching(in_ns)


def _scrubbed_env(workdir: Path) -> dict[str, str]:
    """The snippet's whole environment: nothing of ours (no secrets, no PYTHON* variables)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


_warned_missing = False


def _warn_missing_once(result: SandboxResult, as_root: bool) -> None:
    """Say once per process which containment the namespaces could not give (it holds for every run)."""
    global _warned_missing
    if result.missing and not _warned_missing:
        _warned_missing = True
        log.warning(
            "sandbox: no %s containment (%s; user namespaces unavailable?): network access is refused only"
            " by the audit hook and files our uid can read outside the work dir are readable",
            " / ".join(result.missing),
            "running as root" if as_root else f"running as uid {os.geteuid()}",
        )


def _tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_python(
    code: str, *, timeout_s: float = 5.0, memory_mb: int = 512, audit_hook: bool = True
) -> SandboxResult:
    """Run `code` in the sandbox; passed = exit status 0 within the limits. `audit_hook=False` leaves only the
    operating-system layers (the tests use it to show those contain hostile code on their own)."""
    as_root = os.geteuid() == 0
    workdir = Path(tempfile.mkdtemp(prefix="phi-sandbox-", dir=_work_base()))
    logs = Path(tempfile.mkdtemp(prefix="phi-sandbox-logs-"))  # parent side: the snippet cannot see it
    uid = _sandbox_uid() if as_root else None
    isolation = ["process", "rlimits", "scrubbed_env", "throwaway_cwd"] + (
        ["audit_hook"] if audit_hook else []
    )
    if as_root:
        os.chown(workdir, uid, uid)
    (workdir / "main.py").write_text((_PRELUDE + "\n" if audit_hook else "") + code, encoding="utf-8")
    env = _scrubbed_env(workdir)
    cmd = [_base_python(), "-I", "-S", "-B", "main.py"]
    t0 = time.perf_counter()
    timed_out = False
    status_r, status_w = os.pipe()
    preexec = _make_preexec(str(workdir), int(timeout_s) + 1, memory_mb << 20, uid, as_root, status_w)
    with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
        with os.fdopen(status_r, "rb") as status:
            try:
                proc = subprocess.Popen(
                    cmd,
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    close_fds=True,
                    # preexec_fn with threads (the pipeline runs sandboxes from a small
                    # pool): the child only makes syscalls before exec; glibc's malloc is
                    # fork-safe
                    preexec_fn=preexec,
                )  # noqa: PLW1509
            finally:
                os.close(status_w)
            # EOF as soon as the child has exec'd (its copy of the pipe is closed by then)
            layers, _, user_ns = status.read().decode().partition("\n")
        isolation += [x for x in layers.split(",") if x]
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # children left behind by a passing run too
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            if uid is not None:
                _kill_uid(uid)
            elif user_ns:
                _kill_user_ns(user_ns)
    seconds = time.perf_counter() - t0
    result = SandboxResult(
        passed=not timed_out and proc.returncode == 0,
        returncode=proc.returncode,
        timed_out=timed_out,
        seconds=round(seconds, 3),
        stdout=_tail(logs / "stdout"),
        stderr=_tail(logs / "stderr"),
        isolation=isolation,
    )
    _warn_missing_once(result, as_root)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    return result
