#!/usr/bin/env python3
"""A VXI-11 device driven by clients nobody here wrote: PyVISA with its
pure-Python backend (Debian's python3-pyvisa-py), which finds the core
channel through the portmapper on port 111 exactly as it finds a real LXI
instrument, and lxi-tools' `lxi scpi` (libtirpc's clnt_create), when
installed. A service request reaches an interrupt server of the test's own
through pyvisa-py's VXI-11 client calls.

Port 111 belongs to the machine, so the test runs in a network namespace of
its own (`unshare --net`, then `ip link set lo up`), where the simulator may
bind it and tests can run in parallel. Without namespaces (not root, no
unshare), or without PyVISA, it says why and exits 77 (ctest: skipped).

Usage: test_sim_vxi11_clients.py DEVWIRE_SIM EXAMPLES_DIR"""

import ctypes
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

SIM = EXAMPLES = None
TIMEOUT = 30.0
SKIP = 77
RESOURCE = "TCPIP::127.0.0.1::inst0::INSTR"


def _die_with_parent():
    os.setpgrp()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Simulator:
    """devwire-sim serving the VXI-11 example, its portmapper on port 111."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [SIM, "--script", os.path.join(EXAMPLES, "sg-vxi11.json"),
             "--listen", "127.0.0.1:0", "--log-level", "info"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
            preexec_fn=_die_with_parent)
        try:
            self.lines = [self._line(), self._line()]
        except BaseException:
            self.stop()
            raise

    def _line(self):
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
        return line.decode()

    def stop(self):
        """SIGTERM, and the summary it prints."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
        return out.decode(errors="replace"), err.decode(errors="replace")


class PyVisaSession(unittest.TestCase):
    def setUp(self):
        import pyvisa
        self.pyvisa = pyvisa
        self.sim = Simulator()
        self.rm = pyvisa.ResourceManager("@py")
        self.opened = []

    def tearDown(self):
        for inst in self.opened:
            try:
                inst.close()
            except Exception:
                pass
        self.rm.close()
        self.sim.stop()

    def open(self):
        inst = self.rm.open_resource(RESOURCE)
        inst.timeout = 5000
        self.opened.append(inst)
        return inst

    def test_readiness_lines(self):
        self.assertRegex(self.sim.lines[0], r"^listening on 127\.0\.0\.1:\d+\n$")
        self.assertEqual(self.sim.lines[1],
                         "vxi11 on TCPIP::127.0.0.1::inst0::INSTR (portmapper 127.0.0.1:111)\n")

    def test_a_driver_session(self):
        inst = self.open()
        self.assertEqual(inst.query("*IDN?"), "ACME,SG-1000,0001,1.0.3\n")
        inst.write("FREQ 2.5 MHz;POW -3.5")
        self.assertEqual(inst.query("FREQ?;POW?"), "2.5E+06;-3.50\n")
        # Larger than maxRecvSize (1024) both ways: several device_writes
        # (END on the last), several device_reads (REQCNT, then END).
        label = "L" * 5000
        inst.write("DISP:TEXT '%s'" % label)
        self.assertEqual(inst.query("DISP:TEXT?"), '"%s"\n' % label)
        self.assertEqual(inst.read_stb(), 0)
        inst.write("BOGUS:HEADER")
        self.assertEqual(inst.read_stb() & 0x04, 0x04, "EAV after an undefined header")
        self.assertEqual(inst.query("SYST:ERR?"), '-113,"Undefined header"\n')
        inst.write("*IDN?")
        self.assertEqual(inst.read_stb(), 0x10, "MAV: a response waits")
        inst.clear()
        self.assertEqual(inst.read_stb(), 0, "device clear emptied the output queue")
        inst.assert_trigger()
        self.assertEqual(inst.query("TRIG:COUNT?"), "1\n")
        inst.timeout = 300
        with self.assertRaises(self.pyvisa.errors.VisaIOError) as e:
            inst.read()
        self.assertEqual(e.exception.error_code, self.pyvisa.constants.StatusCode.error_timeout)

    def test_an_exclusive_lock_between_two_sessions(self):
        first, second = self.open(), self.open()
        first.lock_excl()
        with self.assertRaises(self.pyvisa.errors.VisaIOError) as e:
            second.lock_excl(timeout=300)
        self.assertEqual(e.exception.error_code,
                         self.pyvisa.constants.StatusCode.error_resource_locked)
        self.assertEqual(first.query("*IDN?"), "ACME,SG-1000,0001,1.0.3\n")
        first.unlock()
        second.lock_excl()
        self.assertEqual(second.query("*OPC?"), "1\n")
        second.unlock()

    def test_a_service_request_on_the_interrupt_channel(self):
        """pyvisa-py 0.5 has no VISA events (enable_event raises
        NotImplementedError), but its VXI-11 client has the calls: the
        session's own link enables SRQ, and a socket of ours is the
        interrupt server that device_intr_srq reaches."""
        inst = self.open()
        constants = self.pyvisa.constants
        with self.assertRaises(NotImplementedError):  # docs/sim.md says so
            inst.enable_event(constants.EventType.service_request, constants.EventMechanism.queue)
        sess = self.rm.visalib.sessions[inst.session]
        core = sess.interface
        server = socket.socket()
        self.addCleanup(server.close)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def pack_intr_chan(args):  # pyvisa-py's create_intr_chan packs docmd's
            for v in args:
                core.packer.pack_uint(v)
        self.assertEqual(core.make_call(25, (0x7F000001, port, 0x0607B1, 1, 0), pack_intr_chan,
                                        core.unpacker.unpack_int), 0, "create_intr_chan")
        channel, _ = server.accept()
        self.addCleanup(channel.close)
        self.assertEqual(core.device_enable_srq(sess.link, 1, b"pyvisa-srq"), 0)
        inst.write("*SRE 16")
        inst.write("*IDN?")
        channel.settimeout(TIMEOUT)
        mark = struct.unpack(">I", channel.recv(4, socket.MSG_WAITALL))[0]
        self.assertTrue(mark & 0x80000000, "the last fragment")
        rec = channel.recv(mark & 0x7FFFFFFF, socket.MSG_WAITALL)
        _, mtype, rpcvers, prog, vers, proc = struct.unpack(">6I", rec[:24])
        self.assertEqual((mtype, rpcvers, prog, vers, proc), (0, 2, 0x0607B1, 1, 30),
                         "a call of device_intr_srq")
        length = struct.unpack(">I", rec[40:44])[0]
        self.assertEqual(rec[44:44 + length], b"pyvisa-srq", "the handle")
        self.assertEqual(inst.read_stb(), 0x50, "MAV and RQS")
        self.assertEqual(inst.read(), "ACME,SG-1000,0001,1.0.3\n")
        self.assertEqual(inst.read_stb(), 0)

    def test_an_unknown_device_name(self):
        with self.assertRaises(Exception):
            self.rm.open_resource("TCPIP::127.0.0.1::inst9::INSTR")

    def test_the_summary_counts_the_requests(self):
        inst = self.open()
        inst.query("*IDN?")
        inst.close()
        self.opened.remove(inst)
        out, _ = self.sim.stop()
        self.assertIn("  requests: 1\n", out)
        self.assertIn("  unmatched requests: 0\n", out)


class LxiTools(unittest.TestCase):
    @unittest.skipUnless(shutil.which("lxi"), "lxi-tools is not installed")
    def test_lxi_scpi(self):
        sim = Simulator()
        try:
            r = subprocess.run(["lxi", "scpi", "--address", "127.0.0.1", "*IDN?"],
                               capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), "ACME,SG-1000,0001,1.0.3")
        finally:
            sim.stop()


def in_namespace():
    """Re-run this file inside a network namespace of its own: its exit
    status, or None when namespaces cannot be had here."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not unshare or not ip:
        return None
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    cmd = "%s link set lo up && exec %s %s %s %s" % (
        ip, sys.executable, os.path.abspath(__file__), SIM, EXAMPLES)
    return subprocess.run([unshare, "--net", "sh", "-c", cmd],
                          env=dict(os.environ, DW_VXI11_NETNS="1")).returncode


def main():
    global SIM, EXAMPLES
    SIM, EXAMPLES = sys.argv[1], sys.argv[2]
    if os.environ.get("DW_VXI11_NETNS") != "1":
        status = in_namespace()
        if status is None:
            print("skipped: no network namespace (needs root and unshare) for a private "
                  "port 111")
            return SKIP
        return status
    try:
        import pyvisa  # noqa: F401
        import pyvisa_py  # noqa: F401
    except ImportError:
        print("skipped: PyVISA with pyvisa-py is not installed (Debian: python3-pyvisa-py)")
        return SKIP
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
