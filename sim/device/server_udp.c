/* devwire-sim over UDP: one datagram is one burst of requests. The
 * script's request framing applies inside each datagram (it may carry
 * several frames; a frame never spans datagrams: what is left of one at the
 * datagram's end is dropped and logged); replies go back to the sender,
 * each frame of a reply in the datagram the engine built for it (a split
 * reply goes out as one datagram per piece). Every sender address is a
 * peer with its own session ("connection" scope) and number in the
 * transcript; periodic messages go to every peer seen. Faults: "drop"
 * (and "close", "reset": there is nothing to close) answers nothing,
 * "hang" answers that peer nothing from then on, "garbage" and
 * "duplicate" as over TCP; delays are timers. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device/outcome.h"
#include "device/server_udp.h"

#define MAX_DATAGRAM ((size_t)65536)

typedef struct udp_peer {
    struct udp_peer *next;
    struct sockaddr_storage addr;
    char name[DW_SIM_ADDR_MAX];
    uint64_t id;
    sim_gen *gen;
    dw_sim_session *sess;
} udp_peer;

/* A reply waiting for its delay or for its next piece. */
typedef struct udp_job {
    uv_timer_t timer;
    struct sim_udp *u;  /* while the job waits (closing the socket closes its jobs first) */
    dw_sim_server *srv; /* outlives the job: its close callback runs after the socket's */
    struct udp_job *prev, *next;
    udp_peer *peer;
    sim_gen *gen; /* a reference: the outcome's name and split sizes live in its script */
    dw_sim_player play;
} udp_job;

typedef struct sim_udp {
    uv_udp_t sock;
    dw_sim_server *srv;
    const dw_marshaller *dec_m; /* the marshaller `dec` was made for */
    dw_decoder *dec;
    dw_buf payload;
    dw_sim_player play; /* the request being answered now */
    udp_peer *asking;   /* its peer */
    udp_peer *peers;
    size_t npeers;
    udp_job *jobs;
    uint8_t buf[MAX_DATAGRAM];
} sim_udp;

/* A datagram the socket did not take at once; the bytes follow. */
typedef struct udp_send {
    uv_udp_send_t req;
    uint8_t data[];
} udp_send;

static void on_sent(uv_udp_send_t *req, int status)
{
    (void)status; /* a datagram lost is a datagram lost */
    free(req);
}

static void send_to(sim_udp *u, const udp_peer *p, const uint8_t *d, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);
    int r = uv_udp_try_send(&u->sock, &b, 1, (const struct sockaddr *)&p->addr);
    if (r >= 0 || (r != UV_EAGAIN && r != UV_ENOSYS)) {
        if (r < 0)
            dw__sim_log(u->srv, DW_LOG_INFO, "%s: sending a datagram: %s", p->name, uv_strerror(r));
        return;
    }
    udp_send *s = malloc(sizeof *s + n);
    if (!s)
        return;
    memcpy(s->data, d, n);
    b = uv_buf_init((char *)s->data, (unsigned)n);
    if (uv_udp_send(&s->req, &u->sock, &b, 1, (const struct sockaddr *)&p->addr, on_sent) != 0)
        free(s);
}

static void record(sim_udp *u, const udp_peer *p, const char *dir, const uint8_t *d, size_t n,
                   const char *match, const char *peer)
{
    dw_sim_transcript_event(u->srv->transcript, u->srv->name, p->id, dir, d, n, match, peer);
}

/* ---- peers ------------------------------------------------------------------ */

static int peer_bind(sim_udp *u, udp_peer *p)
{
    return dw__sim_bind(u->srv, &p->gen, &p->sess);
}

/* The peer for a sender address: known, or new (NULL above the limit). */
static udp_peer *peer_of(sim_udp *u, const struct sockaddr *sa)
{
    socklen_t len =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    for (udp_peer *p = u->peers; p; p = p->next)
        if (memcmp(&p->addr, sa, len) == 0)
            return p;
    dw_sim_server *s = u->srv;
    char name[DW_SIM_ADDR_MAX];
    dw_sim_addr_format(sa, name, sizeof name);
    s->accepted++;
    if (u->npeers >= s->max_connections) {
        dw__sim_log(s, DW_LOG_WARN, "%s: refused: connection limit (%zu) reached", name,
                    s->max_connections);
        return NULL;
    }
    udp_peer *p = calloc(1, sizeof *p);
    if (!p || peer_bind(u, p) != DW_OK) {
        free(p);
        dw__sim_log(s, DW_LOG_ERROR, "%s: out of memory, datagram dropped", name);
        return NULL;
    }
    memcpy(&p->addr, sa, len);
    memcpy(p->name, name, sizeof name);
    p->id = ++s->next_id;
    p->next = u->peers;
    u->peers = p;
    u->npeers++;
    record(u, p, "open", NULL, 0, NULL, p->name);
    return p;
}

/* ---- replies ------------------------------------------------------------------ */

static void on_job_closed(uv_handle_t *h)
{
    dw_sim_player *pl = h->data; /* the timer is the job's player's */
    udp_job *j = pl->owner;
    dw__sim_player_free(&j->play);
    dw__sim_gen_release(j->srv, j->gen);
    free(j);
}

static void job_end(udp_job *j)
{
    sim_udp *u = j->u;
    if (j->prev)
        j->prev->next = j->next;
    else
        u->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    uv_close((uv_handle_t *)&j->timer, on_job_closed);
}

/* Each piece of a reply is a datagram to the peer that asked. */
static void now_write(dw_sim_player *pl, const uint8_t *d, size_t n)
{
    sim_udp *u = pl->owner;
    send_to(u, u->asking, d, n);
}

static void now_done(dw_sim_player *pl, int replied)
{
    (void)pl;
    (void)replied;
}

static void job_write(dw_sim_player *pl, const uint8_t *d, size_t n)
{
    udp_job *j = pl->owner;
    send_to(j->u, j->peer, d, n);
}

static void job_done(dw_sim_player *pl, int replied)
{
    (void)replied;
    job_end(pl->owner);
}

/* No connection to end: "close" and "reset" answer nothing. */
static const dw_sim_player_ops now_play = {now_write, NULL, NULL, NULL, now_done, NULL, 1};
static const dw_sim_player_ops job_play = {job_write, NULL, NULL, NULL, job_done, NULL, 1};

/* A reply that must wait: keep it (and its generation) on a timer. */
static void job_start(sim_udp *u, udp_peer *p, dw_sim_outcome *o)
{
    udp_job *j = calloc(1, sizeof *j);
    if (!j) {
        dw__sim_log(u->srv, DW_LOG_ERROR, "%s: out of memory, reply dropped", p->name);
        return;
    }
    j->u = u;
    j->srv = u->srv;
    j->peer = p;
    j->gen = p->gen;
    j->gen->refs++;
    dw__sim_player_init(&j->play, &job_play, j, u->srv, &j->timer);
    j->play.id = p->id;
    j->play.out = *o; /* the bytes move to the job */
    dw_sim_outcome_init(o);
    uv_timer_init(u->sock.loop, &j->timer);
    j->timer.data = &j->play;
    j->next = u->jobs;
    if (u->jobs)
        u->jobs->prev = j;
    u->jobs = j;
    dw__sim_play_later(&j->play);
}

/* After the engine decided: nothing, now, or later. */
static void act(sim_udp *u, udp_peer *p)
{
    dw_sim_outcome *o = &u->play.out;
    if (dw__sim_play_fault(&u->play) || !o->bytes.len)
        return;
    if (o->delay_ms || (o->nsplit && o->split_delay_ms)) {
        job_start(u, p, o);
        return;
    }
    dw__sim_play(&u->play);
}

static void handle(sim_udp *u, udp_peer *p)
{
    dw_sim_server *s = u->srv;
    if (p->gen != s->gen && peer_bind(u, p) != DW_OK)
        return;
    dw_error err;
    dw_error_clear(&err);
    dw_sim_outcome *o = &u->play.out;
    u->play.id = p->id;
    u->asking = p;
    int rc = dw__sim_decide(&u->play, p->gen, p->sess, u->payload.data, u->payload.len, NULL, &err);
    if (rc != DW_OK)
        dw__sim_log(s, DW_LOG_ERROR, "%s", dw_error_message(&err));
    dw__sim_report_limits(s, p->id, p->name, o, u->payload.len);
    if (rc == DW_ENOMEM || o->source == DW_SIM_BY_HUNG)
        return;
    if (o->source == DW_SIM_BY_UNMATCHED)
        dw__sim_log(s, DW_LOG_INFO, "%s: connection %llu: unmatched request (%zu bytes)", p->name,
                    (unsigned long long)p->id, u->payload.len);
    act(u, p);
}

/* ---- receiving ------------------------------------------------------------------ */

/* The decoder for the request framing serving now (a reload may change it). */
static int decoder_for(sim_udp *u, const dw_marshaller *m)
{
    if (u->dec && u->dec_m == m) {
        dw_decoder_reset(u->dec);
        return DW_OK;
    }
    dw_decoder_free(u->dec);
    u->dec = dw_decoder_new(m);
    u->dec_m = u->dec ? m : NULL;
    return u->dec ? DW_OK : DW_ENOMEM;
}

/* One datagram: its frames, in order. */
static void datagram(sim_udp *u, udp_peer *p, const uint8_t *d, size_t n)
{
    dw_sim_server *s = u->srv;
    if (decoder_for(u, dw_sim_engine_request_marshaller(s->gen->engine)) != DW_OK)
        return;
    dw_error err;
    dw_error_clear(&err);
    int rc = DW_OK;
    while (n > 0) {
        size_t used = 0;
        rc = dw_decoder_feed(u->dec, d, n, &used, &u->payload, &err);
        d += used;
        n -= used;
        if (rc != DW_OK)
            break;
        handle(u, p);
    }
    if (rc == DW_MORE || rc == DW_OK)
        rc = dw_decoder_finish(u->dec, &u->payload, &err);
    if (rc == DW_EOF)
        return;
    if (rc == DW_ETRUNCATED)
        dw__sim_log(s, DW_LOG_INFO,
                    "%s: connection %llu: datagram ends inside a frame (%zu bytes); dropped",
                    p->name, (unsigned long long)p->id, u->payload.len);
    else
        dw__sim_log(s, DW_LOG_WARN, "%s: connection %llu: %s; dropping the rest of the datagram",
                    p->name, (unsigned long long)p->id, dw_error_message(&err));
    record(u, p, "fault", NULL, 0, rc == DW_ETRUNCATED ? "truncated frame" : dw_err_name(rc), NULL);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    sim_udp *u = h->data;
    (void)hint;
    *b = uv_buf_init((char *)u->buf, (unsigned)sizeof u->buf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b, const struct sockaddr *addr,
                    unsigned flags)
{
    sim_udp *u = h->data;
    if (nread < 0) {
        dw__sim_log(u->srv, DW_LOG_WARN, "receive %s: %s", u->srv->addr, uv_strerror((int)nread));
        return;
    }
    if (!addr || nread == 0)
        return;
    udp_peer *p = peer_of(u, addr);
    if (!p)
        return;
    if (flags & UV_UDP_PARTIAL) {
        dw__sim_log(u->srv, DW_LOG_WARN, "%s: datagram larger than %zu bytes; dropped", p->name,
                    sizeof u->buf);
        return;
    }
    datagram(u, p, (const uint8_t *)b->base, (size_t)nread);
}

/* ---- the socket ------------------------------------------------------------------ */

static int udp_open(dw_sim_server *s, const dw_sim_server_options *o, dw_error *err)
{
    int fd = -1;
    const char *host = o->host ? o->host : "127.0.0.1";
    int rc = dw_sim_net_bind(host, o->port, SOCK_DGRAM, 0, &fd, s->addr, &s->port, err);
    if (rc != DW_OK)
        return rc;
    sim_udp *u = calloc(1, sizeof *u);
    if (!u) {
        close(fd);
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    }
    u->srv = s;
    dw__sim_player_init(&u->play, &now_play, u, s, NULL);
    uv_udp_init(dw_sim_loop_uv(s->loop), &u->sock);
    u->sock.data = u;
    s->udp = u;
    int r = uv_udp_open(&u->sock, fd);
    if (r != 0)
        close(fd); /* not adopted by the handle */
    else
        r = uv_udp_recv_start(&u->sock, on_alloc, on_recv);
    if (r != 0)
        return dw_error_set(err, DW_EIO, "receive %s: %s", s->addr, uv_strerror(r));
    return DW_OK;
}

static void on_sock_closed(uv_handle_t *h)
{
    sim_udp *u = h->data;
    dw_decoder_free(u->dec);
    dw_buf_free(&u->payload);
    dw__sim_player_free(&u->play);
    free(u);
}

static void udp_close(dw_sim_server *s)
{
    sim_udp *u = s->udp;
    if (!u) /* never opened */
        return;
    s->udp = NULL;
    while (u->jobs)
        job_end(u->jobs);
    for (udp_peer *p = u->peers, *next; p; p = next) {
        next = p->next;
        record(u, p, "close", NULL, 0, NULL, p->name);
        dw_sim_session_free(p->sess);
        dw__sim_gen_release(s, p->gen);
        free(p);
    }
    u->peers = NULL;
    uv_close((uv_handle_t *)&u->sock, on_sock_closed);
}

static void udp_periodic(dw_sim_server *s, size_t i)
{
    sim_udp *u = s->udp;
    for (udp_peer *p = u->peers; p; p = p->next) {
        if (p->gen != s->gen || dw_sim_session_hung(p->sess))
            continue;
        dw_error err;
        dw_error_clear(&err);
        dw_buf_clear(&s->msg);
        if (dw_sim_engine_periodic(p->gen->engine, p->sess, i, &s->msg, &err) != DW_OK) {
            dw__sim_log(s, DW_LOG_ERROR, "%s", dw_error_message(&err));
            continue;
        }
        record(u, p, "periodic", s->msg.data, s->msg.len, NULL, NULL);
        send_to(u, p, s->msg.data, s->msg.len);
    }
}

const dw_sim_transport_ops dw__sim_udp_transport = {udp_open, udp_close, udp_periodic, NULL,
                                                    NULL,     NULL,      NULL};
