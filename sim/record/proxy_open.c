/* devwire-sim's recording and fault-injecting proxy, a connection's
 * opening: accepting the client, connecting to the device, drawing the
 * legs' network faults (see proxy_conn.h). On the loop thread. */
#include "record/proxy_conn.h"

#include <stdlib.h>

#include <uv.h>

#include <devwire/telnet.h>

#include "common/loop.h"
#include "common/net.h"
#include "device/conn.h"
#include "device/server_int.h"
#include "record/record.h"

static int telnet_out(void *user, const uint8_t *p, size_t n)
{
    leg *l = user; /* negotiation answers go back to the leg's source */
    leg *back = &l->c->legs[!l->dir];
    dw__sim_pleg_raw_write(back, p, n);
    return DW_OK;
}

/* A timeout's deadline (both sides closed), or a reset_peer's (RST both). */
static void on_guard(uv_timer_t *t)
{
    pconn *c = t->data;
    dw__sim_pconn_fault(c, c->guard_reset ? "reset_peer" : "timeout");
    dw__sim_pconn_teardown(c, c->guard_reset, c->guard_reset);
}

/* The connection's deadline ms from now, unless one as soon is set (a
 * reset's wins a tie). */
static void guard_arm(pconn *c, uint64_t ms, int reset)
{
    if (uv_is_active((uv_handle_t *)&c->guard)) {
        uint64_t due = uv_timer_get_due_in(&c->guard);
        if (due < ms || (due == ms && c->guard_reset >= reset))
            return;
    }
    c->guard_reset = reset;
    uv_timer_start(&c->guard, on_guard, ms, 0);
}

/* The deadlines of a leg's timeout (0 ms: none) and reset_peer, from now. */
static void leg_guard(pconn *c, const leg *l)
{
    if (l->sh.timeout && l->sh.timeout_ms)
        guard_arm(c, l->sh.timeout_ms, 0);
    if (l->sh.reset_peer)
        guard_arm(c, l->sh.reset_ms ? l->sh.reset_ms : 1, 1);
}

/* The legs' framing, rules, Telnet filters and network faults. */
static int legs_init(pconn *c)
{
    dw_sim_proxy *p = c->px;
    dw_sim_rng_seed(&c->rng, p->seed, c->id);
    for (int d = 0; d < 2; d++) {
        leg *l = &c->legs[d];
        if (p->rec)
            continue;
        dw_sim_shaper_init(&l->sh, p->net, d, &c->rng);
        leg_guard(c, l);
        if (!p->raw && dw__sim_tap_init(&l->tap, p->frame_m[d], p->transcript,
                                        d == DW_SIM_DIR_REPLY ? &p->script->prompt : NULL, c->id,
                                        d == DW_SIM_DIR_REQUEST ? "in" : "out") != DW_OK)
            return DW_ENOMEM;
        if (p->eng[d] || l->sh.fuzz) {
            l->dec = dw_decoder_new(p->frame_m[d]);
            l->sess = p->eng[d] ? dw_sim_session_new(p->eng[d]) : NULL;
            if (!l->dec || (p->eng[d] && !l->sess))
                return DW_ENOMEM;
        }
        if (dw__sim_proxy_telnet(p)) {
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
    return DW_OK;
}

/* ---- faults added and removed at run time -------------------------------------- */

void dw__sim_proxy_take(dw_sim_proxy *p, const dw_sim_toxic *t)
{
    int d = t->direction;
    for (pconn *c = p->conns, *next; c && !p->rec; c = next) {
        next = c->next; /* a failure below takes c out of the list */
        leg *l = &c->legs[d];
        if (c->closing || !dw_sim_shaper_take(&l->sh, t, &c->rng))
            continue;
        if (t->kind == DW_SIM_TOXIC_TIMEOUT || t->kind == DW_SIM_TOXIC_RESET_PEER)
            leg_guard(c, l);
        /* A fuzz reads frames from the next byte on (a frame under way
         * reads as a short one). */
        if (t->kind == DW_SIM_TOXIC_FUZZ && !l->dec && !(l->dec = dw_decoder_new(p->frame_m[d])))
            dw__sim_pconn_teardown(c, 0, 0);
    }
}

/* A leg's fuzz is gone: with no rules to frame for, what it holds passes
 * and bytes pass as they come again. */
static void fuzz_gone(leg *l)
{
    if (l->c->px->eng[l->dir] || !l->dec)
        return;
    dw__sim_pleg_emit(l, l->raw.data, l->raw.len, 0);
    dw_buf_clear(&l->raw);
    dw__sim_fuzz_piece held;
    if (dw__sim_fuzz_flush(&l->fz, &held))
        dw__sim_pleg_emit(l, held.p, held.n, 0);
    dw_decoder_free(l->dec);
    l->dec = NULL;
}

void dw__sim_proxy_drop(dw_sim_proxy *p, const dw_sim_toxic *t)
{
    for (pconn *c = p->conns; c; c = c->next) {
        leg *l = &c->legs[t->direction];
        if (c->closing || !dw_sim_shaper_drop(&l->sh, t))
            continue;
        if (t->kind == DW_SIM_TOXIC_FUZZ)
            fuzz_gone(l);
        if (t->kind == DW_SIM_TOXIC_TIMEOUT || t->kind == DW_SIM_TOXIC_RESET_PEER) {
            /* One deadline per connection: what is left counts from now. */
            uv_timer_stop(&c->guard);
            leg_guard(c, &c->legs[0]);
            leg_guard(c, &c->legs[1]);
        }
    }
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
        dw__sim_pconn_teardown(c, 1, 0);
        return;
    }
    c->connected = 1;
    uv_tcp_nodelay(&c->up, 1);
    if (p->rec)
        dw_sim_recorder_open(p->rec, c->id, dw__sim_pconn_now_us());
    if (c->legs[0].telnet)
        dw_telnet_start(c->legs[0].telnet);
    dw__sim_pleg_reading(&c->legs[0]);
    dw__sim_pleg_reading(&c->legs[1]);
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
    uv_timer_init(uv, &c->ack);
    c->up.data = c->guard.data = c->ack.data = c;
    c->handles = 6;
    c->id = ++p->next_id;
    for (int d = 0; d < 2; d++)
        dw__sim_pleg_init(&c->legs[d], c, d);
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
        dw__sim_pconn_teardown(c, 1, 0);
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
