#!/usr/bin/env python3
"""How often POST /devices/NAME/verify misses a request sent just before it.

Starts devwire-sim with the control API, then TRIALS times: reset the
journal, send one command that gets no reply, and at once verify that it
came (count 1), with the given wait_ms values. Prints the misses.

    tests/bench/verify_race.py build/normal/sim/devwire-sim [TRIALS] [WAIT_MS ...]
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile

SCRIPT = {"name": "race", "framing": {"type": "sentinel", "sentinel": "\n"},
          "rules": [{"name": "set", "when": {"prefix": "SET "}}]}


def start(sim):
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(SCRIPT, f)
    p = subprocess.Popen([sim, "--script", path, "--listen", "127.0.0.1:0",
                          "--control", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    port = control = None
    while port is None or control is None:
        line = p.stdout.readline()
        if not line:
            raise SystemExit("devwire-sim ended before it was ready")
        if line.startswith("listening on "):
            port = int(line.rsplit(":", 1)[1])
        elif line.startswith("control on "):
            control = int(line.strip().rsplit(":", 1)[1])
    return p, path, port, control


def post(conn, target, body=""):
    conn.request("POST", target, body=body)
    r = conn.getresponse()
    return r.status, r.read()


def trials(port, control, n, wait_ms):
    api = http.client.HTTPConnection("127.0.0.1", control)
    misses = 0
    body = json.dumps([{"request": "SET 1", "count": 1}])
    for _ in range(n):
        post(api, "/devices/default/reset")
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"SET 1\n")
            q = "?wait_ms=%d" % wait_ms if wait_ms else ""
            status, text = post(api, "/devices/default/verify" + q, body)
            if status != 200:
                misses += 1
    api.close()
    return misses


def main():
    sim = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    waits = [int(w) for w in sys.argv[3:]] or [0, 500]
    p, path, port, control = start(sim)
    try:
        for w in waits:
            m = trials(port, control, n, w)
            print("wait_ms=%d: %d of %d verifications missed the request (%.1f%%)"
                  % (w, m, n, 100.0 * m / n))
    finally:
        p.terminate()
        p.wait()
        os.unlink(path)


if __name__ == "__main__":
    main()
