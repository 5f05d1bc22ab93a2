/* devwire-sim --probe and --ask: see ask.h. */
#include "run/ask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/telnet.h>

#include "common/net.h"
#include "engine/engine.h"
#include "script/script.h"

static const char *prog = DW_SIM_PROG;

int dw_sim_run_probe(const dw_sim_cli *c)
{
    char *host;
    uint16_t port;
    if (dw_sim_parse_hostport(c->probe, &host, &port) != 0) {
        fprintf(stderr, "%s: --probe %s: expected HOST:PORT\n", prog, c->probe);
        return DW_SIM_EXIT_USAGE;
    }
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = host;
    o.port = port;
    o.connect_timeout_ms = c->timeout_ms;
    o.timeout_ms = c->timeout_ms;
    dw_client *tc = dw_tcp_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    int rc = tc ? dw_client_connect(tc, &s, &err) : dw_error_set(&err, DW_ENOMEM, "out of memory");
    dw_session_close(s);
    dw_client_free(tc);
    free(host);
    if (rc != DW_OK) {
        fprintf(stderr, "%s: probe: %s\n", prog, dw_error_message(&err));
        return DW_SIM_EXIT_CHECK;
    }
    printf("%s: accepting connections\n", c->probe);
    return DW_SIM_EXIT_OK;
}

/* What marks the end of the banner on the wire. A banner with no
 * placeholder is known byte for byte: its whole text, once. One with
 * placeholders (a state variable that may have changed since start) ends
 * with its last literal segment: wait for as many of those as its literal
 * text holds. No literal tail at all: give up on skipping (0). */
static size_t banner_end(const dw_sim_template *t, const dw_buf *rendered, const uint8_t **mark,
                         size_t *count)
{
    *count = 1;
    int fixed = 1;
    for (size_t i = 0; i < t->nsegs; i++)
        fixed &= t->segs[i].kind == DW_SIM_SEG_LITERAL;
    if (fixed) {
        *mark = rendered->data;
        return rendered->len;
    }
    const dw_sim_seg *last = t->nsegs ? &t->segs[t->nsegs - 1] : NULL;
    if (!last || last->kind != DW_SIM_SEG_LITERAL || last->literal.len == 0)
        return 0;
    *count = 0;
    for (size_t i = 0; i < t->nsegs; i++) {
        const dw_sim_bytes *lit = &t->segs[i].literal;
        for (size_t at = 0;
             t->segs[i].kind == DW_SIM_SEG_LITERAL && at + last->literal.len <= lit->len; at++)
            *count += memcmp(lit->data + at, last->literal.data, last->literal.len) == 0;
    }
    *mark = last->literal.data;
    return last->literal.len;
}

/* Read and drop the banner: everything up to and including the count-th
 * occurrence of `mark` (the sentinel framing finds it across any split). */
static int skip_banner(dw_session *s, const uint8_t *mark, size_t len, size_t count, dw_error *err)
{
    dw_marshaller *m = dw_sentinel_marshaller_new(mark, len);
    if (!m)
        return DW_ENOMEM;
    dw_buf junk = DW_BUF_INIT;
    int rc = DW_OK;
    for (size_t i = 0; i < count && rc == DW_OK; i++)
        rc = dw_unmarshall(m, dw_session_iter(s), &junk, err);
    if (rc != DW_OK)
        rc = dw_error_set(err, rc == DW_EOF ? DW_ETRUNCATED : rc, "reading the banner: %s",
                          dw_strerror(rc));
    dw_buf_free(&junk);
    dw_marshaller_free(m);
    return rc;
}

/* The banner an --ask client skips: its end on the wire (banner_end) and
 * whether there is one at all. */
typedef struct banner_mark {
    size_t banner_len; /* 0: the device sends no banner */
    const uint8_t *mark;
    size_t len, count; /* len 0: its end is not known */
} banner_mark;

/* The client of the script's transport (TCP or Telnet) at host:port, or
 * NULL when out of memory. A Telnet client reads the banner itself. */
static dw_client *transport_client(const dw_sim_script *script, const char *host, uint16_t port,
                                   int timeout_ms, const banner_mark *b)
{
    if (script->transport != DW_SIM_TELNET) {
        dw_tcp_client_options o;
        dw_tcp_client_options_init(&o);
        o.host = host;
        o.port = port;
        o.timeout_ms = timeout_ms;
        o.connect_timeout_ms = timeout_ms;
        return dw_tcp_client_new(&o);
    }
    dw_telnet_client_options o;
    dw_telnet_client_options_init(&o);
    o.tcp.host = host;
    o.tcp.port = port;
    o.tcp.timeout_ms = timeout_ms;
    o.tcp.connect_timeout_ms = timeout_ms;
    /* Read the banner up to its known end (its last literal text when
     * placeholders make the rest unpredictable), else until quiet. */
    if (b->len) {
        o.banner = DW_TELNET_BANNER_PROMPT;
        o.banner_prompt = b->mark;
        o.banner_prompt_len = b->len;
    } else if (b->banner_len) {
        o.banner = DW_TELNET_BANNER_QUIET;
    }
    return dw_telnet_client_new(&o);
}

/* Connect with the engine's framing, skip the banner, send the request
 * and print the reply: the exit status. */
static int exchange(const dw_sim_cli *c, const dw_sim_script *script, dw_sim_engine *e,
                    const char *host, uint16_t port, const banner_mark *b)
{
    dw_error err;
    dw_error_clear(&err);
    dw_client *tc = transport_client(script, host, port, c->timeout_ms, b);
    dw_app_client *ac = tc ? dw_app_client_new(tc, dw_sim_engine_request_marshaller(e),
                                               dw_sim_engine_response_marshaller(e))
                           : NULL;
    dw_app_session *as = NULL;
    dw_buf reply = DW_BUF_INIT;
    int status = DW_SIM_EXIT_CHECK;
    if (!ac) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto out;
    }
    int rc = dw_app_client_connect(ac, &as, &err);
    if (rc == DW_OK && script->transport != DW_SIM_TELNET && b->len)
        rc = skip_banner(dw_app_session_transport(as), b->mark, b->len, b->count, &err);
    if (rc == DW_OK)
        rc = dw_app_session_send_receive_bytes(as, c->request, strlen(c->request), &reply, &err);
    if (rc != DW_OK) {
        fprintf(stderr, "%s: ask %s: %s\n", prog, c->ask, dw_error_message(&err));
        goto out;
    }
    fwrite(reply.data ? (const void *)reply.data : "", 1, reply.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    status = DW_SIM_EXIT_OK;
out:
    dw_app_session_close(as);
    dw_app_client_free(ac);
    dw_client_free(tc);
    dw_buf_free(&reply);
    return status;
}

/* The engine that knows the script's framing and renders its banner, then
 * the exchange: the exit status. */
static int ask_with(const dw_sim_cli *c, const dw_sim_script *script, const char *host,
                    uint16_t port)
{
    if (script->transport == DW_SIM_UDP || script->transport == DW_SIM_SERIAL) {
        fprintf(stderr, "%s: --ask speaks TCP and Telnet; %s is a %s device\n", prog, c->script,
                script->transport == DW_SIM_UDP ? "UDP" : "serial");
        return DW_SIM_EXIT_USAGE;
    }
    dw_error err;
    dw_error_clear(&err);
    dw_sim_engine *e = NULL;
    dw_sim_session *ss = NULL;
    dw_buf banner = DW_BUF_INIT;
    int status;
    int rc = dw_sim_engine_new(script, &e, &err);
    if (rc != DW_OK || !(ss = dw_sim_session_new(e)) ||
        dw_sim_engine_banner(e, ss, &banner) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        status = DW_SIM_EXIT_USAGE;
    } else {
        banner_mark b = {banner.len, NULL, 0, 0};
        if (banner.len)
            b.len = banner_end(&script->banner, &banner, &b.mark, &b.count);
        status = exchange(c, script, e, host, port, &b);
    }
    dw_sim_session_free(ss);
    dw_sim_engine_free(e);
    dw_buf_free(&banner);
    return status;
}

int dw_sim_run_ask(const dw_sim_cli *c)
{
    char *host;
    uint16_t port;
    if (dw_sim_parse_hostport(c->ask, &host, &port) != 0) {
        fprintf(stderr, "%s: --ask %s: expected HOST:PORT\n", prog, c->ask);
        return DW_SIM_EXIT_USAGE;
    }
    dw_sim_script *script = dw_sim_cli_load(c->script);
    int status = script ? ask_with(c, script, host, port) : DW_SIM_EXIT_USAGE;
    dw_sim_script_free(script);
    free(host);
    return status;
}
