/* VXI-11's RPC decoding (sim/model/vxi11_rpc.c) under arbitrary cuts:
 * record marking, the call header and the arguments of every procedure.
 * Input: [max record: byte * 16 + 16] then the stream.
 *
 * Oracles (a mismatch prints what differed and aborts):
 *   - split-stream: the stream fed whole, one byte at a time, and in two
 *     pieces at every cut point (streams up to 1 KiB; longer ones at 64 cut
 *     points) decodes to the same sequence of results: each record's bytes,
 *     the call's header and arguments as decoded (or the error), and where
 *     and how the stream ended (a partial record, DW_ETOOBIG);
 *   - every call accepted points its arguments inside its record, and every
 *     opaque or string argument lies inside the arguments;
 *   - a reply built for each call carries a record mark that says "last
 *     fragment" and its length, and decodes back through the record-marking
 *     decoder to the same bytes;
 *   - a call built as the device makes device_intr_srq (the call's xid,
 *     program, version and procedure, its opaque data as the handle)
 *     decodes back through the call decoder to the same header, with the
 *     opaque data as its arguments. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/vxi11_rpc.h"

/* What one run saw, as text: comparable across runs. */
typedef struct seen {
    dw_buf log;
} seen;

static void fail(const char *what, const seen *a, const seen *b)
{
    fprintf(stderr, "fuzz_vxi11: %s\n--- whole:\n%.*s\n--- cut:\n%.*s\n", what, (int)a->log.len,
            (const char *)a->log.data, (int)b->log.len, (const char *)b->log.data);
    abort();
}

static uint64_t hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void inside(const uint8_t *base, size_t n, const uint8_t *p, size_t len, const char *what)
{
    if (len && (p < base || p > base + n || len > (size_t)(base + n - p))) {
        fprintf(stderr, "fuzz_vxi11: %s points outside its record\n", what);
        abort();
    }
}

/* A reply for the call, marked, read back through a record decoder. */
static void reply_round_trip(const dw_sim_rpc_call *c, const dw_sim_vxi11_args *a)
{
    dw_buf out = DW_BUF_INIT, back = DW_BUF_INIT;
    const uint32_t words[] = {0, (uint32_t)a->lid};
    if (dw_sim_rpc_reply_begin(&out, c->xid, DW_RPC_SUCCESS) != DW_OK ||
        dw_sim_rpc_put_u32(&out, words, 2) != DW_OK ||
        dw_sim_rpc_put_opaque(&out, a->data, a->data_len) != DW_OK)
        abort();
    dw_sim_rpc_reply_end(&out);
    uint32_t mark = (uint32_t)out.data[0] << 24 | (uint32_t)out.data[1] << 16 |
                    (uint32_t)out.data[2] << 8 | out.data[3];
    if (mark != (0x80000000u | (uint32_t)(out.len - 4)) || (out.len - 4) % 4 != 0) {
        fprintf(stderr, "fuzz_vxi11: a reply's record mark is wrong\n");
        abort();
    }
    dw_sim_rpc_rm rm;
    dw_sim_rpc_rm_init(&rm, out.len);
    size_t used = 0;
    dw_error err;
    if (dw_sim_rpc_rm_feed(&rm, out.data, out.len, &used, &back, &err) != DW_OK ||
        used != out.len || back.len != out.len - 4 || memcmp(back.data, out.data + 4, back.len)) {
        fprintf(stderr, "fuzz_vxi11: a reply does not read back\n");
        abort();
    }
    dw_buf_free(&out);
    dw_buf_free(&back);
}

/* A call as the device sends one on the interrupt channel, decoded back. */
static void call_round_trip(const dw_sim_rpc_call *c, const dw_sim_vxi11_args *a)
{
    dw_buf out = DW_BUF_INIT, args = DW_BUF_INIT;
    if (dw_sim_rpc_call_begin(&out, c->xid, c->prog, c->vers, c->proc) != DW_OK ||
        dw_sim_rpc_put_opaque(&out, a->data, a->data_len) != DW_OK ||
        dw_sim_rpc_put_opaque(&args, a->data, a->data_len) != DW_OK)
        abort();
    dw_sim_rpc_reply_end(&out);
    dw_sim_rpc_call back;
    dw_error err;
    if (dw_sim_rpc_call_decode(out.data + 4, out.len - 4, &back, &err) != DW_OK ||
        back.xid != c->xid || back.rpcvers != 2 || back.prog != c->prog || back.vers != c->vers ||
        back.proc != c->proc || back.nargs != args.len ||
        memcmp(back.args, args.data, args.len) != 0) {
        fprintf(stderr, "fuzz_vxi11: a call the device makes does not decode back\n");
        abort();
    }
    dw_buf_free(&out);
    dw_buf_free(&args);
}

/* One record: its call, decoded as the device would. */
static void decode(seen *s, const dw_buf *rec)
{
    dw_sim_rpc_call c;
    dw_error err;
    dw_error_clear(&err);
    dw_buf_printf(&s->log, "record %zu %016llx: ", rec->len,
                  (unsigned long long)hash(rec->data, rec->len));
    if (dw_sim_rpc_call_decode(rec->data, rec->len, &c, &err) != DW_OK) {
        dw_buf_printf(&s->log, "%s\n", dw_error_message(&err));
        return;
    }
    inside(rec->data, rec->len, c.args, c.nargs, "a call's arguments");
    dw_buf_printf(&s->log, "xid %u rpc %u prog %u vers %u proc %u args %zu", c.xid, c.rpcvers,
                  c.prog, c.vers, c.proc, c.nargs);
    dw_sim_vxi11_args a;
    int rc = dw_sim_vxi11_args_decode(c.prog, c.proc, c.args, c.nargs, &a, &err);
    if (rc == DW_OK) {
        inside(c.args, c.nargs, a.data, a.data_len, "opaque data");
        inside(c.args, c.nargs, (const uint8_t *)a.device, a.device_len, "a device name");
        dw_buf_printf(&s->log, " lid %d flags %u data %zu dev %zu\n", (int)a.lid, a.flags,
                      a.data_len, a.device_len);
        reply_round_trip(&c, &a);
        call_round_trip(&c, &a);
    } else {
        dw_buf_printf(&s->log, " %s\n", dw_err_name(rc));
    }
    dw_sim_pmap_query q;
    for (uint32_t v = 2; v <= 4; v++)
        if (dw_sim_pmap_query_decode(v, c.args, c.nargs, &q, &err) == DW_OK)
            dw_buf_printf(&s->log, "  pmap v%u %u %u %u\n", v, q.prog, q.vers, q.prot);
}

/* Feed stream[0..n) in pieces ending at cuts[0..ncuts) (then the rest). */
static void run(seen *s, size_t max, const uint8_t *stream, size_t n, const size_t *cuts,
                size_t ncuts)
{
    dw_sim_rpc_rm rm;
    dw_sim_rpc_rm_init(&rm, max);
    dw_buf rec = DW_BUF_INIT;
    size_t at = 0;
    int stopped = 0;
    for (size_t k = 0; k <= ncuts && !stopped; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        /* A piece exactly its bytes, so that an over-read is caught. */
        uint8_t *piece = malloc(end - at ? end - at : 1);
        if (!piece)
            abort();
        memcpy(piece, stream + at, end - at);
        size_t off = 0;
        while (off < end - at) {
            size_t used = 0;
            dw_error err;
            dw_error_clear(&err);
            int rc = dw_sim_rpc_rm_feed(&rm, piece + off, end - at - off, &used, &rec, &err);
            if (used > end - at - off)
                abort();
            off += used;
            if (rc == DW_MORE)
                break;
            if (rc != DW_OK) {
                dw_buf_printf(&s->log, "stop %s at %zu\n", dw_err_name(rc), at + off);
                stopped = 1;
                break;
            }
            decode(s, &rec);
            dw_buf_clear(&rec);
        }
        free(piece);
        at = end;
    }
    if (!stopped)
        dw_buf_printf(&s->log, "end partial %d\n", dw_sim_rpc_rm_partial(&rm) || rec.len);
    dw_buf_free(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = (size_t)data[0] * 16 + 16;
    const uint8_t *stream = data + 1;
    size_t n = size - 1;
    if (n > 64 * 1024)
        return 0;
    seen whole = {DW_BUF_INIT}, cut = {DW_BUF_INIT};
    run(&whole, max, stream, n, NULL, 0);
    /* One byte at a time. */
    size_t *cuts = malloc((n ? n : 1) * sizeof *cuts);
    if (!cuts)
        abort();
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    run(&cut, max, stream, n, cuts, n);
    if (cut.log.len != whole.log.len || memcmp(cut.log.data, whole.log.data, cut.log.len))
        fail("one byte at a time differs from the stream whole", &whole, &cut);
    /* Two pieces, at every cut point (or 64 of them). */
    size_t step = n <= 1024 ? 1 : n / 64;
    for (size_t k = 1; k < n; k += step) {
        dw_buf_clear(&cut.log);
        run(&cut, max, stream, n, &k, 1);
        if (cut.log.len != whole.log.len || memcmp(cut.log.data, whole.log.data, cut.log.len)) {
            char what[64];
            snprintf(what, sizeof what, "cut at %zu differs from the stream whole", k);
            fail(what, &whole, &cut);
        }
    }
    free(cuts);
    dw_buf_free(&whole.log);
    dw_buf_free(&cut.log);
    return 0;
}
