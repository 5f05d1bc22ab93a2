/* devwire-sim's sockets: a bound listening (or datagram) socket for the
 * event loop to adopt, and addresses as text. */
#ifndef DW_SIM_NET_H
#define DW_SIM_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <devwire/devwire.h>

/* "HOST:PORT" or "[V6]:PORT" and a NUL. */
#define DW_SIM_ADDR_MAX 64

/* Parse "HOST:PORT" or "[V6]:PORT" (port 0 to 65535). 0 and a new
 * *host (caller frees), or -1. */
int dw_sim_parse_hostport(const char *s, char **host, uint16_t *port);

/* Format a socket address as "1.2.3.4:5" or "[::1]:5" into out[n]. */
void dw_sim_addr_format(const struct sockaddr *sa, char *out, size_t n);

/* A non-blocking socket bound to host:port (port 0: the kernel chooses):
 * listening (SOCK_STREAM, with `backlog`) or a datagram socket
 * (SOCK_DGRAM). On DW_OK *fd is the socket, addr the address actually
 * bound and *bound its port; otherwise `err` names the call and the
 * address ("bind 127.0.0.1:5025: Address already in use"). */
int dw_sim_net_bind(const char *host, uint16_t port, int type, int backlog, int *fd,
                    char addr[DW_SIM_ADDR_MAX], uint16_t *bound, dw_error *err);

/* 1 when sa is a loopback address: IPv4 127.0.0.0/8, IPv6 ::1, or an
 * IPv4-mapped ::ffff:127.x.y.z; else 0. */
int dw_sim_net_is_loopback(const struct sockaddr *sa);

/* Resolve `host` as dw_sim_net_bind does (getaddrinfo, AF_UNSPEC) and
 * check that every address it gives is loopback: DW_OK; DW_EINVAL when
 * one is not (`err` names the host and that address) or when the host does
 * not resolve (`err` names it and says why). */
int dw_sim_net_check_loopback(const char *host, dw_error *err);

/* 1 when the socket fd is bound to a loopback address, else 0. */
int dw_sim_net_bound_loopback(int fd);

#endif
