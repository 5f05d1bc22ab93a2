"""A small, naive driver for a SCPI multimeter: the kind of driver the
fault proxy's "fuzz" finds bugs in (docs/record.md, "Fuzzing a driver").

It has the two bugs of many real drivers: voltage() hands the reply to
float() and trusts what comes back (an empty reply raises ValueError, "NaN"
and a 400-digit number come back as nan and inf), and curve() trusts a
definite-length block's header and reads exactly that many bytes (a wrong
length leaves bytes behind or eats into the next reply). Standard library
only."""

import socket


class NaiveDmm:
    def __init__(self, host, port, timeout=2.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.rx = self.sock.makefile("rb")

    def _send(self, text):
        self.sock.sendall(text.encode("ascii") + b"\n")

    def query(self, text):
        self._send(text)
        return self.rx.readline().rstrip(b"\n").decode("ascii")

    def voltage(self):
        return float(self.query("MEAS:VOLT?"))  # the bug: no check at all

    def curve(self):
        self._send("CURV?")
        assert self.rx.read(1) == b"#"
        digits = int(self.rx.read(1))
        length = int(self.rx.read(digits))
        data = self.rx.read(length)  # the bug: trusts the header
        self.rx.readline()  # the terminator
        return data

    def close(self):
        self.rx.close()
        self.sock.close()
