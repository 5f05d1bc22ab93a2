/* Fixed-length framing under arbitrary cuts.
 * Input: [length - 1: 2 bytes big-endian, modulo 1024] then the common layout
 * of fuzz_framing.h (max frame, split, stream). */
#include "fuzz_framing.h"

static size_t length;

/* The payload is the next `length` bytes of the stream. */
static const char *check(const dw_marshaller *m, const uint8_t *stream, size_t len, const fz_rec *r)
{
    size_t max = dw_marshaller_max_frame(m);
    if (r->rc == DW_ETOOBIG)
        return length > max ? NULL : "DW_ETOOBIG for a length within the maximum";
    if (r->rc == DW_ETRUNCATED)
        return length > max || len - r->start >= length ? "DW_ETRUNCATED with a whole frame left"
                                                        : NULL;
    if (r->rc != DW_OK)
        return "an unexpected error";
    if (r->payload.len != length || r->consumed - r->start != length)
        return "frame is not exactly the configured length";
    if (length > max)
        return "frame larger than the maximum accepted";
    if (memcmp(stream + r->start, r->payload.data, length) != 0)
        return "payload differs from the stream";
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    unsigned hi = fz_byte(&r);
    length = (size_t)(((hi << 8) | fz_byte(&r)) % 1024u) + 1;
    size_t max = fz_max_frame(fz_byte(&r));
    fz_split s;
    fz_read_split(&r, &s);

    dw_marshaller *m = dw_fixed_marshaller_new(length);
    if (!m)
        abort();
    dw_marshaller_set_max_frame(m, max);
    fz_recs whole;
    fz_differential(m, r.p, r.n, &s, check, 0, &whole);

    /* Candidates: the stream's pieces (mostly refused: wrong length) and
     * the stream cut into frames of the right length. */
    fz_payloads cand = {0};
    fz_candidates(&cand, r.p, r.n, &s, &whole);
    for (size_t off = 0; off + length <= r.n && cand.n < 160; off += length)
        fz_payloads_add(&cand, r.p + off, length);
    dw_marshaller_set_max_frame(m, DW_DEFAULT_MAX_FRAME);
    fz_round_trip(m, &cand, &s);

    fz_payloads_free(&cand);
    fz_recs_free(&whole);
    dw_marshaller_free(m);
    return 0;
}
