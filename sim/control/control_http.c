/* devwire-sim's control API: the control's life, the HTTP server
 * (libmicrohttpd) and the checks every request passes (the token, the
 * body's size) before control_routes.c finds its resource. See control.h.
 *
 * One thread per HTTP connection (MHD_USE_THREAD_PER_CONNECTION), at most
 * MAX_CLIENTS at once: a journal wait blocks its own thread on the
 * journal's condition variable, never the device loop, and the others go
 * on. The raw request target (path and query, still percent-encoded) is
 * taken from the URI log callback, so a device named "a/b" can be reached
 * as /devices/a%2Fb. */
#include <microhttpd.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/control_int.h"
#include "device/server_int.h"

#define MAX_CLIENTS    64
#define IDLE_TIMEOUT_S 120
#define MAX_TARGET     8192

void dw_sim_control_options_init(dw_sim_control_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->journal_size = DW_SIM_JOURNAL_DEFAULT;
    o->max_wait_ms = 600000;
    o->max_body = DW_SIM_CONTROL_MAX_BODY;
}

/* Loopback only, unless a token guards the API. */
static int loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static void attach(void *arg)
{
    ctl_device *d = arg;
    dw_sim_devctl_attach(d->server, d->dev);
}

static int proxy_device(ctl_device *d, const dw_sim_control_device *in)
{
    d->upstream = strdup(in->upstream ? in->upstream : "");
    d->mode = strdup(in->mode ? in->mode : "proxy");
    d->faults = cJSON_CreateArray();
    return d->upstream && d->mode && d->faults;
}

int dw_sim_control_new(const dw_sim_control_options *o, const dw_sim_control_device *devs, size_t n,
                       dw_sim_control **out, dw_error *err)
{
    *out = NULL;
    const char *host = o->host ? o->host : "127.0.0.1";
    if (!loopback(host) && !o->token)
        return dw_error_set(err, DW_EINVAL,
                            "control %s:%u: listening beyond loopback needs --control-token FILE",
                            host, o->port);
    dw_sim_control *c = calloc(1, sizeof *c);
    if (!c)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    c->o = *o;
    c->host = strdup(host);
    c->token = o->token ? strdup(o->token) : NULL;
    c->devs = calloc(n ? n : 1, sizeof *c->devs);
    pthread_mutex_init(&c->fault_lock, NULL);
    int ok = c->host && (!o->token || c->token) && c->devs;
    for (size_t i = 0; ok && i < n; i++) {
        ctl_device *d = &c->devs[i];
        d->server = devs[i].server;
        d->transport = devs[i].transport;
        d->proxy = devs[i].proxy;
        ok = (d->name = strdup(devs[i].name ? devs[i].name : "default")) &&
             (d->proxy ? proxy_device(d, &devs[i])
                       : !!(d->dev = dw_sim_devctl_new(o->journal_size ? o->journal_size
                                                                       : DW_SIM_JOURNAL_DEFAULT)));
        c->n = i + 1;
    }
    if (!ok) {
        dw_sim_control_free(c);
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    }
    c->o.host = c->host;
    c->o.token = c->token;
    if (!c->o.max_wait_ms)
        c->o.max_wait_ms = 600000;
    if (!c->o.max_body)
        c->o.max_body = DW_SIM_CONTROL_MAX_BODY;
    for (size_t i = 0; i < n; i++)
        if (!c->devs[i].proxy)
            dw_sim_loop_call(c->devs[i].server->loop, attach, &c->devs[i]);
    *out = c;
    return DW_OK;
}

/* ---- a request, without HTTP -------------------------------------------- */

/* The bearer token, compared in constant time: from the Authorization
 * header, or the access_token query parameter (the status page's fetches
 * carry it so, as a browser cannot add a header to the page itself). */
static int authorized(const dw_sim_control *c, const dw_sim_http_request *req)
{
    if (!c->token)
        return 1;
    static const char scheme[] = "Bearer ";
    const char *header = req->authorization;
    char query[MAX_SEGMENT];
    const char *given = NULL;
    if (header && strncmp(header, scheme, sizeof scheme - 1) == 0)
        given = header + sizeof scheme - 1;
    else if (dw__ctl_query_get(req->query, "access_token", query, sizeof query) == 1)
        given = query;
    if (!given)
        return 0;
    size_t n = strlen(c->token), m = strlen(given);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(c->token[i] ^ (i < m ? given[i] : 0));
    return diff == 0;
}

void dw_sim_control_handle(dw_sim_control *c, const dw_sim_http_request *req,
                           dw_sim_http_response *r)
{
    dw_sim_http_response_init(r);
    if (!authorized(c, req)) {
        dw__ctl_error(r, 401, "authorization",
                      "this control API needs \"Authorization: Bearer TOKEN\" (--control-token)");
        return;
    }
    if (req->body_len > c->o.max_body) {
        dw__ctl_error(r, 413, "body", "the body is %zu bytes; at most %zu are accepted",
                      req->body_len, c->o.max_body);
        return;
    }
    if (!req->method || !req->path) {
        dw__ctl_error(r, 400, "", "no method or path");
        return;
    }
    dw__ctl_route(c, req, r);
}

/* ---- one HTTP request ---------------------------------------------------- */

typedef struct http_req {
    char *target; /* path?query as sent */
    dw_buf body;
    int too_big;
    int started;
    void (*then)(void *arg);
    void *then_arg;
} http_req;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    http_req *h = calloc(1, sizeof *h);
    if (h)
        h->target = strndup(uri ? uri : "", MAX_TARGET);
    if (h && !h->target) {
        free(h);
        h = NULL;
    }
    return h;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    http_req *h = *req_cls;
    if (!h)
        return;
    if (h->then)
        h->then(h->then_arg);
    dw_buf_free(&h->body);
    free(h->target);
    free(h);
    *req_cls = NULL;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, dw_sim_http_response *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body.len, r->body.len ? r->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* A body announced larger than the limit is refused before it is read. */
static int announced_too_big(const dw_sim_control *c, struct MHD_Connection *conn)
{
    const char *len =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return len && strtoull(len, NULL, 10) > c->o.max_body;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    dw_sim_control *c = cls;
    http_req *h = *req_cls;
    (void)url;
    (void)version;
    if (!h)
        return MHD_NO;
    dw_sim_http_response r;
    dw_sim_http_response_init(&r);
    if (!h->started) {
        h->started = 1;
        if (!announced_too_big(c, conn))
            return MHD_YES;
        h->too_big = 1;
    }
    if (!h->too_big && *upload_data_size) {
        if (h->body.len + *upload_data_size > c->o.max_body)
            h->too_big = 1; /* read on (and drop) to answer at the end */
        else if (dw_buf_append(&h->body, upload_data, *upload_data_size) != DW_OK)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    char *query = strchr(h->target, '?');
    if (query)
        *query++ = 0;
    dw_sim_http_request req = {
        method,
        h->target,
        query,
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        h->body.data,
        h->too_big ? c->o.max_body + 1 : h->body.len};
    dw_sim_control_handle(c, &req, &r);
    h->then = r.then;
    h->then_arg = r.then_arg;
    enum MHD_Result rc = send_response(conn, &r);
    dw_sim_http_response_free(&r);
    return rc;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    dw_sim_control *c = cls;
    char line[400];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    dw_log(c->o.logger, DW_LOG_WARN, "control %s: %s", c->addr, line);
}

int dw_sim_control_start(dw_sim_control *c, dw_error *err)
{
    int fd = -1;
    uint16_t port = 0;
    char addr[DW_SIM_ADDR_MAX];
    int rc = dw_sim_net_bind(c->host, c->o.port, SOCK_STREAM, 64, &fd, addr, &port, err);
    if (rc != DW_OK)
        return dw_error_set(err, rc, "control: %s", dw_error_message(err));
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    c->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, c, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, c,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MAX_CLIENTS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, c, MHD_OPTION_NOTIFY_COMPLETED, on_completed, c,
        MHD_OPTION_END);
    if (!c->mhd) {
        close(fd);
        return dw_error_set(err, DW_EIO, "control %s: cannot start the HTTP server", c->addr);
    }
    return DW_OK;
}

const char *dw_sim_control_address(const dw_sim_control *c)
{
    return c->addr;
}

static void close_device(void *arg)
{
    ctl_device *d = arg;
    dw_sim_devctl_close(d->server);
}

void dw_sim_control_stop(dw_sim_control *c)
{
    if (!c || c->stopped)
        return;
    c->stopped = 1;
    for (size_t i = 0; i < c->n; i++)
        if (c->devs[i].dev)
            dw_sim_journal_close(dw_sim_devctl_journal(c->devs[i].dev));
    if (c->mhd)
        MHD_stop_daemon(c->mhd); /* joins every connection's thread */
    c->mhd = NULL;
    for (size_t i = 0; i < c->n; i++)
        if (c->devs[i].dev)
            dw_sim_loop_call(c->devs[i].server->loop, close_device, &c->devs[i]);
}

void dw_sim_control_free(dw_sim_control *c)
{
    if (!c)
        return;
    dw_sim_control_stop(c);
    for (size_t i = 0; i < c->n; i++) {
        dw_sim_devctl_free(c->devs[i].dev);
        free(c->devs[i].name);
        free(c->devs[i].upstream);
        free(c->devs[i].mode);
        cJSON_Delete(c->devs[i].faults);
    }
    free(c->devs);
    pthread_mutex_destroy(&c->fault_lock);
    free(c->host);
    free(c->token);
    free(c);
}
