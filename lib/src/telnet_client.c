/* Telnet transport client: a TCP session with the Telnet filter between it
 * and the application, and the banner read once at connect. */
#include "devwire/telnet.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct telnet_client {
    dw_client base;
    dw_client *tcp;
    dw_telnet_client_options o; /* banner_prompt points to `prompt` */
    uint8_t *prompt;
} telnet_client;

typedef struct telnet_session {
    dw_session base;
    dw_session *tcp;
    dw_telnet *t;
    dw_buf banner;
    dw_error write_err; /* what the TCP session said when a write failed */
} telnet_session;

static const dw_session_ops session_ops;

void dw_telnet_client_options_init(dw_telnet_client_options *o)
{
    memset(o, 0, sizeof *o);
    dw_tcp_client_options_init(&o->tcp);
    dw_telnet_options_init(&o->telnet);
    o->banner = DW_TELNET_BANNER_NONE;
    o->banner_quiet_ms = 200;
    o->banner_max = 65536;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int tcp_write(void *user, const uint8_t *p, size_t n)
{
    telnet_session *s = user;
    return dw_session_send(s->tcp, p, n, &s->write_err);
}

static int session_send(dw_session *base, const uint8_t *p, size_t n, dw_error *err)
{
    telnet_session *s = (telnet_session *)base;
    dw_error_clear(&s->write_err);
    int rc = dw_telnet_send(s->t, p, n);
    if (rc == DW_OK)
        return rc;
    if (s->write_err.code != DW_OK)
        return dw_error_set(err, rc, "%s", s->write_err.message);
    return dw_error_set(err, rc, "%s", dw_telnet_error_message(s->t));
}

static dw_iter *session_iter(dw_session *base)
{
    return dw_telnet_iter(((telnet_session *)base)->t);
}

static const char *session_peer(dw_session *base)
{
    return dw_session_peer(((telnet_session *)base)->tcp);
}

static void session_close(dw_session *base)
{
    telnet_session *s = (telnet_session *)base;
    dw_telnet_free(s->t);
    dw_session_close(s->tcp);
    dw_buf_free(&s->banner);
    free(s);
}

static const dw_session_ops session_ops = {
    .send = session_send,
    .iter = session_iter,
    .close = session_close,
    .peer = session_peer,
};

/* The error of a failed banner read, named after the connection. */
static int banner_error(telnet_session *s, const telnet_client *c, int rc, dw_error *err)
{
    const char *peer = dw_session_peer(s->tcp);
    const char *what = c->o.banner == DW_TELNET_BANNER_PROMPT ? "no prompt" : "never quiet";
    if (rc == DW_ETIMEDOUT)
        return dw_error_set(err, rc, "telnet banner from %s: %s within %d ms", peer, what,
                            c->o.tcp.timeout_ms);
    if (rc == DW_EOF)
        return dw_error_set(err, DW_ETRUNCATED,
                            "telnet banner from %s: connection closed after %zu bytes", peer,
                            s->banner.len);
    if (rc == DW_ETOOBIG)
        return dw_error_set(err, rc, "telnet banner from %s: longer than %zu bytes (%s)", peer,
                            c->o.banner_max, what);
    const char *msg = dw_telnet_error_message(s->t);
    if (*msg)
        return dw_error_set(err, rc, "%s", msg);
    if (s->write_err.code != DW_OK)
        return dw_error_set(err, rc, "%s", s->write_err.message);
    return dw_error_set(err, rc, "telnet banner from %s: %s", peer, dw_strerror(rc));
}

/* Read the banner into s->banner. The whole of it must arrive within the
 * TCP timeout; the socket's timeout is lowered for each read and put back. */
static int read_banner(telnet_session *s, const telnet_client *c, dw_error *err)
{
    const dw_telnet_client_options *o = &c->o;
    dw_iter *it = dw_telnet_iter(s->t);
    const int timeout = o->tcp.timeout_ms;
    const int64_t deadline = timeout >= 0 ? now_ms() + timeout : 0;
    int rc = DW_OK;
    for (;;) {
        int wait = o->banner == DW_TELNET_BANNER_QUIET ? o->banner_quiet_ms : timeout;
        if (timeout >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                rc = DW_ETIMEDOUT;
                break;
            }
            if (wait < 0 || left < wait)
                wait = (int)left;
        }
        rc = dw_tcp_session_set_timeout(s->tcp, wait);
        if (rc != DW_OK)
            break;
        const uint8_t *p;
        size_t n;
        rc = dw_iter_next(it, &p, &n);
        if (rc == DW_ETIMEDOUT && o->banner == DW_TELNET_BANNER_QUIET &&
            wait == o->banner_quiet_ms) {
            rc = DW_OK; /* quiet long enough: the banner is over */
            break;
        }
        if (rc != DW_OK)
            break;
        size_t before = s->banner.len;
        rc = dw_buf_append(&s->banner, p, n);
        if (rc != DW_OK)
            break;
        if (o->banner == DW_TELNET_BANNER_PROMPT) {
            /* Resume the search where a prompt split across chunks could
             * start; a match must end in the new chunk, so whatever follows
             * it is the tail of that chunk and goes back to the iterator. */
            size_t plen = o->banner_prompt_len;
            size_t from = before >= plen - 1 ? before - (plen - 1) : 0;
            const uint8_t *hit = NULL;
            if (s->banner.len >= plen)
                hit = memmem(s->banner.data + from, s->banner.len - from, o->banner_prompt, plen);
            if (hit) {
                size_t end = (size_t)(hit - s->banner.data) + plen;
                dw_iter_unread(it, s->banner.len - end);
                dw_buf_truncate(&s->banner, end);
                break;
            }
        }
        if (s->banner.len > o->banner_max) {
            rc = DW_ETOOBIG;
            break;
        }
    }
    int rc2 = dw_tcp_session_set_timeout(s->tcp, timeout);
    if (rc == DW_OK)
        rc = rc2;
    if (rc != DW_OK)
        return banner_error(s, c, rc, err);
    if (dw_buf_nul_terminate(&s->banner) != DW_OK)
        return dw_error_set(err, DW_ENOMEM, "telnet banner: out of memory");
    return DW_OK;
}

static int client_connect(dw_client *base, dw_session **out, dw_error *err)
{
    telnet_client *c = (telnet_client *)base;
    dw_session *tcp;
    int rc = dw_client_connect(c->tcp, &tcp, err);
    if (rc != DW_OK)
        return rc;
    telnet_session *s = calloc(1, sizeof *s);
    if (!s) {
        dw_session_close(tcp);
        return dw_error_set(err, DW_ENOMEM, "connect: out of memory");
    }
    s->base.ops = &session_ops;
    s->tcp = tcp;
    dw_telnet_options opts = c->o.telnet;
    opts.name = dw_session_peer(tcp);
    if (!opts.logger)
        opts.logger = c->o.tcp.logger;
    s->t = dw_telnet_new(&opts, dw_session_iter(tcp), tcp_write, s);
    if (!s->t) {
        session_close(&s->base);
        return dw_error_set(err, DW_ENOMEM, "connect: out of memory");
    }
    rc = dw_telnet_start(s->t);
    if (rc == DW_OK && c->o.banner != DW_TELNET_BANNER_NONE)
        rc = read_banner(s, c, err);
    else if (rc != DW_OK)
        dw_error_set(err, rc, "%s", s->write_err.message);
    if (rc == DW_OK)
        rc = dw_buf_nul_terminate(&s->banner);
    if (rc != DW_OK) {
        session_close(&s->base);
        return rc;
    }
    dw_log(c->o.tcp.logger, DW_LOG_DEBUG, "telnet %s: connected, banner of %zu bytes", opts.name,
           s->banner.len);
    *out = &s->base;
    return DW_OK;
}

static void client_free(dw_client *base)
{
    telnet_client *c = (telnet_client *)base;
    dw_client_free(c->tcp);
    free(c->prompt);
    free(c);
}

static const dw_client_ops client_ops = {
    .connect = client_connect,
    .free = client_free,
};

dw_client *dw_telnet_client_new(const dw_telnet_client_options *o)
{
    if (!o || !o->tcp.host)
        return NULL;
    if (o->banner == DW_TELNET_BANNER_PROMPT && (!o->banner_prompt || !o->banner_prompt_len))
        return NULL;
    if (o->banner == DW_TELNET_BANNER_QUIET && o->banner_quiet_ms <= 0)
        return NULL;
    telnet_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base.ops = &client_ops;
    c->o = *o;
    c->o.telnet.name = NULL;
    c->o.telnet.server = 0; /* this is the client side, whatever was asked */
    if (!c->o.banner_max)
        c->o.banner_max = 65536;
    if (o->banner == DW_TELNET_BANNER_PROMPT) {
        c->prompt = malloc(o->banner_prompt_len);
        if (!c->prompt) {
            free(c);
            return NULL;
        }
        memcpy(c->prompt, o->banner_prompt, o->banner_prompt_len);
        c->o.banner_prompt = c->prompt;
    } else {
        c->o.banner_prompt = NULL;
        c->o.banner_prompt_len = 0;
    }
    c->tcp = dw_tcp_client_new(&o->tcp);
    if (!c->tcp) {
        free(c->prompt);
        free(c);
        return NULL;
    }
    c->o.tcp.host = NULL; /* copied by the TCP client; not kept here */
    return &c->base;
}

const dw_buf *dw_telnet_session_banner(dw_session *s)
{
    if (!s || s->ops != &session_ops)
        return NULL;
    return &((telnet_session *)s)->banner;
}

dw_telnet *dw_telnet_session_filter(dw_session *s)
{
    if (!s || s->ops != &session_ops)
        return NULL;
    return ((telnet_session *)s)->t;
}
