"""A simulator started by DevwireSim never outlives the process that started
it: killed by SIGTERM or SIGKILL (as a CI job's timeout kills pytest), the
parent leaves no simulator behind, even one started from a thread that has
ended since (where PR_SET_PDEATHSIG would have killed it too early)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import devwire_sim

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(devwire_sim.__file__)))

# The parent: starts a simulator through the wrapper (on the main thread or
# on a thread that then ends), prints its pid and control port, then waits
# to be killed.
PARENT = r"""
import sys, threading, time
from devwire_sim import DevwireSim
sims = []
def start():
    sims.append(DevwireSim(sys.argv[1]).start())
if sys.argv[2] == "thread":
    t = threading.Thread(target=start)
    t.start()
    t.join()
else:
    start()
print(sims[0].pid, sims[0].control_port, flush=True)
while True:
    time.sleep(60)
"""


def _running(pid):
    """Whether pid runs (a zombie left for an init that does not reap counts
    as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.02)
    return not _running(pid)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("where", ["main", "thread"])
def test_the_simulator_dies_with_its_parent(tmp_path, sig, where):
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"rules": [{"when": "PING", "reply": "PONG"}]}))
    env = dict(os.environ, PYTHONPATH=PACKAGE_DIR)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(script), where], env=env,
                              stdout=subprocess.PIPE, text=True)
    sim_pid = None
    try:
        line = parent.stdout.readline().split()
        assert len(line) == 2, "the parent did not start a simulator"
        sim_pid, control_port = int(line[0]), int(line[1])
        # A thread that ended took nothing with it: the simulator serves on.
        time.sleep(0.3)
        assert _running(sim_pid), "the simulator ended while its parent lives"
        parent.send_signal(sig)
        parent.wait(30)
        assert _gone_within(sim_pid, 10), f"devwire-sim {sim_pid} outlived its parent ({sig.name})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if sim_pid and _running(sim_pid):
            os.kill(sim_pid, signal.SIGKILL)


def test_stop_ends_it_with_its_summary_and_no_stop_message(devwire_sim):
    sim = devwire_sim({"rules": [{"when": "PING", "reply": "PONG"}]})
    pid = sim.pid
    assert "summary:" in sim.stop()
    assert sim.returncode == 0
    assert "stdin ended" not in sim.stderr  # SIGTERM stopped it, before stdin closed
    assert not _running(pid)
