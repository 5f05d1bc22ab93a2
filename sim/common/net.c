/* devwire-sim's sockets: see net.h. */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int dw_sim_parse_hostport(const char *s, char **host, uint16_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
    }
    char *endp;
    long p = strtol(colon + 1, &endp, 10);
    if (colon[1] == '\0' || *endp != '\0' || p < 0 || p > 65535 || hlen == 0)
        return -1;
    *host = strndup(h, hlen);
    *port = (uint16_t)p;
    return *host ? 0 : -1;
}

void dw_sim_addr_format(const struct sockaddr *sa, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, n, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, n, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    } else {
        snprintf(out, n, "?");
    }
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

static void set_port(struct sockaddr *sa, uint16_t port)
{
    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
    else if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
}

/* One candidate address: socket, bind, listen. The socket, or -1 with
 * `err` naming the call that failed and errno its error. */
static int try_bind(const struct sockaddr *sa, socklen_t salen, int type, int backlog,
                    const char *addr, dw_error *err)
{
    const char *what = "socket";
    int s = socket(sa->sa_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s >= 0) {
        int one = 1;
        if (type == SOCK_STREAM)
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        what = "bind";
        if (bind(s, sa, salen) == 0) {
            what = "listen";
            if (type != SOCK_STREAM || listen(s, backlog) == 0)
                return s;
        }
    }
    int e = errno;
    dw_error_set(err, -e, "%s %s: %s", what, addr, strerror(e));
    if (s >= 0)
        close(s);
    errno = e;
    return -1;
}

/* Port 0: the ports this process hands out go up, two at a time, from a
 * random odd port of the local port range (the kernel's choice for bind,
 * leaving the even ones to connect). The kernel's own search for a free
 * port walks the ports already bound, so with thousands of devices it cost
 * most of the start (10,000 devices: 9 s); a port taken already costs one
 * failed bind here. */
#define PORT_TRIES 64
static unsigned port_lo = 32768, port_span = 28232, port_start;
static pthread_once_t port_once = PTHREAD_ONCE_INIT;
static atomic_uint port_taken; /* ports handed out so far */

static void port_range(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    unsigned lo, hi;
    if (f && fscanf(f, "%u %u", &lo, &hi) == 2 && lo >= 1024 && hi <= 65535 && hi > lo + 64) {
        port_lo = lo;
        port_span = hi - lo + 1;
    }
    if (f)
        fclose(f);
    unsigned r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (unsigned)getpid() * 2654435761u;
    port_start = r % port_span;
}

static uint16_t next_port(void)
{
    pthread_once(&port_once, port_range);
    unsigned off = (port_start + 2 * atomic_fetch_add(&port_taken, 1)) % port_span;
    unsigned port = port_lo + off;
    if ((port & 1) == 0)
        port = port + 1 < port_lo + port_span ? port + 1 : port - 1;
    return (uint16_t)port;
}

/* Bind ai's address on a port of our choosing (see next_port): the socket,
 * or -1 when PORT_TRIES ports were taken or the address fails for another
 * reason (the caller then lets the kernel choose, and reports its error). */
static int bind_any_port(const struct addrinfo *ai, int type, int backlog, const char *addr)
{
    struct sockaddr_storage ss;
    if (ai->ai_addrlen > sizeof ss)
        return -1;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    for (int k = 0; k < PORT_TRIES; k++) {
        set_port((struct sockaddr *)&ss, next_port());
        int s = try_bind((struct sockaddr *)&ss, ai->ai_addrlen, type, backlog, addr, NULL);
        if (s >= 0 || errno != EADDRINUSE)
            return s;
    }
    return -1;
}

int dw_sim_net_bind(const char *host, uint16_t port, int type, int backlog, int *fd,
                    char addr[DW_SIM_ADDR_MAX], uint16_t *bound, dw_error *err)
{
    *fd = -1;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = type;
    hints.ai_flags = AI_PASSIVE;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0)
        return dw_error_set(err, DW_ENOTFOUND, "%s: %s", host, gai_strerror(g));
    for (const struct addrinfo *ai = res; ai && *fd < 0; ai = ai->ai_next) {
        dw_sim_addr_format(ai->ai_addr, addr, DW_SIM_ADDR_MAX);
        if (port == 0 && (ai->ai_family == AF_INET || ai->ai_family == AF_INET6))
            *fd = bind_any_port(ai, type, backlog, addr);
        if (*fd < 0)
            *fd = try_bind(ai->ai_addr, ai->ai_addrlen, type, backlog, addr, err);
    }
    freeaddrinfo(res);
    if (*fd < 0)
        return err ? err->code : DW_EIO;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(*fd, (struct sockaddr *)&ss, &len) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return dw_error_set(err, -e, "getsockname %s: %s", addr, strerror(e));
    }
    dw_sim_addr_format((struct sockaddr *)&ss, addr, DW_SIM_ADDR_MAX);
    *bound = port_of(&ss);
    return DW_OK;
}

int dw_sim_net_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6)
        return 0;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

int dw_sim_net_check_loopback(const char *host, dw_error *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(host, "0", &hints, &res);
    if (g != 0)
        return dw_error_set(err, DW_EINVAL, "cannot resolve \"%s\": %s", host, gai_strerror(g));
    int rc = res ? DW_OK : dw_error_set(err, DW_EINVAL, "\"%s\" resolves to no address", host);
    for (const struct addrinfo *ai = res; ai && rc == DW_OK; ai = ai->ai_next) {
        if (dw_sim_net_is_loopback(ai->ai_addr))
            continue;
        char addr[INET6_ADDRSTRLEN] = "?";
        getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
        rc = dw_error_set(err, DW_EINVAL, "\"%s\" resolves to %s, which is not loopback", host,
                          addr);
    }
    freeaddrinfo(res);
    return rc;
}

int dw_sim_net_bound_loopback(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
           dw_sim_net_is_loopback((struct sockaddr *)&ss);
}
