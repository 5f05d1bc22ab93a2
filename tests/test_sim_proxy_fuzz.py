#!/usr/bin/env python3
"""The fault proxy's "fuzz" finds the bugs of a naive driver
(sim/examples/fuzz/naive_dmm.py) and repeats them exactly with the seed:
the example device (dmm.json) behind devwire-sim --proxy with
fuzz-replies.json, the driver run through it. Standard library only.

Usage: test_sim_proxy_fuzz.py DEVWIRE_SIM EXAMPLES_DIR
Every process started listens on 127.0.0.1 port 0, runs in its own
process group, dies with this process (PR_SET_PDEATHSIG) and is stopped
whatever happens."""

import ctypes
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SIM = EXAMPLES = None
TIMEOUT = 30.0


def _die_with_parent():
    os.setpgrp()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Sim:
    """devwire-sim with `args`, listening on 127.0.0.1:0."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [SIM, *args, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, bufsize=0, preexec_fn=_die_with_parent)
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
            raise RuntimeError("unexpected first line: %r" % line)
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


def mutations(transcript):
    """The fuzz's notes in a transcript: "reply.fuzz frame N: ..." in order."""
    with open(transcript) as f:
        events = [json.loads(line) for line in f if line.strip()]
    return [e["match"] for e in events
            if e.get("dir") == "fault" and e.get("match", "").startswith("reply.fuzz")]


class FuzzFindsDriverBugs(unittest.TestCase):
    def setUp(self):
        sys.path.insert(0, os.path.join(EXAMPLES, "fuzz"))
        import naive_dmm
        self.driver = naive_dmm
        self.tmp = tempfile.TemporaryDirectory()
        self.device = Sim("--script", os.path.join(EXAMPLES, "fuzz", "dmm.json"))
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stop()
        self.device.stop()
        self.tmp.cleanup()

    def faults(self, **fuzz):
        """A faults script: fuzz-replies.json with `fuzz`'s keys changed."""
        with open(os.path.join(EXAMPLES, "fuzz", "fuzz-replies.json")) as f:
            script = json.load(f)
        script["network"]["reply"]["fuzz"].update(fuzz)
        path = os.path.join(self.tmp.name, "faults-%d.json" % len(self.procs))
        with open(path, "w") as f:
            json.dump(script, f)
        return path

    def run_driver(self, faults, seed, queries=60):
        """The driver's measurements through the proxy: the first bug
        (query number, what happened) or None, and the fuzz's notes."""
        transcript = os.path.join(self.tmp.name, "t-%d.jsonl" % len(self.procs))
        px = Sim("--proxy", "--upstream", "127.0.0.1:%d" % self.device.port,
                 "--script", faults, "--seed", str(seed), "--transcript", transcript)
        self.procs.append(px)
        dmm = self.driver.NaiveDmm("127.0.0.1", px.port)
        bug = None
        try:
            for i in range(1, queries + 1):
                try:
                    v = dmm.voltage()
                except Exception as e:  # the driver let it through
                    bug = (i, "%s: %s" % (type(e).__name__, e))
                    break
                if not math.isfinite(v):
                    bug = (i, "voltage() returned %r" % v)
                    break
        finally:
            dmm.close()
        self.assertEqual(px.stop(), 0)
        return bug, mutations(transcript)

    def test_finds_the_float_bug_and_repeats_it(self):
        bug, notes = self.run_driver(self.faults(), 7)
        self.assertIsNotNone(bug, "no bug found in 60 replies: %r" % notes)
        frame, what = bug
        # The reply that broke the driver is the last one the fuzz changed.
        self.assertTrue(notes, "no mutation noted")
        self.assertRegex(notes[-1], r"^reply\.fuzz frame %d: number " % frame)
        print("found at reply %d: %s (%s)" % (frame, what, notes[-1]), file=sys.stderr)
        # The same seed: the same mutations, the same bug.
        bug2, notes2 = self.run_driver(self.faults(), 7)
        self.assertEqual(bug2, bug)
        self.assertEqual(notes2, notes)
        # That frame alone, with the seed: the same mutation, the same bug.
        bug3, notes3 = self.run_driver(self.faults(frames=[frame]), 7)
        self.assertEqual(notes3, [notes[-1]])
        self.assertEqual(bug3, bug)

    def test_another_seed_other_mutations(self):
        _, a = self.run_driver(self.faults(), 7, queries=20)
        _, b = self.run_driver(self.faults(), 8, queries=20)
        self.assertNotEqual(a, b)

    def test_finds_the_block_length_bug(self):
        faults = self.faults(mutations=["block_length"], frame_probability=1)
        transcript = os.path.join(self.tmp.name, "block.jsonl")
        px = Sim("--proxy", "--upstream", "127.0.0.1:%d" % self.device.port,
                 "--script", faults, "--seed", "3", "--transcript", transcript)
        self.procs.append(px)
        dmm = self.driver.NaiveDmm("127.0.0.1", px.port, timeout=1.0)
        try:
            data = dmm.curve()
            # Trusting the header, the driver returns other bytes than the
            # device sent, or is out of step with the next reply.
            broken = data != b"ABCDEFGHIJ"
            if not broken:
                try:
                    broken = dmm.query("*IDN?") != "ACME,DMM-1,0001,1.0"
                except Exception:
                    broken = True
        except Exception:
            broken = True
        finally:
            dmm.close()
        self.assertEqual(px.stop(), 0)
        notes = mutations(transcript)
        self.assertRegex(notes[0], r"^reply\.fuzz frame 1: block_length 10 -> \d+ at 2$")
        self.assertTrue(broken, "the driver did not notice: %r" % notes)


if __name__ == "__main__":
    SIM, EXAMPLES = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
