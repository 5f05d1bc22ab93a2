/* devwire-sim --proxy in front of a serial device: the device served by
 * devwire-sim on a pseudo-terminal (named by its --link), the proxy on a
 * terminal of its own, a client on the proxy's terminal as a driver opens
 * a port. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "sim_fixture.h"

/* The proxy in dw_sim_fixture.proc, the device in .peer: .fini stops both. */
TestSuite(sim_proxy_serial, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini,
          .timeout = 60);

static const char *PSU = "{\"transport\": \"serial\", \"state\": {\"v\": \"0\"},\n"
                         " \"rules\": [\n"
                         "  {\"when\": \"*IDN?\", \"reply\": \"ACME,PS-30,0042,2.1\"},\n"
                         "  {\"when\": {\"regex\": \"^VOLT (.+)$\"}, \"set\": {\"v\": \"$1\"}},\n"
                         "  {\"when\": \"VOLT?\", \"reply\": \"${v}\"},\n"
                         "  {\"when\": \"RAW?\", \"reply\": {\"hex\": \"00ff1b7f80030d\"}}\n"
                         " ]}\n";

static char device_link[PATH_MAX];

/* The device on a serial line, reachable through a link (as --upstream
 * names it). */
static void serve_device(void)
{
    snprintf(device_link, sizeof device_link, "/tmp/dw-pxserial-%ld-dev", (long)getpid());
    unlink(device_link);
    const char *script = dw_sim_fixture_file("pxserial-dev", PSU);
    const char *args[] = {"--script", script, "--link", device_link, NULL};
    dw_sim_proc *d = dw_sim_start(&dw_sim_fixture.peer, args, "the serial device");
    cr_assert(strncmp(d->tty, "/dev/pts/", 9) == 0, "readiness line: %s", dw_sim_out_of(d));
}

/* The proxy in front of it with faults script `faults` and `extra` args
 * (NULL-terminated, may be NULL). */
static dw_sim_proc *serve_proxy(const char *faults, const char *const *extra)
{
    const char *script = dw_sim_fixture_file("pxserial-faults", faults);
    const char *args[16] = {"--proxy", "--upstream", device_link, "--script",
                            script,    "--seed",     "1"};
    size_t n = 7;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "the serial proxy");
    cr_assert(strncmp(p->tty, "/dev/pts/", 9) == 0, "readiness line: %s", dw_sim_out_of(p));
    cr_assert(strcmp(p->tty, dw_sim_fixture.peer.tty) != 0, "the proxy has a terminal of its own");
    return p;
}

/* Open the port as a driver does: raw, no controlling terminal. */
static int open_port(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    struct termios t;
    cr_assert(eq(int, tcgetattr(fd, &t), 0), "tcgetattr %s: %s", path, strerror(errno));
    cfmakeraw(&t);
    cr_assert(eq(int, tcsetattr(fd, TCSANOW, &t), 0), "tcsetattr: %s", strerror(errno));
    return fd;
}

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    cr_assert(eq(sz, (size_t)write(fd, s, n), n), "write: %s", strerror(errno));
}

/* Read exactly n bytes (or what came within timeout_ms in all): the count. */
static size_t get(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) <= 0)
            break;
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Expect exactly `want` next on fd. */
static void expect_bytes(int fd, const char *want, size_t n)
{
    uint8_t buf[256];
    cr_assert(n <= sizeof buf);
    size_t got = get(fd, buf, n, 5000);
    cr_expect(eq(sz, got, n), "%zu of %zu bytes came", got, n);
    cr_expect(memcmp(buf, want, got) == 0, "other bytes than the device's came");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A question on the proxy's terminal, the device's answer back, byte for
 * byte, however the question is cut; the transcript holds both frames. */
Test(sim_proxy_serial, answers_pass_unchanged)
{
    char link[PATH_MAX];
    snprintf(link, sizeof link, "/tmp/dw-pxserial-%ld-px", (long)getpid());
    unlink(link);
    serve_device();
    const char *tr = dw_sim_fixture_transcript();
    const char *const extra[] = {"--link", link, "--transcript", tr, NULL};
    dw_sim_proc *p = serve_proxy("{\"transport\": \"serial\"}", extra);
    int fd = open_port(link);
    double t0 = now_ms();
    put(fd, "*IDN?\n");
    expect_bytes(fd, "ACME,PS-30,0042,2.1\n", 20);
    double took = now_ms() - t0;
    put(fd, "VOLT 7.5\nVOLT?\nRAW?\n");
    expect_bytes(fd, "7.5\n", 4);
    expect_bytes(fd, "\x00\xff\x1b\x7f\x80\x03\x0d\n", 8);
    for (const char *c = "VOLT?\n"; *c; c++) {
        cr_assert(eq(int, (int)write(fd, c, 1), 1));
        usleep(5000);
    }
    expect_bytes(fd, "7.5\n", 4);
    close(fd);
    fd = open_port(p->tty); /* the port opened again: the same line */
    put(fd, "VOLT?\n");
    expect_bytes(fd, "7.5\n", 4);
    close(fd);
    cr_expect(took < 250, "an answer with no fault took %.0f ms", took);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "%s", dw_sim_err_of(p));
    cr_expect(strstr(dw_sim_out_of(p), "summary: proxy to ") != NULL, "%s", dw_sim_out_of(p));
    struct stat st;
    cr_expect(lstat(link, &st) != 0 && errno == ENOENT, "%s is still there", link);
    char *t = dw_sim_read_file(tr, NULL);
    cr_assert(t != NULL);
    cr_expect(strstr(t, "\"conn\":1,\"dir\":\"open\",\"peer\":\"/dev/pts/") != NULL, "%s", t);
    cr_expect(strstr(t, "\"dir\":\"in\",\"text\":\"*IDN?\"") != NULL, "%s", t);
    cr_expect(strstr(t, "\"dir\":\"out\",\"text\":\"ACME,PS-30,0042,2.1\"") != NULL, "%s", t);
    cr_expect(strstr(t, "\"dir\":\"in\",\"text\":\"VOLT 7.5\"") != NULL, "%s", t);
    cr_expect(strstr(t, "\"dir\":\"close\"") != NULL, "%s", t);
    free(t);
}

/* A reply latency of 300 ms: the answer comes that much later, intact. */
Test(sim_proxy_serial, latency_makes_the_answer_late)
{
    serve_device();
    dw_sim_proc *p = serve_proxy(
        "{\"transport\": \"serial\", \"network\": {\"reply\": {\"latency\": {\"ms\": 300}}}}",
        NULL);
    int fd = open_port(p->tty);
    for (int i = 0; i < 2; i++) {
        double t0 = now_ms();
        put(fd, "*IDN?\n");
        expect_bytes(fd, "ACME,PS-30,0042,2.1\n", 20);
        double took = now_ms() - t0;
        cr_expect(took >= 295 && took < 3000, "answer %d took %.0f ms", i + 1, took);
    }
    close(fd);
}

/* limit_data: the bytes up to the limit pass, then the line is cut both
 * ways. */
Test(sim_proxy_serial, limit_data_cuts_the_line)
{
    serve_device();
    const char *tr = dw_sim_fixture_transcript();
    const char *const extra[] = {"--transcript", tr, NULL};
    dw_sim_proc *p = serve_proxy("{\"transport\": \"serial\", \"network\": "
                                 "{\"request\": {\"limit_data\": {\"bytes\": 9}}}}",
                                 extra);
    int fd = open_port(p->tty);
    put(fd, "*IDN?\n");
    expect_bytes(fd, "ACME,PS-30,0042,2.1\n", 20);
    put(fd, "VOLT?\n"); /* "VOL" reaches the limit: the rest is lost */
    put(fd, "*IDN?\n");
    uint8_t buf[32];
    cr_expect(eq(sz, get(fd, buf, sizeof buf, 400), 0), "an answer came on a cut line");
    close(fd);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "%s", dw_sim_err_of(p));
    char *t = dw_sim_read_file(tr, NULL);
    cr_assert(t != NULL);
    cr_expect(strstr(t, "\"dir\":\"fault\",\"match\":\"request.limit_data\"") != NULL, "%s", t);
    free(t);
}

/* The fuzz reads the device's replies as frames and mutates every second
 * one: the first comes as sent, the second does not, and the transcript
 * notes the mutation. */
Test(sim_proxy_serial, fuzz_mutates_reply_frames)
{
    serve_device();
    const char *tr = dw_sim_fixture_transcript();
    const char *const extra[] = {"--transcript", tr, NULL};
    dw_sim_proc *p = serve_proxy("{\"transport\": \"serial\", \"network\": {\"reply\": "
                                 "{\"fuzz\": {\"mutations\": [\"flip\"], \"every\": 2}}}}",
                                 extra);
    int fd = open_port(p->tty);
    put(fd, "*IDN?\n");
    expect_bytes(fd, "ACME,PS-30,0042,2.1\n", 20);
    put(fd, "*IDN?\n");
    uint8_t buf[20];
    cr_expect(eq(sz, get(fd, buf, sizeof buf, 5000), 20));
    cr_expect(memcmp(buf, "ACME,PS-30,0042,2.1\n", 20) != 0, "the second answer came as sent");
    close(fd);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "%s", dw_sim_err_of(p));
    char *t = dw_sim_read_file(tr, NULL);
    cr_assert(t != NULL);
    cr_expect(strstr(t, "\"match\":\"reply.fuzz frame 2: flip") != NULL, "%s", t);
    free(t);
}

/* What a line cannot carry is refused at load, naming it. */
Test(sim_proxy_serial, refuses_what_a_line_cannot_do)
{
    static const struct {
        const char *script, *says;
    } cases[] = {
        {"{\"transport\": \"serial\", \"network\": {\"reply\": {\"timeout\": {\"ms\": 100}}}}",
         "network fault \"reply.timeout\": a serial line takes latency, bandwidth, slicer, "
         "limit_data and fuzz"},
        {"{\"transport\": \"serial\", \"network\": {\"request\": {\"slow_close\": {\"delay_ms\": "
         "100}}}}",
         "network fault \"request.slow_close\""},
        {"{\"transport\": \"serial\", \"rules\": [{\"when\": \"A\", \"fault\": \"drop\"}]}",
         "a serial faults script takes network faults, not rules"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *script = dw_sim_fixture_file("pxserial-bad", cases[i].script);
        const char *args[] = {"--proxy", "--upstream", "/dev/null", "--script",
                              script,    "--seed",     "1",         NULL};
        dw_sim_proc *p = &dw_sim_fixture.proc;
        dw_sim_proc_free(p);
        cr_expect(eq(int, dw_sim_proc_run(p, args, 10000), 2), "case %zu: %s", i, dw_sim_err_of(p));
        cr_expect(strstr(dw_sim_err_of(p), cases[i].says) != NULL, "case %zu: %s", i,
                  dw_sim_err_of(p));
    }
}
