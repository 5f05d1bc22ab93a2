"""devwire-sim --exit-with-stdin: the end of stdin (its parent gone) stops
the simulator as SIGTERM does; stdin must be a pipe, a socket or a terminal."""

import json
import os
import subprocess

import pytest

SCRIPT = {"rules": [{"when": "PING", "reply": "PONG"}]}


@pytest.fixture
def sim_cmd(tmp_path):
    exe = os.environ.get("DEVWIRE_SIM", "devwire-sim")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCRIPT))
    return [exe, "--script", str(path), "--listen", "127.0.0.1:0", "--exit-with-stdin"]


def _start(cmd, **kw):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    return proc


def test_the_end_of_stdin_stops_it_with_its_summary(sim_cmd):
    proc = _start(sim_cmd, stdin=subprocess.PIPE)
    try:
        assert proc.stdout.readline().startswith("listening on 127.0.0.1:")
        proc.stdin.write("anything is read and dropped\n")
        proc.stdin.flush()
        proc.stdin.close()
        proc.wait(30)
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "summary:" in out
    assert "stdin ended (--exit-with-stdin): stopping" in err


def test_sigterm_still_stops_it_while_stdin_is_open(sim_cmd):
    proc = _start(sim_cmd, stdin=subprocess.PIPE)
    try:
        assert proc.stdout.readline().startswith("listening on ")
        proc.terminate()
        proc.wait(30)
        out = proc.stdout.read()
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "summary:" in out


def test_a_proxy_stops_at_the_end_of_stdin_too(sim_cmd, tmp_path):
    faults = tmp_path / "faults.json"
    faults.write_text("{}")
    exe = sim_cmd[0]
    cmd = [exe, "--proxy", "--upstream", "127.0.0.1:9", "--script", str(faults),
           "--listen", "127.0.0.1:0", "--seed", "1", "--exit-with-stdin"]
    proc = _start(cmd, stdin=subprocess.PIPE)
    try:
        assert proc.stdout.readline().startswith("listening on ")
        proc.stdin.close()
        proc.wait(30)
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "summary: proxy to 127.0.0.1:9" in out


def test_stdin_that_never_ends_with_a_parent_is_refused(sim_cmd, tmp_path):
    # /dev/null (or a file) would end at once: a usage error, not a run.
    proc = subprocess.run(sim_cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert "stdin is not a pipe, a socket or a terminal" in proc.stderr
    with open(tmp_path / "s.json") as f:
        proc = subprocess.run(sim_cmd, stdin=f, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2


def test_it_goes_with_serving_only(sim_cmd):
    exe = sim_cmd[0]
    proc = subprocess.run([exe, "--validate", sim_cmd[2], "--exit-with-stdin"],
                          stdin=subprocess.PIPE, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "--exit-with-stdin goes with serving" in proc.stderr
