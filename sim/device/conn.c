/* devwire-sim's socket-level connection core: see conn.h. */
#include "device/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/net.h"

ssize_t dw__sim_try_send(uv_tcp_t *t, const uint8_t *p, size_t n)
{
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)t, &fd) != 0)
        return UV_EBADF;
    ssize_t r;
    do
        r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
        return 0;
    return uv_translate_sys_error(errno);
}

void dw__sim_quickack(uv_tcp_t *t)
{
#ifdef TCP_QUICKACK
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno((const uv_handle_t *)t, &fd) == 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one); /* best effort */
#else
    (void)t;
#endif
}

void dw__sim_peer_name(uv_tcp_t *t, char *out, size_t n)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0)
        dw_sim_addr_format((struct sockaddr *)&ss, out, n);
    else
        snprintf(out, n, "?");
}

/* One write that the socket did not take at once; the bytes follow. */
typedef struct wire_write {
    uv_write_t req;
    dw_sim_wire *w;
    uint8_t data[];
} wire_write;

static void on_written(uv_write_t *req, int status)
{
    wire_write *ww = (wire_write *)req;
    dw_sim_wire *w = ww->w;
    free(ww);
    if (status == UV_ECANCELED || w->ops->gone(w))
        return;
    if (status < 0) {
        w->ops->failed(w, status);
        return;
    }
    if (w->ops->wrote)
        w->ops->wrote(w);
    if (w->stalled &&
        uv_stream_get_write_queue_size((uv_stream_t *)w->tcp) <= DW_SIM_WRITE_QUEUE_LIMIT / 2) {
        w->stalled = 0;
        w->ops->stall(w);
    }
}

void dw__sim_wire_write(dw_sim_wire *w, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    uv_stream_t *st = (uv_stream_t *)w->tcp;
    size_t done = 0;
    if (uv_stream_get_write_queue_size(st) == 0) {
        ssize_t r = dw__sim_try_send(w->tcp, p, n);
        if (r < 0) {
            w->ops->failed(w, (int)r);
            return;
        }
        done = (size_t)r;
        if (done == n)
            return;
    }
    wire_write *ww = malloc(sizeof *ww + (n - done));
    if (!ww) {
        w->ops->failed(w, DW_SIM_WIRE_NOMEM);
        return;
    }
    ww->w = w;
    memcpy(ww->data, p + done, n - done);
    uv_buf_t b = uv_buf_init((char *)ww->data, (unsigned)(n - done));
    int r = uv_write(&ww->req, st, &b, 1, on_written);
    if (r != 0) {
        free(ww);
        w->ops->failed(w, r);
        return;
    }
    if (!w->stalled && uv_stream_get_write_queue_size(st) > DW_SIM_WRITE_QUEUE_LIMIT) {
        w->stalled = 1; /* the peer does not take what it is sent: stop feeding it */
        w->ops->stall(w);
    }
}

typedef struct shutdown_req {
    uv_shutdown_t req;
    void (*cb)(void *arg);
    void *arg;
} shutdown_req;

static void on_shutdown(uv_shutdown_t *req, int status)
{
    shutdown_req *sr = (shutdown_req *)req;
    void (*cb)(void *arg) = sr->cb;
    void *arg = sr->arg;
    (void)status;
    free(sr);
    cb(arg);
}

int dw__sim_shutdown(uv_tcp_t *t, void (*cb)(void *arg), void *arg)
{
    shutdown_req *sr = malloc(sizeof *sr);
    if (!sr)
        return UV_ENOMEM;
    sr->cb = cb;
    sr->arg = arg;
    int r = uv_shutdown(&sr->req, (uv_stream_t *)t, on_shutdown);
    if (r != 0)
        free(sr);
    return r;
}

void dw__sim_tcp_close(uv_tcp_t *t, int reset, uv_close_cb cb)
{
    if (!reset || uv_tcp_close_reset(t, cb) != 0)
        uv_close((uv_handle_t *)t, cb);
}

int dw__sim_listen_fd(uv_tcp_t *l, int fd, uv_connection_cb cb, const char *addr, dw_error *err)
{
    int r = uv_tcp_open(l, fd);
    if (r != 0)
        close(fd); /* not adopted by the handle */
    else
        r = uv_listen((uv_stream_t *)l, 512, cb);
    if (r != 0)
        return dw_error_set(err, DW_EIO, "listen %s: %s", addr, uv_strerror(r));
    return DW_OK;
}
