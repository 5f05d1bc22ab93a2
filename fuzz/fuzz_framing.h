/* Shared machinery of the framing fuzz targets (static functions only, so
 * each fuzz_<target>.c still exports nothing but LLVMFuzzerTestOneInput).
 * The byte framings with nothing else to check (fixed, sentinel,
 * length-prefixed) run entirely through fz_framing_drive; JSON lines and
 * SCPI call the pieces themselves around their own oracles.
 *
 * Input layout, after the target's own option bytes:
 *   byte  max frame: 0x00-0x7f default; 0x80-0xbf 1..64; 0xc0-0xff 32..2048
 *   byte  split: bit 0-1 mode, bit 2 end with DW_ETIMEDOUT instead of DW_EOF,
 *         bit 3-7 parameter
 *           mode 0: chunks of (parameter + 1) bytes
 *           mode 1: explicit gaps: the next (parameter % 16 + 1) bytes are
 *                   gaps (0 repeats an offset), repeated cyclically
 *           mode 2: pseudo-random gaps of 1..(parameter + 2) bytes, seeded
 *                   by the next 4 bytes
 *           mode 3: one cut, at byte offset (next byte) of the stream
 *   rest  the stream.
 *
 * Oracles (each mismatch prints what differed and aborts):
 *   - the sequence of results (code, bytes consumed, payload) of the stream
 *     cut at the chosen points equals the sequence of the stream whole;
 *   - every frame consumes at least one byte (no endless loop), DW_EOF only
 *     comes with the whole stream consumed, DW_ETRUNCATED carries every byte
 *     of the incomplete frame, and each framing's own check of an accepted
 *     frame against the stream bytes (the target's `check` callback);
 *   - round trip: payloads the marshaller accepts, marshalled back to back
 *     and unmarshalled through the same kind of cuts, come back byte for
 *     byte, followed by DW_EOF. */
#ifndef DW_FUZZ_FRAMING_H
#define DW_FUZZ_FRAMING_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devwire/buf.h"
#include "devwire/error.h"
#include "devwire/iter.h"
#include "devwire/marshaller.h"

/* A cursor over the fuzzer's input. Reading past the end yields zeros. */
typedef struct fz_reader {
    const uint8_t *p;
    size_t n;
} fz_reader;

static inline uint8_t fz_byte(fz_reader *r)
{
    if (r->n == 0)
        return 0;
    uint8_t c = *r->p++;
    r->n--;
    return c;
}

/* How to cut a stream. */
typedef struct fz_split {
    unsigned mode;
    unsigned param;
    uint8_t gaps[16];
    size_t ngaps;
    uint32_t seed;
    size_t at;
    int end_code;
} fz_split;

static inline size_t fz_max_frame(uint8_t b)
{
    if (b < 0x80)
        return DW_DEFAULT_MAX_FRAME;
    if (b < 0xc0)
        return (size_t)(b - 0x80) + 1;
    return ((size_t)(b - 0xc0) + 1) * 32;
}

static inline void fz_read_split(fz_reader *r, fz_split *s)
{
    uint8_t b = fz_byte(r);
    memset(s, 0, sizeof *s);
    s->mode = b & 3u;
    s->end_code = (b & 4u) ? DW_ETIMEDOUT : DW_EOF;
    s->param = (unsigned)(b >> 3);
    if (s->mode == 1) {
        s->ngaps = s->param % 16 + 1;
        for (size_t i = 0; i < s->ngaps; i++)
            s->gaps[i] = fz_byte(r);
    } else if (s->mode == 2) {
        for (int i = 0; i < 4; i++)
            s->seed = (s->seed << 8) | fz_byte(r);
    } else if (s->mode == 3) {
        s->at = fz_byte(r);
    }
}

static inline uint32_t fz_rand(uint32_t *x)
{
    /* xorshift32; the state must not be 0. */
    uint32_t v = *x ? *x : 0x9e3779b9u;
    v ^= v << 13;
    v ^= v >> 17;
    v ^= v << 5;
    *x = v;
    return v;
}

/* Cut offsets (ascending, inside (0, len)) for a stream of len bytes.
 * Returns a malloc'ed array (NULL when there are none) and its size. */
static inline size_t *fz_cuts(const fz_split *s, size_t len, size_t *ncuts)
{
    *ncuts = 0;
    if (len < 2)
        return NULL;
    size_t cap = 2 * len + 16;
    size_t *cuts = malloc(cap * sizeof *cuts);
    if (!cuts)
        abort();
    size_t pos = 0, k = 0;
    uint32_t seed = s->seed;
    for (;;) {
        size_t gap;
        switch (s->mode) {
        case 0:
            gap = (size_t)s->param + 1;
            break;
        case 1: /* a 0 gap repeats an offset (or cuts at 0): the iterator skips it */
            gap = (size_t)s->gaps[k++ % s->ngaps];
            if (k > s->ngaps && pos == 0)
                gap = len; /* all gaps 0 */
            break;
        case 2:
            gap = (size_t)(fz_rand(&seed) % (s->param + 2)) + 1;
            break;
        default:
            gap = pos == 0 && s->at > 0 ? s->at : len;
            break;
        }
        pos += gap;
        if (pos >= len || *ncuts == cap)
            break;
        cuts[(*ncuts)++] = pos;
    }
    return cuts;
}

/* One dw_unmarshall result. */
typedef struct fz_rec {
    int rc;
    size_t start;    /* stream offset where the frame began */
    size_t consumed; /* stream offset after the call */
    dw_buf payload;
} fz_rec;

typedef struct fz_recs {
    fz_rec *v;
    size_t n, cap;
} fz_recs;

static inline void fz_recs_free(fz_recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        dw_buf_free(&r->v[i].payload);
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* Check of one result against the stream: an accepted frame (DW_OK) or a
 * DW_ETOOBIG / DW_ETRUNCATED / DW_EPROTO that the bytes must justify.
 * Returns a static description of what is wrong, or NULL. */
typedef const char *(*fz_check_fn)(const dw_marshaller *m, const uint8_t *stream, size_t len,
                                   const fz_rec *rec);

static inline void fz_fail(const char *what, const dw_marshaller *m, size_t index, const fz_rec *a,
                           const fz_rec *b)
{
    fprintf(stderr, "fuzz oracle: %s: %s (max frame %zu), result %zu\n", dw_marshaller_name(m),
            what, dw_marshaller_max_frame(m), index);
    const fz_rec *r[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        if (!r[i])
            continue;
        fprintf(stderr, "  %s: %s, bytes %zu..%zu, payload %zu bytes:", i ? "cut" : "whole",
                dw_err_name(r[i]->rc), r[i]->start, r[i]->consumed, r[i]->payload.len);
        for (size_t j = 0; j < r[i]->payload.len && j < 64; j++)
            fprintf(stderr, " %02x", r[i]->payload.data[j]);
        fprintf(stderr, "\n");
    }
    abort();
}

/* Unmarshall the stream cut at `cuts` until the first non-DW_OK result. */
static inline void fz_run(const dw_marshaller *m, const uint8_t *stream, size_t len,
                          const size_t *cuts, size_t ncuts, int end_code, fz_check_fn check,
                          fz_recs *out)
{
    dw_mem_iter it;
    dw_mem_iter_init(&it, stream, len, cuts, ncuts);
    it.end_code = end_code;
    memset(out, 0, sizeof *out);
    size_t prev = 0;
    for (;;) {
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 16;
            out->v = realloc(out->v, out->cap * sizeof *out->v);
            if (!out->v)
                abort();
        }
        fz_rec *r = &out->v[out->n++];
        dw_buf_init(&r->payload);
        dw_error err;
        dw_error_clear(&err);
        r->start = prev;
        r->rc = dw_unmarshall(m, &it.base, &r->payload, &err);
        r->consumed = it.pos - dw_iter_pending(&it.base);
        if (r->rc != DW_OK && r->rc != DW_EOF && err.message[0] == '\0')
            fz_fail("an error without a message", m, out->n - 1, r, NULL);
        if (r->rc == DW_OK) {
            if (r->consumed <= prev)
                fz_fail("a frame that consumed no bytes", m, out->n - 1, r, NULL);
            const char *bad = check ? check(m, stream, len, r) : NULL;
            if (bad)
                fz_fail(bad, m, out->n - 1, r, NULL);
            prev = r->consumed;
            continue;
        }
        if (check && (r->rc == DW_ETOOBIG || r->rc == DW_ETRUNCATED || r->rc == DW_EPROTO)) {
            const char *bad = check(m, stream, len, r);
            if (bad)
                fz_fail(bad, m, out->n - 1, r, NULL);
        }
        if (r->rc == DW_EOF && (prev != len || r->consumed != len || r->payload.len != 0))
            fz_fail("DW_EOF before the stream's end or with bytes", m, out->n - 1, r, NULL);
        if (r->rc == end_code && r->consumed != len)
            fz_fail("end of stream reported before the stream's end", m, out->n - 1, r, NULL);
        if (r->rc == DW_ETRUNCATED && (end_code != DW_EOF || r->payload.len != len - prev ||
                                       memcmp(r->payload.data, stream + prev, len - prev) != 0))
            fz_fail("DW_ETRUNCATED without the incomplete frame's bytes", m, out->n - 1, r, NULL);
        return;
    }
}

/* Which results must agree byte for byte: the payload is part of the
 * contract for DW_OK and DW_ETRUNCATED (and JSON's DW_EPROTO, checked by the
 * caller through `proto_payload`); after other errors only the code is. */
static inline void fz_compare(const dw_marshaller *m, const fz_recs *whole, const fz_recs *cut,
                              int proto_payload)
{
    size_t n = whole->n < cut->n ? whole->n : cut->n;
    for (size_t i = 0; i < n; i++) {
        const fz_rec *a = &whole->v[i], *b = &cut->v[i];
        if (a->rc != b->rc)
            fz_fail("cut stream gives another result than the whole stream", m, i, a, b);
        int full =
            a->rc == DW_OK || a->rc == DW_ETRUNCATED || (a->rc == DW_EPROTO && proto_payload);
        if (!full)
            continue;
        if (a->consumed != b->consumed)
            fz_fail("cut stream consumes another number of bytes", m, i, a, b);
        if (a->payload.len != b->payload.len ||
            (a->payload.len && memcmp(a->payload.data, b->payload.data, a->payload.len) != 0))
            fz_fail("cut stream gives another payload", m, i, a, b);
    }
    if (whole->n != cut->n)
        fz_fail("cut stream gives another number of results", m, n ? n - 1 : 0,
                n ? &whole->v[n - 1] : NULL, n ? &cut->v[n - 1] : NULL);
}

/* The split-invariance oracle; also returns the whole stream's results
 * (caller frees) for use as round-trip candidates. */
static inline void fz_differential(const dw_marshaller *m, const uint8_t *stream, size_t len,
                                   const fz_split *s, fz_check_fn check, int proto_payload,
                                   fz_recs *whole)
{
    fz_recs cut;
    size_t ncuts;
    size_t *cuts = fz_cuts(s, len, &ncuts);
    fz_run(m, stream, len, NULL, 0, s->end_code, check, whole);
    fz_run(m, stream, len, cuts, ncuts, s->end_code, check, &cut);
    fz_compare(m, whole, &cut, proto_payload);
    /* Byte by byte, the most adversarial chunking. */
    fz_recs_free(&cut);
    if (len <= 512) {
        fz_split one = *s;
        one.mode = 0;
        one.param = 0;
        size_t n1;
        size_t *c1 = fz_cuts(&one, len, &n1);
        fz_run(m, stream, len, c1, n1, s->end_code, check, &cut);
        fz_compare(m, whole, &cut, proto_payload);
        fz_recs_free(&cut);
        free(c1);
    }
    free(cuts);
}

/* Round trip: a list of candidate payloads. */
typedef struct fz_payloads {
    dw_buf *v;
    size_t n, cap;
} fz_payloads;

static inline void fz_payloads_add(fz_payloads *p, const uint8_t *d, size_t n)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->v = realloc(p->v, p->cap * sizeof *p->v);
        if (!p->v)
            abort();
    }
    dw_buf *b = &p->v[p->n++];
    dw_buf_init(b);
    if (dw_buf_append(b, d, n) != DW_OK)
        abort();
}

static inline void fz_payloads_free(fz_payloads *p)
{
    for (size_t i = 0; i < p->n; i++)
        dw_buf_free(&p->v[i]);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* Marshall every candidate the marshaller accepts (those it refuses must
 * leave the output unchanged), then unmarshall the frames through cuts and
 * expect exactly the accepted payloads, then DW_EOF. `m` must allow frames
 * as large as the candidates. Returns how many were accepted. */
static inline size_t fz_round_trip(const dw_marshaller *m, const fz_payloads *cand,
                                   const fz_split *s)
{
    dw_buf wire = DW_BUF_INIT;
    char *ok = calloc(cand->n + 1, 1);
    if (!ok)
        abort();
    size_t accepted = 0;
    for (size_t i = 0; i < cand->n; i++) {
        dw_error err;
        dw_error_clear(&err);
        size_t before = wire.len;
        int rc = dw_marshall(m, cand->v[i].data, cand->v[i].len, &wire, &err);
        if (rc == DW_ENOMEM)
            abort();
        if (rc != DW_OK) {
            if (wire.len != before || err.message[0] == '\0') {
                fprintf(stderr,
                        "fuzz oracle: %s: refused payload %zu changed the output or "
                        "has no message\n",
                        dw_marshaller_name(m), i);
                abort();
            }
            continue;
        }
        ok[i] = 1;
        accepted++;
    }
    /* The byte framings' payload level is a dw_buf: the same frames. */
    int bytes_level = strcmp(dw_marshaller_name(m), "json-lines") != 0;
    if (bytes_level) {
        dw_buf again = DW_BUF_INIT;
        for (size_t i = 0; i < cand->n; i++) {
            int rc = dw_marshall_payload(m, &cand->v[i], &again, NULL);
            if ((rc == DW_OK) != (ok[i] != 0)) {
                fprintf(stderr, "fuzz oracle: %s: dw_marshall_payload gives %s on payload %zu\n",
                        dw_marshaller_name(m), dw_err_name(rc), i);
                abort();
            }
        }
        if (again.len != wire.len || (wire.len && memcmp(again.data, wire.data, wire.len) != 0)) {
            fprintf(stderr, "fuzz oracle: %s: dw_marshall_payload differs from dw_marshall\n",
                    dw_marshaller_name(m));
            abort();
        }
        dw_buf_free(&again);
    }
    size_t ncuts;
    size_t *cuts = fz_cuts(s, wire.len, &ncuts);
    dw_mem_iter it;
    dw_mem_iter_init(&it, wire.data, wire.len, cuts, ncuts);
    dw_buf got = DW_BUF_INIT;
    size_t turn = 0;
    for (size_t i = 0; i <= cand->n; i++) {
        if (i < cand->n && !ok[i])
            continue;
        dw_error err;
        dw_error_clear(&err);
        int rc;
        if (bytes_level && turn++ % 2) {
            /* Every other frame through the payload level. */
            void *pl = NULL;
            rc = dw_unmarshall_payload(m, &it.base, &pl, &err);
            dw_buf_clear(&got);
            if (rc == DW_OK && dw_buf_append(&got, ((dw_buf *)pl)->data, ((dw_buf *)pl)->len))
                abort();
            if ((rc == DW_OK) != (pl != NULL))
                abort();
            dw_payload_free(m, pl);
        } else {
            rc = dw_unmarshall(m, &it.base, &got, &err);
        }
        int want = i < cand->n ? DW_OK : DW_EOF;
        int same = rc == want;
        if (same && i < cand->n)
            same = got.len == cand->v[i].len &&
                   (got.len == 0 || memcmp(got.data, cand->v[i].data, got.len) == 0);
        if (!same) {
            fprintf(stderr,
                    "fuzz oracle: %s: round trip of payload %zu (%zu bytes) gave %s (%s), "
                    "%zu bytes:",
                    dw_marshaller_name(m), i, i < cand->n ? cand->v[i].len : 0, dw_err_name(rc),
                    dw_error_message(&err), got.len);
            for (size_t j = 0; j < got.len && j < 64; j++)
                fprintf(stderr, " %02x", got.data[j]);
            fprintf(stderr, "\n  sent:");
            for (size_t j = 0; i < cand->n && j < cand->v[i].len && j < 64; j++)
                fprintf(stderr, " %02x", cand->v[i].data[j]);
            fprintf(stderr, "\n");
            abort();
        }
    }
    dw_buf_free(&got);
    dw_buf_free(&wire);
    free(cuts);
    free(ok);
    return accepted;
}

/* Candidates taken from a stream: its pieces between the cut points, and
 * every accepted payload of the whole-stream run. */
static inline void fz_candidates(fz_payloads *p, const uint8_t *stream, size_t len,
                                 const fz_split *s, const fz_recs *whole)
{
    size_t ncuts;
    size_t *cuts = fz_cuts(s, len, &ncuts);
    size_t prev = 0;
    for (size_t i = 0; i <= ncuts && p->n < 64; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        fz_payloads_add(p, stream + prev, end - prev);
        prev = end;
    }
    free(cuts);
    for (size_t i = 0; i < whole->n && p->n < 128; i++)
        if (whole->v[i].rc == DW_OK)
            fz_payloads_add(p, whole->v[i].payload.data, whole->v[i].payload.len);
}

/* What a simple byte framing target brings to fz_framing_drive: the
 * marshaller built from the options it read, its check of a result against
 * the stream, and (NULL: none) round-trip candidates of its own beyond
 * fz_candidates'. */
typedef struct fz_framing {
    dw_marshaller *(*make)(void);
    fz_check_fn check;
    void (*more_candidates)(fz_payloads *cand, const uint8_t *stream, size_t len);
} fz_framing;

/* The whole driver of a byte framing target, once its own option bytes are
 * read from `r`: max frame and split bytes, then the split-invariance oracle
 * on the rest of the input, then the round trip of its candidates (at the
 * default maximum frame). */
static inline void fz_framing_drive(fz_reader *r, const fz_framing *fr)
{
    size_t max = fz_max_frame(fz_byte(r));
    fz_split s;
    fz_read_split(r, &s);

    dw_marshaller *m = fr->make();
    if (!m)
        abort();
    dw_marshaller_set_max_frame(m, max);
    fz_recs whole;
    fz_differential(m, r->p, r->n, &s, fr->check, 0, &whole);

    fz_payloads cand = {0};
    fz_candidates(&cand, r->p, r->n, &s, &whole);
    if (fr->more_candidates)
        fr->more_candidates(&cand, r->p, r->n);
    dw_marshaller_set_max_frame(m, DW_DEFAULT_MAX_FRAME);
    fz_round_trip(m, &cand, &s);

    fz_payloads_free(&cand);
    fz_recs_free(&whole);
    dw_marshaller_free(m);
}

#endif
