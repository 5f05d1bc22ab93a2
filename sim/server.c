/* devwire-sim's server: see server.h. */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <devwire/telnet.h>

#include "engine.h"
#include "memory.h"

/* One loaded script and its engine. Connections hold a reference; the
 * server holds one on the generation serving now. */
typedef struct sim_gen {
    dw_sim_script *script;
    dw_sim_engine *engine;
    atomic_long refs;
} sim_gen;

typedef struct sim_conn sim_conn;

/* Counts the bytes a connection pulls for its frame against the server's
 * --max-buffered budget (server.h). One per connection, for its whole life:
 * bytes the framing gives back wait in it for the next frame. */
typedef struct budget_iter {
    dw_iter base;
    dw_iter *inner;
    sim_conn *sc;
} budget_iter;

/* One connection's view. */
struct sim_conn {
    dw_sim_server *srv;
    dw_conn *c;
    uint64_t id;
    sim_gen *gen;
    dw_sim_session *sess;
    dw_telnet *telnet; /* NULL for raw TCP */
    /* Held across a whole reply (its pieces and the sleeps between them)
     * and a periodic message, so that they never interleave. */
    pthread_mutex_t wlock;
    dw_buf payload;
    dw_buf wire;
    dw_sim_outcome out;
    int held_large; /* payload or reply grew past DW_SIM_KEEP_BYTES (own thread only) */
    budget_iter bin;
    size_t charged; /* bytes of the budget this connection holds now */
    size_t refused; /* bytes that budget_take refused (0 = none) */
    size_t refusal; /* the total of all connections it would have made */
    struct sim_conn *prev, *next;
};

struct dw_sim_server {
    dw_tcp_server *tcp;
    const dw_logger *logger;
    dw_sim_transcript *transcript;
    size_t max_frame;       /* 0 = the script's own */
    size_t max_buffered;    /* 0 = no bound */
    atomic_size_t buffered; /* bytes held by all connections (budget_take) */
    pthread_mutex_t lock;   /* gen, conns, the timer's state */
    pthread_cond_t wake;
    sim_gen *gen;
    uint64_t gen_no; /* bumped at each reload (the timer restarts) */
    sim_conn *conns;
    int stopping;
    int started;
    pthread_t timer;
    /* Figures of retired generations. */
    uint64_t retired_requests;
    uint64_t retired_unmatched;
    uint64_t retired_limit_hits;
    uint64_t accepted; /* kept when the TCP server is freed */
};

static void gen_release(dw_sim_server *s, sim_gen *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    pthread_mutex_lock(&s->lock);
    s->retired_requests += dw_sim_engine_requests(g->engine);
    s->retired_unmatched += dw_sim_engine_unmatched(g->engine);
    s->retired_limit_hits += dw_sim_engine_regex_limit_hits(g->engine);
    pthread_mutex_unlock(&s->lock);
    dw_sim_engine_free(g->engine);
    dw_sim_script_free(g->script);
    free(g);
}

static sim_gen *gen_acquire(dw_sim_server *s)
{
    pthread_mutex_lock(&s->lock);
    sim_gen *g = s->gen;
    atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&s->lock);
    return g;
}

static int gen_new(dw_sim_server *s, dw_sim_script *script, sim_gen **out, dw_error *err)
{
    int rc = dw_sim_script_cap_frames(script, s->max_frame, err);
    if (rc != DW_OK)
        return rc;
    sim_gen *g = calloc(1, sizeof *g);
    if (!g)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    rc = dw_sim_engine_new(script, &g->engine, err);
    if (rc != DW_OK) {
        free(g);
        return rc;
    }
    g->script = script;
    atomic_store(&g->refs, 1);
    *out = g;
    return DW_OK;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Write bytes as the transport wants them (Telnet doubles 0xFF). Called
 * under wlock, which also guards `wire`. */
static int conn_send(sim_conn *sc, const uint8_t *p, size_t n)
{
    if (!n)
        return DW_OK;
    if (!sc->telnet)
        return dw_conn_write(sc->c, p, n);
    dw_buf_clear(&sc->wire);
    int rc = dw_telnet_escape(p, n, &sc->wire);
    if (rc == DW_OK)
        rc = dw_conn_write(sc->c, sc->wire.data, sc->wire.len);
    if (sc->wire.cap > DW_SIM_KEEP_BYTES) { /* after a large write (memory.h) */
        dw_buf_clear(&sc->wire);
        dw_buf_shrink(&sc->wire, DW_SIM_KEEP_BYTES);
    }
    return rc;
}

/* After a frame larger than a connection keeps, give the storage back (see
 * memory.h). The reply's storage is reused from one request to the next,
 * so it is cleared here, once the reply is written. */
static void conn_shrink(sim_conn *sc)
{
    if (sc->payload.cap <= DW_SIM_KEEP_BYTES && sc->out.bytes.cap <= DW_SIM_KEEP_BYTES)
        return;
    sc->held_large = 1;
    dw_buf_clear(&sc->payload);
    dw_buf_shrink(&sc->payload, DW_SIM_KEEP_BYTES);
    dw_buf_clear(&sc->out.bytes);
    dw_buf_shrink(&sc->out.bytes, DW_SIM_KEEP_BYTES);
}

/* ---- --max-buffered -------------------------------------------------------- */

/* Take n bytes of the server's budget for this connection: DW_OK, or
 * DW_ELIMIT (nothing taken; the refusal noted) when that would pass it. */
static int budget_take(sim_conn *sc, size_t n)
{
    dw_sim_server *s = sc->srv;
    size_t cur = atomic_load(&s->buffered);
    do {
        if (n > s->max_buffered || cur > s->max_buffered - n) {
            sc->refused = n;
            sc->refusal = cur + n;
            return DW_ELIMIT;
        }
    } while (!atomic_compare_exchange_weak(&s->buffered, &cur, cur + n));
    sc->charged += n;
    return DW_OK;
}

/* The request is handled: its bytes and its reply's leave the budget. */
static void budget_give_back(sim_conn *sc)
{
    if (sc->charged)
        atomic_fetch_sub(&sc->srv->buffered, sc->charged);
    sc->charged = 0;
}

static int budget_pull(dw_iter *base, const uint8_t **data, size_t *len)
{
    budget_iter *bi = (budget_iter *)base;
    int rc = dw_iter_next(bi->inner, data, len);
    return rc == DW_OK ? budget_take(bi->sc, *len) : rc;
}

/* The iterator to read requests through: `in` itself when there is no
 * bound, else the connection's counting wrapper around it. */
static dw_iter *budget_wrap(sim_conn *sc, dw_iter *in)
{
    if (!sc->srv->max_buffered)
        return in;
    sc->bin.inner = in;
    return &sc->bin.base;
}

/* A new session for the generation serving now (the connection starts
 * afresh after a reload). */
static int conn_bind(sim_conn *sc)
{
    sim_gen *g = gen_acquire(sc->srv);
    dw_sim_session *sess = dw_sim_session_new(g->engine);
    if (!sess) {
        gen_release(sc->srv, g);
        return DW_ENOMEM;
    }
    pthread_mutex_lock(&sc->wlock);
    sim_gen *old = sc->gen;
    dw_sim_session *olds = sc->sess;
    sc->gen = g;
    sc->sess = sess;
    pthread_mutex_unlock(&sc->wlock);
    dw_sim_session_free(olds);
    gen_release(sc->srv, old);
    return DW_OK;
}

static int on_open(void *user, dw_conn *c)
{
    dw_sim_server *s = user;
    sim_conn *sc = calloc(1, sizeof *sc);
    if (!sc)
        return DW_ENOMEM;
    sc->srv = s;
    sc->c = c;
    sc->id = dw_conn_id(c);
    dw_iter_init(&sc->bin.base, budget_pull);
    sc->bin.sc = sc;
    pthread_mutex_init(&sc->wlock, NULL);
    dw_sim_outcome_init(&sc->out);
    dw_conn_set_user(c, sc);
    int rc = conn_bind(sc);
    if (rc != DW_OK)
        return rc; /* on_close frees sc */
    dw_sim_transcript_event(s->transcript, sc->id, "open", NULL, 0, NULL, dw_conn_peer(c));

    const dw_sim_script *script = sc->gen->script;
    if (script->transport == DW_SIM_TELNET) {
        sc->telnet = dw_telnet_conn_new(c, NULL);
        if (!sc->telnet)
            return DW_ENOMEM;
        rc = dw_telnet_start(sc->telnet);
        if (rc != DW_OK)
            return rc;
    }
    dw_buf banner = DW_BUF_INIT;
    rc = dw_sim_engine_banner(sc->gen->engine, sc->sess, &banner);
    if (rc == DW_OK && banner.len) {
        pthread_mutex_lock(&sc->wlock);
        rc = conn_send(sc, banner.data, banner.len);
        pthread_mutex_unlock(&sc->wlock);
        dw_sim_transcript_event(s->transcript, sc->id, "out", banner.data, banner.len, "banner",
                                NULL);
    }
    dw_buf_free(&banner);
    if (rc != DW_OK)
        return rc;

    pthread_mutex_lock(&s->lock);
    sc->next = s->conns;
    if (s->conns)
        s->conns->prev = sc;
    s->conns = sc;
    pthread_mutex_unlock(&s->lock);
    return DW_OK;
}

static void on_close(void *user, dw_conn *c)
{
    dw_sim_server *s = user;
    sim_conn *sc = dw_conn_user(c);
    if (!sc)
        return;
    pthread_mutex_lock(&s->lock);
    if (sc->prev)
        sc->prev->next = sc->next;
    else if (s->conns == sc)
        s->conns = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    pthread_mutex_unlock(&s->lock);
    dw_sim_transcript_event(s->transcript, sc->id, "close", NULL, 0, NULL, dw_conn_peer(c));
    dw_telnet_free(sc->telnet);
    dw_sim_session_free(sc->sess);
    gen_release(s, sc->gen);
    dw_buf_free(&sc->payload);
    dw_buf_free(&sc->wire);
    dw_sim_outcome_free(&sc->out);
    pthread_mutex_destroy(&sc->wlock);
    int held_large = sc->held_large;
    free(sc);
    dw_conn_set_user(c, NULL);
    if (held_large)
        dw_sim_memory_release();
}

static const char *fault_name(dw_sim_fault f)
{
    switch (f) {
    case DW_SIM_FAULT_CLOSE:
        return "close";
    case DW_SIM_FAULT_RESET:
        return "reset";
    case DW_SIM_FAULT_HANG:
        return "hang";
    case DW_SIM_FAULT_GARBAGE:
        return "garbage";
    default:
        return "none";
    }
}

/* Record the fault and end this connection quietly (the TCP server logs a
 * DW_EOF end at DEBUG only): the caller has said once what happened. Its
 * bytes leave the budget before the client can see the close. */
static int drop(sim_conn *sc, const char *what)
{
    dw_sim_transcript_event(sc->srv->transcript, sc->id, "fault", NULL, 0, what, NULL);
    budget_give_back(sc);
    dw_conn_close(sc->c, 0);
    return DW_EOF;
}

/* This connection's next bytes would pass --max-buffered (budget_take
 * refused them). */
static int over_budget(sim_conn *sc, const char *what)
{
    dw_log(sc->srv->logger, DW_LOG_WARN,
           "%s: connection %llu: --max-buffered %zu reached (%s: this connection would buffer "
           "%zu bytes, all connections %zu); closing it",
           dw_conn_peer(sc->c), (unsigned long long)sc->id, sc->srv->max_buffered, what,
           sc->charged + sc->refused, sc->refusal);
    return drop(sc, "max-buffered");
}

/* Bad input on the wire: say once what happened and end this connection. */
static int bad_input(sim_conn *sc, int rc, const dw_error *err)
{
    const dw_logger *lg = sc->srv->logger;
    const char *peer = dw_conn_peer(sc->c);
    unsigned long long id = (unsigned long long)sc->id;
    if (rc == DW_ETRUNCATED)
        dw_log(lg, DW_LOG_INFO, "%s: connection %llu: client went away inside a frame (%zu bytes)",
               peer, id, sc->payload.len);
    else if (rc == DW_ETOOBIG || rc == DW_EPROTO)
        dw_log(lg, DW_LOG_WARN, "%s: connection %llu: %s; closing it", peer, id,
               dw_error_message(err));
    else
        return rc; /* timeouts, resets: the TCP server reports them */
    return drop(sc, rc == DW_ETRUNCATED ? "truncated frame" : dw_err_name(rc));
}

/* Regexes a limit cut short on this request: noted in the transcript each
 * time, logged the first time for each rule (the engine flags it). */
static void report_limits(sim_conn *sc, const dw_sim_outcome *o)
{
    for (size_t i = 0; i < o->nlimits; i++) {
        const dw_sim_limit_hit *h = &o->limits[i];
        static const char what[] = "regex match limit";
        dw_sim_transcript_event(sc->srv->transcript, sc->id, "note", (const uint8_t *)what,
                                sizeof what - 1, h->name, NULL);
        if (h->first)
            dw_log(sc->srv->logger, DW_LOG_WARN,
                   "%s: connection %llu: %s: regex match limit reached on a %zu-byte request; "
                   "counted as no match (logged once for this rule, counted in the summary)",
                   dw_conn_peer(sc->c), (unsigned long long)sc->id, h->name, sc->payload.len);
    }
}

static int serve_request(dw_sim_server *s, sim_conn *sc, dw_conn *c, dw_iter *in)
{
    if (sc->telnet)
        in = dw_telnet_wrap(sc->telnet, in);
    in = budget_wrap(sc, in);

    dw_error err;
    dw_error_clear(&err);
    int rc =
        dw_unmarshall(dw_sim_engine_request_marshaller(sc->gen->engine), in, &sc->payload, &err);
    if (rc == DW_EOF)
        return DW_EOF;
    if (rc == DW_ELIMIT && sc->refused)
        return over_budget(sc, "reading a request");
    if (rc != DW_OK)
        return bad_input(sc, rc, &err);

    /* A reload since the last request: serve this one with the new script. */
    pthread_mutex_lock(&s->lock);
    int stale = sc->gen != s->gen;
    pthread_mutex_unlock(&s->lock);
    if (stale && (rc = conn_bind(sc)) != DW_OK)
        return rc;

    dw_sim_outcome *o = &sc->out;
    rc =
        dw_sim_engine_handle(sc->gen->engine, sc->sess, sc->payload.data, sc->payload.len, o, &err);
    dw_sim_transcript_event(s->transcript, sc->id, "in", sc->payload.data, sc->payload.len, o->name,
                            NULL);
    report_limits(sc, o);
    if (rc == DW_ENOMEM)
        return rc;
    if (rc != DW_OK) /* a reply the framing cannot carry: the script's fault */
        dw_log(s->logger, DW_LOG_ERROR, "%s", dw_error_message(&err));
    if (o->source == DW_SIM_BY_HUNG)
        return DW_OK;
    if (o->source == DW_SIM_BY_UNMATCHED)
        dw_log(s->logger, DW_LOG_INFO, "%s: connection %llu: unmatched request (%zu bytes)",
               dw_conn_peer(c), (unsigned long long)sc->id, sc->payload.len);

    if (o->delay_ms)
        sleep_ms(o->delay_ms);
    switch (o->fault) {
    case DW_SIM_FAULT_CLOSE:
    case DW_SIM_FAULT_RESET:
        dw_sim_transcript_event(s->transcript, sc->id, "fault", NULL, 0, fault_name(o->fault),
                                NULL);
        dw_conn_close(c, o->fault == DW_SIM_FAULT_RESET);
        return DW_EOF;
    case DW_SIM_FAULT_HANG:
        dw_sim_transcript_event(s->transcript, sc->id, "fault", NULL, 0, "hang", NULL);
        return DW_OK;
    default:
        break;
    }

    rc = DW_OK;
    if (s->max_buffered && o->bytes.len && budget_take(sc, o->bytes.len) != DW_OK)
        return over_budget(sc, "its reply");
    if (o->bytes.len) {
        pthread_mutex_lock(&sc->wlock);
        if (o->nsplit == 0) {
            rc = conn_send(sc, o->bytes.data, o->bytes.len);
        } else {
            size_t pos = 0, k = 0;
            while (rc == DW_OK && pos < o->bytes.len) {
                size_t piece = o->split[k < o->nsplit ? k : o->nsplit - 1];
                if (piece == 0 || piece > o->bytes.len - pos)
                    piece = o->bytes.len - pos;
                if (pos && o->split_delay_ms)
                    sleep_ms(o->split_delay_ms);
                rc = conn_send(sc, o->bytes.data + pos, piece);
                pos += piece;
                k++;
            }
        }
        pthread_mutex_unlock(&sc->wlock);
        dw_sim_transcript_event(s->transcript, sc->id,
                                o->fault == DW_SIM_FAULT_GARBAGE ? "fault" : "out", o->bytes.data,
                                o->bytes.len,
                                o->fault == DW_SIM_FAULT_GARBAGE ? "garbage" : o->name, NULL);
    }
    if (rc != DW_OK)
        return rc;
    if (o->close) {
        dw_conn_close(c, 0);
        return DW_EOF;
    }
    return DW_OK;
}

static int on_request(void *user, dw_conn *c, dw_iter *in, dw_buf *resp)
{
    sim_conn *sc = dw_conn_user(c);
    (void)resp;
    int rc = serve_request(user, sc, c, in);
    budget_give_back(sc);
    conn_shrink(sc);
    return rc;
}

/* ---- periodic messages --------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *timer_main(void *arg)
{
    dw_sim_server *s = arg;
    uint64_t *due = NULL;
    size_t ndue = 0;
    uint64_t seen_gen = UINT64_MAX;
    dw_buf msg = DW_BUF_INIT;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        const dw_sim_script *script = s->gen->script;
        if (seen_gen != s->gen_no) { /* (re)start the schedule */
            seen_gen = s->gen_no;
            free(due);
            ndue = script->nperiodic;
            due = calloc(ndue ? ndue : 1, sizeof *due);
            uint64_t t = now_ms();
            for (size_t i = 0; due && i < ndue; i++)
                due[i] = t + (script->periodic[i].every_ms ? script->periodic[i].every_ms : 1000);
            if (!due)
                ndue = 0;
        }
        uint64_t t = now_ms(), next = t + 60000;
        for (size_t i = 0; i < ndue; i++) {
            if (due[i] > t) {
                if (due[i] < next)
                    next = due[i];
                continue;
            }
            unsigned every = script->periodic[i].every_ms ? script->periodic[i].every_ms : 1000;
            due[i] += every;
            if (due[i] <= t) /* fell behind: skip, do not burst */
                due[i] = t + every;
            if (due[i] < next)
                next = due[i];
            for (sim_conn *sc = s->conns; sc; sc = sc->next) {
                /* The connection's generation and session change under
                 * wlock (conn_bind): read them under it too. */
                pthread_mutex_lock(&sc->wlock);
                if (sc->gen != s->gen || dw_sim_session_hung(sc->sess)) {
                    pthread_mutex_unlock(&sc->wlock);
                    continue;
                }
                dw_error err;
                dw_error_clear(&err);
                dw_buf_clear(&msg);
                int rc = dw_sim_engine_periodic(sc->gen->engine, sc->sess, i, &msg, &err);
                if (rc == DW_OK)
                    conn_send(sc, msg.data, msg.len);
                pthread_mutex_unlock(&sc->wlock);
                if (rc != DW_OK) {
                    dw_log(s->logger, DW_LOG_ERROR, "%s", dw_error_message(&err));
                    continue;
                }
                dw_sim_transcript_event(s->transcript, sc->id, "periodic", msg.data, msg.len, NULL,
                                        NULL);
            }
        }
        if (s->stopping)
            break;
        if (ndue == 0) {
            pthread_cond_wait(&s->wake, &s->lock);
            continue;
        }
        uint64_t wait = next > now_ms() ? next - now_ms() : 0;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wake, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    free(due);
    dw_buf_free(&msg);
    return NULL;
}

/* ---- the server ---------------------------------------------------------- */

void dw_sim_server_options_init(dw_sim_server_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->max_connections = 1024;
    o->idle_timeout_ms = -1;
    o->max_buffered = DW_SIM_MAX_BUFFERED;
}

int dw_sim_server_new(const dw_sim_server_options *o, dw_sim_script *script, dw_sim_server **out,
                      dw_error *err)
{
    *out = NULL;
    dw_sim_server *s = calloc(1, sizeof *s);
    if (!s)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    s->logger = o->logger;
    s->transcript = o->transcript;
    s->max_frame = o->max_frame;
    s->max_buffered = o->max_buffered;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);

    int rc = gen_new(s, script, &s->gen, err);
    if (rc != DW_OK) {
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    dw_tcp_server_options to;
    dw_tcp_server_options_init(&to);
    to.host = o->host ? o->host : "127.0.0.1";
    to.port = o->port;
    to.logger = o->logger;
    if (o->max_connections)
        to.max_connections = o->max_connections;
    to.idle_timeout_ms = o->idle_timeout_ms;
    dw_server_handler h = {on_open, on_request, on_close, s};
    rc = dw_tcp_server_new(&to, &h, &s->tcp, err);
    if (rc != DW_OK) {
        s->gen->script = NULL; /* the caller keeps it */
        dw_sim_engine_free(s->gen->engine);
        free(s->gen);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    *out = s;
    return DW_OK;
}

int dw_sim_server_start(dw_sim_server *s, dw_error *err)
{
    if (pthread_create(&s->timer, NULL, timer_main, s) != 0)
        return dw_error_set(err, DW_ENOMEM, "cannot start the timer thread");
    s->started = 1;
    return dw_tcp_server_start(s->tcp, err);
}

const char *dw_sim_server_address(const dw_sim_server *s)
{
    return dw_tcp_server_address(s->tcp);
}

uint16_t dw_sim_server_port(const dw_sim_server *s)
{
    return dw_tcp_server_port(s->tcp);
}

int dw_sim_server_reload(dw_sim_server *s, dw_sim_script *script, dw_error *err)
{
    sim_gen *g;
    int rc = gen_new(s, script, &g, err);
    if (rc != DW_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    sim_gen *old = s->gen;
    s->gen = g;
    s->gen_no++;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    gen_release(s, old);
    return DW_OK;
}

void dw_sim_server_stop(dw_sim_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    if (s->started) {
        pthread_join(s->timer, NULL);
        s->started = 0;
    }
    if (s->tcp) {
        dw_tcp_server_stop(s->tcp);
        s->accepted = dw_tcp_server_accepted(s->tcp);
        dw_tcp_server_free(s->tcp); /* joins every connection */
        s->tcp = NULL;
    }
}

void dw_sim_server_free(dw_sim_server *s)
{
    if (!s)
        return;
    dw_sim_server_stop(s);
    gen_release(s, s->gen);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void dw_sim_server_totals(dw_sim_server *s, dw_sim_totals *t)
{
    pthread_mutex_lock(&s->lock);
    const dw_sim_engine *e = s->gen->engine;
    t->connections = s->tcp ? dw_tcp_server_accepted(s->tcp) : s->accepted;
    t->requests = s->retired_requests + dw_sim_engine_requests(e);
    t->unmatched = s->retired_unmatched + dw_sim_engine_unmatched(e);
    t->regex_limit_hits = s->retired_limit_hits + dw_sim_engine_regex_limit_hits(e);
    t->steps_not_reached = dw_sim_engine_steps_not_reached(e);
    pthread_mutex_unlock(&s->lock);
}

/* Bytes for a human: printable text in quotes, otherwise hex. */
static void print_bytes(FILE *f, const uint8_t *p, size_t n)
{
    int text = 1;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] >= 0x7f)
            text = 0;
    if (text) {
        fprintf(f, "\"%.*s\"", (int)n, (const char *)p);
    } else {
        fputs("hex ", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%02x", p[i]);
    }
}

void dw_sim_server_summary(dw_sim_server *s, FILE *f)
{
    dw_sim_totals t;
    dw_sim_server_totals(s, &t);
    pthread_mutex_lock(&s->lock);
    sim_gen *g = s->gen;
    atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&s->lock);
    const dw_sim_script *script = g->script;
    dw_sim_engine *e = g->engine;

    fprintf(f, "summary: %s (%s)\n", script->name ? script->name : "script",
            script->path ? script->path : "-");
    fprintf(f, "  connections: %llu\n", (unsigned long long)t.connections);
    fprintf(f, "  requests: %llu\n", (unsigned long long)t.requests);
    size_t silent = 0;
    for (size_t i = 0; i < script->nsteps; i++)
        if (dw_sim_engine_step_hits(e, i))
            fprintf(f, "  %s: %llu\n", script->steps[i].name ? script->steps[i].name : "step",
                    (unsigned long long)dw_sim_engine_step_hits(e, i));
    for (size_t i = 0; i < script->nrules; i++) {
        uint64_t n = dw_sim_engine_rule_hits(e, i);
        if (n)
            fprintf(f, "  %s: %llu\n", script->rules[i].name ? script->rules[i].name : "rule",
                    (unsigned long long)n);
        else
            silent++;
    }
    if (silent)
        fprintf(f, "  rules never matched: %zu of %zu\n", silent, script->nrules);
    fprintf(f, "  unmatched requests: %llu\n", (unsigned long long)t.unmatched);
    dw_buf b = DW_BUF_INIT;
    for (size_t k = 0; dw_sim_engine_unmatched_sample(e, k, &b) == DW_OK; k++) {
        fputs("    ", f);
        print_bytes(f, b.data, b.len);
        fputc('\n', f);
    }
    dw_buf_free(&b);
    if (t.regex_limit_hits)
        fprintf(f, "  regex match limit hits: %llu (each counted as no match)\n",
                (unsigned long long)t.regex_limit_hits);
    for (size_t i = 0; i < script->nsteps; i++)
        if (dw_sim_engine_step_limit_hits(e, i))
            fprintf(f, "    %s: %llu\n", script->steps[i].name ? script->steps[i].name : "step",
                    (unsigned long long)dw_sim_engine_step_limit_hits(e, i));
    for (size_t i = 0; i < script->nrules; i++)
        if (dw_sim_engine_rule_limit_hits(e, i))
            fprintf(f, "    %s: %llu\n", script->rules[i].name ? script->rules[i].name : "rule",
                    (unsigned long long)dw_sim_engine_rule_limit_hits(e, i));
    fprintf(f, "  steps not reached: %zu of %zu\n", t.steps_not_reached, script->nsteps);
    for (size_t i = 0; i < script->nsteps; i++)
        if (!dw_sim_engine_step_hits(e, i))
            fprintf(f, "    %s: expects %s\n",
                    script->steps[i].name ? script->steps[i].name : "step",
                    script->steps[i].expect.source ? script->steps[i].expect.source : "?");
    fflush(f);
    gen_release(s, g);
}
