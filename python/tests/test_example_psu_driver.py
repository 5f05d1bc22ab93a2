"""A driver for the ACME PS-3005 power supply (sim/examples/psu.json, SCPI
over TCP, one line per message) tested against the simulator: state set and
read through the control API, a reply the device drops, a journal wait for
writes that get no reply, and a verification of what the driver sent."""

import os
import socket

import pytest

PSU_JSON = os.environ.get("PSU_JSON") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "sim", "examples", "psu.json")


class PowerSupply:
    """The driver under test: SCPI lines over one TCP connection. A query
    whose reply does not come within `timeout` is asked again on a new
    connection (a late reply must not be taken for the next one's), at most
    `retries` times."""

    def __init__(self, host, port, timeout=1.0, retries=2):
        self.address, self.timeout, self.retries = (host, port), timeout, retries
        self.sock = self.reader = None

    def _connect(self):
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.reader = self.sock.makefile("rb")

    def close(self):
        if self.sock is not None:
            self.reader.close()
            self.sock.close()
        self.sock = self.reader = None

    def write(self, command):
        self._connect()
        self.sock.sendall(command.encode() + b"\n")

    def query(self, command):
        for attempt in range(self.retries + 1):
            try:
                self.write(command)
                line = self.reader.readline()
                if line.endswith(b"\n"):
                    return line.decode().strip()
            except OSError:  # a timeout, a reset
                pass
            self.close()
        raise TimeoutError(f"{command}: no reply after {self.retries + 1} tries")

    def reset(self):
        self.write("*RST")
        return self.query("*OPC?") == "1"

    def set_voltage(self, volts):
        self.write(f"VOLT {volts:.3f}")

    def output_on(self):
        self.write("OUTP ON")

    def voltage_setting(self):
        return float(self.query("VOLT?"))

    def current_limit(self):
        return float(self.query("CURR?"))

    def measure_voltage(self):
        return float(self.query("MEAS:VOLT?"))


@pytest.fixture
def psu(devwire_sim):
    sim = devwire_sim(PSU_JSON)
    driver = PowerSupply(sim.host, sim.port)
    yield sim, driver
    driver.close()


def test_the_driver_sets_up_the_supply(psu):
    sim, driver = psu
    assert driver.reset()
    driver.set_voltage(12)
    driver.output_on()
    # Writes get no reply: wait until the device has taken the last one.
    sim.wait_for("OUTP ON", timeout=20)
    assert sim.state()["properties"]["volt"] == 12
    assert sim.state()["properties"]["output"] is True
    sim.verify([{"request": "*RST", "count": 1, "in_order": True},
                {"request": "VOLT 12.000", "count": 1, "in_order": True},
                {"request": "OUTP ON", "count": 1, "in_order": True}])


def test_the_driver_reads_what_the_bench_set(psu):
    sim, driver = psu
    sim.set_state(volt=5, curr=0.25)  # as if set on the front panel
    assert driver.voltage_setting() == 5
    assert driver.current_limit() == 0.25


def test_the_driver_survives_a_dropped_reply(psu):
    sim, driver = psu
    sim.set_state(volt=3, output=True)
    sim.inject_fault("drop", match="MEAS:VOLT?")  # the next one gets no reply
    assert -0.05 < driver.measure_voltage() < 3.05  # asked again on a new connection
    dropped = [e for e in sim.journal() if e["fault"] == "drop"]
    assert [e["request"]["text"] for e in dropped] == ["MEAS:VOLT?"]
    sim.verify([{"request": "MEAS:VOLT?", "at_least": 2}])


def test_the_driver_gives_up_on_a_dead_device(psu):
    sim, driver = psu
    driver.timeout, driver.retries = 0.2, 1
    sim.inject_fault("drop", match="VOLT?", count=2)
    with pytest.raises(TimeoutError):
        driver.voltage_setting()
    sim.verify([{"request": "VOLT?", "count": 2}])
