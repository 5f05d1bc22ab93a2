/* devwire-sim's device, internal: the server's state that every file of
 * device/ (and the control API) reads, the transport table, and the
 * helpers of server_int.c. Everything here is used on the loop thread
 * only. */
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

/* A transport: what the device's life (server.c) and its control side
 * (devctl.c) do through a table that each transport file fills
 * (dw__sim_tcp_transport, dw__sim_udp_transport, dw__sim_serial_transport,
 * dw__sim_vxi11_transport),
 * so that neither calls a transport by name and no transport calls back up
 * into them. Everything runs on the loop thread. */
typedef struct dw_sim_transport_ops {
    /* Bind (or open the line) for o; the transport's state goes into the
     * server. On failure `close` still runs (server_close) and frees what
     * was made. */
    int (*open)(dw_sim_server *s, const dw_sim_server_options *o, dw_error *err);
    /* Close everything: connections, peers, pending replies, the socket. */
    void (*close)(dw_sim_server *s);
    /* Send periodic message i of the generation serving now to every peer. */
    void (*periodic)(dw_sim_server *s, size_t i);
    /* For the control API, NULL when the transport has no connections:
     * fn on the session of every open connection on the script serving
     * now; close every connection cleanly now; stop listening (connections
     * are refused); listen again on the same address (DW_OK, or `err` says
     * why not). */
    void (*each_session)(dw_sim_server *s, void (*fn)(dw_sim_session *ss, void *arg), void *arg);
    void (*disconnect_all)(dw_sim_server *s);
    void (*listen_pause)(dw_sim_server *s);
    int (*listen_resume)(dw_sim_server *s, dw_error *err);
} dw_sim_transport_ops;

struct dw_sim_server {
    char *name; /* the device's name, or NULL when it is the only one */
    dw_sim_loop *loop;
    int own_loop;
    const dw_sim_transport_ops *transport; /* the script's, set when the server opens */
    uv_tcp_t listener;
    int listening;                  /* the listener handle is open */
    uv_connection_cb on_connection; /* the listener's, for listening again (server_listen.c) */
    struct sim_udp *udp;            /* the datagram socket, for transport "udp" (server_udp.c) */
    struct sim_serial *serial; /* the pseudo-terminal, for transport "serial" (server_serial.c) */
    struct sim_vxi11 *vxi11;   /* links, locks, channels, for transport "vxi11" (server_vxi11.c) */
    char resource[DW_SIM_ADDR_MAX * 2 + 64]; /* VXI-11: the readiness line's resource string */
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
    struct dw_sim_devctl *ctl;    /* the control API's side of the device (devctl.h),
                                     NULL without --control */
    uint64_t bytes_in, bytes_out; /* read and written, every connection */
    dw_sim_rng rng;               /* rules' "probability" and "delay" (every generation's engine) */
    unsigned lua_deadline_ms;     /* each generation's Lua deadline (0: the engine's) */
    int delayed_ack;              /* --delayed-ack: no quick ACKs unless the script asks */
    uint64_t engine_seed;         /* each generation's noise and math.random (dw_sim_engine_seed) */
    dw_buf scratch;               /* Telnet escaping */
    dw_buf msg;                   /* a periodic message */
};

/* ---- server_int.c: the helpers every file of device/ shares -------------- */

/* Log a line, after the device's name when the process serves several. */
void dw__sim_log(const dw_sim_server *s, dw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Drop a reference to a generation (freed, its figures kept, at the last). */
void dw__sim_gen_release(dw_sim_server *s, sim_gen *g);
/* Move *gen / *sess to a fresh session on the generation serving now
 * (after a reload): DW_OK or DW_ENOMEM (then nothing changed). */
int dw__sim_bind(dw_sim_server *s, sim_gen **gen, dw_sim_session **sess);
/* The size of piece k of a reply split as o says, `left` bytes still to
 * write (the last size repeats; 0 or more than is left: all that is left). */
size_t dw__sim_piece(const dw_sim_outcome *o, size_t left, size_t k);
/* --max-buffered: charge n more bytes to a connection (*charged), or
 * DW_ELIMIT with *refusal = what all connections would then hold. */
int dw__sim_budget_take(dw_sim_server *s, size_t *charged, size_t n, size_t *refusal);
/* The request is done: its bytes leave the budget. */
void dw__sim_budget_give_back(dw_sim_server *s, size_t *charged);
/* Log (once per rule) and transcribe the regex limits a request hit, and
 * the chunk of Lua that failed on it. */
void dw__sim_report_limits(dw_sim_server *s, uint64_t id, const char *peer, const dw_sim_outcome *o,
                           size_t request_len);
/* "close", "reset", ... for the transcript. */
const char *dw__sim_fault_name(dw_sim_fault f);

#endif
