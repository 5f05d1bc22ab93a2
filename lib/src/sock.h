/* Internal: the socket calls that the TCP client and server share. Every
 * call retries on EINTR, creates descriptors with SOCK_CLOEXEC, sends with
 * MSG_NOSIGNAL (a vanished peer is an error code, never SIGPIPE), and names
 * the call and the address in its error messages. */
#ifndef DW_SOCK_H
#define DW_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "devwire/error.h"
#include "devwire/iter.h"

/* "HOST:PORT" or "[v6]:PORT" fits in this (with its NUL). */
#define DW__ADDR_MAX 64

/* Format a socket address as numeric "HOST:PORT" / "[HOST]:PORT". */
void dw__sock_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t n);

/* Resolve `host`:`port` and connect to the first address that accepts,
 * within `connect_timeout_ms` per address (-1: the system's). On DW_OK *fd is
 * a blocking, close-on-exec socket with TCP_NODELAY and read/write timeouts
 * of `timeout_ms` (-1: none), and `addr` holds the peer's "HOST:PORT".
 * Errors: DW_ENOTFOUND (resolving), DW_ETIMEDOUT, -errno ("connect
 * 127.0.0.1:5025: Connection refused"). */
int dw__sock_connect(const char *host, uint16_t port, int connect_timeout_ms, int timeout_ms,
                     int *fd, char addr[DW__ADDR_MAX], dw_error *err);

/* Bind and listen on `host`:`port` (0 = the kernel chooses). On DW_OK *fd is
 * a non-blocking, close-on-exec listening socket and `addr` the bound
 * "HOST:PORT" (the real port). */
int dw__sock_listen(const char *host, uint16_t port, int backlog, int *fd, char addr[DW__ADDR_MAX],
                    uint16_t *bound_port, dw_error *err);

/* SO_RCVTIMEO / SO_SNDTIMEO in milliseconds (negative: none). */
int dw__sock_set_timeouts(int fd, int read_timeout_ms, int write_timeout_ms);

/* Receive at most n bytes (n > 0). Returns the count (> 0), 0 at end of
 * stream, or a negative code: DW_ETIMEDOUT after the socket's receive
 * timeout, -errno otherwise. A signal never makes it wait longer than about
 * twice `timeout_ms`. */
long dw__sock_recv(int fd, void *p, size_t n, int timeout_ms);

/* Send all n bytes within `timeout_ms` in all (-1: no limit): DW_OK,
 * DW_ETIMEDOUT, or -errno (DW_EPIPE, DW_ECONNRESET). */
int dw__sock_send_all(int fd, const void *p, size_t n, int timeout_ms);

/* A dw_iter over a socket: each pull is one recv into the iterator's
 * buffer. `last_error` keeps the code that ended it (for logging). */
typedef struct dw__sock_iter {
    dw_iter base;
    int fd;
    int timeout_ms; /* what the socket's receive timeout is set to */
    int last_error;
    size_t cap;
    uint8_t *buf; /* owned */
} dw__sock_iter;

/* DW_OK or DW_ENOMEM. */
int dw__sock_iter_init(dw__sock_iter *it, int fd, size_t buffer_size, int timeout_ms);
void dw__sock_iter_free(dw__sock_iter *it);

/* Milliseconds on the monotonic clock. */
int64_t dw__now_ms(void);

#endif
