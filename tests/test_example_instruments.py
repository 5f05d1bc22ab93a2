#!/usr/bin/env python3
"""The catalogue of example instruments (sim/examples/dmm.json, smu.json,
scope.json) driven the way their drivers drive the real ones over a socket:
set, query, parse the numbers, poll SYST:ERR? after every write, read
definite-length blocks by their header, reconnect. The bench side (the
DMM's input signal, the SMU's load) is set through the control API, as a
test bench would. Standard library only.

Usage: test_example_instruments.py DEVWIRE_SIM EXAMPLES_DIR
Each simulator listens on 127.0.0.1 port 0 (its control API too); the
readiness lines say where. It runs in its own process group, dies with this
process (PR_SET_PDEATHSIG) and is stopped whatever happens."""

import ctypes
import http.client
import json
import math
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

SIM = EXAMPLES = None
TIMEOUT = 30.0  # generous: the machine may be busy
QUIET = 0.3     # how long a command with no answer is given to answer anyway


def _die_with_parent():
    os.setpgrp()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Simulator:
    """devwire-sim serving one example on 127.0.0.1:0, with its control API."""

    def __init__(self, example):
        self.proc = subprocess.Popen(
            [SIM, "--script", os.path.join(EXAMPLES, example), "--listen", "127.0.0.1:0",
             "--control", "127.0.0.1:0", "--seed", "7",
             # The scope builds a 2500-point waveform in Lua: a few ms in a
             # release build, more than the default 10 ms deadline in a
             # sanitizer build on a loaded machine. The deadline is not what
             # these tests are about.
             "--lua-deadline", "2000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
            preexec_fn=_die_with_parent)
        try:
            self.deadline = time.monotonic() + TIMEOUT
            m = re.match(rb"listening on 127\.0\.0\.1:(\d+)\n", self._line())
            if not m:
                raise RuntimeError("unexpected readiness line")
            self.port = int(m.group(1))
            m = re.match(rb"control on http://127\.0\.0\.1:(\d+)\n", self._line())
            if not m:
                raise RuntimeError("unexpected control line")
            self.control_port = int(m.group(1))
        except BaseException:
            self.stop()
            raise

    def _line(self):
        line = b""
        while not line.endswith(b"\n"):
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise RuntimeError("devwire-sim did not say where it listens")
            ch = self.proc.stdout.read(1)
            if not ch:
                raise RuntimeError("devwire-sim ended: "
                                   + self.proc.stderr.read().decode(errors="replace"))
            line += ch
        return line

    def patch_state(self, **values):
        """PATCH /devices/default/state: what the test bench wires up."""
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=TIMEOUT)
        try:
            conn.request("PATCH", "/devices/default/state", json.dumps(values),
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError("PATCH %r: %d %s" % (values, resp.status, body))
            return json.loads(body)
        finally:
            conn.close()

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
    """What a SCPI driver does: write, query, read blocks, check the error queue."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.connect()

    def connect(self):
        if self.sock:
            self.sock.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def write(self, cmd):
        self.sock.sendall(cmd.encode() + b"\n")

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the instrument closed the connection")
        self.buf += chunk

    def read(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def read_exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def query(self, q):
        self.write(q)
        return self.read()

    def query_float(self, q):
        return float(self.query(q))

    def query_block(self, q):
        """An IEEE 488.2 definite-length block #<n><len><bytes>, then the
        response terminator."""
        self.write(q)
        head = self.read_exactly(2)
        if head[:1] != b"#" or not head[1:2].isdigit() or head[1:2] == b"0":
            raise ValueError("not a definite-length block: %r" % head)
        n = int(head[1:2])
        digits = self.read_exactly(n)
        if not digits.isdigit():
            raise ValueError("bad block length %r" % digits)
        data = self.read_exactly(int(digits))
        end = self.read_exactly(1)
        if end != b"\n":
            raise ValueError("%d bytes of block, then %r instead of the terminator"
                             % (len(data), end + self.buf[:16]))
        return data

    def silent(self):
        """Nothing more was sent: a refused query answers nothing."""
        self.sock.settimeout(QUIET)
        try:
            self._fill()
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(TIMEOUT)
        return False

    def error(self):
        code, msg = self.query("SYST:ERR?").split(",", 1)
        return int(code), msg.strip('"')

    def checked_write(self, cmd):
        """Write, then poll the error queue, as drivers do after every write."""
        self.write(cmd)
        err = self.error()
        if err != (0, "No error"):
            raise ValueError("%s: %d, %s" % (cmd, err[0], err[1]))


class Case(unittest.TestCase):
    EXAMPLE = None

    def setUp(self):
        self.sim = Simulator(self.EXAMPLE)
        self.addCleanup(self.sim.stop)
        self.inst = Instrument(self.sim.port)
        self.addCleanup(self.inst.close)
        self.inst.write("*CLS")

    def assertRefused(self, cmd, code):
        """cmd answers nothing and queues `code`, and only that."""
        self.inst.write(cmd)
        self.assertTrue(self.inst.silent(), "%s answered" % cmd)
        self.assertEqual(self.inst.error()[0], code, cmd)
        self.assertEqual(self.inst.error(), (0, "No error"))

    def assertNoError(self):
        self.assertEqual(self.inst.error(), (0, "No error"))


# ---- the DMM ---------------------------------------------------------------------

PPM = {0.02: 100e-6, 0.2: 10e-6, 1: 3e-6, 10: 1e-6, 100: 0.3e-6}


class MultimeterDriver(Case):
    EXAMPLE = "dmm.json"

    def configuration(self):
        m = re.fullmatch(r'"(\S+) ([-+0-9.E]+),([-+0-9.E]+)"', self.inst.query("CONF?"))
        self.assertIsNotNone(m, "CONF? answers \"FUNC range,resolution\"")
        return m.group(1), float(m.group(2)), float(m.group(3))

    def test_identity_and_reset_state(self):
        maker, model, serial, firmware = self.inst.query("*IDN?").split(",")
        self.assertEqual((maker, model), ("ACME", "DM-6100"))
        self.inst.checked_write("*RST")
        self.assertEqual(self.configuration(), ("VOLT", 10.0, 1e-5))
        self.assertEqual(self.inst.query("FUNC?;:VOLT:RANG:AUTO?;:TRIG:SOUR?"), '"VOLT";1;IMM')
        self.assertEqual(self.inst.query_float("VOLT:DC:NPLC?"), 10)

    def test_configure_read_and_measure(self):
        self.sim.patch_state(input_volts=3.3)
        self.inst.checked_write("CONF:VOLT:DC 10,1e-5")
        self.assertEqual(self.configuration(), ("VOLT", 10.0, 1e-5))
        readings = [self.inst.query_float("READ?") for _ in range(10)]
        for r in readings:
            self.assertLessEqual(abs(r - 3.3), 1e-5, "within one count of 10 uV: %r" % r)
        self.assertGreater(len(set(readings)), 1, "the readings are noisy")
        self.assertNoError()
        # A coarser resolution picks a faster NPLC, and the noise follows it.
        self.inst.checked_write("CONF:VOLT:DC 100,0.01")
        self.assertEqual(self.configuration(), ("VOLT", 100.0, 0.01))
        self.assertEqual(self.inst.query_float("VOLT:NPLC?"), 0.02)
        self.assertLessEqual(abs(self.inst.query_float("READ?") - 3.3), 0.01)
        # MEAS? configures (autorange by default) and reads in one go.
        r = self.inst.query_float("MEAS:VOLT:DC?")
        self.assertLessEqual(abs(r - 3.3), 10 * PPM[10])
        self.assertEqual(self.inst.query("VOLT:RANG?;RANG:AUTO?"), "+1.00000000E+01;1")
        r = self.inst.query_float("MEAS:VOLT:DC? 10,MIN")
        self.assertLessEqual(abs(r - 3.3), 10 * PPM[100])
        self.assertEqual(self.inst.query_float("VOLT:NPLC?"), 100)
        self.assertNoError()

    def test_range(self):
        for setting, rng in (("5", 10), ("0.05", 0.1), ("1", 1), ("100", 100), ("101", 1000),
                             ("MIN", 0.1), ("MAX", 1000), ("DEF", 10), ("500 mV", 1)):
            self.inst.checked_write("SENS:VOLT:DC:RANG " + setting)
            self.assertEqual(self.inst.query_float("VOLT:RANG?"), rng, setting)
            self.assertEqual(self.inst.query("VOLT:RANG:AUTO?"), "0", "a range turns autorange off")
        self.inst.checked_write("VOLT:RANG:AUTO ON")
        self.assertEqual(self.inst.query("VOLT:RANG:AUTO?"), "1")
        self.sim.patch_state(input_volts=-0.5)
        self.assertLessEqual(abs(self.inst.query_float("READ?") + 0.5), 1e-6)
        self.assertEqual(self.inst.query_float("VOLT:RANG?"), 1, "autoranged to 1 V")
        self.inst.checked_write("VOLT:RANG 10")
        self.assertRefused("VOLT:RANG 2000", -222)
        self.assertRefused("VOLT:RANG 10 A", -131)
        self.assertEqual(self.inst.query_float("VOLT:RANG?"), 10, "unchanged")

    def test_nplc(self):
        for setting, nplc in (("0.02", 0.02), ("0.2", 0.2), ("1", 1), ("10", 10), ("100", 100),
                              ("0.5", 1), ("3", 10), ("MIN", 0.02), ("MAX", 100)):
            self.inst.checked_write("VOLT:NPLC " + setting)
            self.assertEqual(self.inst.query_float("VOLT:DC:NPLC?"), nplc, setting)
            self.assertAlmostEqual(self.inst.query_float("VOLT:RES?"), 10 * PPM[nplc],
                                   delta=1e-12)
        self.assertRefused("VOLT:NPLC 200", -222)
        self.assertRefused("VOLT:NPLC 0.001", -222)
        self.assertRefused("VOLT:NPLC 1 V", -131)

    def test_function_choices(self):
        for name in ('"VOLT:DC"', "'volt'", '"VOLTage:DC"'):
            self.inst.checked_write("SENS:FUNC " + name)
            self.assertEqual(self.inst.query("FUNC?"), '"VOLT"', name)
        self.inst.checked_write('FUNC "RES"')
        self.assertEqual(self.inst.query("FUNC?"), '"RES"')
        self.assertEqual(self.inst.query_float("READ?"), 9.91e37, "only DC volts is simulated")
        self.assertRefused('FUNC "VOLT:XX"', -224)
        self.inst.query("*ESR?")  # reading the error queue leaves the ESR: clear it
        self.assertEqual(int(self.inst.query("*ESR?")) & 0x10, 0)
        self.inst.write('FUNC "BOGUS"')
        self.assertEqual(int(self.inst.query("*ESR?")) & 0x10, 0x10, "EXE")
        self.assertEqual(self.inst.error(), (-224, "Illegal parameter value"))
        self.assertEqual(self.inst.query("FUNC?"), '"RES"', "unchanged")

    def test_trigger_model(self):
        self.sim.patch_state(input_volts=7.25)
        self.assertRefused("FETC?", -230)  # nothing measured since power-on
        self.inst.checked_write("TRIG:SOUR BUS")
        self.assertEqual(self.inst.query("TRIG:SOUR?"), "BUS")
        self.inst.checked_write("INIT")
        self.assertRefused("FETC?", -230)  # waits for its trigger
        self.assertRefused("READ?", -214)  # READ? would wait for ever
        self.inst.checked_write("*TRG")
        first = self.inst.query_float("FETC?")
        self.assertLessEqual(abs(first - 7.25), 1e-5)
        self.assertEqual(self.inst.query_float("FETC?"), first, "FETC? reads the same reading")
        self.assertRefused("*TRG", -211)  # not armed any more
        for source in ("IMMediate", "EXT"):
            self.inst.checked_write("TRIG:SOUR " + source)
            self.inst.checked_write("INIT")
            self.assertLessEqual(abs(self.inst.query_float("FETC?") - 7.25), 1e-5, source)
        self.assertRefused("TRIG:SOUR NEVER", -224)

    def test_overload(self):
        self.sim.patch_state(input_volts=5)
        self.inst.checked_write("CONF:VOLT:DC 1")
        self.assertEqual(self.inst.query("READ?"), "+9.90000000E+37")
        self.sim.patch_state(input_volts=-5)
        self.assertEqual(self.inst.query("READ?"), "-9.90000000E+37")
        self.inst.checked_write("VOLT:RANG:AUTO ONCE")
        self.assertEqual(self.inst.query_float("VOLT:RANG?"), 10)
        self.assertLessEqual(abs(self.inst.query_float("READ?") + 5), 1e-5)
        self.assertRefused("CONF:VOLT:DC 2000", -222)
        self.assertRefused("CONF:VOLT:DC 10,0.1,3", -222)

    def test_reset_keeps_the_input_and_settings_outlive_a_connection(self):
        self.sim.patch_state(input_volts=2.5)
        self.inst.checked_write("CONF:VOLT:DC 100,MAX;:TRIG:SOUR BUS")
        self.inst.connect()  # a driver that reconnects finds the instrument as it left it
        self.assertEqual(self.configuration(), ("VOLT", 100.0, 100 * PPM[0.02]))
        self.assertEqual(self.inst.query("TRIG:SOUR?"), "BUS")
        self.inst.checked_write("*RST")
        self.assertEqual(self.configuration(), ("VOLT", 10.0, 1e-5))
        self.assertLessEqual(abs(self.inst.query_float("READ?") - 2.5), 1e-5,
                             "*RST does not unplug the input")
        self.assertNoError()


# ---- the SMU ---------------------------------------------------------------------

class SourceMeasureUnitDriver(Case):
    EXAMPLE = "smu.json"

    def read(self, q=":READ?"):
        return [float(x) for x in self.inst.query(q).split(",")]

    def test_identity_and_reset_state(self):
        self.assertEqual(self.inst.query("*IDN?").split(",")[:2], ["ACME", "SM-2401"])
        self.inst.checked_write("*RST")
        self.assertEqual(self.inst.query(":SOUR:FUNC?;:SOUR:VOLT?;:SENS:CURR:PROT?;:OUTP?"),
                         "VOLT;+0.000000E+00;+1.050000E-04;0")
        self.assertEqual(self.inst.query(":FORM:ELEM?"), "VOLT,CURR,RES,TIME,STAT")

    def test_source_voltage_measure_current(self):
        self.sim.patch_state(load_ohms=100)
        for cmd in (":SOUR:FUNC VOLT", ":SOUR:VOLT 1", ":SENS:CURR:PROT 0.1", ":OUTP ON"):
            self.inst.checked_write(cmd)
        v, i, r, t, stat = self.read()
        self.assertEqual((v, i, r, stat), (1.0, 0.01, 9.91e37, 0))
        self.assertGreater(t, 0)
        self.inst.checked_write(":FORM:ELEM CURR")
        self.assertEqual(self.inst.query(":READ?"), "+1.000000E-02")
        self.assertEqual(self.inst.query(":MEAS:CURR?"), "+1.000000E-02")
        # The bench changes the load while the output is on.
        self.sim.patch_state(load_ohms=1000)
        self.assertEqual(self.read(), [0.001])
        self.inst.checked_write(":SOUR:VOLT -2.5")
        self.assertEqual(self.read(":MEAS:CURR:DC?"), [-0.0025])
        self.assertNoError()

    def test_current_compliance(self):
        self.sim.patch_state(load_ohms=100)
        self.inst.checked_write(":SOUR:VOLT 20;:SENS:CURR:PROT 0.1;:OUTP ON")
        self.inst.checked_write(":FORM:ELEM VOLT,CURR,STAT")
        v, i, stat = self.read()
        self.assertEqual(i, 0.1, "held at the compliance")
        self.assertEqual(v, 10.0, "the voltage drops to I*R")
        self.assertEqual(int(stat) & 8, 8, "the compliance bit")
        self.assertEqual(self.inst.query(":SENS:CURR:PROT:TRIP?"), "1")
        self.inst.checked_write(":SENS:CURR:PROT 1")
        v, i, stat = self.read()
        self.assertEqual((v, i, int(stat) & 8), (20.0, 0.2, 0))
        self.assertEqual(self.inst.query(":CURR:PROT:TRIP?"), "0")

    def test_source_current(self):
        self.sim.patch_state(load_ohms=100)
        self.inst.checked_write(":SOUR:FUNC CURR;:SOUR:CURR 0.01;:SENS:VOLT:PROT 0.5")
        self.inst.checked_write(":OUTP ON;:FORM:ELEM CURR,VOLT")  # always V before I
        self.assertEqual(self.read(), [0.5, 0.005], "clipped at the voltage compliance")
        self.assertEqual(self.inst.query(":SENS:VOLT:PROT:TRIP?"), "1")
        self.inst.checked_write(":SENS:VOLT:PROT 20")
        self.assertEqual(self.read(), [1.0, 0.01])

    def test_output_off_and_refused_values(self):
        self.assertRefused(":READ?", 803)
        self.assertRefused(":MEAS:CURR?", 803)
        self.assertRefused(":SOUR:VOLT 300", -222)
        self.assertRefused(":SOUR:FUNC RESistance", -224)
        self.assertRefused(":SENS:CURR:PROT 2", -222)
        self.assertRefused(":FORM:ELEM CURR,BOGUS", -224)
        self.assertEqual(self.inst.query(":SOUR:VOLT?;:FORM:ELEM?"),
                         "+0.000000E+00;VOLT,CURR,RES,TIME,STAT", "unchanged")

    def test_reset_keeps_the_load(self):
        self.sim.patch_state(load_ohms=50)
        self.inst.checked_write(":SOUR:VOLT 5;:SENS:CURR:PROT 1;:OUTP ON;:FORM:ELEM CURR")
        self.inst.checked_write("*RST")
        self.assertEqual(self.inst.query(":OUTP?;:FORM:ELEM?"), "0;VOLT,CURR,RES,TIME,STAT")
        self.inst.connect()
        self.inst.checked_write(":SOUR:VOLT 5;:SENS:CURR:PROT 1;:OUTP ON;:FORM:ELEM CURR")
        self.assertEqual(self.read(), [0.1], "5 V into the same 50 ohms")


# ---- the oscilloscope --------------------------------------------------------------

SIGNALS = {"CH1": (2.0, 1000.0, 1.0), "CH2": (0.5, 2000.0, 0.2)}  # amplitude, Hz, V/div
RECORD = 2500
PREAMBLE = ("BYT_NR", "BIT_NR", "ENCDG", "BN_FMT", "BYT_OR", "NR_PT", "WFID", "PT_FMT",
            "XINCR", "PT_OFF", "XZERO", "XUNIT", "YMULT", "YZERO", "YOFF", "YUNIT")


class OscilloscopeDriver(Case):
    EXAMPLE = "scope.json"

    def preamble(self):
        fields = self.inst.query("WFMO?").split(";")
        self.assertEqual(len(fields), len(PREAMBLE), fields)
        return dict(zip(PREAMBLE, fields))

    def waveform(self, q="CURV?"):
        """What a driver does: the preamble, then the curve, then volts."""
        pre = self.preamble()
        width, n = int(pre["BYT_NR"]), int(pre["NR_PT"])
        if pre["ENCDG"] == "ASC":
            levels = [int(x) for x in self.inst.query(q).split(",")]
        else:
            data = self.inst.query_block(q)
            self.assertEqual(len(data), n * width, "NR_PT points of BYT_NR bytes")
            code = {1: "b", 2: "h"}[width]
            if pre["BN_FMT"] == "RP":
                code = code.upper()
            order = ">" if pre["BYT_OR"] == "MSB" else "<"
            levels = list(struct.unpack("%s%d%s" % (order, n, code), data))
        self.assertEqual(len(levels), n)
        ymult, yzero, yoff = float(pre["YMULT"]), float(pre["YZERO"]), float(pre["YOFF"])
        xincr, xzero = float(pre["XINCR"]), float(pre["XZERO"])
        return pre, levels, [((lv - yoff) * ymult + yzero, xzero + k * xincr)
                             for k, lv in enumerate(levels)]

    def assertSine(self, source, points, ymult):
        amp, freq, _ = SIGNALS[source]
        for v, t in points:
            self.assertLessEqual(abs(v - amp * math.sin(2 * math.pi * freq * t)), ymult * 0.51,
                                 "%s at t=%g" % (source, t))

    def test_preamble(self):
        self.inst.checked_write("*RST")
        pre = self.preamble()
        self.assertEqual([pre[k] for k in ("BYT_NR", "BIT_NR", "ENCDG", "BN_FMT", "BYT_OR",
                                           "NR_PT", "PT_FMT", "XUNIT", "YUNIT")],
                         ["1", "8", "BIN", "RI", "MSB", "2500", "Y", '"s"', '"V"'])
        self.assertTrue(pre["WFID"].startswith('"Ch1, '), pre["WFID"])
        self.assertEqual(float(pre["XINCR"]), 1e-4 * 10 / RECORD)
        self.assertEqual(float(pre["XZERO"]), -5e-4)
        self.assertEqual(float(pre["YMULT"]), 1.0 / 25)
        self.assertEqual(self.inst.query_float("WFMO:XINCR?"), float(pre["XINCR"]))
        self.assertEqual(self.inst.query_float("WFMO:YMU?"), float(pre["YMULT"]))
        self.assertEqual(self.inst.query("WFMOUTPRE:NR_PT?;BYT_NR?;BN_FMT?;YOFF?"),
                         "2500;1;RI;0.000000E+00")
        self.inst.checked_write("HOR:SCA 1e-3;:DAT:WID 2;ENC RPB")
        self.assertEqual(self.inst.query_float("WFMO:XIN?"), 4e-6)
        self.assertEqual(self.inst.query_float("WFMO:YMU?"), 1.0 / 6400)
        self.assertEqual(self.inst.query_float("WFMO:YOF?"), 32768)
        self.assertNoError()

    def test_every_encoding_and_width(self):
        for enc in ("RIBinary", "RPB", "SRIbinary", "SRP", "ASCIi"):
            for width in (1, 2):
                self.inst.checked_write("DAT:ENC %s;WID %d" % (enc, width))
                pre, levels, points = self.waveform()
                self.assertEqual(int(pre["NR_PT"]), RECORD)
                self.assertSine("CH1", points, float(pre["YMULT"]))
                full = 128 if width == 1 else 32768
                if pre["BN_FMT"] == "RP" and pre["ENCDG"] == "BIN":
                    self.assertTrue(all(0 <= lv < 2 * full for lv in levels))
                else:
                    self.assertTrue(all(-full <= lv < full for lv in levels))
                    self.assertLess(min(levels), 0, "signed levels go negative")
                # 2 V at 1 V/div is 50 levels of 8 bits, 12800 of 16.
                span = 50 if width == 1 else 12800
                self.assertEqual(max(levels) - min(levels), 2 * span, (enc, width))
        self.assertNoError()

    def test_block_header_is_exact(self):
        self.inst.checked_write("DAT:ENC RIB;WID 2;STAR 1;STOP 5")
        self.inst.write("CURV?")
        raw = self.inst.read_exactly(4 + 10 + 1)
        self.assertEqual(raw[:4], b"#210", "one digit of length, 10 bytes")
        self.assertEqual(raw[-1:], b"\n")
        self.inst.checked_write("DAT:STOP 50")
        self.inst.write("CURV?")
        raw = self.inst.read_exactly(5 + 100 + 1)
        self.assertEqual(raw[:5], b"#3100", "three digits of length, 100 bytes")
        self.assertEqual(raw[-1:], b"\n")
        levels = struct.unpack(">50h", raw[5:105])
        self.assertEqual(levels[0], 0, "sin(-pi)")
        self.assertLess(levels[1], 0, "big-endian, signed: the sine goes down from -T/2")
        self.assertTrue(self.inst.silent(), "nothing after the terminator")

    def test_part_of_the_record_and_another_source(self):
        self.inst.checked_write("DAT:SOU CH2;:DAT:ENC SRI;WID 2;STAR 1001;STOP 1500")
        pre, levels, points = self.waveform()
        self.assertEqual(int(pre["NR_PT"]), 500)
        self.assertTrue(pre["WFID"].startswith('"Ch2, '))
        self.assertAlmostEqual(float(pre["XZERO"]), -5e-4 + 1000 * 4e-7, delta=1e-12)
        self.assertEqual(float(pre["YMULT"]), 0.2 / 6400)
        self.assertSine("CH2", points, float(pre["YMULT"]))
        self.inst.checked_write("DAT:SOU CH3")
        _, levels, _ = self.waveform()
        self.assertEqual(set(levels), {0}, "no signal on CH3")

    def test_other_names_and_reconnect(self):
        self.inst.checked_write("DAT:ENC RPB;WID 1")
        a = self.inst.query_block("CURVE?")
        self.inst.connect()  # a new connection finds the same settings
        self.assertEqual(self.inst.query_block("WAV:DATA?"), a)
        self.assertEqual(self.inst.query("WAV:PRE?"), self.inst.query("WFMO?"))
        self.inst.checked_write("DAT:ENC ASCI")
        self.assertEqual([int(x) for x in self.inst.query("WAVEFORM:DATA?").split(",")],
                         [b - 128 for b in a], "the same levels, signed")

    def test_refused_settings(self):
        self.assertRefused("DAT:WID 3", -222)
        self.assertRefused("DAT:ENC FOO", -224)
        self.assertRefused("DAT:SOU CH5", -224)
        self.assertRefused("DAT:STAR 0", -222)
        self.assertRefused("HEAD ON", -221)
        self.inst.checked_write("HEAD OFF")
        self.assertEqual(self.inst.query("DAT:SOU?;ENC?;WID?;:HEAD?"), "CH1;RIB;1;0")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    SIM, EXAMPLES = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
