#include "soak_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int64_t soak_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void soak_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long soak_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

int soak_parse_addr(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= hostlen)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (uint16_t)p;
    return 0;
}

void soak_request(dw_buf *req, dw_buf *want, unsigned client, uint64_t seq, size_t pad)
{
    dw_buf_clear(req);
    dw_buf_clear(want);
    dw_buf_printf(req, "REQ %u %llu ", client, (unsigned long long)seq);
    dw_buf_printf(want, "ACK %u %llu ", client, (unsigned long long)seq);
    /* Filler that depends on the sequence number, so a reply meant for
     * another request never matches by accident. */
    for (size_t i = 0; i < pad; i++) {
        uint8_t c = (uint8_t)('a' + (seq + i * 7) % 26);
        dw_buf_append_byte(req, c);
        dw_buf_append_byte(want, c);
    }
}

int soak_connect_raw(const char *host, uint16_t port, int timeout_ms)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

void soak_lat_add(soak_lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return; /* a lost sample, not a wrong one */
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = ns;
}

void soak_lat_merge(soak_lat *into, const soak_lat *from)
{
    for (size_t i = 0; i < from->n; i++)
        soak_lat_add(into, from->v[i]);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double soak_lat_pct_us(soak_lat *l, double p)
{
    if (l->n == 0)
        return 0;
    qsort(l->v, l->n, sizeof *l->v, cmp_i64);
    size_t i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
    if (i >= l->n)
        i = l->n - 1;
    return (double)l->v[i] / 1000.0;
}

void soak_lat_free(soak_lat *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

void soak_log_fn(void *user, dw_log_level level, const char *message)
{
    const char *prog = user ? user : "soak";
    char line[1024];
    snprintf(line, sizeof line, "%s: %s: %s\n", prog, dw_log_level_name(level), message);
    fputs(line, stderr);
}
