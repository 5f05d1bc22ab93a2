/* dw-flood: does a server give back the memory of oversized frames?
 *
 * Waves of senders at once, each sending --bytes bytes with no terminator
 * (more than the server's maximum frame, so the server refuses each and
 * closes it). The server's RSS is read before (after one round trip), at its
 * peak during the waves, and --settle seconds after the last sender is gone;
 * the server must still answer a round trip then. Exit 1 when the figure
 * after is above --ratio-limit times the one before, or on a wrong answer.
 *
 * Two waves by default: glibc's malloc raises its mmap threshold when the
 * first large buffers are freed, so memory kept by a server that does not
 * control its allocator shows from the second wave on. */
#include "soak_common.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *prog = "dw-flood";

typedef struct flood_cfg {
    char host[256];
    uint16_t port;
    size_t bytes;
} flood_cfg;

static flood_cfg cfg;
static unsigned running;  /* atomic: senders not finished */
static unsigned refused;  /* atomic: senders the server closed */
static unsigned failures; /* atomic: senders that could not connect */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: %s --connect HOST:PORT --pid PID [--senders N] [--bytes B] [--rounds R]\n"
            "                [--settle S] [--ratio-limit X] [--label NAME]\n"
            "\n"
            "R waves (2) of N senders (8) at once, each sending B bytes (20000000) with no\n"
            "terminator to a server speaking the protocol in soak_common.h; the server's RSS\n"
            "before, at its peak during the waves, and S seconds (5) after they are gone.\n"
            "Exit 1 if after > X (2; 0 = report only) times before, or if the server does not\n"
            "answer a round trip before and after.\n",
            prog);
}

/* Send cfg.bytes with no terminator, then wait for the server to close. */
static void *sender(void *arg)
{
    (void)arg;
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    int fd = soak_connect_raw(cfg.host, cfg.port, 30000);
    if (fd < 0) {
        fprintf(stderr, "%s: connect %s:%u: %s\n", prog, cfg.host, cfg.port, strerror(-fd));
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&running, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    size_t sent = 0;
    while (sent < cfg.bytes) {
        size_t n = cfg.bytes - sent < sizeof chunk ? cfg.bytes - sent : sizeof chunk;
        ssize_t w = send(fd, chunk, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* the server closed it: the frame was refused */
        sent += (size_t)w;
    }
    char buf[256];
    ssize_t r;
    while ((r = recv(fd, buf, sizeof buf, 0)) > 0 || (r < 0 && errno == EINTR)) {
    }
    if (sent < cfg.bytes || r == 0 || errno == ECONNRESET)
        __atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
    close(fd);
    __atomic_sub_fetch(&running, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* One request of the soak protocol, its reply checked. 0 or -1. */
static int round_trip(uint64_t seq)
{
    int fd = soak_connect_raw(cfg.host, cfg.port, 10000);
    if (fd < 0)
        return -1;
    dw_buf req = DW_BUF_INIT, want = DW_BUF_INIT;
    soak_request(&req, &want, 0, seq, 16);
    dw_buf_append_byte(&req, '\n');
    dw_buf_append_byte(&want, '\n');
    char buf[256];
    size_t got = 0;
    int ok = send(fd, req.data, req.len, MSG_NOSIGNAL) == (ssize_t)req.len;
    while (ok && got < want.len && got < sizeof buf) {
        ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
        if (r <= 0)
            ok = 0;
        else
            got += (size_t)r;
    }
    ok = ok && got == want.len && memcmp(buf, want.data, want.len) == 0;
    dw_buf_free(&req);
    dw_buf_free(&want);
    close(fd);
    return ok ? 0 : -1;
}

/* Run one wave; the peak RSS seen while it ran. */
static long wave(pid_t pid, unsigned senders)
{
    pthread_t *th = calloc(senders, sizeof *th);
    if (!th)
        return -1;
    __atomic_store_n(&running, senders, __ATOMIC_RELAXED);
    unsigned started = 0;
    for (; started < senders; started++)
        if (pthread_create(&th[started], NULL, sender, NULL) != 0)
            break;
    __atomic_sub_fetch(&running, senders - started, __ATOMIC_RELAXED);
    long peak = soak_rss_kib(pid);
    while (__atomic_load_n(&running, __ATOMIC_RELAXED) > 0) {
        soak_sleep_ms(20);
        long rss = soak_rss_kib(pid);
        if (rss > peak)
            peak = rss;
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    if (started < senders)
        __atomic_add_fetch(&failures, senders - started, __ATOMIC_RELAXED);
    return peak;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"pid", required_argument, NULL, 'P'},
        {"senders", required_argument, NULL, 'n'},
        {"bytes", required_argument, NULL, 'b'},
        {"rounds", required_argument, NULL, 'r'},
        {"settle", required_argument, NULL, 's'},
        {"ratio-limit", required_argument, NULL, 'x'},
        {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *addr = NULL, *label = "server";
    pid_t pid = 0;
    unsigned senders = 8, rounds = 2, settle = 5;
    double limit = 2.0;
    cfg.bytes = 20000000;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            addr = optarg;
            break;
        case 'P':
            pid = (pid_t)atol(optarg);
            break;
        case 'n':
            senders = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'b':
            cfg.bytes = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rounds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 's':
            settle = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'x':
            limit = strtod(optarg, NULL);
            break;
        case 'l':
            label = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!addr || !pid || !senders || !rounds || !cfg.bytes ||
        soak_parse_addr(addr, cfg.host, sizeof cfg.host, &cfg.port) != 0) {
        fprintf(stderr, "%s: need --connect HOST:PORT, --pid PID, and counts above 0\n", prog);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    if (round_trip(0) != 0) {
        fprintf(stderr, "%s: %s: no answer to a round trip before the senders\n", prog, addr);
        return 1;
    }
    soak_sleep_ms(300);
    long before = soak_rss_kib(pid), during = before;
    for (unsigned r = 0; r < rounds; r++) {
        long peak = wave(pid, senders);
        if (peak > during)
            during = peak;
    }
    soak_sleep_ms((int)settle * 1000);
    long after = soak_rss_kib(pid);
    int status = 0;
    if (round_trip(1) != 0) {
        printf("%s: FAIL: no answer to a round trip after the senders\n", label);
        status = 1;
    }
    unsigned total = senders * rounds, nrefused = __atomic_load_n(&refused, __ATOMIC_RELAXED);
    unsigned nfailed = __atomic_load_n(&failures, __ATOMIC_RELAXED);
    printf("%s: %u waves of %u senders of %zu bytes: %u closed by the server, %u failed\n", label,
           rounds, senders, cfg.bytes, nrefused, nfailed);
    printf("%s: server RSS KiB: before %ld, during %ld (peak), after %ld (%u s later); "
           "after/before %.2f (limit %.2g)\n",
           label, before, during, after, settle, before > 0 ? (double)after / (double)before : 0.0,
           limit);
    printf("SOAK %s flood_rss_kib %ld %ld %ld\n", label, before, during, after);
    if (nfailed || nrefused != total) {
        printf("%s: FAIL: every sender should have been closed by the server\n", label);
        status = 1;
    }
    if (limit > 0 && (before <= 0 || (double)after > limit * (double)before)) {
        printf("%s: FAIL: RSS after the senders is above %.2g x before\n", label, limit);
        status = 1;
    }
    printf("%s: %s\n", label, status ? "FAIL" : "ok");
    return status;
}
