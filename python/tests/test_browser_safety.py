"""The control API against a real browser (headless Chromium): what a page
from another origin, or from a name rebound to 127.0.0.1, can do to a
simulator without --control-token (nothing), and the status page with a
token given in its URL's fragment. docs/control.md "Who may call it"."""

import http.client
import http.server
import json
import socket
import threading
import time

import pytest

from test_devwire_sim import PSU, ask

# What an attacker's page does: requests a page may send anywhere without
# asking (a "simple" text/plain fetch, a form, an image), and a read.
ATTACK = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>evil</title></head><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="@API@/devices/default/faults">
<input name='{"kind": "garbage", "garbage": "' value='"}'></form>
<pre id="out"></pre>
<script>
'use strict';
const API = '@API@';
const results = {};
const settle = (p) => Promise.race([p, new Promise((r) => setTimeout(() => r('timeout'), 5000))]);
async function attack() {
  results.no_cors = [];
  for (const body of ['{"kind": "disconnect_all"}', '{"disconnect_all": {}}']) {
    try {
      const r = await fetch(API + '/devices/default/faults', {method: 'POST', mode: 'no-cors',
        headers: {'Content-Type': 'text/plain'}, body});
      results.no_cors.push(r.type + ' ' + r.status);
    } catch (e) { results.no_cors.push('error ' + e); }
  }
  /* The form's body is text/plain: {"kind": "garbage", "garbage": "="} */
  results.form = await settle(new Promise((res) => {
    document.querySelector('iframe').onload = () => res('loaded');
    document.getElementById('form').submit(); }));
  results.img = await settle(new Promise((res) => { const i = new Image();
    i.onload = () => res('load'); i.onerror = () => res('error');
    i.src = API + '/devices/default/journal'; }));
  try {
    const r = await fetch(API + '/devices/default/journal');
    results.read = 'status ' + r.status + ': ' + await r.text();
  } catch (e) { results.read = 'error ' + e; }
  document.getElementById('out').textContent = JSON.stringify(results);
  window.results = results;
}
attack();
</script></body></html>
"""

# The same page as the API's origin: evil.example resolved to 127.0.0.1 (as
# DNS rebinding would make it), so the browser lets the page read what the
# API answers, and sends "Host: evil.example:PORT".
REBOUND = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rebound</title></head><body><pre id="out"></pre>
<script>
'use strict';
const results = {};
async function call(name, path, init) {
  try { const r = await fetch(path, init); results[name] = {status: r.status, text: await r.text()}; }
  catch (e) { results[name] = {error: String(e)}; }
}
(async () => {
  await call('read', '/devices/default/journal');
  await call('devices', '/devices');
  await call('post', '/devices/default/faults', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: '{"kind": "disconnect_all"}'});
  document.getElementById('out').textContent = JSON.stringify(results);
  window.results = results;
})();
</script></body></html>
"""


class _Pages(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


@pytest.fixture
def evil_server():
    """An HTTP server on another 127.0.0.1 port (another origin) serving
    one page; stopped after the test."""
    servers = []

    def serve(html):
        handler = type("Handler", (_Pages,), {"html": html.encode()})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        servers.append((server, t))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server, t in servers:
        server.shutdown()
        server.server_close()
        t.join(10)


def connected_client(sim):
    """A device client that stays connected, with one request in the journal."""
    s = socket.create_connection(sim.address(), timeout=10)
    s.sendall(b"*IDN?\n")
    assert s.recv(64) == b"ACME,PSU\n"
    return s


def still_intact(sim, client):
    """No fault was added, the client is still connected and answered."""
    assert sim.request("GET", "/devices/default")["connections_open"] == 1
    client.sendall(b"OUTP?\n")
    assert client.recv(64) == b"OFF\n"
    assert sim.request("GET", "/devices/default/faults") == []
    entries = sim.journal()
    assert [e["request"]["text"] for e in entries] == ["*IDN?", "OUTP?"]
    assert all(e["fault"] is None for e in entries)


def to_api(page, sim):
    """What the page's script sent to the API's port, with what came back
    (not the page itself, nor the browser's own favicon request)."""
    port = f":{sim.control_port}/"

    def sent():
        return [r for r in page.requests.values()
                if port in r.get("url", "") and r.get("method") and not r["url"].endswith(port)
                and not r["url"].endswith("/favicon.ico")]

    deadline = time.monotonic() + 5  # the network's events may come after the page's end
    while any(r["status"] is None for r in sent()) and time.monotonic() < deadline:
        page.browser.pump(0.1)
    return sent()


def test_a_page_of_another_origin_can_neither_change_nor_read_the_simulator(
        devwire_sim, page, evil_server):
    sim = devwire_sim(PSU)
    client = connected_client(sim)
    try:
        page.goto(evil_server(ATTACK.replace("@API@", sim.url)))
        results = page.wait_for("window.results")
        sent = to_api(page, sim)
        # The browser did send each of them: two fetches, the form, the image, the read.
        kinds = sorted((r["method"], r["url"].rsplit("/", 1)[1]) for r in sent)
        assert kinds == [("GET", "journal")] * 2 + [("POST", "faults")] * 3, sent
        still_intact(sim, client)
        assert "IDN" not in json.dumps(results)
        assert results["read"].startswith("error TypeError"), results  # CORS: unreadable
        assert results["img"] == "error"
        for r in sent:  # refused before anything happened
            assert r["headers"].get("sec-fetch-site") == "same-site", r
            assert r["status"] == 403, r
    finally:
        client.close()


def test_a_rebound_name_gets_403_and_reads_nothing(devwire_sim, page):
    sim = devwire_sim(PSU)
    client = connected_client(sim)
    try:
        origin = f"http://evil.example:{sim.control_port}"
        page.serve(origin + "/", REBOUND)
        page.goto(origin + "/")
        results = page.wait_for("window.results")
        sent = to_api(page, sim)
        assert "IDN" not in json.dumps(results)
        still_intact(sim, client)
        for name in ("read", "devices", "post"):
            assert results[name]["status"] == 403, results
            assert json.loads(results[name]["text"])["where"] == "header.Host", results
        assert len(sent) == 3, sent
        for r in sent:
            assert r["headers"].get("host") == f"evil.example:{sim.control_port}", r
            assert r["status"] == 403, r
    finally:
        client.close()


def _api(sim, method, path, token=None):
    conn = http.client.HTTPConnection(sim.control_host, sim.control_port, timeout=30)
    try:
        headers = {"Authorization": "Bearer " + token} if token else {}
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_the_status_page_sends_the_token_of_its_fragment(devwire_sim, browser, tmp_path):
    token = "tok-3f9a_7c21"
    (tmp_path / "token").write_text(token + "\n")
    sim = devwire_sim(PSU, args=["--control-token", str(tmp_path / "token")])
    ask(sim, "*IDN?")
    assert _api(sim, "GET", "/devices")[0] == 401
    assert _api(sim, "GET", "/devices", token)[0] == 200

    page = browser.page()
    try:
        page.goto(f"{sim.url}/#token={token}")
        page.wait_for("document.querySelector('tr.device') && "
                      "document.querySelector('table.journal')?.textContent.includes('ACME,PSU')")
        assert page.evaluate("document.querySelector('tr.device td').textContent") == "default"
        assert "token" not in page.evaluate("location.href")  # out of the address bar
        calls = to_api(page, sim)
        assert calls and all(r["headers"].get("authorization") == "Bearer " + token for r in calls)
        assert all(r["status"] == 200 for r in calls if r["status"] is not None)
    finally:
        page.close()

    page = browser.page()  # another tab: no token kept
    try:
        page.goto(f"{sim.url}/")
        status = page.wait_for("document.getElementById('status').textContent.includes('401') && "
                               "document.getElementById('status').textContent")
        assert status == "cannot reach the simulator: Error: /devices: 401"
        assert page.evaluate("document.querySelectorAll('tr.device').length") == 0
    finally:
        page.close()
