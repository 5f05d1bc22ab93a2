#include "devwire/transport.h"

int dw_client_connect(dw_client *c, dw_session **out, dw_error *err)
{
    *out = NULL;
    return c->ops->connect(c, out, err);
}

void dw_client_free(dw_client *c)
{
    if (c)
        c->ops->free(c);
}

int dw_session_request(dw_session *s, const void *p, size_t n, dw_iter **it, dw_error *err)
{
    int rc = s->ops->send(s, p, n, err);
    *it = rc == DW_OK ? s->ops->iter(s) : NULL;
    return rc;
}

int dw_session_send(dw_session *s, const void *p, size_t n, dw_error *err)
{
    return s->ops->send(s, p, n, err);
}

dw_iter *dw_session_iter(dw_session *s)
{
    return s->ops->iter(s);
}

void dw_session_close(dw_session *s)
{
    if (s)
        s->ops->close(s);
}

const char *dw_session_peer(dw_session *s)
{
    const char *p = s->ops->peer ? s->ops->peer(s) : NULL;
    return p ? p : "?";
}
