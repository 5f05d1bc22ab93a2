/* devwire-sim's sockets: see net.h. */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* One candidate address: socket, bind, listen. The socket, or -1 with
 * `err` naming the call that failed. */
static int try_bind(const struct addrinfo *ai, int type, int backlog, const char *addr,
                    dw_error *err)
{
    const char *what = "socket";
    int s = socket(ai->ai_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s >= 0) {
        int one = 1;
        if (type == SOCK_STREAM)
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        what = "bind";
        if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0) {
            what = "listen";
            if (type != SOCK_STREAM || listen(s, backlog) == 0)
                return s;
        }
    }
    int e = errno;
    dw_error_set(err, -e, "%s %s: %s", what, addr, strerror(e));
    if (s >= 0)
        close(s);
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
        *fd = try_bind(ai, type, backlog, addr, err);
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
