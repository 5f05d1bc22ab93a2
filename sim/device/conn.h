/* devwire-sim's socket-level connection core: what the device's TCP
 * connections (server_tcp.c) and the proxy's (record/proxy.c) both do on a
 * stream socket. On the loop thread only. */
#ifndef DW_SIM_CONN_H
#define DW_SIM_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <devwire/devwire.h>

/* What the socket takes of p[0..n) now: the bytes taken (maybe 0), or a
 * libuv error. send() rather than uv_try_write's write(): the same bytes on
 * a shorter path through the kernel. */
ssize_t dw__sim_try_send(uv_tcp_t *t, const uint8_t *p, size_t n);
/* Acknowledge what t received at once, and the next segments too until the
 * kernel goes back to delaying ACKs (TCP_QUICKACK is not sticky: call it
 * after each read). Nothing where the system has no TCP_QUICKACK. */
void dw__sim_quickack(uv_tcp_t *t);
/* The peer's "HOST:PORT" into out[n], or "?". */
void dw__sim_peer_name(uv_tcp_t *t, char *out, size_t n);

/* Queued output above which the side feeding a socket stops reading (and
 * below half of which it reads again). */
#define DW_SIM_WRITE_QUEUE_LIMIT ((size_t)256 * 1024)

/* The "status" of a write that found no memory for its copy. */
#define DW_SIM_WIRE_NOMEM 1

typedef struct dw_sim_wire dw_sim_wire;

/* What the owner of a wire does when its writes go out or fail. */
typedef struct dw_sim_wire_ops {
    /* 1 once the connection is gone: a write completing then means nothing. */
    int (*gone)(dw_sim_wire *w);
    /* Writing failed: status is a libuv error, or DW_SIM_WIRE_NOMEM. The
     * owner closes the connection. */
    void (*failed)(dw_sim_wire *w, int status);
    /* A queued write went out (NULL: nothing to do); called before the
     * stall is lifted. */
    void (*wrote)(dw_sim_wire *w);
    /* w->stalled changed: stop reading (1) or read again (0). */
    void (*stall)(dw_sim_wire *w);
} dw_sim_wire_ops;

/* The writing side of a stream socket: bytes go out at once when the
 * socket takes them (dw__sim_try_send), the rest is queued with a uv_write
 * of its own copy; past DW_SIM_WRITE_QUEUE_LIMIT queued bytes the wire is
 * stalled until the queue falls to half of it. Embedded in its owner, which
 * must outlive the socket's close (the cancelled writes' callbacks run
 * before the close callback). */
struct dw_sim_wire {
    uv_tcp_t *tcp;
    const dw_sim_wire_ops *ops;
    void *owner;
    int stalled;
};

/* Write p[0..n) (n may be 0: nothing happens). A failure is reported
 * through ops->failed before this returns, or when the write completes. */
void dw__sim_wire_write(dw_sim_wire *w, const uint8_t *p, size_t n);

/* FIN once what is queued on t has gone out; then cb(arg), whatever the
 * outcome. DW_OK, or a libuv error (or UV_ENOMEM) when it could not start:
 * then cb does not run. */
int dw__sim_shutdown(uv_tcp_t *t, void (*cb)(void *arg), void *arg);
/* Close t with cb: with RST when reset (a plain close when an RST cannot
 * be sent), queued writes dropped. */
void dw__sim_tcp_close(uv_tcp_t *t, int reset, uv_close_cb cb);
/* Adopt bound socket fd into l (initialized, its data set) and listen with
 * cb. DW_OK, or DW_EIO with `err` ("listen ADDR: ..."); fd is closed if
 * the handle did not adopt it. */
int dw__sim_listen_fd(uv_tcp_t *l, int fd, uv_connection_cb cb, const char *addr, dw_error *err);

#endif
