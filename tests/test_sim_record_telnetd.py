#!/usr/bin/env python3
"""devwire-sim --record in front of a real Telnet server, GNU telnetd
(Debian's inetutils-telnetd), serving a small console written here
(`dev> ` prompt, `count` answers `count=N`, `exit` says `bye` and ends).
The recorder gets a Telnet base script without a prompt; a Telnet client
(a raw socket that negotiates as `telnet` does: it accepts telnetd's WILL
ECHO and WILL SGA and refuses the rest, or refuses everything) runs a
session through it; SIGTERM ends the recorder. Each test checks that the
recorder's replay check passed, that the prompt it inferred is in the
script, and that devwire-sim serving the script answers the same session
the same way, up to the close after `exit`:

- a line at a time (CR LF), the echo accepted: telnetd's pseudo-terminal
  echoes each line, which is recorded as the start of its answer;
- a line at a time, every option refused: telnetd turns the echo off;
- a character at a time with CR NUL line ends, as `telnet` in character
  mode sends a user's typing, the base's request sentinel CR (CR NUL is
  read as CR, RFC 854): the echo of each character comes while the line
  is typed;
- the same typing with a CR LF request sentinel: the recorder says that
  the client ended its lines with CR and which framing to give;
- the telnet program (inetutils-telnet) on a pseudo-terminal, typed at:
  it negotiates LINEMODE away and BINARY in, and ends its lines with a
  bare CR; telnetd sends two NUL bytes before the first prompt. With a CR
  request sentinel it records and replays, to a client sending what
  telnet sent and to the telnet program itself, which the replay's
  options (telnetd's, recorded: WILL ECHO, DO BINARY, ...) keep from
  echoing locally and from sending CR NUL; with CR LF the recorder names
  the line end and exits 1.

telnetd runs without inetd: an acceptor here (127.0.0.1, port 0) starts
`telnetd -h -E CONSOLE` per connection with the accepted socket as its
stdin, stdout and stderr. telnetd writes a logout record to wtmp (and utmp)
when a session ends: as root the test re-runs itself in a mount namespace
of its own (`unshare --mount`) with tmpfs on /var/log and /run, so that the
machine's files are not touched. Every process started dies with this one
(PR_SET_PDEATHSIG) and is stopped whatever happens. Without telnetd it says
why and exits 77 (ctest: skipped), and without telnet the two tests of the
program are skipped; CI installs both (scripts/install-deps.sh).

Usage: test_sim_record_telnetd.py DEVWIRE_SIM (ctest), or pytest with
DEVWIRE_SIM in the environment (no namespace then)."""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import pty
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
import test_sim_proxy_fuzz as fuzz  # noqa: E402  (its Sim, _die_with_parent)

SIM = os.environ.get("DEVWIRE_SIM")  # or the first argument
TIMEOUT = 30.0
SKIP = 77
TELNETD = "/usr/sbin/telnetd"
TELNET = shutil.which("telnet")
IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SGA = 1, 3

# The console waits a moment before it exits: telnetd ends the session
# when its child ends (SIGCHLD) without reading what is left in the pty,
# and "bye" (with the echo of the line end) would sometimes be lost.
CONSOLE = """#!/bin/sh
n=0
printf 'dev> '
while IFS= read -r line; do
  case "$line" in
    count) n=$((n + 1)); echo "count=$n" ;;
    status) echo "count=$n"; echo "ok" ;;
    exit) echo bye; sleep 0.3; exit 0 ;;
    *) echo "unknown: $line" ;;
  esac
  printf 'dev> '
done
"""

BASE_CRLF = {"transport": "telnet", "framing": {"type": "sentinel", "sentinel": "\r\n"}}
BASE_CR = {"transport": "telnet",
           "framing": {"request": {"type": "sentinel", "sentinel": "\r"},
                       "response": {"type": "sentinel", "sentinel": "\r\n"}}}
EOL_NOTE = ("devwire-sim: --record: the client ended its lines with CR (connection 1), as a "
            "Telnet client does in binary mode (a bare CR) or in character mode (CR NUL, read as "
            "CR), and the base script's request sentinel \"\\r\\n\" does not end them; give "
            "the base script the request framing {\"type\": \"sentinel\", \"sentinel\": "
            "\"\\r\"}\n")
SESSION = ["count", "status", "count", "bogus", "count", "exit"]


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Telnetd:
    """An acceptor on 127.0.0.1:0 that starts telnetd for each connection,
    inetd "nowait" style, until stop()."""

    def __init__(self, console):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.console = console
        self.procs = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                fd = conn.fileno()
                self.procs.append(subprocess.Popen(
                    [TELNETD, "-h", "-E", self.console], stdin=fd, stdout=fd, stderr=fd,
                    preexec_fn=fuzz._die_with_parent))

    def stop(self):
        self.done.set()
        self.thread.join(TIMEOUT)
        self.sock.close()
        for p in self.procs:
            _stop(p)


class Sim(fuzz.Sim):
    """devwire-sim with `args`, listening on 127.0.0.1:0 (test_sim_proxy_fuzz's);
    stop() keeps what it wrote in .out and .err."""

    out = err = ""

    def stop(self):
        if not self.proc.stdout.closed:
            _stop(self.proc)
            self.out = self.proc.stdout.read().decode(errors="replace")
            self.err = self.proc.stderr.read().decode(errors="replace")
        return super().stop()


class Reader:
    """What a peer sent, as it comes (_pump), taken up to a needle."""

    data = b""  # data not yet taken
    eof = False

    def until(self, needle):
        """The data up to and including `needle` (b"" for the end)."""
        deadline = time.monotonic() + TIMEOUT
        while (needle not in self.data) if needle else not self.eof:
            left = deadline - time.monotonic()
            if left <= 0 or (self.eof and needle):
                raise AssertionError("waiting for %r, got %r" % (needle, self.data))
            self._pump(left)
        end = self.data.index(needle) + len(needle) if needle else len(self.data)
        got, self.data = self.data[:end], self.data[end:]
        return got

    def type(self, text, eol, pause=0.03):
        """Send text a byte at a time, as a user types in character mode, and
        then the line end (one key: telnet sends its CR NUL at once)."""
        for ch in text:
            self._send(bytes([ch]))
            self._pump(pause)
        self._send(eol)


class Client(Reader):
    """A Telnet client on a raw socket: it answers every option (WILL ECHO
    and WILL SGA accepted when `accept_echo`, as telnet does; everything
    else refused) and keeps the data."""

    def __init__(self, port, accept_echo):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.accept = {ECHO, SGA} if accept_echo else set()
        self.raw = b""  # received bytes not yet parsed (a command cut short)

    def close(self):
        self.sock.close()

    def _answer(self, cmd, opt):
        if cmd == WILL:
            self.sock.sendall(bytes([IAC, DO if opt in self.accept else DONT, opt]))
        elif cmd == DO:
            self.sock.sendall(bytes([IAC, WONT, opt]))

    def _parse(self):
        b, i, out = self.raw, 0, bytearray()
        while i < len(b):
            if b[i] != IAC:
                out.append(b[i])
                i += 1
                continue
            if i + 1 >= len(b):
                break
            cmd = b[i + 1]
            if cmd == IAC:
                out.append(IAC)
                i += 2
            elif cmd in (WILL, WONT, DO, DONT):
                if i + 2 >= len(b):
                    break
                self._answer(cmd, b[i + 2])
                i += 3
            elif cmd == SB:
                end = b.find(bytes([IAC, SE]), i)
                if end < 0:
                    break
                i = end + 2
            else:
                i += 2
        self.raw = b[i:]
        self.data += bytes(out)

    def _pump(self, timeout):
        if self.eof or not select.select([self.sock], [], [], timeout)[0]:
            return
        chunk = self.sock.recv(4096)
        if not chunk:
            self.eof = True
        self.raw += chunk
        self._parse()

    def _send(self, b):
        self.sock.sendall(b)


class Terminal(Reader):
    """The telnet program on a pseudo-terminal of its own, as a user runs
    it: what it prints, and keys typed at it."""

    def __init__(self, port):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([TELNET, "127.0.0.1", str(port)], stdin=slave,
                                     stdout=slave, stderr=slave,
                                     preexec_fn=fuzz._die_with_parent)
        os.close(slave)

    def close(self):
        _stop(self.proc)
        os.close(self.master)

    def _send(self, b):
        os.write(self.master, b)

    def _pump(self, timeout):
        if self.eof or not select.select([self.master], [], [], timeout)[0]:
            return
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: telnet ended, its terminal closed
            chunk = b""
        self.eof = not chunk
        self.data += chunk


def run_session(port, accept_echo=True, eol=b"\r\n", by_character=False, terminal=False):
    """SESSION through port, from the raw client or the telnet program on a
    terminal: the banner, then each request's answer (what came from its
    first byte to the next prompt, or to the close after `exit`)."""
    c = Terminal(port) if terminal else Client(port, accept_echo)
    try:
        answers = [c.until(b"dev> ")]
        for req in SESSION:
            if by_character:
                c.type(req.encode(), eol)
            else:
                c._send(req.encode() + eol)
            answers.append(c.until(b"" if req == "exit" else b"dev> "))
        return answers
    finally:
        c.close()


def on_screen(answers):
    """A terminal session's answers without what telnet says itself, and
    without the NUL bytes telnetd sends with its negotiation (a terminal
    shows nothing for them)."""
    answers = [a.replace(b"\0", b"") for a in answers]
    answers[0] = answers[0].split(b"Escape character is '^]'.\r\n", 1)[-1]
    answers[-1] = answers[-1].replace(b"Connection closed by foreign host.\r\n", b"")
    return answers


class RecordTelnetd(unittest.TestCase):
    def setUp(self):
        if not SIM or not os.access(TELNETD, os.X_OK):
            self.skipTest("needs DEVWIRE_SIM and %s (inetutils-telnetd)" % TELNETD)
        fuzz.SIM = SIM
        self.tmp = tempfile.TemporaryDirectory(prefix="devwire-telnetd-")
        self.addCleanup(self.tmp.cleanup)
        console = self.path("console.sh")
        with open(console, "w") as f:
            f.write(CONSOLE)
        os.chmod(console, 0o755)
        self.telnetd = Telnetd(console)
        self.addCleanup(self.telnetd.stop)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def record(self, base, **how):
        """The session through the recorder: (its answers, the recorder)."""
        with open(self.path("base.json"), "w") as f:
            json.dump(base, f)
        rec = Sim("--record", "--upstream", "127.0.0.1:%d" % self.telnetd.port,
                  "--script", self.path("base.json"), "--out", self.path("rec.json"))
        self.addCleanup(rec.stop)
        answers = run_session(rec.port, **how)
        rec.stop()
        return answers, rec

    def replay(self, **how):
        sim = Sim("--script", self.path("rec.json"))
        self.addCleanup(sim.stop)
        answers = run_session(sim.port, **how)
        self.assertEqual(sim.stop(), 0, sim.err)
        return answers

    def script(self):
        with open(self.path("rec.json")) as f:
            return f.read()

    def checked(self, rec):
        """The recorder passed its replay check and inferred the prompt: the
        script."""
        text = self.script()
        self.assertEqual(rec.proc.returncode, 0, rec.err + text)
        self.assertIn("replay check passed: 6 requests replay as recorded", rec.out)
        self.assertEqual(rec.err, "")
        self.assertIn('"prompt": "dev> "', text)
        return json.loads(text)

    def expect_answers(self, answers, echoed):
        echo = (lambda r: r + "\r\n") if echoed else (lambda r: "")
        self.assertEqual([a.decode() for a in answers], [
            "dev> ",
            echo("count") + "count=1\r\ndev> ",
            echo("status") + "count=1\r\nok\r\ndev> ",
            echo("count") + "count=2\r\ndev> ",
            echo("bogus") + "unknown: bogus\r\ndev> ",
            echo("count") + "count=3\r\ndev> ",
            echo("exit") + "bye\r\n"], self.script())

    def recorded_and_replayed(self, base, echoed, **how):
        answers, rec = self.record(base, **how)
        script = self.checked(rec)
        self.assertEqual(script["banner"], "dev> ")
        self.expect_answers(answers, echoed)
        self.assertEqual(self.replay(**how), answers, self.script())
        return script

    def test_a_line_at_a_time_echoed(self):
        script = self.recorded_and_replayed(BASE_CRLF, True, accept_echo=True, eol=b"\r\n",
                                            by_character=False)
        self.assertIn({"when": "exit", "reply": {"frames": ["exit", "bye"]}, "then": "close"},
                      script["rules"])

    def test_a_line_at_a_time_every_option_refused(self):
        script = self.recorded_and_replayed(BASE_CRLF, False, accept_echo=False, eol=b"\r\n",
                                            by_character=False)
        self.assertIn({"when": "count", "reply": ["count=1", "count=2", "count=3"]},
                      script["rules"])
        self.assertIn({"when": "exit", "reply": "bye", "then": "close"}, script["rules"])

    def test_typed_a_character_at_a_time(self):
        script = self.recorded_and_replayed(BASE_CR, True, accept_echo=True, eol=b"\r\0",
                                            by_character=True)
        self.assertIn({"when": "status", "reply": {"frames": ["status", "count=1", "ok"]}},
                      script["rules"])

    def test_cr_nul_against_a_crlf_sentinel_is_named(self):
        _, rec = self.record(BASE_CRLF, accept_echo=True, eol=b"\r\0", by_character=True)
        self.assertEqual(rec.proc.returncode, 1, rec.err)
        self.assertIn(EOL_NOTE, rec.err)
        self.assertIn("recorded 0 requests on 1 connection", rec.out)


    @unittest.skipUnless(TELNET, "the telnet program is not installed (Debian: "
                                 "inetutils-telnet; scripts/install-deps.sh installs it)")
    def test_the_telnet_program_on_a_terminal(self):
        # telnet accepts telnetd's DO BINARY: a key's CR goes alone.
        answers, rec = self.record(BASE_CR, terminal=True, by_character=True, eol=b"\r")
        script = self.checked(rec)
        self.assertEqual(script["banner"], {"hex": "00 00 64 65 76 3e 20"})
        self.expect_answers(on_screen(answers), True)
        # The replay, from a client that sends what telnet sent.
        replayed = self.replay(accept_echo=True, eol=b"\r", by_character=True)
        self.assertEqual(on_screen(replayed), on_screen(answers), self.script())
        # And from telnet itself: offered telnetd's WILL ECHO and DO BINARY,
        # it neither echoes the line (shown twice) nor ends it with CR NUL
        # (a NUL at the start of the next request, unmatched).
        self.assertIn("echo", script["telnet"]["will"])
        self.assertIn("binary", script["telnet"]["do"])
        replayed = self.replay(terminal=True, by_character=True, eol=b"\r")
        self.assertEqual(on_screen(replayed), on_screen(answers), self.script())

    @unittest.skipUnless(TELNET, "the telnet program is not installed (Debian: "
                                 "inetutils-telnet; scripts/install-deps.sh installs it)")
    def test_bare_cr_against_a_crlf_sentinel_is_named(self):
        # No request, every answer unsolicited: the replay check alone would
        # pass, and did.
        _, rec = self.record(BASE_CRLF, terminal=True, by_character=True, eol=b"\r")
        self.assertEqual(rec.proc.returncode, 1, rec.err)
        self.assertIn(EOL_NOTE, rec.err)
        self.assertIn("devwire-sim: --out %s: the recording does not replay as recorded: the "
                      "client's lines are not requests in the base script's framing (above)\n"
                      % self.path("rec.json"), rec.err)


def in_namespace():
    """Re-run this file in a mount namespace of its own with tmpfs on
    /var/log and /run (telnetd's wtmp and utmp): its exit status, or None
    when that cannot be had here."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or not unshare:
        return None
    if subprocess.run([unshare, "--mount", "true"], capture_output=True).returncode != 0:
        return None
    cmd = ("mount -t tmpfs devwire-log /var/log && mount -t tmpfs devwire-run /run && "
           'exec "$0" "$@"')
    return subprocess.run([unshare, "--mount", "sh", "-c", cmd, sys.executable,
                           os.path.abspath(__file__), SIM],
                          env=dict(os.environ, DW_TELNETD_NS="1")).returncode


def main():
    global SIM
    SIM = os.path.abspath(sys.argv[1])
    if not os.access(TELNETD, os.X_OK):
        print("skipped: %s is not installed (Debian: inetutils-telnetd; "
              "scripts/install-deps.sh installs it)" % TELNETD)
        return SKIP
    if os.environ.get("DW_TELNETD_NS") != "1":
        status = in_namespace()
        if status is not None:
            return status
        print("no mount namespace (needs root and unshare): telnetd's logout records go to "
              "this machine's wtmp, if it may write there")
    result = unittest.main(argv=sys.argv[:1], verbosity=2, exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
