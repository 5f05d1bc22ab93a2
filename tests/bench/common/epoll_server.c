#include "epoll_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Level-triggered: a connection is read while EPOLLIN is set, and only
 * while it has no replies waiting; replies the socket did not take wait in
 * `out` under EPOLLOUT (a client that does not read is not read from). */
typedef struct conn {
    struct conn *next, *prev;
    int fd;
    size_t in_len;
    char in[1024]; /* a line longer than this closes the connection */
    char *out;
    size_t out_len, out_off, out_cap;
} conn;

struct bench_epoll_server {
    int lfd, ep, wake;
    uint16_t port;
    pthread_t thread;
    conn *conns;
};

static void conn_close(bench_epoll_server *s, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    close(c->fd); /* also leaves the epoll set */
    free(c->out);
    free(c);
}

static int out_append(conn *c, const char *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 256;
        while (cap < c->out_len + n)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o)
            return -1;
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

/* Send what is waiting; 0 all sent, 1 the socket is full, -1 error. */
static int flush(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Answer every complete line in c->in; keep the partial one. */
static int answer_lines(conn *c)
{
    static const char volt[] = "MEAS:VOLT?";
    size_t start = 0;
    char *nl;
    while ((nl = memchr(c->in + start, '\n', c->in_len - start)) != NULL) {
        size_t len = (size_t)(nl - (c->in + start));
        int is_volt = len == sizeof volt - 1 && memcmp(c->in + start, volt, len) == 0;
        if (out_append(c, is_volt ? "1.234\n" : "ERR\n", is_volt ? 6 : 4) != 0)
            return -1;
        start += len + 1;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    return c->in_len == sizeof c->in ? -1 : 0;
}

/* Wait for input, or for the socket to drain. */
static int watch(bench_epoll_server *s, conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    return epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_event(bench_epoll_server *s, conn *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        int f = flush(c);
        if (f < 0 || (f == 0 && watch(s, c, EPOLLIN) != 0)) {
            conn_close(s, c);
            return;
        }
        if (f == 1)
            return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r <= 0) {
        conn_close(s, c);
        return;
    }
    c->in_len += (size_t)r;
    int f = answer_lines(c) == 0 ? flush(c) : -1;
    if (f < 0 || (f == 1 && watch(s, c, EPOLLOUT) != 0))
        conn_close(s, c);
}

static void accept_all(bench_epoll_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN: all taken; anything else: try on the next event */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->fd = fd;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
    }
}

static void *loop_main(void *arg)
{
    bench_epoll_server *s = arg;
    struct epoll_event ev[256];
    for (;;) {
        int n = epoll_wait(s->ep, ev, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == &s->lfd)
                accept_all(s);
            else if (ev[i].data.ptr == &s->wake)
                return NULL;
            else
                on_event(s, ev[i].data.ptr, ev[i].events);
        }
    }
    return NULL;
}

static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

bench_epoll_server *bench_epoll_start(void)
{
    bench_epoll_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->lfd = listen_loopback(&s->port);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event l = {.events = EPOLLIN, .data.ptr = &s->lfd};
    struct epoll_event w = {.events = EPOLLIN, .data.ptr = &s->wake};
    if (s->lfd < 0 || s->ep < 0 || s->wake < 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &l) != 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->wake, &w) != 0 ||
        pthread_create(&s->thread, NULL, loop_main, s) != 0) {
        if (s->lfd >= 0)
            close(s->lfd);
        if (s->ep >= 0)
            close(s->ep);
        if (s->wake >= 0)
            close(s->wake);
        free(s);
        return NULL;
    }
    return s;
}

uint16_t bench_epoll_port(const bench_epoll_server *s)
{
    return s->port;
}

void bench_epoll_stop(bench_epoll_server *s)
{
    if (!s)
        return;
    uint64_t one = 1;
    if (write(s->wake, &one, sizeof one) != (ssize_t)sizeof one)
        return; /* cannot wake the thread: leave it running rather than free under it */
    pthread_join(s->thread, NULL);
    while (s->conns)
        conn_close(s, s->conns);
    close(s->lfd);
    close(s->ep);
    close(s->wake);
    free(s);
}
