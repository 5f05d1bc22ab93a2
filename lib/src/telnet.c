/* The Telnet filter: libtelnet does the parsing and the RFC 1143
 * negotiation; this file turns its events into a dw_iter of data bytes and
 * one write per burst of outgoing bytes. */
#include "devwire/telnet.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libtelnet.h uses size_t without including <stddef.h> itself. */
#include <stddef.h>
#include <libtelnet.h>

struct dw_telnet {
    dw_iter base; /* the filtered iterator; first, so a dw_iter * is a dw_telnet * */
    dw_iter *inner;
    telnet_t *tn;
    telnet_telopt_t *table; /* libtelnet's option table, ended by telopt -1 */
    dw_telnet_options opts;
    char name[64];
    dw_telnet_write_fn write;
    void *write_user;
    /* Serialises libtelnet and the write callback between the reader and
     * senders on other threads. Never held while reading `inner`. */
    pthread_mutex_t lock;
    dw_buf data;  /* data bytes of the chunk returned last (reader only) */
    dw_buf *sink; /* where TELNET_EV_DATA bytes go: &data, or dw_telnet_feed's buffer */
    dw_buf out;   /* outgoing bytes collected from TELNET_EV_SEND events */
    int failed;   /* sticky: DW_EPROTO or a write error; 0 while healthy */
    int write_failed;
    int in_recv;     /* inside telnet_recv on the reader's behalf */
    size_t out_mark; /* data.len when the first byte of `out` was due */
    char message[256];
    uint8_t local[32]; /* bit per option: in effect on our side */
    uint8_t remote[32];
    int after_cr; /* cr_nul: the last data byte was a CR */
};

/* libtelnet's TELNET_TELOPT_* names, lowercase. */
static const char *const option_names[256] = {
    [0] = "binary",
    [1] = "echo",
    [2] = "rcp",
    [3] = "sga",
    [4] = "nams",
    [5] = "status",
    [6] = "tm",
    [7] = "rcte",
    [8] = "naol",
    [9] = "naop",
    [10] = "naocrd",
    [11] = "naohts",
    [12] = "naohtd",
    [13] = "naoffd",
    [14] = "naovts",
    [15] = "naovtd",
    [16] = "naolfd",
    [17] = "xascii",
    [18] = "logout",
    [19] = "bm",
    [20] = "det",
    [21] = "supdup",
    [22] = "supdupoutput",
    [23] = "sndloc",
    [24] = "ttype",
    [25] = "eor",
    [26] = "tuid",
    [27] = "outmrk",
    [28] = "ttyloc",
    [29] = "3270regime",
    [30] = "x3pad",
    [31] = "naws",
    [32] = "tspeed",
    [33] = "lflow",
    [34] = "linemode",
    [35] = "xdisploc",
    [36] = "environ",
    [37] = "authentication",
    [38] = "encrypt",
    [39] = "new_environ",
    [70] = "mssp",
    [86] = "compress2",
    [93] = "zmp",
    [255] = "exopl",
};

const char *dw_telnet_option_name(uint8_t n)
{
    return option_names[n];
}

int dw_telnet_option_by_name(const char *name)
{
    for (int i = 0; name && i < 256; i++)
        if (option_names[i] && strcmp(option_names[i], name) == 0)
            return i;
    return -1;
}

void dw_telnet_options_init(dw_telnet_options *o)
{
    memset(o, 0, sizeof *o);
    o->echo = 1;
    o->sga = 1;
    o->binary = 1;
}

static void set_bit(uint8_t *bits, unsigned char opt, int on)
{
    if (on)
        bits[opt / 8] = (uint8_t)(bits[opt / 8] | (1u << (opt % 8)));
    else
        bits[opt / 8] = (uint8_t)(bits[opt / 8] & ~(1u << (opt % 8)));
}

static int get_bit(const uint8_t *bits, uint8_t opt)
{
    return (bits[opt / 8] >> (opt % 8)) & 1;
}

static const char *option_name(unsigned char opt)
{
    switch (opt) {
    case TELNET_TELOPT_BINARY:
        return "BINARY";
    case TELNET_TELOPT_ECHO:
        return "ECHO";
    case TELNET_TELOPT_SGA:
        return "SGA";
    case TELNET_TELOPT_STATUS:
        return "STATUS";
    case TELNET_TELOPT_TM:
        return "TIMING-MARK";
    case TELNET_TELOPT_TTYPE:
        return "TERMINAL-TYPE";
    case TELNET_TELOPT_NAWS:
        return "NAWS";
    case TELNET_TELOPT_TSPEED:
        return "TERMINAL-SPEED";
    case TELNET_TELOPT_LFLOW:
        return "LFLOW";
    case TELNET_TELOPT_LINEMODE:
        return "LINEMODE";
    case TELNET_TELOPT_XDISPLOC:
        return "XDISPLOC";
    case TELNET_TELOPT_ENVIRON:
        return "ENVIRON";
    case TELNET_TELOPT_AUTHENTICATION:
        return "AUTHENTICATION";
    case TELNET_TELOPT_ENCRYPT:
        return "ENCRYPT";
    case TELNET_TELOPT_NEW_ENVIRON:
        return "NEW-ENVIRON";
    case TELNET_TELOPT_COMPRESS2:
        return "COMPRESS2";
    default:
        return "option";
    }
}

/* Record the first failure; later ones are consequences of it. */
static void fail(dw_telnet *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(dw_telnet *t, int code, const char *fmt, ...)
{
    if (t->failed)
        return;
    t->failed = code;
    int n = snprintf(t->message, sizeof t->message, "telnet %s: ", t->name);
    if (n < 0 || (size_t)n >= sizeof t->message)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->message + n, sizeof t->message - (size_t)n, fmt, ap);
    va_end(ap);
    dw_log(t->opts.logger, DW_LOG_DEBUG, "%s", t->message);
}

static void negotiated(dw_telnet *t, const char *what, unsigned char opt)
{
    if (dw_log_enabled(t->opts.logger, DW_LOG_DEBUG))
        dw_log(t->opts.logger, DW_LOG_DEBUG, "telnet %s: %s %s (%u)", t->name, what,
               option_name(opt), (unsigned)opt);
}

/* Write what libtelnet produced. Called with the lock held. Answers to
 * commands that came before a protocol failure still go out (nothing is
 * collected after it), and a failed write ends the data where its first
 * answer was due: so what is read and written does not depend on where the
 * chunks were cut. After a failed write nothing more is tried. */
static int flush_out(dw_telnet *t)
{
    int rc = DW_OK;
    if (t->out.len && !t->write_failed) {
        rc = t->write(t->write_user, t->out.data, t->out.len);
        if (rc != DW_OK) {
            t->write_failed = 1;
            if (t->in_recv)
                dw_buf_truncate(t->sink, t->out_mark);
            fail(t, rc, "sending to the peer: %s", dw_strerror(rc));
        }
    }
    dw_buf_clear(&t->out);
    return rc;
}

/* A failure in the stream: answers due before it leave first. */
static void protocol_error(dw_telnet *t, const char *what)
{
    if (t->failed)
        return;
    flush_out(t);
    fail(t, DW_EPROTO, "%s", what);
}

/* Data bytes to the sink. With cr_nul, outside BINARY from the peer, the
 * NUL of a CR NUL is dropped (RFC 854: a bare CR), even when the CR came in
 * an earlier event. */
static int append_data(dw_telnet *t, const uint8_t *p, size_t n)
{
    if (!t->opts.cr_nul || get_bit(t->remote, TELNET_TELOPT_BINARY)) {
        t->after_cr = 0;
        return dw_buf_append(t->sink, p, n);
    }
    size_t i = t->after_cr && n && p[0] == 0;
    while (i < n) {
        const uint8_t *cr = memchr(p + i, '\r', n - i);
        size_t end = cr ? (size_t)(cr - p) + 1 : n;
        if (dw_buf_append(t->sink, p + i, end - i) != DW_OK)
            return DW_ENOMEM;
        i = end + (cr && end < n && p[end] == 0);
    }
    t->after_cr = n && p[n - 1] == '\r';
    return DW_OK;
}

static void on_event(telnet_t *tn, telnet_event_t *ev, void *user)
{
    (void)tn;
    dw_telnet *t = user;
    switch (ev->type) {
    case TELNET_EV_DATA:
        /* ev->data.buffer points into libtelnet's input (or a byte on its
         * stack): copy it out now. After a failure the rest of the stream
         * means nothing. */
        if (!t->failed && append_data(t, (const uint8_t *)ev->data.buffer, ev->data.size) != DW_OK)
            fail(t, DW_ENOMEM, "out of memory");
        break;
    case TELNET_EV_SEND:
        if (t->failed)
            break;
        if (t->out.len == 0)
            t->out_mark = t->sink->len;
        if (dw_buf_append(&t->out, ev->data.buffer, ev->data.size) != DW_OK)
            fail(t, DW_ENOMEM, "out of memory");
        break;
    case TELNET_EV_WILL:
        set_bit(t->remote, ev->neg.telopt, 1);
        negotiated(t, "peer will", ev->neg.telopt);
        break;
    case TELNET_EV_WONT:
        set_bit(t->remote, ev->neg.telopt, 0);
        negotiated(t, "peer won't", ev->neg.telopt);
        break;
    case TELNET_EV_DO:
        set_bit(t->local, ev->neg.telopt, 1);
        negotiated(t, "we will", ev->neg.telopt);
        break;
    case TELNET_EV_DONT:
        set_bit(t->local, ev->neg.telopt, 0);
        negotiated(t, "we won't", ev->neg.telopt);
        break;
    case TELNET_EV_COMPRESS:
        /* libtelnet starts inflating whenever the peer sends IAC SB
         * COMPRESS2 IAC SE, agreed or not; we never agree to it, so a
         * compressed stream is a peer we cannot follow. */
        if (ev->compress.state)
            protocol_error(t, "peer started MCCP2 compression, which was not negotiated");
        break;
    case TELNET_EV_WARNING:
        /* Past its 16 KiB subnegotiation buffer libtelnet drops back to
         * the data state mid-subnegotiation, so the rest of it would reach
         * the application as data: refuse the stream instead. The event
         * carries no usable code, only this text. */
        if (ev->error.msg && strstr(ev->error.msg, "buffer size limit")) {
            protocol_error(t, "subnegotiation longer than libtelnet's 16 KiB buffer");
            break;
        }
        if (dw_log_enabled(t->opts.logger, DW_LOG_DEBUG))
            dw_log(t->opts.logger, DW_LOG_DEBUG, "telnet %s: ignored: %s", t->name, ev->error.msg);
        break;
    case TELNET_EV_ERROR:
        /* ev->error.errcode is never filled in by libtelnet: keep the text. */
        protocol_error(t, ev->error.msg ? ev->error.msg : "protocol error");
        break;
    default:
        /* IAC commands (NOP, GA, AYT, ...), subnegotiations of options we
         * refused (TTYPE, ENVIRON, ZMP, MSSP): nothing to do. */
        break;
    }
}

/* Run received bytes through libtelnet: data bytes are appended to `sink`,
 * answers leave through the write callback. */
static void receive(dw_telnet *t, const uint8_t *p, size_t n, dw_buf *sink)
{
    pthread_mutex_lock(&t->lock);
    if (!t->failed) {
        t->sink = sink;
        t->in_recv = 1;
        telnet_recv(t->tn, (const char *)p, n);
        flush_out(t);
        t->in_recv = 0;
        t->sink = &t->data;
    }
    pthread_mutex_unlock(&t->lock);
}

static int filter_pull(dw_iter *base, const uint8_t **data, size_t *len)
{
    dw_telnet *t = (dw_telnet *)base;
    dw_buf_clear(&t->data);
    for (;;) {
        pthread_mutex_lock(&t->lock);
        int failed = t->failed; /* a sender on another thread may set it */
        pthread_mutex_unlock(&t->lock);
        if (failed)
            return failed;
        if (!t->inner)
            return DW_EINVAL;
        const uint8_t *p;
        size_t n;
        int rc = dw_iter_next(t->inner, &p, &n);
        if (rc != DW_OK)
            return rc;
        receive(t, p, n, &t->data);
        /* Data first; a failure met after it is returned by the next pull. */
        if (t->data.len) {
            *data = t->data.data;
            *len = t->data.len;
            return DW_OK;
        }
    }
}

/* The table from `will` and `ask`: every option in either, in order. */
static telnet_telopt_t *custom_table(const dw_telnet_options *o)
{
    size_t n = 0;
    for (int k = 0; k < 256; k++)
        n += dw_telnet_option_isset(o->will, (uint8_t)k) ||
             dw_telnet_option_isset(o->ask, (uint8_t)k);
    telnet_telopt_t *tab = calloc(n + 1, sizeof *tab);
    if (!tab)
        return NULL;
    size_t i = 0;
    for (int k = 0; k < 256; k++) {
        int us = dw_telnet_option_isset(o->will, (uint8_t)k);
        int him = dw_telnet_option_isset(o->ask, (uint8_t)k);
        if (us || him)
            tab[i++] = (telnet_telopt_t){(short)k, (unsigned char)(us ? TELNET_WILL : TELNET_WONT),
                                         (unsigned char)(him ? TELNET_DO : TELNET_DONT)};
    }
    tab[i] = (telnet_telopt_t){-1, 0, 0};
    return tab;
}

static int build_table(dw_telnet *t)
{
    const dw_telnet_options *o = &t->opts;
    if (o->table)
        return (t->table = custom_table(o)) ? DW_OK : DW_ENOMEM;
    if (!(t->table = calloc(4, sizeof *t->table)))
        return DW_ENOMEM;
    size_t i = 0;
    if (o->binary)
        t->table[i++] = (telnet_telopt_t){TELNET_TELOPT_BINARY, TELNET_WILL, TELNET_DO};
    if (o->echo) {
        if (o->server)
            t->table[i++] = (telnet_telopt_t){TELNET_TELOPT_ECHO, TELNET_WILL, TELNET_DONT};
        else
            t->table[i++] = (telnet_telopt_t){TELNET_TELOPT_ECHO, TELNET_WONT, TELNET_DO};
    }
    if (o->sga)
        t->table[i++] = (telnet_telopt_t){TELNET_TELOPT_SGA, TELNET_WILL, TELNET_DO};
    t->table[i] = (telnet_telopt_t){-1, 0, 0};
    return DW_OK;
}

dw_telnet *dw_telnet_new(const dw_telnet_options *o, dw_iter *inner, dw_telnet_write_fn write,
                         void *user)
{
    if (!write)
        return NULL;
    dw_telnet *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (o)
        t->opts = *o;
    else
        dw_telnet_options_init(&t->opts);
    snprintf(t->name, sizeof t->name, "%s", o && o->name ? o->name : "telnet peer");
    t->opts.name = t->name;
    if (build_table(t) != DW_OK) {
        free(t);
        return NULL;
    }
    dw_iter_init(&t->base, filter_pull);
    t->sink = &t->data;
    t->inner = inner;
    t->write = write;
    t->write_user = user;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->table);
        free(t);
        return NULL;
    }
    /* libtelnet's proxy mode answers nothing and reports every command. */
    t->tn = telnet_init(t->table, on_event, t->opts.observe ? TELNET_FLAG_PROXY : 0, t);
    if (!t->tn) {
        pthread_mutex_destroy(&t->lock);
        free(t->table);
        free(t);
        return NULL;
    }
    return t;
}

void dw_telnet_free(dw_telnet *t)
{
    if (!t)
        return;
    telnet_free(t->tn);
    free(t->table);
    pthread_mutex_destroy(&t->lock);
    dw_buf_free(&t->data);
    dw_buf_free(&t->out);
    free(t);
}

int dw_telnet_start(dw_telnet *t)
{
    if (!t->opts.server || t->opts.observe)
        return DW_OK;
    pthread_mutex_lock(&t->lock);
    if (t->opts.table) {
        for (int k = 0; k < 256; k++) {
            if (dw_telnet_option_isset(t->opts.will, (uint8_t)k))
                telnet_negotiate(t->tn, TELNET_WILL, (unsigned char)k);
            if (dw_telnet_option_isset(t->opts.ask, (uint8_t)k))
                telnet_negotiate(t->tn, TELNET_DO, (unsigned char)k);
        }
    } else {
        if (t->opts.sga)
            telnet_negotiate(t->tn, TELNET_WILL, TELNET_TELOPT_SGA);
        if (t->opts.echo)
            telnet_negotiate(t->tn, TELNET_WILL, TELNET_TELOPT_ECHO);
    }
    int rc = flush_out(t);
    if (rc == DW_OK && t->failed)
        rc = t->failed;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int dw_telnet_feed(dw_telnet *t, const uint8_t *p, size_t n, dw_buf *data)
{
    if (n)
        receive(t, p, n, data);
    pthread_mutex_lock(&t->lock);
    int failed = t->failed;
    pthread_mutex_unlock(&t->lock);
    return failed;
}

dw_iter *dw_telnet_iter(dw_telnet *t)
{
    return &t->base;
}

dw_iter *dw_telnet_wrap(dw_telnet *t, dw_iter *inner)
{
    t->inner = inner;
    return &t->base;
}

int dw_telnet_escape(const void *p, size_t n, dw_buf *out)
{
    if (n == 0)
        return DW_OK; /* `out` may have no storage yet */
    const uint8_t *s = p;
    size_t extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += s[i] == TELNET_IAC;
    int rc = dw_buf_reserve(out, n + extra);
    if (rc != DW_OK)
        return rc;
    uint8_t *d = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        *d++ = s[i];
        if (s[i] == TELNET_IAC)
            *d++ = TELNET_IAC;
    }
    out->len += n + extra;
    return DW_OK;
}

int dw_telnet_send(dw_telnet *t, const void *p, size_t n)
{
    if (n == 0)
        return DW_OK;
    pthread_mutex_lock(&t->lock);
    int rc;
    if (t->failed) {
        rc = t->failed;
    } else if (!memchr(p, TELNET_IAC, n)) {
        /* Nothing to escape: no copy. */
        rc = t->write(t->write_user, p, n);
        if (rc != DW_OK) {
            t->write_failed = 1;
            fail(t, rc, "sending to the peer: %s", dw_strerror(rc));
        }
    } else {
        /* telnet_send emits one SEND event per run between IACs; they are
         * collected in `out` and leave in one write. */
        telnet_send(t->tn, p, n);
        rc = flush_out(t);
        if (rc == DW_OK && t->failed)
            rc = t->failed;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static int enabled(const dw_telnet *t, int local, uint8_t option)
{
    /* The reader updates the bits under the lock; take it to read them from
     * any thread. The lock is not part of the logical state. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&t->lock;
    pthread_mutex_lock(lock);
    int on = get_bit(local ? t->local : t->remote, option);
    pthread_mutex_unlock(lock);
    return on;
}

int dw_telnet_local_enabled(const dw_telnet *t, uint8_t option)
{
    return enabled(t, 1, option);
}

int dw_telnet_remote_enabled(const dw_telnet *t, uint8_t option)
{
    return enabled(t, 0, option);
}

const char *dw_telnet_error_message(const dw_telnet *t)
{
    return t->message;
}
