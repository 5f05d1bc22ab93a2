/* devwire-sim's recording and fault-injecting proxy, a connection's bytes:
 * reading, framing, the rules' outcomes, the timed queue and writing (see
 * proxy_conn.h; opening a connection and its faults are proxy_open.c's). */
#include "record/proxy_conn.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include <devwire/telnet.h>

#include "engine/engine.h"
#include "common/loop.h"
#include "common/net.h"
#include "record/proxy_fuzz.h"
#include "record/record.h"
#include "device/conn.h"
#include "device/server_int.h"

/* How long a client's read waits for the device's answer to carry its ACK
 * before it is acknowledged alone: a driver with Nagle on that sends a
 * command with no answer, then a query, waits this long (not Linux's
 * 40 ms delayed ACK). */
#define ACK_LATER_MS 2

/* ---- ending a connection ------------------------------------------------------ */

static void items_free(leg *l)
{
    for (item *it = l->head, *next; it; it = next) {
        next = it->next;
        free(it);
    }
    l->head = l->tail = NULL;
}

static void conn_free(pconn *c)
{
    for (int d = 0; d < 2; d++) {
        leg *l = &c->legs[d];
        items_free(l);
        dw_telnet_free(l->telnet);
        dw_decoder_free(l->dec);
        dw_sim_session_free(l->sess);
        dw_buf_free(&l->data);
        dw_buf_free(&l->payload);
        dw_buf_free(&l->raw);
        dw_sim_outcome_free(&l->out);
        dw__sim_fuzz_leg_free(&l->fz);
        dw__sim_tap_free(&l->tap);
    }
    free(c);
}

static void on_closed(uv_handle_t *h)
{
    pconn *c = h->data;
    if (--c->handles == 0)
        conn_free(c);
}

static void on_leg_timer_closed(uv_handle_t *h)
{
    leg *l = h->data; /* a leg's timer points at its leg */
    if (--l->c->handles == 0)
        conn_free(l->c);
}

static void on_ack_due(uv_timer_t *t)
{
    pconn *c = t->data;
    dw__sim_quickack(&c->down);
}

/* The client's ACKs, as a device gives them (server_tcp.c): a read the
 * device has not answered within ACK_LATER_MS is acknowledged then (the
 * proxy cannot know at the read whether an answer will come; a quick ACK
 * after every read cost a syscall and a bare ACK per round trip, a third
 * of the proxy's CPU at 64 connections); the answer carries the ACK
 * otherwise. "quickack": true acknowledges every read at once. */
static void acknowledge(pconn *c, int dir)
{
    dw_sim_proxy *px = c->px;
    dw_sim_tcp_ack ack = px->script ? px->script->tcp_ack : DW_SIM_TCP_ACK_DEFAULT;
    if (dir == DW_SIM_DIR_REPLY)
        uv_timer_stop(&c->ack);
    else if (ack == DW_SIM_TCP_ACK_QUICK)
        dw__sim_quickack(&c->down);
    else if (ack == DW_SIM_TCP_ACK_DEFAULT && !px->delayed_ack &&
             !uv_is_active((uv_handle_t *)&c->ack))
        uv_timer_start(&c->ack, on_ack_due, ACK_LATER_MS, 0);
}

/* Close both sides now: the client's with RST when reset_down, the
 * device's with RST when reset_up; what waits is dropped. */
void dw__sim_pconn_teardown(pconn *c, int reset_down, int reset_up)
{
    if (c->closing)
        return;
    dw_sim_proxy *p = c->px;
    c->closing = 1;
    dw_sim_transcript_event(p->raw ? NULL : p->transcript, NULL, c->id, "close", NULL, 0, NULL,
                            c->peer);
    if (p->rec)
        dw_sim_recorder_close(p->rec, c->id, dw__sim_pconn_now_us());
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    p->nconns--;
    dw__sim_tcp_close(&c->down, reset_down, on_closed);
    dw__sim_tcp_close(&c->up, reset_up && c->connected, on_closed);
    uv_close((uv_handle_t *)&c->guard, on_closed);
    uv_close((uv_handle_t *)&c->ack, on_closed);
    for (int d = 0; d < 2; d++)
        uv_close((uv_handle_t *)&c->legs[d].timer, on_leg_timer_closed);
}

void dw__sim_pconn_fault(pconn *c, const char *what)
{
    dw_sim_transcript_event(c->px->raw ? NULL : c->px->transcript, NULL, c->id, "fault", NULL, 0,
                            what, NULL);
}

/* ---- writing --------------------------------------------------------------------- */

static int wire_gone(dw_sim_wire *w)
{
    const leg *l = w->owner;
    return l->c->closing;
}

static void wire_failed(dw_sim_wire *w, int status)
{
    leg *l = w->owner;
    (void)status;
    dw__sim_pconn_teardown(l->c, 0, 0);
}

/* The destination stopped (or went back to) taking what comes: stop (or
 * go on) reading the source. */
static void wire_stall(dw_sim_wire *w)
{
    dw__sim_pleg_reading(w->owner);
}

static const dw_sim_wire_ops leg_wire = {wire_gone, wire_failed, NULL, wire_stall};

void dw__sim_pleg_init(leg *l, pconn *c, int dir)
{
    l->c = c;
    l->dir = dir;
    l->src = dir == DW_SIM_DIR_REQUEST ? &c->down : &c->up;
    l->dst = dir == DW_SIM_DIR_REQUEST ? &c->up : &c->down;
    l->wire = (dw_sim_wire){l->dst, &leg_wire, l, 0};
    uv_timer_init(dw_sim_loop_uv(c->px->loop), &l->timer);
    l->timer.data = l;
    dw_sim_outcome_init(&l->out);
}

/* Raw bytes to the leg's destination: at once if the socket takes them. */
void dw__sim_pleg_raw_write(leg *l, const uint8_t *p, size_t n)
{
    if (l->c->closing || n == 0)
        return;
    dw__sim_wire_write(&l->wire, p, n);
}

/* Data bytes out: Telnet doubles 0xFF. */
static void data_write(leg *l, const uint8_t *p, size_t n)
{
    if (!dw__sim_proxy_telnet(l->c->px) || !memchr(p, 0xff, n)) {
        dw__sim_pleg_raw_write(l, p, n);
        return;
    }
    dw_buf *b = &l->c->px->scratch;
    dw_buf_clear(b);
    if (dw_telnet_escape(p, n, b) != DW_OK) {
        dw__sim_pconn_teardown(l->c, 0, 0);
        return;
    }
    dw__sim_pleg_raw_write(l, b->data, b->len);
}

static void on_shutdown(void *arg)
{
    leg *l = arg;
    pconn *c = l->c;
    if (!c->closing && c->legs[0].ended && c->legs[1].ended)
        dw__sim_pconn_teardown(c, 0, 0);
}

/* The direction is over: FIN to its destination once its writes are out. */
static void leg_end(leg *l)
{
    if (l->ended || l->c->closing)
        return;
    l->ended = 1;
    if (dw__sim_shutdown(l->dst, on_shutdown, l) != 0) {
        if (l->c->legs[0].ended && l->c->legs[1].ended)
            dw__sim_pconn_teardown(l->c, 0, 0);
    }
}

/* ---- the timed queue --------------------------------------------------------------- */

static void on_leg_timer(uv_timer_t *t);

/* Carry out what is due, then wait for the next. */
static void leg_drain(leg *l)
{
    pconn *c = l->c;
    uint64_t now = dw__sim_pconn_now_us();
    while (l->head && !c->closing && l->head->due_us <= now + 500) {
        item *it = l->head;
        l->head = it->next;
        if (!l->head)
            l->tail = NULL;
        l->queued -= it->len;
        switch (it->kind) {
        case ITEM_DATA:
            data_write(l, it->data, it->len);
            break;
        case ITEM_CLOSE:
            dw__sim_pconn_teardown(c, 0, 0);
            break;
        case ITEM_RESET:
            dw__sim_pconn_teardown(c, 1, 0);
            break;
        case ITEM_END:
            leg_end(l);
            break;
        case ITEM_HANG:
            c->hung = 1;
            break;
        }
        free(it);
    }
    if (l->held && l->queued <= DW_SIM_WRITE_QUEUE_LIMIT / 2 && !c->closing) {
        l->held = 0;
        dw__sim_pleg_reading(l);
    }
    if (c->closing || !l->head)
        return;
    uint64_t wait_ms = (l->head->due_us - now + 999) / 1000;
    uv_timer_start(&l->timer, on_leg_timer, wait_ms, 0);
}

static void on_leg_timer(uv_timer_t *t)
{
    leg_drain(t->data);
}

/* Queue an item due at due_us (never before the last one queued). */
static int enqueue(leg *l, item_kind kind, const uint8_t *p, size_t n, uint64_t due_us)
{
    item *it = malloc(sizeof *it + n);
    if (!it)
        return DW_ENOMEM;
    it->next = NULL;
    it->kind = kind;
    it->len = n;
    if (n)
        memcpy(it->data, p, n);
    it->due_us = l->tail && l->tail->due_us > due_us ? l->tail->due_us : due_us;
    l->queued += n;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    return DW_OK;
}

typedef struct plan_ctx {
    leg *l;
    const uint8_t *p;
    uint64_t extra_us;
    int rc;
} plan_ctx;

static void plan_piece(void *user, size_t off, size_t len, uint64_t due_us)
{
    plan_ctx *pc = user;
    if (pc->rc == DW_OK)
        pc->rc = enqueue(pc->l, ITEM_DATA, pc->p + off, len, due_us + pc->extra_us);
}

/* Data out through the network faults, `delay_ms` later. */
void dw__sim_pleg_emit(leg *l, const uint8_t *p, size_t n, unsigned delay_ms)
{
    pconn *c = l->c;
    if (c->closing || c->hung || n == 0)
        return;
    if (!l->head && !delay_ms && !dw_sim_shaper_active(&l->sh)) {
        data_write(l, p, n);
        return;
    }
    plan_ctx pc = {l, p, (uint64_t)delay_ms * 1000, DW_OK};
    int close = 0;
    dw_sim_shaper_plan(&l->sh, &c->rng, dw__sim_pconn_now_us(), n, plan_piece, &pc, &close);
    if (pc.rc == DW_OK && close) {
        dw__sim_pconn_fault(c, l->dir ? "reply.limit_data" : "request.limit_data");
        pc.rc = enqueue(l, ITEM_CLOSE, NULL, 0, dw__sim_pconn_now_us());
    }
    if (pc.rc != DW_OK) {
        dw__sim_pconn_teardown(c, 0, 0);
        return;
    }
    if (!l->held && l->queued > DW_SIM_WRITE_QUEUE_LIMIT) { /* a slow line: stop reading */
        l->held = 1;
        dw__sim_pleg_reading(l);
    }
    leg_drain(l);
}

/* An action (close, reset, hang, end) after what is queued, `delay_ms` later. */
static void emit_action(leg *l, item_kind kind, unsigned delay_ms)
{
    if (enqueue(l, kind, NULL, 0, dw__sim_pconn_now_us() + (uint64_t)delay_ms * 1000) != DW_OK)
        dw__sim_pconn_teardown(l->c, 0, 0);
    else
        leg_drain(l);
}

/* ---- frames and rules ------------------------------------------------------------ */

/* Bytes in pieces as a rule's split says, starting delay_ms from now. */
static void emit_split(leg *l, const dw_sim_outcome *o, const uint8_t *p, size_t n,
                       unsigned delay_ms)
{
    if (!o->nsplit) {
        dw__sim_pleg_emit(l, p, n, delay_ms);
        return;
    }
    size_t k = 0;
    for (size_t at = 0; at < n; k++) {
        size_t piece = dw__sim_piece(o, n - at, k);
        dw__sim_pleg_emit(l, p + at, piece, delay_ms);
        at += piece;
        delay_ms += o->split_delay_ms;
    }
}

/* A rule matched frame `raw` (payload in l->payload): carry out o. */
static void apply_rule(leg *l, const dw_sim_outcome *o)
{
    pconn *c = l->c;
    const dw_sim_rule *rule = &c->px->view[l->dir].rules[o->index];
    const dw_sim_rule_net *net = rule->net;
    unsigned delay = o->delay_ms;
    if (net && net->has_delay)
        delay = dw_sim_delay_draw(&net->delay, &c->rng);
    dw_sim_fault fault = o->fault;
    if (fault != DW_SIM_FAULT_NONE && net && !dw_sim_rng_chance(&c->rng, net->probability))
        fault = DW_SIM_FAULT_NONE; /* spared: the frame passes as it came */
    int rewrite = o->fault == DW_SIM_FAULT_NONE && rule->action.nreplies > 0;
    const uint8_t *p = rewrite ? o->bytes.data : l->raw.data;
    size_t n = rewrite ? o->bytes.len : l->raw.len;
    /* A request rule's reply answers the client: the device never sees it. */
    leg *to = rewrite && l->dir == DW_SIM_DIR_REQUEST ? &c->legs[DW_SIM_DIR_REPLY] : l;
    if (fault != DW_SIM_FAULT_NONE)
        dw__sim_pconn_fault(c, dw__sim_fault_name(fault));
    switch (fault) {
    case DW_SIM_FAULT_CLOSE:
        emit_action(l, ITEM_CLOSE, delay);
        return;
    case DW_SIM_FAULT_RESET:
        emit_action(l, ITEM_RESET, delay);
        return;
    case DW_SIM_FAULT_HANG:
        emit_action(l, ITEM_HANG, delay);
        return;
    case DW_SIM_FAULT_DROP:
        return;
    case DW_SIM_FAULT_GARBAGE:
        dw__sim_pleg_emit(l, o->bytes.data, o->bytes.len, delay);
        return;
    case DW_SIM_FAULT_DUPLICATE:
        p = rule->action.nreplies ? o->bytes.data : l->raw.data;
        n = rule->action.nreplies ? o->bytes.len : l->raw.len;
        emit_split(to, o, p, n, delay);
        break;
    default:
        break;
    }
    emit_split(to, o, p, n, delay);
    if (o->close != DW_SIM_THEN_NONE) /* "then": both sides end once the reply is out */
        emit_action(to, o->close == DW_SIM_THEN_RESET ? ITEM_RESET : ITEM_CLOSE, delay);
}

/* A frame no rule took: on, through the fuzz when it is drawn. */
static void pass_frame(leg *l)
{
    if (!l->sh.fuzz) {
        dw__sim_pleg_emit(l, l->raw.data, l->raw.len, 0);
        return;
    }
    dw__sim_fuzz_piece pc[DW__SIM_FUZZ_PIECES];
    size_t n = dw__sim_fuzz_frame(l->c->px, &l->fz, &l->sh.fz, l->dir, l->c->id, l->raw.data,
                                  l->raw.len, l->payload.data, l->payload.len, pc);
    for (size_t i = 0; i < n; i++)
        dw__sim_pleg_emit(l, pc[i].p, pc[i].n, pc[i].delay_ms);
}

/* One whole frame: its bytes as read in l->raw, its payload in l->payload. */
static void on_frame(leg *l)
{
    pconn *c = l->c;
    dw_sim_proxy *p = c->px;
    if (!p->eng[l->dir]) {
        pass_frame(l);
        return;
    }
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_sim_engine_handle(p->eng[l->dir], l->sess, l->payload.data, l->payload.len, &l->out,
                                  &err);
    if (rc != DW_OK && rc != DW_EINVAL) {
        dw__sim_pconn_teardown(c, 0, 0);
        return;
    }
    if (rc == DW_EINVAL)
        dw_log(p->logger, DW_LOG_ERROR, "%s", dw_error_message(&err));
    if (l->out.source == DW_SIM_BY_RULE)
        apply_rule(l, &l->out);
    else
        pass_frame(l);
}

/* A console's prompt (the script's "prompt") ends no frame: between frames
 * of the replies it passes as it comes. The bytes passed, or 0. */
static size_t pass_prompt(leg *l, const uint8_t *p, size_t n)
{
    const dw_sim_bytes *pr = &l->c->px->script->prompt;
    if (l->dir != DW_SIM_DIR_REPLY || !pr->len || l->raw.len || n < pr->len ||
        memcmp(p, pr->data, pr->len) != 0)
        return 0;
    dw__sim_pleg_emit(l, p, pr->len, 0);
    return pr->len;
}

/* Data bytes read on the leg's source: frames through the rules, or on. */
static void leg_data(leg *l, const uint8_t *p, size_t n)
{
    pconn *c = l->c;
    if (!l->dec) {
        dw__sim_pleg_emit(l, p, n, 0);
        return;
    }
    size_t at = 0;
    while (at < n && !c->closing) {
        size_t prompt = pass_prompt(l, p + at, n - at);
        if (prompt) {
            at += prompt;
            continue;
        }
        size_t used = 0;
        dw_error err;
        dw_error_clear(&err);
        int rc = dw_decoder_feed(l->dec, p + at, n - at, &used, &l->payload, &err);
        if (dw_buf_append(&l->raw, p + at, used) != DW_OK) {
            dw__sim_pconn_teardown(c, 0, 0);
            return;
        }
        at += used;
        if (rc == DW_MORE)
            break;
        if (rc == DW_OK)
            on_frame(l);
        else /* not a frame the rules can read: it passes as it came */
            dw__sim_pleg_emit(l, l->raw.data, l->raw.len, 0);
        dw_buf_clear(&l->raw);
    }
}

/* ---- reading ------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    pconn *c = h->data;
    (void)hint;
    size_t size;
    uint8_t *p = dw_sim_loop_read_buffer(c->px->loop, &size);
    *b = uv_buf_init((char *)p, (unsigned)size);
}

/* The source ended cleanly: what is left of a frame passes, then FIN. */
static void leg_eof(leg *l)
{
    pconn *c = l->c;
    l->eof = 1;
    dw__sim_pleg_reading(l);
    if (c->px->rec) {
        leg_end(l);
        return;
    }
    dw__sim_tap_finish(&l->tap);
    if (l->raw.len) {
        dw__sim_pleg_emit(l, l->raw.data, l->raw.len, 0);
        dw_buf_clear(&l->raw);
        dw_decoder_reset(l->dec);
    }
    dw__sim_fuzz_piece held;
    if (dw__sim_fuzz_flush(&l->fz, &held)) /* a swapped frame had no next one */
        dw__sim_pleg_emit(l, held.p, held.n, 0);
    emit_action(l, ITEM_END, l->sh.slow_close ? l->sh.close_ms : 0);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    pconn *c = st->data;
    leg *l = &c->legs[st == (uv_stream_t *)&c->down ? DW_SIM_DIR_REQUEST : DW_SIM_DIR_REPLY];
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (c->px->rec) /* who ended first, and how: a close the device gave an answer */
            dw_sim_recorder_end(c->px->rec, c->id, l->dir, nread != UV_EOF, dw__sim_pconn_now_us());
        if (nread == UV_EOF) {
            leg_eof(l);
            return;
        }
        /* A reset (or a failure) on one side is a reset on the other. */
        int from_device = l->dir == DW_SIM_DIR_REPLY;
        dw_log(c->px->logger, DW_LOG_INFO, "%s: connection %llu: %s %s", c->peer,
               (unsigned long long)c->id, from_device ? "device" : "client",
               uv_strerror((int)nread));
        dw__sim_pconn_teardown(c, from_device, !from_device);
        return;
    }
    const uint8_t *p = (const uint8_t *)b->base;
    size_t n = (size_t)nread;
    dw_sim_proxy *px = c->px;
    acknowledge(c, l->dir);
    if (px->rec) { /* recording: the bytes go on as they are, first */
        dw__sim_pleg_raw_write(l, p, n);
        dw_sim_recorder_bytes(px->rec, c->id, l->dir, p, n, dw__sim_pconn_now_us());
        return;
    }
    if (c->hung)
        return;
    if (l->telnet) {
        dw_buf_clear(&l->data);
        if (dw_telnet_feed(l->telnet, p, n, &l->data) != DW_OK) {
            dw_log(px->logger, DW_LOG_WARN, "%s: connection %llu: %s", c->peer,
                   (unsigned long long)c->id, dw_telnet_error_message(l->telnet));
            dw__sim_pconn_teardown(c, 0, 0);
            return;
        }
        p = l->data.data;
        n = l->data.len;
    }
    if (n) {
        dw__sim_tap_feed(&l->tap, p, n); /* a copy for the transcript, before any fault's note */
        leg_data(l, p, n);
    }
}

/* Read while connected, not ended, and the destination takes what comes. */
void dw__sim_pleg_reading(leg *l)
{
    pconn *c = l->c;
    int want = c->connected && !c->closing && !l->eof && !l->wire.stalled && !l->held;
    if (want == l->reading)
        return;
    l->reading = want;
    if (want)
        uv_read_start((uv_stream_t *)l->src, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)l->src);
}

void dw__sim_proxy_drop_all(dw_sim_proxy *p)
{
    while (p->conns)
        dw__sim_pconn_teardown(p->conns, 0, 0);
}
