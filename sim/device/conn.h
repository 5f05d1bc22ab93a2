/* devwire-sim's socket-level connection core: what the device's TCP
 * connections (server_tcp.c) and the proxy's (record/proxy.c) both do on a
 * stream socket. On the loop thread only. */
#ifndef DW_SIM_CONN_H
#define DW_SIM_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* What the socket takes of p[0..n) now: the bytes taken (maybe 0), or a
 * libuv error. send() rather than uv_try_write's write(): the same bytes on
 * a shorter path through the kernel. */
ssize_t dw__sim_try_send(uv_tcp_t *t, const uint8_t *p, size_t n);
/* The peer's "HOST:PORT" into out[n], or "?". */
void dw__sim_peer_name(uv_tcp_t *t, char *out, size_t n);

#endif
