"""Headless Chromium driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``), with the standard library only: one browser
serves every test of a session, each page in a browser context of its own
(its own cookies and storage).

The browser reaches nothing but this machine: ``evil.example`` resolves to
127.0.0.1 (a name an attacker's page could have, rebound to loopback),
127.0.0.1 and localhost to themselves, and every other name to nothing.
It runs in a process group of its own, killed whole by close(); it also
ends when the pipe closes (the test process exited).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Callable, Optional


def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, executable: str, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="devwire-chromium-")
        self._log = open(os.path.join(self.profile, "stderr.log"), "wb")
        self._id = 0
        self._buf = b""
        self._handlers: dict[str, Callable[[dict], None]] = {}
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Above 9, so that moving them to 3 and 4 overwrites neither.
        for fd in (to_browser_r, from_browser_w):
            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            if fd == to_browser_r:
                to_browser_r = high
            else:
                from_browser_w = high
        args = [
            executable, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-default-apps", "--no-proxy-server",
            "--host-resolver-rules=MAP evil.example 127.0.0.1, MAP * ~NOTFOUND, "
            "EXCLUDE 127.0.0.1, EXCLUDE localhost",
            # The page a test serves itself (Page.serve) has no address, so
            # Chromium would count it public and refuse its requests to
            # loopback before they are sent; the tests are about what the
            # API refuses (other browsers have no such check).
            "--disable-features=LocalNetworkAccessChecks",
            "about:blank",
        ]
        # The protocol is read from fd 3 and written to fd 4 (bash: dash
        # takes no fd above 9).
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}', "bash", *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            start_new_session=True,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        try:
            self.version = self.call("Browser.getVersion")["product"]
        except (BrowserError, OSError) as e:
            with open(self._log.name, "rb") as f:
                said = f.read()[-2000:].decode("utf-8", "replace")
            self.close()
            raise BrowserError(f"{executable} did not start: {e}: {said}") from None
        except BaseException:
            self.close()
            raise

    # ---- the protocol ---------------------------------------------------------

    def send(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> int:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        return self._id

    def _next(self, deadline: float) -> Optional[dict]:
        """The next message, or None at the deadline."""
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                return None
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError("the browser closed its pipe")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def _dispatch(self, msg: dict) -> None:
        key = f"{msg.get('sessionId', '')}/{msg['method']}"
        handler = self._handlers.get(key)
        if handler:
            handler(msg["params"])

    def call(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> dict:
        """Send a command and wait for its answer; events that come first
        go to their handlers."""
        want = self.send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._next(deadline)
            if msg is None:
                raise BrowserError(f"{method}: no answer from the browser within {self.timeout} s")
            if "method" in msg:
                self._dispatch(msg)
            elif msg.get("id") == want:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def on(self, session: str, event: str, handler: Callable[[dict], None]) -> None:
        self._handlers[f"{session}/{event}"] = handler

    def pump(self, seconds: float) -> None:
        """Handle events for this long."""
        deadline = time.monotonic() + seconds
        while True:
            msg = self._next(deadline)
            if msg is None:
                return
            if "method" in msg:
                self._dispatch(msg)

    # ---- pages ------------------------------------------------------------------

    def page(self) -> "Page":
        return Page(self)

    def close(self) -> None:
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(5)  # it ends when the pipe closes
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # and whatever it started
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """A tab in a fresh browser context. ``requests`` lists what it sent
    and what came back: {"url", "method", "headers", "status"}."""

    def __init__(self, browser: Browser):
        self.browser = browser
        self.context = browser.call("Target.createBrowserContext")["browserContextId"]
        self.target = browser.call(
            "Target.createTarget", {"url": "about:blank", "browserContextId": self.context}
        )["targetId"]
        self.session = browser.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})[
            "sessionId"
        ]
        self.requests: dict[str, dict] = {}
        browser.on(self.session, "Network.requestWillBeSent", self._sent)
        browser.on(self.session, "Network.requestWillBeSentExtraInfo", self._sent_extra)
        browser.on(self.session, "Network.responseReceived", self._received)
        browser.on(self.session, "Network.responseReceivedExtraInfo", self._received_extra)
        browser.on(self.session, "Network.loadingFailed", self._failed)
        self.call("Network.enable")
        self.call("Runtime.enable")

    def call(self, method: str, params: Optional[dict] = None) -> dict:
        return self.browser.call(method, params, self.session)

    def _entry(self, request_id: str) -> dict:
        return self.requests.setdefault(request_id, {"headers": {}, "status": None})

    def _sent(self, p: dict) -> None:
        e = self._entry(p["requestId"])
        e.update(url=p["request"]["url"], method=p["request"]["method"])
        e["headers"].update({k.lower(): v for k, v in p["request"]["headers"].items()})

    def _sent_extra(self, p: dict) -> None:
        # The headers as sent on the wire (Host, Origin, Sec-Fetch-*).
        self._entry(p["requestId"])["headers"].update({k.lower(): v for k, v in p["headers"].items()})

    def _received(self, p: dict) -> None:
        self._entry(p["requestId"])["status"] = p["response"]["status"]

    def _received_extra(self, p: dict) -> None:
        # The status as received, also of an answer the browser then hid
        # from the page (ORB).
        self._entry(p["requestId"])["status"] = p["statusCode"]

    def _failed(self, p: dict) -> None:
        self._entry(p["requestId"]).setdefault("error", p.get("errorText"))

    def serve(self, url: str, html: str) -> None:
        """Answer the document request for ``url`` with ``html`` from here
        (the page then has url's origin), before it reaches the network."""
        body = base64.b64encode(html.encode()).decode()

        def paused(p: dict) -> None:
            self.browser.send(
                "Fetch.fulfillRequest",
                {"requestId": p["requestId"], "responseCode": 200, "body": body,
                 "responseHeaders": [{"name": "Content-Type", "value": "text/html; charset=utf-8"}]},
                self.session,
            )

        self.browser.on(self.session, "Fetch.requestPaused", paused)
        self.call("Fetch.enable", {"patterns": [{"urlPattern": url, "resourceType": "Document"}]})

    def goto(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """The value of expression once it is truthy (BrowserError after
        timeout, with the page's text)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None  # between two documents
            if value:
                return value
            if time.monotonic() >= deadline:
                raise BrowserError(f"not true within {timeout} s: {expression}; "
                                   f"the page shows: {self.shown()!r}")
            self.browser.pump(0.1)

    def shown(self) -> str:
        """The page's text as rendered (for messages)."""
        try:
            return self.evaluate("document.body ? document.body.innerText : ''")[:3000]
        except BrowserError as e:
            return str(e)

    def text(self) -> str:
        try:
            return self.evaluate("document.documentElement ? document.documentElement.outerHTML : ''")
        except BrowserError as e:
            return str(e)

    def close(self) -> None:
        try:
            self.browser.call("Target.closeTarget", {"targetId": self.target})
            self.browser.call("Target.disposeBrowserContext", {"browserContextId": self.context})
        except BrowserError:
            pass
