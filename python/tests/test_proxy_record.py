"""DevwireSim as the fault proxy (upstream=) and as the recorder (record=),
in front of another simulator."""

import json
import socket
import time

import pytest

from devwire_sim import DevwireSim

PSU = {
    "name": "psu",
    "state": {"output": "OFF"},
    "rules": [
        {"name": "idn", "when": "*IDN?", "reply": "ACME,PSU"},
        {"name": "outp", "when": {"regex": "^OUTP (ON|OFF)$"}, "set": {"output": "$1"}},
        {"name": "outp?", "when": "OUTP?", "reply": "${output}"},
    ],
}


def ask_timed(address, line):
    """The reply to one line and how long it took (s)."""
    t0 = time.monotonic()
    with socket.create_connection(address, timeout=20) as s:
        s.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
    return data.decode().rstrip("\n"), time.monotonic() - t0


def test_a_proxy_passes_through_with_faults_added_and_removed(devwire_sim):
    sim = devwire_sim(PSU)
    px = devwire_sim(upstream=sim.address(), seed=1)
    assert px.mode == "proxy"
    assert px.port and px.port != sim.port
    assert ask_timed(px.address(), "*IDN?")[0] == "ACME,PSU"
    assert px.list_devices()[0]["mode"] == "proxy"

    ids = px.add_network_faults({"reply": {"latency": {"ms": 400}}})
    assert ids == ["reply.latency"]
    assert [f["id"] for f in px.faults()] == ["reply.latency"]
    reply, took = ask_timed(px.address(), "*IDN?")
    assert reply == "ACME,PSU" and took >= 0.35, took

    px.remove_fault("reply.latency")
    assert px.faults() == []
    assert "summary: proxy to" in px.stop()
    assert px.returncode == 0


def test_a_proxy_starts_with_network_faults(devwire_sim):
    sim = devwire_sim(PSU)
    px = devwire_sim(upstream="%s:%d" % sim.address(), network={"reply": {"latency": {"ms": 400}}})
    reply, took = ask_timed(px.address(), "OUTP?")
    assert reply == "OFF" and took >= 0.35, took


def test_a_proxy_cuts_connections_on_demand(devwire_sim):
    sim = devwire_sim(PSU)
    px = devwire_sim(upstream=sim.address())
    with socket.create_connection(px.address(), timeout=20) as s:
        s.sendall(b"*IDN?\n")
        assert s.recv(64) == b"ACME,PSU\n"
        px.add_network_faults({"disconnect_all": {}})
        s.settimeout(20)
        assert s.recv(64) == b""  # closed by the proxy


def test_a_recorder_writes_its_script_at_stop(devwire_sim, tmp_path):
    sim = devwire_sim(PSU)
    rec = devwire_sim(upstream=sim.address(), record=True)
    assert rec.mode == "record"
    assert ask_timed(rec.address(), "*IDN?")[0] == "ACME,PSU"
    assert ask_timed(rec.address(), "OUTP?")[0] == "OFF"
    summary = rec.stop()
    assert "summary: recorder to" in summary
    assert "recorded 2 requests on 2 connections to " + rec.record in summary
    recorded = json.loads(open(rec.record).read())
    assert {r["when"] for r in recorded["rules"]} == {"*IDN?", "OUTP?"}

    replay = devwire_sim(rec.record)  # the recording serves as a script
    assert ask_timed(replay.address(), "*IDN?")[0] == "ACME,PSU"


def test_record_stop_writes_now_and_ends_the_run(devwire_sim, tmp_path):
    sim = devwire_sim(PSU)
    out = tmp_path / "psu-recorded.json"
    rec = devwire_sim(upstream=sim.address(), record=str(out))
    ask_timed(rec.address(), "*IDN?")
    answer = rec.record_stop()
    assert answer == {"out": str(out), "rules": 1, "replays": 1, "mismatches": 0, "stopping": True}
    assert out.exists()
    assert "summary: recorder to" in rec.stop()
    assert rec.returncode == 0  # ended once, by itself: no second stop signal


def test_proxy_arguments_that_do_not_go_together():
    with pytest.raises(ValueError):
        DevwireSim(record="x.json", executable="devwire-sim")
    with pytest.raises(ValueError):
        DevwireSim("a.json", upstream="127.0.0.1:1", network={}, executable="devwire-sim")
    cmd = DevwireSim(upstream=("::1", 5025), record="o.json", executable="devwire-sim").command()
    assert cmd[1:4] == ["--record", "--upstream", "[::1]:5025"]
    assert cmd[cmd.index("--out") + 1] == "o.json"
    assert "--exit-with-stdin" in cmd
