/* What Lua costs in devwire-sim, each figure next to its baseline from the
 * same run:
 *
 * 1. round trips per second through the socket (devwire-sim in a child
 *    process, 1 and 64 connections): a rule whose reply is computed by Lua
 *    ({"lua": "'A' .. request:sub(2)"}) and a rule with an "if", against the
 *    same exact rule with a literal reply; target: Lua >= 0.5x;
 * 2. the engine alone, no sockets: decisions per second for the same three.
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
#include "app_echo.h"
#include "line_load.h"
#include "loadgen.h"
#include "sim_child.h"

/* The rule that answers "Q1" with "A1" in each script; nine other exact
 * rules around it, as in a small instrument's script. */
static const char *const kinds[] = {"literal", "lua reply", "if + literal"};
enum { LITERAL, LUA_REPLY, COND, NKINDS };

static void write_rule(FILE *f, size_t i, void *arg)
{
    int kind = *(const int *)arg;
    if (kind == LUA_REPLY)
        fprintf(f, "{\"when\": \"Q%zu\", \"reply\": {\"lua\": \"'A' .. request:sub(2)\"}}", i);
    else if (kind == COND)
        fprintf(f, "{\"when\": \"Q%zu\", \"if\": \"#request == 2\", \"reply\": \"A%zu\"}", i, i);
    else
        fprintf(f, "{\"when\": \"Q%zu\", \"reply\": \"A%zu\"}", i, i);
}

/* The script of one kind; returns its file (caller unlinks and frees). */
static char *make_script(int kind)
{
    static const char *const tags[] = {"lua-literal", "lua-reply", "lua-if"};
    return bench_sim_script(tags[kind], 10, write_rule, &kind);
}

static double median(double *v, int n)
{
    return bench_median(v, n);
}

/* One timed load on a simulator: round trips per second and the
 * simulator's CPU microseconds per round trip. */
static int measure(const bench_sim_child *c, int conns, double seconds, double *rps, double *cpu)
{
    bench_line_load l;
    memset(&l, 0, sizeof l);
    l.port = c->port;
    l.request = "Q1\n";
    l.reply = "A1\n";
    l.conns = conns;
    l.threads = conns < 4 ? conns : 4;
    l.seconds = seconds;
    l.server_pid = (long)c->pid;
    bench_result r;
    if (bench_line_run(&l, &r) != 0)
        return -1;
    *rps = r.rps;
    *cpu = r.rps > 0 ? r.server_cores * 1e6 / r.rps : 0;
    return 0;
}

/* 1. Through the socket: the three simulators take turns, round after
 * round, rotating who goes first. */
static int socket_figures(char *const *scripts, double seconds, int rounds)
{
    bench_sim_child sims[NKINDS];
    for (int k = 0; k < NKINDS; k++)
        if (bench_sim_child_start(&sims[k], scripts[k]) != 0) {
            for (int j = 0; j < k; j++)
                bench_sim_child_stop(&sims[j]);
            return -1;
        }
    int status = 0;
    static const int conns[] = {1, 64};
    printf("\nround trips per second through the socket (devwire-sim in its own process)\n");
    printf("%6s | %-12s | %12s | %10s | %6s\n", "conns", "rule", "rt/s", "CPU us/rt", "vs literal");
    for (int ci = 0; ci < 2; ci++) {
        double rps[NKINDS][8], cpu[NKINDS][8], ratio[NKINDS][8];
        for (int j = 0; j < rounds; j++) {
            for (int q = 0; q < NKINDS; q++) {
                int k = (j + q) % NKINDS;
                if (measure(&sims[k], conns[ci], seconds, &rps[k][j], &cpu[k][j]) != 0)
                    status = 1;
            }
            for (int k = 0; k < NKINDS; k++)
                ratio[k][j] = rps[LITERAL][j] > 0 ? rps[k][j] / rps[LITERAL][j] : 0;
        }
        double base = median(rps[LITERAL], rounds);
        for (int k = 0; k < NKINDS; k++) {
            double m = median(rps[k], rounds), r = median(ratio[k], rounds);
            printf("%6d | %-12s | %12.0f | %10.1f | %5.2fx%s\n", conns[ci], kinds[k], m,
                   median(cpu[k], rounds), r,
                   k == LUA_REPLY && r < 0.5 ? "  (below the 0.5x target)" : "");
            /* For scripts/bench.sh: BENCH name value unit baseline ratio. */
            if (k != LITERAL)
                printf("BENCH sim_%s_%dconn %.0f rt/s %.0f %.2f\n",
                       k == LUA_REPLY ? "lua_reply" : "lua_if", conns[ci], m, base, r);
        }
    }
    for (int k = 0; k < NKINDS; k++)
        bench_sim_child_stop(&sims[k]);
    return status;
}

#ifdef DW_BENCH_HAVE_SIM_CORE
/* 2. Decisions per second for "Q1", the engine alone. */
static double engine_rate(const char *path, double seconds)
{
    dw_sim_script *s = NULL;
    dw_sim_engine *e = NULL;
    dw_error err;
    if (dw_sim_script_load_file(path, &s, &err) != DW_OK ||
        dw_sim_engine_new(s, &e, &err) != DW_OK) {
        fprintf(stderr, "bench_sim_lua: %s\n", dw_error_message(&err));
        dw_sim_script_free(s);
        return -1;
    }
    dw_sim_session *ss = dw_sim_session_new(e);
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    unsigned long long calls = 0;
    double start = bench_now(), end = start + seconds, t = start;
    while (t < end) {
        for (int k = 0; k < 1000; k++, calls++)
            if (dw_sim_engine_handle(e, ss, (const uint8_t *)"Q1", 2, &o, NULL) != DW_OK ||
                o.bytes.len != 3 || memcmp(o.bytes.data, "A1\n", 3) != 0) {
                fprintf(stderr, "bench_sim_lua: %s: the engine answered wrongly\n", path);
                calls = 0;
                end = t;
                break;
            }
        t = bench_now();
    }
    double rate = (double)calls / (t - start);
    dw_sim_outcome_free(&o);
    dw_sim_session_free(ss);
    dw_sim_engine_free(e);
    dw_sim_script_free(s);
    return calls ? rate : -1;
}

static int engine_figures(char *const *scripts, double seconds, int rounds)
{
    int status = 0;
    printf("\nthe engine alone (no sockets): decisions per second\n");
    printf("%-12s | %14s | %8s | %10s\n", "rule", "decisions/s", "ns each", "vs literal");
    double base = 0;
    for (int k = 0; k < NKINDS; k++) {
        double v[8];
        for (int j = 0; j < rounds; j++)
            v[j] = engine_rate(scripts[k], seconds);
        double m = median(v, rounds);
        if (m < 0)
            status = 1;
        if (k == LITERAL)
            base = m;
        printf("%-12s | %14.0f | %8.0f | %9.2fx\n", kinds[k], m, m > 0 ? 1e9 / m : 0,
               base > 0 ? m / base : 0);
        if (k != LITERAL)
            printf("BENCH engine_%s %.0f decisions/s %.0f %.2f\n",
                   k == LUA_REPLY ? "lua_reply" : "lua_if", m, base, base > 0 ? m / base : 0);
    }
    return status;
}
#endif

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    double seconds = quick ? 0.3 : 1.0;
    int rounds = quick ? 1 : 5;
    char *scripts[NKINDS];
    for (int k = 0; k < NKINDS; k++)
        if (!(scripts[k] = make_script(k))) {
            fprintf(stderr, "bench_sim_lua: cannot write a script\n");
            return 1;
        }
    printf("bench_sim_lua: %s; rounds of %.1f s, medians of %d rotating round(s)\n",
           quick ? "quick run" : "full run", seconds, rounds);
    int status = socket_figures(scripts, seconds, rounds) != 0;
#ifdef DW_BENCH_HAVE_SIM_CORE
    status |= engine_figures(scripts, quick ? 0.2 : 0.5, rounds) != 0;
#endif
    for (int k = 0; k < NKINDS; k++) {
        unlink(scripts[k]);
        free(scripts[k]);
    }
    return status;
}
