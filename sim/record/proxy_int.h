/* devwire-sim's proxy, internal: the proxy's state, which proxy.c (the
 * proxy) and its connections (proxy_conn.h) share. On the loop thread. */
#ifndef DW_SIM_PROXY_INT_H
#define DW_SIM_PROXY_INT_H

#include <stdint.h>

#include <uv.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "common/loop.h"
#include "common/net.h"
#include "model/netfault.h"
#include "observe/journal.h"
#include "record/proxy.h"
#include "record/record.h"

typedef struct pconn pconn;
typedef struct dw__sim_udp_peer dw__sim_udp_peer;
typedef struct dw__sim_serial_line dw__sim_serial_line;

struct dw_sim_proxy {
    dw_sim_loop *loop;
    uv_tcp_t listener;
    int listening, listener_closing; /* open; closed, its close callback still to come */
    uv_timer_t refuse_timer;         /* refuse_connections: not listening for a while */
    int refuse_open, refusing;
    uint64_t refuse_ms;
    uv_timer_t sched; /* disconnect_all */
    int sched_open;
    char addr[DW_SIM_ADDR_MAX], up_addr[DW_SIM_ADDR_MAX];
    uint16_t port;
    struct sockaddr_storage up_sa;
    const dw_logger *logger;
    dw_sim_transcript *transcript;
    dw_sim_script *script;
    dw_sim_script view[2];     /* each direction's rules, for its engine */
    dw_sim_engine *eng[2];     /* NULL: no rules that way */
    dw_sim_netfaults *net;     /* owned; changed at run time */
    dw_marshaller *frame_m[2]; /* each direction's framing (fuzz, transcript) */
    dw_sim_journal *journal;   /* the control API's, for the fuzz's mutations; or NULL */
    dw_sim_recorder *rec;
    uint64_t seed, next_id, accepted, start_ms;
    uint64_t fault_serial; /* the last serial given to a network fault */
    size_t nconns, max_connections;
    pconn *conns;
    /* A UDP device (proxy_udp.c): the proxy's socket, a peer per client. */
    uv_udp_t udp;
    int datagrams, udp_open;
    uint64_t udp_idle_ms;
    dw__sim_udp_peer *peers;
    /* A serial device (proxy_serial.c): the line between two terminals. */
    int serial;
    dw__sim_serial_line *line;
    int stopped, raw;
    int delayed_ack; /* the client's side: no quick ACKs unless the script asks */
    dw_buf scratch;
};

/* proxy_open.c: accept a client on ls (closed at once over the connection
 * limit) and connect it to the device. */
void dw__sim_proxy_accept(dw_sim_proxy *p, uv_stream_t *ls);
/* proxy_open.c: fault t, just added, reaches the open connections (each
 * draws it as at its opening); fault t, about to be removed, leaves those
 * that have it. */
void dw__sim_proxy_take(dw_sim_proxy *p, const dw_sim_toxic *t);
void dw__sim_proxy_drop(dw_sim_proxy *p, const dw_sim_toxic *t);
/* proxy_conn.c: close every connection now. */
void dw__sim_proxy_drop_all(dw_sim_proxy *p);

/* proxy_udp.c: bind host:port for datagrams; forget every peer and close
 * (at the stop); forget every peer (disconnect_all); fault t reaches the
 * peers or leaves them, as dw__sim_proxy_take and _drop do. */
int dw__sim_proxy_udp_open(dw_sim_proxy *p, const char *host, uint16_t port, dw_error *err);
void dw__sim_proxy_udp_close(dw_sim_proxy *p);
void dw__sim_proxy_udp_drop_all(dw_sim_proxy *p);
void dw__sim_proxy_udp_take(dw_sim_proxy *p, const dw_sim_toxic *t);
void dw__sim_proxy_udp_drop(dw_sim_proxy *p, const dw_sim_toxic *t);
/* Why a UDP proxy cannot carry out fault t, or NULL when it can. */
const char *dw__sim_proxy_udp_refuses(const dw_sim_toxic *t);

/* proxy_serial.c: open the device's terminal `upstream` and a terminal
 * for the client (its path in p->addr; `link`, or NULL, a symbolic link to
 * it); the failure's handles are closed by dw__sim_proxy_serial_close;
 * close both (at the stop); fault t reaches the line or leaves it, as
 * dw__sim_proxy_take and _drop do. */
int dw__sim_proxy_serial_open(dw_sim_proxy *p, const char *upstream, const char *link,
                              dw_error *err);
void dw__sim_proxy_serial_close(dw_sim_proxy *p);
void dw__sim_proxy_serial_take(dw_sim_proxy *p, const dw_sim_toxic *t);
void dw__sim_proxy_serial_drop(dw_sim_proxy *p, const dw_sim_toxic *t);
/* Why a serial line cannot carry out fault t, or NULL when it can. */
const char *dw__sim_proxy_serial_refuses(const dw_sim_toxic *t);

/* proxy_listen.c: bind host:port and listen (and the refuse window's
 * timer); close both (at the stop). */
int dw__sim_proxy_listen_open(dw_sim_proxy *p, const char *host, uint16_t port, dw_error *err);
void dw__sim_proxy_listen_close(dw_sim_proxy *p);
/* refuse_connections: stop listening after_ms from now for for_ms, then
 * listen again on the same address (for_ms 0: no window; listen now). */
void dw__sim_proxy_refuse(dw_sim_proxy *p, uint64_t after_ms, uint64_t for_ms);

#endif
