#!/usr/bin/env python3
"""A VXI-11 device that finds port 111 held by a running rpcbind (Debian's
rpcbind) and registers its core channel there instead of answering itself:
`rpcinfo -p` lists program 395183 (0x0607AF) version 1 over TCP at the core
channel's port, PyVISA (pyvisa-py) and lxi-tools, when installed, reach the
device through rpcbind, and once the simulator stops (SIGTERM) the
registration is gone. A registration left by a simulator killed with SIGKILL
makes the next one fail with a message that names it and `rpcinfo -d`.

rpcbind must own port 111 and its socket and lock in /run without meeting
the machine's: the test re-runs itself in network and mount namespaces of
its own (`unshare --net --mount`, `ip link set lo up`, a tmpfs on /run).
Each test starts an rpcbind of its own (`rpcbind -f -w`) and stops it,
with every simulator it starts. Without namespaces (not root, no unshare),
without rpcbind and rpcinfo, or without PyVISA, it says why and exits 77
(ctest: skipped).

Usage: test_sim_vxi11_rpcbind.py DEVWIRE_SIM EXAMPLES_DIR"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
import test_sim_vxi11_clients as clients  # noqa: E402  (its Simulator)

TIMEOUT = 30.0
SKIP = 77
CORE_PROG, CORE_VERS = 395183, 1
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
RPCBIND = shutil.which("rpcbind", path=SBIN)
RPCINFO = shutil.which("rpcinfo", path=SBIN)
STATE = "/run/rpcbind"  # rpcbind's warm-start files, on the tmpfs


def rpcinfo(*args):
    return subprocess.run([RPCINFO] + list(args), capture_output=True, text=True,
                          timeout=TIMEOUT)


def registrations():
    """(program, version, protocol, port) of each line of `rpcinfo -p`."""
    r = rpcinfo("-p", "127.0.0.1")
    if r.returncode != 0:
        raise AssertionError("rpcinfo -p 127.0.0.1: " + r.stderr)
    rows = set()
    for line in r.stdout.splitlines()[1:]:
        f = line.split()
        rows.add((int(f[0]), int(f[1]), f[2], int(f[3])))
    return rows


def ours(rows):
    return {r for r in rows if r[0] == CORE_PROG}


class Rpcbind:
    """`rpcbind -f -w` on this namespace's port 111, until stop()."""

    def __init__(self):
        # -w reads the registrations the last rpcbind saved at exit (in this
        # namespace's /run): each test starts from none.
        for name in ("rpcbind.xdr", "portmap.xdr"):
            try:
                os.unlink(os.path.join(STATE, name))
            except FileNotFoundError:
                pass
        self.proc = subprocess.Popen([RPCBIND, "-f", "-w"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE,
                                     preexec_fn=clients._die_with_parent)
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("rpcbind ended: " + self.proc.stderr.read().decode())
            if rpcinfo("-p", "127.0.0.1").returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("rpcbind did not answer on 127.0.0.1:111")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc.stderr.close()


class RpcbindRegistration(unittest.TestCase):
    def setUp(self):
        self.rpcbind = Rpcbind()
        self.addCleanup(self.rpcbind.stop)

    def simulator(self):
        sim = clients.Simulator()
        self.addCleanup(sim.stop)
        return sim

    def core_port(self, sim):
        m = re.match(r"^listening on 127\.0\.0\.1:(\d+)\n$", sim.lines[0])
        self.assertIsNotNone(m, sim.lines[0])
        return int(m.group(1))

    def test_registered_found_and_unregistered(self):
        self.assertEqual(ours(registrations()), set(), "nothing registered before")
        sim = self.simulator()
        self.assertEqual(sim.lines[1], "vxi11 on TCPIP::127.0.0.1::inst0::INSTR "
                                       "(portmapper 127.0.0.1:111, rpcbind)\n")
        port = self.core_port(sim)
        self.assertEqual(ours(registrations()), {(CORE_PROG, CORE_VERS, "tcp", port)})

        import pyvisa
        rm = pyvisa.ResourceManager("@py")
        try:
            inst = rm.open_resource(clients.RESOURCE)
            inst.timeout = 5000
            self.assertEqual(inst.query("*IDN?"), "ACME,SG-1000,0001,1.0.3\n")
            inst.close()
        finally:
            rm.close()
        requests = 1
        if shutil.which("lxi"):  # libtirpc's clnt_create: rpcbind's GETADDR
            r = subprocess.run(["lxi", "scpi", "--address", "127.0.0.1", "*IDN?"],
                               capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual((r.returncode, r.stdout.strip()),
                             (0, "ACME,SG-1000,0001,1.0.3"), r.stderr)
            requests += 1

        out, err = sim.stop()
        self.assertIn("portmapper 127.0.0.1:111 is taken by rpcbind: the VXI-11 core channel "
                      "(port %d) is registered with it" % port, err)
        self.assertIn("  requests: %d\n" % requests, out)
        self.assertEqual(sim.proc.returncode, 0, err)
        self.assertIsNone(self.rpcbind.proc.poll(), "rpcbind still runs")
        self.assertEqual(ours(registrations()), set(), "pmap_unset at exit")

    def test_a_registration_left_by_a_killed_simulator(self):
        killed = self.simulator()
        stale = self.core_port(killed)
        os.killpg(killed.proc.pid, signal.SIGKILL)
        killed.stop()
        self.assertEqual(ours(registrations()), {(CORE_PROG, CORE_VERS, "tcp", stale)},
                         "SIGKILL leaves the registration behind")

        with self.assertRaises(RuntimeError) as e:
            self.simulator()
        self.assertIn("portmapper 127.0.0.1:111 (rpcbind) already has the VXI-11 core "
                      "program 0x607AF version 1 registered, at TCP port %d" % stale,
                      str(e.exception))
        self.assertIn("`rpcinfo -d 395183 1` removes it", str(e.exception))

        r = rpcinfo("-d", str(CORE_PROG), str(CORE_VERS))
        self.assertEqual(r.returncode, 0, r.stderr)
        sim = self.simulator()
        self.assertEqual(ours(registrations()),
                         {(CORE_PROG, CORE_VERS, "tcp", self.core_port(sim))})
        sim.stop()
        self.assertEqual(ours(registrations()), set())


def in_namespace(argv):
    """Re-run this file in network and mount namespaces of its own, a tmpfs
    on /run: its exit status, or None when they cannot be had here."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip", path=SBIN)
    if not unshare or not ip:
        return None
    probe = subprocess.run([unshare, "--net", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    # unshare makes the new mounts private: the tmpfs hides the machine's
    # /run (an rpcbind's socket and lock there) from this namespace only.
    cmd = ("%s link set lo up && mount -t tmpfs -o mode=0755 devwire-run /run && "
           "exec %s %s %s %s") % (ip, sys.executable, os.path.abspath(__file__), argv[1], argv[2])
    return subprocess.run([unshare, "--net", "--mount", "sh", "-c", cmd],
                          env=dict(os.environ, DW_VXI11_RPCBIND_NS="1")).returncode


def main():
    clients.SIM, clients.EXAMPLES = sys.argv[1], sys.argv[2]
    if not RPCBIND or not RPCINFO:
        print("skipped: rpcbind and rpcinfo are not installed (Debian: rpcbind)")
        return SKIP
    if os.environ.get("DW_VXI11_RPCBIND_NS") != "1":
        status = in_namespace(sys.argv)
        if status is None:
            print("skipped: no network and mount namespaces (needs root and unshare) for a "
                  "private port 111 and /run")
            return SKIP
        return status
    try:
        import pyvisa  # noqa: F401
        import pyvisa_py  # noqa: F401
    except ImportError:
        print("skipped: PyVISA with pyvisa-py is not installed (Debian: python3-pyvisa-py)")
        return SKIP
    # rpcbind drops to its own user and keeps its warm-start files here.
    os.makedirs(STATE, exist_ok=True)
    for user in ("_rpc", "rpc"):
        try:
            os.chown(STATE, pwd.getpwnam(user).pw_uid, -1)
            break
        except KeyError:
            pass
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
