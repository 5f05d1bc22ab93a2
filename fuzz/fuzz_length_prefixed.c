/* Length-prefixed framing under arbitrary cuts.
 * Input: [header: low bits % 3 pick 1, 2 or 4 bytes; bit 7 little-endian]
 * then the common layout of fuzz_framing.h (max frame, split, stream). */
#include "fuzz_framing.h"

static unsigned header_size;
static int little;

static size_t decode(const uint8_t *h)
{
    size_t v = 0;
    for (unsigned i = 0; i < header_size; i++)
        v = (v << 8) | h[little ? header_size - 1 - i : i];
    return v;
}

/* Header, then exactly the announced number of payload bytes. */
static const char *check(const dw_marshaller *m, const uint8_t *stream, size_t len, const fz_rec *r)
{
    size_t max = dw_marshaller_max_frame(m);
    size_t left = len - r->start;
    if (r->rc == DW_ETOOBIG)
        return left >= header_size && header_size + decode(stream + r->start) > max
                   ? NULL
                   : "DW_ETOOBIG without a header announcing too much";
    if (r->rc == DW_ETRUNCATED) {
        if (left < header_size)
            return NULL;
        size_t want = header_size + decode(stream + r->start);
        return want > max    ? "DW_ETRUNCATED for a header announcing more than the maximum"
               : left < want ? NULL
                             : "DW_ETRUNCATED with a whole frame left";
    }
    if (r->rc != DW_OK)
        return "an unexpected error";
    size_t n = r->payload.len;
    if (r->consumed - r->start != header_size + n)
        return "frame length is not header + payload";
    if (decode(stream + r->start) != n)
        return "payload length differs from the header";
    if (header_size + n > max)
        return "frame larger than the maximum accepted";
    if (n && memcmp(stream + r->start + header_size, r->payload.data, n) != 0)
        return "payload differs from the stream";
    return NULL;
}

static dw_marshaller *make(void)
{
    return dw_length_prefixed_marshaller_new(header_size,
                                             little ? DW_LITTLE_ENDIAN : DW_BIG_ENDIAN);
}

/* A payload too long for a 1-byte header: refused. */
static void more_candidates(fz_payloads *cand, const uint8_t *stream, size_t len)
{
    if (header_size == 1 && len > 255)
        fz_payloads_add(cand, stream, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_framing framing = {make, check, more_candidates};
    fz_reader r = {data, size};
    uint8_t opt = fz_byte(&r);
    static const unsigned sizes[3] = {1, 2, 4};
    header_size = sizes[(opt & 0x7fu) % 3];
    little = (opt & 0x80u) != 0;
    fz_framing_drive(&r, &framing);
    return 0;
}
