/* devwire-sim's server: serves a script's engine on an event loop.
 *
 * Each connection reads requests with the script's request framing, asks
 * the engine what to do and does it on the socket: the delay before a
 * reply, a reply written in pieces with pauses between them, faults
 * (close, RST, hang, garbage), the banner on connect (a console's banner
 * ends with its prompt), the prompt after each request handled (whether or
 * not it had a reply), periodic messages to every connected client. A
 * malformed or oversized frame, or a client vanishing mid-frame, ends that
 * connection only (logged once); the others go on. One loop thread does it
 * all (loop.h): no thread per connection; a client that does not read its
 * replies stops being read from and is dropped after the write timeout.
 *
 * A reload swaps in a new script: new connections use it at once, open ones
 * from their next request on (their per-connection state starts afresh).
 *
 * Memory (memory.h): once a frame larger than DW_SIM_KEEP_BYTES is answered
 * or refused, the connection's buffers shrink back to that capacity; when a
 * connection that held larger buffers closes, dw_sim_memory_release gives
 * the freed memory back to the system. The program calls
 * dw_sim_memory_init first. */
#ifndef DW_SIM_SERVER_H
#define DW_SIM_SERVER_H

#include <stdint.h>
#include <stdio.h>

#include <devwire/devwire.h>

#include "script/script.h"
#include "observe/transcript.h"

typedef struct dw_sim_server dw_sim_server;
typedef struct dw_sim_loop dw_sim_loop;

typedef struct dw_sim_server_options {
    const char *name;              /* the device's name when the process serves several
                                      (logs, transcript, summary); NULL = none; copied */
    const char *host;              /* default "127.0.0.1"; copied */
    uint16_t port;                 /* 0 = the kernel chooses */
    const dw_logger *logger;       /* NULL = silent; must outlive the server */
    dw_sim_transcript *transcript; /* NULL = none; borrowed, must outlive the server */
    size_t max_connections;        /* default 1024 */
    int idle_timeout_ms;           /* close a silent connection; -1 = never (default) */
    int write_timeout_ms;          /* drop a client that takes none of its replies for this
                                      long; -1 = never (default 10000) */
    dw_sim_loop *loop;             /* the loop to serve on (borrowed, must outlive the
                                      server); NULL = the server runs its own */
    /* --max-frame: 0 = each framing's own max_frame (default); otherwise
     * every framing of the script, request and response, accepts frames of
     * at most this many bytes (the smaller of this and the script's own),
     * for reloaded scripts too (dw_sim_script_cap_frames). A script with a
     * fixed framing longer than this is refused: dw_sim_server_new and
     * dw_sim_server_reload fail with DW_ESCRIPT. */
    size_t max_frame;
    /* --max-buffered: the most bytes buffered across all connections at
     * once, DW_SIM_MAX_BUFFERED by default; 0 = no bound. A connection's
     * buffered bytes are those of the request frame it is reading, counted
     * as they arrive (to the chunk read), plus the reply it is writing. A
     * connection whose next bytes would pass the bound gets its frame (or
     * reply) refused: it is closed, logged once at warn ("HOST:PORT:
     * connection N: --max-buffered B reached (reading a request: this
     * connection would buffer X bytes, all connections Y); closing it", or
     * "(its reply: ...)") and recorded as a transcript "fault" event with
     * match "max-buffered"; the others keep being answered. A connection's
     * count starts from zero again with each request. UDP devices are
     * not counted: a datagram (64 KiB at most) is handled as it arrives. */
    size_t max_buffered;
    /* Transport "serial" (server_serial.c): `link`, when not NULL, is made
     * a symbolic link to the line's terminal (replacing a symbolic link
     * there, refusing anything else) and removed when the server stops;
     * copied. `baud` overrides the script's "baud" (0 = the script's). The
     * address is the terminal's path, and the options about connections
     * (max_connections, the timeouts, max_buffered) do not apply. */
    const char *link;
    uint32_t baud;
    /* The seed of every random draw of the device, with its name mixed in:
     * rules' "probability" and "delay" (netfault.h), the properties' noise
     * and Lua's math.random (dw_sim_engine_seed; an unnamed device's engine
     * gets the seed itself). Each reload starts the engine's draws afresh
     * from it. Default DW_SIM_DEFAULT_SEED. */
    uint64_t seed;
    /* One evaluation of the script's Lua may take this long before it fails
     * (dw_sim_engine_lua_deadline; 0: the engine's default, 10 ms). */
    unsigned lua_deadline_ms;
    /* TCP and Telnet: leave ACKs to the kernel's delayed ACKs, unless the
     * script says "tcp": {"quickack": true}. 0 (default): ACK what each
     * read got at once (dw__sim_quickack), unless the script says
     * "quickack": false. */
    int delayed_ack;
    /* Transport "vxi11" (server_vxi11.c): the portmapper's port on `host`
     * (--portmapper; default 111; 0: the kernel chooses; -1: none, clients
     * are told the core channel's port). `port` is the core channel's. */
    int portmapper;
    /* Transport "vxi11": the abort channel's port on `host` (--abort-port;
     * 0, the default: the kernel chooses). */
    int abort_port;
} dw_sim_server_options;

#define DW_SIM_MAX_BUFFERED ((size_t)256 * 1024 * 1024)

void dw_sim_server_options_init(dw_sim_server_options *o);

/* Bind and listen for `script`. On DW_OK *out is the server, which owns the
 * script from then on (frees it). On failure the caller keeps the script;
 * `err` names the address or the problem. */
int dw_sim_server_new(const dw_sim_server_options *o, dw_sim_script *script, dw_sim_server **out,
                      dw_error *err);
/* Start accepting: on its own loop, run it in a background thread; on a
 * loop given in the options, accepting starts with that loop. */
int dw_sim_server_start(dw_sim_server *s, dw_error *err);
/* "HOST:PORT" actually bound; for a serial device, its terminal's path
 * ("/dev/pts/3"). */
const char *dw_sim_server_address(const dw_sim_server *s);
/* A VXI-11 device's VISA resource string and where its portmapper and
 * core channel are: "TCPIP::127.0.0.1::inst0::INSTR (portmapper
 * 127.0.0.1:111)"; NULL for another transport. */
const char *dw_sim_server_resource(const dw_sim_server *s);
/* 1 when the device is a serial line. */
int dw_sim_server_serial(const dw_sim_server *s);
uint16_t dw_sim_server_port(const dw_sim_server *s);
/* Serve `script` from now on (see above). On DW_OK the server owns it; on
 * failure (DW_ENOMEM, a framing it cannot build) the old script keeps
 * serving and the caller keeps `script`. Thread-safe. */
int dw_sim_server_reload(dw_sim_server *s, dw_sim_script *script, dw_error *err);
/* Stop accepting and close the connections (a reply under way is not
 * finished); with its own loop, end the loop and join its thread. Not
 * async-signal-safe: call it from an ordinary thread. */
void dw_sim_server_stop(dw_sim_server *s);
/* Stop (if needed) and free. Accepts NULL. A server on a shared loop is
 * freed after dw_sim_loop_stop (its close callbacks have run then). */
void dw_sim_server_free(dw_sim_server *s);

/* Figures for the summary and --check. */
typedef struct dw_sim_totals {
    uint64_t connections;      /* accepted */
    uint64_t requests;         /* over every script served (reloads included) */
    uint64_t unmatched;        /* idem */
    uint64_t regex_limit_hits; /* regex matches a limit cut short (idem) */
    uint64_t lua_errors;       /* chunks of Lua that failed (idem) */
    size_t steps_not_reached;  /* of the script serving now */
} dw_sim_totals;

void dw_sim_server_totals(dw_sim_server *s, dw_sim_totals *t);
/* Print the human-readable summary to `f`. */
void dw_sim_server_summary(dw_sim_server *s, FILE *f);

#endif
