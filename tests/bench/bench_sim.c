/* devwire-sim's speed, each figure next to its baseline from the same run:
 *
 * 1. round trips per second over 1, 64 and 512 connections: devwire-sim (a
 *    subprocess serving a script of exact-match rules) against the bare
 *    devwire TCP server (an echoing application server in a child process,
 *    so both sides cross a process boundary), both driven by the same
 *    application client; target: sim >= 0.7x; then the simulator's server
 *    and the bare server both inside this process;
 * 2. the same simulator with 10, 10,000 and 100,000 exact-match rules
 *    (requests spread over the whole table): lookup is a hash, not a scan,
 *    so the figures should match;
 * 3. the engine alone, no sockets: decisions per second for 10, 10,000 and
 *    100,000 rules.
 *
 * DW_BENCH_QUICK=1 runs a short version (a few seconds). */
#include <devwire/devwire.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef DW_BENCH_HAVE_SIM_CORE
#include "engine/engine.h"
#include "script/script.h"
#include "device/server.h"
#endif
#include "app_echo.h"
#include "bench_child.h"
#include "sim_child.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- scripts --------------------------------------------------------------- */

/* Rule i of the exact rules "Q<i>" -> "A<i>". */
static void exact_rule(FILE *f, size_t i, void *arg)
{
    (void)arg;
    fprintf(f, "{\"when\": \"Q%zu\", \"reply\": \"A%zu\"}", i, i);
}

/* A script of n exact rules; returns the file (caller unlinks and frees). */
static char *make_script(size_t n)
{
    char tag[32];
    snprintf(tag, sizeof tag, "%zu", n);
    return bench_sim_script(tag, n, exact_rule, NULL);
}

/* ---- the bare server: an echoing application server ----------------------- */

/* ---- closed-loop load ------------------------------------------------------ */

typedef struct load {
    uint16_t port;
    size_t nrules; /* requests cycle over Q0..Q<nrules-1>, spread by a stride */
    int sim;       /* expect "A<i>" (simulator) or "Q<i>" (echo) */
    double until;
    atomic_ullong trips;
    atomic_int failures;
    pthread_barrier_t ready;
} load;

static void *worker(void *arg)
{
    load *l = arg;
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = "127.0.0.1";
    o.port = l->port;
    dw_client *tc = dw_tcp_client_new(&o);
    dw_app_client *ac = dw_app_client_new(tc, m, m);
    dw_app_session *s = NULL;
    dw_error err;
    int ok = dw_app_client_connect(ac, &s, &err) == DW_OK;
    if (!ok) {
        fprintf(stderr, "bench_sim: %s\n", dw_error_message(&err));
        atomic_fetch_add(&l->failures, 1);
    }
    pthread_barrier_wait(&l->ready);
    dw_buf resp = DW_BUF_INIT;
    unsigned long long n = 0;
    size_t i = (size_t)rand() % l->nrules;
    char req[32], want[32];
    while (ok && now() < l->until) {
        i = (i + 7919) % l->nrules; /* wander over the whole table */
        int rn = snprintf(req, sizeof req, "Q%zu", i);
        int wn = snprintf(want, sizeof want, "%c%zu", l->sim ? 'A' : 'Q', i);
        if (dw_app_session_send_receive_bytes(s, req, (size_t)rn, &resp, NULL) != DW_OK ||
            resp.len != (size_t)wn || memcmp(resp.data, want, (size_t)wn) != 0) {
            atomic_fetch_add(&l->failures, 1);
            break;
        }
        n++;
    }
    atomic_fetch_add(&l->trips, n);
    dw_buf_free(&resp);
    dw_app_session_close(s);
    dw_app_client_free(ac);
    dw_client_free(tc);
    dw_marshaller_free(m);
    return NULL;
}

/* Round trips per second over `conns` connections for `seconds`. */
static double run_load(uint16_t port, size_t nrules, int sim, int conns, double seconds)
{
    load l;
    memset(&l, 0, sizeof l);
    l.port = port;
    l.nrules = nrules;
    l.sim = sim;
    l.until = now() + 3600;
    pthread_barrier_init(&l.ready, NULL, (unsigned)conns + 1);
    pthread_t *t = calloc((size_t)conns, sizeof *t);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < conns; i++)
        pthread_create(&t[i], &attr, worker, &l);
    pthread_attr_destroy(&attr);
    /* Everyone is connected: start the clock. */
    double start = now();
    l.until = start + seconds;
    pthread_barrier_wait(&l.ready);
    for (int i = 0; i < conns; i++)
        pthread_join(t[i], NULL);
    double elapsed = now() - start;
    free(t);
    pthread_barrier_destroy(&l.ready);
    if (atomic_load(&l.failures)) {
        fprintf(stderr, "bench_sim: %d failure(s) at %d connection(s)\n", atomic_load(&l.failures),
                conns);
        return -1;
    }
    return (double)atomic_load(&l.trips) / elapsed;
}

static double median(double *v, int n)
{
    return bench_median(v, n);
}

/* ---- the engine alone ------------------------------------------------------- */

#ifdef DW_BENCH_HAVE_SIM_CORE
/* Decisions per second for a script of n exact rules. */
static double engine_rate(const char *path, size_t n, double seconds)
{
    dw_sim_script *s = NULL;
    dw_sim_engine *e = NULL;
    dw_error err;
    if (dw_sim_script_load_file(path, &s, &err) != DW_OK ||
        dw_sim_engine_new(s, &e, &err) != DW_OK) {
        fprintf(stderr, "bench_sim: %s\n", dw_error_message(&err));
        dw_sim_script_free(s);
        return -1;
    }
    dw_sim_session *ss = dw_sim_session_new(e);
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    char req[32];
    size_t i = 0;
    unsigned long long calls = 0;
    double start = now(), end = start + seconds, t = start;
    while (t < end) {
        for (int k = 0; k < 1000; k++) {
            i = (i + 7919) % n;
            int rn = snprintf(req, sizeof req, "Q%zu", i);
            if (dw_sim_engine_handle(e, ss, (const uint8_t *)req, (size_t)rn, &o, NULL) != DW_OK ||
                o.source != DW_SIM_BY_RULE || o.index != i) {
                fprintf(stderr, "bench_sim: engine answered %s wrongly\n", req);
                calls = 0;
                t = end;
                break;
            }
            calls++;
        }
        t = now();
    }
    double rate = (double)calls / (t - start);
    dw_sim_outcome_free(&o);
    dw_sim_session_free(ss);
    dw_sim_engine_free(e);
    dw_sim_script_free(s);
    return calls ? rate : -1;
}
#endif

/* The bare server, started in a child process (bench_child_start), so that
 * it and the simulator (also a child process) are measured on the same
 * footing, across a process boundary. */
static uint16_t bare_serve(void)
{
    static bench_echo_server e; /* serves until the process ends */
    return bench_echo_server_start(&e, NULL, NULL) == DW_OK ? dw_tcp_server_port(e.tcp) : 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    double seconds = quick ? 0.3 : 1.0;
    int rounds = quick ? 1 : 3;
    int status = 0;

    uint16_t bare_port = 0;
    pid_t bare_pid = bench_child_start(bare_serve, &bare_port);
    if (bare_pid < 0) {
        fprintf(stderr, "bench_sim: cannot start the bare server process\n");
        return 1;
    }

    bench_echo_server bare;
    dw_error err;
    dw_error_clear(&err);
    if (bench_echo_server_start(&bare, NULL, &err) != DW_OK) {
        fprintf(stderr, "bench_sim: %s\n", dw_error_message(&err));
        return 1;
    }

    static const size_t sizes[] = {10, 10000, 100000};
    char *scripts[3];
    for (int k = 0; k < 3; k++) {
        scripts[k] = make_script(sizes[k]);
        if (!scripts[k]) {
            fprintf(stderr, "bench_sim: cannot write a script\n");
            return 1;
        }
    }
    printf("bench_sim: %s; rounds of %.1f s, medians of %d alternating round(s)\n",
           quick ? "quick run" : "full run", seconds, rounds);

    /* 1. The simulator next to the bare server. */
    bench_sim_child sim;
    if (bench_sim_child_start(&sim, scripts[0]) != 0)
        return 1;
    printf("\nsimulator (10 exact rules) vs bare devwire TCP server (echoing app server), each in\n"
           "its own process\n");
    printf("%6s | %12s | %12s | %6s\n", "conns", "sim rt/s", "bare rt/s", "ratio");
    static const int conns[] = {1, 64, 512};
    for (int ci = 0; ci < 3; ci++) {
        double a[8], b[8], r[8];
        for (int k = 0; k < rounds; k++) {
            /* Alternate which side goes first so machine noise hits both. */
            if (k % 2 == 0) {
                a[k] = run_load(sim.port, 10, 1, conns[ci], seconds);
                b[k] = run_load(bare_port, 10, 0, conns[ci], seconds);
            } else {
                b[k] = run_load(bare_port, 10, 0, conns[ci], seconds);
                a[k] = run_load(sim.port, 10, 1, conns[ci], seconds);
            }
            if (a[k] < 0 || b[k] < 0)
                status = 1;
            r[k] = b[k] > 0 ? a[k] / b[k] : 0;
        }
        double ratio = median(r, rounds);
        printf("%6d | %12.0f | %12.0f | %5.2fx%s\n", conns[ci], median(a, rounds),
               median(b, rounds), ratio, ratio >= 0.7 ? "" : "  (below the 0.7x target)");
        /* For scripts/bench.sh: BENCH name value unit baseline ratio. */
        printf("BENCH sim_rt_%dconn %.0f rt/s %.0f %.2f\n", conns[ci], median(a, rounds),
               median(b, rounds), ratio);
    }
    bench_sim_child_stop(&sim);
    bench_child_stop(bare_pid);

#ifdef DW_BENCH_HAVE_SIM_CORE
    /* 1b. The same simulator server in this process, next to the bare server
     * in this process: what the simulator's own work costs, without the
     * process boundary. */
    {
        dw_sim_script *script = NULL;
        dw_sim_server *ss = NULL;
        dw_sim_server_options o;
        dw_sim_server_options_init(&o);
        if (dw_sim_script_load_file(scripts[0], &script, &err) != DW_OK ||
            dw_sim_server_new(&o, script, &ss, &err) != DW_OK ||
            dw_sim_server_start(ss, &err) != DW_OK) {
            fprintf(stderr, "bench_sim: %s\n", dw_error_message(&err));
            return 1;
        }
        printf("\nthe simulator's server in this process vs the bare server\n");
        printf("%6s | %12s | %12s | %6s\n", "conns", "sim rt/s", "bare rt/s", "ratio");
        for (int ci = 0; ci < 2; ci++) {
            double a[8], b[8], r[8];
            for (int k = 0; k < rounds; k++) {
                int first = k % 2;
                for (int side = 0; side < 2; side++) {
                    if ((side ^ first) == 0)
                        a[k] = run_load(dw_sim_server_port(ss), 10, 1, conns[ci], seconds);
                    else
                        b[k] = run_load(dw_tcp_server_port(bare.tcp), 10, 0, conns[ci], seconds);
                }
                if (a[k] < 0 || b[k] < 0)
                    status = 1;
                r[k] = b[k] > 0 ? a[k] / b[k] : 0;
            }
            double ratio = median(r, rounds);
            printf("%6d | %12.0f | %12.0f | %5.2fx\n", conns[ci], median(a, rounds),
                   median(b, rounds), ratio);
            printf("BENCH sim_inproc_rt_%dconn %.0f rt/s %.0f %.2f\n", conns[ci], median(a, rounds),
                   median(b, rounds), ratio);
        }
        dw_sim_server_free(ss);
    }
#endif

    /* 2. Table size through the socket: the three simulators run side by
     * side and take turns, round after round (rotating who goes first), so
     * that the machine's noise hits them alike. */
    printf("\nsimulator with N exact rules, requests spread over the table, 1 and 64 "
           "connections\n");
    printf("%8s | %12s | %12s | %10s | %10s\n", "rules", "1 conn rt/s", "64 conn rt/s", "vs 10 (1)",
           "vs 10 (64)");
    bench_sim_child sims[3];
    double load_s[3];
    int up = 1;
    for (int k = 0; k < 3; k++) {
        double t0 = now();
        if (bench_sim_child_start(&sims[k], scripts[k]) != 0) {
            for (int j = 0; j < k; j++)
                bench_sim_child_stop(&sims[j]);
            up = 0;
            status = 1;
            break;
        }
        load_s[k] = now() - t0;
    }
    if (up) {
        int trn = quick ? 1 : 2 * rounds;
        double one[3][8], many[3][8];
        for (int j = 0; j < trn; j++)
            for (int q3 = 0; q3 < 3; q3++) {
                int k = (j + q3) % 3;
                one[k][j] = run_load(sims[k].port, sizes[k], 1, 1, seconds / 2);
                many[k][j] = run_load(sims[k].port, sizes[k], 1, 64, seconds / 2);
            }
        for (int k = 0; k < 3; k++)
            bench_sim_child_stop(&sims[k]);
        double m1[3], m64[3];
        for (int k = 0; k < 3; k++) {
            m1[k] = median(one[k], trn);
            m64[k] = median(many[k], trn);
        }
        for (int k = 0; k < 3; k++) {
            printf("%8zu | %12.0f | %12.0f | %9.2fx | %9.2fx   (start-up: %.2f s)\n", sizes[k],
                   m1[k], m64[k], m1[0] > 0 ? m1[k] / m1[0] : 0, m64[0] > 0 ? m64[k] / m64[0] : 0,
                   load_s[k]);
            printf("BENCH sim_rules_%zu_1conn %.0f rt/s %.0f %.2f\n", sizes[k], m1[k], m1[0],
                   m1[0] > 0 ? m1[k] / m1[0] : 0);
            printf("BENCH sim_rules_%zu_64conn %.0f rt/s %.0f %.2f\n", sizes[k], m64[k], m64[0],
                   m64[0] > 0 ? m64[k] / m64[0] : 0);
        }
    }

#ifdef DW_BENCH_HAVE_SIM_CORE
    /* 3. The engine alone. */
    printf("\nengine alone (no sockets): decisions per second\n");
    printf("%8s | %14s | %10s\n", "rules", "decisions/s", "vs 10");
    double e10 = 0;
    for (int k = 0; k < 3; k++) {
        double v[8];
        for (int j = 0; j < rounds; j++)
            v[j] = engine_rate(scripts[k], sizes[k], quick ? 0.2 : 0.5);
        double m = median(v, rounds);
        if (m < 0)
            status = 1;
        if (k == 0)
            e10 = m;
        printf("%8zu | %14.0f | %9.2fx\n", sizes[k], m, e10 > 0 ? m / e10 : 0);
        printf("BENCH engine_rules_%zu %.0f decisions/s %.0f %.2f\n", sizes[k], m, e10,
               e10 > 0 ? m / e10 : 0);
    }
#endif

    for (int k = 0; k < 3; k++) {
        unlink(scripts[k]);
        free(scripts[k]);
    }
    bench_echo_server_free(&bare);
    return status;
}
