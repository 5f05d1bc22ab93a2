"""Drive devwire-sim from Python tests.

``DevwireSim`` starts ``devwire-sim`` on a loopback port chosen by the
system with a script (or a bench file of several devices) and its control
API (``--control 127.0.0.1:0``), waits until it serves, exposes the control
API as methods and stops it at the end, returning its summary::

    with DevwireSim("psu.json") as sim:
        driver = MyDriver(sim.host, sim.port)
        sim.inject_fault("close", match="OUTP?")
        driver.switch_on()
        sim.verify([{"request": "OUTP ON", "count": 1}])
    print(sim.summary)

Standard library only. The program is found in ``$DEVWIRE_SIM``, else as
``devwire-sim`` on the ``PATH`` (or pass ``executable=``).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from typing import Any, Iterable, Mapping, Optional

__all__ = [
    "DevwireSim",
    "DevwireSimError",
    "ControlError",
    "VerificationError",
]

_LISTENING = re.compile(r"^(?:listening|serial) on (\S+?)(?: \((.+)\))?$")
_CONTROL = re.compile(r"^control on http://(\S+):(\d+)$")


class DevwireSimError(Exception):
    """devwire-sim could not be started, or ended badly."""


class ControlError(DevwireSimError):
    """The control API refused a request: ``status``, ``error``, ``where``."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        self.status = status
        self.body = body
        self.error = body.get("error", "") if isinstance(body, dict) else str(body)
        self.where = body.get("where", "") if isinstance(body, dict) else ""
        super().__init__(f"{method} {path}: {status}: {self.error} (where: {self.where})")


class VerificationError(AssertionError):
    """``verify`` found expectations that do not hold; ``result`` has the
    failures, each with what was expected, what happened and near misses."""

    def __init__(self, result: Mapping[str, Any]):
        self.result = result
        lines = [result.get("error", "verification failed")]
        for f in result.get("failures", []):
            lines.append(f"  [{f.get('index')}] {f.get('message')}")
            for near in f.get("near_misses", []):
                req = near.get("request", {})
                shown = req.get("text", req.get("hex"))
                lines.append(
                    f"      near miss: {shown!r} (seq {near.get('seq')}, distance "
                    f"{near.get('distance')})"
                )
        super().__init__("\n".join(lines))


def _find_executable(executable: Optional[str]) -> str:
    found = executable or os.environ.get("DEVWIRE_SIM") or shutil.which("devwire-sim")
    if not found:
        raise DevwireSimError(
            "devwire-sim not found: set $DEVWIRE_SIM, put it on the PATH or pass executable="
        )
    return found


class DevwireSim:
    """One devwire-sim process with its control API."""

    def __init__(
        self,
        script: Optional[str] = None,
        *,
        bench: Optional[str] = None,
        executable: Optional[str] = None,
        args: Iterable[str] = (),
        journal: Optional[int] = None,
        startup_timeout: float = 10.0,
        request_timeout: float = 30.0,
    ):
        if (script is None) == (bench is None):
            raise ValueError("give a script or a bench file (one of them)")
        self.executable = _find_executable(executable)
        self.script, self.bench = script, bench
        self.args = list(args)
        if journal is not None:
            self.args += ["--journal", str(journal)]
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self.devices: dict[str, tuple[str, int]] = {}
        self.device = "default"
        self.control_host = ""
        self.control_port = 0
        self.summary: Optional[str] = None
        self.returncode: Optional[int] = None
        self._proc: Optional[subprocess.Popen] = None
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers: list[threading.Thread] = []

    # ---- life ----------------------------------------------------------------

    def command(self) -> list[str]:
        """The command line that starts the simulator."""
        what = ["--script", self.script, "--listen", "127.0.0.1:0"] if self.script else [
            "--bench",
            self.bench,
        ]
        return [self.executable, *what, "--control", "127.0.0.1:0", *self.args]

    def _read(self, stream, into: list[str], lines: bool) -> None:
        for line in stream:
            into.append(line)
            if lines:
                self._lines.put(line.rstrip("\n"))
        if lines:
            self._lines.put(None)

    def start(self) -> "DevwireSim":
        """Start and wait for the readiness lines (DevwireSimError if it
        exits or does not get ready within startup_timeout)."""
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for stream, into, lines in ((self._proc.stdout, self._out, True), (self._proc.stderr, self._err, False)):
            t = threading.Thread(target=self._read, args=(stream, into, lines), daemon=True)
            t.start()
            self._readers.append(t)
        deadline = time.monotonic() + self.startup_timeout
        while not self.control_port:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise DevwireSimError(
                    f"devwire-sim not ready within {self.startup_timeout} s: {self.stderr}"
                ) from None
            if line is None:
                self.stop()
                raise DevwireSimError(
                    f"devwire-sim exited (status {self.returncode}): {self.stderr.strip()}"
                )
            self._ready_line(line)
        if self.bench and self.devices:
            self.device = next(iter(self.devices))
        return self

    def _ready_line(self, line: str) -> None:
        m = _LISTENING.match(line)
        if m:
            host, _, port = m.group(1).rpartition(":")
            self.devices[m.group(2) or "default"] = (host.strip("[]"), int(port) if port.isdigit() else 0)
            return
        m = _CONTROL.match(line)
        if m:
            self.control_host, self.control_port = m.group(1).strip("[]"), int(m.group(2))

    def stop(self, timeout: float = 10.0) -> Optional[str]:
        """SIGTERM, wait (SIGKILL after timeout); returns the summary it
        printed. Safe to call twice."""
        proc = self._proc
        if proc is None:
            return self.summary
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for t in self._readers:
            t.join(timeout)
        self.returncode = proc.returncode
        self._proc = None
        out = "".join(self._out)
        at = out.find("summary:")
        self.summary = out[at:] if at >= 0 else ""
        return self.summary

    def __enter__(self) -> "DevwireSim":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    @property
    def host(self) -> str:
        return self.devices[self.device][0]

    @property
    def port(self) -> int:
        return self.devices[self.device][1]

    def address(self, device: Optional[str] = None) -> tuple[str, int]:
        return self.devices[device or self.device]

    @property
    def url(self) -> str:
        return f"http://{self.control_host}:{self.control_port}"

    # ---- the control API ----------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Optional[Mapping[str, Any]] = None,
        ok: Iterable[int] = (200, 201),
        raw: Optional[bytes] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        """One control API call: the decoded JSON (or text) answer; a status
        outside ``ok`` raises ControlError."""
        if query:
            path += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        conn = http.client.HTTPConnection(
            self.control_host, self.control_port, timeout=timeout or self.request_timeout
        )
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            status = resp.status
            kind = resp.getheader("Content-Type", "")
        finally:
            conn.close()
        value = json.loads(text) if kind.startswith("application/json") else text
        if status not in ok:
            raise ControlError(method, path, status, value)
        return value

    def _dev(self, device: Optional[str]) -> str:
        return "/devices/" + urllib.parse.quote(device or self.device, safe="")

    def health(self) -> dict:
        return self.request("GET", "/health")

    def list_devices(self) -> list:
        return self.request("GET", "/devices")

    def state(self, device: Optional[str] = None) -> dict:
        """The device's variables (``"vars"``), typed properties (``"properties"``),
        scope and next step."""
        return self.request("GET", self._dev(device) + "/state")

    def set_state(self, values: Optional[Mapping[str, Any]] = None, *, device: Optional[str] = None, **kw) -> dict:
        """Set variables and properties, all or none: ``set_state(freq=2.5e6, output=True)``
        or ``set_state({"a.b": "1"})``. A property out of range is a ControlError (422)
        naming it: ``freq: Data out of range (-222)``."""
        return self.request("PATCH", self._dev(device) + "/state", {**(values or {}), **kw})

    def reset(self, keep_counters: bool = False, device: Optional[str] = None) -> None:
        """State, steps, reply turns, faults back to the start; the counters
        and the journal too unless keep_counters."""
        self.request("POST", self._dev(device) + "/reset", {"keep_counters": keep_counters})

    def inject_fault(
        self,
        kind: str,
        match: Any = None,
        *,
        count: Optional[int] = None,
        duration_ms: Optional[int] = None,
        probability: Optional[float] = None,
        delay_ms: Optional[int] = None,
        garbage: Any = None,
        device: Optional[str] = None,
    ) -> int:
        """Inject a fault (close, reset, hang, garbage, delay, drop,
        refuse_connections, disconnect_all); returns its id."""
        body = {
            "kind": kind,
            "match": match,
            "count": count,
            "duration_ms": duration_ms,
            "probability": probability,
            "delay_ms": delay_ms,
            "garbage": garbage,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return self.request("POST", self._dev(device) + "/faults", body)["id"]

    def faults(self, device: Optional[str] = None) -> list:
        return self.request("GET", self._dev(device) + "/faults")

    def remove_fault(self, fault_id: Optional[int] = None, device: Optional[str] = None) -> None:
        """Remove one fault, or all of them."""
        suffix = "" if fault_id is None else f"/{fault_id}"
        self.request("DELETE", self._dev(device) + "/faults" + suffix)

    def journal(self, since: int = 1, limit: int = 100, device: Optional[str] = None) -> list:
        """The journal's entries with seq >= since."""
        return self.request(
            "GET", self._dev(device) + "/journal", query={"since": since, "limit": limit}
        )["entries"]

    def wait_for(
        self,
        match: Optional[str] = None,
        *,
        rule: Optional[str] = None,
        request: Optional[str] = None,
        prefix: Optional[str] = None,
        regex: Optional[str] = None,
        since: int = 1,
        timeout: float = 5.0,
        device: Optional[str] = None,
    ) -> dict:
        """The first journal entry (seq >= since) that matches, waiting for it
        up to ``timeout`` seconds (TimeoutError)."""
        query = {
            "match": match,
            "rule": rule,
            "request": request,
            "prefix": prefix,
            "regex": regex,
            "since": since,
            "timeout_ms": int(timeout * 1000),
        }
        try:
            return self.request(
                "GET", self._dev(device) + "/journal/wait", query=query, timeout=timeout + 30
            )
        except ControlError as e:
            if e.status == 408:
                raise TimeoutError(e.error) from None
            raise

    def verify(self, expectations: list, device: Optional[str] = None) -> dict:
        """Check the journal against expectations; raises VerificationError
        (an AssertionError) with the failures and near misses."""
        result = self.request("POST", self._dev(device) + "/verify", expectations, ok=(200, 409))
        if not result.get("ok"):
            raise VerificationError(result)
        return result

    def replace_script(self, text: str, device: Optional[str] = None) -> dict:
        """Serve another script (JSON text); ControlError (400) when it does
        not load, with "where" = "devices/NAME/script:LINE:COL"."""
        return self.request("PUT", self._dev(device) + "/script", raw=text.encode())

    def metrics(self) -> str:
        """The Prometheus text of every device."""
        return self.request("GET", "/metrics")
