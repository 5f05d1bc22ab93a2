#include "line_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct lconn {
    int fd;
    uint16_t port;
    uint64_t sent_ns;
    size_t have;
    char buf[64]; /* one reply: one request is in flight */
} lconn;

typedef struct lthread {
    pthread_t thread;
    const bench_line_load *l;
    pthread_barrier_t *start;
    int *stop;
    lconn *c;
    int n, ep, open_failed;
    uint64_t trips, failures;
    uint32_t *samples; /* latency in ns, saturating */
    size_t nsamples, cap;
} lthread;

int bench_connect_loopback(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return -e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void complain(const lthread *t, const char *what, const lconn *c)
{
    if (t->failures != 0)
        return; /* once per thread is enough */
    const char *nl = memchr(c->buf, '\n', c->have);
    int shown = nl ? (int)(nl - c->buf) : (int)c->have;
    fprintf(stderr, "bench: 127.0.0.1:%u: %s (got \"%.*s\", expected \"%.*s\")\n",
            (unsigned)c->port, what, shown, c->buf, (int)strcspn(t->l->reply, "\n"), t->l->reply);
}

static int send_request(const lthread *t, lconn *c)
{
    size_t n = strlen(t->l->request);
    c->sent_ns = bench_now_ns();
    /* One short request on a socket with nothing else in flight: the
     * kernel takes it whole, or something is wrong. */
    return send(c->fd, t->l->request, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* Read what arrived; 1 a whole reply (checked), 0 not yet, -1 failure. */
static int take_reply(lthread *t, lconn *c)
{
    ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (r <= 0) {
        complain(t, r == 0 ? "the server closed the connection" : strerror(errno), c);
        return -1;
    }
    c->have += (size_t)r;
    if (!memchr(c->buf, '\n', c->have))
        return c->have < sizeof c->buf ? 0 : -1;
    size_t want = strlen(t->l->reply);
    if (c->have != want || memcmp(c->buf, t->l->reply, want) != 0) {
        complain(t, "wrong reply", c);
        return -1;
    }
    c->have = 0;
    return 1;
}

/* The untimed first round trip, blocking; then the socket goes
 * nonblocking into the thread's epoll set. */
static int open_conn(lthread *t, lconn *c)
{
    c->fd = bench_connect_loopback(c->port);
    if (c->fd < 0) {
        fprintf(stderr, "bench: connect 127.0.0.1:%u: %s\n", (unsigned)c->port, strerror(-c->fd));
        return -1;
    }
    int got = 0;
    if (send_request(t, c) == 0)
        while ((got = take_reply(t, c)) == 0)
            ;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (got != 1 || fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0 ||
        epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return -1;
    return 0;
}

static void drop(lthread *t, lconn *c)
{
    t->failures++;
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
}

static void run_conns(lthread *t)
{
    int live = t->n;
    for (int i = 0; i < t->n; i++)
        if (send_request(t, &t->c[i]) != 0) {
            drop(t, &t->c[i]);
            live--;
        }
    struct epoll_event ev[256];
    while (live > 0 && !__atomic_load_n(t->stop, __ATOMIC_RELAXED)) {
        int n = epoll_wait(t->ep, ev, 256, 100);
        for (int i = 0; i < n; i++) {
            lconn *c = ev[i].data.ptr;
            int got = take_reply(t, c);
            if (got == 0)
                continue;
            uint64_t dt = bench_now_ns() - c->sent_ns;
            if (got < 0 || __atomic_load_n(t->stop, __ATOMIC_RELAXED)) {
                if (got < 0) {
                    drop(t, c);
                    live--;
                }
                continue;
            }
            t->trips++;
            if (t->nsamples < t->cap)
                t->samples[t->nsamples++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
            if (send_request(t, c) != 0) {
                drop(t, c);
                live--;
            }
        }
    }
}

static void *thread_main(void *arg)
{
    lthread *t = arg;
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < t->n; i++)
        t->c[i].fd = -1;
    for (int i = 0; i < t->n && !t->open_failed; i++)
        t->open_failed = t->ep < 0 || open_conn(t, &t->c[i]) != 0;
    pthread_barrier_wait(t->start);
    if (!t->open_failed)
        run_conns(t);
    for (int i = 0; i < t->n; i++)
        if (t->c[i].fd >= 0)
            close(t->c[i].fd);
    if (t->ep >= 0)
        close(t->ep);
    return NULL;
}

int bench_line_run(const bench_line_load *l, bench_result *out)
{
    memset(out, 0, sizeof *out);
    int nt = l->threads < 1 ? 1 : l->threads > l->conns ? l->conns : l->threads;
    lthread *t = calloc((size_t)nt, sizeof *t);
    lconn *conns = calloc((size_t)l->conns, sizeof *conns);
    for (int i = 0; conns && i < l->conns; i++)
        conns[i].port = l->nports > 0 ? l->ports[i % l->nports] : l->port;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nt + 1);
    int stop = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)256 * 1024);
    for (int i = 0; i < nt; i++) {
        int first = (int)((long)l->conns * i / nt), next = (int)((long)l->conns * (i + 1) / nt);
        t[i] = (lthread){
            .l = l, .start = &start, .stop = &stop, .c = conns + first, .n = next - first};
        /* About a million samples in all, shared by connection count. */
        t[i].cap = ((size_t)1 << 20) / (size_t)l->conns * (size_t)t[i].n;
        t[i].samples = malloc(t[i].cap * sizeof *t[i].samples);
        pthread_create(&t[i].thread, &attr, thread_main, &t[i]);
    }
    pthread_attr_destroy(&attr);
    pthread_barrier_wait(&start);
    double c0 = bench_cpu_seconds();
    double s0 = l->server_pid > 0 ? bench_proc_cpu_seconds(l->server_pid) : -1;
    out->seconds = bench_sleep(l->seconds, &stop);
    double s1 = l->server_pid > 0 ? bench_proc_cpu_seconds(l->server_pid) : -1;
    double c1 = bench_cpu_seconds();
    if (s0 >= 0 && s1 >= 0)
        out->server_cores = (s1 - s0) / out->seconds;
    int failed_open = 0;
    bench_samples s = {0};
    for (int i = 0; i < nt; i++) {
        pthread_join(t[i].thread, NULL);
        out->trips += t[i].trips;
        out->failures += t[i].failures + (uint64_t)t[i].open_failed;
        failed_open |= t[i].open_failed;
        bench_samples_add(&s, t[i].samples, t[i].nsamples);
        free(t[i].samples);
    }
    bench_samples_finish(&s, out, c1 - c0);
    pthread_barrier_destroy(&start);
    free(conns);
    free(t);
    return failed_open || out->failures ? -1 : 0;
}
