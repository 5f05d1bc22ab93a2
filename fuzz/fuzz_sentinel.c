/* Sentinel framing under arbitrary cuts.
 * Input: [sentinel length: below 0xc0, 1 + low 2 bits; else 17 + low 6 bits]
 * [sentinel bytes] then the common
 * layout of fuzz_framing.h (max frame, split, stream). */
#include <string.h>

#include "fuzz_framing.h"

static uint8_t sentinel[80];
static size_t sentinel_len;

/* The payload is the stream up to the first sentinel, which follows it. A
 * frame that reaches the maximum (payload and sentinel) without that sentinel
 * is refused there, even if the stream ends right after. */
static const char *check(const dw_marshaller *m, const uint8_t *stream, size_t len, const fz_rec *r)
{
    size_t max = dw_marshaller_max_frame(m);
    size_t left = len - r->start;
    const uint8_t *rest = stream + r->start;
    const uint8_t *first = memmem(rest, left, sentinel, sentinel_len);
    if (r->rc == DW_ETRUNCATED)
        return first         ? "DW_ETRUNCATED although a sentinel follows"
               : left >= max ? "DW_ETRUNCATED for a frame that reached the maximum"
                             : NULL;
    if (r->rc == DW_ETOOBIG)
        return first && (size_t)(first - rest) + sentinel_len <= max
                   ? "DW_ETOOBIG for a frame within the maximum"
               : left < max ? "DW_ETOOBIG for a frame that did not reach the maximum"
                            : NULL;
    if (r->rc != DW_OK)
        return "an unexpected error";
    size_t n = r->payload.len;
    if (r->consumed - r->start != n + sentinel_len)
        return "frame length is not payload + sentinel";
    if (n + sentinel_len > max)
        return "frame larger than the maximum accepted";
    if ((n && memcmp(stream + r->start, r->payload.data, n) != 0) ||
        memcmp(stream + r->start + n, sentinel, sentinel_len) != 0)
        return "payload or sentinel differs from the stream";
    if (first != rest + n)
        return "frame does not end at the first sentinel";
    return NULL;
}

static dw_marshaller *make(void)
{
    return dw_sentinel_marshaller_new(sentinel, sentinel_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_framing framing = {make, check, NULL};
    fz_reader r = {data, size};
    uint8_t opt = fz_byte(&r);
    /* Mostly short sentinels; 0xc0 and up: 17..80 bytes (the long paths). */
    sentinel_len = opt < 0xc0 ? (size_t)(opt & 3u) + 1 : (size_t)(opt & 0x3fu) + 17;
    /* fz_byte's way (0 once the input ends), as one copy: GCC 12 at -O3
     * warns of an overflow in the byte loop that cannot happen. */
    size_t k = sentinel_len < r.n ? sentinel_len : r.n;
    memcpy(sentinel, r.p, k);
    memset(sentinel + k, 0, sentinel_len - k);
    r.p += k;
    r.n -= k;
    fz_framing_drive(&r, &framing);
    return 0;
}
