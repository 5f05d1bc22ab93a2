/* devwire-sim over VXI-11: the channels.
 *
 * The core channel (ONC RPC program 0x0607AF, version 1) listens on the
 * device's address, the abort channel (0x0607B0) on a port of its own that
 * create_link announces, and the portmapper (vxi11_pmap.c) tells clients
 * where the core channel is. Each connection reads RPC records (record
 * marking, model/vxi11_rpc.c), answers each call through the procedures of
 * vxi11_core.c, and writes the reply. A call that must wait (a lock, an
 * empty output queue, a reply being played) parks its connection, which
 * reads no further call until it is answered: at its deadline, or earlier
 * when something it waits for changes. Everything runs on the device's
 * loop: no thread, no blocking svc_run. */
#include "device/server_vxi11.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/memory.h"
#include "common/net.h"
#include "device/server_listen.h"
#include "device/vxi11_int.h"

/* The largest record a client may send: a device_write of maxRecvSize
 * bytes, or of 1 MiB from a client that ignores it, and the header. */
#define RECORD_SLACK 4096
#define RECORD_MIN   ((size_t)1 << 20)

/* ---- ending a connection ------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
    vx_conn *c = h->data;
    if (--c->handles)
        return;
    sim_vxi11 *vx = c->vx;
    dw_buf_free(&c->record);
    dw_buf_free(&c->in);
    dw_buf_free(&c->reply);
    free(c);
    dw__vxi11_unref(vx);
}

static void conn_teardown(vx_conn *c, int reset)
{
    if (c->closing == 2)
        return;
    sim_vxi11 *vx = c->vx;
    dw_sim_server *s = vx->srv;
    if (!c->closing)
        dw_sim_transcript_event(s->transcript, s->name, c->id, "close", NULL, 0, NULL, c->peer);
    c->closing = 2;
    if (c->prev)
        c->prev->next = c->next;
    else
        vx->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    dw__vxi11_conn_gone(c);
    dw__sim_tcp_close(&c->tcp, reset, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_shutdown(void *arg)
{
    conn_teardown(arg, 0);
}

/* Close cleanly: what is queued goes out, then FIN. */
static void conn_close(vx_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    dw_sim_transcript_event(c->vx->srv->transcript, c->vx->srv->name, c->id, "close", NULL, 0, NULL,
                            c->peer);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (dw__sim_shutdown(&c->tcp, on_shutdown, c) != 0)
        conn_teardown(c, 0);
}

static void end_conn(vx_conn *c, int reset)
{
    if (reset)
        conn_teardown(c, 1);
    else
        conn_close(c);
}

/* ---- writing ------------------------------------------------------------------ */

static int wire_gone(dw_sim_wire *w)
{
    const vx_conn *c = w->owner;
    return c->closing == 2;
}

static void wire_failed(dw_sim_wire *w, int status)
{
    vx_conn *c = w->owner;
    if (status != DW_SIM_WIRE_NOMEM && status != UV_ECONNRESET && status != UV_EPIPE)
        dw__sim_log(c->vx->srv, DW_LOG_WARN, "%s: VXI-11 connection %llu: writing: %s", c->peer,
                    (unsigned long long)c->id, uv_strerror(status));
    conn_teardown(c, 0);
}

static void update_reading(vx_conn *c);

static void wire_stall(dw_sim_wire *w)
{
    update_reading(w->owner);
}

static const dw_sim_wire_ops vx_wire = {wire_gone, wire_failed, NULL, wire_stall};

/* ---- answering calls ---------------------------------------------------------- */

static void pump(vx_conn *c);

/* The reply of the call just answered goes out; the next call may come. */
static void send_reply(vx_conn *c)
{
    uv_timer_stop(&c->timer);
    if (c->reply.len == 0) { /* no memory for it */
        conn_teardown(c, 0);
        return;
    }
    c->vx->srv->bytes_out += c->reply.len;
    dw__sim_wire_write(&c->wire, c->reply.data, c->reply.len);
    if (c->reply.cap > DW_SIM_KEEP_BYTES)
        dw_buf_shrink(&c->reply, DW_SIM_KEEP_BYTES);
    dw_buf_clear(&c->record);
    if (c->record.cap > DW_SIM_KEEP_BYTES)
        dw_buf_shrink(&c->record, DW_SIM_KEEP_BYTES);
}

static void on_due(uv_timer_t *t);

/* Ask the procedures about c's call; send the answer, or park the call. */
static void run_call(vx_conn *c)
{
    uint64_t now = uv_now(c->tcp.loop);
    if (dw__vxi11_call(c, now) == VX_ANSWERED) {
        send_reply(c);
        return;
    }
    uv_timer_start(&c->timer, on_due, c->due > now ? c->due - now : 0, 0);
}

static void on_due(uv_timer_t *t)
{
    vx_conn *c = t->data;
    if (c->waiting == VX_WAIT_NONE || c->closing)
        return;
    run_call(c);
    pump(c);
}

/* One whole record: an RPC call to answer (now or later). */
static void handle_record(vx_conn *c)
{
    dw_error err;
    dw_error_clear(&err);
    dw_sim_rpc_call *call = &c->call;
    if (dw_sim_rpc_call_decode(c->record.data, c->record.len, call, &err) != DW_OK) {
        dw__sim_log(c->vx->srv, DW_LOG_WARN, "%s: VXI-11 connection %llu: %s; closing it", c->peer,
                    (unsigned long long)c->id, dw_error_message(&err));
        conn_close(c);
        return;
    }
    int rc = DW_OK;
    if (call->rpcvers != 2) {
        rc = dw_sim_rpc_reply_rpc_mismatch(&c->reply, call->xid);
    } else if (call->prog != c->prog) {
        rc = dw_sim_rpc_reply_begin(&c->reply, call->xid, DW_RPC_PROG_UNAVAIL);
    } else if (call->vers != DW_VXI11_VERS) {
        const uint32_t range[] = {DW_VXI11_VERS, DW_VXI11_VERS};
        rc = dw_sim_rpc_reply_begin(&c->reply, call->xid, DW_RPC_PROG_MISMATCH);
        if (rc == DW_OK)
            rc = dw_sim_rpc_put_u32(&c->reply, range, 2);
    } else if (call->proc == 0) { /* NULL: a ping */
        rc = dw_sim_rpc_reply_begin(&c->reply, call->xid, DW_RPC_SUCCESS);
    } else {
        rc = dw_sim_vxi11_args_decode(call->prog, call->proc, call->args, call->nargs, &c->args,
                                      &err);
        if (rc == DW_OK) {
            run_call(c);
            return;
        }
        rc = dw_sim_rpc_reply_begin(&c->reply, call->xid,
                                    rc == DW_ENOENT ? DW_RPC_PROC_UNAVAIL : DW_RPC_GARBAGE_ARGS);
    }
    if (rc == DW_OK && call->rpcvers == 2)
        dw_sim_rpc_reply_end(&c->reply);
    if (rc != DW_OK)
        dw_buf_clear(&c->reply);
    send_reply(c);
}

/* Serve the calls in p[0..n) while none waits; the bytes consumed. */
static size_t serve_bytes(vx_conn *c, const uint8_t *p, size_t n)
{
    size_t at = 0;
    while (at < n && !c->closing && c->waiting == VX_WAIT_NONE) {
        dw_error err;
        dw_error_clear(&err);
        size_t used = 0;
        int rc = dw_sim_rpc_rm_feed(&c->rm, p + at, n - at, &used, &c->record, &err);
        at += used;
        if (rc == DW_MORE)
            break;
        if (rc != DW_OK) {
            dw__sim_log(c->vx->srv, DW_LOG_WARN, "%s: VXI-11 connection %llu: %s; closing it",
                        c->peer, (unsigned long long)c->id, dw_error_message(&err));
            conn_close(c);
            break;
        }
        handle_record(c);
    }
    return at;
}

/* Serve what was held back, then decide whether to read on. */
static void pump(vx_conn *c)
{
    if (c->closing)
        return;
    c->in_at += serve_bytes(c, c->in.data + c->in_at, c->in.len - c->in_at);
    if (c->in_at == c->in.len) {
        dw_buf_clear(&c->in);
        c->in_at = 0;
    }
    if (c->closing)
        return;
    if (c->waiting == VX_WAIT_NONE && c->in.len == 0 && c->eof) {
        if (dw_sim_rpc_rm_partial(&c->rm))
            dw__sim_log(c->vx->srv, DW_LOG_INFO,
                        "%s: VXI-11 connection %llu: client went away inside a record", c->peer,
                        (unsigned long long)c->id);
        conn_close(c);
        return;
    }
    update_reading(c);
}

/* Look at every waiting call again (the wake timer: never from inside a
 * procedure). */
static void on_wake(uv_timer_t *t)
{
    sim_vxi11 *vx = t->data;
    for (vx_conn *c = vx->conns, *next; c; c = next) {
        next = c->next;
        if (c->waiting != VX_WAIT_NONE && !c->closing) {
            run_call(c);
            pump(c);
        }
    }
}

static void wake(sim_vxi11 *vx)
{
    if (!vx->closed)
        uv_timer_start(&vx->wake_timer, on_wake, 0, 0);
}

/* ---- reading ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    vx_conn *c = h->data;
    (void)hint;
    size_t size;
    uint8_t *p = dw_sim_loop_read_buffer(c->vx->srv->loop, &size);
    *b = uv_buf_init((char *)p, (unsigned)size);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    vx_conn *c = st->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            if (nread != UV_ECONNRESET)
                dw__sim_log(c->vx->srv, DW_LOG_WARN, "%s: VXI-11 connection %llu: reading: %s",
                            c->peer, (unsigned long long)c->id, uv_strerror((int)nread));
            conn_teardown(c, 0);
            return;
        }
        c->eof = 1;
        pump(c);
        return;
    }
    const uint8_t *p = (const uint8_t *)b->base;
    size_t n = (size_t)nread;
    c->vx->srv->bytes_in += n;
    size_t used = c->in.len == 0 ? serve_bytes(c, p, n) : 0;
    if (used < n && !c->closing && dw_buf_append(&c->in, p + used, n - used) != DW_OK) {
        conn_teardown(c, 0);
        return;
    }
    pump(c);
}

/* Read while no call waits, the peer takes its replies and has not ended. */
static void update_reading(vx_conn *c)
{
    int want = !c->closing && !c->eof && !c->wire.stalled && c->waiting == VX_WAIT_NONE;
    if (want == c->reading)
        return;
    c->reading = want;
    if (want)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->tcp);
}

/* ---- accepting ---------------------------------------------------------------- */

static void on_refused_closed(uv_handle_t *h)
{
    free(h->data);
}

/* create_intr_chan's address 0 means this one. */
static uint32_t peer_ipv4(uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != AF_INET)
        return 0;
    return ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr);
}

static void accept_on(uv_stream_t *l, int status, sim_vxi11 *vx, uint32_t prog)
{
    dw_sim_server *s = vx->srv;
    if (status < 0) {
        dw__sim_log(s, DW_LOG_ERROR, "accept %s: %s", s->addr, uv_strerror(status));
        return;
    }
    vx_conn *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(l->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || s->nconns >= s->max_connections) {
        if (s->nconns >= s->max_connections)
            dw__sim_log(s, DW_LOG_WARN, "refused: connection limit (%zu) reached",
                        s->max_connections);
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    s->accepted++;
    c->vx = vx;
    vx->refs++;
    c->prog = prog;
    c->wire = (dw_sim_wire){&c->tcp, &vx_wire, c, 0};
    c->handles = 2;
    uv_timer_init(l->loop, &c->timer);
    c->timer.data = c;
    c->id = ++s->next_id;
    dw_sim_rpc_rm_init(&c->rm, s->gen->script->vxi11_max_recv + RECORD_SLACK > RECORD_MIN
                                   ? s->gen->script->vxi11_max_recv + RECORD_SLACK
                                   : RECORD_MIN);
    dw__sim_peer_name(&c->tcp, c->peer, sizeof c->peer);
    c->peer_addr = peer_ipv4(&c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = vx->conns;
    if (vx->conns)
        vx->conns->prev = c;
    vx->conns = c;
    s->nconns++;
    dw_sim_transcript_event(s->transcript, s->name, c->id, "open", NULL, 0, NULL, c->peer);
    update_reading(c);
}

static void on_core_connection(uv_stream_t *l, int status)
{
    dw_sim_server *s = l->data;
    accept_on(l, status, s->vxi11, DW_VXI11_CORE_PROG);
}

static void on_abort_connection(uv_stream_t *l, int status)
{
    accept_on(l, status, l->data, DW_VXI11_ABORT_PROG);
}

/* ---- the transport -------------------------------------------------------------- */

static void on_vx_handle_closed(uv_handle_t *h)
{
    dw__vxi11_unref(h->data);
}

/* The abort channel's listener, on the core channel's host. */
static int abort_open(sim_vxi11 *vx, const char *host, uint16_t port, dw_error *err)
{
    int fd = -1;
    char addr[DW_SIM_ADDR_MAX];
    int rc = dw_sim_net_bind(host, port, SOCK_STREAM, 64, &fd, addr, &vx->abort_port, err);
    if (rc != DW_OK)
        return rc;
    uv_tcp_init(dw_sim_loop_uv(vx->srv->loop), &vx->abort_listener);
    vx->abort_listener.data = vx;
    vx->refs++;
    return dw__sim_listen_fd(&vx->abort_listener, fd, on_abort_connection, addr, err);
}

static int vxi11_open(dw_sim_server *s, const dw_sim_server_options *o, dw_error *err)
{
    sim_vxi11 *vx = calloc(1, sizeof *vx);
    if (!vx)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    vx->srv = s;
    vx->refs = 2; /* the server's, and the wake timer's */
    vx->wake = wake;
    vx->end = end_conn;
    vx->next_lid = 0;
    uv_timer_init(dw_sim_loop_uv(s->loop), &vx->wake_timer);
    vx->wake_timer.data = vx;
    s->vxi11 = vx;
    const char *host = o->host ? o->host : "127.0.0.1";
    int fd = -1;
    /* The core channel's socket is bound first (the portmapper answers with
     * its port) and becomes the server's listener last: a handle embedded
     * in the server must not be left closing when opening fails, since the
     * server is freed before a shared loop runs its close callbacks. */
    int rc = dw_sim_net_bind(host, o->port, SOCK_STREAM, 512, &fd, s->addr, &s->port, err);
    if (rc == DW_OK)
        rc = abort_open(vx, host, (uint16_t)o->abort_port, err);
    char *bound = NULL;
    uint16_t port = 0;
    if (rc == DW_OK && dw_sim_parse_hostport(s->addr, &bound, &port) != 0)
        rc = dw_error_set(err, DW_EINVAL, "vxi11 %s: not HOST:PORT", s->addr);
    if (rc == DW_OK && o->portmapper >= 0)
        rc = dw__sim_pmap_open(dw_sim_loop_uv(s->loop), bound, (uint16_t)o->portmapper, s->port,
                               s->logger, &vx->pmap, err);
    if (rc == DW_OK) {
        rc = dw__sim_listen_on(s, fd, on_core_connection, err);
        fd = -1; /* the listener's, or closed */
    }
    if (fd >= 0)
        close(fd);
    const dw_sim_script *script = s->gen->script;
    const char *dev = script->nvxi11_devices ? script->vxi11_devices[0] : "inst0";
    if (rc == DW_OK && vx->pmap)
        snprintf(s->resource, sizeof s->resource, "TCPIP::%s::%s::INSTR (portmapper %s%s)", bound,
                 dev, dw__sim_pmap_address(vx->pmap),
                 dw__sim_pmap_registered(vx->pmap) ? ", rpcbind" : "");
    else if (rc == DW_OK)
        snprintf(s->resource, sizeof s->resource, "TCPIP::%s::%s::INSTR (no portmapper)", bound,
                 dev);
    free(bound);
    return rc;
}

static void vxi11_close(dw_sim_server *s)
{
    sim_vxi11 *vx = s->vxi11;
    if (!vx || vx->closed)
        return;
    vx->closed = 1;
    dw__sim_listen_pause(s);
    while (vx->conns)
        conn_teardown(vx->conns, 0);
    dw__sim_pmap_close(vx->pmap);
    vx->pmap = NULL;
    if (vx->abort_listener.data)
        uv_close((uv_handle_t *)&vx->abort_listener, on_vx_handle_closed);
    uv_close((uv_handle_t *)&vx->wake_timer, on_vx_handle_closed);
    s->vxi11 = NULL;
    dw__vxi11_unref(vx); /* the server's */
}

/* VXI-11 has no unsolicited output: periodic messages are not sent. */
static void vxi11_periodic(dw_sim_server *s, size_t i)
{
    (void)s;
    (void)i;
}

static void each_session(dw_sim_server *s, void (*fn)(dw_sim_session *ss, void *arg), void *arg)
{
    if (s->vxi11)
        dw__vxi11_each_session(s->vxi11, fn, arg);
}

static void disconnect_all(dw_sim_server *s)
{
    for (vx_conn *c = s->vxi11 ? s->vxi11->conns : NULL, *next; c; c = next) {
        next = c->next;
        dw_sim_transcript_event(s->transcript, s->name, c->id, "fault", NULL, 0, "disconnect_all",
                                NULL);
        conn_close(c);
    }
}

const dw_sim_transport_ops dw__sim_vxi11_transport = {
    vxi11_open,     vxi11_close,          vxi11_periodic,       each_session,
    disconnect_all, dw__sim_listen_pause, dw__sim_listen_resume};
