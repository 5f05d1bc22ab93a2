#!/usr/bin/env python3
"""The SCPI signal generator example (sim/examples/sg.json) driven the way
instrument drivers drive a real one over a socket: chained queries, *OPC?
synchronisation, SYST:ERR? polled after every write, an out-of-range
setting. Standard library only.

Usage: test_sim_scpi_driver.py DEVWIRE_SIM EXAMPLES_DIR
The simulator listens on 127.0.0.1 port 0; its readiness line says where.
It runs in its own process group, dies with this process (PR_SET_PDEATHSIG)
and is stopped whatever happens."""

import ctypes
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import unittest

SIM = EXAMPLES = None
TIMEOUT = 30.0  # generous: the machine may be busy


def _die_with_parent():
    os.setpgrp()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Simulator:
    """devwire-sim serving one script on 127.0.0.1:0."""

    def __init__(self, script):
        self.proc = subprocess.Popen(
            [SIM, "--script", script, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
            preexec_fn=_die_with_parent)
        try:
            self.port = self._ready()
        except BaseException:
            self.stop()
            raise

    def _ready(self):
        deadline = time.monotonic() + TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise RuntimeError("devwire-sim did not say where it listens")
            ch = self.proc.stdout.read(1)
            if not ch:
                raise RuntimeError("devwire-sim ended: "
                                   + self.proc.stderr.read().decode(errors="replace"))
            line += ch
        m = re.match(rb"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError("unexpected readiness line: %r" % line)
        return int(m.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


class Instrument:
    """What a SCPI driver does: write, query, check the error queue."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def close(self):
        self.sock.close()

    def write(self, cmd):
        self.sock.sendall(cmd.encode() + b"\n")

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the instrument closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def query(self, q):
        self.write(q)
        return self.read()

    def error(self):
        code, msg = self.query("SYST:ERR?").split(",", 1)
        return int(code), msg.strip('"')

    def checked_write(self, cmd):
        """Write, then poll the error queue, as drivers do after every write."""
        self.write(cmd)
        code, msg = self.error()
        if code:
            raise ValueError("%s: %d, %s" % (cmd, code, msg))


class SignalGeneratorDriver(unittest.TestCase):
    def setUp(self):
        self.sim = Simulator(os.path.join(EXAMPLES, "sg.json"))
        self.addCleanup(self.sim.stop)
        self.inst = Instrument(self.sim.port)
        self.addCleanup(self.inst.close)
        self.inst.write("*CLS")

    def test_chained_queries(self):
        self.assertEqual(self.inst.query("FREQ?;*IDN?"), "1.0E+06;ACME,SG-1000,0001,1.0.3")
        self.assertEqual(self.inst.query("FREQ?;:POW?;:OUTP?;:TRIG:SOUR?"),
                         "1.0E+06;-10.00;0;IMM")
        self.assertEqual(float(self.inst.query("FREQ? MAX").split(";")[0]), 6e9)

    def test_opc_synchronisation(self):
        self.assertEqual(self.inst.query("FREQ 2.5 MHz;:OUTP ON;*OPC?"), "1")
        self.assertEqual(self.inst.query("FREQ?"), "2.5E+06")
        self.inst.write("*OPC")
        self.assertEqual(int(self.inst.query("*ESR?")) & 1, 1, "OPC bit")

    def test_error_polling_after_each_write(self):
        for cmd in ("SOUR:FREQ:CW 100 kHz", "POW -20 dBm", "OUTP ON", "TRIG:SOUR BUS",
                    "AM:SOUR EXT", "AM 50", "DISP:TEXT 'bench 3'"):
            self.inst.checked_write(cmd)
        self.assertEqual(self.inst.query("FREQ?;:POW?;:OUTP?;:TRIG:SOUR?;:AM:SOUR?;DEPT?"),
                         "1.0E+05;-20.00;1;BUS;EXT;50.0")
        self.assertEqual(self.inst.query("DISP:TEXT?"), '"bench 3"')
        self.assertEqual(self.inst.error(), (0, "No error"))

    def test_out_of_range_set(self):
        self.inst.checked_write("FREQ 1 GHz")
        with self.assertRaises(ValueError) as e:
            self.inst.checked_write("FREQ 7 GHz")
        self.assertIn("-222, Data out of range", str(e.exception))
        self.assertEqual(self.inst.query("FREQ?"), "1.0E+09", "the setting is unchanged")
        self.inst.write("POW 30")
        self.inst.write("TRIG:SOUR NEVER")
        self.assertEqual(int(self.inst.query("*ESR?")) & 0x10, 0x10, "EXE")
        self.assertEqual(self.inst.error(), (-222, "Data out of range"))
        self.assertEqual(self.inst.error(), (-224, "Illegal parameter value"))
        self.assertEqual(self.inst.error(), (0, "No error"))
        self.assertEqual(self.inst.query("*RST;FREQ?;:POW?"), "1.0E+06;-10.00")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    SIM, EXAMPLES = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
