/* A regex that backtracks without end on some requests, against everyone
 * else. devwire-sim serves
 *
 *     {"when": {"regex": "(a+)+$"}, "reply": "M"}, {"when": "ping", "reply": "pong"}
 *
 * 1. `ping` round trips on one connection (p50, p99, rt/s): alone, while
 *    another connection sends 100,000 'a's and a '!' over and over (each
 *    waits for its unmatched reply "?"), and, as a control, while it sends
 *    as many 'b's (as big, but the regex rejects it at once), in rotating
 *    rounds; target: with the hostile client within 2x of alone;
 * 2. the engine alone, no sockets: the time of one hostile request (the
 *    pattern against 100,000 'a's and a '!', anchored and not, with JIT and
 *    with the interpreter; and the worst of runs of k 'a's between '!'s,
 *    which costs each start position of an unanchored pattern as much as
 *    the limit allows), next to a pattern that matches the same request
 *    at once.
 *
 * DW_BENCH_QUICK=1 runs a short version (a few seconds). */
#include <devwire/devwire.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app_echo.h"
#include "loadgen.h"
#include "sim_child.h"

#ifdef DW_BENCH_HAVE_SIM_CORE
#include "engine/engine.h"
#include "script/script.h"
#endif

enum { HOSTILE_LEN = 100000 };

static const char script_text[] = "{\"name\": \"hostile\",\n"
                                  " \"rules\": [\n"
                                  "  {\"when\": {\"regex\": \"(a+)+$\"}, \"reply\": \"M\"},\n"
                                  "  {\"when\": \"ping\", \"reply\": \"pong\"}\n"
                                  " ],\n"
                                  " \"unmatched\": {\"reply\": \"?\"}}\n";

/* ---- clients ------------------------------------------------------------- */

typedef struct client {
    dw_marshaller *m;
    dw_client *tc;
    dw_app_client *ac;
    dw_app_session *s;
    dw_buf resp;
} client;

static client *client_open(uint16_t port)
{
    client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->m = dw_sentinel_marshaller_new("\n", 1);
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = "127.0.0.1";
    o.port = port;
    o.timeout_ms = 30000;
    c->tc = dw_tcp_client_new(&o);
    c->ac = dw_app_client_new(c->tc, c->m, c->m);
    dw_error err;
    dw_error_clear(&err);
    if (dw_app_client_connect(c->ac, &c->s, &err) != DW_OK) {
        fprintf(stderr, "bench_hostile: %s\n", dw_error_message(&err));
        c->s = NULL;
    }
    return c;
}

static void client_close(client *c)
{
    if (!c)
        return;
    dw_app_session_close(c->s);
    dw_app_client_free(c->ac);
    dw_client_free(c->tc);
    dw_marshaller_free(c->m);
    dw_buf_free(&c->resp);
    free(c);
}

/* 0 when `req` is answered with `want`. */
static int ask(client *c, const void *req, size_t n, const char *want)
{
    size_t wn = strlen(want);
    if (dw_app_session_send_receive_bytes(c->s, req, n, &c->resp, NULL) != DW_OK)
        return -1;
    return c->resp.len == wn && memcmp(c->resp.data, want, wn) == 0 ? 0 : -1;
}

/* bench_run ops: every round trip is "ping" -> "pong" (the load generator's
 * own request text is not used). ctx: a uint16_t * port. */
static void *ping_open(void *ctx)
{
    client *c = client_open(*(const uint16_t *)ctx);
    if (c && !c->s) {
        client_close(c);
        return NULL;
    }
    return c;
}

static int ping_round_trip(void *conn, const char *req, size_t n)
{
    (void)req;
    (void)n;
    return ask(conn, "ping", 4, "pong");
}

static void ping_close(void *conn)
{
    client_close(conn);
}

static const bench_client_ops ping_ops = {ping_open, ping_round_trip, ping_close};

/* The other client: sends its big request over and over until told to
 * stop: the hostile one, or as a control the same size in 'b's (which the
 * regex rejects at once: there is no 'a' to start from). */
typedef struct hostile {
    uint16_t port;
    pthread_t thread;
    atomic_int stop;
    atomic_int failed;
    atomic_ullong sent;
    char *req;
} hostile;

enum mode { ALONE, BIG, HOSTILE, NMODES };
static const char *const mode_names[NMODES] = {"alone", "next to 'b'x100000", "next to hostile"};

static void *hostile_main(void *arg)
{
    hostile *h = arg;
    client *c = client_open(h->port);
    if (!c || !c->s)
        atomic_store(&h->failed, 1);
    while (c && c->s && !atomic_load(&h->stop)) {
        if (ask(c, h->req, HOSTILE_LEN + 1, "?") != 0) {
            atomic_store(&h->failed, 1);
            break;
        }
        atomic_fetch_add(&h->sent, 1);
    }
    client_close(c);
    return NULL;
}

/* ---- 1. ping alone and next to the hostile client -------------------------- */

typedef struct figures {
    double p50[8], p99[8], rps[8], other_rps[8];
} figures;

static int ping_round(uint16_t port, double seconds, enum mode mode, figures *f, int k)
{
    int with_hostile = mode != ALONE;
    hostile h;
    memset(&h, 0, sizeof h);
    h.port = port;
    h.req = malloc(HOSTILE_LEN + 1);
    if (!h.req)
        return -1;
    memset(h.req, mode == HOSTILE ? 'a' : 'b', HOSTILE_LEN);
    h.req[HOSTILE_LEN] = '!';
    if (with_hostile && pthread_create(&h.thread, NULL, hostile_main, &h) != 0) {
        free(h.req);
        return -1;
    }
    if (with_hostile) /* the hostile client is busy before the clock starts */
        while (atomic_load(&h.sent) == 0 && !atomic_load(&h.failed))
            usleep(1000);
    unsigned long long before = atomic_load(&h.sent);
    double t0 = bench_now();
    bench_result r;
    int rc = bench_run(&ping_ops, &port, 1, seconds, &r);
    double dt = bench_now() - t0;
    unsigned long long hostile_sent = atomic_load(&h.sent) - before;
    if (with_hostile) {
        atomic_store(&h.stop, 1);
        pthread_join(h.thread, NULL);
    }
    free(h.req);
    if (rc != 0 || r.failures || atomic_load(&h.failed)) {
        fprintf(stderr, "bench_hostile: a client failed (%s)\n", mode_names[mode]);
        return -1;
    }
    f->p50[k] = r.p50_us;
    f->p99[k] = r.p99_us;
    f->rps[k] = r.rps;
    f->other_rps[k] = (double)hostile_sent / dt;
    return 0;
}

static int compare_ping(uint16_t port, double seconds, int rounds)
{
    figures f[NMODES];
    for (int k = 0; k < rounds; k++)
        for (int j = 0; j < NMODES; j++) {
            /* Rotate which goes first so that machine noise hits them all. */
            enum mode m = (enum mode)((j + k) % NMODES);
            if (ping_round(port, seconds, m, &f[m], k) != 0)
                return -1;
        }
    double p50[NMODES], p99[NMODES], rt[NMODES], other[NMODES];
    for (int m = 0; m < NMODES; m++) {
        p50[m] = bench_median(f[m].p50, rounds);
        p99[m] = bench_median(f[m].p99, rounds);
        rt[m] = bench_median(f[m].rps, rounds);
        other[m] = bench_median(f[m].other_rps, rounds);
    }
    printf("\n`ping` on one connection: alone, next to a client sending 100,001-byte requests\n"
           "back to back that no regex can match ('b's: %.0f/s answered), and next to one\n"
           "sending the hostile request ('a's then '!': %.0f/s answered)\n",
           other[BIG], other[HOSTILE]);
    printf("%-8s | %12s | %18s | %15s | %s\n", "figure", mode_names[ALONE], mode_names[BIG],
           mode_names[HOSTILE], "hostile / alone");
    const char *labels[] = {"p50 us", "p99 us", "rt/s"};
    const double *rows[] = {p50, p99, rt};
    for (int r = 0; r < 3; r++) {
        double ratio = rows[r][HOSTILE] / rows[r][ALONE];
        int off = r < 2 ? ratio > 2 : ratio < 0.5;
        printf("%-8s | %12.1f | %18.1f | %15.1f | %.2fx%s\n", labels[r], rows[r][ALONE],
               rows[r][BIG], rows[r][HOSTILE], ratio, off ? "  (beyond the 2x target)" : "");
    }
    /* For scripts/bench.sh: BENCH name value unit baseline ratio. */
    printf("BENCH hostile_ping_p50 %.1f us %.1f %.2f\n", p50[HOSTILE], p50[ALONE],
           p50[HOSTILE] / p50[ALONE]);
    printf("BENCH hostile_ping_p99 %.1f us %.1f %.2f\n", p99[HOSTILE], p99[ALONE],
           p99[HOSTILE] / p99[ALONE]);
    printf("BENCH hostile_ping_rt %.0f rt/s %.0f %.2f\n", rt[HOSTILE], rt[ALONE],
           rt[HOSTILE] / rt[ALONE]);
    printf("BENCH hostile_vs_big_ping_p99 %.1f us %.1f %.2f\n", p99[HOSTILE], p99[BIG],
           p99[HOSTILE] / p99[BIG]);
    return 0;
}

/* ---- 2. the engine alone ----------------------------------------------------- */

#ifdef DW_BENCH_HAVE_SIM_CORE
typedef struct engine_case {
    const char *label;
    const char *regex; /* JSON-escaped */
    int runs;          /* 0: n 'a's then '!'; k: runs of k 'a's, each ended by '!' */
} engine_case;

/* CPU seconds of this thread: what a request costs, whatever else the
 * machine runs. */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The slowest of `reps` requests through the engine, in CPU ms; -1 on error.
 * *limited: whether the regex gave up (a limit) on the last one. */
static double engine_worst_ms(const char *regex, const uint8_t *req, size_t n, int reps,
                              int *limited)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"rules\": [{\"when\": {\"regex\": \"%s\"}, \"reply\": \"M\"}],"
             " \"unmatched\": {\"reply\": \"?\"}}",
             regex);
    dw_sim_script *s = NULL;
    dw_sim_engine *e = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_script_load_buffer("bench.json", text, strlen(text), &s, &err) != DW_OK ||
        dw_sim_engine_new(s, &e, &err) != DW_OK) {
        fprintf(stderr, "bench_hostile: %s\n", dw_error_message(&err));
        dw_sim_script_free(s);
        return -1;
    }
    dw_sim_session *ss = dw_sim_session_new(e);
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    double worst = 0;
    for (int i = 0; i < reps && ss; i++) {
        double t0 = thread_cpu();
        int rc = dw_sim_engine_handle(e, ss, req, n, &o, NULL);
        double dt = thread_cpu() - t0;
        if (rc != DW_OK) {
            worst = -1;
            break;
        }
        if (dt > worst)
            worst = dt;
    }
    *limited = o.nlimits > 0;
    dw_sim_outcome_free(&o);
    dw_sim_session_free(ss);
    dw_sim_engine_free(e);
    dw_sim_script_free(s);
    return worst < 0 ? -1 : worst * 1e3;
}

static uint8_t *subject(int runs)
{
    uint8_t *p = malloc(HOSTILE_LEN + 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i <= HOSTILE_LEN; i++)
        p[i] = runs ? (i % (size_t)(runs + 1) == (size_t)runs ? '!' : 'a') : 'a';
    p[HOSTILE_LEN] = '!';
    return p;
}

static int engine_times(int reps)
{
    static const engine_case cases[] = {
        {"(a+)+$, JIT", "(a+)+$", 0},
        {"^(a+)+$, JIT", "^(a+)+$", 0},
        {"(a+)+$, interpreter", "(*NO_JIT)(a+)+$", 0},
        {"^(a+)+$, interpreter", "(*NO_JIT)^(a+)+$", 0},
    };
    uint8_t *plain = subject(0);
    if (!plain)
        return -1;
    int limited = 0;
    double base = engine_worst_ms("^a+!$", plain, HOSTILE_LEN + 1, reps, &limited);
    printf("\nthe engine alone: CPU time of the slowest of %d hostile requests of %d bytes\n"
           "(ms), next to ^a+!$ matching the same request (%.3f ms)\n",
           reps, HOSTILE_LEN + 1, base);
    printf("%-44s | %10s | %8s | %s\n", "pattern, request", "worst ms", "ratio", "limit hit");
    double worst_all = 0;
    int status = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double ms = engine_worst_ms(cases[i].regex, plain, HOSTILE_LEN + 1, reps, &limited);
        printf("%-44s | %10.3f | %7.1fx | %s\n", cases[i].label, ms, ms / base,
               limited ? "yes" : "no");
        status |= ms < 0;
        if (ms > worst_all)
            worst_all = ms;
    }
    /* Runs of k 'a's: each start position of the unanchored pattern costs
     * about 2^(run left); the worst k is near where that meets the
     * per-position limit. */
    for (int jit = 1; jit >= 0; jit--) {
        double worst = 0;
        int worst_k = 0, worst_limited = 0;
        for (int k = 1; k <= 24; k++) {
            uint8_t *req = subject(k);
            if (!req)
                return -1;
            double ms = engine_worst_ms(jit ? "(a+)+$" : "(*NO_JIT)(a+)+$", req, HOSTILE_LEN + 1,
                                        reps < 3 ? reps : 3, &limited);
            free(req);
            status |= ms < 0;
            if (ms > worst) {
                worst = ms;
                worst_k = k;
                worst_limited = limited;
            }
        }
        char label[64];
        snprintf(label, sizeof label, "(a+)+$, %s, worst of 'a'{k}'!' (k=%d)",
                 jit ? "JIT" : "interpreter", worst_k);
        printf("%-44s | %10.3f | %7.1fx | %s\n", label, worst, worst / base,
               worst_limited ? "yes" : "no");
        if (worst > worst_all)
            worst_all = worst;
    }
    printf("BENCH hostile_engine_worst_ms %.3f ms %.3f %.1f\n", worst_all, base, worst_all / base);
    free(plain);
    return status ? -1 : 0;
}
#endif

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    double seconds = quick ? 0.5 : 2.0;
    int rounds = quick ? 1 : 3;
    int status = 0;

    char path[] = "/tmp/dwsim-bench-hostile-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 ||
        write(fd, script_text, sizeof script_text - 1) != (ssize_t)sizeof script_text - 1) {
        fprintf(stderr, "bench_hostile: cannot write the script\n");
        return 1;
    }
    close(fd);
    printf("bench_hostile: %s; rounds of %.1f s, medians of %d alternating round(s)\n",
           quick ? "quick run" : "full run", seconds, rounds);
    bench_sim_child sim;
    if (bench_sim_child_start(&sim, path) != 0) {
        unlink(path);
        return 1;
    }
    if (compare_ping(sim.port, seconds, rounds) != 0)
        status = 1;
    bench_sim_child_stop(&sim);
    unlink(path);
#ifdef DW_BENCH_HAVE_SIM_CORE
    if (engine_times(quick ? 5 : 20) != 0)
        status = 1;
#endif
    return status;
}
