/* TCP transport: client and session (a dw_client / dw_session), and a server
 * that serves many clients at once, calling a handler with a blocking
 * iterator over each connection. */
#ifndef DEVWIRE_TCP_H
#define DEVWIRE_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "devwire/buf.h"
#include "devwire/error.h"
#include "devwire/iter.h"
#include "devwire/log.h"
#include "devwire/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- client ---------------------------------------------------------- */

typedef struct dw_tcp_client_options {
    const char *host; /* name or address, IPv4 or IPv6 (getaddrinfo); copied */
    uint16_t port;
    int timeout_ms;          /* read/write timeout; -1 = block forever (default 10000) */
    int connect_timeout_ms;  /* -1 = the system's (default 5000) */
    size_t buffer_size;      /* receive buffer, largest chunk (default 65536) */
    const dw_logger *logger; /* NULL = silent; must outlive the client */
} dw_tcp_client_options;

void dw_tcp_client_options_init(dw_tcp_client_options *o);

/* A TCP transport client; NULL when out of memory or `o->host` is NULL.
 * Its sessions' iterators return DW_ETIMEDOUT when nothing arrives within
 * the timeout, DW_EOF when the server closed, DW_ECONNRESET on a reset.
 * Free with dw_client_free. */
dw_client *dw_tcp_client_new(const dw_tcp_client_options *o);

/* Change the read/write timeout (ms; -1 = block forever) of a session
 * opened by a dw_tcp_client_new client, from the next read or write on.
 * The Telnet client uses it to read a banner until a quiet period. DW_OK,
 * DW_EINVAL when `s` is not a TCP session, or -errno from setsockopt. Not
 * thread-safe with other calls on the same session. */
int dw_tcp_session_set_timeout(dw_session *s, int timeout_ms);

/* ---- server ---------------------------------------------------------- */

typedef struct dw_tcp_server dw_tcp_server;
/* One accepted connection; valid from on_open until on_close returns. */
typedef struct dw_conn dw_conn;

/* What the server calls. Each connection runs on its own thread, so the
 * callbacks for different connections run concurrently; `user` is shared. */
typedef struct dw_server_handler {
    /* Once per connection before any read (may write a banner, set per
     * connection data). DW_OK, or an error to close it. May be NULL. */
    int (*on_open)(void *user, dw_conn *c);
    /* Called again and again: read one request from `in` (blocking) and put
     * the response in `out` (left empty: no response). Return DW_OK to go
     * on (the server writes `out` first), DW_EOF when the client closed
     * cleanly, or a negative code to close this connection (logged). */
    int (*on_request)(void *user, dw_conn *c, dw_iter *in, dw_buf *out);
    /* Once when the connection ends, whatever the reason. May be NULL. */
    void (*on_close)(void *user, dw_conn *c);
    void *user;
} dw_server_handler;

typedef struct dw_tcp_server_options {
    const char *host;         /* address to bind (default "127.0.0.1"); copied */
    uint16_t port;            /* 0 = the kernel chooses (read it back) */
    size_t max_connections;   /* above it a client is refused politely (default 1024) */
    int idle_timeout_ms;      /* close a connection silent this long; -1 = never (default) */
    size_t buffer_size;       /* per-connection receive buffer (default 16384) */
    int backlog;              /* listen backlog (default 512) */
    const dw_logger *logger;  /* NULL = silent; must outlive the server */
    int write_timeout_ms;     /* a client not reading its responses for this long is
                                 dropped; -1 = never (default 10000) */
    size_t thread_stack_size; /* per-connection thread stack (default 256 KiB) */
} dw_tcp_server_options;

void dw_tcp_server_options_init(dw_tcp_server_options *o);

/* Bind and listen (nothing is accepted until start or run). On DW_OK *out
 * is the server; free it with dw_tcp_server_free. `h` is copied; h->user
 * must outlive the server. Errors name the address
 * ("bind 127.0.0.1:5025: Address already in use"). */
int dw_tcp_server_new(const dw_tcp_server_options *o, const dw_server_handler *h,
                      dw_tcp_server **out, dw_error *err);
/* The bound port and "HOST:PORT" ("[::1]:40123" for IPv6). */
uint16_t dw_tcp_server_port(const dw_tcp_server *s);
const char *dw_tcp_server_address(const dw_tcp_server *s);

/* Serve in a background thread. The server's threads (this one and one per
 * connection) run with asynchronous signals blocked, so signal handlers run
 * on the application's threads. DW_OK, or DW_EINVAL if already serving. */
int dw_tcp_server_start(dw_tcp_server *s, dw_error *err);
/* Serve in the caller's thread until dw_tcp_server_stop; returns DW_OK once
 * every connection is closed and every thread joined. */
int dw_tcp_server_run(dw_tcp_server *s, dw_error *err);
/* Ask the server to stop: stop accepting, let handlers finish their
 * current request, close connections, join threads. Returns at once.
 * Thread-safe and async-signal-safe (call it from a signal handler). */
void dw_tcp_server_stop(dw_tcp_server *s);
/* Stop, wait for every thread, free. Accepts NULL. If dw_tcp_server_run is
 * serving on another thread, stop the server and let run return first. */
void dw_tcp_server_free(dw_tcp_server *s);

/* Connections open now and accepted in all. Thread-safe. */
size_t dw_tcp_server_connections(const dw_tcp_server *s);
uint64_t dw_tcp_server_accepted(const dw_tcp_server *s);

/* ---- one connection (from inside the handler's callbacks, or from any
 * thread between on_open and on_close) ------------------------------- */

/* Write all n bytes. Thread-safe: writes from several threads (a reply and
 * a periodic message) never interleave. DW_OK or a negative code. */
int dw_conn_write(dw_conn *c, const void *p, size_t n);
/* End the connection: reset = 0 closes it cleanly (FIN), reset = 1 sends an
 * RST. Reads and writes fail afterwards. Thread-safe. */
void dw_conn_close(dw_conn *c, int reset);
/* Per-connection user data. */
void dw_conn_set_user(dw_conn *c, void *user);
void *dw_conn_user(const dw_conn *c);
/* A number unique within the server (1, 2, ...), and "HOST:PORT" of the peer. */
uint64_t dw_conn_id(const dw_conn *c);
const char *dw_conn_peer(const dw_conn *c);
/* The server's logger (or NULL), for messages about this connection. */
const dw_logger *dw_conn_logger(const dw_conn *c);

#ifdef __cplusplus
}
#endif
#endif
