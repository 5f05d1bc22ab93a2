/* devwire-sim --record: the recording checks itself (record.h,
 * dw_sim_record_check). The written script is loaded and served by an
 * engine, in process, with the requests as recorded, in order, one session
 * per connection; what it writes on each connection is compared with what
 * the device sent there, unsolicited frames left out. The comparison runs
 * along each connection's stream, so answers that the script holds under
 * other requests than the device's (a pipelined batch) still compare
 * equal when the bytes on the wire are the same; after a mismatch it picks
 * up again where the device's next answer began. */
#include "record/record_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

typedef struct checker {
    const dw_sim_conversation *cv;
    dw_buf *out;      /* per stream: what the replay writes */
    size_t *at, *end; /* per exchange: its bytes in out[stream] */
    dw_sim_then *then;
    dw_buf expected; /* the stream being compared: the device's, unsolicited frames out */
    dw_buf *report;
    size_t mismatches;
    int rc;
} checker;

static void line(checker *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(checker *k, const char *fmt, ...)
{
    if (++k->mismatches > DW_SIM_RECORD_CHECK_LINES)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (k->rc == DW_OK)
        k->rc = dw_buf_append_str(k->report, buf);
}

/* Serve every request to an engine built on `s`, in recorded order. */
static int replay(checker *k, const dw_sim_script *s, dw_error *err)
{
    const dw_sim_conversation *cv = k->cv;
    dw_sim_engine *e = NULL;
    int rc = dw_sim_engine_new(s, &e, err);
    dw_sim_session **sess = calloc(cv->nstreams ? cv->nstreams : 1, sizeof *sess);
    if (rc == DW_OK && !sess)
        rc = DW_ENOMEM;
    for (size_t i = 0; i < cv->nstreams && rc == DW_OK; i++) {
        sess[i] = dw_sim_session_new(e);
        rc = sess[i] ? dw_sim_engine_banner(e, sess[i], &k->out[i]) : DW_ENOMEM;
    }
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    for (size_t j = 0; j < cv->nex && rc == DW_OK; j++) {
        const dw_sim_exchange *x = &cv->ex[j];
        dw_buf *out = &k->out[x->stream];
        k->at[j] = out->len;
        dw_error_clear(err);
        int hr = dw_sim_engine_handle_at(e, sess[x->stream], x->request.data, x->request.len,
                                         (double)x->t_us / 1e6, &o, err);
        if (hr == DW_ENOMEM)
            rc = hr;
        else
            rc = dw_buf_append(out, o.bytes.data, o.bytes.len);
        k->end[j] = out->len;
        k->then[j] = o.fault == DW_SIM_FAULT_CLOSE   ? DW_SIM_THEN_CLOSE
                     : o.fault == DW_SIM_FAULT_RESET ? DW_SIM_THEN_RESET
                                                     : o.close;
    }
    dw_sim_outcome_free(&o);
    for (size_t i = 0; sess && i < cv->nstreams; i++)
        dw_sim_session_free(sess[i]);
    free(sess);
    dw_sim_engine_free(e);
    return rc;
}

/* Stream st's bytes with its unsolicited frames taken out, into
 * k->expected; map(off) of a device offset is then its place there. */
static int expect(checker *k, const dw_sim_rec_stream *st)
{
    dw_buf_clear(&k->expected);
    size_t at = 0;
    int rc = DW_OK;
    for (size_t i = 0; i < st->nskip && rc == DW_OK; i++) {
        size_t from = st->skip[2 * i], to = st->skip[2 * i + 1];
        if (from >= at)
            rc = dw_buf_append(&k->expected, st->data + at, from - at);
        if (to > at)
            at = to;
    }
    if (rc == DW_OK && at < st->len)
        rc = dw_buf_append(&k->expected, st->data + at, st->len - at);
    return rc;
}

static size_t map(const dw_sim_rec_stream *st, size_t off)
{
    size_t skipped = 0;
    for (size_t i = 0; i < st->nskip && st->skip[2 * i] < off; i++) {
        size_t to = st->skip[2 * i + 1] < off ? st->skip[2 * i + 1] : off;
        skipped += to - st->skip[2 * i];
    }
    return off - skipped;
}

static const char *const end_names[] = {"keeps the connection open", "closes the connection",
                                        "resets the connection"};

/* The replay's bytes r[0..rn) against the device's from *pe to dev_end
 * (mapped): the banner (j0 == SIZE_MAX) or the answers to exchanges j0..j1
 * of a connection, which the client sent without waiting between them. */
static void compare(checker *k, size_t j0, size_t j1, const uint8_t *r, size_t rn, size_t *pe,
                    size_t dev_end, uint64_t conn)
{
    const dw_buf *ex = &k->expected;
    size_t pos = *pe, to = dev_end > pos ? dev_end : pos;
    if (to > ex->len)
        to = ex->len;
    *pe = to;
    if (to - pos == rn && (rn == 0 || memcmp(ex->data + pos, r, rn) == 0))
        return;
    char dev[300], rep[300], req[120];
    dw__rec_escape(ex->data + pos, to - pos, 64, dev, sizeof dev);
    dw__rec_escape(r, rn, 64, rep, sizeof rep);
    if (j0 == SIZE_MAX) {
        line(k, "the banner (connection %llu): the device sent %s, the replay sends %s\n",
             (unsigned long long)conn, dev, rep);
        return;
    }
    const dw_sim_exchange *x = &k->cv->ex[j1];
    dw__rec_escape(x->request.data, x->request.len, 40, req, sizeof req);
    char which[96];
    if (j0 == j1)
        snprintf(which, sizeof which, "exchange %zu", j1 + 1);
    else
        snprintf(which, sizeof which, "exchanges %zu to %zu (pipelined)", j0 + 1, j1 + 1);
    line(k, "%s (connection %llu, request %s): the device sent %s, the replay sends %s\n", which,
         (unsigned long long)conn, req, dev, rep);
}

/* Exchange j's end against the device's. */
static void compare_end(checker *k, size_t j, int last, uint64_t conn)
{
    const dw_sim_exchange *x = &k->cv->ex[j];
    if (k->then[j] == x->then || (!last && k->then[j] == DW_SIM_THEN_NONE))
        return;
    char req[120];
    dw__rec_escape(x->request.data, x->request.len, 40, req, sizeof req);
    line(k, "exchange %zu (connection %llu, request %s): the device %s after it, the replay %s\n",
         j + 1, (unsigned long long)conn, req, end_names[x->then], end_names[k->then[j]]);
}

/* The next exchange of stream i after j, or SIZE_MAX. */
static size_t next_of(const dw_sim_conversation *cv, size_t i, size_t j)
{
    for (size_t n = j + 1; n < cv->nex; n++)
        if (cv->ex[n].stream == i)
            return n;
    return SIZE_MAX;
}

/* Stream i: its banner, its answers in order (an answer ends where the
 * client's next request began, when it waited for one and the device had
 * sent more than unsolicited frames in between), its end. */
static void check_stream(checker *k, size_t i)
{
    const dw_sim_conversation *cv = k->cv;
    const dw_sim_rec_stream *st = &cv->streams[i];
    if ((k->rc = expect(k, st)) != DW_OK)
        return;
    const dw_buf *out = &k->out[i];
    size_t pe = 0, j = next_of(cv, i, SIZE_MAX);
    size_t banner = j == SIZE_MAX ? out->len : k->at[j];
    compare(k, SIZE_MAX, SIZE_MAX, out->data, banner, &pe, map(st, st->banner_len), st->conn);
    size_t j0 = j;
    while (j != SIZE_MAX) {
        size_t n = next_of(cv, i, j);
        compare_end(k, j, n == SIZE_MAX, st->conn);
        const dw_sim_exchange *x = &cv->ex[j];
        if (n == SIZE_MAX || (cv->ex[n].waited && map(st, cv->ex[n].out_at) > map(st, x->out_at))) {
            compare(k, j0, j, out->data + k->at[j0], k->end[j] - k->at[j0], &pe,
                    map(st, x->out_end), st->conn);
            j0 = n;
        }
        j = n;
    }
    if (pe < k->expected.len) {
        char dev[300];
        dw__rec_escape(k->expected.data + pe, k->expected.len - pe, 64, dev, sizeof dev);
        line(k, "connection %llu: the device sent %s more, the replay nothing\n",
             (unsigned long long)st->conn, dev);
    }
}

int dw_sim_record_check(const dw_sim_conversation *cv, const char *text, size_t len, dw_buf *report,
                        size_t *mismatches)
{
    *mismatches = 0;
    dw_sim_script *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_script_load_buffer("the recording", text, len, &s, &err) != DW_OK) {
        dw_buf_append_str(report, dw_error_message(&err));
        return err.code == DW_ENOMEM ? DW_ENOMEM : DW_ESCRIPT;
    }
    size_t nx = cv->nex ? cv->nex : 1;
    checker k = {cv,
                 calloc(cv->nstreams ? cv->nstreams : 1, sizeof *k.out),
                 calloc(nx, sizeof *k.at),
                 calloc(nx, sizeof *k.end),
                 calloc(nx, sizeof *k.then),
                 DW_BUF_INIT,
                 report,
                 0,
                 DW_OK};
    if (!k.out || !k.at || !k.end || !k.then)
        k.rc = DW_ENOMEM;
    if (k.rc == DW_OK)
        k.rc = replay(&k, s, &err);
    if (k.rc != DW_OK && k.rc != DW_ENOMEM) { /* an engine that cannot be built */
        dw_buf_append_str(report, dw_error_message(&err));
        k.rc = DW_ESCRIPT;
    }
    for (size_t i = 0; i < cv->nstreams && k.rc == DW_OK; i++)
        check_stream(&k, i);
    if (k.rc == DW_OK && k.mismatches > DW_SIM_RECORD_CHECK_LINES) {
        char more[96];
        snprintf(more, sizeof more, "... and %zu more\n", k.mismatches - DW_SIM_RECORD_CHECK_LINES);
        k.rc = dw_buf_append_str(report, more);
    }
    *mismatches = k.mismatches;
    for (size_t i = 0; k.out && i < cv->nstreams; i++)
        dw_buf_free(&k.out[i]);
    free(k.out);
    free(k.at);
    free(k.end);
    free(k.then);
    dw_buf_free(&k.expected);
    dw_sim_script_free(s);
    return k.rc;
}
