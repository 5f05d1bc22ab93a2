/* A hostile script author against a good client of another device. One
 * devwire-sim process serves two devices: "good" answers `ping` with
 * `pong`, "hostile" has one rule whose reply is Lua written to hog the
 * process:
 *
 *   pcall    pcall swallowing the instruction budget's error, in a loop
 *   xpcall   a message handler that loops, called again and again
 *   pattern  a catastrophic Lua pattern, '.-.-.-.-b' over 3000 'a's
 *   trim     the trim idiom '^%s*(.-)%s*$' on a 60,000-byte request of blanks
 *   find     150,000 plain finds over a 4 MiB string (each a long C call,
 *            all of them within the instruction budget)
 *   blanks   a control for trim: the same request, a constant reply
 *
 * For each case a fresh process; in alternating rounds `ping` round trips on
 * one connection to the good device alone, then next to a hostile client
 * that sends the case's request and waits for its answer, then sends it
 * again: one request in flight, never a queue of them behind a frozen one,
 * and a request that a sandbox cuts short after a few milliseconds still
 * weighs on every round trip of the round, not on one in thousands (which a
 * p99 would not see). A failed chunk's answer is the unmatched reply "?".
 * Target: ping p99 next to any case within 2x of alone. A case whose pings
 * do not get through within the round's limit is "stalled": the process is
 * killed (SIGKILL) and the case reported with the limit as its p99, so that
 * one frozen case does not spoil the others. The hostile client gives up
 * on an answer after a timeout ("no answer").
 *
 * Each case runs twice: with the devices on loops of their own (--loops 2,
 * what the default gives two devices on two CPUs), and on one shared loop
 * (--loops 1), where a deadline of 10 ms is all that bounds the ping's wait.
 *
 * The cases' Lua sits in this file, not in script files next to it: each is
 * one line, the table below says in one place what each case sends and
 * runs, and the program does not need to find its sources at run time.
 *
 * DW_BENCH_QUICK=1 runs a short version (under a minute even when every
 * case stalls). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app_echo.h"
#include "bench_child.h"
#include "line_load.h"
#include "loadgen.h"

typedef struct hostile_case {
    const char *name;  /* BENCH isolation_<name>_... */
    const char *label; /* in the table */
    const char *when;  /* the rule's "when", JSON */
    const char *lua;   /* its reply's Lua expression: no '"' or '\' (JSON as is) */
    size_t blanks;     /* > 0: the request is this many blanks; else "HOSTILE" */
} hostile_case;

static const hostile_case cases[] = {
    {"pcall", "pcall swallows the budget", "\"HOSTILE\"",
     "(function() while true do pcall(function() while true do end end) end end)()", 0},
    {"xpcall", "looping xpcall handler", "\"HOSTILE\"",
     "(function() while true do xpcall(function() error('x') end,"
     " function() while true do end end) end end)()",
     0},
    {"pattern", "pattern .-.-.-.-b", "\"HOSTILE\"", "string.rep('a', 3000):find('.-.-.-.-b')", 0},
    {"trim", "trim 60 kB of blanks", "{\"prefix\": \" \"}",
     "'[' .. request:match('^%s*(.-)%s*$') .. ']'", 60000},
    {"find", "150,000 finds in 4 MiB", "\"HOSTILE\"",
     "(function() local s = string.rep('x', 4*1024*1024) local n = 0"
     " for i = 1, 150000 do if s:find('y', 1, true) then n = n + 1 end end"
     " return tostring(n) end)()",
     0},
    {"blanks", "60 kB of blanks, '[]'", "{\"prefix\": \" \"}", "'[]'", 60000},
};
enum { NCASES = sizeof cases / sizeof *cases, MAX_ROUNDS = 8 };

typedef struct settings {
    double seconds;        /* pinging per round */
    double limit;          /* a round's pings must be through by then, or it stalled */
    double answer_timeout; /* the hostile client waits this long for an answer */
    int rounds;
    const char *loops; /* --loops: "2" (a loop each), "1" (one shared loop) */
} settings;

/* ---- the devices ----------------------------------------------------------- */

static const char *const framing = "\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"}";

static char *write_script(const char *tag, const char *body)
{
    char *path = NULL;
    if (asprintf(&path, "/tmp/dwsim-bench-isolation-%s-%ld.json", tag, (long)getpid()) < 0)
        return NULL;
    FILE *f = fopen(path, "w");
    int ok = f && fputs(body, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "bench_sim_isolation: cannot write %s\n", path);
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

static char *good_script(void)
{
    char *body = NULL;
    if (asprintf(&body,
                 "{\"name\": \"good\", %s,\n"
                 " \"rules\": [{\"when\": \"ping\", \"reply\": \"pong\"}]}\n",
                 framing) < 0)
        return NULL;
    char *path = write_script("good", body);
    free(body);
    return path;
}

/* A failed chunk leaves the request unmatched: "?" is its answer. */
static char *hostile_script(const hostile_case *c)
{
    char *body = NULL;
    if (asprintf(&body,
                 "{\"name\": \"hostile\", %s,\n"
                 " \"rules\": [{\"when\": %s, \"reply\": {\"lua\": \"%s\"}}],\n"
                 " \"unmatched\": {\"reply\": \"?\"}}\n",
                 framing, c->when, c->lua) < 0)
        return NULL;
    char *path = write_script(c->name, body);
    free(body);
    return path;
}

/* devwire-sim serving both devices; the pid (ports[0] good, ports[1]
 * hostile) or -1. */
static pid_t sim_start(const char *good, const char *hostile, const char *loops, uint16_t ports[2])
{
#ifndef DW_SIM_PATH
    (void)good;
    (void)hostile;
    (void)loops;
    (void)ports;
    fprintf(stderr, "bench_sim_isolation: devwire-sim was not built\n");
    return -1;
#else
    char *g = NULL, *h = NULL;
    pid_t pid = -1;
    if (asprintf(&g, "good=%s@127.0.0.1:0", good) >= 0 &&
        asprintf(&h, "hostile=%s@127.0.0.1:0", hostile) >= 0) {
        /* A fixed seed: the runs repeat, and no line about the seed. */
        char *argv[] = {DW_SIM_PATH, "--device", g,         "--device",    h,
                        "--seed",    "1",        "--loops", (char *)loops, "--log-level",
                        "error",     NULL};
        pid = bench_child_exec_ports(argv, ports, 2);
    }
    free(g);
    free(h);
    return pid;
#endif
}

/* ---- sockets with a deadline ------------------------------------------------ */

enum { DONE = 0, TIMED_OUT = 1, FAILED = -1 };

/* Read one "\n"-terminated reply into buf (cap bytes, the rest dropped)
 * before `deadline` (bench_now seconds). DONE, TIMED_OUT or FAILED (the
 * peer closed or an error). */
static int read_reply(int fd, double deadline, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    for (;;) {
        double left = deadline - bench_now();
        if (left <= 0)
            return TIMED_OUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(left * 1e3) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return FAILED;
        if (r == 0)
            continue; /* the deadline is checked above */
        char chunk[512];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FAILED;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n')
                return DONE; /* one request in flight: nothing follows */
            if (*len < cap)
                buf[(*len)++] = chunk[i];
        }
    }
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return FAILED;
        p += w;
        n -= (size_t)w;
    }
    return DONE;
}

/* One "ping" -> "pong" round trip before `deadline`; its time in *ns. */
static int ping_once(int fd, double deadline, uint32_t *ns)
{
    uint64_t t0 = bench_now_ns();
    if (send_all(fd, "ping\n", 5) != DONE)
        return FAILED;
    char buf[8];
    size_t len;
    int rc = read_reply(fd, deadline, buf, sizeof buf, &len);
    if (rc != DONE)
        return rc;
    if (len != 4 || memcmp(buf, "pong", 4) != 0)
        return FAILED;
    *ns = (uint32_t)(bench_now_ns() - t0);
    return DONE;
}

/* Pings on one new connection for s->seconds, each before the round's
 * limit. DONE with r's p50 and p99, TIMED_OUT (stalled) or FAILED. */
static int ping_round(uint16_t port, const settings *s, bench_result *r)
{
    memset(r, 0, sizeof *r);
    double t0 = bench_now(), deadline = t0 + s->limit;
    int fd = bench_connect_loopback(port);
    if (fd < 0) {
        fprintf(stderr, "bench_sim_isolation: connect 127.0.0.1:%u: %s\n", port, strerror(-fd));
        return FAILED;
    }
    size_t cap = 4096, n = 0;
    uint32_t *ns = malloc(cap * sizeof *ns);
    uint32_t warm;
    int rc = ns ? ping_once(fd, deadline, &warm) : FAILED; /* not timed */
    double start = bench_now();
    while (rc == DONE && bench_now() - start < s->seconds) {
        if (n == cap) {
            uint32_t *more = realloc(ns, 2 * cap * sizeof *ns);
            if (!more) {
                rc = FAILED;
                break;
            }
            ns = more;
            cap *= 2;
        }
        rc = ping_once(fd, deadline, &ns[n]);
        if (rc == DONE)
            n++;
    }
    close(fd);
    if (rc == DONE) {
        bench_samples samples = {NULL, 0};
        bench_samples_add(&samples, ns, n);
        r->trips = n;
        r->seconds = bench_now() - start;
        bench_samples_finish(&samples, r, 0);
    }
    free(ns);
    return rc;
}

/* ---- the hostile client ----------------------------------------------------- */

typedef struct hostile {
    uint16_t port;
    const char *req; /* "\n" included */
    size_t n;
    double timeout;
    pthread_t thread;
    atomic_int stop;
    atomic_int sent;
    atomic_int done;
    /* Written by its thread, read after the join: */
    double answer_ms[4096];
    int answered;   /* the first 4096 are in answer_ms */
    int unanswered; /* gave up after the timeout */
    char first[24]; /* the first answer, cut short */
} hostile;

static void *hostile_main(void *arg)
{
    hostile *h = arg;
    int fd = bench_connect_loopback(h->port);
    while (fd >= 0 && !atomic_load(&h->stop)) {
        double t0 = bench_now();
        int rc = send_all(fd, h->req, h->n);
        atomic_fetch_add(&h->sent, 1);
        char buf[sizeof h->first - 1];
        size_t len = 0;
        if (rc == DONE)
            rc = read_reply(fd, t0 + h->timeout, buf, sizeof buf, &len);
        if (rc == TIMED_OUT)
            h->unanswered++;
        if (rc != DONE)
            break; /* given up on, or the process was killed */
        if (h->answered == 0)
            memcpy(h->first, buf, len);
        if (h->answered < (int)(sizeof h->answer_ms / sizeof *h->answer_ms))
            h->answer_ms[h->answered] = (bench_now() - t0) * 1e3;
        h->answered++;
    }
    if (fd >= 0)
        close(fd);
    atomic_store(&h->done, 1); /* wakes a waiter even if nothing was sent */
    return NULL;
}

/* ---- one case ---------------------------------------------------------------- */

typedef struct outcome {
    int stalled;
    double p50, p99, alone_p50, alone_p99;
    double answer_ms; /* median of the answered, or < 0: no answer */
    int answered, unanswered;
    char first[24]; /* the first answer */
} outcome;

/* Rounds alone and next to the hostile client, alternating which goes first,
 * in a fresh process that is killed at the end. 0 or -1. */
static int run_case(const hostile_case *c, const char *good, const settings *s, outcome *o)
{
    memset(o, 0, sizeof *o);
    o->answer_ms = -1;
    char *script = hostile_script(c);
    char *req = malloc(c->blanks + 16);
    if (!script || !req) {
        free(script);
        free(req);
        return -1;
    }
    size_t n;
    if (c->blanks) {
        memset(req, ' ', c->blanks);
        n = c->blanks;
    } else {
        memcpy(req, "HOSTILE", 7);
        n = 7;
    }
    req[n++] = '\n';

    uint16_t ports[2];
    pid_t pid = sim_start(good, script, s->loops, ports);
    double a50[MAX_ROUNDS], a99[MAX_ROUNDS], h50[MAX_ROUNDS], h99[MAX_ROUNDS];
    double answers[4096];
    int na = 0, nh = 0, nanswers = 0, status = pid > 0 ? 0 : -1;
    for (int k = 0; k < s->rounds && status == 0 && !o->stalled; k++)
        for (int j = 0; j < 2 && status == 0 && !o->stalled; j++) {
            bench_result r;
            if ((j + k) % 2 == 0) { /* alone */
                if (ping_round(ports[0], s, &r) != DONE) {
                    fprintf(stderr, "bench_sim_isolation: %s: a ping alone failed\n", c->name);
                    status = -1;
                    break;
                }
                a50[na] = r.p50_us;
                a99[na++] = r.p99_us;
                continue;
            }
            hostile *h = calloc(1, sizeof *h);
            if (!h) {
                status = -1;
                break;
            }
            h->port = ports[1];
            h->req = req;
            h->n = n;
            h->timeout = s->answer_timeout;
            if (pthread_create(&h->thread, NULL, hostile_main, h) != 0) {
                free(h);
                status = -1;
                break;
            }
            /* Its request is on its way ... */
            while (atomic_load(&h->sent) == 0 && !atomic_load(&h->done))
                usleep(1000);
            usleep(5000); /* ... and being worked on. */
            int rc = atomic_load(&h->sent) ? ping_round(ports[0], s, &r) : FAILED;
            if (rc == TIMED_OUT) {
                /* Frozen: kill it now, which also ends the hostile
                 * client's wait. */
                o->stalled = 1;
                bench_child_kill(pid);
                pid = -1;
            }
            atomic_store(&h->stop, 1);
            pthread_join(h->thread, NULL);
            if (h->answered && !o->first[0])
                memcpy(o->first, h->first, sizeof o->first);
            int kept = (int)(sizeof h->answer_ms / sizeof *h->answer_ms);
            for (int i = 0;
                 i < h->answered && i < kept && nanswers < (int)(sizeof answers / sizeof *answers);
                 i++)
                answers[nanswers++] = h->answer_ms[i];
            o->answered += h->answered;
            o->unanswered += h->unanswered;
            free(h);
            if (rc == FAILED) {
                fprintf(stderr, "bench_sim_isolation: %s: a ping or the hostile client failed\n",
                        c->name);
                status = -1;
            } else if (rc == DONE) {
                h50[nh] = r.p50_us;
                h99[nh++] = r.p99_us;
            }
        }
    bench_child_kill(pid); /* whatever Lua may still run there */
    unlink(script);
    free(script);
    free(req);
    if (na) {
        o->alone_p50 = bench_median(a50, na);
        o->alone_p99 = bench_median(a99, na);
    }
    if (o->stalled) {
        o->p50 = o->p99 = s->limit * 1e6;
    } else if (nh) {
        o->p50 = bench_median(h50, nh);
        o->p99 = bench_median(h99, nh);
    }
    if (nanswers)
        o->answer_ms = bench_median(answers, nanswers);
    return status == 0 && na > 0 && (o->stalled || nh > 0) ? 0 : -1;
}

/* The table of one layout. */
static void print_table(const outcome *o, const char *title)
{
    printf("\n`ping` to device good, next to a hostile client of device hostile in the\n"
           "same process, %s\n(target: p99 within 2x of alone, measured in the same process)\n",
           title);
    printf("%-26s | %11s | %11s | %13s | %13s | %s\n", "case", "ping p50 us", "ping p99 us",
           "alone p99 us", "p99 vs alone", "answer ms");
    for (size_t i = 0; i < NCASES; i++) {
        const outcome *x = &o[i];
        if (x->alone_p99 <= 0) {
            printf("%-26s | %11s | %11s | %13s | %13s | %s\n", cases[i].label, "-", "-", "-", "-",
                   "(failed)");
            continue;
        }
        char p50[32] = "stalled", p99[32] = "stalled", ratio[32], ans[80] = "no answer";
        double r = x->p99 / x->alone_p99;
        if (x->stalled) { /* at least: its pings were held past the limit */
            snprintf(ratio, sizeof ratio, ">%.0fx", r);
        } else {
            snprintf(p50, sizeof p50, "%.1f", x->p50);
            snprintf(p99, sizeof p99, "%.1f", x->p99);
            snprintf(ratio, sizeof ratio, "%.1fx", r);
        }
        if (x->answer_ms >= 0)
            snprintf(ans, sizeof ans, "%.2f ('%s', %d answered%s)", x->answer_ms, x->first,
                     x->answered, x->unanswered ? ", then no answer" : "");
        printf("%-26s | %11s | %11s | %13.1f | %13s | %s%s\n", cases[i].label, p50, p99,
               x->alone_p99, ratio, ans, r > 2 ? "  (beyond the 2x target)" : "");
    }
}

/* For scripts/bench.sh: BENCH name value unit baseline ratio. A stalled
 * case's p99 is the round's limit. */
static void print_bench(const outcome *o, const char *tag)
{
    for (size_t i = 0; i < NCASES; i++) {
        const outcome *x = &o[i];
        if (x->alone_p99 <= 0)
            continue;
        printf("BENCH isolation_%s%s_ping_p99 %.1f us %.1f %.2f\n", tag, cases[i].name, x->p99,
               x->alone_p99, x->p99 / x->alone_p99);
        /* The answer against the ping alone: how long the request held a
         * client, in round trips of a good one. */
        if (x->answer_ms >= 0)
            printf("BENCH isolation_%s%s_answer_ms %.3f ms %.3f %.1f\n", tag, cases[i].name,
                   x->answer_ms, x->alone_p50 / 1e3, x->answer_ms * 1e3 / x->alone_p50);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    settings s = {quick ? 0.5 : 1.5, 0, quick ? 5.0 : 10.0, quick ? 1 : 3, "2"};
    s.limit = s.seconds + 2.0;
    printf("bench_sim_isolation: %s; rounds of %.1f s pinging, stalled past %.1f s,\n"
           "medians of %d alternating round(s) alone and next to the hostile client;\n"
           "the hostile client gives up on an answer after %.0f s\n",
           quick ? "quick run" : "full run", s.seconds, s.limit, s.rounds, s.answer_timeout);
    char *good = good_script();
    if (!good)
        return 1;
    int status = 0;
    static const struct {
        const char *loops, *title, *tag;
    } layouts[] = {
        {"2", "each device on a loop of its own (--loops 2)", ""},
        {"1", "both devices on one loop (--loops 1)", "oneloop_"},
    };
    for (size_t l = 0; l < sizeof layouts / sizeof *layouts; l++) {
        s.loops = layouts[l].loops;
        outcome o[NCASES];
        for (size_t i = 0; i < NCASES; i++)
            if (run_case(&cases[i], good, &s, &o[i]) != 0) {
                fprintf(stderr, "bench_sim_isolation: case %s failed\n", cases[i].name);
                status = 1;
                o[i].alone_p99 = 0;
            }
        print_table(o, layouts[l].title);
        print_bench(o, layouts[l].tag);
    }
    unlink(good);
    free(good);
    return status;
}
