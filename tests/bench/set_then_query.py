#!/usr/bin/env python3
"""A driver with Nagle on (a default socket, as PyVISA's) writes a set
command that gets no reply, then a query: the time from the query's write
to its reply, over ROUNDS rounds on one connection.

    tests/bench/set_then_query.py build/normal/sim/devwire-sim [ROUNDS] [-- ARGS...]

ARGS go to devwire-sim (e.g. --delayed-ack). Prints the median and the
90th percentile in ms.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

SCRIPT = {"name": "setq", "framing": {"type": "sentinel", "sentinel": "\n"},
          "state": {"v": "0"},
          "rules": [{"when": {"regex": "^SET (.*)$"}, "set": {"v": "$1"}},
                    {"when": "GET?", "reply": "${v}"}]}


def main():
    sim = sys.argv[1]
    rounds = 50
    extra = []
    rest = sys.argv[2:]
    if "--" in rest:
        extra = rest[rest.index("--") + 1:]
        rest = rest[:rest.index("--")]
    if rest:
        rounds = int(rest[0])
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(SCRIPT, f)
    p = subprocess.Popen([sim, "--script", path, "--listen", "127.0.0.1:0"] + extra,
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        s = socket.create_connection(("127.0.0.1", port))  # Nagle stays on
        times = []
        for i in range(rounds):
            s.sendall(b"SET %d\n" % i)
            t0 = time.monotonic()
            s.sendall(b"GET?\n")
            got = b""
            while not got.endswith(b"\n"):
                got += s.recv(100)
            times.append((time.monotonic() - t0) * 1000)
            assert got == b"%d\n" % i, got
            time.sleep(0.01)
        s.close()
        times.sort()
        print("%s: median %.2f ms, p90 %.2f ms, max %.2f ms over %d rounds"
              % (" ".join(extra) or "default", times[len(times) // 2],
                 times[int(len(times) * 0.9)], times[-1], rounds))
    finally:
        p.terminate()
        p.wait()
        os.unlink(path)


if __name__ == "__main__":
    main()
