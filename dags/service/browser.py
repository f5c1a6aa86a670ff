"""Headless Chromium driven over the DevTools protocol, to see the Airflow UI as an operator does.

The protocol runs over a pipe (`--remote-debugging-pipe`: Chromium reads commands on fd 3 and writes
replies on fd 4, each a JSON message ended by NUL), so no debugging port is opened and no driver package
is needed: Debian's `chromium` (scripts/install_chromium.sh) is the only requirement.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

# Flags for a closed network (no background fetches, no component updates) and a root user (no sandbox).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    raise FileNotFoundError(
        "no chromium binary on PATH; run scripts/install_chromium.sh (Debian package chromium)"
    )


class Browser:
    def __init__(self, width: int = 1440, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="phi-chromium-")
        to_child, self._to_browser = os.pipe()
        self._from_browser, from_child = os.pipe()
        # park the child's ends above fd 4 so that placing them on 3 and 4 cannot overwrite one another
        hi_in, hi_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child, from_child))
        os.close(to_child)
        os.close(from_child)

        def place_fds():
            os.dup2(hi_in, 3)
            os.dup2(hi_out, 4)

        self.proc = subprocess.Popen(
            [
                chromium_binary(),
                *FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # fds 3/4 must be placed in the child; the browser runs no threads
            preexec_fn=place_fds,
            close_fds=False,
        )  # noqa: PLW1509
        os.close(hi_in)
        os.close(hi_out)
        self._buf, self._next_id = b"", 0
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            page=True,
        )

    def send(
        self, method: str, params: dict | None = None, page: bool = False, timeout_s: float = 30.0
    ) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if page:
            msg["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium exited (code {self.proc.poll()}) during {method}")
            self._buf += chunk
        raise TimeoutError(f"{method}: no reply in {timeout_s} s")

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, page=True)
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url}, page=True)

    def wait_for(self, expression: str, timeout_s: float = 60.0, what: str = "") -> None:
        """Poll a JavaScript condition until it is true (the UI renders asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"page never showed {what or expression} in {timeout_s:.0f} s; "
                    f"url {self.evaluate('location.href')}, text: {self.text()[:500]!r}"
                )
            time.sleep(0.5)

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type as a keyboard does (React sees real input events)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text}, page=True)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"}, page=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout_s=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def login(browser: Browser, api_url: str, user: str, password: str) -> None:
    """Sign in through the UI's own login form (the simple auth manager's), as an operator does."""
    browser.goto(f"{api_url}/")
    browser.wait_for("!!document.querySelector('input[name=password]')", what="the login form")
    browser.type_into("input[name=username]", user)
    browser.type_into("input[name=password]", password)
    browser.wait_for(
        "!document.querySelector('button[type=submit]').disabled", what="an enabled Sign in button"
    )
    browser.evaluate("document.querySelector('button[type=submit]').click()")
    browser.wait_for("!document.querySelector('input[name=password]')", what="the page after signing in")
