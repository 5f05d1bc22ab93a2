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

static dw_marshaller *make(void)
{
    return dw_fixed_marshaller_new(length);
}

/* Besides the stream's pieces (mostly refused: wrong length), the stream cut
 * into frames of the right length. */
static void more_candidates(fz_payloads *cand, const uint8_t *stream, size_t len)
{
    for (size_t off = 0; off + length <= len && cand->n < 160; off += length)
        fz_payloads_add(cand, stream + off, length);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_framing framing = {make, check, more_candidates};
    fz_reader r = {data, size};
    unsigned hi = fz_byte(&r);
    length = (size_t)(((hi << 8) | fz_byte(&r)) % 1024u) + 1;
    fz_framing_drive(&r, &framing);
    return 0;
}
