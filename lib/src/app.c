/* The application layer: marshall a payload, hand the bytes to a transport
 * session, unmarshall the response from the session's iterator. Payloads
 * are opaque here; the marshallers know their type. */
#include "devwire/app.h"

#include <stdlib.h>
#include <string.h>

struct dw_app_client {
    dw_client *transport;
    const dw_marshaller *request;
    const dw_marshaller *response;
};

struct dw_app_session {
    dw_session *transport;
    const dw_app_client *client;
    dw_buf out; /* the marshalled request, reused */
};

struct dw_app_server {
    const dw_marshaller *request;
    const dw_marshaller *response;
    dw_app_callback callback;
    void *user;
};

dw_app_client *dw_app_client_new(dw_client *transport, const dw_marshaller *request,
                                 const dw_marshaller *response)
{
    if (!transport || !request || !response)
        return NULL;
    dw_app_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->transport = transport;
    c->request = request;
    c->response = response;
    return c;
}

void dw_app_client_free(dw_app_client *c)
{
    free(c);
}

int dw_app_client_connect(dw_app_client *c, dw_app_session **out, dw_error *err)
{
    *out = NULL;
    dw_app_session *s = calloc(1, sizeof *s);
    if (!s)
        return dw_error_set(err, DW_ENOMEM, "connect: out of memory");
    int rc = dw_client_connect(c->transport, &s->transport, err);
    if (rc != DW_OK) {
        free(s);
        return rc;
    }
    s->client = c;
    *out = s;
    return DW_OK;
}

/* Prefix a marshaller's message with the peer, so that "sentinel: receiving
 * a frame: timed out" says which server did not answer. */
static int with_peer(dw_app_session *s, int rc, const dw_error *inner, dw_error *err)
{
    return dw_error_set(err, rc, "%s: %s", dw_session_peer(s->transport), dw_error_message(inner));
}

static int send_frame(dw_app_session *s, dw_error *err)
{
    return dw_session_send(s->transport, s->out.data, s->out.len, err);
}

int dw_app_session_send(dw_app_session *s, const void *request, dw_error *err)
{
    dw_error e;
    dw_error_clear(&e);
    dw_buf_clear(&s->out);
    int rc = dw_marshall_payload(s->client->request, request, &s->out, &e);
    if (rc != DW_OK)
        return with_peer(s, rc, &e, err);
    return send_frame(s, err);
}

int dw_app_session_send_bytes(dw_app_session *s, const void *p, size_t n, dw_error *err)
{
    dw_error e;
    dw_error_clear(&e);
    dw_buf_clear(&s->out);
    int rc = dw_marshall(s->client->request, p, n, &s->out, &e);
    if (rc != DW_OK)
        return with_peer(s, rc, &e, err);
    return send_frame(s, err);
}

int dw_app_session_send_receive(dw_app_session *s, const void *request, void **response,
                                dw_error *err)
{
    *response = NULL;
    int rc = dw_app_session_send(s, request, err);
    if (rc != DW_OK)
        return rc;
    dw_error e;
    dw_error_clear(&e);
    rc = dw_unmarshall_payload(s->client->response, dw_session_iter(s->transport), response, &e);
    if (rc == DW_EOF)
        return dw_error_set(err, rc, "%s: connection closed before a response",
                            dw_session_peer(s->transport));
    if (rc != DW_OK)
        return with_peer(s, rc, &e, err);
    return DW_OK;
}

int dw_app_session_send_receive_bytes(dw_app_session *s, const void *p, size_t n, dw_buf *response,
                                      dw_error *err)
{
    int rc = dw_app_session_send_bytes(s, p, n, err);
    if (rc != DW_OK)
        return rc;
    dw_error e;
    dw_error_clear(&e);
    rc = dw_unmarshall(s->client->response, dw_session_iter(s->transport), response, &e);
    if (rc == DW_EOF)
        return dw_error_set(err, rc, "%s: connection closed before a response",
                            dw_session_peer(s->transport));
    if (rc != DW_OK)
        return with_peer(s, rc, &e, err);
    return DW_OK;
}

dw_session *dw_app_session_transport(dw_app_session *s)
{
    return s->transport;
}

void dw_app_session_close(dw_app_session *s)
{
    if (!s)
        return;
    dw_session_close(s->transport);
    dw_buf_free(&s->out);
    free(s);
}

dw_app_server *dw_app_server_new(const dw_marshaller *request, const dw_marshaller *response,
                                 dw_app_callback callback, void *user)
{
    if (!request || !response || !callback)
        return NULL;
    dw_app_server *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->request = request;
    a->response = response;
    a->callback = callback;
    a->user = user;
    return a;
}

void dw_app_server_free(dw_app_server *a)
{
    free(a);
}

static int app_on_request(void *user, dw_conn *c, dw_iter *in, dw_buf *out)
{
    const dw_app_server *a = user;
    const dw_logger *lg = dw_conn_logger(c);
    dw_error e;
    dw_error_clear(&e);
    void *request = NULL;
    int rc = dw_unmarshall_payload(a->request, in, &request, &e);
    if (rc == DW_EOF)
        return rc;
    if (rc != DW_OK) {
        /* The server logs the close once, with the code (a warning for a
         * bad frame); the details go to debug so that one bad client
         * makes one line at the default level. */
        dw_log(lg, DW_LOG_DEBUG, "%s: %s", dw_conn_peer(c), dw_error_message(&e));
        return rc;
    }
    void *response = NULL;
    rc = a->callback(a->user, c, request, &response);
    dw_payload_free(a->request, request);
    if (rc != DW_OK) {
        dw_log(lg, DW_LOG_DEBUG, "%s: request handler failed: %s", dw_conn_peer(c),
               dw_strerror(rc));
        dw_payload_free(a->response, response);
        return rc;
    }
    if (response) {
        rc = dw_marshall_payload(a->response, response, out, &e);
        dw_payload_free(a->response, response);
        if (rc != DW_OK)
            dw_log(lg, DW_LOG_WARN, "%s: cannot marshall the response: %s", dw_conn_peer(c),
                   dw_error_message(&e));
    }
    return rc;
}

dw_server_handler dw_app_server_handler(dw_app_server *a)
{
    dw_server_handler h;
    memset(&h, 0, sizeof h);
    h.on_request = app_on_request;
    h.user = a;
    return h;
}
