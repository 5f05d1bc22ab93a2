"""verify's wait and allow_dropped, the journal's dropped and missed, and
what the wrapper puts on the wire for them."""

import http.server
import json
import socket
import threading

import pytest

from devwire_sim import DevwireSim, Journal, VerificationError

PSU = {
    "rules": [
        {"name": "idn", "when": "*IDN?", "reply": "ACME,PSU"},
        {"name": "outp", "when": {"regex": "^OUTP (ON|OFF)$"}},
    ],
}


def send(sim, *lines):
    with socket.create_connection(sim.address(), timeout=20) as s:
        for line in lines:
            s.sendall(line.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        while s.recv(1024):
            pass


def test_the_journal_says_what_it_dropped(devwire_sim):
    sim = devwire_sim(PSU, journal=2)
    page = sim.journal()
    assert isinstance(page, Journal) and page == [] and page.dropped == 0 and not page.missed
    send(sim, "*IDN?", "OUTP ON", "OUTP OFF")
    sim.wait_for("OUTP OFF", timeout=20)
    page = sim.journal()
    assert [e["request"]["text"] for e in page] == ["OUTP ON", "OUTP OFF"]
    assert page.dropped == 1 and page.missed and page.next == 4
    assert not sim.journal(since=2).missed  # nothing from seq 2 on was dropped
    assert [e["seq"] for e in sim.journal(tail=1)] == [3]


def test_verify_waits_for_a_request_still_on_its_way(devwire_sim):
    sim = devwire_sim(PSU)
    with pytest.raises(VerificationError):
        sim.verify([{"request": "OUTP ON", "count": 1}], wait_ms=0)
    threading.Timer(0.3, send, (sim, "OUTP ON")).start()
    result = sim.verify([{"request": "OUTP ON", "count": 1}], wait_ms=20000)
    assert result["ok"]


def test_verify_gives_up_after_wait_ms(devwire_sim):
    sim = devwire_sim(PSU)
    send(sim, "OUTP OFF")
    with pytest.raises(VerificationError) as e:
        sim.verify([{"request": "OUTP ON", "count": 1}], wait_ms=300)
    assert "near miss: 'OUTP OFF'" in str(e.value)


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen = []

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.seen.append((self.command, self.path, self.headers.get("Content-Type"), body))
        reply = json.dumps({"ok": True, "entries": [], "id": 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def wire():
    """A DevwireSim whose control API is a recorder of requests."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sim = DevwireSim("unused.json", executable="devwire-sim")
    sim.control_host, sim.control_port = server.server_address
    _Recorder.seen = []
    yield sim, _Recorder.seen
    server.shutdown()
    server.server_close()


def test_verify_sends_wait_ms_and_allow_dropped_only_when_asked(wire):
    sim, seen = wire
    sim.verify([{"request": "X"}])
    sim.verify([{"request": "X"}], wait_ms=0)
    sim.verify([{"request": "X"}], wait_ms=1500, allow_dropped=True)
    assert [p for _, p, _, _ in seen] == [
        "/devices/default/verify?wait_ms=200",
        "/devices/default/verify",
        "/devices/default/verify?wait_ms=1500&allow_dropped=1",
    ]


def test_every_request_with_a_body_says_it_is_json(wire):
    sim, seen = wire
    sim.set_state(a="1")
    sim.reset()
    sim.inject_fault("close", match="X")
    sim.verify([{"request": "X"}])
    sim.replace_script('{"rules": []}')
    sim.journal()
    assert all(ctype == "application/json" for _, _, ctype, body in seen if body), seen
    assert seen[-1][0] == "GET" and seen[-1][2] is None
