/* devwire-sim over TCP and Telnet: the device's connections.
 *
 * A connection reads into the loop's one read buffer, frames requests with
 * a push decoder, asks the engine and carries the outcome out with timers:
 * the delay before a reply and the pauses between its pieces are timers, a
 * hang is simply not answering, and while a reply is under way the
 * connection does not read (as a device busy answering would not). Writes
 * go out at once when the socket takes them, else are queued; past a bound
 * of queued bytes the connection stops reading, and a client that lets
 * nothing through for the write timeout is dropped. Everything here runs
 * on the loop thread. */
#include "device/server_tcp.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include <devwire/telnet.h>

#include "engine/engine.h"
#include "common/loop.h"
#include "common/net.h"
#include "common/memory.h"
#include "device/conn.h"
#include "device/devctl.h"
#include "device/outcome.h"
#include "device/server_listen.h"

/* One connection. Freed when its three handles are closed. */
typedef struct sim_conn {
    uv_tcp_t tcp;
    dw_sim_wire wire; /* writes to tcp; stalled: the client does not read its replies */
    uv_timer_t timer; /* a reply's delay and the pauses between its pieces */
    uv_timer_t guard; /* idle timeout and write timeout */
    int handles;      /* handles not closed yet */
    dw_sim_server *srv;
    struct sim_conn *prev, *next;
    uint64_t id;
    char peer[DW_SIM_ADDR_MAX];
    sim_gen *gen;
    dw_sim_session *sess;
    dw_decoder *dec;
    dw_telnet *telnet; /* NULL for raw TCP */
    dw_buf payload;
    dw_buf in;          /* data read but not framed yet (a reply was under way) */
    size_t in_at;       /* how much of `in` is consumed */
    dw_buf held;        /* periodic messages held back while a reply's pieces go out */
    dw_sim_player play; /* the outcome being carried out (on `timer`) */
    size_t charged;     /* bytes of --max-buffered this request holds */
    int held_large;     /* a buffer grew past DW_SIM_KEEP_BYTES once */
    int reading, eof, closing;
    int in_error; /* the Telnet filter failed: end once the data before it is served */
    uint64_t last_in, last_out; /* loop time of the last input and write progress */
    uint64_t asked_ns;          /* uv_hrtime when the request being answered was read */
    uint64_t wrote;             /* bytes written to this connection */
} sim_conn;

/* A fresh session on the generation serving now (the connection starts
 * afresh after a reload); the decoder follows the new request framing, as
 * the old generation's goes with it (called between frames, so nothing is
 * lost). */
static int conn_bind(sim_conn *c)
{
    int rc = dw__sim_bind(c->srv, &c->gen, &c->sess);
    if (rc != DW_OK || !c->dec)
        return rc;
    dw_decoder_free(c->dec);
    c->dec = dw_decoder_new(dw_sim_engine_request_marshaller(c->gen->engine));
    return c->dec ? DW_OK : DW_ENOMEM;
}

/* ---- ending a connection ----------------------------------------------------- */

static void conn_free(sim_conn *c)
{
    dw_sim_server *s = c->srv;
    dw__sim_budget_give_back(s, &c->charged);
    int held_large = c->held_large;
    dw_telnet_free(c->telnet);
    dw_decoder_free(c->dec);
    dw_sim_session_free(c->sess);
    dw__sim_gen_release(s, c->gen);
    dw_buf_free(&c->payload);
    dw_buf_free(&c->in);
    dw_buf_free(&c->held);
    dw__sim_player_free(&c->play);
    free(c);
    if (held_large) /* give what it held back to the system (memory.h) */
        dw_sim_memory_release();
}

static void on_handle_closed(uv_handle_t *h)
{
    sim_conn *c = h->data;
    if (--c->handles == 0)
        conn_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    dw_sim_player *p = h->data; /* the timer is the player's */
    sim_conn *c = p->owner;
    if (--c->handles == 0)
        conn_free(c);
}

/* Close the connection now: queued writes are dropped. */
static void conn_teardown(sim_conn *c, int reset)
{
    if (c->closing == 2)
        return;
    dw_sim_server *s = c->srv;
    if (!c->closing) {
        c->closing = 1;
        dw_sim_transcript_event(s->transcript, s->name, c->id, "close", NULL, 0, NULL, c->peer);
    }
    c->closing = 2;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    dw__sim_tcp_close(&c->tcp, reset, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->guard, on_handle_closed);
}

static void on_shutdown(void *arg)
{
    conn_teardown(arg, 0);
}

static void guard_arm(sim_conn *c);

/* Close cleanly: what is queued goes out first, then FIN (bounded by the
 * write timeout, see on_guard). */
static void conn_close(sim_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    dw_sim_transcript_event(c->srv->transcript, c->srv->name, c->id, "close", NULL, 0, NULL,
                            c->peer);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (dw__sim_shutdown(&c->tcp, on_shutdown, c) != 0) {
        conn_teardown(c, 0);
        return;
    }
    c->last_out = uv_now(c->tcp.loop);
    guard_arm(c);
}

/* The peer is gone or the socket failed: say so at a level that matches
 * how ordinary it is, and close. */
static void conn_lost(sim_conn *c, int status, const char *doing)
{
    unsigned long long id = (unsigned long long)c->id;
    if (status == UV_EOF) {
        /* What is still queued goes out before our FIN. */
        dw__sim_log(c->srv, DW_LOG_DEBUG, "%s: connection %llu closed by peer", c->peer, id);
        conn_close(c);
        return;
    }
    if (status == UV_ECONNRESET || status == UV_EPIPE)
        dw__sim_log(c->srv, DW_LOG_INFO, "%s: connection %llu lost: %s", c->peer, id,
                    uv_strerror(status));
    else
        dw__sim_log(c->srv, DW_LOG_WARN, "%s: connection %llu closed: %s %s", c->peer, id, doing,
                    uv_strerror(status));
    conn_teardown(c, 0);
}

/* ---- timeouts ---------------------------------------------------------------- */

static void on_guard(uv_timer_t *t);

/* The guard timer watches whichever deadline applies: the write timeout
 * while the client lets nothing through (or a clean close waits for it),
 * else the idle timeout. */
static void guard_arm(sim_conn *c)
{
    const dw_sim_server *s = c->srv;
    uint64_t now = uv_now(c->tcp.loop), due = UINT64_MAX;
    if (c->wire.stalled || c->closing) {
        if (s->write_timeout_ms >= 0)
            due = c->last_out + (uint64_t)s->write_timeout_ms;
    } else if (s->idle_timeout_ms >= 0) {
        due = c->last_in + (uint64_t)s->idle_timeout_ms;
    }
    if (due == UINT64_MAX)
        uv_timer_stop(&c->guard);
    else
        uv_timer_start(&c->guard, on_guard, due > now ? due - now : 0, 0);
}

static void on_guard(uv_timer_t *t)
{
    sim_conn *c = t->data;
    const dw_sim_server *s = c->srv;
    uint64_t now = uv_now(t->loop);
    unsigned long long id = (unsigned long long)c->id;
    if (c->wire.stalled || c->closing) {
        if (now < c->last_out + (uint64_t)s->write_timeout_ms) {
            guard_arm(c);
            return;
        }
        dw__sim_log(s, DW_LOG_INFO,
                    "%s: connection %llu dropped: sending a response: the client is not reading "
                    "(write timeout)",
                    c->peer, id);
        conn_teardown(c, 0);
        return;
    }
    if (c->play.phase != DW_SIM_PLAY_IDLE) /* answering: the silence is ours */
        c->last_in = now;
    if (now < c->last_in + (uint64_t)s->idle_timeout_ms) {
        guard_arm(c);
        return;
    }
    dw__sim_log(s, DW_LOG_INFO, "%s: connection %llu idle for %d ms, closing", c->peer, id,
                s->idle_timeout_ms);
    conn_teardown(c, 0);
}

/* ---- writing ----------------------------------------------------------------- */

static void update_reading(sim_conn *c);

static int wire_gone(dw_sim_wire *w)
{
    const sim_conn *c = w->owner;
    return c->closing == 2;
}

static void wire_failed(dw_sim_wire *w, int status)
{
    sim_conn *c = w->owner;
    if (status != DW_SIM_WIRE_NOMEM) {
        conn_lost(c, status, "writing:");
        return;
    }
    dw__sim_log(c->srv, DW_LOG_ERROR, "%s: connection %llu: out of memory, closing", c->peer,
                (unsigned long long)c->id);
    conn_teardown(c, 0);
}

static void wire_wrote(dw_sim_wire *w)
{
    sim_conn *c = w->owner;
    c->last_out = uv_now(c->tcp.loop);
}

/* Stalled: stop reading until the client takes its replies (and drop it
 * after the write timeout); no longer: read on. */
static void wire_stall(dw_sim_wire *w)
{
    sim_conn *c = w->owner;
    if (w->stalled)
        c->last_out = uv_now(c->tcp.loop);
    else
        c->last_in = c->last_out;
    guard_arm(c);
    update_reading(c);
}

static const dw_sim_wire_ops tcp_wire = {wire_gone, wire_failed, wire_wrote, wire_stall};

/* Write bytes as they are: at once if the socket takes them, else queued. */
static void conn_write(sim_conn *c, const uint8_t *p, size_t n)
{
    if (c->closing || n == 0)
        return;
    c->srv->bytes_out += n;
    c->wrote += n;
    dw__sim_wire_write(&c->wire, p, n);
}

/* Write data as the transport wants it (Telnet doubles 0xFF). */
static void conn_send(sim_conn *c, const uint8_t *p, size_t n)
{
    if (!c->telnet || !memchr(p, 0xff, n)) {
        conn_write(c, p, n);
        return;
    }
    dw_buf *b = &c->srv->scratch;
    dw_buf_clear(b);
    if (dw_telnet_escape(p, n, b) != DW_OK) {
        conn_teardown(c, 0);
        return;
    }
    conn_write(c, b->data, b->len);
}

/* The Telnet filter's own output (negotiation): raw. */
static int telnet_out(void *user, const uint8_t *p, size_t n)
{
    conn_write(user, p, n);
    return DW_OK;
}

/* ---- carrying out an outcome ---------------------------------------------- */

static void pump(sim_conn *c);

/* The request is handled: its bytes leave the budget, and buffers grown by
 * a large frame shrink back (memory.h). */
static void request_done(sim_conn *c)
{
    dw_sim_outcome *o = &c->play.out;
    dw__sim_budget_give_back(c->srv, &c->charged);
    if (c->payload.cap <= DW_SIM_KEEP_BYTES && o->bytes.cap <= DW_SIM_KEEP_BYTES &&
        c->in.cap <= DW_SIM_KEEP_BYTES && dw_decoder_buffered(c->dec) <= DW_SIM_KEEP_BYTES)
        return;
    c->held_large = 1;
    dw_buf_shrink(&c->payload, DW_SIM_KEEP_BYTES);
    dw_buf_clear(&o->bytes);
    dw_buf_shrink(&o->bytes, DW_SIM_KEEP_BYTES);
    dw_buf_shrink(&c->in, DW_SIM_KEEP_BYTES);
    dw_decoder_shrink(c->dec, DW_SIM_KEEP_BYTES);
}

/* This connection's next bytes would pass --max-buffered: say so once,
 * give its bytes back and close it. */
static void over_budget(sim_conn *c, const char *what, size_t n, size_t refusal)
{
    dw_sim_server *s = c->srv;
    dw__sim_log(s, DW_LOG_WARN,
                "%s: connection %llu: --max-buffered %zu reached (%s: this connection would "
                "buffer %zu bytes, all connections %zu); closing it",
                c->peer, (unsigned long long)c->id, s->max_buffered, what, c->charged + n, refusal);
    dw_sim_transcript_event(s->transcript, s->name, c->id, "fault", NULL, 0, "max-buffered", NULL);
    dw__sim_budget_give_back(s, &c->charged);
    conn_close(c);
}

static void play_write(dw_sim_player *p, const uint8_t *d, size_t n)
{
    conn_send(p->owner, d, n);
}

static void play_end(dw_sim_player *p, int reset)
{
    if (reset)
        conn_teardown(p->owner, 1);
    else
        conn_close(p->owner);
}

static int play_closing(dw_sim_player *p)
{
    const sim_conn *c = p->owner;
    return c->closing;
}

/* The reply is charged to --max-buffered before it is written. */
static int play_admit(dw_sim_player *p)
{
    sim_conn *c = p->owner;
    size_t n = p->out.bytes.len, refusal = 0;
    if (n && dw__sim_budget_take(c->srv, &c->charged, n, &refusal) != DW_OK) {
        over_budget(c, "its reply", n, refusal);
        return 1;
    }
    return 0;
}

/* The reply is out: let held periodic messages follow (unless the player
 * ended the connection, "then"), and read on. */
static void play_done(dw_sim_player *p, int replied)
{
    sim_conn *c = p->owner;
    if (!replied) {
        request_done(c);
        return;
    }
    c->last_in = uv_now(c->tcp.loop);
    if (c->srv->ctl)
        dw__sim_ctl_replied(c->srv, &p->out, c->asked_ns);
    if (c->held.len) {
        conn_send(c, c->held.data, c->held.len);
        dw_buf_clear(&c->held);
    }
    request_done(c);
}

static void play_resumed(dw_sim_player *p)
{
    pump(p->owner);
}

static const dw_sim_player_ops tcp_play = {
    play_write, play_end, play_closing, play_admit, play_done, play_resumed, 0};

/* One complete request in c->payload: decide, then act (now or later). */
static void handle_request(sim_conn *c)
{
    dw_sim_server *s = c->srv;
    if (c->gen != s->gen && conn_bind(c) != DW_OK) { /* reloaded since the last request */
        conn_teardown(c, 0);
        return;
    }
    dw_error err;
    dw_error_clear(&err);
    dw_sim_outcome *o = &c->play.out;
    int rc = dw__sim_decide(&c->play, c->gen, c->sess, c->payload.data, c->payload.len,
                            &c->asked_ns, &err);
    size_t len = c->payload.len;
    dw_buf_clear(&c->payload);
    if (rc == DW_ENOMEM) {
        dw__sim_log(s, DW_LOG_ERROR, "%s: connection %llu: out of memory, closing", c->peer,
                    (unsigned long long)c->id);
        conn_teardown(c, 0);
        return;
    }
    if (rc != DW_OK) /* a reply the framing cannot carry: the script's fault */
        dw__sim_log(s, DW_LOG_ERROR, "%s", dw_error_message(&err));
    dw__sim_report_limits(s, c->id, c->peer, o, len);
    if (o->source == DW_SIM_BY_HUNG) {
        request_done(c);
        return;
    }
    if (o->source == DW_SIM_BY_UNMATCHED)
        dw__sim_log(s, DW_LOG_INFO, "%s: connection %llu: unmatched request (%zu bytes)", c->peer,
                    (unsigned long long)c->id, len);
    dw__sim_play(&c->play);
}

/* ---- reading ------------------------------------------------------------------ */

/* Bad input on the wire: say once what happened and close this connection. */
static void bad_input(sim_conn *c, int rc, const char *message)
{
    unsigned long long id = (unsigned long long)c->id;
    if (rc == DW_ETRUNCATED)
        dw__sim_log(c->srv, DW_LOG_INFO,
                    "%s: connection %llu: client went away inside a frame (%zu bytes)", c->peer, id,
                    c->payload.len);
    else
        dw__sim_log(c->srv, DW_LOG_WARN, "%s: connection %llu: %s; closing it", c->peer, id,
                    message);
    dw_sim_transcript_event(c->srv->transcript, c->srv->name, c->id, "fault", NULL, 0,
                            rc == DW_ETRUNCATED ? "truncated frame" : dw_err_name(rc), NULL);
    conn_close(c);
}

/* Frame and serve the requests in p[0..n) while no reply is under way;
 * returns the bytes consumed. */
static size_t serve_bytes(sim_conn *c, const uint8_t *p, size_t n)
{
    size_t at = 0;
    while (at < n && !c->closing && c->play.phase == DW_SIM_PLAY_IDLE) {
        dw_error err;
        dw_error_clear(&err);
        size_t used = 0;
        int rc = dw_decoder_feed(c->dec, p + at, n - at, &used, &c->payload, &err);
        at += used;
        if (rc == DW_MORE)
            break;
        if (rc != DW_OK) {
            bad_input(c, rc, dw_error_message(&err));
            break;
        }
        handle_request(c);
    }
    return at;
}

/* No more input will come: a frame left half-way is the client's fault. */
static void end_of_input(sim_conn *c)
{
    if (c->in_error) {
        bad_input(c, c->in_error, c->telnet ? dw_telnet_error_message(c->telnet) : "bad input");
        return;
    }
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_decoder_finish(c->dec, &c->payload, &err);
    if (rc == DW_EOF) {
        conn_lost(c, UV_EOF, "");
        return;
    }
    bad_input(c, rc, dw_error_message(&err));
}

/* Serve what was read and held back, then decide whether to read on. */
static void pump(sim_conn *c)
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
    if (c->play.phase == DW_SIM_PLAY_IDLE && c->in.len == 0 && c->eof) {
        end_of_input(c);
        return;
    }
    update_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    sim_conn *c = h->data;
    (void)hint;
    size_t size;
    uint8_t *p = dw_sim_loop_read_buffer(c->srv->loop, &size);
    *b = uv_buf_init((char *)p, (unsigned)size);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    sim_conn *c = st->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            conn_lost(c, (int)nread, "reading:");
            return;
        }
        c->eof = 1;
        pump(c);
        return;
    }
    const uint8_t *p = (const uint8_t *)b->base;
    size_t n = (size_t)nread;
    dw_sim_tcp_ack ack = c->gen->script->tcp_ack;
    int quick =
        ack == DW_SIM_TCP_ACK_QUICK || (ack == DW_SIM_TCP_ACK_DEFAULT && !c->srv->delayed_ack);
    uint64_t wrote = c->wrote;
    c->last_in = uv_now(st->loop);
    c->srv->bytes_in += n;
    size_t refusal = 0;
    if (dw__sim_budget_take(c->srv, &c->charged, n, &refusal) != DW_OK) {
        over_budget(c, "reading a request", n, refusal);
        return;
    }
    if (c->telnet) {
        int rc = dw_telnet_feed(c->telnet, p, n, &c->in);
        if (rc != DW_OK) {
            c->in_error = rc;
            c->eof = 1;
        }
    } else {
        size_t used = c->in.len == 0 ? serve_bytes(c, p, n) : 0;
        if (used < n && !c->closing && dw_buf_append(&c->in, p + used, n - used) != DW_OK) {
            conn_teardown(c, 0);
            return;
        }
    }
    pump(c);
    /* What this read brought got no answer yet (a command, part of a
     * request, a delayed reply): ACK it now, so that a client whose Nagle
     * holds its next request for our ACK need not wait for the delayed
     * one. An answer carries the ACK itself, and a syscall and a bare ACK
     * per request are a fifth of the loop's work under load. */
    if (quick && c->wrote == wrote && !c->closing)
        dw__sim_quickack(&c->tcp);
}

/* Read while idle, not stalled and not finished. */
static void update_reading(sim_conn *c)
{
    int want = !c->closing && !c->eof && !c->wire.stalled && c->play.phase == DW_SIM_PLAY_IDLE;
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
    free(h);
}

/* Telnet's opening offers and the banner. */
static int conn_greet(sim_conn *c)
{
    dw_sim_server *s = c->srv;
    if (c->gen->script->transport == DW_SIM_TELNET) {
        const dw_sim_telnet_opts *opts = &c->gen->script->telnet;
        dw_telnet_options to;
        dw_telnet_options_init(&to);
        to.server = 1;
        to.echo = 0;
        to.cr_nul = 1; /* a "\r" sentinel ends a CR NUL line as it ends a bare CR */
        to.table = opts->set;
        memcpy(to.will, opts->will, sizeof to.will);
        memcpy(to.ask, opts->ask, sizeof to.ask);
        to.name = c->peer;
        to.logger = s->logger;
        c->telnet = dw_telnet_new(&to, NULL, telnet_out, c);
        if (!c->telnet)
            return DW_ENOMEM;
        dw_telnet_start(c->telnet);
    }
    dw_buf banner = DW_BUF_INIT;
    int rc = dw_sim_engine_banner(c->gen->engine, c->sess, &banner);
    if (rc == DW_OK && banner.len) {
        conn_send(c, banner.data, banner.len);
        dw_sim_transcript_event(s->transcript, s->name, c->id, "out", banner.data, banner.len,
                                "banner", NULL);
    }
    dw_buf_free(&banner);
    return rc;
}

static void conn_open(dw_sim_server *s, sim_conn *c)
{
    uv_loop_t *uv = dw_sim_loop_uv(s->loop);
    uv_timer_init(uv, &c->timer);
    uv_timer_init(uv, &c->guard);
    c->guard.data = c;
    c->handles = 3;
    c->id = ++s->next_id;
    dw__sim_player_init(&c->play, &tcp_play, c, s, &c->timer);
    c->play.id = c->id;
    c->timer.data = &c->play;
    c->last_in = c->last_out = uv_now(uv);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    uv_tcp_nodelay(&c->tcp, 1);
    dw_sim_transcript_event(s->transcript, s->name, c->id, "open", NULL, 0, NULL, c->peer);
    int rc = conn_bind(c);
    if (rc == DW_OK)
        rc = (c->dec = dw_decoder_new(dw_sim_engine_request_marshaller(c->gen->engine)))
                 ? DW_OK
                 : DW_ENOMEM;
    if (rc == DW_OK)
        rc = conn_greet(c);
    if (rc != DW_OK) {
        dw__sim_log(s, DW_LOG_ERROR, "%s: connection %llu: %s, closing", c->peer,
                    (unsigned long long)c->id, dw_strerror(rc));
        conn_teardown(c, 0);
        return;
    }
    dw__sim_log(s, DW_LOG_DEBUG, "%s: connection %llu open", c->peer, (unsigned long long)c->id);
    guard_arm(c);
    update_reading(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    dw_sim_server *s = l->data;
    if (status < 0) {
        dw__sim_log(s, DW_LOG_ERROR, "accept %s: %s", s->addr, uv_strerror(status));
        return;
    }
    sim_conn *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(l->loop, &c->tcp) != 0) {
        free(c);
        dw__sim_log(s, DW_LOG_ERROR, "accept %s: out of memory", s->addr);
        return;
    }
    c->tcp.data = c;
    c->srv = s;
    c->wire = (dw_sim_wire){&c->tcp, &tcp_wire, c, 0};
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    s->accepted++;
    dw__sim_peer_name(&c->tcp, c->peer, sizeof c->peer);
    if (s->nconns >= s->max_connections) {
        dw__sim_log(s, DW_LOG_WARN, "%s: refused: connection limit (%zu) reached", c->peer,
                    s->max_connections);
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    conn_open(s, c);
}

/* ---- periodic messages ----------------------------------------------------- */

static void periodic_to(sim_conn *c, size_t i)
{
    dw_sim_server *s = c->srv;
    dw_buf *msg = &s->msg;
    dw_error err;
    dw_error_clear(&err);
    dw_buf_clear(msg);
    if (dw_sim_engine_periodic(c->gen->engine, c->sess, i, msg, &err) != DW_OK) {
        dw__sim_log(s, DW_LOG_ERROR, "%s", dw_error_message(&err));
        return;
    }
    dw_sim_transcript_event(s->transcript, s->name, c->id, "periodic", msg->data, msg->len, NULL,
                            NULL);
    if (c->play.phase == DW_SIM_PLAY_PIECES) { /* never between a reply's pieces */
        if (dw_buf_append(&c->held, msg->data, msg->len) != DW_OK)
            conn_teardown(c, 0);
        return;
    }
    conn_send(c, msg->data, msg->len);
}

static void each_session(dw_sim_server *s, void (*fn)(dw_sim_session *ss, void *arg), void *arg)
{
    for (sim_conn *c = s->conns; c; c = c->next)
        if (c->gen == s->gen && c->sess)
            fn(c->sess, arg);
}

static void disconnect_all(dw_sim_server *s)
{
    for (sim_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        dw_sim_transcript_event(s->transcript, s->name, c->id, "fault", NULL, 0, "disconnect_all",
                                NULL);
        conn_close(c);
    }
}

/* ---- the transport ---------------------------------------------------------- */

static int tcp_open(dw_sim_server *s, const dw_sim_server_options *o, dw_error *err)
{
    int fd = -1;
    const char *host = o->host ? o->host : "127.0.0.1";
    int rc = dw_sim_net_bind(host, o->port, SOCK_STREAM, 512, &fd, s->addr, &s->port, err);
    return rc == DW_OK ? dw__sim_listen_on(s, fd, on_connection, err) : rc;
}

/* Stop accepting (and no resume once a pending close completes), close
 * every connection. */
static void tcp_close(dw_sim_server *s)
{
    dw__sim_listen_pause(s);
    while (s->conns)
        conn_teardown(s->conns, 0);
}

static void tcp_periodic(dw_sim_server *s, size_t i)
{
    for (sim_conn *c = s->conns, *next; c; c = next) {
        next = c->next; /* a failed write may close c */
        if (c->gen == s->gen && !c->closing && !dw_sim_session_hung(c->sess))
            periodic_to(c, i);
    }
}

const dw_sim_transport_ops dw__sim_tcp_transport = {tcp_open,
                                                    tcp_close,
                                                    tcp_periodic,
                                                    each_session,
                                                    disconnect_all,
                                                    dw__sim_listen_pause,
                                                    dw__sim_listen_resume};
