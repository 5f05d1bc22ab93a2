/* The Telnet receive filter under arbitrary cuts.
 * Input: [options: bit 0 server side, 1 echo, 2 sga, 3 binary, 4 writes
 * fail, 5 call dw_telnet_start, 6 CR NUL read as CR, 7 observe] [take: bytes the reader keeps of
 * each chunk, the rest given back with dw_iter_unread; 0 = all] then the common split byte(s) of
 * fuzz_framing.h, then the stream (raw bytes from the peer).
 *
 * Oracles: the data bytes after IAC stripping, the bytes the filter sends
 * back (negotiation answers) and the final code are the same whatever the
 * cuts and however the reader gives bytes back; answers stay proportional to
 * the input (negotiation never loops); a failure is sticky. Round trip: the
 * stream escaped with dw_telnet_escape (and sent with dw_telnet_send) comes
 * back through a filter byte for byte, with nothing sent back. */
#include "devwire/telnet.h"

#include "fuzz_framing.h"

typedef struct sink {
    dw_buf out;
    int fail;
} sink;

static int write_cb(void *user, const uint8_t *p, size_t n)
{
    sink *s = user;
    if (s->fail)
        return DW_EPIPE;
    if (n == 0) {
        fprintf(stderr, "fuzz oracle: telnet: an empty write\n");
        abort();
    }
    return dw_buf_append(&s->out, p, n) == DW_OK ? DW_OK : DW_ENOMEM;
}

typedef struct result {
    dw_buf data; /* data bytes read */
    sink sent;   /* bytes written back */
    int end;     /* the code that ended reading */
} result;

static void fail(const char *what, const result *a, const result *b)
{
    fprintf(stderr, "fuzz oracle: telnet: %s\n", what);
    const result *r[2] = {a, b};
    for (int i = 0; i < 2; i++)
        if (r[i])
            fprintf(stderr, "  %s: %s, %zu data bytes, %zu bytes sent\n", i ? "cut" : "whole",
                    dw_err_name(r[i]->end), r[i]->data.len, r[i]->sent.out.len);
    abort();
}

static void run(const dw_telnet_options *o, int fail_writes, int start, size_t take,
                const uint8_t *stream, size_t len, const size_t *cuts, size_t ncuts, result *res)
{
    memset(res, 0, sizeof *res);
    res->sent.fail = fail_writes;
    dw_mem_iter raw;
    dw_mem_iter_init(&raw, stream, len, cuts, ncuts);
    dw_telnet *t = dw_telnet_new(o, &raw.base, write_cb, &res->sent);
    if (!t)
        abort();
    if (start) {
        int rc = dw_telnet_start(t);
        if (rc != DW_OK && !fail_writes)
            fail("dw_telnet_start failed", res, NULL);
    }
    dw_iter *it = dw_telnet_iter(t);
    size_t calls = 0;
    for (;;) {
        const uint8_t *d;
        size_t n;
        int rc = dw_iter_next(it, &d, &n);
        if (rc != DW_OK) {
            res->end = rc;
            break;
        }
        if (n == 0)
            fail("an empty chunk", res, NULL);
        size_t keep = take && take < n ? take : n;
        if (dw_buf_append(&res->data, d, keep) != DW_OK)
            abort();
        dw_iter_unread(it, n - keep);
        if (++calls > 2 * len + 8)
            fail("more chunks than data bytes: the filter loops", res, NULL);
    }
    if (res->data.len > len)
        fail("more data bytes out than bytes in", res, NULL);
    /* Answers: at most a few bytes per byte received (plus the opening). */
    if (res->sent.out.len > 8 * len + 16)
        fail("negotiation answers out of proportion to the input", res, NULL);
    /* Sticky end. */
    const uint8_t *d;
    size_t n;
    int again = dw_iter_next(it, &d, &n);
    if (again != res->end)
        fail("the end code is not sticky", res, NULL);
    if (res->end == DW_EPROTO && dw_telnet_error_message(t)[0] == '\0')
        fail("DW_EPROTO without a message", res, NULL);
    dw_telnet_free(t);
}

static void result_free(result *r)
{
    dw_buf_free(&r->data);
    dw_buf_free(&r->sent.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    uint8_t opt = fz_byte(&r);
    size_t take = fz_byte(&r);
    fz_split s;
    fz_read_split(&r, &s);
    if (r.n > 4096)
        r.n = 4096;
    dw_telnet_options o;
    dw_telnet_options_init(&o);
    o.server = opt & 1;
    o.echo = (opt >> 1) & 1;
    o.sga = (opt >> 2) & 1;
    o.binary = (opt >> 3) & 1;
    int fail_writes = (opt >> 4) & 1;
    int start = (opt >> 5) & 1;
    o.cr_nul = (opt >> 6) & 1;
    o.observe = (opt >> 7) & 1;

    size_t ncuts;
    size_t *cuts = fz_cuts(&s, r.n, &ncuts);
    result whole, cut;
    run(&o, fail_writes, start, 0, r.p, r.n, NULL, 0, &whole);
    run(&o, fail_writes, start, take, r.p, r.n, cuts, ncuts, &cut);
    if (whole.end != cut.end)
        fail("cut stream ends with another code", &whole, &cut);
    if (!fail_writes) {
        /* (With failing writes, how much data precedes the failure depends on
         * where the answer falls in a chunk.) */
        if (whole.data.len != cut.data.len ||
            (whole.data.len && memcmp(whole.data.data, cut.data.data, whole.data.len) != 0))
            fail("cut stream gives other data bytes", &whole, &cut);
        if (whole.sent.out.len != cut.sent.out.len ||
            (whole.sent.out.len &&
             memcmp(whole.sent.out.data, cut.sent.out.data, whole.sent.out.len) != 0))
            fail("cut stream gives other answers", &whole, &cut);
    }
    result_free(&whole);
    result_free(&cut);

    /* Round trip of the stream as data. */
    dw_buf esc = DW_BUF_INIT;
    if (dw_telnet_escape(r.p, r.n, &esc) != DW_OK)
        abort();
    size_t nff = 0;
    for (size_t i = 0; i < r.n; i++)
        nff += r.p[i] == 0xff;
    if (esc.len != r.n + nff)
        fail("dw_telnet_escape: not every 0xFF doubled", NULL, NULL);
    sink sent = {DW_BUF_INIT, 0};
    dw_telnet *t = dw_telnet_new(&o, NULL, write_cb, &sent);
    if (!t)
        abort();
    if (dw_telnet_send(t, r.p, r.n) != DW_OK || sent.out.len != esc.len ||
        (esc.len && memcmp(sent.out.data, esc.data, esc.len) != 0))
        fail("dw_telnet_send differs from dw_telnet_escape", NULL, NULL);
    dw_telnet_free(t);
    size_t necuts;
    size_t *ecuts = fz_cuts(&s, esc.len, &necuts);
    result back;
    dw_telnet_options client;
    dw_telnet_options_init(&client);
    run(&client, 0, 0, take, esc.data, esc.len, ecuts, necuts, &back);
    if (back.end != DW_EOF || back.data.len != r.n ||
        (r.n && memcmp(back.data.data, r.p, r.n) != 0) || back.sent.out.len != 0)
        fail("escaped data does not come back through a filter", &back, NULL);
    result_free(&back);
    dw_buf_free(&sent.out);
    dw_buf_free(&esc);
    free(ecuts);
    free(cuts);
    return 0;
}
