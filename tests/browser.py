"""A small headless-Chromium driver for tests (stdlib only).

It speaks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, JSON
messages ended by NUL), so it needs no websocket package and opens no port. It records script
errors (``Runtime.exceptionThrown``, ``console.error``, ``Log`` errors) and every request URL
(``Network.requestWillBeSent``), so a test can assert a page is self-contained.

Usage::

    with Browser() as b:                      # tests ask _oracles.require_chromium() first
        page = b.open(Path("report.html"))    # waits for load and for Bokeh to go idle
        page.evaluate("1 + 1")
        png = page.screenshot()               # PNG bytes
        assert not page.errors and not page.remote_requests()

Command line: ``python tests/browser.py PAGE.html OUT.png`` prints errors and requests.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# the flags CI uses: no sandbox (root in containers), nothing that phones home
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
    "--mute-audio",
)
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")


def find_chromium() -> str | None:
    """Return the Chromium binary (``$ADMF_CHROMIUM`` first), or None when there is none."""
    env = os.environ.get("ADMF_CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


_TRAMPOLINE = """
import fcntl, os, sys
a, b = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.close(int(sys.argv[1])); os.close(int(sys.argv[2]))
os.dup2(a, 3); os.dup2(b, 4); os.close(a); os.close(b)
os.execv(sys.argv[3], sys.argv[3:])
"""


class BrowserError(RuntimeError):
    """The browser died, timed out or answered a command with an error."""


@dataclass
class Page:
    """One tab, attached with a flat CDP session; collects errors and requests as they come."""

    browser: Browser
    session_id: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict:
        """Send a command to this page and return its result."""
        return self.browser.send(method, params, session_id=self.session_id, timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate a JavaScript expression (awaiting promises) and return its JSON value."""
        res = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in res:
            raise BrowserError(f"evaluate({expression!r}): {_describe_exception(res)}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30, interval: float = 0.05) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}")
            time.sleep(interval)

    def wait_bokeh_idle(self, timeout: float = 30) -> None:
        """Wait until every Bokeh document on the page has rendered (``doc.is_idle``)."""
        self.wait_for(
            "(() => { const B = window.Bokeh; return !!B && B.documents.length > 0"
            " && B.documents.every(d => d.is_idle); })()",
            timeout=timeout,
        )
        self.settle()

    def settle(self, frames: int = 3) -> None:
        """Let the page paint a few animation frames (canvas redraws are asynchronous)."""
        self.evaluate(
            f"new Promise(r => {{ let n = {int(frames)}; const f = () => (--n > 0 ? "
            "requestAnimationFrame(f) : r(true)); requestAnimationFrame(f); })"
        )
        self.browser.drain(0.05)

    def screenshot(self, path: str | Path | None = None, full_page: bool = True) -> bytes:
        """Capture a PNG (the whole page by default); write it to ``path`` when given."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            m = self.send("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": float(size["width"]),
                "height": float(size["height"]),
                "scale": 1,
            }
        png = base64.b64decode(self.send("Page.captureScreenshot", params, timeout=60)["data"])
        if path is not None:
            Path(path).write_bytes(png)
        return png

    def remote_requests(self) -> list[str]:
        """Request URLs that are not local (file:, data:, about:, blob:)."""
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


class Browser:
    """Headless Chromium over a CDP pipe; a context manager that kills the browser on exit."""

    def __init__(
        self,
        binary: str | None = None,
        width: int = 1400,
        height: int = 900,
        extra_flags: tuple[str, ...] = (),
    ) -> None:
        binary = binary or find_chromium()
        if binary is None:
            raise FileNotFoundError("no chromium binary found (set ADMF_CHROMIUM or install it)")
        self.width, self.height = width, height
        self._profile = tempfile.mkdtemp(prefix="admf-chromium-")  # fresh --user-data-dir
        self._pages: dict[str, Page] = {}
        self._results: dict[int, dict] = {}
        self._next_id = 0
        self._buf = b""
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        args = [
            binary,
            *CHROMIUM_FLAGS,
            *extra_flags,
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self._stderr = tempfile.TemporaryFile()
        # Chromium reads commands on fd 3 and writes on fd 4. A tiny Python trampoline moves the
        # pipe ends there and execs the browser: no preexec_fn, which is unsafe once the test
        # process has threads (a dask Client, for one).
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-c", _TRAMPOLINE, str(cmd_r), str(out_w), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            pass_fds=(cmd_r, out_w),
        )
        os.close(cmd_r)
        os.close(out_w)
        try:
            self.send("Target.setDiscoverTargets", {"discover": False}, timeout=60)
        except Exception:
            self.close()
            raise

    # -- protocol -------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout: float = 30,
    ) -> dict:
        """Send one CDP command and wait for its answer, dispatching events meanwhile."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            msg["sessionId"] = session_id
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while self._next_id not in self._results:
            if not self._read(max(0.0, deadline - time.monotonic())):
                if self.proc.poll() is not None:
                    raise BrowserError(f"chromium exited ({self.proc.returncode}): {self.stderr()}")
                if time.monotonic() >= deadline:
                    raise BrowserError(f"{method}: no answer in {timeout} s")
        res = self._results.pop(self._next_id)
        if "error" in res:
            raise BrowserError(f"{method}: {res['error']}")
        return res.get("result", {})

    def drain(self, seconds: float) -> None:
        """Dispatch the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._read(left)

    def _read(self, timeout: float) -> bool:
        import select

        ready, _, _ = select.select([self._out_r], [], [], min(timeout, 0.5))
        if not ready:
            return False
        chunk = os.read(self._out_r, 1 << 20)
        if not chunk:
            return False
        self._buf += chunk
        while b"\0" in self._buf:
            raw, self._buf = self._buf.split(b"\0", 1)
            msg = json.loads(raw)
            if "id" in msg:
                self._results[msg["id"]] = msg
            else:
                self._on_event(msg)
        return True

    def _on_event(self, msg: dict) -> None:
        page = self._pages.get(msg.get("sessionId", ""))
        if page is None:
            return
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            page.errors.append("exception: " + _describe_exception(p))
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
            )
            if p.get("type") in ("error", "assert"):
                page.errors.append(f"console.{p['type']}: {text}")
            elif p.get("type") == "warning":
                page.warnings.append(text)
        elif method == "Log.entryAdded":
            entry = p.get("entry", {})
            if entry.get("level") == "error":
                page.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            page.requests.append(p.get("request", {}).get("url", "")[:300])  # data: URLs are long
        elif method == "Page.loadEventFired":
            page.loaded = True  # type: ignore[attr-defined]

    # -- pages ----------------------------------------------------------------------------------
    def open(self, url: str | Path, wait_bokeh: bool = True, timeout: float = 60) -> Page:
        """Open ``url`` (a path becomes a file:// URL) in a new tab and wait for it to load."""
        if isinstance(url, Path) or not str(url).startswith(("file:", "http:", "https:", "about:")):
            url = Path(url).resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, sid)
        self._pages[sid] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.loaded = False  # type: ignore[attr-defined]
        page.send("Page.navigate", {"url": str(url)})
        deadline = time.monotonic() + timeout
        while not page.loaded:  # type: ignore[attr-defined]
            if time.monotonic() > deadline:
                raise BrowserError(f"{url}: no load event in {timeout} s")
            self._read(deadline - time.monotonic())
        if wait_bokeh:
            page.wait_bokeh_idle(timeout=max(1.0, deadline - time.monotonic()))
        return page

    def stderr(self) -> str:
        """The browser's stderr so far (for diagnostics)."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    def close(self) -> None:
        """Kill the browser and remove its profile."""
        if self.proc.poll() is None:
            try:
                os.write(
                    self._cmd_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0"
                )
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe_exception(p: dict) -> str:
    d = p.get("exceptionDetails", p)
    exc = d.get("exception", {})
    text = exc.get("description") or d.get("text", "")
    return f"{text} ({d.get('url', '')}:{d.get('lineNumber', '?')})"


# -- PNG ------------------------------------------------------------------------------------------
def decode_png(data: bytes) -> np.ndarray:
    """Decode a PNG to a (height, width, 3) uint8 RGB array (Pillow: a hard Bokeh dependency)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def image_stats(png: bytes) -> dict[str, float]:
    """Size, pixel standard deviation and number of distinct colours of a PNG: a blank page has
    std ≈ 0 and one or two colours."""
    img = decode_png(png)[..., :3]
    flat = img.reshape(-1, img.shape[-1]).astype(np.uint32)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, -1]
    return {
        "width": float(img.shape[1]),
        "height": float(img.shape[0]),
        "std": float(img.std()),
        "colors": float(len(np.unique(packed))),
    }


if __name__ == "__main__":  # python tests/browser.py PAGE.html OUT.png
    with Browser() as br:
        pg = br.open(Path(sys.argv[1]))
        png_bytes = pg.screenshot(sys.argv[2] if len(sys.argv) > 2 else None)
        print(json.dumps({"errors": pg.errors, "warnings": pg.warnings, "requests": pg.requests}))
        print(image_stats(png_bytes))
