/* devwire-sim over VXI-11: the procedures of the core and abort channels
 * (vxi11_int.h).
 *
 * A link (create_link) is a session of the engine, as a TCP connection is:
 * device_write collects data until a write with the END flag, then hands
 * the whole message (less a trailing request terminator) to the engine as
 * one request; the outcome player (outcome.c) carries the engine's
 * decision out into the link's output queue, delays and faults included,
 * and device_read takes from that queue. The status byte is the SCPI
 * model's, with MAV from the queue. The device's lock is held by one link
 * at a time. A call that must wait (for the lock, for output, for a reply
 * still being played) is parked on its connection and looked at again when
 * something changes, until its deadline. A link with SRQ enabled
 * (device_enable_srq) gets device_intr_srq on its connection's interrupt
 * channel (vxi11_intr.c) each time the RQS/MSS bit of its status byte
 * rises. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/loop.h"
#include "common/memory.h"
#include "device/devctl.h"
#include "device/outcome.h"
#include "device/vxi11_int.h"

typedef struct vx_link {
    int32_t id;
    vx_conn *conn; /* the connection that made it: the link ends with it */
    struct vx_link *next;
    sim_vxi11 *vx;
    sim_gen *gen;
    dw_sim_session *sess;
    dw_sim_player play;
    uv_timer_t timer; /* the player's */
    dw_buf in;        /* the message being written, until END */
    dw_buf out;       /* the output queue */
    size_t *ends;     /* where in `out` each queued message ends */
    size_t nends, ends_cap;
    size_t msg_start; /* `out`'s length when the reply under way began */
    uint64_t asked_ns;
    int gone;
    int srq;            /* device_enable_srq: service requests go to the interrupt channel */
    int mss;            /* the status byte's RQS/MSS bit when last looked at */
    uint8_t handle[40]; /* device_enable_srq's handle, sent back with each one */
    size_t handle_len;
} vx_link;

/* The status byte's "requests service" bit (RQS, read as MSS). */
#define STB_RQS 0x40u
/* How long create_intr_chan waits for the client's interrupt server. */
#define INTR_CONNECT_MS 5000u

/* ---- links ------------------------------------------------------------------- */

static vx_link *link_find(sim_vxi11 *vx, int32_t id)
{
    for (vx_link *l = vx->links; l; l = l->next)
        if (l->id == id && !l->gone)
            return l;
    return NULL;
}

static void on_link_closed(uv_handle_t *h)
{
    dw_sim_player *p = h->data;
    vx_link *l = p->owner;
    sim_vxi11 *vx = l->vx;
    dw_sim_session_free(l->sess);
    dw__sim_gen_release(vx->srv, l->gen);
    dw__sim_player_free(&l->play);
    dw_buf_free(&l->in);
    dw_buf_free(&l->out);
    free(l->ends);
    free(l);
    dw__vxi11_unref(vx);
}

static void link_destroy(vx_link *l)
{
    sim_vxi11 *vx = l->vx;
    if (l->gone)
        return;
    l->gone = 1;
    if (vx->locker == l)
        vx->locker = NULL;
    for (vx_link **pp = &vx->links; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    uv_close((uv_handle_t *)&l->timer, on_link_closed);
    vx->wake(vx);
}

void dw__vxi11_conn_gone(vx_conn *c)
{
    sim_vxi11 *vx = c->vx;
    dw__vxi11_intr_close(c->intr);
    for (vx_link *l = vx->links, *next; l; l = next) {
        next = l->next;
        if (l->conn == c)
            link_destroy(l);
    }
}

void dw__vxi11_each_session(sim_vxi11 *vx, void (*fn)(dw_sim_session *ss, void *arg), void *arg)
{
    for (vx_link *l = vx->links; l; l = l->next)
        if (l->gen == vx->srv->gen && l->sess)
            fn(l->sess, arg);
}

/* ---- service requests ----------------------------------------------------------- */

static void srq_send(vx_link *l, uint8_t stb)
{
    dw_sim_server *s = l->vx->srv;
    vx_intr *ch = l->conn->intr;
    int rc = ch ? dw__vxi11_intr_srq(ch, l->handle, l->handle_len) : DW_ECLOSED;
    if (rc != DW_OK) {
        dw__sim_log(s, DW_LOG_INFO, "%s: link %d: service request (status byte %u) not sent: %s",
                    l->conn->peer, (int)l->id, (unsigned)stb,
                    rc == DW_ECLOSED ? "no interrupt channel" : dw_strerror(rc));
        return;
    }
    dw__sim_log(s, DW_LOG_INFO, "%s: link %d: service request (status byte %u) to %s",
                l->conn->peer, (int)l->id, (unsigned)stb, dw__vxi11_intr_peer(ch));
    char note[48];
    int n = snprintf(note, sizeof note, "service request (status byte %u)", (unsigned)stb);
    dw_sim_transcript_event(s->transcript, s->name, l->conn->id, "note", (const uint8_t *)note,
                            (size_t)n, NULL, NULL);
}

/* Each link with SRQ enabled whose RQS/MSS bit rose since it was last
 * looked at (after every call and every reply played) requests service,
 * once per rise, as the SRQ line of GPIB is asserted. */
static void srq_check(sim_vxi11 *vx)
{
    for (vx_link *l = vx->links; l; l = l->next) {
        uint8_t stb = 0;
        if (!l->srq || l->gone ||
            dw_sim_engine_status_byte(l->gen->engine, l->sess, l->out.len > 0, &stb) != DW_OK)
            continue;
        int mss = (stb & STB_RQS) != 0;
        if (mss && !l->mss)
            srq_send(l, stb);
        l->mss = mss;
    }
}

/* ---- the output queue, filled by the outcome player ------------------------------- */

static void play_write(dw_sim_player *p, const uint8_t *d, size_t n)
{
    vx_link *l = p->owner;
    if (!l->gone && dw_buf_append(&l->out, d, n) != DW_OK)
        l->vx->end(l->conn, 0);
}

static void play_end(dw_sim_player *p, int reset)
{
    vx_link *l = p->owner;
    l->vx->end(l->conn, reset);
}

static int play_closing(dw_sim_player *p)
{
    const vx_link *l = p->owner;
    return l->gone || l->conn->closing;
}

/* The reply is out: what it queued is one message (END at its last byte). */
static void play_done(dw_sim_player *p, int replied)
{
    vx_link *l = p->owner;
    dw_sim_server *s = l->vx->srv;
    if (replied && !l->gone && l->out.len > l->msg_start) {
        if (l->nends == l->ends_cap) {
            size_t cap = l->ends_cap ? l->ends_cap * 2 : 4;
            size_t *fresh = realloc(l->ends, cap * sizeof *fresh);
            if (!fresh) {
                l->vx->end(l->conn, 0);
                return;
            }
            l->ends = fresh;
            l->ends_cap = cap;
        }
        l->ends[l->nends++] = l->out.len;
    }
    if (replied && s->ctl)
        dw__sim_ctl_replied(s, &p->out, l->asked_ns);
    if (replied && p->out.close)
        l->vx->end(l->conn, 0);
    srq_check(l->vx);
    l->vx->wake(l->vx);
}

static void play_resumed(dw_sim_player *p)
{
    vx_link *l = p->owner;
    l->vx->wake(l->vx);
}

static const dw_sim_player_ops link_play = {play_write,   play_end, play_closing, NULL, play_done,
                                            play_resumed, 0};

/* Drop n bytes from the front of the output queue. */
static void out_consume(vx_link *l, size_t n)
{
    dw_buf_consume(&l->out, n);
    size_t k = 0;
    for (size_t i = 0; i < l->nends; i++)
        if (l->ends[i] > n)
            l->ends[k++] = l->ends[i] - n;
    l->nends = k;
    l->msg_start = l->msg_start > n ? l->msg_start - n : 0;
}

/* ---- replies ------------------------------------------------------------------ */

/* A reply of 32-bit results: the error first, then the rest. */
static int reply_words(vx_conn *c, const uint32_t *w, size_t n)
{
    dw_buf *r = &c->reply;
    if (dw_sim_rpc_reply_begin(r, c->call.xid, DW_RPC_SUCCESS) != DW_OK ||
        dw_sim_rpc_put_u32(r, w, n) != DW_OK) {
        dw_buf_clear(r);
        return VX_ANSWERED; /* an empty reply: the connection is closed */
    }
    dw_sim_rpc_reply_end(r);
    return VX_ANSWERED;
}

static int reply_error(vx_conn *c, uint32_t error)
{
    return reply_words(c, &error, 1);
}

/* A failure in the shape of the procedure's reply: the error, then zeros
 * (an empty opaque is its length, 0). */
static int reply_fail(vx_conn *c, uint32_t error)
{
    const uint32_t w[] = {error, 0, 0, 0};
    switch (c->call.proc) {
    case DW_VXI11_CREATE_LINK:
        return reply_words(c, w, 4);
    case DW_VXI11_DEVICE_READ:
        return reply_words(c, w, 3);
    case DW_VXI11_DEVICE_WRITE:
    case DW_VXI11_DEVICE_READSTB:
    case DW_VXI11_DEVICE_DOCMD:
        return reply_words(c, w, 2);
    default:
        return reply_words(c, w, 1);
    }
}

/* Park the call: `kind` until now + ms (a new wait), or on (the same). */
static int wait_for(vx_conn *c, int kind, uint32_t ms, uint64_t now)
{
    if (c->waiting != kind) {
        c->waiting = kind;
        c->due = now + ms;
    }
    return VX_WAIT;
}

static int expired(const vx_conn *c, int kind, uint32_t ms, uint64_t now)
{
    return ms == 0 || (c->waiting == kind && now >= c->due);
}

/* The lock lets link l (NULL: a new link) go on: 0; else the call waits
 * (WAITLOCK) or fails with 11. *rc says which. */
static int locked_out(vx_conn *c, const vx_link *l, uint32_t flags, uint64_t now, int *rc)
{
    sim_vxi11 *vx = c->vx;
    if (!vx->locker || vx->locker == l)
        return 0;
    uint32_t ms = c->args.lock_timeout;
    if (!(flags & DW_VXI11_WAITLOCK) || expired(c, VX_WAIT_LOCK, ms, now))
        *rc = reply_fail(c, DW_VXI11_E_LOCKED);
    else
        *rc = wait_for(c, VX_WAIT_LOCK, ms, now);
    return 1;
}

/* ---- the procedures ---------------------------------------------------------- */

static int device_known(const dw_sim_script *script, const dw_sim_vxi11_args *a)
{
    if (!script->nvxi11_devices)
        return 1;
    for (size_t i = 0; i < script->nvxi11_devices; i++)
        if (strlen(script->vxi11_devices[i]) == a->device_len &&
            memcmp(script->vxi11_devices[i], a->device, a->device_len) == 0)
            return 1;
    return 0;
}

static int create_link(vx_conn *c, uint64_t now)
{
    sim_vxi11 *vx = c->vx;
    dw_sim_server *s = vx->srv;
    const dw_sim_vxi11_args *a = &c->args;
    int rc;
    if (!device_known(s->gen->script, a))
        return reply_fail(c, DW_VXI11_E_NOT_ACCESSIBLE);
    if (a->lock_device && locked_out(c, NULL, DW_VXI11_WAITLOCK, now, &rc))
        return rc;
    vx_link *l = calloc(1, sizeof *l);
    if (!l || dw__sim_bind(s, &l->gen, &l->sess) != DW_OK) {
        free(l);
        return reply_fail(c, DW_VXI11_E_RESOURCES);
    }
    l->vx = vx;
    l->conn = c;
    l->id = ++vx->next_lid;
    uv_timer_init(dw_sim_loop_uv(s->loop), &l->timer);
    dw__sim_player_init(&l->play, &link_play, l, s, &l->timer);
    l->play.id = c->id;
    l->timer.data = &l->play;
    l->next = vx->links;
    vx->links = l;
    vx->refs++;
    if (a->lock_device)
        vx->locker = l;
    const uint32_t w[] = {DW_VXI11_OK, (uint32_t)l->id, vx->abort_port,
                          s->gen->script->vxi11_max_recv};
    return reply_words(c, w, 4);
}

/* The message as the engine takes it: less its request terminator (END
 * ends it; a terminator before END is not part of the request). */
static size_t message_length(const vx_link *l)
{
    const dw_sim_framing *f = &l->gen->script->request_framing;
    size_t n = l->in.len, k = f->sentinel.len;
    int sentinel = f->type == DW_SIM_FRAMING_SENTINEL || f->type == DW_SIM_FRAMING_SCPI;
    if (sentinel && k && n >= k && memcmp(l->in.data + n - k, f->sentinel.data, k) == 0) {
        n -= k;
        /* "\r\n" where the framing says "\n" (VISA's default write
         * termination): the CR belongs to the terminator too. */
        if (k == 1 && f->sentinel.data[0] == '\n' && n && l->in.data[n - 1] == '\r')
            n--;
    }
    return n;
}

/* Hand link l's message to the engine and play the outcome into its
 * output queue. */
static void serve_message(vx_link *l, const uint8_t *req, size_t n)
{
    sim_vxi11 *vx = l->vx;
    dw_sim_server *s = vx->srv;
    if (l->gen != s->gen && dw__sim_bind(s, &l->gen, &l->sess) != DW_OK) {
        vx->end(l->conn, 0);
        return;
    }
    dw_error err;
    dw_error_clear(&err);
    l->msg_start = l->out.len;
    int rc = dw__sim_decide(&l->play, l->gen, l->sess, req, n, &l->asked_ns, &err);
    if (rc == DW_ENOMEM) {
        vx->end(l->conn, 0);
        return;
    }
    if (rc != DW_OK)
        dw__sim_log(s, DW_LOG_ERROR, "%s", dw_error_message(&err));
    dw__sim_report_limits(s, l->conn->id, l->conn->peer, &l->play.out, n);
    if (l->play.out.source == DW_SIM_BY_HUNG)
        return;
    if (l->play.out.source == DW_SIM_BY_UNMATCHED)
        dw__sim_log(s, DW_LOG_INFO, "%s: link %d: unmatched request (%zu bytes)", l->conn->peer,
                    (int)l->id, n);
    dw__sim_play(&l->play);
}

static int device_write(vx_conn *c, vx_link *l, uint64_t now)
{
    const dw_sim_vxi11_args *a = &c->args;
    int end = (a->flags & DW_VXI11_END) != 0;
    if (end && l->play.phase != DW_SIM_PLAY_IDLE) { /* the last reply is still being played */
        if (expired(c, VX_WAIT_IO, a->io_timeout, now))
            return reply_fail(c, DW_VXI11_E_IO_TIMEOUT);
        return wait_for(c, VX_WAIT_IO, a->io_timeout, now);
    }
    size_t max = l->gen->script->request_framing.max_frame;
    if (a->data_len > max || l->in.len > max - a->data_len) {
        dw__sim_log(c->vx->srv, DW_LOG_WARN,
                    "%s: link %d: a message of more than %zu bytes (the request framing's "
                    "maximum); dropped",
                    c->peer, (int)l->id, max);
        dw_buf_clear(&l->in);
        return reply_fail(c, DW_VXI11_E_RESOURCES);
    }
    if (dw_buf_append(&l->in, a->data, a->data_len) != DW_OK)
        return reply_fail(c, DW_VXI11_E_RESOURCES);
    if (end) {
        serve_message(l, l->in.data, message_length(l));
        dw_buf_clear(&l->in);
        if (l->in.cap > DW_SIM_KEEP_BYTES)
            dw_buf_shrink(&l->in, DW_SIM_KEEP_BYTES);
    }
    return reply_words(c, (const uint32_t[]){DW_VXI11_OK, (uint32_t)a->data_len}, 2);
}

static int device_read(vx_conn *c, vx_link *l, uint64_t now)
{
    const dw_sim_vxi11_args *a = &c->args;
    if (l->out.len == 0) {
        if (expired(c, VX_WAIT_IO, a->io_timeout, now))
            return reply_fail(c, DW_VXI11_E_IO_TIMEOUT);
        return wait_for(c, VX_WAIT_IO, a->io_timeout, now);
    }
    size_t n = l->out.len, limit = l->nends ? l->ends[0] : n;
    uint32_t reason = 0;
    if (n > limit)
        n = limit;
    if (n > a->request_size)
        n = a->request_size;
    if (a->flags & DW_VXI11_TERMCHRSET) {
        const uint8_t *t = memchr(l->out.data, (int)(a->term_char & 0xff), n);
        if (t) {
            n = (size_t)(t - l->out.data) + 1;
            reason |= DW_VXI11_CHR;
        }
    }
    if (l->nends && n == limit)
        reason |= DW_VXI11_REASON_END;
    else if (n == a->request_size)
        reason |= DW_VXI11_REQCNT;
    dw_buf *r = &c->reply;
    const uint32_t w[] = {DW_VXI11_OK, reason};
    if (dw_sim_rpc_reply_begin(r, c->call.xid, DW_RPC_SUCCESS) != DW_OK ||
        dw_sim_rpc_put_u32(r, w, 2) != DW_OK || dw_sim_rpc_put_opaque(r, l->out.data, n) != DW_OK)
        dw_buf_clear(r);
    else
        dw_sim_rpc_reply_end(r);
    out_consume(l, n);
    if (l->out.len == 0 && l->out.cap > DW_SIM_KEEP_BYTES)
        dw_buf_shrink(&l->out, DW_SIM_KEEP_BYTES);
    return VX_ANSWERED;
}

static int device_readstb(vx_conn *c, vx_link *l)
{
    uint8_t stb = 0;
    int mav = l->out.len > 0;
    if (dw_sim_engine_status_byte(l->gen->engine, l->sess, mav, &stb) != DW_OK)
        stb = mav ? 0x10 : 0; /* no SCPI model: MAV alone */
    return reply_words(c, (const uint32_t[]){DW_VXI11_OK, stb}, 2);
}

/* IEEE 488.2 device clear: the input buffer and the output queue are
 * emptied, a reply still being played is dropped; the status registers
 * stay (MAV follows the empty queue). */
static int device_clear(vx_conn *c, vx_link *l)
{
    dw_buf_clear(&l->in);
    dw_buf_clear(&l->out);
    l->nends = 0;
    l->msg_start = 0;
    if (l->play.phase != DW_SIM_PLAY_IDLE) {
        uv_timer_stop(&l->timer);
        l->play.phase = DW_SIM_PLAY_IDLE;
    }
    dw_sim_transcript_event(c->vx->srv->transcript, c->vx->srv->name, c->id, "note",
                            (const uint8_t *)"device clear", 12, NULL, NULL);
    return reply_error(c, DW_VXI11_OK);
}

/* device_trigger: the engine gets "*TRG", as GPIB's GET means under
 * IEEE 488.2; what it answers is queued like any reply. */
static int device_trigger(vx_conn *c, vx_link *l, uint64_t now)
{
    if (l->play.phase != DW_SIM_PLAY_IDLE) {
        if (expired(c, VX_WAIT_IO, c->args.io_timeout, now))
            return reply_error(c, DW_VXI11_E_IO_TIMEOUT);
        return wait_for(c, VX_WAIT_IO, c->args.io_timeout, now);
    }
    static const uint8_t trg[] = "*TRG";
    serve_message(l, trg, sizeof trg - 1);
    return reply_error(c, DW_VXI11_OK);
}

static int device_lock(vx_conn *c, vx_link *l, uint64_t now)
{
    int rc;
    if (locked_out(c, l, c->args.flags, now, &rc))
        return rc;
    c->vx->locker = l;
    return reply_error(c, DW_VXI11_OK);
}

static int device_unlock(vx_conn *c, vx_link *l)
{
    if (c->vx->locker != l)
        return reply_error(c, DW_VXI11_E_NO_LOCK);
    c->vx->locker = NULL;
    c->vx->wake(c->vx);
    return reply_error(c, DW_VXI11_OK);
}

/* device_abort (abort channel): the link's waiting call ends with 23. */
static int device_abort(vx_conn *c, vx_link *l)
{
    vx_conn *owner = l->conn;
    if (owner->waiting != VX_WAIT_NONE) {
        owner->aborted = 1;
        c->vx->wake(c->vx);
    }
    return reply_error(c, DW_VXI11_OK);
}

/* device_enable_srq: service requests of link l go (enable) to its
 * connection's interrupt channel with the handle, or stop. Enabling needs
 * the channel (6 without it). What the status byte shows now is no rise:
 * the first request for service is the next one. */
static int enable_srq(vx_conn *c, vx_link *l)
{
    const dw_sim_vxi11_args *a = &c->args;
    if (!a->enable) {
        l->srq = 0;
        return reply_error(c, DW_VXI11_OK);
    }
    if (!c->intr || dw__vxi11_intr_state(c->intr) != VX_INTR_UP)
        return reply_error(c, DW_VXI11_E_NO_CHANNEL);
    uint8_t stb = 0;
    l->srq = 1;
    memcpy(l->handle, a->data, a->data_len); /* at most 40 bytes: the decoder's bound */
    l->handle_len = a->data_len;
    l->mss = dw_sim_engine_status_byte(l->gen->engine, l->sess, l->out.len > 0, &stb) == DW_OK &&
             (stb & STB_RQS);
    return reply_error(c, DW_VXI11_OK);
}

/* create_intr_chan: connect to the client's interrupt server; the call
 * waits for the connection (up to INTR_CONNECT_MS), then answers 0, or 6
 * when it could not be made. One channel a connection (29 for another);
 * TCP only (8 for UDP). Address 0 means the connection's own peer. */
static int create_intr_chan(vx_conn *c, uint64_t now)
{
    const dw_sim_vxi11_args *a = &c->args;
    if (c->waiting != VX_WAIT_IO) { /* a new call */
        if (c->intr && dw__vxi11_intr_state(c->intr) != VX_INTR_FAILED)
            return reply_error(c, DW_VXI11_E_CHANNEL_EXISTS);
        dw__vxi11_intr_close(c->intr);
        if (a->prog_family != 0) /* DEVICE_UDP */
            return reply_error(c, DW_VXI11_E_NOT_SUPPORTED);
        if (a->host_port == 0 || a->host_port > 65535)
            return reply_error(c, DW_VXI11_E_PARAMETER);
        uint32_t addr = a->host_addr ? a->host_addr : c->peer_addr;
        c->intr = dw__vxi11_intr_open(c, addr, (uint16_t)a->host_port, a->prog_num, a->prog_vers);
        if (!c->intr)
            return reply_error(c, DW_VXI11_E_RESOURCES);
    }
    int state = c->intr ? dw__vxi11_intr_state(c->intr) : VX_INTR_FAILED;
    if (state == VX_INTR_UP)
        return reply_error(c, DW_VXI11_OK);
    if (state == VX_INTR_CONNECTING && !expired(c, VX_WAIT_IO, INTR_CONNECT_MS, now))
        return wait_for(c, VX_WAIT_IO, INTR_CONNECT_MS, now);
    dw__vxi11_intr_close(c->intr);
    return reply_error(c, DW_VXI11_E_NO_CHANNEL);
}

static int destroy_intr_chan(vx_conn *c)
{
    if (!c->intr)
        return reply_error(c, DW_VXI11_E_NO_CHANNEL);
    dw__vxi11_intr_close(c->intr);
    return reply_error(c, DW_VXI11_OK);
}

/* The procedures that name a link and respect the lock (the lock does not
 * stop destroy_link, device_unlock or device_abort). */
static int with_link(vx_conn *c, vx_link *l, uint64_t now)
{
    int rc;
    uint32_t proc = c->call.proc;
    if (proc == DW_VXI11_DESTROY_LINK) {
        link_destroy(l);
        return reply_error(c, DW_VXI11_OK);
    }
    if (proc == DW_VXI11_DEVICE_UNLOCK)
        return device_unlock(c, l);
    if (proc == DW_VXI11_DEVICE_LOCK)
        return device_lock(c, l, now);
    if (locked_out(c, l, c->args.flags, now, &rc))
        return rc;
    switch (proc) {
    case DW_VXI11_DEVICE_WRITE:
        return device_write(c, l, now);
    case DW_VXI11_DEVICE_READ:
        return device_read(c, l, now);
    case DW_VXI11_DEVICE_READSTB:
        return device_readstb(c, l);
    case DW_VXI11_DEVICE_TRIGGER:
        return device_trigger(c, l, now);
    case DW_VXI11_DEVICE_CLEAR:
        return device_clear(c, l);
    case DW_VXI11_DEVICE_ENABLE_SRQ:
        return enable_srq(c, l);
    case DW_VXI11_DEVICE_DOCMD:
        return reply_fail(c, DW_VXI11_E_NOT_SUPPORTED);
    default: /* device_remote, device_local: accepted */
        return reply_error(c, DW_VXI11_OK);
    }
}

int dw__vxi11_call(vx_conn *c, uint64_t now)
{
    sim_vxi11 *vx = c->vx;
    uint32_t proc = c->call.proc;
    int rc;
    if (c->aborted) {
        c->aborted = 0;
        rc = reply_fail(c, DW_VXI11_E_ABORT);
    } else if (c->prog == DW_VXI11_ABORT_PROG) {
        vx_link *l = link_find(vx, c->args.lid);
        rc = l ? device_abort(c, l) : reply_error(c, DW_VXI11_E_INVALID_LINK);
    } else if (proc == DW_VXI11_CREATE_LINK) {
        rc = create_link(c, now);
    } else if (proc == DW_VXI11_CREATE_INTR_CHAN) {
        rc = create_intr_chan(c, now);
    } else if (proc == DW_VXI11_DESTROY_INTR_CHAN) {
        rc = destroy_intr_chan(c);
    } else {
        vx_link *l = link_find(vx, c->args.lid);
        rc = l ? with_link(c, l, now) : reply_fail(c, DW_VXI11_E_INVALID_LINK);
    }
    if (rc == VX_ANSWERED) {
        c->waiting = VX_WAIT_NONE;
        srq_check(vx);
    }
    return rc;
}

void dw__vxi11_unref(sim_vxi11 *vx)
{
    if (--vx->refs == 0)
        free(vx);
}
