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

In front of a real device (or another simulator), ``upstream=`` runs it as
the fault proxy (``--proxy``; ``network=`` its network faults) and, with
``record=FILE`` as well, as the recorder (``--record``), whose script is
written to FILE by ``stop()``::

    with DevwireSim(upstream=("10.0.0.7", 5025), network={"reply": {"latency": {"ms": 50}}}) as px:
        driver = MyDriver(px.host, px.port)

The simulator dies with the process that started it, however that ends
(even SIGKILL): it is started with ``--exit-with-stdin``, its stdin a pipe
only this process holds.

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
import tempfile
import threading
import time
import urllib.parse
from typing import Any, Iterable, Mapping, Optional

__all__ = [
    "DevwireSim",
    "DevwireSimError",
    "ControlError",
    "VerificationError",
    "Journal",
]

#: How long ``verify`` waits by default for its expectations to hold (ms):
#: a request the driver sent just before is journalled a moment later.
VERIFY_SETTLE_MS = 200

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
            side = f" ({f['side']})" if f.get("side") else ""
            lines.append(f"  [{f.get('index')}] {f.get('message')}{side}")
            for near in f.get("near_misses", []):
                req = near.get("request", {})
                shown = req.get("text", req.get("hex"))
                lines.append(
                    f"      near miss: {shown!r} (seq {near.get('seq')}, distance "
                    f"{near.get('distance')})"
                )
        super().__init__("\n".join(lines))


class Journal(list):
    """A page of the journal: its entries (a list), with ``dropped`` (entries
    the ring let go to make room for newer ones, over the device's life),
    ``missed`` (some of those were at or after ``since``: this page is not
    the whole story) and ``next`` (the ``since`` of the following page)."""

    def __init__(self, entries: Iterable, dropped: int = 0, missed: bool = False, next: int = 0):
        super().__init__(entries)
        self.dropped = dropped
        self.missed = missed
        self.next = next


def _hostport(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        host, port = value
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(value)


def _find_executable(executable: Optional[str]) -> str:
    found = executable or os.environ.get("DEVWIRE_SIM") or shutil.which("devwire-sim")
    if not found:
        raise DevwireSimError(
            "devwire-sim not found: set $DEVWIRE_SIM, put it on the PATH or pass executable="
        )
    return found


class DevwireSim:
    """One devwire-sim process with its control API: a simulator (``script``
    or ``bench``), or a proxy in front of ``upstream`` (``record``: the
    recorder)."""

    def __init__(
        self,
        script: Optional[str] = None,
        *,
        bench: Optional[str] = None,
        upstream: Any = None,
        record: Optional[str] = None,
        network: Optional[Mapping[str, Any]] = None,
        listen: str = "127.0.0.1:0",
        executable: Optional[str] = None,
        args: Iterable[str] = (),
        journal: Optional[int] = None,
        seed: Optional[int] = None,
        startup_timeout: float = 10.0,
        request_timeout: float = 30.0,
    ):
        if upstream is None and (script is None) == (bench is None):
            raise ValueError("give a script or a bench file (one of them), or an upstream")
        if upstream is not None and bench is not None:
            raise ValueError("a proxy (upstream=) serves no bench")
        if upstream is None and (record is not None or network is not None):
            raise ValueError("record= and network= go with upstream= (a proxy)")
        if network is not None and (script is not None or record is not None):
            raise ValueError("network= goes with a proxy without a script (put it in the script)")
        self.executable = _find_executable(executable)
        self.script, self.bench = script, bench
        self.upstream = None if upstream is None else _hostport(upstream)
        self.record = record
        self.network = network
        self.listen = listen
        self.args = list(args)
        if journal is not None:
            self.args += ["--journal", str(journal)]
        if seed is not None:
            self.args += ["--seed", str(seed)]
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
        self._tmp: Optional[str] = None
        self._ends_by_itself = False

    # ---- life ----------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``serve``, ``proxy`` or ``record``."""
        if self.upstream is None:
            return "serve"
        return "record" if self.record is not None else "proxy"

    def _write_proxy_script(self) -> None:
        """A proxy or recorder without a script: one holding the network
        faults (or nothing: the default framing), removed by stop()."""
        self._tmp = tempfile.mkdtemp(prefix="devwire-sim-")
        with open(os.path.join(self._tmp, "proxy.json"), "w") as f:
            json.dump({"network": self.network} if self.network else {}, f)

    def command(self) -> list[str]:
        """The command line that starts the simulator."""
        if self.mode != "serve":
            script = self.script
            if script is None:
                script = os.path.join(self._tmp, "proxy.json") if self._tmp else "PROXY.json"
            what = ["--" + self.mode, "--upstream", self.upstream, "--script", script]
            what += ["--listen", self.listen]
            if self.record is not None:
                what += ["--out", str(self.record)]
        elif self.script:
            what = ["--script", self.script, "--listen", self.listen]
        else:
            what = ["--bench", self.bench]
        return [self.executable, *what, "--control", "127.0.0.1:0", "--exit-with-stdin", *self.args]

    def _read(self, stream, into: list[str], lines: bool) -> None:
        for line in stream:
            into.append(line)
            if lines:
                self._lines.put(line.rstrip("\n"))
        if lines:
            self._lines.put(None)

    def start(self) -> "DevwireSim":
        """Start and wait for the readiness lines (DevwireSimError if it
        exits or does not get ready within startup_timeout).

        Its stdin is a pipe only this process holds (``--exit-with-stdin``):
        when this process ends, however it ends, the simulator stops."""
        if self.mode != "serve" and self.script is None and self._tmp is None:
            self._write_proxy_script()
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as e:
            self.stop()
            raise DevwireSimError(f"cannot start {self.executable}: {e}") from None
        for stream, into, lines in ((self._proc.stdout, self._out, True), (self._proc.stderr, self._err, False)):
            t = threading.Thread(target=self._read, args=(stream, into, lines), daemon=True)
            t.start()
            self._readers.append(t)
        deadline = time.monotonic() + self.startup_timeout
        # A simulator prints its devices' lines, then the control API's; a
        # proxy the control API's, then its own.
        while not (self.control_port and self.devices):
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

    @property
    def pid(self) -> Optional[int]:
        """The simulator's process id while it runs."""
        return self._proc.pid if self._proc else None

    def stop(self, timeout: float = 10.0) -> Optional[str]:
        """SIGTERM, wait (SIGKILL after timeout); returns the summary it
        printed. A recorder writes its script (``record``) first. Safe to
        call twice."""
        proc = self._proc
        if self._tmp is not None and proc is None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if proc is None:
            return self.summary
        if proc.poll() is None:
            # After record_stop it ends by itself: a SIGTERM now would be a
            # second stop request, which ends it without the summary.
            if not self._ends_by_itself:
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # Only now: the end of stdin is a stop request too.
        try:
            proc.stdin.close()
        except OSError:
            pass
        for t in self._readers:
            t.join(timeout)
        self.returncode = proc.returncode
        self._proc = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
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
        outside ``ok`` raises ControlError. A request with a body says it is
        JSON (``Content-Type: application/json``)."""
        given = {k: v for k, v in (query or {}).items() if v is not None}
        if given:
            path += "?" + urllib.parse.urlencode(given)
        conn = http.client.HTTPConnection(
            self.control_host, self.control_port, timeout=timeout or self.request_timeout
        )
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            headers = {} if data is None else {"Content-Type": "application/json"}
            conn.request(method, path, body=data, headers=headers)
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
        refuse_connections, disconnect_all); returns its id. A proxy's
        faults are network faults: ``add_network_faults``."""
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

    def add_network_faults(self, faults: Mapping[str, Any], device: Optional[str] = None) -> list:
        """A proxy's faults: network faults as a script's ``"network"`` object
        writes them (``{"reply": {"latency": {"ms": 200}}}``), for the
        connections opened from now on; ``{"disconnect_all": {}}`` and
        ``{"refuse_connections": {"duration_ms": N}}`` act at once. Returns
        their ids (``"reply.latency"``)."""
        return self.request("POST", self._dev(device) + "/faults", dict(faults)).get("ids", [])

    def remove_fault(self, fault_id: Any = None, device: Optional[str] = None) -> None:
        """Remove one fault (a number, or a proxy's fault's name), or all of them."""
        suffix = "" if fault_id is None else "/" + urllib.parse.quote(str(fault_id), safe="")
        self.request("DELETE", self._dev(device) + "/faults" + suffix)

    def journal(
        self,
        since: int = 1,
        limit: int = 100,
        device: Optional[str] = None,
        *,
        tail: Optional[int] = None,
    ) -> Journal:
        """The journal's entries with seq >= since (at most limit), or its
        last ``tail``: a list, with ``.dropped`` (entries dropped by the ring
        of ``--journal N``), ``.missed`` (some dropped ones were at or after
        since) and ``.next`` (the since of the next page)."""
        query = {"tail": tail} if tail is not None else {"since": since, "limit": limit}
        page = self.request("GET", self._dev(device) + "/journal", query=query)
        return Journal(
            page["entries"], page.get("dropped", 0), bool(page.get("missed")), page.get("next", 0)
        )

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

    def verify(
        self,
        expectations: list,
        device: Optional[str] = None,
        *,
        wait_ms: int = VERIFY_SETTLE_MS,
        allow_dropped: bool = False,
    ) -> dict:
        """Check the journal against expectations; raises VerificationError
        (an AssertionError) with the failures and near misses.

        ``wait_ms`` (default 200): check again until they hold or that long
        has passed, so that a request the driver has just sent counts
        (0: check once). The journal having dropped entries is a failure
        unless ``allow_dropped``: a verdict over part of the requests."""
        query = {"wait_ms": int(wait_ms) if wait_ms else None, "allow_dropped": 1 if allow_dropped else None}
        deadline = time.monotonic() + wait_ms / 1000.0
        while True:
            result = self.request(
                "POST",
                self._dev(device) + "/verify",
                expectations,
                query=query,
                ok=(200, 409),
                timeout=self.request_timeout + wait_ms / 1000.0,
            )
            # A server without wait_ms (no "waited_ms" in its answer) is
            # asked again from here.
            again = not result.get("ok") and result.get("failures") and "waited_ms" not in result
            if not again or time.monotonic() >= deadline:
                break
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        if not result.get("ok"):
            raise VerificationError(result)
        return result

    def replace_script(self, text: str, device: Optional[str] = None) -> dict:
        """Serve another script (JSON text); ControlError (400) when it does
        not load, with "where" = "devices/NAME/script:LINE:COL"."""
        return self.request("PUT", self._dev(device) + "/script", raw=text.encode())

    def record_stop(self) -> dict:
        """A recorder: write the recording now (``{"out": FILE, "rules": N,
        "stopping": true}``); the process then ends by itself (``stop()``
        collects its summary)."""
        result = self.request("POST", "/record/stop")
        self._ends_by_itself = True
        return result

    def metrics(self) -> str:
        """The Prometheus text of every device."""
        return self.request("GET", "/metrics")
