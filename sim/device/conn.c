/* devwire-sim's socket-level connection core: see conn.h. */
#include "device/conn.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

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

void dw__sim_peer_name(uv_tcp_t *t, char *out, size_t n)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0)
        dw_sim_addr_format((struct sockaddr *)&ss, out, n);
    else
        snprintf(out, n, "?");
}
