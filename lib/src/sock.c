#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t dw__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dw__sock_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    char port[8] = "?";
    getnameinfo(sa, len, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    if (sa->sa_family == AF_INET6)
        snprintf(out, n, "[%s]:%s", host, port);
    else
        snprintf(out, n, "%s:%s", host, port);
}

/* The host as the user wrote it, bracketed if it is an IPv6 literal. */
static void name_format(const char *host, uint16_t port, char *out, size_t n)
{
    if (strchr(host, ':'))
        snprintf(out, n, "[%s]:%u", host, (unsigned)port);
    else
        snprintf(out, n, "%s:%u", host, (unsigned)port);
}

static int resolve(const char *host, uint16_t port, int passive, struct addrinfo **res,
                   dw_error *err)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* No AI_ADDRCONFIG: on a host with loopback only it hides 127.0.0.1. */
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int rc = getaddrinfo(host, service, &hints, res);
    if (rc == 0)
        return DW_OK;
    char name[DW__ADDR_MAX + 256];
    name_format(host, port, name, sizeof name);
    int code = rc == EAI_MEMORY ? DW_ENOMEM : rc == EAI_SYSTEM ? -errno : DW_ENOTFOUND;
    return dw_error_set(err, code, "resolve %s: %s", name,
                        rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
}

static int set_timeout_opt(int fd, int opt, int ms)
{
    struct timeval tv = {0, 0}; /* zero: no timeout */
    if (ms >= 0) {
        if (ms == 0)
            ms = 1; /* zero would mean "forever" to the kernel */
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
    }
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) == 0 ? DW_OK : -errno;
}

int dw__sock_set_timeouts(int fd, int read_timeout_ms, int write_timeout_ms)
{
    int rc = set_timeout_opt(fd, SO_RCVTIMEO, read_timeout_ms);
    if (rc == DW_OK)
        rc = set_timeout_opt(fd, SO_SNDTIMEO, write_timeout_ms);
    return rc;
}

/* Wait for `events` on fd for at most ms (-1: forever), through signals.
 * DW_OK, DW_ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int ms)
{
    int64_t deadline = ms >= 0 ? dw__now_ms() + ms : 0;
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int left = -1;
        if (ms >= 0) {
            int64_t d = deadline - dw__now_ms();
            left = d > 0 ? (int)d : 0;
        }
        int n = poll(&p, 1, left);
        if (n > 0)
            return DW_OK;
        if (n == 0)
            return DW_ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* One connect attempt; on failure the socket is closed and -errno returned. */
static int connect_one(const struct addrinfo *ai, int connect_timeout_ms, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = DW_OK;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        /* Non-blocking, so EINTR and EINPROGRESS both mean "in progress". */
        if (errno != EINPROGRESS && errno != EINTR) {
            rc = -errno;
        } else {
            rc = wait_fd(fd, POLLOUT, connect_timeout_ms);
            if (rc == DW_OK) {
                int soerr = 0;
                socklen_t len = sizeof soerr;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
                    rc = -errno;
                else if (soerr != 0)
                    rc = -soerr;
            }
        }
    }
    if (rc == DW_OK) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
            rc = -errno;
    }
    if (rc != DW_OK) {
        close(fd);
        return rc;
    }
    *out = fd;
    return DW_OK;
}

int dw__sock_connect(const char *host, uint16_t port, int connect_timeout_ms, int timeout_ms,
                     int *fd, char addr[DW__ADDR_MAX], dw_error *err)
{
    *fd = -1;
    struct addrinfo *res = NULL;
    int rc = resolve(host, port, 0, &res, err);
    if (rc != DW_OK)
        return rc;
    rc = DW_ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        dw__sock_addr_format(ai->ai_addr, ai->ai_addrlen, addr, DW__ADDR_MAX);
        rc = connect_one(ai, connect_timeout_ms, fd);
        if (rc == DW_OK)
            break;
        if (rc == DW_ETIMEDOUT)
            dw_error_set(err, rc, "connect %s: timed out after %d ms", addr, connect_timeout_ms);
        else
            dw_error_set(err, rc, "connect %s: %s", addr, strerror(-rc));
    }
    freeaddrinfo(res);
    if (rc != DW_OK)
        return rc;
    int one = 1;
    setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rc = dw__sock_set_timeouts(*fd, timeout_ms, timeout_ms);
    if (rc != DW_OK) {
        close(*fd);
        *fd = -1;
        return dw_error_set(err, rc, "setsockopt %s: %s", addr, strerror(-rc));
    }
    return DW_OK;
}

int dw__sock_listen(const char *host, uint16_t port, int backlog, int *fd, char addr[DW__ADDR_MAX],
                    uint16_t *bound_port, dw_error *err)
{
    *fd = -1;
    struct addrinfo *res = NULL;
    int rc = resolve(host, port, 1, &res, err);
    if (rc != DW_OK)
        return rc;
    rc = DW_EINVAL;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        dw__sock_addr_format(ai->ai_addr, ai->ai_addrlen, addr, DW__ADDR_MAX);
        const char *call = "socket";
        int s =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (s >= 0) {
            int one = 1;
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            call = "bind";
            if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0) {
                call = "listen";
                if (listen(s, backlog) == 0) {
                    *fd = s;
                    rc = DW_OK;
                    break;
                }
            }
        }
        rc = -errno;
        dw_error_set(err, rc, "%s %s: %s", call, addr, strerror(errno));
        if (s >= 0)
            close(s);
    }
    freeaddrinfo(res);
    if (rc != DW_OK)
        return rc;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(*fd, (struct sockaddr *)&ss, &len) != 0) {
        rc = -errno;
        close(*fd);
        *fd = -1;
        return dw_error_set(err, rc, "getsockname %s: %s", addr, strerror(-rc));
    }
    dw__sock_addr_format((struct sockaddr *)&ss, len, addr, DW__ADDR_MAX);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return DW_OK;
}

long dw__sock_recv(int fd, void *p, size_t n, int timeout_ms)
{
    int64_t first_eintr = -1;
    for (;;) {
        ssize_t r = recv(fd, p, n, 0);
        if (r >= 0)
            return (long)r;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return DW_ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
        /* A signal restarts the kernel's timeout: bound the total by waiting
         * for what is left of it measured from the first interruption. */
        if (timeout_ms >= 0) {
            int64_t now = dw__now_ms();
            if (first_eintr < 0)
                first_eintr = now;
            int64_t left = first_eintr + timeout_ms - now;
            int rc = wait_fd(fd, POLLIN, left > 0 ? (int)left : 0);
            if (rc != DW_OK)
                return rc;
        }
    }
}

int dw__sock_send_all(int fd, const void *p, size_t n, int timeout_ms)
{
    const uint8_t *d = p;
    /* SO_SNDTIMEO bounds each send() call, and a peer that drains its
     * buffer slowly lets every call make a little progress: the timeout
     * must bound the whole write, so it is a deadline from the start. */
    int64_t deadline = timeout_ms >= 0 ? dw__now_ms() + timeout_ms : 0;
    int flags = MSG_NOSIGNAL;
    while (n > 0) {
        ssize_t w = send(fd, d, n, flags);
        if (w >= 0) {
            d += w;
            n -= (size_t)w;
            if (n == 0)
                break;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -errno;
        }
        /* Slow path (partial write, timeout or signal): wait for room
         * within what is left of the deadline, then write without
         * blocking. */
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t l = deadline - dw__now_ms();
            if (l <= 0)
                return DW_ETIMEDOUT;
            left = (int)l;
        }
        int rc = wait_fd(fd, POLLOUT, left);
        if (rc != DW_OK)
            return rc;
        flags = MSG_NOSIGNAL | MSG_DONTWAIT;
    }
    return DW_OK;
}

static int sock_pull(dw_iter *base, const uint8_t **data, size_t *len)
{
    dw__sock_iter *it = (dw__sock_iter *)base;
    if (it->last_error != DW_OK)
        return it->last_error; /* an ended stream stays ended */
    long r = dw__sock_recv(it->fd, it->buf, it->cap, it->timeout_ms);
    if (r > 0) {
        *data = it->buf;
        *len = (size_t)r;
        return DW_OK;
    }
    int rc = r == 0 ? DW_EOF : (int)r;
    /* A timeout is not final: the caller may try again. */
    if (rc != DW_ETIMEDOUT)
        it->last_error = rc;
    return rc;
}

int dw__sock_iter_init(dw__sock_iter *it, int fd, size_t buffer_size, int timeout_ms)
{
    dw_iter_init(&it->base, sock_pull);
    it->fd = fd;
    it->timeout_ms = timeout_ms;
    it->last_error = DW_OK;
    it->cap = buffer_size ? buffer_size : 16384;
    it->buf = malloc(it->cap);
    return it->buf ? DW_OK : DW_ENOMEM;
}

void dw__sock_iter_free(dw__sock_iter *it)
{
    free(it->buf);
    it->buf = NULL;
}
