/* devwire-sim's outcome player: see outcome.h. Written once for TCP,
 * Telnet, UDP and serial lines; what differs between them is in their
 * tables. */
#include "device/outcome.h"

#include "device/devctl.h"

void dw__sim_player_init(dw_sim_player *p, const dw_sim_player_ops *ops, void *owner,
                         dw_sim_server *s, uv_timer_t *timer)
{
    p->ops = ops;
    p->owner = owner;
    p->srv = s;
    p->timer = timer;
    p->phase = DW_SIM_PLAY_IDLE;
    p->at = p->k = 0;
    dw_sim_outcome_init(&p->out);
}

void dw__sim_player_free(dw_sim_player *p)
{
    dw_sim_outcome_free(&p->out);
}

int dw__sim_decide(dw_sim_player *p, sim_gen *g, dw_sim_session *sess, const uint8_t *req, size_t n,
                   uint64_t *asked_ns, dw_error *err)
{
    dw_sim_server *s = p->srv;
    dw_sim_outcome *o = &p->out;
    int rc = dw_sim_engine_handle(g->engine, sess, req, n, o, err);
    if (s->ctl) {
        if (asked_ns)
            *asked_ns = uv_hrtime();
        dw__sim_ctl_request(s, sess, p->id, req, n, o);
    }
    dw_sim_transcript_event(s->transcript, s->name, p->id, "in", req, n, o->name, NULL);
    return rc;
}

static void event(dw_sim_player *p, const char *dir, const uint8_t *d, size_t n, const char *match)
{
    dw_sim_transcript_event(p->srv->transcript, p->srv->name, p->id, dir, d, n, match, NULL);
}

static int closing(dw_sim_player *p)
{
    return p->ops->closing && p->ops->closing(p);
}

static void write_bytes(dw_sim_player *p, const uint8_t *d, size_t n)
{
    if (n)
        p->ops->write(p, d, n);
}

/* The reply is out: record it, end the connection if the action says
 * "then" (after what is queued; a reset drops what the socket still holds),
 * and let the transport go on. */
static void finish(dw_sim_player *p)
{
    dw_sim_outcome *o = &p->out;
    int garbage = o->fault == DW_SIM_FAULT_GARBAGE;
    if (o->bytes.len)
        event(p, garbage ? "fault" : "out", o->bytes.data, o->bytes.len,
              garbage ? "garbage" : o->name);
    p->phase = DW_SIM_PLAY_IDLE;
    if (o->close != DW_SIM_THEN_NONE && p->ops->end)
        p->ops->end(p, o->close == DW_SIM_THEN_RESET);
    p->ops->done(p, 1);
}

static void on_piece_timer(uv_timer_t *t);

/* Write the next pieces of a split reply: all that need no pause. */
static void next_pieces(dw_sim_player *p)
{
    dw_sim_outcome *o = &p->out;
    while (!closing(p) && p->at < o->bytes.len) {
        size_t piece = dw__sim_piece(o, o->bytes.len - p->at, p->k);
        write_bytes(p, o->bytes.data + p->at, piece);
        p->at += piece;
        p->k++;
        if (p->at < o->bytes.len && o->split_delay_ms) {
            uv_timer_start(p->timer, on_piece_timer, o->split_delay_ms, 0);
            return;
        }
    }
    if (!closing(p))
        finish(p);
}

static void on_piece_timer(uv_timer_t *t)
{
    dw_sim_player *p = t->data;
    next_pieces(p);
    if (p->ops->resumed)
        p->ops->resumed(p);
}

int dw__sim_play_fault(dw_sim_player *p)
{
    dw_sim_outcome *o = &p->out;
    switch (o->fault) {
    case DW_SIM_FAULT_CLOSE:
    case DW_SIM_FAULT_RESET:
        event(p, "fault", NULL, 0, dw__sim_fault_name(o->fault));
        if (p->ops->end)
            p->ops->end(p, o->fault == DW_SIM_FAULT_RESET);
        else
            p->ops->done(p, 0);
        return 1;
    case DW_SIM_FAULT_HANG:
    case DW_SIM_FAULT_DROP:
        event(p, "fault", NULL, 0, dw__sim_fault_name(o->fault));
        p->ops->done(p, 0);
        return 1;
    case DW_SIM_FAULT_DUPLICATE: /* the first copy now, the second as the reply */
        event(p, "fault", NULL, 0, "duplicate");
        if (!p->ops->datagrams)
            write_bytes(p, o->bytes.data, o->bytes.len);
        return 0;
    default:
        return 0;
    }
}

/* The reply: whole, or its first pieces. */
static void reply(dw_sim_player *p)
{
    dw_sim_outcome *o = &p->out;
    if (p->ops->datagrams && !o->nsplit && o->fault == DW_SIM_FAULT_DUPLICATE)
        write_bytes(p, o->bytes.data, o->bytes.len);
    if (o->nsplit && o->bytes.len) {
        p->phase = DW_SIM_PLAY_PIECES;
        p->at = p->k = 0;
        next_pieces(p);
        return;
    }
    write_bytes(p, o->bytes.data, o->bytes.len);
    finish(p);
}

/* After the delay (if any): the fault, or the bytes. */
static void act(dw_sim_player *p)
{
    p->phase = DW_SIM_PLAY_IDLE;
    if (p->ops->admit && p->ops->admit(p) != 0)
        return;
    if (!p->ops->datagrams && dw__sim_play_fault(p))
        return;
    reply(p);
}

static void on_delay_timer(uv_timer_t *t)
{
    dw_sim_player *p = t->data;
    act(p);
    if (p->ops->resumed)
        p->ops->resumed(p);
}

void dw__sim_play_later(dw_sim_player *p)
{
    p->phase = DW_SIM_PLAY_DELAY;
    uv_timer_start(p->timer, on_delay_timer, p->out.delay_ms, 0);
}

void dw__sim_play(dw_sim_player *p)
{
    if (p->out.delay_ms) {
        dw__sim_play_later(p);
        return;
    }
    act(p);
}
