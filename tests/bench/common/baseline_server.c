#include "baseline_server.h"
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct conn {
    struct conn *next, *prev;
    bench_baseline *b;
    int fd;
} conn;

struct bench_baseline {
    int lfd;
    uint16_t port;
    pthread_t accept_thread;
    pthread_mutex_t lock;
    pthread_cond_t gone;
    conn *conns;
    int active;
    int stopping;
};

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read, and write every complete line straight back. */
static void *conn_main(void *arg)
{
    conn *c = arg;
    char buf[16384];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(c->fd, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t start = 0;
        char *nl;
        while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
            size_t end = (size_t)(nl - buf) + 1;
            if (write_all(c->fd, buf + start, end - start) != 0)
                goto out;
            start = end;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf)
            break; /* a line longer than the buffer: give up on it */
    }
out:;
    bench_baseline *b = c->b;
    pthread_mutex_lock(&b->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    close(c->fd);
    free(c);
    b->active--;
    pthread_cond_broadcast(&b->gone);
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

static void *accept_main(void *arg)
{
    bench_baseline *b = arg;
    for (;;) {
        int fd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shut down */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        c->b = b;
        c->fd = fd;
        pthread_mutex_lock(&b->lock);
        if (b->stopping) {
            pthread_mutex_unlock(&b->lock);
            close(fd);
            free(c);
            break;
        }
        c->next = b->conns;
        if (b->conns)
            b->conns->prev = c;
        b->conns = c;
        b->active++;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            b->conns = c->next;
            if (c->next)
                c->next->prev = NULL;
            b->active--;
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&attr);
        pthread_mutex_unlock(&b->lock);
    }
    return NULL;
}

bench_baseline *bench_baseline_start(void)
{
    bench_baseline *b = calloc(1, sizeof *b);
    b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(b->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(b->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(b->lfd, 1024) != 0 ||
        getsockname(b->lfd, (struct sockaddr *)&a, &len) != 0) {
        close(b->lfd);
        free(b);
        return NULL;
    }
    b->port = ntohs(a.sin_port);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->gone, NULL);
    pthread_create(&b->accept_thread, NULL, accept_main, b);
    return b;
}

uint16_t bench_baseline_port(const bench_baseline *b)
{
    return b->port;
}

int bench_baseline_connections(bench_baseline *b)
{
    pthread_mutex_lock(&b->lock);
    int n = b->active;
    pthread_mutex_unlock(&b->lock);
    return n;
}

void bench_baseline_stop(bench_baseline *b)
{
    pthread_mutex_lock(&b->lock);
    b->stopping = 1;
    pthread_mutex_unlock(&b->lock);
    shutdown(b->lfd, SHUT_RDWR); /* wakes accept() */
    pthread_join(b->accept_thread, NULL);
    close(b->lfd);
    pthread_mutex_lock(&b->lock);
    for (conn *c = b->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (b->active > 0)
        pthread_cond_wait(&b->gone, &b->lock);
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->gone);
    free(b);
}

/* ---- the matching raw client ----------------------------------------- */

typedef struct raw_conn {
    int fd;
    size_t have;
    char buf[4096];
} raw_conn;

static void *raw_open(void *ctx)
{
    uint16_t port = *(const uint16_t *)ctx;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    raw_conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    return c;
}

static int raw_round_trip(void *p, const char *req, size_t n)
{
    raw_conn *c = p;
    char line[512];
    if (n + 1 > sizeof line)
        return -1;
    memcpy(line, req, n);
    line[n] = '\n';
    if (write_all(c->fd, line, n + 1) != 0)
        return -1;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->have);
        if (nl) {
            size_t len = (size_t)(nl - c->buf);
            int ok = len == n && memcmp(c->buf, req, n) == 0;
            c->have -= len + 1;
            memmove(c->buf, nl + 1, c->have);
            return ok ? 0 : -1;
        }
        if (c->have == sizeof c->buf)
            return -1;
        ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->have += (size_t)r;
    }
}

static void raw_close(void *p)
{
    raw_conn *c = p;
    close(c->fd);
    free(c);
}

const bench_client_ops bench_raw_client = {raw_open, raw_round_trip, raw_close};
