"""The Python package against a real devwire-sim."""

import html.parser
import json
import socket
import threading
import time

import pytest

from devwire_sim import ControlError, DevwireSim, VerificationError

PSU = {
    "name": "psu",
    "state": {"output": "OFF"},
    "rules": [
        {"name": "idn", "when": "*IDN?", "reply": "ACME,PSU"},
        {"name": "rst", "when": "*RST", "set": {"output": "OFF"}},
        {"name": "outp", "when": {"regex": "^OUTP (ON|OFF)$"}, "set": {"output": "$1"}},
        {"name": "outp?", "when": "OUTP?", "reply": "${output}"},
    ],
}


def ask(sim, line, device=None):
    with socket.create_connection(sim.address(device), timeout=10) as s:
        s.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
        return data.decode().rstrip("\n")


def test_start_serve_and_stop_with_a_summary(devwire_sim):
    sim = devwire_sim(PSU)
    assert sim.health()["status"] == "ok"
    assert ask(sim, "*IDN?") == "ACME,PSU"
    summary = sim.stop()
    assert "summary: psu" in summary
    assert "requests: 1" in summary
    assert sim.returncode == 0


def test_set_state_changes_the_reply(devwire_sim):
    sim = devwire_sim(PSU)
    sim.set_state(output="TRIP")
    assert ask(sim, "OUTP?") == "TRIP"
    with pytest.raises(ControlError) as e:
        sim.set_state(nope="1")
    assert e.value.status == 422 and e.value.where == "body.nope"


SG = {
    "profile": "scpi",
    "properties": {
        "freq": {"type": "float", "scpi": "FREQuency", "unit": "Hz", "min": 9e3, "max": 6e9, "default": 1e6},
        "output": {"type": "bool", "scpi": "OUTPut", "default": False},
    },
}


def test_set_state_sets_a_property_through_its_validation(devwire_sim):
    sim = devwire_sim(SG)
    assert sim.state()["properties"] == {"freq": 1e6, "output": False}
    assert sim.set_state(freq=2.5e6, output=True)["properties"] == {"freq": 2.5e6, "output": True}
    assert ask(sim, "FREQ?;:OUTP?") == "2.5E+06;1"
    with pytest.raises(ControlError) as e:
        sim.set_state(output=False, freq=1e12)
    assert e.value.status == 422 and e.value.where == "body.freq"
    assert "freq: Data out of range (-222)" in str(e.value)
    assert ask(sim, "FREQ?;:OUTP?") == "2.5E+06;1"
    sim.reset()
    assert sim.state()["properties"] == {"freq": 1e6, "output": False}

def test_inject_fault_and_journal(devwire_sim):
    sim = devwire_sim(PSU)
    sim.inject_fault("garbage", match="idn", count=1, garbage="XX\n")
    assert ask(sim, "*IDN?") == "XX"
    assert ask(sim, "*IDN?") == "ACME,PSU"
    entries = sim.journal()
    assert [e["fault"] for e in entries] == ["garbage", None]
    assert entries[0]["request"]["text"] == "*IDN?"


def test_wait_for_wakes_and_times_out(devwire_sim):
    sim = devwire_sim(PSU)
    threading.Timer(0.3, ask, (sim, "OUTP?")).start()
    entry = sim.wait_for("OUTP?", timeout=20)
    assert entry["match"] == "outp?"
    with pytest.raises(TimeoutError):
        sim.wait_for(regex="^NEVER", timeout=0.2)


def test_verify_reports_near_misses(devwire_sim):
    sim = devwire_sim(PSU)
    with socket.create_connection(sim.address(), timeout=10) as s:
        s.sendall(b"*RST\nOUTP  ON\n")
        sim.wait_for(request="OUTP  ON", timeout=20)
    sim.verify([{"request": "*RST", "count": 1}])
    with pytest.raises(VerificationError) as e:
        sim.verify([{"request": "*RST", "count": 1, "in_order": True},
                    {"request": "OUTP ON", "count": 1, "in_order": True}])
    assert "near miss: 'OUTP  ON'" in str(e.value)


def test_reset_and_metrics(devwire_sim):
    sim = devwire_sim(PSU)
    ask(sim, "*IDN?")
    assert 'devwire_sim_requests_total{device="default"} 1' in sim.metrics()
    sim.reset()
    assert 'devwire_sim_requests_total{device="default"} 0' in sim.metrics()
    assert sim.journal() == []


def test_replace_script(devwire_sim):
    sim = devwire_sim(PSU)
    with pytest.raises(ControlError) as e:
        sim.replace_script('{"rules": [')
    assert e.value.status == 400 and e.value.where.startswith("devices/default/script:1:")
    sim.replace_script(json.dumps({"rules": [{"when": "*IDN?", "reply": "NEW"}]}))
    assert ask(sim, "*IDN?") == "NEW"


def test_a_bench_of_devices(devwire_sim, tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(PSU))
    (tmp_path / "bench.json").write_text(json.dumps(
        [{"name": "psu1", "script": "a.json"}, {"name": "psu2", "script": "a.json"}]))
    sim = devwire_sim(bench=str(tmp_path / "bench.json"))
    assert set(sim.devices) == {"psu1", "psu2"}
    sim.set_state(output="ON", device="psu2")
    assert ask(sim, "OUTP?", "psu1") == "OFF"
    assert ask(sim, "OUTP?", "psu2") == "ON"


def test_a_script_that_does_not_load_is_reported(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": 3}')
    with pytest.raises(Exception) as e:
        DevwireSim(str(bad)).start()
    assert "bad.json:1:" in str(e.value)


class _Checker(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], set()

    VOID = {"meta", "br", "img", "input", "link", "hr"}

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and "//" in value:
                self.errors.append(f"external asset {value}")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def test_the_status_page_is_well_formed_html(devwire_sim):
    sim = devwire_sim(PSU)
    page = sim.request("GET", "/")
    checker = _Checker()
    checker.feed(page)
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    assert {"html", "head", "body", "table", "script"} <= checker.tags


def test_the_status_page_in_a_browser_shows_live_devices(devwire_sim, page):
    sim = devwire_sim(PSU)
    ask(sim, "*IDN?")
    sim.inject_fault("delay", delay_ms=5, count=3)
    page.goto(sim.url + "/")
    page.wait_for("!!(document.querySelector('tr.device') && document.querySelector('table.faults'))")
    dom = page.text()
    assert 'class="device"' in dom
    assert "ACME,PSU" in dom  # the journal's last requests
    assert "delay" in dom  # the active fault
    assert page.evaluate("document.getElementById('status').textContent").startswith("updated ")
