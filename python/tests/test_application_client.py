"""A driver written on the original package's ApplicationClient API, tested
against devwire-sim: the device drops the connection in the middle of the
driver's work, and the test checks that the driver recovered and what it
sent (exactly one OUTP ON, after *RST)."""

from application_client import ApplicationClient, SentinelBytesMarshaller, TcpClient

PSU = {
    "name": "psu",
    "state": {"output": "OFF"},
    "rules": [
        {"name": "rst", "when": "*RST", "set": {"output": "OFF"}},
        {"name": "outp", "when": {"regex": "^OUTP (ON|OFF)$"}, "set": {"output": "$1"}},
        {"name": "outp?", "when": "OUTP?", "reply": "${output}"},
    ],
}


class PowerSupply:
    """The driver under test: switches the output on and confirms it,
    reconnecting (once) when the connection drops."""

    def __init__(self, host, port):
        m = SentinelBytesMarshaller(b"\n")
        self.client = ApplicationClient(TcpClient((host, port), timeout=10), m.marshall, m.unmarshall)

    def switch_on(self) -> str:
        with self.client as session:
            session.send(b"*RST")
            session.send(b"OUTP ON")
            try:
                return session.send_receive(b"OUTP?").decode()
            except ConnectionError:
                pass  # the device dropped us: ask again on a new connection
        with self.client as session:
            return session.send_receive(b"OUTP?").decode()


def test_the_driver_recovers_from_a_dropped_connection(devwire_sim):
    sim = devwire_sim(PSU)
    sim.inject_fault("close", match="OUTP?", count=1)
    assert PowerSupply(sim.host, sim.port).switch_on() == "ON"
    sim.verify([
        {"request": "*RST", "count": 1, "in_order": True},
        {"request": "OUTP ON", "count": 1, "in_order": True},
        {"request": "OUTP?", "count": 2},
    ])
    assert [e["fault"] for e in sim.journal() if e["request"]["text"] == "OUTP?"] == ["close", None]


def test_pipelined_replies_are_kept_for_the_next_payload(devwire_sim):
    sim = devwire_sim({"rules": [{"when": "A?", "reply": "a"}, {"when": "B?", "reply": "b"}]})
    m = SentinelBytesMarshaller(b"\n")
    client = ApplicationClient(TcpClient((sim.host, sim.port), timeout=10, buffer_size=1),
                               m.marshall, m.unmarshall)
    with client as session:
        session.send(b"A?")
        sim.wait_for("A?", timeout=20)
        assert session.send_receive(b"B?") == b"a"
        assert m.unmarshall(session._transport.request(), session._transport) == b"b"
