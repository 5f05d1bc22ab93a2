/* devwire-sim's recording and fault-injecting proxy, the proxy itself: its
 * address, rules, network faults and the calls of proxy.h; its connections
 * are proxy_open.c's and proxy_conn.c's.
 * Everything runs on the loop thread; the calls from other threads are
 * handed to it with dw_sim_loop_call. */
#include "record/proxy_int.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/loop.h"
#include "common/net.h"
#include "device/conn.h"

/* ---- the proxy -------------------------------------------------------------------------- */

void dw_sim_proxy_options_init(dw_sim_proxy_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->max_connections = 1024;
}

/* A shallow copy of the script holding only direction `dir`'s rules, read
 * with that direction's framing: requests, or replies. */
static int view_init(dw_sim_proxy *p, int dir, dw_error *err)
{
    const dw_sim_script *s = p->script;
    dw_sim_script *v = &p->view[dir];
    *v = *s;
    v->steps = NULL;
    v->nsteps = 0;
    v->periodic = NULL;
    v->nperiodic = 0;
    v->banner.nsegs = 0;
    v->prompt.len = 0;
    v->profile = DW_SIM_PROFILE_NONE;
    v->unmatched = (dw_sim_action){0};
    v->rules = calloc(s->nrules ? s->nrules : 1, sizeof *v->rules);
    if (!v->rules)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    v->nrules = 0;
    for (size_t i = 0; i < s->nrules; i++) {
        int d = s->rules[i].net ? s->rules[i].net->direction : DW_SIM_DIR_REQUEST;
        if (d == dir)
            v->rules[v->nrules++] = s->rules[i];
    }
    if (dir == DW_SIM_DIR_REPLY)
        v->request_framing = s->response_framing;
    if (!v->nrules)
        return DW_OK;
    int rc = dw_sim_engine_new(v, &p->eng[dir], err);
    if (rc == DW_OK) /* Lua's math.random in a rule's "if" repeats with --seed */
        dw_sim_engine_seed(p->eng[dir], p->seed + (uint64_t)dir);
    return rc;
}

/* Number the faults of p->net from `from` on (their serials tell which
 * fault an open connection took). */
static void number_faults(dw_sim_proxy *p, size_t from)
{
    for (size_t i = from; p->net && i < p->net->n; i++)
        p->net->toxics[i].serial = ++p->fault_serial;
}

typedef struct open_args {
    dw_sim_proxy *p;
    const dw_sim_proxy_options *o;
    dw_error *err;
    int rc;
} open_args;

static void on_sched(uv_timer_t *t)
{
    dw_sim_proxy *p = t->data;
    dw_log(p->logger, DW_LOG_INFO, "disconnect_all: closing %zu connection(s)", p->nconns);
    dw__sim_proxy_drop_all(p);
    dw__sim_proxy_udp_drop_all(p);
}

/* On the loop: the listener's faults of p->net, counted from `now`. */
static void windows_from(dw_sim_proxy *p, uint64_t now)
{
    const dw_sim_netfaults *n = p->net;
    (void)now;
    if (n && n->refuse_for_ms)
        dw__sim_proxy_refuse(p, n->refuse_after_ms, n->refuse_for_ms);
    else
        dw__sim_proxy_refuse(p, 0, 0);
    uv_timer_stop(&p->sched);
    if (n && (n->disconnect_after_ms || n->disconnect_every_ms))
        uv_timer_start(&p->sched, on_sched,
                       n->disconnect_after_ms ? n->disconnect_after_ms : n->disconnect_every_ms,
                       n->disconnect_every_ms);
}

static void proxy_open(void *arg)
{
    open_args *a = arg;
    dw_sim_proxy *p = a->p;
    const char *host = a->o->host ? a->o->host : "127.0.0.1";
    if (p->serial)
        a->rc = dw__sim_proxy_serial_open(p, a->o->upstream_path, a->o->link, a->err);
    else if (p->datagrams)
        a->rc = dw__sim_proxy_udp_open(p, host, a->o->port, a->err);
    else
        a->rc = dw__sim_proxy_listen_open(p, host, a->o->port, a->err);
    if (a->rc != DW_OK)
        return;
    uv_loop_t *uv = dw_sim_loop_uv(p->loop);
    uv_timer_init(uv, &p->sched);
    p->sched.data = p;
    p->sched_open = 1;
    p->start_ms = uv_now(uv);
    windows_from(p, p->start_ms);
}

/* The upstream address, resolved once. */
static int resolve(dw_sim_proxy *p, const char *host, uint16_t port, dw_error *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = p->datagrams ? SOCK_DGRAM : SOCK_STREAM;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0)
        return dw_error_set(err, DW_ENOTFOUND, "--upstream %s:%u: %s", host, (unsigned)port,
                            gai_strerror(g));
    memcpy(&p->up_sa, res->ai_addr, res->ai_addrlen);
    dw_sim_addr_format(res->ai_addr, p->up_addr, sizeof p->up_addr);
    freeaddrinfo(res);
    return DW_OK;
}

/* What a UDP proxy cannot do with `script`: DW_OK, or DW_EINVAL and why. */
static int udp_check(const dw_sim_proxy_options *o, const dw_sim_script *s, dw_error *err)
{
    const char *path = s->path ? s->path : "script";
    if (o->recorder || o->raw)
        return dw_error_set(err, DW_EINVAL, "%s: recording speaks TCP and Telnet, not udp", path);
    if (s->nrules || s->nsteps)
        return dw_error_set(err, DW_EINVAL,
                            "%s: a udp faults script takes network faults, not rules", path);
    const dw_sim_netfaults *n = s->network;
    if (n && n->refuse_for_ms)
        return dw_error_set(err, DW_EINVAL,
                            "%s: refuse_connections: udp has no connections to refuse", path);
    for (size_t i = 0; n && i < n->n; i++) {
        const char *why = dw__sim_proxy_udp_refuses(&n->toxics[i]);
        if (why)
            return dw_error_set(err, DW_EINVAL, "%s: network fault \"%s\": %s", path,
                                n->toxics[i].name, why);
    }
    return DW_OK;
}

/* What a serial line cannot do with `script`: DW_OK, or DW_EINVAL and why. */
static int serial_check(const dw_sim_proxy_options *o, const dw_sim_script *s, dw_error *err)
{
    const char *path = s->path ? s->path : "script";
    if (o->recorder || o->raw)
        return dw_error_set(err, DW_EINVAL, "%s: recording speaks TCP and Telnet, not serial",
                            path);
    if (!o->upstream_path || !o->upstream_path[0])
        return dw_error_set(err, DW_EINVAL, "%s: a serial line needs --upstream PATH", path);
    if (s->nrules || s->nsteps)
        return dw_error_set(err, DW_EINVAL,
                            "%s: a serial faults script takes network faults, not rules", path);
    const dw_sim_netfaults *n = s->network;
    if (n && (n->refuse_for_ms || n->disconnect_after_ms || n->disconnect_every_ms))
        return dw_error_set(err, DW_EINVAL, "%s: %s: a serial line has no connections to %s", path,
                            n->refuse_for_ms ? "refuse_connections" : "disconnect_all",
                            n->refuse_for_ms ? "refuse" : "drop");
    for (size_t i = 0; n && i < n->n; i++) {
        const char *why = dw__sim_proxy_serial_refuses(&n->toxics[i]);
        if (why)
            return dw_error_set(err, DW_EINVAL, "%s: network fault \"%s\": %s", path,
                                n->toxics[i].name, why);
    }
    return DW_OK;
}

int dw_sim_proxy_new(const dw_sim_proxy_options *o, dw_sim_script *script, dw_sim_proxy **out,
                     dw_error *err)
{
    *out = NULL;
    int urc = script->transport == DW_SIM_UDP      ? udp_check(o, script, err)
              : script->transport == DW_SIM_SERIAL ? serial_check(o, script, err)
                                                   : DW_OK;
    if (urc != DW_OK)
        return urc;
    dw_sim_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    p->loop = o->loop;
    p->logger = o->logger;
    p->transcript = o->transcript;
    p->rec = o->recorder;
    p->seed = o->seed;
    p->raw = o->raw;
    p->delayed_ack = o->delayed_ack;
    p->max_connections = o->max_connections ? o->max_connections : 1024;
    p->datagrams = script->transport == DW_SIM_UDP;
    p->serial = script->transport == DW_SIM_SERIAL;
    p->udp_idle_ms = o->udp_idle_ms ? o->udp_idle_ms : 30000;
    p->script = script;
    int rc = DW_OK;
    if (p->serial)
        snprintf(p->up_addr, sizeof p->up_addr, "%s", o->upstream_path);
    else
        rc = resolve(p, o->upstream_host, o->upstream_port, err);
    if (rc == DW_OK && dw_sim_netfaults_copy(script->network, &p->net) != DW_OK)
        rc = dw_error_set(err, DW_ENOMEM, "out of memory");
    number_faults(p, 0);
    for (int d = 0; d < 2 && rc == DW_OK && !p->rec && !p->raw; d++)
        rc = view_init(p, d, err);
    const dw_sim_script *fs = o->framing ? o->framing : script;
    for (int d = 0; d < 2 && rc == DW_OK && !p->rec; d++)
        if (!(p->frame_m[d] = dw_sim_framing_marshaller(
                  d == DW_SIM_DIR_REQUEST ? &fs->request_framing : &fs->response_framing)))
            rc = dw_error_set(err, DW_ENOMEM, "out of memory");
    open_args a = {p, o, err, DW_OK};
    if (rc == DW_OK) {
        dw_sim_loop_call(p->loop, proxy_open, &a);
        rc = a.rc;
    }
    if (rc != DW_OK) {
        p->script = NULL; /* the caller keeps it */
        dw_sim_proxy_stop(p);
        /* Before the loop runs (see proxy.h): let the handles' closes finish. */
        uv_run(dw_sim_loop_uv(p->loop), UV_RUN_NOWAIT);
        dw_sim_proxy_free(p);
        return rc;
    }
    *out = p;
    return DW_OK;
}

const char *dw_sim_proxy_address(const dw_sim_proxy *p)
{
    return p->addr;
}

typedef struct fault_args {
    dw_sim_proxy *p;
    const dw_sim_toxic *t;
    const char *name;
    uint64_t ms;
    dw_error *err;
    int rc;
} fault_args;

static void do_add(void *arg)
{
    fault_args *a = arg;
    if (!a->p->net && !(a->p->net = calloc(1, sizeof *a->p->net))) {
        a->rc = dw_error_set(a->err, DW_ENOMEM, "out of memory");
        return;
    }
    dw_sim_proxy *p = a->p;
    const char *why = p->datagrams ? dw__sim_proxy_udp_refuses(a->t)
                      : p->serial  ? dw__sim_proxy_serial_refuses(a->t)
                                   : NULL;
    if (why) {
        a->rc = dw_error_set(a->err, DW_EINVAL, "network fault \"%s\": %s", a->t->name, why);
        return;
    }
    a->rc = dw_sim_netfaults_add(p->net, a->t, a->err);
    if (a->rc != DW_OK)
        return;
    number_faults(p, p->net->n - 1);
    const dw_sim_toxic *t = &p->net->toxics[p->net->n - 1];
    if (t->new_only) /* else open connections draw it too */
        return;
    if (p->serial)
        dw__sim_proxy_serial_take(p, t);
    else if (p->datagrams)
        dw__sim_proxy_udp_take(p, t);
    else
        dw__sim_proxy_take(p, t);
}

static void do_remove(void *arg)
{
    fault_args *a = arg;
    const dw_sim_toxic *t = dw_sim_netfaults_find(a->p->net, a->name);
    if (t && a->p->serial) /* the connections that have it lose it */
        dw__sim_proxy_serial_drop(a->p, t);
    else if (t && a->p->datagrams)
        dw__sim_proxy_udp_drop(a->p, t);
    else if (t)
        dw__sim_proxy_drop(a->p, t);
    a->rc = t ? dw_sim_netfaults_remove(a->p->net, a->name) : DW_ENOENT;
}

typedef struct network_args {
    dw_sim_proxy *p;
    dw_sim_netfaults *net; /* taken */
    dw_sim_tcp_ack ack;
} network_args;

static void do_network(void *arg)
{
    network_args *a = arg;
    dw_sim_proxy *p = a->p;
    dw_sim_netfaults_free(p->net);
    p->net = a->net;
    a->net = NULL;
    number_faults(p, 0);
    p->script->tcp_ack = a->ack;
    if (p->sched_open && !p->stopped)
        windows_from(p, uv_now(dw_sim_loop_uv(p->loop)));
}

int dw_sim_proxy_set_network(dw_sim_proxy *p, const dw_sim_netfaults *net, dw_sim_tcp_ack ack,
                             dw_error *err)
{
    network_args a = {p, NULL, ack};
    if (dw_sim_netfaults_copy(net, &a.net) != DW_OK)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    dw_sim_loop_call(p->loop, do_network, &a);
    return DW_OK;
}

static void do_refuse(void *arg)
{
    fault_args *a = arg;
    dw__sim_proxy_refuse(a->p, 0, a->ms);
}

static void do_disconnect(void *arg)
{
    on_sched(&((dw_sim_proxy *)arg)->sched);
}

int dw_sim_proxy_add_fault(dw_sim_proxy *p, const dw_sim_toxic *t, dw_error *err)
{
    fault_args a = {p, t, NULL, 0, err, DW_OK};
    dw_sim_loop_call(p->loop, do_add, &a);
    return a.rc;
}

int dw_sim_proxy_remove_fault(dw_sim_proxy *p, const char *name)
{
    fault_args a = {p, NULL, name, 0, NULL, DW_OK};
    dw_sim_loop_call(p->loop, do_remove, &a);
    return a.rc;
}

void dw_sim_proxy_refuse_for(dw_sim_proxy *p, uint64_t ms)
{
    fault_args a = {p, NULL, NULL, ms, NULL, DW_OK};
    dw_sim_loop_call(p->loop, do_refuse, &a);
}

void dw_sim_proxy_disconnect_all(dw_sim_proxy *p)
{
    dw_sim_loop_call(p->loop, do_disconnect, p);
}

typedef struct journal_args {
    dw_sim_proxy *p;
    dw_sim_journal *j;
} journal_args;

static void do_journal(void *arg)
{
    journal_args *a = arg;
    a->p->journal = a->j;
}

void dw_sim_proxy_set_journal(dw_sim_proxy *p, dw_sim_journal *j)
{
    journal_args a = {p, j};
    if (p)
        dw_sim_loop_call(p->loop, do_journal, &a);
}

typedef struct counts_args {
    dw_sim_proxy *p;
    uint64_t *accepted, *served;
} counts_args;

static void do_counts(void *arg)
{
    counts_args *a = arg;
    *a->accepted = a->p->accepted;
    *a->served = a->p->next_id;
}

void dw_sim_proxy_counts(dw_sim_proxy *p, uint64_t *accepted, uint64_t *served)
{
    counts_args a = {p, accepted, served};
    dw_sim_loop_call(p->loop, do_counts, &a);
}

static void on_static_closed(uv_handle_t *h)
{
    (void)h; /* embedded in the proxy */
}

static void proxy_close(void *arg)
{
    dw_sim_proxy *p = arg;
    dw__sim_proxy_listen_close(p);
    if (p->sched_open) {
        uv_close((uv_handle_t *)&p->sched, on_static_closed);
        p->sched_open = 0;
    }
    dw__sim_proxy_drop_all(p);
    dw__sim_proxy_udp_close(p);
    dw__sim_proxy_serial_close(p);
}

void dw_sim_proxy_stop(dw_sim_proxy *p)
{
    if (!p || p->stopped)
        return;
    p->stopped = 1;
    dw_sim_loop_call(p->loop, proxy_close, p);
}

void dw_sim_proxy_free(dw_sim_proxy *p)
{
    if (!p)
        return;
    for (int d = 0; d < 2; d++) {
        dw_sim_engine_free(p->eng[d]);
        free(p->view[d].rules);
        dw_marshaller_free(p->frame_m[d]);
    }
    dw_sim_netfaults_free(p->net);
    dw_sim_script_free(p->script);
    dw_buf_free(&p->scratch);
    free(p);
}
