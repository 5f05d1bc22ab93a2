#!/usr/bin/env python3
"""The SCPI signal generator example (sim/examples/sg.json) and the
two-channel function generator (sim/examples/fgen2.json) driven the way
instrument drivers drive a real one over a socket: chained queries, *OPC?
synchronisation, SYST:ERR? polled after every write, an out-of-range
setting, per-channel settings, status polling through *STB? and the
QUEStionable and OPERation registers, an overlapped command. Standard
library only.

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


class FunctionGeneratorDriver(unittest.TestCase):
    """What a driver for a two-channel generator does: configure each channel
    with an error check after each write, enable status reporting, poll the
    status byte, wait for a calibration with *OPC?."""

    def setUp(self):
        self.sim = Simulator(os.path.join(EXAMPLES, "fgen2.json"))
        self.addCleanup(self.sim.stop)
        self.inst = Instrument(self.sim.port)
        self.addCleanup(self.inst.close)
        self.inst.write("*RST;*CLS")

    def test_identify_and_version(self):
        self.assertEqual(self.inst.query("*IDN?"), "ACME,FG-2,0007,3.1")
        self.assertEqual(self.inst.query("SYST:VERS?"), "1999.0")

    def test_channels_are_independent(self):
        for ch, (f, v, fn) in ((1, ("1 kHz", "2 V", "SQU")), (2, ("2.5 MHz", "500 mV", "RAMP"))):
            self.inst.checked_write("SOUR%d:FREQ %s" % (ch, f))
            self.inst.checked_write("SOUR%d:VOLT %s" % (ch, v))
            self.inst.checked_write("SOUR%d:FUNC %s" % (ch, fn))
            self.inst.checked_write("OUTP%d ON" % ch)
        self.assertEqual(self.inst.query("SOUR1:FREQ?;VOLT?;FUNC?;:OUTP1?"), "1.0E+03;2.0E+00;SQU;1")
        self.assertEqual(self.inst.query("SOUR2:FREQ?;VOLT?;FUNC?;:OUTP2?"),
                         "2.5E+06;5.0E-01;RAMP;1")
        self.assertEqual(self.inst.query("FREQ?"), "1.0E+03", "no suffix: channel 1")
        with self.assertRaises(ValueError) as e:
            self.inst.checked_write("SOUR3:FREQ 1 kHz")
        self.assertIn("-114", str(e.exception))
        with self.assertRaises(ValueError) as e:
            self.inst.checked_write("SOUR2:FREQ 40 MHz")
        self.assertIn("-222", str(e.exception))
        self.assertEqual(self.inst.query("SOUR2:FREQ?"), "2.5E+06", "channel 2 unchanged")
        self.inst.checked_write("APPL:SIN 10 kHz,1 V,0.25")
        self.assertEqual(self.inst.query("APPL?"), '"SIN 10000,1,0.25"')
        self.inst.checked_write("SOUR2:APPL:SIN 20 kHz,0.5 V,-1")
        self.assertEqual(self.inst.query("SOUR2:APPL?;FREQ?"), '"SIN 20000,0.5,-1";2.0E+04')
        self.assertEqual(self.inst.query("SOUR1:APPL?"), '"SIN 10000,1,0.25"')
        self.assertEqual(self.inst.query("*RST;SOUR2:FREQ?;:OUTP2?"), "1.0E+03;0")

    def test_status_polling(self):
        self.inst.checked_write("STAT:PRES")
        self.inst.checked_write("STAT:QUES:ENAB 1")
        self.inst.checked_write("*SRE 8")
        self.assertEqual(int(self.inst.query("*STB?")) & 0x48, 0)
        self.inst.checked_write("SOUR2:VOLT:OFFS 4.5")
        self.inst.checked_write("SOUR2:VOLT 2")  # 4.5 + 1 > 5: clipping
        stb = int(self.inst.query("*STB?"))
        self.assertEqual(stb & 0x48, 0x48, "QUES summary and MSS: %d" % stb)
        self.assertEqual(self.inst.query("STAT:QUES:COND?"), "1")
        self.assertEqual(self.inst.query("STAT:QUES?"), "1")
        self.assertEqual(self.inst.query("STAT:QUES?"), "0", "the event register clears on read")
        self.inst.checked_write("SOUR2:VOLT 1")  # 4.5 + 0.5: no longer clipping
        self.assertEqual(self.inst.query("STAT:QUES:COND?"), "0")
        self.assertEqual(int(self.inst.query("*STB?")) & 0x48, 0)

    def test_overlapped_calibration(self):
        self.inst.checked_write("STAT:OPER:ENAB 1")
        start = time.monotonic()
        self.inst.write("CAL")
        self.assertEqual(self.inst.query("STAT:OPER:COND?"), "1", "calibrating")
        self.assertEqual(self.inst.query("*OPC?"), "1")
        self.assertGreaterEqual(time.monotonic() - start, 0.35, "*OPC? waits for the calibration")
        self.assertEqual(self.inst.query("STAT:OPER:COND?;EVEN?"), "0;1")
        self.inst.write("CAL;*OPC")
        self.assertEqual(int(self.inst.query("*ESR?")) & 1, 0, "not complete yet")
        start = time.monotonic()
        self.assertEqual(self.inst.query("*WAI;*ESR?"), "1")
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        self.assertEqual(self.inst.error(), (0, "No error"))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    SIM, EXAMPLES = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
