/* devwire-sim's recording and fault-injecting proxy, its listener: bound,
 * closed for a refuse_connections window and bound again on the same
 * address after it, so that a client's connect is refused by the system
 * (ECONNREFUSED) rather than accepted and closed. On the loop thread. */
#include "record/proxy_int.h"

#include <stdlib.h>
#include <sys/socket.h>

#include "common/loop.h"
#include "common/net.h"
#include "device/conn.h"

static void on_connection(uv_stream_t *ls, int status)
{
    dw_sim_proxy *p = ls->data;
    if (status < 0) {
        dw_log(p->logger, DW_LOG_ERROR, "accept %s: %s", p->addr, uv_strerror(status));
        return;
    }
    dw__sim_proxy_accept(p, ls);
}

/* Bind p->addr's host on `port` (0: the kernel chooses) and listen. */
static int listen_on(dw_sim_proxy *p, const char *host, uint16_t port, dw_error *err)
{
    int fd = -1;
    int rc = dw_sim_net_bind(host, port, SOCK_STREAM, 512, &fd, p->addr, &p->port, err);
    if (rc != DW_OK)
        return rc;
    uv_tcp_init(dw_sim_loop_uv(p->loop), &p->listener);
    p->listener.data = p;
    p->listening = 1;
    return dw__sim_listen_fd(&p->listener, fd, on_connection, p->addr, err);
}

static void on_refuse_timer(uv_timer_t *t);

int dw__sim_proxy_listen_open(dw_sim_proxy *p, const char *host, uint16_t port, dw_error *err)
{
    uv_timer_init(dw_sim_loop_uv(p->loop), &p->refuse_timer);
    p->refuse_timer.data = p;
    p->refuse_open = 1;
    return listen_on(p, host, port, err);
}

/* Listen again on the address bound first, once the old handle is closed. */
static void relisten(dw_sim_proxy *p)
{
    if (p->listening || p->stopped || p->listener_closing)
        return;
    char *host = NULL;
    uint16_t port = 0;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_parse_hostport(p->addr, &host, &port) != 0 ||
        listen_on(p, host, p->port, &err) != DW_OK)
        dw_log(p->logger, DW_LOG_ERROR, "listen again on %s after refuse_connections: %s", p->addr,
               dw_error_message(&err));
    else
        dw_log(p->logger, DW_LOG_INFO, "refuse_connections over: listening on %s again", p->addr);
    free(host);
}

static void on_listener_closed(uv_handle_t *h)
{
    dw_sim_proxy *p = h->data;
    p->listener_closing = 0;
    if (!p->refusing)
        relisten(p); /* the window ended while the close was pending */
}

static void listener_close(dw_sim_proxy *p)
{
    if (!p->listening)
        return;
    p->listening = 0;
    p->listener_closing = 1;
    uv_close((uv_handle_t *)&p->listener, on_listener_closed);
}

/* The window begins (pause) or ends (listen again). */
static void on_refuse_timer(uv_timer_t *t)
{
    dw_sim_proxy *p = t->data;
    if (!p->refusing) {
        p->refusing = 1;
        dw_log(p->logger, DW_LOG_INFO, "refuse_connections: not listening on %s for %llu ms",
               p->addr, (unsigned long long)p->refuse_ms);
        listener_close(p);
        uv_timer_start(&p->refuse_timer, on_refuse_timer, p->refuse_ms, 0);
        return;
    }
    p->refusing = 0;
    relisten(p);
}

void dw__sim_proxy_refuse(dw_sim_proxy *p, uint64_t after_ms, uint64_t for_ms)
{
    if (!p->refuse_open || p->stopped)
        return;
    uv_timer_stop(&p->refuse_timer);
    p->refuse_ms = for_ms;
    if (!for_ms) { /* no window (any more) */
        p->refusing = 0;
        relisten(p);
        return;
    }
    if (p->refusing && !after_ms) { /* already refusing: for_ms from now */
        uv_timer_start(&p->refuse_timer, on_refuse_timer, for_ms, 0);
        return;
    }
    p->refusing = 0;
    if (!after_ms) { /* from now: no connection gets in before the window */
        on_refuse_timer(&p->refuse_timer);
        return;
    }
    relisten(p);
    uv_timer_start(&p->refuse_timer, on_refuse_timer, after_ms, 0);
}

static void on_static_closed(uv_handle_t *h)
{
    (void)h; /* embedded in the proxy */
}

void dw__sim_proxy_listen_close(dw_sim_proxy *p)
{
    listener_close(p);
    if (p->refuse_open) {
        uv_close((uv_handle_t *)&p->refuse_timer, on_static_closed);
        p->refuse_open = 0;
    }
}
