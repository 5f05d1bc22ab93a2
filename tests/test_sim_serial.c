/* devwire-sim's serial transport: a driver opens the pseudo-terminal (or a
 * link to it) with open(2) and termios, as it would open /dev/ttyUSB0. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "sim_fixture.h"

/* Each test's simulator and files are dw_sim_fixture's: .fini stops and
 * removes them whatever happened. */
TestSuite(sim_serial, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 60);

static const char *PSU = "{\"transport\": \"serial\", \"state\": {\"v\": \"0\"},\n"
                         " \"rules\": [\n"
                         "  {\"when\": \"*IDN?\", \"reply\": \"ACME,PS-30,0042,2.1\"},\n"
                         "  {\"when\": {\"regex\": \"^VOLT (.+)$\"}, \"set\": {\"v\": \"$1\"}},\n"
                         "  {\"when\": \"VOLT?\", \"reply\": \"${v}\"},\n"
                         "  {\"when\": \"SHUTDOWN\", \"fault\": \"close\"},\n"
                         "  {\"when\": \"WAVE?\", \"reply\": \"0123456789\", \"split\": [3],"
                         " \"split_delay_ms\": 20}\n"
                         " ]}\n";

/* Serve `script` (the fixture's script file) on a serial line in the
 * fixture (extra args may be NULL): the simulator. */
static dw_sim_proc *serve(const char *script, const char *const *extra)
{
    dw_sim_fixture.script = dw_sim_temp_file("serial", script);
    cr_assert(dw_sim_fixture.script != NULL);
    const char *args[16] = {"--script", dw_sim_fixture.script};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "the serial device");
    cr_assert(strncmp(p->tty, "/dev/pts/", 9) == 0, "readiness line: %s", dw_sim_out_of(p));
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
    cfsetspeed(&t, B9600);
    cr_assert(eq(int, tcsetattr(fd, TCSANOW, &t), 0), "tcsetattr: %s", strerror(errno));
    return fd;
}

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    cr_assert(eq(sz, (size_t)write(fd, s, n), n), "write: %s", strerror(errno));
}

/* Read up to and including the next '\n' (at most cap - 1 bytes), waiting
 * at most timeout_ms in all; the line without its '\n', or what came
 * before the timeout. */
static char *get_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    buf[0] = 0;
    while (n + 1 < cap) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) <= 0)
            break;
        char ch;
        if (read(fd, &ch, 1) != 1)
            break;
        if (ch == '\n')
            break;
        buf[n++] = ch;
        buf[n] = 0;
    }
    return buf;
}

Test(sim_serial, identifies_itself_over_the_port)
{
    char line[256];
    dw_sim_proc *p = serve(PSU, NULL);
    int fd = open_port(p->tty);
    put(fd, "*IDN?\n");
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "ACME,PS-30,0042,2.1"));
    close(fd);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
    cr_expect(strstr(dw_sim_out_of(p), "connections: 1\n") != NULL, "%s", dw_sim_out_of(p));
    cr_expect(strstr(dw_sim_out_of(p), "requests: 1\n") != NULL, "%s", dw_sim_out_of(p));
}

Test(sim_serial, pipelined_and_byte_by_byte_requests)
{
    char line[256];
    dw_sim_proc *p = serve(PSU, NULL);
    int fd = open_port(p->tty);
    put(fd, "VOLT 7.5\nVOLT?\n*IDN?\nVOLT?\n");
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "7.5"));
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "ACME,PS-30,0042,2.1"));
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "7.5"));
    const char *req = "*IDN?\n";
    for (const char *c = req; *c; c++) {
        cr_assert(eq(int, (int)write(fd, c, 1), 1));
        usleep(5000);
    }
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "ACME,PS-30,0042,2.1"));
    close(fd);
}

/* The port closed and opened again is the same line: the device kept its
 * state, as an instrument does across a driver's reconnect. */
Test(sim_serial, reopened_port_finds_the_same_device)
{
    char line[256];
    dw_sim_proc *p = serve(PSU, NULL);
    int fd = open_port(p->tty);
    put(fd, "VOLT 12.5\n*IDN?\n");
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "ACME,PS-30,0042,2.1"));
    close(fd);
    for (int i = 0; i < 3; i++) {
        fd = open_port(p->tty);
        put(fd, "VOLT?\n");
        cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "12.5"), "reopen %d", i);
        close(fd);
    }
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "%s", dw_sim_err_of(p));
    cr_expect(strstr(dw_sim_out_of(p), "requests: 5\n") != NULL, "%s", dw_sim_out_of(p));
}

/* "close" has no connection to end on a line: nothing is written and the
 * device answers the next request; a split reply arrives whole. */
Test(sim_serial, close_fault_answers_nothing_and_the_line_goes_on)
{
    char line[256];
    const char *tr = dw_sim_fixture_transcript();
    const char *const extra[] = {"--transcript", tr, NULL};
    dw_sim_proc *p = serve(PSU, extra);
    int fd = open_port(p->tty);
    put(fd, "SHUTDOWN\n*IDN?\nWAVE?\n");
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "ACME,PS-30,0042,2.1"));
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "0123456789"));
    close(fd);
    dw_sim_stop(p, 10000, NULL);
    char *t = dw_sim_read_file(tr, NULL);
    cr_assert(t != NULL);
    cr_expect(strstr(t, "\"dir\":\"fault\",\"match\":\"close\"") != NULL, "%s", t);
    cr_expect(strstr(t, "\"dir\":\"open\",\"peer\":\"/dev/") != NULL, "%s", t);
    cr_expect(strstr(t, "\"dir\":\"close\",\"peer\":\"/dev/") != NULL, "%s", t);
    free(t);
}

static void link_name(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/dw-serial-%ld-%s", (long)getpid(), tag);
    unlink(buf);
}

Test(sim_serial, link_names_the_port_and_goes_at_exit)
{
    char link[PATH_MAX], line[256];
    link_name(link, sizeof link, "link");
    cr_assert(eq(int, symlink("/nonexistent", link), 0)); /* a stale link: replaced */
    const char *const extra[] = {"--link", link, NULL};
    dw_sim_proc *p = serve(PSU, extra);
    char target[PATH_MAX];
    ssize_t n = readlink(link, target, sizeof target - 1);
    cr_assert(n > 0, "readlink %s: %s", link, strerror(errno));
    target[n] = 0;
    cr_expect(eq(str, target, p->tty));
    int fd = open_port(link);
    put(fd, "*IDN?\n");
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "ACME,PS-30,0042,2.1"));
    close(fd);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
    struct stat st;
    cr_expect(lstat(link, &st) != 0 && errno == ENOENT, "%s is still there", link);
}

Test(sim_serial, link_over_a_file_is_refused)
{
    char link[PATH_MAX];
    link_name(link, sizeof link, "file");
    FILE *f = fopen(link, "w");
    cr_assert(f != NULL);
    fputs("keep me\n", f);
    fclose(f);
    const char *path = dw_sim_fixture_file("serial", PSU);
    const char *const args[] = {"--script", path, "--link", link, NULL};
    dw_sim_proc p;
    cr_expect(eq(int, dw_sim_proc_run(&p, args, 10000), 3));
    cr_expect(strstr(dw_sim_err_of(&p), "exists and is not a symbolic link") != NULL, "%s",
              dw_sim_err_of(&p));
    cr_expect(strstr(dw_sim_err_of(&p), link) != NULL, "%s", dw_sim_err_of(&p));
    char *kept = dw_sim_read_file(link, NULL);
    cr_expect(kept && strcmp(kept, "keep me\n") == 0, "the file was touched");
    free(kept);
    dw_sim_proc_free(&p);
    unlink(link);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 960 bytes at 9600 baud (10 bits a byte) take one second on the line;
 * the bound leaves a wide margin. */
Test(sim_serial, baud_paces_a_long_reply)
{
    char script[2048];
    char reply[960];
    memset(reply, 'x', sizeof reply - 1);
    reply[sizeof reply - 1] = 0; /* 959 bytes and the '\n' */
    snprintf(script, sizeof script,
             "{\"transport\": \"serial\", \"baud\": 9600, "
             "\"rules\": [{\"when\": \"DATA?\", \"reply\": \"%s\"}]}",
             reply);
    dw_sim_proc *p = serve(script, NULL);
    int fd = open_port(p->tty);
    static char line[2048];
    double t0 = now_s();
    put(fd, "DATA?\n");
    get_line(fd, line, sizeof line, 10000);
    double took = now_s() - t0;
    cr_expect(eq(sz, strlen(line), sizeof reply - 1));
    cr_expect(took >= 0.5, "960 bytes at 9600 baud took %.3f s", took);
    close(fd);
}

/* Run --validate (or a bench) on `text`: the message must hold `want`
 * after the file name. */
static void expect_refused(const char *text, const char *const *args_after, const char *want)
{
    const char *path = dw_sim_fixture_file("serial-bad", text);
    const char *args[8] = {args_after[0], path, args_after[1], NULL};
    dw_sim_proc p;
    cr_expect(eq(int, dw_sim_proc_run(&p, args, 10000), 2), "%s: %s", text, dw_sim_err_of(&p));
    char expected[1024];
    snprintf(expected, sizeof expected, "%s:%s", path, want);
    cr_expect(strstr(dw_sim_err_of(&p), expected) != NULL, "expected \"%s\" in:\n%s", expected,
              dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}

Test(sim_serial, bad_baud_and_link_are_located)
{
    const char *const validate[] = {"--validate", NULL};
    expect_refused("{\"transport\": \"serial\", \"baud\": 0}", validate,
                   "1:33: baud: must be at least 50 (got 0)");
    expect_refused("{\"transport\": \"serial\",\n \"baud\": \"9600\"}", validate,
                   "2:10: baud: expected positive integer");
    expect_refused("{\"baud\": 9600}", validate, "1:10: baud: only for \"transport\": \"serial\"");
    expect_refused("[{\"name\": \"psu\", \"script\": \"psu.json\", \"link\": \"\"}]", validate,
                   "1:48: [0].link: expected a path for the link");
    expect_refused("[{\"name\": \"psu\", \"script\": \"psu.json\", \"transport\": \"tcp\",\n"
                   "  \"link\": \"/tmp/x\"}]",
                   validate, "2:11: [0].link: only for a serial device");
    expect_refused("[{\"name\": \"psu\", \"script\": \"psu.json\", \"baud\": 12}]", validate,
                   "1:48: [0].baud: must be at least 50 (got 12)");
}

Test(sim_serial, bench_device_on_a_serial_line)
{
    char link[PATH_MAX], line[256], bench[PATH_MAX + 512];
    link_name(link, sizeof link, "bench");
    const char *script = dw_sim_fixture_file("serial", PSU);
    snprintf(bench, sizeof bench,
             "[{\"name\": \"psu\", \"script\": \"%s\", \"link\": \"%s\", \"baud\": 115200}]",
             script, link);
    const char *bench_path = dw_sim_fixture_file("serial-bench", bench);
    const char *const args[] = {"--bench", bench_path, NULL};
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "the bench");
    cr_expect(strstr(dw_sim_out_of(p), " (psu)\n") != NULL, "%s", dw_sim_out_of(p));
    int fd = open_port(link);
    put(fd, "*IDN?\n");
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "ACME,PS-30,0042,2.1"));
    close(fd);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
    cr_expect(strstr(dw_sim_out_of(p), "summary: psu: ") != NULL, "%s", dw_sim_out_of(p));
    struct stat st;
    cr_expect(lstat(link, &st) != 0, "%s is still there", link);
}

Test(sim_serial, the_example_serves)
{
    const char *const args[] = {"--script", DW_SOURCE_DIR "/sim/examples/serial-psu.json", NULL};
    char line[256];
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "the example");
    int fd = open_port(p->tty);
    put(fd, "VOLT 3.3\nMEAS:VOLT?\nFOO\n");
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "3.3"));
    cr_expect(eq(str, get_line(fd, line, sizeof line, 5000), "-113,\"Undefined header\""));
    close(fd);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}
