/* devwire-sim's control API: the control's life, the HTTP server
 * (libmicrohttpd) and the checks every request passes (control_access.c's,
 * the body's size) before control_routes.c finds its resource. See
 * control.h.
 *
 * One thread per HTTP connection (MHD_USE_THREAD_PER_CONNECTION), at most
 * MAX_CLIENTS at once: a journal wait blocks its own thread on the
 * journal's condition variable for up to its timeout, never the device
 * loop nor another request, and needs no suspended connections as a
 * thread pool would. The limit is far above what a test harness holds, so
 * held connections do not shut the others out; the ones that hold a
 * thread without sending their request (slow or silent senders) are cut by
 * control_guard.c's deadlines, and the bodies being received share one
 * memory cap there. No per-address limit: the usual clients all come from
 * 127.0.0.1, the good one next to the bad. The raw request target (path
 * and query, still percent-encoded) is taken from the URI log callback, so
 * a device named "a/b" can be reached as /devices/a%2Fb. */
#include <microhttpd.h>

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "control/control_int.h"
#include "device/server_int.h"
#include "record/proxy.h"

#define MAX_CLIENTS    512
#define IDLE_TIMEOUT_S 30 /* behind control_guard.c's deadlines; a slow reader */
#define MAX_TARGET     8192

void dw_sim_control_options_init(dw_sim_control_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->journal_size = DW_SIM_JOURNAL_DEFAULT;
    o->max_wait_ms = 600000;
    o->max_body = DW_SIM_CONTROL_MAX_BODY;
}

static void attach(void *arg)
{
    ctl_device *d = arg;
    dw_sim_devctl_attach(d->server, d->dev);
}

static int proxy_device(ctl_device *d, const dw_sim_control_device *in, size_t journal_size)
{
    d->upstream = strdup(in->upstream ? in->upstream : "");
    d->mode = strdup(in->mode ? in->mode : "proxy");
    d->faults = cJSON_CreateArray();
    d->journal = dw_sim_journal_new(journal_size ? journal_size : DW_SIM_JOURNAL_DEFAULT);
    return d->upstream && d->mode && d->faults && d->journal;
}

int dw_sim_control_new(const dw_sim_control_options *o, const dw_sim_control_device *devs, size_t n,
                       dw_sim_control **out, dw_error *err)
{
    *out = NULL;
    const char *host = o->host ? o->host : "127.0.0.1";
    /* Loopback only, unless a token guards the API: every address the host
     * resolves to, not its spelling (start checks the one bound too). */
    if (!o->token && dw_sim_net_check_loopback(host, err) != DW_OK) {
        char why[sizeof err->message];
        snprintf(why, sizeof why, "%s", dw_error_message(err));
        return dw_error_set(err, DW_EINVAL,
                            "control %s:%u: %s; listening beyond loopback needs --control-token "
                            "FILE",
                            host, o->port, why);
    }
    dw_sim_control *c = calloc(1, sizeof *c);
    if (!c)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    c->o = *o;
    c->host = strdup(host);
    c->token = o->token ? strdup(o->token) : NULL;
    c->devs = calloc(n ? n : 1, sizeof *c->devs);
    pthread_mutex_init(&c->fault_lock, NULL);
    int ok = c->host && (!o->token || c->token) && c->devs && dw__ctl_guard_init(c) == 0;
    for (size_t i = 0; ok && i < n; i++) {
        ctl_device *d = &c->devs[i];
        d->server = devs[i].server;
        d->transport = devs[i].transport;
        d->proxy = devs[i].proxy;
        d->front = devs[i].front;
        ok = (d->name = strdup(devs[i].name ? devs[i].name : "default")) &&
             (d->proxy ? proxy_device(d, &devs[i], o->journal_size)
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
    for (size_t i = 0; i < n; i++) {
        if (!c->devs[i].proxy)
            dw_sim_loop_call(c->devs[i].server->loop, attach, &c->devs[i]);
        /* a "fuzz" notes its mutations in the journal */
        dw_sim_proxy_set_journal(c->devs[i].proxy ? c->devs[i].proxy : c->devs[i].front,
                                 dw__ctl_journal_of(&c->devs[i]));
    }
    *out = c;
    return DW_OK;
}

/* ---- a request, without HTTP -------------------------------------------- */

void dw_sim_control_handle(dw_sim_control *c, const dw_sim_http_request *req,
                           dw_sim_http_response *r)
{
    dw_sim_http_response_init(r);
    if (!req->method || !req->path) {
        dw__ctl_error(r, 400, "", "no method or path");
        return;
    }
    if (!dw__ctl_access(c, req, r))
        return;
    if (req->body_len > c->o.max_body) {
        dw__ctl_error(r, 413, "body", "the body is %zu bytes; at most %zu are accepted",
                      req->body_len, c->o.max_body);
        return;
    }
    if (dw__ctl_body_type(req, r))
        dw__ctl_route(c, req, r);
}

/* ---- one HTTP request ---------------------------------------------------- */

typedef struct http_req {
    char *target; /* path?query as sent */
    dw_buf body;
    int too_big;
    int over_cap;    /* the bodies' cap had no room for this one */
    size_t reserved; /* bytes of the bodies' cap held for this body */
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

/* The guard's record of the connection (NULL if it has none). */
static ctl_conn *guarded(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    dw_sim_control *c = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *i =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = i ? dw__ctl_conn_open(c, (int)i->connect_fd) : NULL;
    } else {
        dw__ctl_conn_close(c, *socket_context);
        *socket_context = NULL;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    dw_sim_control *c = cls;
    (void)toe;
    http_req *h = *req_cls;
    /* The next request's headers are due from now. */
    dw__ctl_conn_phase(c, guarded(conn), CTL_PHASE_HEADERS);
    if (!h)
        return;
    if (h->then)
        h->then(h->then_arg);
    dw__ctl_body_give(c, h->reserved);
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
    if (r->status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* The headers are in: the body's deadline starts, and a body announced
 * larger than the limit, or than what the bodies' cap has left, is refused
 * before it is read. 1 to answer now, 0 to read the body. */
static int headers_in(dw_sim_control *c, struct MHD_Connection *conn, http_req *h)
{
    h->started = 1;
    dw__ctl_conn_phase(c, guarded(conn), CTL_PHASE_BODY);
    const char *len =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = len ? strtoull(len, NULL, 10) : 0;
    if (n > c->o.max_body)
        return h->too_big = 1;
    if (n && !dw__ctl_body_take(c, (size_t)n, NULL))
        return h->over_cap = 1;
    h->reserved = (size_t)n;
    /* One allocation, not a chain of doublings that would hold up to twice
     * the body for a while; on failure the appends try again. */
    (void)dw_buf_reserve(&h->body, (size_t)n);
    return 0;
}

/* Keep a chunk of the body, charged to the bodies' cap beyond what was
 * reserved; past the limit or the cap, drop it (and the rest) to answer
 * at the end. DW_OK, or out of memory. */
static int body_chunk(dw_sim_control *c, http_req *h, const char *p, size_t n)
{
    if (h->too_big || h->over_cap)
        return DW_OK;
    size_t len = h->body.len + n;
    if (len > c->o.max_body) {
        h->too_big = 1;
        return DW_OK;
    }
    if (len > h->reserved) {
        if (!dw__ctl_body_take(c, len - h->reserved, NULL)) {
            h->over_cap = 1;
            return DW_OK;
        }
        h->reserved = len;
    }
    return dw_buf_append(&h->body, p, n);
}

/* 503: the bodies being received hold the cap; named, with when to retry. */
static enum MHD_Result refuse_busy(dw_sim_control *c, struct MHD_Connection *conn,
                                   const dw_sim_http_request *req)
{
    dw_sim_http_response r;
    dw_sim_http_response_init(&r);
    size_t held = 0;
    dw__ctl_body_take(c, 0, &held);
    if (dw__ctl_access(c, req, &r))
        dw__ctl_error(&r, 503, "body",
                      "the bodies being received hold %zu bytes of the %zu allowed at once "
                      "(%d times the %zu-byte body limit); try again when they are in",
                      held, dw__ctl_bodies_cap(c), GUARD_BODIES, c->o.max_body);
    enum MHD_Result rc = send_response(conn, &r);
    dw_sim_http_response_free(&r);
    return rc;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
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
    if (!h->started && !headers_in(c, conn, h))
        return MHD_YES;
    if (*upload_data_size) {
        if (body_chunk(c, h, upload_data, *upload_data_size) != DW_OK)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    dw__ctl_conn_phase(c, guarded(conn), CTL_PHASE_HANDLING);
    char *query = strchr(h->target, '?');
    if (query)
        *query++ = 0;
    dw_sim_http_request req = {.method = method,
                               .path = h->target,
                               .query = query,
                               .authorization = header(conn, MHD_HTTP_HEADER_AUTHORIZATION),
                               .body = h->body.data,
                               .body_len = h->too_big ? c->o.max_body + 1 : h->body.len,
                               .host = header(conn, MHD_HTTP_HEADER_HOST),
                               .origin = header(conn, MHD_HTTP_HEADER_ORIGIN),
                               .sec_fetch_site = header(conn, "Sec-Fetch-Site"),
                               .content_type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE)};
    if (h->over_cap)
        return refuse_busy(c, conn, &req);
    dw_sim_http_response r;
    dw_sim_control_handle(c, &req, &r);
    h->then = r.then;
    h->then_arg = r.then_arg;
    enum MHD_Result rc = send_response(conn, &r);
    dw_sim_http_response_free(&r);
    return rc;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    dw_sim_control *c = cls;
    char line[400];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    dw_log(c->o.logger, DW_LOG_WARN, "control %s: %s", c->addr, line);
}

/* The HTTP server's threads run in the SCHED_IDLE class, below the
 * devices' loops: on a machine whose cores are all busy, what API clients
 * cost (a journal wait matching every new entry, a long verify) comes out
 * of the CPU the devices leave. A nice value is not enough: sixty waits at
 * nice 10 weigh as much as six loops at nice 0, where sixty SCHED_IDLE
 * threads weigh less than a fifth of one. A thread inherits its creator's
 * class on Linux, so the daemon and the reaper are started from a
 * short-lived thread that moved itself first; the process's other threads
 * keep theirs. Best effort: without SCHED_IDLE, nice 10; a failure is
 * ignored. */
#define CONTROL_NICE 10

typedef struct start_job {
    dw_sim_control *c;
    int fd;
} start_job;

static void *start_daemon(void *arg)
{
    start_job *j = arg;
    dw_sim_control *c = j->c;
#ifdef SCHED_IDLE
    struct sched_param none = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) != 0)
#endif
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), CONTROL_NICE);
    c->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_request, c, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, c, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)j->fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CLIENTS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, c, MHD_OPTION_NOTIFY_COMPLETED, on_completed, c, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, c, MHD_OPTION_END);
    if (c->mhd && dw__ctl_guard_start(c) != 0) {
        MHD_stop_daemon(c->mhd);
        c->mhd = NULL;
        j->fd = -1; /* the server closed it */
    }
    return NULL;
}

int dw_sim_control_start(dw_sim_control *c, dw_error *err)
{
    start_job j = {c, -1};
    uint16_t port = 0;
    char addr[DW_SIM_ADDR_MAX];
    int rc = dw_sim_net_bind(c->host, c->o.port, SOCK_STREAM, 64, &j.fd, addr, &port, err);
    if (rc != DW_OK)
        return dw_error_set(err, rc, "control: %s", dw_error_message(err));
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    /* What was resolved before may resolve elsewhere now: the address
     * bound is what counts. */
    if (!c->token && !dw_sim_net_bound_loopback(j.fd)) {
        close(j.fd);
        return dw_error_set(err, DW_EINVAL,
                            "control %s: bound beyond loopback; that needs --control-token FILE",
                            addr);
    }
    c->port = port;
    /* "1.2.3.4:5" or "[::1]:5": the host without brackets nor port. */
    const char *h = addr[0] == '[' ? addr + 1 : addr, *colon = strrchr(h, ':');
    snprintf(c->bound_host, sizeof c->bound_host, "%.*s", colon ? (int)(colon - h) : 0, h);
    c->bound_host[strcspn(c->bound_host, "]")] = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, start_daemon, &j) == 0)
        pthread_join(t, NULL);
    if (!c->mhd) {
        if (j.fd >= 0)
            close(j.fd);
        return dw_error_set(err, DW_EIO, "control %s: cannot start the HTTP server", c->addr);
    }
    return DW_OK;
}

const char *dw_sim_control_address(const dw_sim_control *c)
{
    return c->addr;
}

/* Every device of one loop, closed on that loop in one call (a call per
 * device, each waiting for its loop, made stopping thousands slow). */
typedef struct close_job {
    dw_sim_control *c;
    struct dw_sim_loop *loop;
} close_job;

static void close_devices(void *arg)
{
    const close_job *j = arg;
    for (size_t i = 0; i < j->c->n; i++)
        if (j->c->devs[i].dev && j->c->devs[i].server->loop == j->loop)
            dw_sim_devctl_close(j->c->devs[i].server);
}

/* Each loop that has a device once, in the devices' order. */
static void close_all(dw_sim_control *c)
{
    struct dw_sim_loop
        *done[256]; /* --loops is at most 256; past that, closing twice is harmless */
    size_t ndone = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->devs[i].dev)
            continue;
        close_job j = {c, c->devs[i].server->loop};
        size_t k = 0;
        while (k < ndone && done[k] != j.loop)
            k++;
        if (k < ndone)
            continue;
        dw_sim_loop_call(j.loop, close_devices, &j);
        if (ndone < sizeof done / sizeof done[0])
            done[ndone++] = j.loop;
    }
}

void dw_sim_control_stop(dw_sim_control *c)
{
    if (!c || c->stopped)
        return;
    c->stopped = 1;
    for (size_t i = 0; i < c->n; i++) {
        dw_sim_proxy_set_journal(c->devs[i].proxy ? c->devs[i].proxy : c->devs[i].front, NULL);
        if (dw__ctl_journal_of(&c->devs[i]))
            dw_sim_journal_close(dw__ctl_journal_of(&c->devs[i]));
    }
    dw__ctl_guard_stop(c);
    if (c->mhd)
        MHD_stop_daemon(c->mhd); /* joins every connection's thread */
    c->mhd = NULL;
    close_all(c);
}

void dw_sim_control_free(dw_sim_control *c)
{
    if (!c)
        return;
    dw_sim_control_stop(c);
    for (size_t i = 0; i < c->n; i++) {
        dw_sim_devctl_free(c->devs[i].dev);
        dw_sim_journal_free(c->devs[i].journal);
        free(c->devs[i].name);
        free(c->devs[i].upstream);
        free(c->devs[i].mode);
        cJSON_Delete(c->devs[i].faults);
    }
    free(c->devs);
    dw__ctl_guard_free(c);
    pthread_mutex_destroy(&c->fault_lock);
    free(c->host);
    free(c->token);
    free(c);
}
