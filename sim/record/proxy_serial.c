/* devwire-sim's fault proxy in front of a serial device: a line between two
 * terminals.
 *
 * The upstream is the device's terminal (a path: /dev/pts/N, a link to it
 * such as a device's --link, or a real port), opened raw, as a driver
 * opens it. The client gets a pseudo-terminal of the proxy's own, whose
 * slave the proxy keeps open as a serial device does (server_serial.c), so
 * a client closing and opening the port again finds the line as it was.
 * The line is one connection for the whole run (number 1 in the
 * transcript).
 *
 * Both terminals are watched with a uv_poll_t and read and written with
 * read(2)/write(2). Bytes pass through the network faults that make sense
 * on a line (latency, bandwidth, slicer, limit_data: the line is cut after
 * that many bytes, both ways, for the rest of the run; fuzz, on the frames
 * of the faults script's framing); the others, and rules, are refused when
 * the faults are loaded or added. What waits for its time waits in a queue
 * per direction, released by the direction's timer; past a bound of bytes
 * waiting, the direction stops reading its source. The transcript's frames
 * are read from a copy of each direction's bytes (proxy_tap.h).
 * On the loop thread. */
#include "record/proxy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/loop.h"
#include "device/conn.h"
#include "device/server_serial.h"
#include "record/proxy_fuzz.h"
#include "record/proxy_tap.h"

typedef struct sitem {
    struct sitem *next;
    uint64_t due_us;
    size_t len;
    uint8_t data[];
} sitem;

/* One direction: requests read from the client's terminal and written to
 * the device's, or replies the other way. */
typedef struct sdir {
    dw__sim_serial_line *s;
    int dir;
    dw_sim_shaper sh;
    dw__sim_tap tap;
    dw_decoder *dec; /* frames, while a fuzz acts on the direction */
    dw_buf raw, payload;
    dw__sim_fuzz_leg fz;
    sitem *head, *tail;
    size_t queued;
    dw_buf out; /* due, not taken by the terminal yet */
    size_t out_at;
    uv_timer_t timer;
    int blocked, held, failed; /* no room; too much waits; the destination failed */
    int gone;                  /* the source ended or failed: no more reading */
} sdir;

struct dw__sim_serial_line {
    dw_sim_proxy *px;
    int up;            /* the device's terminal */
    int master, slave; /* the client's */
    uv_poll_t up_poll, down_poll;
    int up_events, down_events;
    int handles, polls, cut;
    char *upstream, *link;
    uint64_t id;
    dw_sim_rng rng;
    sdir dirs[2];
};

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

const char *dw__sim_proxy_serial_refuses(const dw_sim_toxic *t)
{
    switch (t->kind) {
    case DW_SIM_TOXIC_LATENCY:
    case DW_SIM_TOXIC_BANDWIDTH:
    case DW_SIM_TOXIC_SLICER:
    case DW_SIM_TOXIC_LIMIT_DATA:
    case DW_SIM_TOXIC_FUZZ:
        return NULL;
    default:
        return "a serial line takes latency, bandwidth, slicer, limit_data and fuzz (a line "
               "has no connection to close slowly, time out or reset)";
    }
}

/* The terminal a direction reads, and the one it writes. */
static int src_fd(const sdir *d)
{
    return d->dir == DW_SIM_DIR_REQUEST ? d->s->master : d->s->up;
}

static int dst_fd(const sdir *d)
{
    return d->dir == DW_SIM_DIR_REQUEST ? d->s->up : d->s->master;
}

/* ---- watching the terminals ------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_set(uv_poll_t *h, int *have, int want)
{
    if (want == *have)
        return;
    *have = want;
    if (want)
        uv_poll_start(h, want, on_poll);
    else
        uv_poll_stop(h);
}

/* The client's terminal: read requests unless too much waits; write
 * replies when they found no room. The device's the other way round. */
static void update_polls(dw__sim_serial_line *s)
{
    if (s->px->stopped)
        return;
    const sdir *rq = &s->dirs[DW_SIM_DIR_REQUEST], *rp = &s->dirs[DW_SIM_DIR_REPLY];
    poll_set(&s->down_poll, &s->down_events,
             (rq->held || rq->gone ? 0 : UV_READABLE) | (rp->blocked ? UV_WRITABLE : 0));
    poll_set(&s->up_poll, &s->up_events,
             (rp->held || rp->gone ? 0 : UV_READABLE) | (rq->blocked ? UV_WRITABLE : 0));
}

/* ---- writing --------------------------------------------------------------------- */

/* Write what the destination takes now. */
static void flush(sdir *d)
{
    dw__sim_serial_line *s = d->s;
    d->blocked = 0;
    while (d->out_at < d->out.len && !d->failed) {
        ssize_t w = write(dst_fd(d), d->out.data + d->out_at, d->out.len - d->out_at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            d->blocked = 1; /* the reader is not reading: wait for room */
            break;
        }
        if (w < 0) {
            dw_log(s->px->logger, DW_LOG_WARN, "%s: write: %s; the %s stop",
                   d->dir == DW_SIM_DIR_REQUEST ? s->upstream : s->px->addr, strerror(errno),
                   d->dir == DW_SIM_DIR_REQUEST ? "requests" : "replies");
            d->failed = 1;
            break;
        }
        d->out_at += (size_t)w;
    }
    if (d->out_at == d->out.len || d->failed) {
        dw_buf_clear(&d->out);
        d->out_at = 0;
    }
    size_t waiting = d->queued + d->out.len - d->out_at;
    if (d->held && waiting <= DW_SIM_WRITE_QUEUE_LIMIT / 2)
        d->held = 0;
    else if (!d->held && waiting > DW_SIM_WRITE_QUEUE_LIMIT)
        d->held = 1; /* a slow line: stop reading the source */
    update_polls(s);
}

static void out_write(sdir *d, const uint8_t *p, size_t n)
{
    if (d->failed || n == 0)
        return;
    if (dw_buf_append(&d->out, p, n) != DW_OK) {
        dw_log(d->s->px->logger, DW_LOG_ERROR, "out of memory: %zu bytes dropped", n);
        return;
    }
    flush(d);
}

/* ---- the timed queue ---------------------------------------------------------------- */

static void on_dir_timer(uv_timer_t *t);

/* Write what is due, then wait for the next. */
static void dir_drain(sdir *d)
{
    uint64_t now = now_us();
    while (d->head && d->head->due_us <= now + 500) {
        sitem *it = d->head;
        d->head = it->next;
        if (!d->head)
            d->tail = NULL;
        d->queued -= it->len;
        out_write(d, it->data, it->len);
        free(it);
    }
    flush(d);
    if (d->head)
        uv_timer_start(&d->timer, on_dir_timer, (d->head->due_us - now + 999) / 1000, 0);
}

static void on_dir_timer(uv_timer_t *t)
{
    dir_drain(t->data);
}

typedef struct plan_ctx {
    sdir *d;
    const uint8_t *p;
    uint64_t extra_us;
    int rc;
} plan_ctx;

static void plan_piece(void *user, size_t off, size_t len, uint64_t due_us)
{
    plan_ctx *pc = user;
    sdir *d = pc->d;
    sitem *it = pc->rc == DW_OK ? malloc(sizeof *it + len) : NULL;
    if (!it) {
        pc->rc = DW_ENOMEM;
        return;
    }
    it->next = NULL;
    it->len = len;
    memcpy(it->data, pc->p + off, len);
    due_us += pc->extra_us;
    it->due_us = d->tail && d->tail->due_us > due_us ? d->tail->due_us : due_us;
    if (d->tail)
        d->tail->next = it;
    else
        d->head = it;
    d->tail = it;
    d->queued += len;
}

/* Bytes on, through the network faults, `delay_ms` later. */
static void emit(sdir *d, const uint8_t *p, size_t n, unsigned delay_ms)
{
    dw__sim_serial_line *s = d->s;
    if (s->cut || n == 0)
        return;
    if (!d->head && !delay_ms && !dw_sim_shaper_active(&d->sh)) {
        out_write(d, p, n);
        return;
    }
    plan_ctx pc = {d, p, (uint64_t)delay_ms * 1000, DW_OK};
    int close = 0;
    dw_sim_shaper_plan(&d->sh, &s->rng, now_us(), n, plan_piece, &pc, &close);
    if (pc.rc != DW_OK)
        dw_log(s->px->logger, DW_LOG_ERROR, "out of memory: bytes dropped");
    if (close) { /* what was planned still goes out; nothing more, either way */
        s->cut = 1;
        dw_sim_transcript_event(s->px->transcript, NULL, s->id, "fault", NULL, 0,
                                d->dir ? "reply.limit_data" : "request.limit_data", NULL);
        dw_log(s->px->logger, DW_LOG_INFO, "%s: limit_data reached: the line is cut", s->px->addr);
    }
    dir_drain(d);
}

/* ---- reading ------------------------------------------------------------------------ */

/* A whole frame (its bytes in d->raw) through the fuzz. */
static void fuzz_frame(sdir *d)
{
    dw__sim_fuzz_piece pc[DW__SIM_FUZZ_PIECES];
    size_t n = dw__sim_fuzz_frame(d->s->px, &d->fz, &d->sh.fz, d->dir, d->s->id, d->raw.data,
                                  d->raw.len, d->payload.data, d->payload.len, pc);
    for (size_t i = 0; i < n; i++)
        emit(d, pc[i].p, pc[i].n, pc[i].delay_ms);
}

/* Bytes read on the direction's source. */
static void dir_in(sdir *d, const uint8_t *p, size_t n)
{
    dw__sim_tap_feed(&d->tap, p, n); /* what the side sent, before any fault */
    if (!d->dec) {
        emit(d, p, n, 0);
        return;
    }
    for (size_t at = 0; at < n;) {
        size_t used = 0;
        dw_error err;
        dw_error_clear(&err);
        int rc = dw_decoder_feed(d->dec, p + at, n - at, &used, &d->payload, &err);
        if (dw_buf_append(&d->raw, p + at, used) != DW_OK) {
            dw_log(d->s->px->logger, DW_LOG_ERROR, "out of memory: bytes dropped");
            dw_decoder_reset(d->dec);
            dw_buf_clear(&d->raw);
            return;
        }
        at += used;
        if (rc == DW_MORE)
            break;
        if (rc == DW_OK)
            fuzz_frame(d);
        else /* not a frame: it passes as it came */
            emit(d, d->raw.data, d->raw.len, 0);
        dw_buf_clear(&d->raw);
    }
}

/* Direction d's source is readable: what it holds goes through d. */
static void read_side(dw__sim_serial_line *s, sdir *d)
{
    size_t cap;
    uint8_t *buf = dw_sim_loop_read_buffer(s->px->loop, &cap);
    for (;;) {
        ssize_t n = read(src_fd(d), buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) { /* the proxy keeps the client's slave open: the device's line ended */
            int rq = d->dir == DW_SIM_DIR_REQUEST;
            dw_log(s->px->logger, DW_LOG_WARN, "%s: read: %s; the %s stop",
                   rq ? s->px->addr : s->upstream, n < 0 ? strerror(errno) : "end of file",
                   rq ? "requests" : "replies");
            d->gone = 1;
            break;
        }
        dir_in(d, buf, (size_t)n);
        if ((size_t)n < cap || d->held)
            break;
    }
    update_polls(s);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    dw__sim_serial_line *s = h->data;
    int client = h == &s->down_poll;
    sdir *in = &s->dirs[client ? DW_SIM_DIR_REQUEST : DW_SIM_DIR_REPLY];
    sdir *out = &s->dirs[client ? DW_SIM_DIR_REPLY : DW_SIM_DIR_REQUEST];
    if (status < 0) {
        dw_log(s->px->logger, DW_LOG_ERROR, "%s: poll: %s", client ? s->px->addr : s->upstream,
               uv_strerror(status));
        in->gone = 1;
        update_polls(s);
        return;
    }
    if (events & UV_WRITABLE)
        flush(out);
    if (events & UV_READABLE)
        read_side(s, in);
}

/* ---- opening and closing ------------------------------------------------------------ */

static void line_free(dw__sim_serial_line *s)
{
    for (int k = 0; k < 2; k++) {
        sdir *d = &s->dirs[k];
        for (sitem *it = d->head, *next; it; it = next) {
            next = it->next;
            free(it);
        }
        dw__sim_tap_free(&d->tap);
        dw_decoder_free(d->dec);
        dw_buf_free(&d->raw);
        dw_buf_free(&d->payload);
        dw_buf_free(&d->out);
        dw__sim_fuzz_leg_free(&d->fz);
    }
    if (s->up >= 0)
        close(s->up);
    if (s->master >= 0)
        close(s->master);
    if (s->slave >= 0)
        close(s->slave);
    free(s->upstream);
    free(s->link);
    free(s);
}

static void on_line_closed(uv_handle_t *h)
{
    dw__sim_serial_line *s = h->data;
    if (--s->handles == 0)
        line_free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    sdir *d = h->data; /* a direction's timer points at its direction */
    if (--d->s->handles == 0)
        line_free(d->s);
}

/* The device's terminal, raw and non-blocking. */
static int open_upstream(dw__sim_serial_line *s, dw_error *err)
{
    s->up = open(s->upstream, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (s->up < 0)
        return dw_error_set(err, DW_EIO, "--upstream %s: %s", s->upstream, strerror(errno));
    return dw__sim_tty_make_raw(s->up, s->upstream, err);
}

/* The two terminals, the link, the directions' faults and transcripts. */
static int line_open(dw__sim_serial_line *s, dw_error *err)
{
    dw_sim_proxy *p = s->px;
    int rc = open_upstream(s, err);
    if (rc == DW_OK)
        rc = dw__sim_pty_open(&s->master, &s->slave, p->addr, sizeof p->addr, err);
    uv_loop_t *uv = dw_sim_loop_uv(p->loop);
    s->up_poll.data = s->down_poll.data = s;
    if (rc == DW_OK && uv_poll_init(uv, &s->up_poll, s->up) == 0)
        s->polls++;
    if (rc == DW_OK && s->polls == 1 && uv_poll_init(uv, &s->down_poll, s->master) == 0)
        s->polls++;
    if (rc != DW_OK)
        return rc;
    if (s->polls < 2)
        return dw_error_set(err, DW_EIO, "poll %s: cannot watch the line", s->upstream);
    if (s->link && (rc = dw__sim_link_make(s->link, p->addr, err)) != DW_OK) {
        free(s->link);
        s->link = NULL; /* not made: nothing to remove */
        return rc;
    }
    s->id = ++p->next_id;
    p->accepted = 1;
    p->nconns = 1;
    dw_sim_rng_seed(&s->rng, p->seed, s->id);
    dw_sim_transcript_event(p->transcript, NULL, s->id, "open", NULL, 0, NULL, p->addr);
    for (int k = 0; k < 2 && rc == DW_OK; k++) {
        sdir *d = &s->dirs[k];
        dw_sim_shaper_init(&d->sh, p->net, k, &s->rng);
        rc = dw__sim_tap_init(&d->tap, p->frame_m[k], p->transcript,
                              k == DW_SIM_DIR_REPLY ? &p->script->prompt : NULL, s->id,
                              k == DW_SIM_DIR_REQUEST ? "in" : "out");
        if (rc == DW_OK && d->sh.fuzz && !(d->dec = dw_decoder_new(p->frame_m[k])))
            rc = DW_ENOMEM;
    }
    if (rc != DW_OK)
        return dw_error_set(err, rc, "out of memory");
    update_polls(s);
    return DW_OK;
}

int dw__sim_proxy_serial_open(dw_sim_proxy *p, const char *upstream, const char *link,
                              dw_error *err)
{
    dw__sim_serial_line *s = calloc(1, sizeof *s);
    if (!s || !(s->upstream = strdup(upstream)) || (link && !(s->link = strdup(link)))) {
        if (s)
            free(s->upstream);
        free(s);
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    }
    s->px = p;
    s->up = s->master = s->slave = -1;
    uv_loop_t *uv = dw_sim_loop_uv(p->loop);
    for (int k = 0; k < 2; k++) {
        s->dirs[k].s = s;
        s->dirs[k].dir = k;
        uv_timer_init(uv, &s->dirs[k].timer);
        s->dirs[k].timer.data = &s->dirs[k];
    }
    s->handles = 2;
    p->line = s;
    return line_open(s, err); /* on failure dw__sim_proxy_serial_close frees s */
}

void dw__sim_proxy_serial_close(dw_sim_proxy *p)
{
    dw__sim_serial_line *s = p->line;
    if (!s)
        return;
    p->line = NULL;
    if (s->link)
        dw__sim_link_remove(s->link, p->addr);
    if (s->id) {
        for (int k = 0; k < 2; k++)
            dw__sim_tap_finish(&s->dirs[k].tap);
        dw_sim_transcript_event(p->transcript, NULL, s->id, "close", NULL, 0, NULL, p->addr);
        p->nconns = 0;
    }
    s->handles = 2 + s->polls;
    for (int k = 0; k < 2; k++)
        uv_close((uv_handle_t *)&s->dirs[k].timer, on_timer_closed);
    if (s->polls >= 1)
        uv_close((uv_handle_t *)&s->up_poll, on_line_closed);
    if (s->polls == 2)
        uv_close((uv_handle_t *)&s->down_poll, on_line_closed);
}

/* A fuzz added reads frames from the next byte on (a frame under way
 * reads as a short one); one removed lets what it holds pass. */
static void fuzz_changed(dw_sim_proxy *p, sdir *d)
{
    if (d->sh.fuzz && !d->dec) {
        if (!(d->dec = dw_decoder_new(p->frame_m[d->dir])))
            dw_log(p->logger, DW_LOG_ERROR, "out of memory: the fuzz does not act");
        return;
    }
    if (d->sh.fuzz || !d->dec)
        return;
    emit(d, d->raw.data, d->raw.len, 0);
    dw_buf_clear(&d->raw);
    dw__sim_fuzz_piece held;
    if (dw__sim_fuzz_flush(&d->fz, &held))
        emit(d, held.p, held.n, 0);
    dw_decoder_free(d->dec);
    d->dec = NULL;
}

void dw__sim_proxy_serial_take(dw_sim_proxy *p, const dw_sim_toxic *t)
{
    dw__sim_serial_line *s = p->line;
    if (s && s->id && dw_sim_shaper_take(&s->dirs[t->direction].sh, t, &s->rng))
        fuzz_changed(p, &s->dirs[t->direction]);
}

void dw__sim_proxy_serial_drop(dw_sim_proxy *p, const dw_sim_toxic *t)
{
    dw__sim_serial_line *s = p->line;
    if (s && s->id && dw_sim_shaper_drop(&s->dirs[t->direction].sh, t))
        fuzz_changed(p, &s->dirs[t->direction]);
}
