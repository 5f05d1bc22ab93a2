/* devwire-sim --record: a console's prompt, inferred from what the device
 * sent each time it waited for the client (record_int.h). A wait is where
 * the client's next request began: the text the device had sent since the
 * last request was complete, after its last line end, is what it left on
 * the screen. A prompt is that text when it is the same at every wait
 * (and not empty); the banner's own tail, if any, counts as one more wait,
 * which agrees when it ends with the prompt the other waits agree on.
 * A wait where the client had already sent its next request (pipelined) or
 * the device had sent nothing says nothing and is skipped. */
#include "record/record_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t dw__rec_reply_at(const rec_conn *c, size_t ev)
{
    for (size_t i = ev; i-- > 0;)
        if (c->ev[i].dir == DW_SIM_DIR_REPLY)
            return c->ev[i].end;
    return 0;
}

void dw__rec_escape(const uint8_t *p, size_t n, size_t max, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen < 16)
        return;
    out[o++] = '"';
    for (size_t i = 0; i < n && i < max && o + 8 < outlen; i++) {
        uint8_t b = p[i];
        const char *e = b == '\r'   ? "\\r"
                        : b == '\n' ? "\\n"
                        : b == '\t' ? "\\t"
                        : b == '"'  ? "\\\""
                        : b == '\\' ? "\\\\"
                                    : NULL;
        if (e)
            o += (size_t)snprintf(out + o, outlen - o, "%s", e);
        else if (b < 0x20 || b > 0x7e)
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", b);
        else
            out[o++] = (char)b;
    }
    out[o++] = '"';
    if (n > max && o + 4 < outlen)
        o += (size_t)snprintf(out + o, outlen - o, "...");
    out[o] = '\0';
}

/* What a wait left on the screen, and where it was. */
typedef struct wait_text {
    const uint8_t *p;
    size_t n;
    int seen;
    char where[96];
} wait_text;

typedef struct infer {
    const dw_sim_bytes *sentinel;
    wait_text first, differs, whole; /* the first tail, one that differs, a wait after a line */
    int from_requests;               /* `first` came from a wait after a request */
} infer;

/* The text of device stream s[at..to) after its last line end. */
static void tail_of(const dw_buf *s, size_t at, size_t to, const dw_sim_bytes *sen,
                    const uint8_t **p, size_t *n)
{
    size_t from = at;
    for (size_t j = to; j-- > at;)
        if (j + sen->len <= to && memcmp(s->data + j, sen->data, sen->len) == 0) {
            from = j + sen->len;
            break;
        }
    *p = s->data + from;
    *n = to - from;
}

static void seen(wait_text *w, const uint8_t *p, size_t n, uint64_t conn, size_t req)
{
    if (w->seen)
        return;
    w->seen = 1;
    w->p = p;
    w->n = n;
    if (req)
        snprintf(w->where, sizeof w->where, "connection %llu, after its request %zu",
                 (unsigned long long)conn, req);
    else
        snprintf(w->where, sizeof w->where, "connection %llu, after the banner",
                 (unsigned long long)conn);
}

/* A banner's tail that ends with the prompt the requests' waits agree on
 * is that prompt, after text of the banner's own (GNU telnetd's NUL
 * bytes, a greeting on the prompt's line). */
static int ends_with_prompt(const infer *in, const uint8_t *p, size_t n, size_t req)
{
    const wait_text *f = &in->first;
    return !req && in->from_requests && n >= f->n && memcmp(p + n - f->n, f->p, f->n) == 0;
}

static void consider(infer *in, const dw_buf *s, size_t at, size_t to, uint64_t conn, size_t req)
{
    const uint8_t *p;
    size_t n;
    tail_of(s, at, to, in->sentinel, &p, &n);
    if (ends_with_prompt(in, p, n, req))
        return;
    if (n == 0 && req)
        seen(&in->whole, p, n, conn, req);
    else if (n && !in->first.seen)
        seen(&in->first, p, n, conn, req);
    else if (n && (n != in->first.n || memcmp(p, in->first.p, n) != 0))
        seen(&in->differs, p, n, conn, req);
}

/* Connection c's wait after its banner. */
static void banner_wait(infer *in, const rec_conn *c)
{
    size_t first_req = 0;
    while (first_req < c->nev && c->ev[first_req].dir != DW_SIM_DIR_REQUEST)
        first_req++;
    size_t banner = dw__rec_reply_at(c, first_req);
    if (banner)
        consider(in, &c->stream[DW_SIM_DIR_REPLY], 0, banner, c->id, 0);
}

/* Connection c's waits before each request but the first. */
static void waits(infer *in, const rec_conn *c, const rframes *rq)
{
    const dw_buf *s = &c->stream[DW_SIM_DIR_REPLY];
    for (size_t k = 0; k + 1 < rq->n; k++) {
        size_t a = rq->f[k].ev, e = a + 1;
        if (c->ev[a].end > rq->f[k].end)
            continue; /* the next request was already under way: no wait */
        while (e < c->nev && c->ev[e].dir != DW_SIM_DIR_REQUEST)
            e++;
        size_t from = dw__rec_reply_at(c, a), to = dw__rec_reply_at(c, e);
        if (to > from)
            consider(in, s, from, to, c->id, k + 1);
    }
}

int dw__rec_infer_prompt(rec_conn *const *conns, size_t n, const rframes *rq,
                         const dw_sim_framing *resp, dw_sim_bytes *out, char *why, size_t whylen)
{
    infer in;
    memset(&in, 0, sizeof in);
    in.sentinel = &resp->sentinel;
    why[0] = '\0';
    out->data = NULL;
    out->len = 0;
    for (size_t i = 0; i < n; i++)
        waits(&in, conns[i], &rq[i]);
    in.from_requests = in.first.seen;
    for (size_t i = 0; i < n; i++)
        banner_wait(&in, conns[i]);
    if (!in.first.seen)
        return DW_OK; /* every wait came after a whole line: no prompt */
    char a[80], b[80];
    dw__rec_escape(in.first.p, in.first.n, 32, a, sizeof a);
    if (in.differs.seen) {
        dw__rec_escape(in.differs.p, in.differs.n, 32, b, sizeof b);
        snprintf(why, whylen,
                 "no prompt inferred: the device waited for input after %s (%s) and after %s "
                 "(%s); give the base script a \"prompt\"",
                 a, in.first.where, b, in.differs.where);
        return DW_OK;
    }
    if (in.whole.seen) {
        snprintf(why, whylen,
                 "no prompt inferred: the device waited for input after %s (%s) but after a "
                 "whole line (%s); give the base script a \"prompt\"",
                 a, in.first.where, in.whole.where);
        return DW_OK;
    }
    out->data = malloc(in.first.n);
    if (!out->data)
        return DW_ENOMEM;
    memcpy(out->data, in.first.p, in.first.n);
    out->len = in.first.n;
    return DW_OK;
}
