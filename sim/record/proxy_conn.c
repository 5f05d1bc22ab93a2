/* devwire-sim's recording and fault-injecting proxy, its connections: see
 * proxy.h and proxy_int.h.
 *
 * Everything runs on the loop thread. A connection is two legs, one per
 * direction, each reading one socket and writing the other (through the
 * device's connection core, device/conn.h). A leg writes at once when
 * nothing is scheduled before it; otherwise its output waits in a queue of
 * timed items (data, a close, a reset, the end of the direction) that the
 * leg's timer releases in order. Past a bound of bytes waiting for a
 * socket, the leg stops reading its source until they have gone out.
 *
 * A rule's outcome (the engine's dw_sim_outcome) is carried out here, in
 * apply_rule, not by the device's outcome player (device/outcome.h). Both
 * read the same decision and share the piece sizes (dw__sim_piece), the
 * fault names and the connection core, but they act in two ways: the
 * player serves one request at a time from its timer (after the delay it
 * charges --max-buffered, then acts on the fault, then writes piece after
 * piece while the connection is open), while the proxy schedules it all
 * when the frame is decided, as items due at delay + pauses in the leg's
 * queue, because each piece must pass the network faults and keep its
 * order with the bytes forwarded behind it. And what each fault does
 * differs on every point, so one plan for both would be two plans behind
 * flags:
 *   - the bytes: the frame as read; the rule's reply only when the rule
 *     has replies and no fault (or a duplicate), and a request rule's
 *     reply goes back to the client (the device never sees the request);
 *     the device always writes its reply;
 *   - a rule's "probability" and "delay" are drawn here, per connection
 *     (the proxy's engines have no generator); a spared frame passes as it
 *     came, not as the rule's reply;
 *   - "close" and "reset" end both sides after what is queued (reset: RST
 *     to the client); "hang" stops both directions; the device ends its
 *     one connection (a line or datagrams: nothing), and its hang leaves
 *     the connection reading;
 *   - "garbage" goes whole, never split;
 *   - "duplicate": both copies in pieces, each timed from the delay, so the
 *     queue sends the second right behind the first; the device writes the
 *     copy whole, then the reply in its pieces (datagrams: one more
 *     datagram, only when the reply is not split);
 *   - the transcript gets the "fault" when the frame is decided and no
 *     "in" or "out"; the device's "fault" comes after the delay (on
 *     datagrams, when decided) and its garbage is an event with the bytes. */
#include "record/proxy_int.h"

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

typedef enum { ITEM_DATA, ITEM_CLOSE, ITEM_RESET, ITEM_END, ITEM_HANG } item_kind;

typedef struct item {
    struct item *next;
    uint64_t due_us;
    item_kind kind;
    size_t len;
    uint8_t data[];
} item;

typedef struct pconn pconn;

typedef struct leg {
    pconn *c;
    int dir; /* DW_SIM_DIR_REQUEST: client to device */
    uv_tcp_t *src, *dst;
    dw_sim_wire wire;  /* writes to dst; stalled: dst does not take what comes */
    uv_timer_t timer;  /* releases the queue */
    dw_telnet *telnet; /* fault proxy over Telnet: terminates Telnet on src */
    dw_decoder *dec;   /* frames, when this direction has rules */
    dw_sim_session *sess;
    dw_buf data, payload, raw; /* data bytes read; the frame; its bytes as read */
    dw_sim_outcome out;
    dw_sim_shaper sh;
    dw__sim_fuzz_leg fz;
    item *head, *tail;
    size_t queued;                 /* bytes in the queue */
    int reading, eof, ended, held; /* held: the queue is full */
} leg;

struct pconn {
    uv_tcp_t down, up; /* the client, the device */
    uv_connect_t creq;
    uv_timer_t guard; /* a timeout fault's deadline */
    int handles;
    dw_sim_proxy *px;
    pconn *prev, *next;
    uint64_t id;
    char peer[DW_SIM_ADDR_MAX];
    leg legs[2];
    int connected, closing, hung, guard_reset;
    dw_sim_rng rng;
};

static uint64_t now_us(const pconn *c)
{
    (void)c;
    return uv_hrtime() / 1000;
}

static int telnet_mode(const dw_sim_proxy *p)
{
    return !p->rec && !p->raw && p->script->transport == DW_SIM_TELNET;
}

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

/* Close both sides now: the client's with RST when reset_down, the
 * device's with RST when reset_up; what waits is dropped. */
static void conn_teardown(pconn *c, int reset_down, int reset_up)
{
    if (c->closing)
        return;
    dw_sim_proxy *p = c->px;
    c->closing = 1;
    dw_sim_transcript_event(p->raw ? NULL : p->transcript, NULL, c->id, "close", NULL, 0, NULL,
                            c->peer);
    if (p->rec)
        dw_sim_recorder_close(p->rec, c->id, now_us(c));
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
    for (int d = 0; d < 2; d++)
        uv_close((uv_handle_t *)&c->legs[d].timer, on_leg_timer_closed);
}

static void conn_fault(pconn *c, const char *what)
{
    dw_sim_transcript_event(c->px->raw ? NULL : c->px->transcript, NULL, c->id, "fault", NULL, 0,
                            what, NULL);
}

/* ---- writing --------------------------------------------------------------------- */

static void update_reading(leg *l);

static int wire_gone(dw_sim_wire *w)
{
    const leg *l = w->owner;
    return l->c->closing;
}

static void wire_failed(dw_sim_wire *w, int status)
{
    leg *l = w->owner;
    (void)status;
    conn_teardown(l->c, 0, 0);
}

/* The destination stopped (or went back to) taking what comes: stop (or
 * go on) reading the source. */
static void wire_stall(dw_sim_wire *w)
{
    update_reading(w->owner);
}

static const dw_sim_wire_ops leg_wire = {wire_gone, wire_failed, NULL, wire_stall};

/* Raw bytes to the leg's destination: at once if the socket takes them. */
static void raw_write(leg *l, const uint8_t *p, size_t n)
{
    if (l->c->closing || n == 0)
        return;
    dw__sim_wire_write(&l->wire, p, n);
}

/* Data bytes out: Telnet doubles 0xFF. */
static void data_write(leg *l, const uint8_t *p, size_t n)
{
    if (!telnet_mode(l->c->px) || !memchr(p, 0xff, n)) {
        raw_write(l, p, n);
        return;
    }
    dw_buf *b = &l->c->px->scratch;
    dw_buf_clear(b);
    if (dw_telnet_escape(p, n, b) != DW_OK) {
        conn_teardown(l->c, 0, 0);
        return;
    }
    raw_write(l, b->data, b->len);
}

static void on_shutdown(void *arg)
{
    leg *l = arg;
    pconn *c = l->c;
    if (!c->closing && c->legs[0].ended && c->legs[1].ended)
        conn_teardown(c, 0, 0);
}

/* The direction is over: FIN to its destination once its writes are out. */
static void leg_end(leg *l)
{
    if (l->ended || l->c->closing)
        return;
    l->ended = 1;
    if (dw__sim_shutdown(l->dst, on_shutdown, l) != 0) {
        if (l->c->legs[0].ended && l->c->legs[1].ended)
            conn_teardown(l->c, 0, 0);
    }
}

/* ---- the timed queue --------------------------------------------------------------- */

static void on_leg_timer(uv_timer_t *t);

/* Carry out what is due, then wait for the next. */
static void leg_drain(leg *l)
{
    pconn *c = l->c;
    uint64_t now = now_us(c);
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
            conn_teardown(c, 0, 0);
            break;
        case ITEM_RESET:
            conn_teardown(c, 1, 0);
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
        update_reading(l);
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
static void emit(leg *l, const uint8_t *p, size_t n, unsigned delay_ms)
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
    dw_sim_shaper_plan(&l->sh, &c->rng, now_us(c), n, plan_piece, &pc, &close);
    if (pc.rc == DW_OK && close) {
        conn_fault(c, l->dir ? "reply.limit_data" : "request.limit_data");
        pc.rc = enqueue(l, ITEM_CLOSE, NULL, 0, now_us(c));
    }
    if (pc.rc != DW_OK) {
        conn_teardown(c, 0, 0);
        return;
    }
    if (!l->held && l->queued > DW_SIM_WRITE_QUEUE_LIMIT) { /* a slow line: stop reading */
        l->held = 1;
        update_reading(l);
    }
    leg_drain(l);
}

/* An action (close, reset, hang, end) after what is queued, `delay_ms` later. */
static void emit_action(leg *l, item_kind kind, unsigned delay_ms)
{
    if (enqueue(l, kind, NULL, 0, now_us(l->c) + (uint64_t)delay_ms * 1000) != DW_OK)
        conn_teardown(l->c, 0, 0);
    else
        leg_drain(l);
}

/* ---- frames and rules ------------------------------------------------------------ */

/* Bytes in pieces as a rule's split says, starting delay_ms from now. */
static void emit_split(leg *l, const dw_sim_outcome *o, const uint8_t *p, size_t n,
                       unsigned delay_ms)
{
    if (!o->nsplit) {
        emit(l, p, n, delay_ms);
        return;
    }
    size_t k = 0;
    for (size_t at = 0; at < n; k++) {
        size_t piece = dw__sim_piece(o, n - at, k);
        emit(l, p + at, piece, delay_ms);
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
        conn_fault(c, dw__sim_fault_name(fault));
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
        emit(l, o->bytes.data, o->bytes.len, delay);
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
        emit(l, l->raw.data, l->raw.len, 0);
        return;
    }
    dw__sim_fuzz_piece pc[DW__SIM_FUZZ_PIECES];
    size_t n = dw__sim_fuzz_frame(l->c->px, &l->fz, &l->sh.fz, l->dir, l->c->id, l->raw.data,
                                  l->raw.len, l->payload.data, l->payload.len, pc);
    for (size_t i = 0; i < n; i++)
        emit(l, pc[i].p, pc[i].n, pc[i].delay_ms);
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
        conn_teardown(c, 0, 0);
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
    emit(l, p, pr->len, 0);
    return pr->len;
}

/* Data bytes read on the leg's source: frames through the rules, or on. */
static void leg_data(leg *l, const uint8_t *p, size_t n)
{
    pconn *c = l->c;
    if (!l->dec) {
        emit(l, p, n, 0);
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
            conn_teardown(c, 0, 0);
            return;
        }
        at += used;
        if (rc == DW_MORE)
            break;
        if (rc == DW_OK)
            on_frame(l);
        else /* not a frame the rules can read: it passes as it came */
            emit(l, l->raw.data, l->raw.len, 0);
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
    update_reading(l);
    if (c->px->rec) {
        leg_end(l);
        return;
    }
    if (l->raw.len) {
        emit(l, l->raw.data, l->raw.len, 0);
        dw_buf_clear(&l->raw);
        dw_decoder_reset(l->dec);
    }
    dw__sim_fuzz_piece held;
    if (dw__sim_fuzz_flush(&l->fz, &held)) /* a swapped frame had no next one */
        emit(l, held.p, held.n, 0);
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
            dw_sim_recorder_end(c->px->rec, c->id, l->dir, nread != UV_EOF, now_us(c));
        if (nread == UV_EOF) {
            leg_eof(l);
            return;
        }
        /* A reset (or a failure) on one side is a reset on the other. */
        int from_device = l->dir == DW_SIM_DIR_REPLY;
        dw_log(c->px->logger, DW_LOG_INFO, "%s: connection %llu: %s %s", c->peer,
               (unsigned long long)c->id, from_device ? "device" : "client",
               uv_strerror((int)nread));
        conn_teardown(c, from_device, !from_device);
        return;
    }
    const uint8_t *p = (const uint8_t *)b->base;
    size_t n = (size_t)nread;
    dw_sim_proxy *px = c->px;
    dw_sim_tcp_ack ack = px->script ? px->script->tcp_ack : DW_SIM_TCP_ACK_DEFAULT;
    if (l->dir == DW_SIM_DIR_REQUEST &&
        (ack == DW_SIM_TCP_ACK_QUICK || (ack == DW_SIM_TCP_ACK_DEFAULT && !px->delayed_ack)))
        dw__sim_quickack(&c->down); /* as a device would (server_tcp.c) */
    if (px->rec) {                  /* recording: the bytes go on as they are, first */
        raw_write(l, p, n);
        dw_sim_recorder_bytes(px->rec, c->id, l->dir, p, n, now_us(c));
        return;
    }
    if (c->hung)
        return;
    if (l->telnet) {
        dw_buf_clear(&l->data);
        if (dw_telnet_feed(l->telnet, p, n, &l->data) != DW_OK) {
            dw_log(px->logger, DW_LOG_WARN, "%s: connection %llu: %s", c->peer,
                   (unsigned long long)c->id, dw_telnet_error_message(l->telnet));
            conn_teardown(c, 0, 0);
            return;
        }
        p = l->data.data;
        n = l->data.len;
    }
    if (n)
        leg_data(l, p, n);
}

/* Read while connected, not ended, and the destination takes what comes. */
static void update_reading(leg *l)
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

/* ---- opening ---------------------------------------------------------------------------- */

static int telnet_out(void *user, const uint8_t *p, size_t n)
{
    leg *l = user; /* negotiation answers go back to the leg's source */
    leg *back = &l->c->legs[!l->dir];
    raw_write(back, p, n);
    return DW_OK;
}

/* A timeout's deadline (both sides closed), or a reset_peer's (RST both). */
static void on_guard(uv_timer_t *t)
{
    pconn *c = t->data;
    conn_fault(c, c->guard_reset ? "reset_peer" : "timeout");
    conn_teardown(c, c->guard_reset, c->guard_reset);
}

/* The legs' framing, rules, Telnet filters and network faults. */
static int legs_init(pconn *c)
{
    dw_sim_proxy *p = c->px;
    dw_sim_rng_seed(&c->rng, p->seed, c->id);
    unsigned timeout_ms = 0;
    for (int d = 0; d < 2; d++) {
        leg *l = &c->legs[d];
        if (p->rec)
            continue;
        dw_sim_shaper_init(&l->sh, p->net, d, &c->rng);
        if (l->sh.timeout && l->sh.timeout_ms && (!timeout_ms || l->sh.timeout_ms < timeout_ms)) {
            timeout_ms = l->sh.timeout_ms;
            c->guard_reset = 0;
        }
        if (l->sh.reset_peer && (!timeout_ms || l->sh.reset_ms <= timeout_ms)) {
            timeout_ms = l->sh.reset_ms ? l->sh.reset_ms : 1;
            c->guard_reset = 1;
        }
        if (p->eng[d] || l->sh.fuzz) {
            l->dec = dw_decoder_new(p->frame_m[d]);
            l->sess = p->eng[d] ? dw_sim_session_new(p->eng[d]) : NULL;
            if (!l->dec || (p->eng[d] && !l->sess))
                return DW_ENOMEM;
        }
        if (telnet_mode(p)) {
            dw_telnet_options to;
            dw_telnet_options_init(&to);
            to.server = d == DW_SIM_DIR_REQUEST; /* a server to the client */
            to.echo = 0;
            to.name = d == DW_SIM_DIR_REQUEST ? c->peer : p->up_addr;
            to.logger = p->logger;
            if (!(l->telnet = dw_telnet_new(&to, NULL, telnet_out, l)))
                return DW_ENOMEM;
        }
    }
    if (timeout_ms)
        uv_timer_start(&c->guard, on_guard, timeout_ms, 0);
    return DW_OK;
}

static void on_connect(uv_connect_t *req, int status)
{
    pconn *c = req->data;
    dw_sim_proxy *p = c->px;
    if (c->closing)
        return;
    if (status < 0) {
        dw_log(p->logger, DW_LOG_WARN, "%s: connection %llu: connect %s: %s; resetting the client",
               c->peer, (unsigned long long)c->id, p->up_addr, uv_strerror(status));
        conn_teardown(c, 1, 0);
        return;
    }
    c->connected = 1;
    uv_tcp_nodelay(&c->up, 1);
    if (p->rec)
        dw_sim_recorder_open(p->rec, c->id, now_us(c));
    if (c->legs[0].telnet)
        dw_telnet_start(c->legs[0].telnet);
    update_reading(&c->legs[0]);
    update_reading(&c->legs[1]);
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

static void conn_start(dw_sim_proxy *p, pconn *c)
{
    uv_loop_t *uv = dw_sim_loop_uv(p->loop);
    uv_tcp_init(uv, &c->up);
    uv_timer_init(uv, &c->guard);
    c->up.data = c->guard.data = c;
    c->handles = 5;
    c->id = ++p->next_id;
    for (int d = 0; d < 2; d++) {
        leg *l = &c->legs[d];
        l->c = c;
        l->dir = d;
        l->src = d == DW_SIM_DIR_REQUEST ? &c->down : &c->up;
        l->dst = d == DW_SIM_DIR_REQUEST ? &c->up : &c->down;
        l->wire = (dw_sim_wire){l->dst, &leg_wire, l, 0};
        uv_timer_init(uv, &l->timer);
        l->timer.data = l;
        dw_sim_outcome_init(&l->out);
    }
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    p->nconns++;
    uv_tcp_nodelay(&c->down, 1);
    dw_sim_transcript_event(p->raw ? NULL : p->transcript, NULL, c->id, "open", NULL, 0, NULL,
                            c->peer);
    c->creq.data = c;
    int rc = legs_init(c);
    int r = rc == DW_OK
                ? uv_tcp_connect(&c->creq, &c->up, (const struct sockaddr *)&p->up_sa, on_connect)
                : UV_ENOMEM;
    if (r != 0) {
        dw_log(p->logger, DW_LOG_WARN, "%s: connection %llu: connect %s: %s", c->peer,
               (unsigned long long)c->id, p->up_addr, uv_strerror(r));
        conn_teardown(c, 1, 0);
    }
}

void dw__sim_proxy_accept(dw_sim_proxy *p, uv_stream_t *ls)
{
    pconn *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(ls->loop, &c->down) != 0) {
        free(c);
        return;
    }
    c->down.data = c;
    c->px = p;
    if (uv_accept(ls, (uv_stream_t *)&c->down) != 0) {
        uv_close((uv_handle_t *)&c->down, on_refused_closed);
        return;
    }
    p->accepted++;
    dw__sim_peer_name(&c->down, c->peer, sizeof c->peer);
    if (p->nconns >= p->max_connections) {
        dw_log(p->logger, DW_LOG_WARN, "%s: refused: connection limit (%zu) reached", c->peer,
               p->max_connections);
        uv_close((uv_handle_t *)&c->down, on_refused_closed);
        return;
    }
    conn_start(p, c);
}

void dw__sim_proxy_drop_all(dw_sim_proxy *p)
{
    while (p->conns)
        conn_teardown(p->conns, 0, 0);
}
