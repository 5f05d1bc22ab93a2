/* devwire-sim over VXI-11, inside: what the channels (server_vxi11.c: the
 * listeners, connections, RPC records and replies) and the procedures
 * (vxi11_core.c: links, locks, the output queues, the engine) share.
 * server_vxi11.c calls vxi11_core.c, never the other way: the procedures
 * reach back through the two function pointers of sim_vxi11. Loop thread
 * only. */
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
    uint32_t prog; /* DW_VXI11_CORE_PROG or DW_VXI11_ABORT_PROG */
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

#endif
