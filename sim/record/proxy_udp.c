/* devwire-sim's fault proxy in front of a UDP device, datagram by datagram.
 *
 * Every client address is a peer with a socket of its own connected to the
 * device, so the device sees one sender per client and its replies come
 * back on that socket, to be sent to the client from the proxy's address.
 * A peer is forgotten (its socket closed, a "close" in the transcript)
 * after the idle time (dw_sim_proxy_options) without a datagram either way, at
 * disconnect_all, at a limit_data or a timeout's end; the next datagram
 * from that address makes a new peer.
 *
 * A datagram is never cut, merged or reordered: the network faults that
 * act on it whole apply (latency: each datagram waits a draw, the order
 * kept; bandwidth: datagrams leave at the rate; limit_data: the datagram
 * that would pass the limit is dropped and the peer forgotten; timeout:
 * nothing passes, the peer is forgotten after ms); the others are refused
 * when the faults are loaded or added. The transcript reads each datagram
 * with the script's framing (a frame never spans two datagrams).
 * On the loop thread. */
#include "record/proxy_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/loop.h"
#include "common/net.h"
#include "record/proxy_tap.h"

typedef struct dgram {
    struct dgram *next;
    uint64_t due_us;
    size_t len;
    uint8_t data[];
} dgram;

/* One direction of one peer: its faults, its transcript, what waits. */
typedef struct udir {
    dw__sim_udp_peer *c;
    int dir;
    dw_sim_shaper sh;
    dw__sim_tap tap;
    dgram *head, *tail;
    size_t queued;
    uv_timer_t timer;
} udir;

struct dw__sim_udp_peer {
    dw__sim_udp_peer *prev, *next;
    dw_sim_proxy *px;
    uv_udp_t up; /* connected to the device */
    uv_timer_t idle;
    struct sockaddr_storage addr;
    char name[DW_SIM_ADDR_MAX];
    uint64_t id;
    dw_sim_rng rng;
    udir dirs[2];
    int handles, closing;
};

/* Datagrams waiting for their time, per direction, at most. */
#define UDP_QUEUE_LIMIT ((size_t)4 << 20)

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

const char *dw__sim_proxy_udp_refuses(const dw_sim_toxic *t)
{
    switch (t->kind) {
    case DW_SIM_TOXIC_LATENCY:
    case DW_SIM_TOXIC_BANDWIDTH:
    case DW_SIM_TOXIC_LIMIT_DATA:
    case DW_SIM_TOXIC_TIMEOUT:
        return NULL;
    default:
        return "a UDP proxy takes latency, bandwidth, limit_data and timeout (a datagram is "
               "never cut, and there is no connection to close slowly or reset)";
    }
}

/* ---- forgetting a peer ----------------------------------------------------------- */

static void peer_free(dw__sim_udp_peer *c)
{
    for (int d = 0; d < 2; d++) {
        for (dgram *g = c->dirs[d].head, *next; g; g = next) {
            next = g->next;
            free(g);
        }
        dw__sim_tap_free(&c->dirs[d].tap);
    }
    free(c);
}

static void on_peer_closed(uv_handle_t *h)
{
    dw__sim_udp_peer *c = h->data;
    if (--c->handles == 0)
        peer_free(c);
}

static void on_dir_timer_closed(uv_handle_t *h)
{
    udir *u = h->data; /* a direction's timer points at its direction */
    if (--u->c->handles == 0)
        peer_free(u->c);
}

static void peer_forget(dw__sim_udp_peer *c, const char *why)
{
    if (c->closing)
        return;
    dw_sim_proxy *p = c->px;
    c->closing = 1;
    if (why)
        dw_sim_transcript_event(p->transcript, NULL, c->id, "fault", NULL, 0, why, NULL);
    dw_sim_transcript_event(p->transcript, NULL, c->id, "close", NULL, 0, NULL, c->name);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->peers = c->next;
    if (c->next)
        c->next->prev = c->prev;
    p->nconns--;
    uv_close((uv_handle_t *)&c->up, on_peer_closed);
    uv_close((uv_handle_t *)&c->idle, on_peer_closed);
    for (int d = 0; d < 2; d++)
        uv_close((uv_handle_t *)&c->dirs[d].timer, on_dir_timer_closed);
}

/* Idle for the idle time, or a timeout's end. */
static void on_idle(uv_timer_t *t)
{
    dw__sim_udp_peer *c = t->data;
    peer_forget(c, c->dirs[0].sh.timeout || c->dirs[1].sh.timeout ? "timeout" : NULL);
}

/* ---- sending ---------------------------------------------------------------------- */

typedef struct usend {
    uv_udp_send_t req;
    uint8_t data[];
} usend;

static void on_sent(uv_udp_send_t *req, int status)
{
    (void)status; /* a datagram lost on the way is a datagram lost */
    free(req->data);
}

/* One datagram out: to the device on the peer's socket, or to the client
 * from the proxy's. */
static void dgram_send(dw__sim_udp_peer *c, int dir, const uint8_t *data, size_t n)
{
    dw_sim_proxy *p = c->px;
    uv_udp_t *s = dir == DW_SIM_DIR_REQUEST ? &c->up : &p->udp;
    const struct sockaddr *to = dir == DW_SIM_DIR_REQUEST ? NULL : (struct sockaddr *)&c->addr;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    int r = uv_udp_try_send(s, &b, 1, to);
    if (r >= 0 || (r != UV_EAGAIN && r != UV_ENOSYS))
        return;
    usend *q = malloc(sizeof *q + n);
    if (!q)
        return;
    memcpy(q->data, data, n);
    q->req.data = q;
    b = uv_buf_init((char *)q->data, (unsigned)n);
    if (uv_udp_send(&q->req, s, &b, 1, to, on_sent) != 0)
        free(q);
}

static void on_dir_timer(uv_timer_t *t);

/* Send what is due, then wait for the next. */
static void dir_drain(dw__sim_udp_peer *c, int dir)
{
    udir *u = &c->dirs[dir];
    uint64_t now = now_us();
    while (u->head && !c->closing && u->head->due_us <= now + 500) {
        dgram *g = u->head;
        u->head = g->next;
        if (!u->head)
            u->tail = NULL;
        u->queued -= g->len;
        dgram_send(c, dir, g->data, g->len);
        free(g);
    }
    if (!c->closing && u->head)
        uv_timer_start(&u->timer, on_dir_timer, (u->head->due_us - now + 999) / 1000, 0);
}

static void on_dir_timer(uv_timer_t *t)
{
    udir *u = t->data;
    dir_drain(u->c, u->dir);
}

typedef struct due_ctx {
    uint64_t due;
} due_ctx;

static void last_due(void *user, size_t off, size_t len, uint64_t due_us)
{
    (void)off;
    (void)len;
    ((due_ctx *)user)->due = due_us;
}

/* A datagram read on direction dir: to the transcript, then through the
 * faults and on. */
static void dgram_in(dw__sim_udp_peer *c, int dir, const uint8_t *data, size_t n)
{
    udir *u = &c->dirs[dir];
    dw__sim_tap_feed(&u->tap, data, n); /* a frame never spans datagrams */
    dw__sim_tap_finish(&u->tap);
    uv_timer_again(&c->idle);
    if (!u->head && !dw_sim_shaper_active(&u->sh)) {
        dgram_send(c, dir, data, n);
        return;
    }
    uint64_t now = now_us();
    due_ctx dc = {now};
    int close = 0;
    size_t passed = n ? dw_sim_shaper_plan(&u->sh, &c->rng, now, n, last_due, &dc, &close) : 0;
    if (close) {
        peer_forget(c, dir ? "reply.limit_data" : "request.limit_data");
        return;
    }
    if ((n && passed < n) || u->queued + n > UDP_QUEUE_LIMIT)
        return; /* timeout: nothing passes; a full queue drops, as a full link does */
    dgram *g = malloc(sizeof *g + n);
    if (!g)
        return;
    g->next = NULL;
    g->len = n;
    memcpy(g->data, data, n);
    g->due_us = u->tail && u->tail->due_us > dc.due ? u->tail->due_us : dc.due;
    if (u->tail)
        u->tail->next = g;
    else
        u->head = g;
    u->tail = g;
    u->queued += n;
    dir_drain(c, dir);
}

/* ---- receiving -------------------------------------------------------------------- */

static void on_alloc_proxy(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    dw_sim_proxy *p = h->data;
    size_t size;
    (void)hint;
    uint8_t *buf = dw_sim_loop_read_buffer(p->loop, &size);
    *b = uv_buf_init((char *)buf, (unsigned)size);
}

static void on_alloc_peer(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    dw__sim_udp_peer *c = h->data;
    on_alloc_proxy((uv_handle_t *)&c->px->udp, hint, b);
}

/* A reply from the device, on the peer's socket. */
static void on_reply(uv_udp_t *s, ssize_t nread, const uv_buf_t *b, const struct sockaddr *from,
                     unsigned flags)
{
    dw__sim_udp_peer *c = s->data;
    (void)from;
    if (nread < 0 || (nread == 0 && !from) || c->closing)
        return; /* an ICMP error (no device there) or nothing */
    if (flags & UV_UDP_PARTIAL)
        dw_log(c->px->logger, DW_LOG_WARN, "%s: peer %llu: a reply larger than %u bytes, cut",
               c->name, (unsigned long long)c->id, (unsigned)b->len);
    dgram_in(c, DW_SIM_DIR_REPLY, (const uint8_t *)b->base, (size_t)nread);
}

/* A new peer for a client at `from`: its socket connected to the device. */
static dw__sim_udp_peer *peer_new(dw_sim_proxy *p, const struct sockaddr *from)
{
    dw__sim_udp_peer *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    uv_loop_t *uv = dw_sim_loop_uv(p->loop);
    c->px = p;
    memcpy(&c->addr, from,
           from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    dw_sim_addr_format(from, c->name, sizeof c->name);
    c->id = ++p->next_id;
    p->accepted++;
    dw_sim_rng_seed(&c->rng, p->seed, c->id);
    uv_udp_init(uv, &c->up);
    uv_timer_init(uv, &c->idle);
    c->up.data = c->idle.data = c;
    c->handles = 4;
    for (int d = 0; d < 2; d++) {
        udir *u = &c->dirs[d];
        u->c = c;
        u->dir = d;
        uv_timer_init(uv, &u->timer);
        u->timer.data = u;
        dw_sim_shaper_init(&u->sh, p->net, d, &c->rng);
    }
    c->next = p->peers;
    if (p->peers)
        p->peers->prev = c;
    p->peers = c;
    p->nconns++;
    dw_sim_transcript_event(p->transcript, NULL, c->id, "open", NULL, 0, NULL, c->name);
    int rc = DW_OK;
    for (int d = 0; d < 2 && rc == DW_OK; d++)
        rc = dw__sim_tap_init(&c->dirs[d].tap, p->frame_m[d], p->transcript,
                              d == DW_SIM_DIR_REPLY ? &p->script->prompt : NULL, c->id,
                              d == DW_SIM_DIR_REQUEST ? "in" : "out");
    int r = rc == DW_OK ? uv_udp_connect(&c->up, (const struct sockaddr *)&p->up_sa) : UV_ENOMEM;
    if (r == 0)
        r = uv_udp_recv_start(&c->up, on_alloc_peer, on_reply);
    if (r != 0) {
        dw_log(p->logger, DW_LOG_WARN, "%s: peer %llu: connect %s: %s", c->name,
               (unsigned long long)c->id, p->up_addr, uv_strerror(r));
        peer_forget(c, NULL);
        return NULL;
    }
    uv_timer_start(&c->idle, on_idle, p->udp_idle_ms, p->udp_idle_ms);
    for (int d = 0; d < 2; d++)
        if (c->dirs[d].sh.timeout && c->dirs[d].sh.timeout_ms)
            uv_timer_start(&c->idle, on_idle, c->dirs[d].sh.timeout_ms, 0);
    return c;
}

static dw__sim_udp_peer *peer_find(dw_sim_proxy *p, const struct sockaddr *from)
{
    size_t len =
        from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    for (dw__sim_udp_peer *c = p->peers; c; c = c->next)
        if (memcmp(&c->addr, from, len) == 0)
            return c;
    return NULL;
}

/* A request from a client, on the proxy's socket. */
static void on_request(uv_udp_t *s, ssize_t nread, const uv_buf_t *b, const struct sockaddr *from,
                       unsigned flags)
{
    dw_sim_proxy *p = s->data;
    if (nread < 0 || !from || p->stopped)
        return;
    dw__sim_udp_peer *c = peer_find(p, from);
    if (!c && p->nconns >= p->max_connections) {
        dw_log(p->logger, DW_LOG_WARN, "a datagram from a new peer dropped: peer limit (%zu)",
               p->max_connections);
        return;
    }
    if (!c && !(c = peer_new(p, from)))
        return;
    if (flags & UV_UDP_PARTIAL)
        dw_log(p->logger, DW_LOG_WARN, "%s: peer %llu: a request larger than %u bytes, cut",
               c->name, (unsigned long long)c->id, (unsigned)b->len);
    dgram_in(c, DW_SIM_DIR_REQUEST, (const uint8_t *)b->base, (size_t)nread);
}

int dw__sim_proxy_udp_open(dw_sim_proxy *p, const char *host, uint16_t port, dw_error *err)
{
    int fd = -1;
    int rc = dw_sim_net_bind(host, port, SOCK_DGRAM, 0, &fd, p->addr, &p->port, err);
    if (rc != DW_OK)
        return rc;
    uv_udp_init(dw_sim_loop_uv(p->loop), &p->udp);
    p->udp.data = p;
    p->udp_open = 1;
    int r = uv_udp_open(&p->udp, fd);
    if (r == 0)
        r = uv_udp_recv_start(&p->udp, on_alloc_proxy, on_request);
    if (r != 0)
        return dw_error_set(err, DW_EIO, "listen %s: %s", p->addr, uv_strerror(r));
    return DW_OK;
}

static void on_static_closed(uv_handle_t *h)
{
    (void)h; /* embedded in the proxy */
}

void dw__sim_proxy_udp_drop_all(dw_sim_proxy *p)
{
    while (p->peers)
        peer_forget(p->peers, NULL);
}

void dw__sim_proxy_udp_close(dw_sim_proxy *p)
{
    dw__sim_proxy_udp_drop_all(p);
    if (p->udp_open) {
        uv_close((uv_handle_t *)&p->udp, on_static_closed);
        p->udp_open = 0;
    }
}

void dw__sim_proxy_udp_take(dw_sim_proxy *p, const dw_sim_toxic *t)
{
    for (dw__sim_udp_peer *c = p->peers; c; c = c->next)
        if (dw_sim_shaper_take(&c->dirs[t->direction].sh, t, &c->rng) &&
            t->kind == DW_SIM_TOXIC_TIMEOUT && t->ms)
            uv_timer_start(&c->idle, on_idle, t->ms, 0);
}

void dw__sim_proxy_udp_drop(dw_sim_proxy *p, const dw_sim_toxic *t)
{
    for (dw__sim_udp_peer *c = p->peers; c; c = c->next)
        if (dw_sim_shaper_drop(&c->dirs[t->direction].sh, t) && t->kind == DW_SIM_TOXIC_TIMEOUT)
            uv_timer_start(&c->idle, on_idle, p->udp_idle_ms, p->udp_idle_ms);
}
