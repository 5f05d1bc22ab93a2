/* devwire-sim's server, internal: what server.c (connections) and
 * server_udp.c (datagrams) share. Everything here is used on the loop
 * thread only. */
#ifndef DW_SIM_SERVER_INT_H
#define DW_SIM_SERVER_INT_H

#include <uv.h>

#include "engine/engine.h"
#include "common/loop.h"
#include "common/net.h"
#include "device/server.h"

/* One loaded script and its engine. Connections (and datagram peers) hold a
 * reference; the server holds one on the generation serving now. */
typedef struct sim_gen {
    dw_sim_script *script;
    dw_sim_engine *engine;
    size_t refs;
} sim_gen;

struct dw_sim_server {
    char *name; /* the device's name, or NULL when it is the only one */
    dw_sim_loop *loop;
    int own_loop;
    uv_tcp_t listener;
    int listening;             /* the listener handle is open */
    struct sim_udp *udp;       /* the datagram socket, for transport "udp" (server_udp.c) */
    struct sim_serial *serial; /* the pseudo-terminal, for transport "serial" (server_serial.c) */
    char addr[DW_SIM_ADDR_MAX];
    uint16_t port;
    const dw_logger *logger;
    dw_sim_transcript *transcript;
    size_t max_connections;
    int idle_timeout_ms, write_timeout_ms;
    sim_gen *gen;
    struct sim_ticks *ticks;
    struct sim_conn *conns;
    size_t nconns;
    uint64_t accepted;                            /* refused ones included */
    uint64_t next_id;                             /* connections served, numbered from 1 */
    uint64_t retired_requests, retired_unmatched; /* of generations gone */
    uint64_t retired_limit_hits;
    uint64_t retired_lua_errors;
    size_t max_frame;    /* --max-frame, 0 = each framing's own */
    size_t max_buffered; /* --max-buffered, 0 = no bound */
    size_t buffered;     /* bytes held by all connections now */
    int started, stopped;
    struct dw_sim_devctl *ctl;    /* the control API's side of the device (control_dev.h),
                                     NULL without --control */
    uint64_t bytes_in, bytes_out; /* read and written, every connection */
    dw_sim_rng rng;               /* rules' "probability" and "delay" (every generation's engine) */
    uint64_t engine_seed;         /* each generation's noise and math.random (dw_sim_engine_seed) */
    dw_buf scratch;               /* Telnet escaping */
    dw_buf msg;                   /* a periodic message */
};

/* Log a line, after the device's name when the process serves several. */
void dw__sim_log(const dw_sim_server *s, dw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Drop a reference to a generation (freed, its figures kept, at the last). */
void dw__sim_gen_release(dw_sim_server *s, sim_gen *g);
/* Move *gen / *sess to a fresh session on the generation serving now
 * (after a reload): DW_OK or DW_ENOMEM (then nothing changed). */
int dw__sim_bind(dw_sim_server *s, sim_gen **gen, dw_sim_session **sess);
/* The size of the next piece of a split reply: piece k, starting at byte at. */
size_t dw__sim_piece(const dw_sim_outcome *o, size_t at, size_t k);
/* --max-buffered: charge n more bytes to a connection (*charged), or
 * DW_ELIMIT with *refusal = what all connections would then hold. */
int dw__sim_budget_take(dw_sim_server *s, size_t *charged, size_t n, size_t *refusal);
/* The request is done: its bytes leave the budget. */
void dw__sim_budget_give_back(dw_sim_server *s, size_t *charged);
/* Log (once per rule) and transcribe the regex limits a request hit, and
 * the chunk of Lua that failed on it. */
void dw__sim_report_limits(dw_sim_server *s, uint64_t id, const char *peer, const dw_sim_outcome *o,
                           size_t request_len);
/* What the socket takes of p[0..n) now: the bytes taken (maybe 0), or a
 * libuv error. send() rather than uv_try_write's write(): the same bytes on
 * a shorter path through the kernel (the proxy writes this way too). */
ssize_t dw__sim_try_send(uv_tcp_t *t, const uint8_t *p, size_t n);
/* The peer's "HOST:PORT" into out[n], or "?". */
void dw__sim_peer_name(uv_tcp_t *t, char *out, size_t n);
/* "close", "reset", ... for the transcript. */
const char *dw__sim_fault_name(dw_sim_fault f);

/* The control API (control_dev.c): close every connection cleanly now; stop
 * listening (connections are refused) and listen again on the same
 * address (DW_OK, or `err` says why not). */
void dw__sim_disconnect_all(dw_sim_server *s);
/* fn on the session of every open connection on the script serving now. */
void dw__sim_each_session(dw_sim_server *s, void (*fn)(dw_sim_session *ss, void *arg), void *arg);
void dw__sim_listen_pause(dw_sim_server *s);
int dw__sim_listen_resume(dw_sim_server *s, dw_error *err);

/* Datagrams (server_udp.c): bind and receive on host:port; close (peers,
 * pending replies, the socket); send periodic message i to every peer. */
int dw__sim_udp_open(dw_sim_server *s, const char *host, uint16_t port, dw_error *err);
void dw__sim_udp_close(dw_sim_server *s);
void dw__sim_udp_periodic(dw_sim_server *s, size_t i);

/* A serial line (server_serial.c): open the pseudo-terminal (and the
 * link); close it (the link is removed); send periodic message i. */
int dw__sim_serial_open(dw_sim_server *s, const dw_sim_server_options *o, dw_error *err);
void dw__sim_serial_close(dw_sim_server *s);
void dw__sim_serial_periodic(dw_sim_server *s, size_t i);

#endif
