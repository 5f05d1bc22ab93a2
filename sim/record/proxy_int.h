/* devwire-sim's proxy, internal: the proxy's state, which proxy.c (the
 * proxy) and proxy_conn.c (its connections) share. On the loop thread. */
#ifndef DW_SIM_PROXY_INT_H
#define DW_SIM_PROXY_INT_H

#include <stdint.h>

#include <uv.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "common/loop.h"
#include "common/net.h"
#include "model/netfault.h"
#include "record/proxy.h"
#include "record/record.h"

typedef struct pconn pconn;

struct dw_sim_proxy {
    dw_sim_loop *loop;
    uv_tcp_t listener;
    int listening;
    uv_timer_t sched; /* disconnect_all */
    int sched_open;
    char addr[DW_SIM_ADDR_MAX], up_addr[DW_SIM_ADDR_MAX];
    uint16_t port;
    struct sockaddr_storage up_sa;
    const dw_logger *logger;
    dw_sim_transcript *transcript;
    dw_sim_script *script;
    dw_sim_script view[2]; /* each direction's rules, for its engine */
    dw_sim_engine *eng[2]; /* NULL: no rules that way */
    dw_sim_netfaults *net; /* owned; changed at run time */
    dw_sim_recorder *rec;
    uint64_t seed, next_id, accepted, start_ms, refuse_from, refuse_until;
    size_t nconns, max_connections;
    pconn *conns;
    int stopped, raw;
    int delayed_ack; /* the client's side: no quick ACKs unless the script asks */
    dw_buf scratch;
};

/* The listener's callback: accept a client (or refuse it) and connect to
 * the device. */
void dw__sim_proxy_on_connection(uv_stream_t *ls, int status);
/* Close every connection now. */
void dw__sim_proxy_drop_all(dw_sim_proxy *p);

#endif
