/* devwire-sim's control API: GET / is a status page for a person watching a
 * test run: every device with its live counters, its last requests and its
 * active faults. One self-contained document (no external assets) whose
 * script fetches the JSON endpoints every second; without script it
 * refreshes itself every five seconds. The page holds no data, so it is
 * served without the token (control_access.c); its script sends the token
 * given in the URL's fragment (#token=), which no request carries. */
#include <string.h>

#include "control/control_int.h"

static const char page[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<title>devwire-sim</title>\n"
    "<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\n"
    "<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\n"
    "h1{font-size:1.3em}h2{font-size:1.1em;margin:1.2em 0 .3em}\n"
    "table{border-collapse:collapse;margin:.3em 0}\n"
    "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;font-family:monospace}\n"
    "th{background:#f3f3f3}.fault{color:#b00}#status{color:#666}\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>devwire-sim</h1>\n"
    "<p id=\"status\">loading&hellip;</p>\n"
    "<table id=\"devices\"><thead><tr><th>device</th><th>address</th><th>transport</th>"
    "<th>requests</th><th>replies</th><th>unmatched</th><th>faults</th><th>connections</th>"
    "<th>bytes in</th><th>bytes out</th></tr></thead><tbody></tbody></table>\n"
    "<div id=\"details\"></div>\n"
    "<script>\n"
    "'use strict';\n"
    "/* With --control-token: opened as /#token=TOKEN; the fragment never reaches\n"
    "   the server, and the token is kept for this tab, out of the address bar. */\n"
    "const given = new URLSearchParams(location.hash.slice(1)).get('token');\n"
    "if (given !== null) { sessionStorage.setItem('devwire-sim-token', given);\n"
    "  history.replaceState(null, '', location.pathname); }\n"
    "const token = sessionStorage.getItem('devwire-sim-token');\n"
    "const init = token ? {headers: {Authorization: 'Bearer ' + token}} : {};\n"
    "async function get(p) { const r = await fetch(p, init); if (!r.ok) throw new Error(p + ': ' "
    "+\n"
    "  r.status); return r.json(); }\n"
    "function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text;\n"
    "  if (cls) td.className = cls; }\n"
    "function bytes(b) { return b ? (b.text !== undefined ? JSON.stringify(b.text) :\n"
    "  'hex ' + b.hex) : ''; }\n"
    "function table(head) { const t = document.createElement('table');\n"
    "  const r = t.createTHead().insertRow(); for (const h of head) { const th =\n"
    "  document.createElement('th'); th.textContent = h; r.appendChild(th); } return t; }\n"
    "async function device(d) {\n"
    "  const base = '/devices/' + encodeURIComponent(d.name);\n"
    "  const proxy = d.kind === 'proxy'; /* a proxy has faults, no journal */\n"
    "  const [faults, journal] = await Promise.all([get(base + '/faults'),\n"
    "    proxy ? {entries: []} : get(base + '/journal?tail=20')]);\n"
    "  const box = document.createElement('section');\n"
    "  const h = document.createElement('h2'); h.textContent = d.name; box.appendChild(h);\n"
    "  const ft = table(['fault', 'kind', 'match', 'fired', 'remaining']);\n"
    "  ft.className = 'faults';\n"
    "  for (const f of faults) { const r = ft.insertRow(); cell(r, f.id ?? '', 'fault');\n"
    "    cell(r, f.kind ?? '', 'fault'); cell(r, JSON.stringify(f.match ?? null));\n"
    "    cell(r, f.fired ?? ''); cell(r, f.remaining ?? (f.remaining_ms !== undefined ?\n"
    "      f.remaining_ms + ' ms' : '')); }\n"
    "  if (faults.length) box.appendChild(ft);\n"
    "  const jt = table(['seq', 'conn', 'request', 'answered by', 'reply', 'fault']);\n"
    "  jt.className = 'journal';\n"
    "  for (const e of journal.entries.slice(-20).reverse()) { const r = jt.insertRow();\n"
    "    cell(r, e.seq); cell(r, e.conn); cell(r, bytes(e.request)); cell(r, e.match ?? '');\n"
    "    cell(r, bytes(e.reply)); cell(r, e.fault ?? '', e.fault ? 'fault' : ''); }\n"
    "  if (!proxy) box.appendChild(jt);\n"
    "  return box;\n"
    "}\n"
    "async function refresh() {\n"
    "  try {\n"
    "    const devices = await get('/devices');\n"
    "    const body = document.querySelector('#devices tbody');\n"
    "    body.replaceChildren();\n"
    "    for (const d of devices) { const r = body.insertRow(); r.className = 'device';\n"
    "      const v = (x) => x ?? '';\n"
    "      cell(r, d.name); cell(r, d.address); cell(r, v(d.transport ?? d.mode));\n"
    "      cell(r, v(d.requests)); cell(r, v(d.replies)); cell(r, v(d.unmatched));\n"
    "      cell(r, v(d.faults), d.faults ? 'fault' : '');\n"
    "      cell(r, v(d.connections_open) + ' open / ' + v(d.connections_total));\n"
    "      cell(r, v(d.bytes_in)); cell(r, v(d.bytes_out)); }\n"
    "    const boxes = await Promise.all(devices.map(device));\n"
    "    document.getElementById('details').replaceChildren(...boxes);\n"
    "    document.getElementById('status').textContent = 'updated ' +\n"
    "      new Date().toLocaleTimeString();\n"
    "  } catch (e) {\n"
    "    document.getElementById('status').textContent = 'cannot reach the simulator: ' + e;\n"
    "  }\n"
    "}\n"
    "refresh();\n"
    "setInterval(refresh, 1000);\n"
    "</script>\n"
    "</body>\n"
    "</html>\n";

void dw__ctl_page_get(const ctl_call *call)
{
    dw_sim_http_response *r = call->r;
    dw_buf_clear(&r->body);
    if (dw_buf_append(&r->body, page, sizeof page - 1) != DW_OK) {
        dw__ctl_json(r, 500, NULL);
        return;
    }
    r->status = 200;
    r->content_type = "text/html; charset=utf-8";
}
