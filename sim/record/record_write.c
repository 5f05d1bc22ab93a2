/* devwire-sim --record: a conversation written as a script, formatted for
 * people (one rule per line, keys in the order docs/sim.md lists them). See
 * record.h. */
#include "record/record_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/transcript.h"

typedef struct writer {
    dw_buf *out;
    int rc;
} writer;

static void put(writer *w, const char *s)
{
    if (w->rc == DW_OK)
        w->rc = dw_buf_append_str(w->out, s);
}

static void putf(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(writer *w, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    put(w, buf);
}

static void put_string(writer *w, const char *s, size_t n)
{
    if (w->rc == DW_OK)
        w->rc = dw_sim_json_string(w->out, s, n);
}

static int is_text(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((p[i] < 0x20 || p[i] > 0x7e) && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return 0;
    return 1;
}

/* Bytes as a JSON string when they are text, else {"hex": ...}. In a
 * template (a reply, the banner, a periodic message) '$' is written "$$". */
static void put_bytes(writer *w, const uint8_t *p, size_t n, int tpl)
{
    if (!is_text(p, n)) {
        put(w, "{\"hex\": \"");
        for (size_t i = 0; i < n; i++)
            putf(w, i ? " %02x" : "%02x", p[i]);
        put(w, "\"}");
        return;
    }
    if (!tpl || !memchr(p, '$', n)) {
        put_string(w, (const char *)p, n);
        return;
    }
    dw_buf esc = DW_BUF_INIT;
    for (size_t i = 0; i < n && w->rc == DW_OK; i++)
        w->rc = dw_buf_append(&esc, p[i] == '$' ? "$$" : (const char *)&p[i], p[i] == '$' ? 2 : 1);
    put_string(w, (const char *)esc.data, esc.len);
    dw_buf_free(&esc);
}

/* One reply: null, a frame, or {"frames": [...]}. */
static void put_reply(writer *w, const dw_sim_bytes *f, size_t n)
{
    if (n == 0) {
        put(w, "null");
        return;
    }
    if (n == 1) {
        put_bytes(w, f[0].data, f[0].len, 1);
        return;
    }
    put(w, "{\"frames\": [");
    for (size_t i = 0; i < n; i++) {
        put(w, i ? ", " : "");
        put_bytes(w, f[i].data, f[i].len, 1);
    }
    put(w, "]}");
}

static int same_reply(const dw_sim_exchange *a, const dw_sim_exchange *b)
{
    if (a->nreplies != b->nreplies)
        return 0;
    for (size_t i = 0; i < a->nreplies; i++)
        if (a->replies[i].len != b->replies[i].len ||
            (a->replies[i].len &&
             memcmp(a->replies[i].data, b->replies[i].data, a->replies[i].len) != 0))
            return 0;
    return 1;
}

static int same_bytes(const dw_sim_bytes *a, const dw_sim_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorted here); 0 when n is 0. */
static uint64_t median(uint64_t *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void put_delay(writer *w, uint64_t *delays, size_t n)
{
    uint64_t ms = (median(delays, n) + 500) / 1000;
    if (ms)
        putf(w, ", \"delay_ms\": %llu", (unsigned long long)ms);
}

/* ---- framing --------------------------------------------------------------------- */

static const char *const framing_names[] = {"sentinel", "fixed", "length-prefixed", "scpi",
                                            "json-lines"};

static void put_framing_spec(writer *w, const dw_sim_framing *f)
{
    putf(w, "{\"type\": \"%s\"", framing_names[f->type]);
    switch (f->type) {
    case DW_SIM_FRAMING_SENTINEL:
    case DW_SIM_FRAMING_SCPI:
        put(w, ", \"sentinel\": ");
        put_bytes(w, f->sentinel.data, f->sentinel.len, 0);
        break;
    case DW_SIM_FRAMING_FIXED:
        putf(w, ", \"length\": %zu", f->length);
        break;
    case DW_SIM_FRAMING_LENGTH_PREFIXED:
        putf(w, ", \"header_size\": %u, \"endian\": \"%s\"", f->header_size,
             f->endian == DW_LITTLE_ENDIAN ? "little" : "big");
        break;
    default:
        break;
    }
    if (f->max_frame != DW_DEFAULT_MAX_FRAME)
        putf(w, ", \"max_frame\": %zu", f->max_frame);
    put(w, "}");
}

static int same_framing(const dw_sim_framing *a, const dw_sim_framing *b)
{
    return a->type == b->type && same_bytes(&a->sentinel, &b->sentinel) && a->length == b->length &&
           a->header_size == b->header_size && a->endian == b->endian &&
           a->max_frame == b->max_frame;
}

static void put_framing(writer *w, const dw_sim_script *base)
{
    put(w, ",\n  \"framing\": ");
    if (same_framing(&base->request_framing, &base->response_framing)) {
        put_framing_spec(w, &base->request_framing);
        return;
    }
    put(w, "{\n    \"request\": ");
    put_framing_spec(w, &base->request_framing);
    put(w, ",\n    \"response\": ");
    put_framing_spec(w, &base->response_framing);
    put(w, "\n  }");
}

/* ---- rules and steps ----------------------------------------------------------- */

static const char *const then_names[] = {"", "close", "reset"};

/* "then" for the rule of exchange i's request: the end the device gave
 * the connection right after an answer to it, the first time it did. */
static void put_then(writer *w, const dw_sim_conversation *c, size_t i)
{
    for (size_t j = i; j < c->nex; j++)
        if (c->ex[j].then != DW_SIM_THEN_NONE && same_bytes(&c->ex[j].request, &c->ex[i].request)) {
            putf(w, ", \"then\": \"%s\"", then_names[c->ex[j].then]);
            return;
        }
}

/* Rules: one per distinct request, in the order first seen; a request
 * answered differently over time gets the list of its answers in order. */
static void put_rules(writer *w, const dw_sim_conversation *c, const dw_sim_record_options *o)
{
    size_t *idx = calloc(c->nex ? c->nex : 1, sizeof *idx);
    uint64_t *delays = calloc(c->nex ? c->nex : 1, sizeof *delays);
    char *done = calloc(c->nex ? c->nex : 1, 1);
    if (!idx || !delays || !done) {
        w->rc = DW_ENOMEM;
        free(idx), free(delays), free(done);
        return;
    }
    put(w, ",\n  \"rules\": [");
    size_t nrules = 0;
    for (size_t i = 0; i < c->nex && w->rc == DW_OK; i++) {
        if (done[i])
            continue;
        size_t n = 0, nd = 0;
        for (size_t j = i; j < c->nex; j++)
            if (!done[j] && same_bytes(&c->ex[j].request, &c->ex[i].request)) {
                done[j] = 1;
                idx[n++] = j;
                if (c->ex[j].delay_us >= 0)
                    delays[nd++] = (uint64_t)c->ex[j].delay_us;
            }
        while (n > 1 && same_reply(&c->ex[idx[n - 1]], &c->ex[idx[n - 2]]))
            n--; /* the last answer repeats by itself */
        put(w, nrules++ ? ",\n    {\"when\": " : "\n    {\"when\": ");
        put_bytes(w, c->ex[i].request.data, c->ex[i].request.len, 0);
        put(w, ", \"reply\": ");
        if (n > 1)
            put(w, "[");
        for (size_t k = 0; k < n; k++) {
            put(w, k ? ", " : "");
            put_reply(w, c->ex[idx[k]].replies, c->ex[idx[k]].nreplies);
        }
        if (n > 1)
            put(w, "]");
        if (o->keep_timing)
            put_delay(w, delays, nd);
        put_then(w, c, i);
        put(w, "}");
    }
    put(w, nrules ? "\n  ]" : "]");
    free(idx);
    free(delays);
    free(done);
}

/* Steps: the conversation in order. */
static void put_steps(writer *w, const dw_sim_conversation *c, const dw_sim_record_options *o)
{
    put(w, ",\n  \"steps\": [");
    for (size_t i = 0; i < c->nex && w->rc == DW_OK; i++) {
        const dw_sim_exchange *x = &c->ex[i];
        put(w, i ? ",\n    {\"expect\": " : "\n    {\"expect\": ");
        put_bytes(w, x->request.data, x->request.len, 0);
        put(w, ", \"reply\": ");
        put_reply(w, x->replies, x->nreplies);
        if (o->keep_timing && x->delay_us >= 0) {
            uint64_t d = (uint64_t)x->delay_us;
            put_delay(w, &d, 1);
        }
        if (x->then != DW_SIM_THEN_NONE)
            putf(w, ", \"then\": \"%s\"", then_names[x->then]);
        put(w, "}");
    }
    put(w, c->nex ? "\n  ]" : "]");
}

/* ---- unsolicited frames ---------------------------------------------------------- */

/* The unsolicited frames sorted by bytes, then connection, then time:
 * each frame's intervals are between neighbours of one connection. */
typedef struct uref {
    const dw_sim_unsolicited *u;
    size_t i; /* its place in c->un (time order) */
} uref;

static int by_frame(const void *pa, const void *pb)
{
    const uref *a = pa, *b = pb;
    int c = dw__rec_cmp_bytes(&a->u->frame, &b->u->frame); /* record_periodic.c */
    if (!c)
        c = (a->u->conn > b->u->conn) - (a->u->conn < b->u->conn);
    return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* The frames r[from, to) (the same bytes), written where the first of them
 * came among all frames. */
typedef struct ugroup {
    size_t from, to, first;
} ugroup;

static int by_first(const void *pa, const void *pb)
{
    const ugroup *a = pa, *b = pb;
    return (a->first > b->first) - (a->first < b->first);
}

/* One frame: a periodic entry when it came at regular intervals
 * (dw__rec_regular), else a note in `irregular`. iv has room for its
 * intervals. */
static void put_frame(writer *w, const uref *r, const ugroup *g, uint64_t *iv, dw_buf *irregular,
                      size_t *nper)
{
    const dw_sim_bytes *f = &r[g->from].u->frame;
    size_t n = 0, seen = g->to - g->from;
    for (size_t j = g->from + 1; j < g->to; j++)
        if (r[j].u->conn == r[j - 1].u->conn)
            iv[n++] = r[j].u->t_us - r[j - 1].u->t_us;
    uint64_t med;
    if (!dw__rec_regular(iv, n, &med)) {
        writer d = {irregular, DW_OK};
        putf(&d, "%s", irregular->len ? "; " : " Unsolicited frames at irregular times: ");
        put_bytes(&d, f->data, f->len > 64 ? 64 : f->len, 0);
        putf(&d, " (%zu time%s)", seen, seen == 1 ? "" : "s");
        w->rc = d.rc;
        return;
    }
    put(w, (*nper)++ ? ",\n    {\"every_ms\": " : ",\n  \"periodic\": [\n    {\"every_ms\": ");
    putf(w, "%llu, \"send\": ", (unsigned long long)((med + 500) / 1000));
    put_bytes(w, f->data, f->len, 1);
    put(w, "}");
}

/* Periodic entries for regular frames; the others are described; each in
 * the order it first came. */
static void put_periodic(writer *w, const dw_sim_conversation *c, dw_buf *irregular)
{
    size_t room = c->nun ? c->nun : 1, ng = 0, nper = 0;
    uref *r = malloc(room * sizeof *r);
    ugroup *g = malloc(room * sizeof *g);
    uint64_t *iv = malloc(room * sizeof *iv);
    if (!r || !g || !iv)
        w->rc = DW_ENOMEM;
    for (size_t i = 0; i < c->nun && w->rc == DW_OK; i++)
        r[i] = (uref){&c->un[i], i};
    if (w->rc == DW_OK && c->nun)
        qsort(r, c->nun, sizeof *r, by_frame);
    for (size_t a = 0, b; w->rc == DW_OK && a < c->nun; a = b) {
        g[ng] = (ugroup){a, a, r[a].i};
        for (b = a; b < c->nun && dw__rec_cmp_bytes(&r[a].u->frame, &r[b].u->frame) == 0; b++)
            g[ng].first = r[b].i < g[ng].first ? r[b].i : g[ng].first;
        g[ng++].to = b;
    }
    if (w->rc == DW_OK && ng)
        qsort(g, ng, sizeof *g, by_first);
    for (size_t j = 0; j < ng && w->rc == DW_OK; j++)
        put_frame(w, r, &g[j], iv, irregular, &nper);
    if (nper)
        put(w, "\n  ]");
    free(r);
    free(g);
    free(iv);
}

/* ---- the document ---------------------------------------------------------------- */

static const char *const transport_names[] = {"tcp", "telnet", "udp", "serial"};

/* One list of Telnet options, by name where libtelnet has one. */
static void put_options(writer *w, const char *key, const uint8_t bits[32])
{
    putf(w, "\"%s\": [", key);
    const char *sep = "";
    for (int k = 0; k < 256; k++) {
        if (!dw_telnet_option_isset(bits, (uint8_t)k))
            continue;
        const char *name = dw_telnet_option_name((uint8_t)k);
        if (name)
            putf(w, "%s\"%s\"", sep, name);
        else
            putf(w, "%s%d", sep, k);
        sep = ", ";
    }
    put(w, "]");
}

/* A Telnet device's options: the base script's, else what the device said. */
static void put_telnet(writer *w, const dw_sim_conversation *c, const dw_sim_script *base)
{
    const dw_sim_telnet_opts *t = base->telnet.set ? &base->telnet : &c->telnet;
    if (base->transport != DW_SIM_TELNET || !t->set)
        return;
    put(w, ",\n  \"telnet\": {");
    put_options(w, "will", t->will);
    put(w, ", ");
    put_options(w, "do", t->ask);
    put(w, "}");
}

static void put_description(writer *w, const dw_sim_conversation *c, const dw_sim_record_options *o,
                            const dw_buf *irregular)
{
    char head[256];
    snprintf(head, sizeof head,
             "Recorded by devwire-sim --record%s%s: %zu connection%s, %zu request%s.",
             o->upstream ? " from " : "", o->upstream ? o->upstream : "", c->connections,
             c->connections == 1 ? "" : "s", c->nex, c->nex == 1 ? "" : "s");
    dw_buf d = DW_BUF_INIT;
    if (dw_buf_append_str(&d, head) != DW_OK || dw_buf_append_str(&d, c->notes) != DW_OK ||
        (irregular->len && dw_buf_append(&d, irregular->data, irregular->len) != DW_OK) ||
        (irregular->len && dw_buf_append_str(&d, ".") != DW_OK))
        w->rc = DW_ENOMEM;
    put(w, ",\n  \"description\": ");
    put_string(w, (const char *)d.data, d.len);
    dw_buf_free(&d);
}

int dw_sim_record_write(const dw_sim_conversation *c, const dw_sim_script *base,
                        const dw_sim_record_options *o, dw_buf *out)
{
    writer w = {out, DW_OK};
    dw_buf body = DW_BUF_INIT, irregular = DW_BUF_INIT;
    writer b = {&body, DW_OK};
    /* Periodic entries first (into body): they decide the description. */
    put_periodic(&b, c, &irregular);
    put(&w, "{\n  \"name\": ");
    char name[160];
    snprintf(name, sizeof name, "recorded from %s", o->upstream ? o->upstream : "a device");
    put_string(&w, name, strlen(name));
    put_description(&w, c, o, &irregular);
    putf(&w, ",\n  \"transport\": \"%s\"", transport_names[base->transport]);
    put_telnet(&w, c, base);
    put_framing(&w, base);
    if (c->banner.len) {
        put(&w, ",\n  \"banner\": ");
        put_bytes(&w, c->banner.data, c->banner.len, 1);
    }
    if (c->prompt.len) {
        put(&w, ",\n  \"prompt\": ");
        put_bytes(&w, c->prompt.data, c->prompt.len, 0);
    }
    if (o->as_steps)
        put_steps(&w, c, o);
    else
        put_rules(&w, c, o);
    if (b.rc == DW_OK && body.len && w.rc == DW_OK)
        w.rc = dw_buf_append(out, body.data, body.len);
    put(&w, "\n}\n");
    dw_buf_free(&body);
    dw_buf_free(&irregular);
    return w.rc != DW_OK ? w.rc : b.rc;
}
