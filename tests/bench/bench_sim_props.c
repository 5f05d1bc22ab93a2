/* Typed properties against the fastest thing the simulator does, each
 * figure next to its baseline from the same run:
 *
 * 1. a SCPI instrument of 200 properties answering FREQ? (the SCPI parser,
 *    the header index, the NR3 printer) against a script of one exact rule
 *    answering the same bytes (a hash lookup and a copy of a prebuilt
 *    answer); target: 0.9x or better over TCP;
 * 2. the same instrument answering a chained five-query message
 *    (FREQ?;:POW?;:OUTP?;:TRIG:SOUR?;:VOLT?) against one exact rule whose
 *    request is that whole message;
 * 3. a channel property (OUTP2:IMP?) and a status query answered by the
 *    built-in STATus system (STAT:QUES:COND?), each against its exact rule;
 * each measured as round trips per second through devwire-sim (a child
 * process) over 1 and 16 connections, and as the engine alone (no
 * sockets, decisions per second).
 *
 * DW_BENCH_QUICK=1 runs a short version. */
#include <devwire/devwire.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef DW_BENCH_HAVE_SIM_CORE
#include "engine/engine.h"
#include "script/script.h"
#endif
#include "loadgen.h"
#include "sim_child.h"

#define NPROPS 200

static const char *const freq_q = "FREQ?";
static const char *const chain_q = "FREQ?;:POW?;:OUTP?;:TRIG:SOUR?;:VOLT?";
static const char *const freq_a = "1.0E+06";
static const char *const chan_q = "OUTP2:IMP?";
static const char *const chan_a = "5.0E+01";
static const char *const status_q = "STAT:QUES:COND?";
static const char *const status_a = "0";
static const char *const chain_a = "1.0E+06;-1.0E+01;0;IMM;5.0E+00";

/* ---- scripts ---------------------------------------------------------------- */

static char *script_path(const char *what)
{
    char *path = NULL;
    if (asprintf(&path, "/tmp/dwsim-bench-props-%ld-%s.json", (long)getpid(), what) < 0)
        return NULL;
    return path;
}

/* The instrument: FREQ, POW, OUTP, TRIG:SOUR, VOLT, a two-channel
 * OUTP<n>:IMP and 194 more settings under their own subsystems. */
static char *write_instrument(void)
{
    char *path = script_path("instrument");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f)
        return free(path), NULL;
    fputs("{\"name\": \"bench\", \"profile\": \"scpi\", \"properties\": {\n"
          " \"freq\": {\"type\": \"float\", \"scpi\": \"[SOURce:]FREQuency[:CW]\", \"unit\": "
          "\"Hz\", \"min\": 9e3, \"max\": 6e9, \"default\": 1e6},\n"
          " \"pow\": {\"type\": \"float\", \"scpi\": \"[SOURce:]POWer[:LEVel]\", \"min\": -130, "
          "\"max\": 20, \"default\": -10},\n"
          " \"outp\": {\"type\": \"bool\", \"scpi\": \"OUTPut[:STATe]\"},\n"
          " \"trig\": {\"type\": \"enum\", \"scpi\": \"TRIGger:SOURce\", \"values\": "
          "[\"IMMediate\", \"BUS\", \"EXTernal\"]},\n"
          " \"volt\": {\"type\": \"float\", \"scpi\": \"[SOURce:]VOLTage[:LEVel]\", \"unit\": "
          "\"V\", \"min\": 0, \"max\": 30, \"default\": 5},\n"
          " \"imp\": {\"type\": \"float\", \"scpi\": \"OUTPut#:IMPedance\", \"channels\": [1, 2], "
          "\"min\": 1, \"max\": 10000, \"default\": 50}",
          f);
    for (int i = 6; i < NPROPS; i++) /* SUBSystem<i>:X<i in letters>: AF, AG, ... */
        fprintf(f,
                ",\n \"p%d\": {\"type\": \"float\", \"scpi\": \"[SOURce:]SUBSystem%d:X%c%c\", "
                "\"min\": 0, \"max\": 100, \"default\": %d}",
                i, i, 'A' + i / 26, 'A' + i % 26, i % 100);
    fputs("}}\n", f);
    fclose(f);
    return path;
}

/* One exact rule answering `q` with `a`. */
static char *write_rule(const char *what, const char *q, const char *a)
{
    char *path = script_path(what);
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f)
        return free(path), NULL;
    fprintf(f, "{\"name\": \"bench\", \"rules\": [{\"when\": \"%s\", \"reply\": \"%s\"}]}\n", q, a);
    fclose(f);
    return path;
}

/* ---- round trips ---------------------------------------------------------------- */

/* bench_run's client: every round trip asks the fixed question and checks
 * the fixed answer (the load generator's own request text is not used). */
typedef struct question {
    uint16_t port;
    const char *q, *a;
} question;

typedef struct conn {
    const question *qa;
    dw_marshaller *m;
    dw_client *tc;
    dw_app_client *ac;
    dw_app_session *s;
    dw_buf resp;
} conn;

static void conn_close(void *p)
{
    conn *c = p;
    dw_app_session_close(c->s);
    dw_app_client_free(c->ac);
    dw_client_free(c->tc);
    dw_marshaller_free(c->m);
    dw_buf_free(&c->resp);
    free(c);
}

static void *conn_open(void *ctx)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->qa = ctx;
    c->m = dw_sentinel_marshaller_new("\n", 1);
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = "127.0.0.1";
    o.port = c->qa->port;
    c->tc = dw_tcp_client_new(&o);
    c->ac = dw_app_client_new(c->tc, c->m, c->m);
    dw_error err;
    if (!c->ac || dw_app_client_connect(c->ac, &c->s, &err) != DW_OK) {
        fprintf(stderr, "bench_sim_props: %s\n", c->ac ? dw_error_message(&err) : "no memory");
        conn_close(c);
        return NULL;
    }
    return c;
}

static int conn_round_trip(void *p, const char *req, size_t n)
{
    conn *c = p;
    (void)req;
    (void)n;
    size_t an = strlen(c->qa->a);
    if (dw_app_session_send_receive_bytes(c->s, c->qa->q, strlen(c->qa->q), &c->resp, NULL) !=
            DW_OK ||
        c->resp.len != an || memcmp(c->resp.data, c->qa->a, an) != 0)
        return -1;
    return 0;
}

static const bench_client_ops ops = {conn_open, conn_round_trip, conn_close};

/* Round trips per second asking q (answer a) over `conns` connections. */
static double run_load(uint16_t port, const char *q, const char *a, int conns, double seconds)
{
    question qa = {port, q, a};
    bench_result r;
    if (bench_run(&ops, &qa, conns, seconds, &r) != 0 || r.failures) {
        fprintf(stderr, "bench_sim_props: %s: %llu failure(s)\n", q,
                (unsigned long long)r.failures);
        return -1;
    }
    return r.rps;
}

/* The median of alternating rounds, simulator `a` (value) then `b`
 * (baseline), each serving its script in its own process. */
static void round_trips(const char *label, const char *pa, const char *pb, const char *q,
                        const char *ans, int conns, double seconds, int rounds)
{
    bench_sim_child ca, cb;
    if (bench_sim_child_start(&ca, pa) != 0)
        return;
    if (bench_sim_child_start(&cb, pb) != 0) {
        bench_sim_child_stop(&ca);
        return;
    }
    double va[8], vb[8];
    for (int r = 0; r < rounds; r++) {
        va[r] = run_load(ca.port, q, ans, conns, seconds);
        vb[r] = run_load(cb.port, q, ans, conns, seconds);
    }
    bench_sim_child_stop(&ca);
    bench_sim_child_stop(&cb);
    for (int i = 0; i < rounds; i++) /* sort both for the median */
        for (int j = i + 1; j < rounds; j++) {
            double t;
            if (va[j] < va[i])
                t = va[i], va[i] = va[j], va[j] = t;
            if (vb[j] < vb[i])
                t = vb[i], vb[i] = vb[j], vb[j] = t;
        }
    double a = va[rounds / 2], b = vb[rounds / 2];
    printf("%-22s | %6d | %12.0f | %12.0f | %5.2fx\n", label, conns, a, b, b > 0 ? a / b : 0);
    printf("BENCH props_rt_%s_%dconn %.0f rt/s %.0f %.2f\n", label, conns, a, b, b > 0 ? a / b : 0);
}

/* ---- the engine alone ------------------------------------------------------------- */

#ifdef DW_BENCH_HAVE_SIM_CORE
static double engine_rate(const char *path, const char *q, const char *a, double seconds)
{
    dw_sim_script *s = NULL;
    dw_sim_engine *e = NULL;
    dw_error err;
    if (dw_sim_script_load_file(path, &s, &err) != DW_OK ||
        dw_sim_engine_new(s, &e, &err) != DW_OK) {
        fprintf(stderr, "bench_sim_props: %s\n", dw_error_message(&err));
        dw_sim_script_free(s);
        return -1;
    }
    dw_sim_session *ss = dw_sim_session_new(e);
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    size_t qn = strlen(q), an = strlen(a);
    unsigned long long calls = 0;
    double start = bench_now(), end = start + seconds, t = start;
    while (t < end) {
        for (int k = 0; k < 1000; k++, calls++)
            if (dw_sim_engine_handle(e, ss, (const uint8_t *)q, qn, &o, NULL) != DW_OK ||
                o.bytes.len != an + 1 || memcmp(o.bytes.data, a, an) != 0) {
                fprintf(stderr, "bench_sim_props: the engine answered %s wrongly\n", q);
                calls = 0;
                t = end;
                break;
            }
        t = bench_now();
    }
    dw_sim_outcome_free(&o);
    dw_sim_session_free(ss);
    dw_sim_engine_free(e);
    dw_sim_script_free(s);
    return calls ? (double)calls / (t - start) : -1;
}

static void engine(const char *label, const char *pa, const char *pb, const char *q, const char *a,
                   double seconds)
{
    double va = engine_rate(pa, q, a, seconds), vb = engine_rate(pb, q, a, seconds);
    printf("%-22s | %14.0f | %14.0f | %5.2fx\n", label, va, vb, vb > 0 ? va / vb : 0);
    printf("BENCH props_engine_%s %.0f decisions/s %.0f %.2f\n", label, va, vb,
           vb > 0 ? va / vb : 0);
}
#endif

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *qk = getenv("DW_BENCH_QUICK");
    int quick = qk && strcmp(qk, "1") == 0;
    double seconds = quick ? 0.3 : 1.0;
    int rounds = quick ? 1 : 5;
    char *inst = write_instrument();
    char *rule1 = write_rule("freq", freq_q, freq_a);
    char *rule5 = write_rule("chain", chain_q, chain_a);
    char *rulec = write_rule("chan", chan_q, chan_a);
    char *rules = write_rule("status", status_q, status_a);
    if (!inst || !rule1 || !rule5 || !rulec || !rules) {
        fprintf(stderr, "bench_sim_props: cannot write the scripts\n");
        return 1;
    }
    printf("bench_sim_props: %s; %d properties; rounds of %.1f s, medians of %d\n",
           quick ? "quick run" : "full run", NPROPS, seconds, rounds);
    printf("\nround trips per second: the instrument vs one exact rule, same request and "
           "answer\n");
    printf("%-22s | %6s | %12s | %12s | %6s\n", "request", "conns", "props rt/s", "rule rt/s",
           "ratio");
    int conns[] = {1, 16};
    for (int c = 0; c < 2; c++) {
        round_trips("freq", inst, rule1, freq_q, freq_a, conns[c], seconds, rounds);
        round_trips("chain5", inst, rule5, chain_q, chain_a, conns[c], seconds, rounds);
        round_trips("channel", inst, rulec, chan_q, chan_a, conns[c], seconds, rounds);
        round_trips("status", inst, rules, status_q, status_a, conns[c], seconds, rounds);
    }
#ifdef DW_BENCH_HAVE_SIM_CORE
    printf("\nthe engine alone (no sockets): decisions per second\n");
    printf("%-22s | %14s | %14s | %6s\n", "request", "props", "exact rule", "ratio");
    engine("freq", inst, rule1, freq_q, freq_a, quick ? 0.2 : 1.0);
    engine("chain5", inst, rule5, chain_q, chain_a, quick ? 0.2 : 1.0);
    engine("channel", inst, rulec, chan_q, chan_a, quick ? 0.2 : 1.0);
    engine("status", inst, rules, status_q, status_a, quick ? 0.2 : 1.0);
#endif
    unlink(inst);
    unlink(rule1);
    unlink(rule5);
    unlink(rulec);
    unlink(rules);
    free(rulec);
    free(rules);
    free(inst);
    free(rule1);
    free(rule5);
    return 0;
}
