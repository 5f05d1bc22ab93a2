/* devwire-sim: a TCP device's listener (server_listen.h). */
#include "device/server_listen.h"

#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "common/loop.h"
#include "common/net.h"
#include "device/conn.h"

/* Adopt a bound socket as the listener and listen. */
int dw__sim_listen_on(dw_sim_server *s, int fd, uv_connection_cb on_connection, dw_error *err)
{
    uv_tcp_init(dw_sim_loop_uv(s->loop), &s->listener);
    s->listener.data = s;
    s->listening = 1;
    s->on_connection = on_connection;
    return dw__sim_listen_fd(&s->listener, fd, on_connection, s->addr, err);
}

/* The listener's data while its close is pending and it is to listen again
 * once closed: until its close callback has run, the handle cannot be
 * initialized again (libuv still holds it in its closing queue). */
static char listen_after_close;

static void on_listener_closed(uv_handle_t *h)
{
    /* embedded in the server */
    dw_sim_server *s = (dw_sim_server *)(void *)((char *)h - offsetof(dw_sim_server, listener));
    int again = h->data == &listen_after_close;
    h->data = NULL; /* closed: free to initialize again */
    dw_error err;
    dw_error_clear(&err);
    if (again && dw__sim_listen_resume(s, &err) != DW_OK)
        dw__sim_log(s, DW_LOG_ERROR, "listen again: %s", dw_error_message(&err));
}

/* The listener was closed and its close callback has not run yet. */
static int listener_closing(dw_sim_server *s)
{
    return !s->listening && s->listener.data && uv_is_closing((uv_handle_t *)&s->listener);
}

void dw__sim_listen_pause(dw_sim_server *s)
{
    if (listener_closing(s))
        s->listener.data = s; /* a resume still waiting for the close: not any more */
    if (!s->listening)
        return;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    s->listening = 0;
}

int dw__sim_listen_resume(dw_sim_server *s, dw_error *err)
{
    if (s->listening || s->stopped || s->udp || s->serial)
        return DW_OK;
    if (listener_closing(s)) { /* a pause in the same loop turn: listen once closed */
        s->listener.data = &listen_after_close;
        return DW_OK;
    }
    char *host = NULL, addr[DW_SIM_ADDR_MAX];
    uint16_t port;
    int fd = -1;
    if (dw_sim_parse_hostport(s->addr, &host, &port) != 0)
        return dw_error_set(err, DW_EINVAL, "listen %s: not HOST:PORT", s->addr);
    int rc = dw_sim_net_bind(host, s->port, SOCK_STREAM, 512, &fd, addr, &port, err);
    free(host);
    return rc == DW_OK ? dw__sim_listen_on(s, fd, s->on_connection, err) : rc;
}
