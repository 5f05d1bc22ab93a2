/* A minimal HTTP/1.1 client for tests: see http_client.h. */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int connect_to(uint16_t port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Split the raw answer into status, headers and body. */
static int parse(dw_test_http_reply *r, char *raw, size_t n)
{
    char *end = strstr(raw, "\r\n\r\n");
    if (strncmp(raw, "HTTP/1.", 7) != 0 || !end) {
        snprintf(r->error, sizeof r->error, "not an HTTP answer (%zu bytes)", n);
        return 0;
    }
    r->status = atoi(raw + 9);
    size_t hlen = (size_t)(end - raw);
    r->headers = strndup(raw, hlen);
    r->body_len = n - hlen - 4;
    r->body = malloc(r->body_len + 1);
    if (!r->headers || !r->body)
        return r->status = 0;
    memcpy(r->body, end + 4, r->body_len);
    r->body[r->body_len] = 0;
    return r->status;
}

/* 1 when the header block `headers` ("Name: value\r\n" lines) names `name`. */
static int names(const char *headers, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = headers; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL)
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return 1;
    return 0;
}

int dw_test_http(uint16_t port, const char *method, const char *target, const char *extra_headers,
                 const char *body, size_t len, int timeout_ms, dw_test_http_reply *r)
{
    const char *extra = extra_headers ? extra_headers : "";
    char host[64] = "", type[64] = "", length[64] = "";
    if (!names(extra, "Host"))
        snprintf(host, sizeof host, "Host: 127.0.0.1:%u\r\n", (unsigned)port);
    if (body && len && !names(extra, "Content-Type"))
        snprintf(type, sizeof type, "Content-Type: application/json\r\n");
    if (body)
        snprintf(length, sizeof length, "Content-Length: %zu\r\n", len);
    char *head = NULL;
    int hn = asprintf(&head, "%s %s HTTP/1.1\r\n%sConnection: close\r\n%s%s%s\r\n", method, target,
                      host, extra, type, length);
    if (hn < 0) {
        memset(r, 0, sizeof *r);
        snprintf(r->error, sizeof r->error, "out of memory");
        return 0;
    }
    int status = dw_test_http_raw(port, head, (size_t)hn, body, body ? len : 0, timeout_ms, r);
    free(head);
    return status;
}

int dw_test_http_raw(uint16_t port, const char *head, size_t head_len, const char *body, size_t len,
                     int timeout_ms, dw_test_http_reply *r)
{
    memset(r, 0, sizeof *r);
    int fd = connect_to(port, timeout_ms);
    if (fd < 0) {
        snprintf(r->error, sizeof r->error, "connect 127.0.0.1:%u: %s", port, strerror(errno));
        return 0;
    }
    if (send_all(fd, head, head_len) != 0 || (body && len && send_all(fd, body, len) != 0)) {
        /* The server may answer (413) before taking the whole body. */
    }
    size_t cap = 65536, n = 0;
    char *raw = malloc(cap);
    for (;;) {
        if (!raw)
            break;
        if (n + 1 == cap) {
            char *bigger = realloc(raw, cap *= 2);
            if (!bigger)
                break;
            raw = bigger;
        }
        ssize_t got = recv(fd, raw + n, cap - n - 1, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got < 0 && n == 0)
                snprintf(r->error, sizeof r->error, "reading the answer: %s", strerror(errno));
            break;
        }
        n += (size_t)got;
    }
    close(fd);
    int status = 0;
    if (raw && n) {
        raw[n] = 0;
        status = parse(r, raw, n);
    } else if (!r->error[0]) {
        snprintf(r->error, sizeof r->error, "the server closed without answering");
    }
    free(raw);
    return status;
}

int dw_test_http_header(const dw_test_http_reply *r, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; p && (p = strstr(p, "\r\n")); p += 2)
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            snprintf(out, size, "%.*s", (int)len, v);
            return 1;
        }
    return 0;
}

void dw_test_http_reply_free(dw_test_http_reply *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

uint16_t dw_test_control_port(dw_sim_proc *p, int timeout_ms)
{
    static const char mark[] = "control on http://";
    if (!dw_sim_proc_wait_output(p, 0, mark, timeout_ms))
        return 0;
    const char *line = strstr((const char *)p->out.data, mark) + sizeof mark - 1;
    const char *colon = strchr(line, '\n');
    while (colon && colon > line && colon[-1] != ':')
        colon--;
    return colon ? (uint16_t)atoi(colon) : 0;
}
