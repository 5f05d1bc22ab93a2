/* TCP transport client: one blocking socket per session, with the read and
 * write timeouts in the kernel (SO_RCVTIMEO / SO_SNDTIMEO), so a round trip
 * costs one send and one recv and nothing else. */
#include "devwire/tcp.h"
#include "sock.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct tcp_client {
    dw_client base;
    char *host;
    uint16_t port;
    int timeout_ms;
    int connect_timeout_ms;
    size_t buffer_size;
    const dw_logger *logger;
} tcp_client;

typedef struct tcp_session {
    dw_session base;
    dw__sock_iter it;
    const dw_logger *logger;
    int fd;
    char peer[DW__ADDR_MAX];
} tcp_session;

void dw_tcp_client_options_init(dw_tcp_client_options *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 10000;
    o->connect_timeout_ms = 5000;
    o->buffer_size = 65536;
}

static int session_send(dw_session *base, const uint8_t *p, size_t n, dw_error *err)
{
    tcp_session *s = (tcp_session *)base;
    if (s->fd < 0)
        return dw_error_set(err, DW_ECLOSED, "send %s: session is closed", s->peer);
    int rc = dw__sock_send_all(s->fd, p, n, s->it.timeout_ms);
    if (rc == DW_OK)
        return rc;
    if (rc == DW_ETIMEDOUT)
        dw_error_set(err, rc, "send %s: timed out after %d ms", s->peer, s->it.timeout_ms);
    else
        dw_error_set(err, rc, "send %s: %s", s->peer, dw_strerror(rc));
    dw_log(s->logger, DW_LOG_DEBUG, "%s", dw_error_message(err));
    return rc;
}

static dw_iter *session_iter(dw_session *base)
{
    return &((tcp_session *)base)->it.base;
}

static void session_close(dw_session *base)
{
    tcp_session *s = (tcp_session *)base;
    dw_log(s->logger, DW_LOG_DEBUG, "closing connection to %s", s->peer);
    if (s->fd >= 0)
        close(s->fd);
    dw__sock_iter_free(&s->it);
    free(s);
}

static const char *session_peer(dw_session *base)
{
    return ((tcp_session *)base)->peer;
}

static const dw_session_ops session_ops = {
    .send = session_send,
    .iter = session_iter,
    .close = session_close,
    .peer = session_peer,
};

static int client_connect(dw_client *base, dw_session **out, dw_error *err)
{
    tcp_client *c = (tcp_client *)base;
    tcp_session *s = calloc(1, sizeof *s);
    if (!s)
        return dw_error_set(err, DW_ENOMEM, "connect: out of memory");
    s->base.ops = &session_ops;
    s->logger = c->logger;
    int rc = dw__sock_connect(c->host, c->port, c->connect_timeout_ms, c->timeout_ms, &s->fd,
                              s->peer, err);
    if (rc != DW_OK) {
        dw_log(c->logger, DW_LOG_DEBUG, "%s", dw_error_message(err));
        free(s);
        return rc;
    }
    rc = dw__sock_iter_init(&s->it, s->fd, c->buffer_size, c->timeout_ms);
    if (rc != DW_OK) {
        dw_error_set(err, rc, "connect %s: out of memory", s->peer);
        close(s->fd);
        free(s);
        return rc;
    }
    dw_log(c->logger, DW_LOG_DEBUG, "connected to %s", s->peer);
    *out = &s->base;
    return DW_OK;
}

static void client_free(dw_client *base)
{
    tcp_client *c = (tcp_client *)base;
    free(c->host);
    free(c);
}

static const dw_client_ops client_ops = {
    .connect = client_connect,
    .free = client_free,
};

dw_client *dw_tcp_client_new(const dw_tcp_client_options *o)
{
    if (!o || !o->host)
        return NULL;
    tcp_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->host = strdup(o->host);
    if (!c->host) {
        free(c);
        return NULL;
    }
    c->base.ops = &client_ops;
    c->port = o->port;
    c->timeout_ms = o->timeout_ms;
    c->connect_timeout_ms = o->connect_timeout_ms;
    c->buffer_size = o->buffer_size ? o->buffer_size : 65536;
    c->logger = o->logger;
    return &c->base;
}

int dw_tcp_session_set_timeout(dw_session *base, int timeout_ms)
{
    if (!base || base->ops != &session_ops)
        return DW_EINVAL;
    tcp_session *s = (tcp_session *)base;
    if (s->fd < 0)
        return DW_ECLOSED;
    int rc = dw__sock_set_timeouts(s->fd, timeout_ms, timeout_ms);
    if (rc == DW_OK)
        s->it.timeout_ms = timeout_ms;
    return rc;
}
