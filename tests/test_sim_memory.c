/* devwire-sim as a subprocess: its memory. After large or oversized frames
 * its resident size returns near where it started, whether the connections
 * that sent them are gone or still open; --max-buffered bounds the bytes
 * buffered across connections; --max-frame caps every framing. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "sim_fixture.h"

/* Each test's simulator and files are dw_sim_fixture's: .fini stops and
 * removes them whatever happened. */
TestSuite(sim_memory, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 180);

/* Under AddressSanitizer the allocator is ASan's (its quarantine holds freed
 * memory on purpose), so resident sizes say nothing about the simulator's
 * own: those tests run in the normal build only. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEANINGFUL 0
#else
#define RSS_MEANINGFUL 1
#endif

#define MIB ((size_t)1024 * 1024)

static dw_sim_proc *serve(const char *script, const char *const *extra)
{
    return dw_sim_serve("m", script, extra);
}

static void open_client(dw_sim_client *c, dw_sim_proc *p)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    if (m)
        dw_marshaller_set_max_frame(m, 64 * MIB); /* echoes of large requests */
    dw_sim_open_ok(c, p->port, m, 30000);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "prefix" then n - len(prefix) - 1 bytes of 'x' then "\n" (no "\n" at all
 * when `frame` is 0: an unterminated stream of n bytes). */
static uint8_t *make_bytes(const char *prefix, size_t n, int frame)
{
    uint8_t *b = malloc(n);
    cr_assert(b != NULL);
    memset(b, 'x', n);
    memcpy(b, prefix, strlen(prefix));
    if (frame)
        b[n - 1] = '\n';
    return b;
}

/* One client on its own thread: sends `len` raw bytes, then reads one reply
 * frame (or the end of the connection). No assertions off the main thread:
 * the results are checked after the join. */
typedef struct sender {
    dw_sim_proc *p;
    const uint8_t *data;
    size_t len;
    dw_sim_client c; /* left open for the caller */
    int sent;        /* dw_session_send's result */
    int end;         /* dw_sim_client_recv's result */
} sender;

static void *sender_main(void *arg)
{
    sender *s = arg;
    s->sent = dw_session_send(s->c.session, s->data, s->len, NULL);
    s->end = dw_sim_client_recv(&s->c);
    return NULL;
}

/* Run `n` senders at once (their connections opened first) and join them. */
static void send_all(dw_sim_proc *p, sender *s, size_t n)
{
    pthread_t t[16];
    cr_assert(n <= 16);
    for (size_t i = 0; i < n; i++) {
        s[i].p = p;
        open_client(&s[i].c, p);
    }
    for (size_t i = 0; i < n; i++)
        cr_assert(eq(int, pthread_create(&t[i], NULL, sender_main, &s[i]), 0));
    for (size_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

/* Wait (up to 10 s) for the simulator's RSS to fall to `bound` KiB: the
 * connections' threads finish on their own time. The last figure seen. */
static long settled_rss(dw_sim_proc *p, long bound)
{
    long rss = dw_sim_proc_rss_kib(p);
    for (int i = 0; i < 100 && rss > bound; i++) {
        sleep_ms(100);
        rss = dw_sim_proc_rss_kib(p);
    }
    return rss;
}

/* Near the start: within twice the baseline plus 8 MiB (thread stacks, the
 * per-thread allocator arenas of the connections' threads). The frames sent
 * below are several times that. */
static long near_baseline(long baseline_kib)
{
    return 2 * baseline_kib + 8 * 1024;
}

static const char memory_script[] =
    "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\", \"max_frame\": 16777216},\n"
    " \"rules\": [\n"
    "  {\"when\": \"*IDN?\", \"reply\": \"ACME,SIM,1,1.0\"},\n"
    "  {\"when\": {\"prefix\": \"BIG\"}, \"reply\": \"ok\"},\n"
    "  {\"when\": {\"prefix\": \"ECHO\"}, \"reply\": \"$0\"}\n"
    " ]}\n";

/* Serve memory_script (*pp gets the simulator), answer one request on `good`
 * and return the simulator's RSS then (KiB): the baseline. */
static long serve_warm(dw_sim_proc **pp, dw_sim_client *good)
{
    dw_sim_proc *p = *pp = serve(memory_script, NULL);
    open_client(good, p);
    dw_sim_ask_eq(good, "*IDN?", "ACME,SIM,1,1.0");
    long baseline = dw_sim_proc_rss_kib(p);
    cr_assert(baseline > 0, "RSS of pid %ld", (long)p->pid);
    return baseline;
}

Test(sim_memory, oversized_frames_leave_no_memory_behind, .disabled = !RSS_MEANINGFUL)
{
    dw_sim_proc *p;
    dw_sim_client good;
    long baseline = serve_warm(&p, &good);

    /* Rounds of 8 clients at once, each sending 20 MB with no terminator:
     * every one passes the 16 MiB frame limit and is closed. */
    const size_t n = 8, rounds = 3, len = 20 * 1000 * 1000;
    uint8_t *junk = make_bytes("", len, 0);
    for (size_t r = 0; r < rounds; r++) {
        sender s[8];
        memset(s, 0, sizeof s);
        for (size_t i = 0; i < n; i++) {
            s[i].data = junk;
            s[i].len = len;
        }
        send_all(p, s, n);
        for (size_t i = 0; i < n; i++) {
            cr_expect(s[i].end == DW_EOF || s[i].end == DW_ECONNRESET,
                      "round %zu, client %zu: dropped, not %s", r, i, dw_strerror(s[i].end));
            dw_sim_client_close(&s[i].c);
        }
    }
    free(junk);

    long bound = near_baseline(baseline);
    long after = settled_rss(p, bound);
    cr_expect(le(long, after, bound),
              "RSS %ld KiB after %zu x %zu oversized frames, baseline %ld KiB (bound %ld KiB)",
              after, rounds, n, baseline, bound);
    dw_sim_ask_eq(&good, "*IDN?", "ACME,SIM,1,1.0");
    dw_sim_client_close(&good);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "exit status; stderr:\n%s",
              dw_sim_err_of(p));
    cr_expect(eq(sz, dw_sim_count(dw_sim_err_of(p), "closing it"), rounds * n),
              "each logged once:\n%.2000s", dw_sim_err_of(p));
}

Test(sim_memory, large_frames_do_not_stay_with_open_connections, .disabled = !RSS_MEANINGFUL)
{
    dw_sim_proc *p;
    dw_sim_client good;
    long baseline = serve_warm(&p, &good);

    /* Valid 12 MB requests, answered, their connections left open: two
     * answered "ok" (the request buffer), two echoed back whole (request,
     * rendered reply and framed reply buffers). */
    const size_t len = 12 * 1000 * 1000;
    uint8_t *big = make_bytes("BIG", len, 1), *echo = make_bytes("ECHO", len, 1);
    sender s[4];
    memset(s, 0, sizeof s);
    for (size_t i = 0; i < 4; i++) {
        s[i].data = i < 2 ? big : echo;
        s[i].len = len;
    }
    send_all(p, s, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert(eq(int, s[i].end, DW_OK), "client %zu: %s", i, dw_error_message(&s[i].c.err));
        if (i < 2)
            cr_expect(eq(str, (char *)s[i].c.reply.data, "ok"));
        else
            cr_expect(s[i].c.reply.len == len - 1 && memcmp(s[i].c.reply.data, echo, len - 1) == 0,
                      "client %zu: the echo (%zu bytes)", i, s[i].c.reply.len);
        dw_buf_free(&s[i].c.reply);
    }
    free(big);
    free(echo);

    long bound = near_baseline(baseline);
    long after = settled_rss(p, bound);
    cr_expect(le(long, after, bound),
              "RSS %ld KiB with 4 open connections after 12 MB frames, baseline %ld KiB "
              "(bound %ld KiB)",
              after, baseline, bound);
    for (size_t i = 0; i < 4; i++) /* still served, at their small size */
        dw_sim_ask_eq(&s[i].c, "*IDN?", "ACME,SIM,1,1.0");
    for (size_t i = 0; i < 4; i++)
        dw_sim_client_close(&s[i].c);
    dw_sim_client_close(&good);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "exit status; stderr:\n%s",
              dw_sim_err_of(p));
}

/* ---- --max-frame ------------------------------------------------------------ */

static void rewrite(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Send one frame of exactly `len` bytes ("BIG", 'x's, "\n") on a new
 * connection: 1 if it was answered "ok", 0 if the connection was dropped. */
static int frame_answered(dw_sim_proc *p, size_t len)
{
    uint8_t *frame = make_bytes("BIG", len, 1);
    dw_sim_client c;
    open_client(&c, p);
    int sent = dw_session_send(c.session, frame, len, NULL);
    int rc = dw_sim_client_recv(&c);
    free(frame);
    cr_assert(rc == DW_OK || rc == DW_EOF || rc == DW_ECONNRESET,
              "%zu-byte frame (sent: %s): neither answered nor dropped: %s", len, dw_strerror(sent),
              dw_error_message(&c.err));
    int answered = rc == DW_OK;
    if (answered)
        cr_expect(eq(str, (char *)c.reply.data, "ok"), "%zu-byte frame: reply", len);
    dw_sim_client_close(&c);
    return answered;
}

static void expect_cap(dw_sim_proc *p, size_t cap, const char *when)
{
    cr_expect(frame_answered(p, cap), "%s: a frame of exactly %zu bytes is accepted", when, cap);
    cr_expect(frame_answered(p, cap + 1) == 0, "%s: a frame of %zu bytes is refused", when,
              cap + 1);
    cr_expect(frame_answered(p, cap - 1), "%s: and %zu bytes again", when, cap - 1);
}

Test(sim_memory, max_frame_caps_every_framing)
{
    static const char *const args[] = {"--max-frame", "1000", NULL};
    dw_sim_proc *p = dw_sim_serve("maxframe", memory_script, args);
    const char *path = dw_sim_fixture.script;
    expect_cap(p, 1000, "--max-frame 1000 over the script's 16 MiB");
    cr_expect(dw_sim_proc_wait_output(p, 1, "maximum frame of 1000 bytes; closing it", 10000),
              "the log:\n%s", dw_sim_err_of(p));

    /* A reloaded script is capped too; a script's smaller max_frame stays. */
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGHUP), DW_OK));
    cr_assert(dw_sim_proc_wait_output(p, 1, "reloaded", 10000), "stderr:\n%s", dw_sim_err_of(p));
    expect_cap(p, 1000, "after a reload");
    rewrite(path, "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\", "
                  "\"max_frame\": 500},\n"
                  " \"rules\": [{\"when\": {\"prefix\": \"BIG\"}, \"reply\": \"ok\"}]}\n");
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGHUP), DW_OK));
    /* The second "reloaded" line: wait_output pumps the output meanwhile. */
    for (int i = 0; i < 100 && dw_sim_count(dw_sim_err_of(p), "reloaded") < 2; i++)
        dw_sim_proc_wait_output(p, 1, "(not printed)", 100);
    cr_assert(eq(sz, dw_sim_count(dw_sim_err_of(p), "reloaded"), 2), "stderr:\n%s",
              dw_sim_err_of(p));
    expect_cap(p, 500, "the script's own 500 under --max-frame 1000");

    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "exit status; stderr:\n%s",
              dw_sim_err_of(p));
}

/* Each of `bad` given to `option` is a usage error (exit 2) whose message
 * names the option and says `expected`. */
static void refuses_values(const char *option, const char *const *bad, size_t n,
                           const char *expected)
{
    const char *path = dw_sim_fixture_file("values", memory_script);
    for (size_t i = 0; i < n; i++) {
        const char *const args[] = {"--script", path,   "--listen", "127.0.0.1:0",
                                    option,     bad[i], NULL};
        dw_sim_proc p;
        cr_expect(eq(int, dw_sim_proc_run(&p, args, 10000), 2), "%s '%s'", option, bad[i]);
        cr_expect(strstr(dw_sim_err_of(&p), option) != NULL &&
                      strstr(dw_sim_err_of(&p), expected) != NULL,
                  "%s '%s': the message:\n%s", option, bad[i], dw_sim_err_of(&p));
        dw_sim_proc_free(&p);
    }
}

Test(sim_memory, max_frame_refuses_bad_values_and_fixed_frames_above_it)
{
    static const char *const bad[] = {
        "0", "-5", "abc", "12x", "", "1073741825", "99999999999999999999999"};
    refuses_values("--max-frame", bad, sizeof bad / sizeof bad[0],
                   "expected bytes from 1 to 1073741824");

    /* A fixed framing longer than the cap could never pass: refused. */
    const char *path =
        dw_sim_fixture_file("maxframe", "{\"framing\": {\"type\": \"fixed\", \"length\": 64},\n"
                                        " \"rules\": []}\n");
    const char *const fixed[] = {"--script",    path, "--listen", "127.0.0.1:0",
                                 "--max-frame", "63", NULL};
    dw_sim_proc p;
    cr_expect(eq(int, dw_sim_proc_run(&p, fixed, 10000), 2));
    cr_expect(strstr(dw_sim_err_of(&p), "fixed length 64 is larger than --max-frame 63") != NULL,
              "%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}

/* ---- --max-buffered --------------------------------------------------------- */

/* Send `len` bytes of a frame ("prefix", 'x's, "\n" if `frame`) on `c`. */
static void send_bytes(dw_sim_client *c, const char *prefix, size_t len, int frame)
{
    uint8_t *b = make_bytes(prefix, len, frame);
    int rc = dw_session_send(c->session, b, len, &c->err);
    free(b);
    cr_assert(eq(int, rc, DW_OK), "send: %s", dw_error_message(&c->err));
}

static void expect_dropped(dw_sim_client *c, const char *who)
{
    int rc = dw_sim_client_recv(c);
    cr_expect(rc == DW_EOF || rc == DW_ECONNRESET, "%s: closed by the simulator, not %s", who,
              dw_strerror(rc));
}

Test(sim_memory, max_buffered_closes_the_connection_that_would_pass_it)
{
    const char *tpath = dw_sim_fixture_transcript();
    const char *const args[] = {"--max-buffered", "1048576", "--transcript", tpath, NULL};
    dw_sim_proc *p = serve(memory_script, args);
    dw_sim_client good, a, b, c, d;
    open_client(&good, p);
    dw_sim_ask_eq(&good, "*IDN?", "ACME,SIM,1,1.0");

    /* A sends 700 kB of a frame and stops there: it holds them. */
    open_client(&a, p);
    send_bytes(&a, "BIG", 700000, 0);
    sleep_ms(1000); /* the simulator reads them meanwhile */
    /* B's 700 kB would take the total past 1 MiB: B is closed, A is not. */
    open_client(&b, p);
    send_bytes(&b, "BIG", 700000, 0);
    expect_dropped(&b, "the client passing the bound");
    dw_sim_ask_eq(&good, "*IDN?", "ACME,SIM,1,1.0");
    send_bytes(&a, "", 1, 1); /* A ends its frame: "\n" */
    cr_assert(eq(int, dw_sim_client_recv(&a), DW_OK), "A: %s", dw_error_message(&a.err));
    cr_expect(eq(str, (char *)a.reply.data, "ok"), "A's 700001-byte frame is answered");
    /* A connection's bytes leave the bound once its request is handled: a
     * second request on it is read only after that. */
    dw_sim_ask_eq(&a, "*IDN?", "ACME,SIM,1,1.0");

    /* Handled or closed, their bytes came back: 900 kB fit again. */
    open_client(&c, p);
    send_bytes(&c, "BIG", 900000, 1);
    cr_assert(eq(int, dw_sim_client_recv(&c), DW_OK), "C: %s", dw_error_message(&c.err));
    cr_expect(eq(str, (char *)c.reply.data, "ok"));
    dw_sim_ask_eq(&c, "*IDN?", "ACME,SIM,1,1.0");

    /* The reply counts too: 600 kB in and the same echoed out pass 1 MiB. */
    open_client(&d, p);
    send_bytes(&d, "ECHO", 600000, 1);
    expect_dropped(&d, "the client whose reply passes the bound");
    dw_sim_ask_eq(&good, "*IDN?", "ACME,SIM,1,1.0");

    dw_sim_client_close(&a);
    dw_sim_client_close(&b);
    dw_sim_client_close(&c);
    dw_sim_client_close(&d);
    dw_sim_client_close(&good);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "exit status; stderr:\n%s",
              dw_sim_err_of(p));
    const char *log = dw_sim_err_of(p);
    cr_expect(eq(sz, dw_sim_count(log, "--max-buffered 1048576 reached"), 2),
              "B and D, each logged once:\n%s", log);
    cr_expect(strstr(log, "(reading a request: ") != NULL, "%s", log);
    cr_expect(strstr(log, "(its reply: ") != NULL, "%s", log);
    cr_expect(eq(sz, dw_sim_count(log, "closing it"), 2), "nothing else closed:\n%s", log);
    char *tr = dw_sim_read_file(tpath, NULL);
    cr_assert(tr != NULL, "%s", tpath);
    cr_expect(eq(sz, dw_sim_count(tr, "\"dir\":\"fault\",\"match\":\"max-buffered\""), 2),
              "transcript:\n%.3000s", tr);
    free(tr);
}

Test(sim_memory, max_buffered_refuses_bad_values)
{
    static const char *const bad[] = {
        "0", "-1", "many", "1k", "", "1099511627777", "99999999999999999999999"};
    refuses_values("--max-buffered", bad, sizeof bad / sizeof bad[0],
                   "expected bytes from 1 to 1099511627776");
}

/* An idle connection to a script with a regex rule costs about what one to
 * exact rules does: its session keeps no JIT stack of its own (a few KiB
 * resident each), the connections share their thread's. */
Test(sim_memory, idle_connections_to_a_regex_script_stay_small, .disabled = !RSS_MEANINGFUL)
{
    static const char script[] =
        "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
        " \"rules\": [{\"when\": {\"regex\": \"^MEAS:(.*)\\\\?$\"}, \"reply\": \"$1 1.234\"}]}\n";
    enum { N = 400 };
    const long max_kib_per_conn = 3;
    dw_sim_proc *p = serve(script, NULL);
    static dw_sim_client c[N];
    open_client(&c[0], p);
    dw_sim_ask_eq(&c[0], "MEAS:VOLT?", "VOLT 1.234"); /* the thread's JIT stack, made once */
    long before = dw_sim_proc_rss_kib(p);
    for (size_t i = 1; i < N; i++) {
        open_client(&c[i], p);
        dw_sim_ask_eq(&c[i], "MEAS:CURR?", "CURR 1.234");
    }
    long after = dw_sim_proc_rss_kib(p);
    cr_expect(le(long, after - before, max_kib_per_conn * (N - 1)),
              "RSS %ld -> %ld KiB for %d idle connections: %.1f KiB each (at most %ld)", before,
              after, N - 1, (double)(after - before) / (N - 1), max_kib_per_conn);
    for (size_t i = 0; i < N; i++)
        dw_sim_client_close(&c[i]);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "exit status; stderr:\n%s",
              dw_sim_err_of(p));
}
