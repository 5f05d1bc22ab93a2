/* Helpers shared by the soak and chaos programs: the request/reply protocol
 * both servers speak, connecting, RSS of a process, latency statistics. */
#ifndef DW_SOAK_COMMON_H
#define DW_SOAK_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <devwire/devwire.h>

/* The protocol ("\n"-terminated lines), answered the same way by
 * `dw-soak serve` and by the simulator script tests/soak/soak-sim.json:
 *   "REQ <client> <seq> <pad>"  ->  "ACK <client> <seq> <pad>"
 *   "BIG"                       ->  a SOAK_BIG_LEN byte reply of 'x'
 * Anything else is a protocol error for `dw-soak serve` (the connection is
 * closed) and unmatched for the simulator. */
#define SOAK_BIG_LEN ((size_t)1 << 20)

/* Monotonic clock. */
int64_t soak_now_ns(void);
void soak_sleep_ms(int ms);

/* Resident set size of `pid` in KiB from /proc/PID/status, or -1. */
long soak_rss_kib(pid_t pid);

/* "HOST:PORT" -> host (copied into host[0..hostlen)) and port. 0 or -1. */
int soak_parse_addr(const char *s, char *host, size_t hostlen, uint16_t *port);

/* Write the request for (client, seq) with `pad` filler bytes into `req`
 * and the expected reply into `want` (both replaced). */
void soak_request(dw_buf *req, dw_buf *want, unsigned client, uint64_t seq, size_t pad);

/* A raw blocking TCP connection to host:port with a receive timeout (ms;
 * 0 = none). The descriptor, or -errno. */
int soak_connect_raw(const char *host, uint16_t port, int timeout_ms);

/* Latency samples (ns), growing. Not thread-safe: one per thread, merged. */
typedef struct soak_lat {
    int64_t *v;
    size_t n, cap;
} soak_lat;

void soak_lat_add(soak_lat *l, int64_t ns);
void soak_lat_merge(soak_lat *into, const soak_lat *from);
/* Sorts in place; percentile p in [0,100] in microseconds (0 when empty). */
double soak_lat_pct_us(soak_lat *l, double p);
void soak_lat_free(soak_lat *l);

/* A logger that prefixes messages with the level, to stderr, one fputs per
 * line so that lines from different threads never interleave. */
void soak_log_fn(void *user, dw_log_level level, const char *message);

#endif
