"""A real browser for the tests: headless Chromium from Debian's packages (`/usr/bin/chromium`,
installed by `make test-integration`), driven over the DevTools protocol through a pipe
(`--remote-debugging-pipe`: JSON messages ended by a NUL byte on file descriptors 3 and 4),
so it needs no WebSocket library and no npm package.

`open_page(html, screenshot)` loads a local HTML file, reads what the browser rendered
(`SUMMARY_JS` below: the report page's content, element sizes, whether an injected script
ran), records every request the page made and every console or security message, and saves
a full-page PNG screenshot."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("ROLLGATE_CHROMIUM", "/usr/bin/chromium")

# Headless, and quiet: without the background-networking flags Chromium tries to reach
# Google's services at start. The resolver rule makes any host name fail to resolve, so
# nothing could leave the machine even if something tried.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--remote-debugging-pipe",
]

# Run in the page once it loaded; returns plain data. DevTools' evaluation is not subject
# to the page's Content-Security-Policy; nothing of the page's own runs.
SUMMARY_JS = r"""
(() => {
  const text = (el) => (el ? el.textContent.trim() : null);
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height};
  };
  const all = (root, sel) => Array.from(root.querySelectorAll(sel));
  const meta = document.querySelector('meta[http-equiv="Content-Security-Policy"]');
  const decision = document.getElementById('decision');
  return {
    title: document.title,
    deploymentId: text(document.getElementById('deployment-id')),
    csp: meta ? meta.getAttribute('content') : null,
    decision: decision && {
      outcome: decision.dataset.outcome || null,
      action: text(decision.querySelector('.action')),
      reason: text(decision.querySelector('.reason')),
      box: box(decision),
    },
    timeline: all(document, '#timeline li.event').map((li) => ({
      kind: li.dataset.kind,
      at: li.querySelector('time').getAttribute('datetime'),
      title: text(li.querySelector('.title')),
      detail: text(li.querySelector('.detail')),
      box: box(li),
    })),
    checks: all(document, '#checks tr.check').map((tr) => ({
      component: text(tr.querySelector('.component')),
      name: text(tr.querySelector('.name')),
      outcome: tr.dataset.outcome,
      expected: text(tr.querySelector('.expected')),
      actual: text(tr.querySelector('.actual')),
      detail: text(tr.querySelector('.detail')),
      box: box(tr),
    })),
    charts: all(document, '#charts figure.chart').map((fig) => {
      const svg = fig.querySelector('svg');
      return {
        metric: fig.dataset.metric,
        caption: text(fig.querySelector('figcaption')),
        noData: text(fig.querySelector('.nodata')),
        svg: svg ? box(svg) : null,
        legend: text(fig.querySelector('.legend')),
        xTicks: all(fig, 'text.tick.x').map(text),
        series: all(fig, 'path.series').map((p) => ({
          class: p.getAttribute('class'),
          points: (p.getAttribute('d').match(/[ML]/g) || []).length,
          length: p.getTotalLength(),
          box: box(p),
        })),
      };
    }),
    elements: Object.fromEntries(
      ['script', 'img', 'iframe', 'object', 'embed', 'link', 'a', 'form', 'base']
        .map((tag) => [tag, document.getElementsByTagName(tag).length])),
    injected: typeof window.__rollgateInjected !== 'undefined',
    bodyText: document.body.innerText,
    size: {width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight},
  };
})()
"""


class BrowserError(RuntimeError):
    pass


@dataclass
class PageView:
    """What the browser made of a page."""

    url: str
    summary: dict
    # Every URL the page requested, the page itself included, in order.
    requests: list[str] = field(default_factory=list)
    # Log entries (CSP violations among them), console calls and uncaught exceptions.
    console: list[dict] = field(default_factory=list)
    screenshot: Path | None = None


class _Pipe:
    """The DevTools protocol over Chromium's pipe: one call at a time, events kept."""

    def __init__(self, write_fd: int, read_fd: int):
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = b""
        self.last_id = 0
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.write_fd, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline, method)
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event.get("params", {})
            seen = len(self.events)
            self.events.append(self._next(deadline, method))

    def _next(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer from Chromium for {waiting_for}")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed its pipe while waiting for {waiting_for}")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)


def _launch(profile: str, log) -> tuple[subprocess.Popen, _Pipe]:
    if not os.access(CHROMIUM, os.X_OK):
        raise BrowserError(f"{CHROMIUM} not found: `make test-integration` installs Debian's chromium")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def descriptors_3_and_4():
        # In the child only: Chromium reads commands on 3 and writes answers on 4.
        commands = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        answers = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.dup2(commands, 3)
        os.dup2(answers, 4)
        os.close(commands)
        os.close(answers)

    try:
        proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False,
                                preexec_fn=descriptors_3_and_4)
    finally:
        os.close(to_browser_r)
        os.close(from_browser_w)
    return proc, _Pipe(to_browser_w, from_browser_r)


def _screenshot(pipe: _Pipe, session: str, path: Path, width: int, max_height: int):
    metrics = pipe.call("Page.getLayoutMetrics", session=session)
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    height = min(max_height, max(1, int(size["height"] + 0.999)))
    pipe.call("Emulation.setDeviceMetricsOverride",
              {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
    shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def _view(pipe: _Pipe, url: str, screenshot: Path | None, width: int) -> PageView:
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Network", "Runtime", "Log"):
        pipe.call(f"{domain}.enable", session=session)
    pipe.call("Emulation.setDeviceMetricsOverride",
              {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
    start = len(pipe.events)
    navigated = pipe.call("Page.navigate", {"url": url}, session)
    if navigated.get("errorText"):
        raise BrowserError(f"{url}: {navigated['errorText']}")
    pipe.wait_for("Page.loadEventFired", session)
    evaluated = pipe.call("Runtime.evaluate", {"expression": SUMMARY_JS, "returnByValue": True}, session)
    if "exceptionDetails" in evaluated:
        raise BrowserError(f"reading the page failed: {evaluated['exceptionDetails']}")
    view = PageView(url=url, summary=evaluated["result"]["value"])
    if screenshot is not None:
        _screenshot(pipe, session, screenshot, width, max_height=16_000)
        view.screenshot = screenshot
    for event in pipe.events[start:]:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            view.requests.append(params["request"]["url"])
        elif method == "Log.entryAdded":
            view.console.append(params["entry"])
        elif method in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown"):
            view.console.append({"method": method, **params})
    return view


def open_page(html: Path, screenshot: Path | None = None, width: int = 1280,
              log_path: Path | None = None) -> PageView:
    """Loads `html` (a local file) in a fresh headless Chromium with a fresh profile, reads
    it, saves a full-page screenshot to `screenshot` (a PNG, `width` pixels wide) and stops
    the browser. Chromium's own output goes to `log_path` (default: beside the screenshot,
    else discarded)."""
    url = Path(html).resolve().as_uri()
    if log_path is None and screenshot is not None:
        log_path = Path(screenshot).with_suffix(".chromium.log")
    profile = tempfile.mkdtemp(prefix="rollgate-chromium-")
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = None
    try:
        proc, pipe = _launch(profile, log)
        try:
            view = _view(pipe, url, Path(screenshot) if screenshot else None, width)
            try:
                pipe.call("Browser.close", timeout=10)
            except BrowserError:
                pass  # it may close its pipe before it answers
        finally:
            os.close(pipe.write_fd)
            os.close(pipe.read_fd)
        return view
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if log is not subprocess.DEVNULL:
            log.close()
        shutil.rmtree(profile, ignore_errors=True)
