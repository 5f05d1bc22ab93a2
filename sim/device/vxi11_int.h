/* devwire-sim over VXI-11, inside: what the channels (server_vxi11.c: the
 * listeners, connections, RPC records and replies), the procedures
 * (vxi11_core.c: links, locks, the output queues, the engine, service
 * requests) and the interrupt channel (vxi11_intr.c) share.
 * server_vxi11.c calls vxi11_core.c, which calls vxi11_intr.c, never the
 * other way: the procedures and the interrupt channel reach back through
 * the two function pointers of sim_vxi11. Loop thread only. */
#ifndef DW_SIM_VXI11_INT_H
#define DW_SIM_VXI11_INT_H

#include <stdint.h>

#include <uv.h>

#include "device/conn.h"
#include "device/server_int.h"
#include "device/vxi11_pmap.h"
#include "model/vxi11_rpc.h"

/* What a connection's call is waiting for. */
enum { VX_WAIT_NONE, VX_WAIT_LOCK, VX_WAIT_IO };
/* A procedure's result: the reply is in c->reply, or the call waits. */
enum { VX_ANSWERED, VX_WAIT };

struct vx_link;
typedef struct vx_intr vx_intr;
/* An interrupt channel's state. */
enum { VX_INTR_CONNECTING, VX_INTR_UP, VX_INTR_FAILED };

/* A VXI-11 device's state (s->vxi11). Freed once nothing refers to it. */
typedef struct sim_vxi11 {
    dw_sim_server *srv;
    struct vx_conn *conns;
    struct vx_link *links;
    struct vx_link *locker; /* the link holding the device's lock, or NULL */
    int32_t next_lid;
    uv_tcp_t abort_listener;
    uint16_t abort_port;
    dw_sim_pmap *pmap;
    uv_timer_t wake_timer; /* waiting calls are looked at again on the next turn */
    size_t refs;           /* handles and links not closed yet, and the server's */
    int closed;
    /* Set by server_vxi11.c: look at the waiting calls again (soon, never
     * from inside the caller); end a connection (reset: with RST). */
    void (*wake)(struct sim_vxi11 *vx);
    void (*end)(struct vx_conn *c, int reset);
} sim_vxi11;

/* A connection of the core channel or of the abort channel. */
typedef struct vx_conn {
    uv_tcp_t tcp;
    dw_sim_wire wire;
    uv_timer_t timer; /* the waiting call's deadline */
    int handles;
    sim_vxi11 *vx;
    struct vx_conn *prev, *next;
    uint64_t id;
    char peer[DW_SIM_ADDR_MAX];
    uint32_t peer_addr; /* the peer's IPv4 address, host order (0: not IPv4) */
    uint32_t prog;      /* DW_VXI11_CORE_PROG or DW_VXI11_ABORT_PROG */
    dw_sim_rpc_rm rm;
    dw_buf record; /* the call being answered (its args point into it) */
    dw_buf in;     /* bytes read while a call waits */
    size_t in_at;
    dw_buf reply;
    dw_sim_rpc_call call;
    dw_sim_vxi11_args args;
    int waiting;  /* VX_WAIT_*: the call is parked until `due` or a wake */
    uint64_t due; /* loop time */
    int aborted;  /* device_abort on the abort channel ended the waiting call */
    int reading, eof, closing;
    vx_intr *intr; /* the interrupt channel create_intr_chan made, or NULL */
} vx_conn;

/* ---- vxi11_core.c ----------------------------------------------------------- */

/* Answer c->call (a core or abort procedure, its arguments decoded into
 * c->args) into c->reply: VX_ANSWERED, or VX_WAIT with c->waiting and
 * c->due set (ask again when woken, or at due: then it times out). */
int dw__vxi11_call(vx_conn *c, uint64_t now);
/* c is closing: destroy its links (their locks released). */
void dw__vxi11_conn_gone(vx_conn *c);
/* fn on the session of every link on the generation serving now. */
void dw__vxi11_each_session(sim_vxi11 *vx, void (*fn)(dw_sim_session *ss, void *arg), void *arg);
/* Drop a reference to vx: freed at the last. */
void dw__vxi11_unref(sim_vxi11 *vx);

/* ---- vxi11_intr.c ----------------------------------------------------------- */

/* Connect to the client's interrupt server at addr:port (IPv4, host
 * order), for program prog version vers: the channel (connecting, or
 * failed at once), or NULL without memory. vx->wake runs when it is up or
 * has failed. */
vx_intr *dw__vxi11_intr_open(vx_conn *c, uint32_t addr, uint16_t port, uint32_t prog,
                             uint32_t vers);
/* VX_INTR_CONNECTING, VX_INTR_UP or VX_INTR_FAILED (refused, or ended by
 * the client). */
int dw__vxi11_intr_state(const vx_intr *ch);
/* "A.B.C.D:PORT" of the client's interrupt server. */
const char *dw__vxi11_intr_peer(const vx_intr *ch);
/* Call device_intr_srq with handle[0..n) (no reply is awaited): DW_OK,
 * DW_ECLOSED when the channel is not up, DW_ENOMEM. */
int dw__vxi11_intr_srq(vx_intr *ch, const uint8_t *handle, size_t n);
/* Close the channel and clear its connection's `intr`. Accepts NULL. */
void dw__vxi11_intr_close(vx_intr *ch);

#endif
