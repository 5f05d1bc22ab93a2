/* A fleet of devices in one devwire-sim process: bench files of 100, 1,000
 * and 10,000 devices, each on its own port (127.0.0.1:0), all serving the
 * same one-rule script. For each: the time from starting the process to its
 * last readiness line, the process's VmRSS once every device listens, and
 * the time SIGTERM takes to stop it; the same with the control API on
 * (--control, a journal per device).
 *
 * Baselines, measured in the same run: one device alone in its process.
 * The start of N devices is set against N such starts (a process per
 * device, as a container per device would be), their memory per device
 * ((RSS of N - RSS of 1) / (N - 1)) against the RSS of that one-device
 * process.
 *
 * DW_BENCH_QUICK=1 runs each case once; otherwise the median of 3. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app_echo.h"
#include "child.h"
#include "loadgen.h"

#define NSIZES 3
static const int sizes[NSIZES] = {100, 1000, 10000};

static char dir[64], script_path[96];

typedef struct run {
    double start_ms, stop_ms;
    long rss_kib;
} run;

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "bench_sim_fleet: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    return 0;
}

/* dir/bench-N.json: N devices "devK" serving volt.json on ports the
 * system leaves free. */
static int write_bench(int n, char *path, size_t cap)
{
    snprintf(path, cap, "%s/bench-%d.json", dir, n);
    size_t size = (size_t)n * 64 + 8, len = 0;
    char *text = malloc(size);
    if (!text)
        return -1;
    len += (size_t)snprintf(text + len, size - len, "[\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, size - len,
                                " {\"name\": \"dev%d\", \"script\": \"volt.json\"}%s\n", i + 1,
                                i + 1 < n ? "," : "");
    snprintf(text + len, size - len, "]\n");
    int rc = write_file(path, text);
    free(text);
    return rc;
}

static int write_files(void)
{
    snprintf(dir, sizeof dir, "/tmp/dwsim-fleet-%ld", (long)getpid());
    snprintf(script_path, sizeof script_path, "%s/volt.json", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_sim_fleet: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return write_file(
        script_path,
        "{\"name\": \"volt\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": "
        "\"\\n\"},\n \"rules\": [{\"when\": \"MEAS:VOLT?\", \"reply\": \"1.234\"}]}\n");
}

/* Count "listening on" lines from fd until `want` of them came: 0, or -1
 * at the end of the output first. */
static int read_ready(int fd, int want)
{
    char buf[65536];
    int got = 0;
    size_t keep = 0; /* the start of a line cut by the read */
    while (got < want) {
        ssize_t r = read(fd, buf + keep, sizeof buf - keep);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        size_t len = keep + (size_t)r, at = 0;
        for (char *nl; (nl = memchr(buf + at, '\n', len - at)) != NULL; at = (size_t)(nl - buf) + 1)
            got += strncmp(buf + at, "listening on ", 13) == 0;
        keep = len - at;
        memmove(buf, buf + at, keep);
        if (keep == sizeof buf)
            keep = 0;
    }
    return 0;
}

/* Start devwire-sim on argv, wait for `want` readiness lines, read its RSS,
 * stop it. 0, or -1 after saying what failed. */
static int measure(char *const argv[], int want, run *out)
{
    memset(out, 0, sizeof *out);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    double t0 = bench_now();
    pid_t pid = dw_test_child_fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    int rc = pid > 0 ? read_ready(fds[0], want) : -1;
    out->start_ms = (bench_now() - t0) * 1e3;
    close(fds[0]); /* the summaries at exit go nowhere */
    if (rc != 0) {
        fprintf(stderr, "bench_sim_fleet: %s %s did not start %d devices\n", argv[1], argv[2],
                want);
        if (pid > 0) {
            dw_test_child_kill(pid, SIGKILL);
            dw_test_child_reap(pid, 1, NULL);
        }
        return -1;
    }
    usleep(100000); /* let the process settle before its RSS is read */
    out->rss_kib = bench_proc_status(pid, "VmRSS");
    double t1 = bench_now();
    kill(pid, SIGTERM);
    int status = 0;
    dw_test_child_reap(pid, 1, &status);
    out->stop_ms = (bench_now() - t1) * 1e3;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_sim_fleet: %d devices: the stop ended with status %d\n", want,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return 0;
}

static void bench_line(const char *name, double v, const char *unit, double base)
{
    printf("BENCH %s %.1f %s %.1f %.4f\n", name, v, unit, base, base > 0 ? v / base : 0);
}

/* The median of `rounds` runs of one case. */
static int median_run(char *const argv[], int want, int rounds, run *m)
{
    double start[8], stop[8], rss[8];
    int status = 0;
    for (int k = 0; k < rounds; k++) {
        run r;
        status |= measure(argv, want, &r);
        start[k] = r.start_ms, stop[k] = r.stop_ms, rss[k] = (double)r.rss_kib;
    }
    m->start_ms = bench_median(start, rounds);
    m->stop_ms = bench_median(stop, rounds);
    m->rss_kib = (long)bench_median(rss, rounds);
    return status;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int rounds = q && strcmp(q, "1") == 0 ? 1 : 3;
#ifndef DW_SIM_PATH
    fprintf(stderr, "bench_sim_fleet: built without devwire-sim\n");
    return 1;
#else
    if (write_files() != 0)
        return 1;
    printf("bench_sim_fleet: %s; bench files of 100 to 10,000 devices (each on 127.0.0.1:0,\n"
           "one exact rule), started, measured once every device listens, stopped with\n"
           "SIGTERM; without and with --control; medians of %d\n",
           rounds == 1 ? "quick run" : "full run", rounds);
    int status = 0;
    char *one[] = {DW_SIM_PATH,   "--script",    script_path, "--listen",
                   "127.0.0.1:0", "--log-level", "error",     NULL};
    run base;
    status |= median_run(one, 1, rounds, &base);
    printf("%-26s | %10s %10s | %10s %12s\n", "devices", "start ms", "stop ms", "RSS KiB",
           "KiB/device");
    printf("%-26s | %10.1f %10.1f | %10ld %12s\n", "1 (--script)", base.start_ms, base.stop_ms,
           base.rss_kib, "-");
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < NSIZES; s++) {
            int n = sizes[s];
            char bench[128];
            if (write_bench(n, bench, sizeof bench) != 0)
                return 1;
            char *many[] = {DW_SIM_PATH,   "--bench", bench,
                            "--log-level", "error",   c ? "--control" : NULL,
                            "127.0.0.1:0", NULL};
            run r;
            status |= median_run(many, n, rounds, &r);
            unlink(bench);
            double per = (double)(r.rss_kib - base.rss_kib) / (n - 1);
            char label[40], name[64];
            snprintf(label, sizeof label, "%d%s", n, c ? " --control" : "");
            printf("%-26s | %10.1f %10.1f | %10ld %12.2f\n", label, r.start_ms, r.stop_ms,
                   r.rss_kib, per);
            snprintf(name, sizeof name, "fleet%s_start_%ddev", c ? "_control" : "", n);
            bench_line(name, r.start_ms, "ms", base.start_ms * n);
            snprintf(name, sizeof name, "fleet%s_%ddev_kib_per_device", c ? "_control" : "", n);
            bench_line(name, per, "KiB", (double)base.rss_kib);
        }
    printf("start: the process's start to its last readiness line; baseline: one device's\n"
           "start times N (a process per device). KiB/device: (RSS of N - RSS of 1) / (N - 1);\n"
           "baseline: the RSS of the one-device process.\n");
    unlink(script_path);
    rmdir(dir);
    return status;
#endif
}
