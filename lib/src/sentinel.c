/* Sentinel framing: payload, then a non-empty terminator. */
#include "marshaller_int.h"

#include <string.h>

/* Position of the first sentinel in d[0..n), or n. glibc's memmem is slow
 * for short needles (under 1 GB/s for "\r\n"), so short sentinels are found
 * by memchr on their first byte and a compare; O(n * len) at worst (a payload
 * made of the first byte), linear for a given marshaller. Long sentinels use
 * memmem (two-way: linear whatever the input). */
static size_t find(const dw_marshaller *m, const uint8_t *d, size_t n)
{
    size_t sl = m->sentinel_len;
    if (n < sl) /* d may be NULL for an empty payload */
        return n;
    if (sl == 1) {
        const uint8_t *hit = memchr(d, m->sentinel[0], n);
        return hit ? (size_t)(hit - d) : n;
    }
    if (sl > 16) {
        const uint8_t *hit = memmem(d, n, m->sentinel, sl);
        return hit ? (size_t)(hit - d) : n;
    }
    size_t last_start = n - sl;
    for (size_t i = 0; i <= last_start; i++) {
        const uint8_t *hit = memchr(d + i, m->sentinel[0], last_start - i + 1);
        if (!hit)
            return n;
        i = (size_t)(hit - d);
        if (memcmp(hit + 1, m->sentinel + 1, sl - 1) == 0)
            return i;
    }
    return n;
}

/* A sentinel that starts in the raw bytes already scanned and ends in the
 * new chunk: how many of its bytes are in raw (0 if none). The largest such
 * count is the earliest sentinel. */
static size_t straddle(const dw_marshaller *m, const dw_buf *raw, const uint8_t *d, size_t n)
{
    size_t sl = m->sentinel_len;
    size_t k = sl - 1 < raw->len ? sl - 1 : raw->len;
    for (; k > 0; k--) {
        if (n >= sl - k && memcmp(raw->data + raw->len - k, m->sentinel, k) == 0 &&
            memcmp(d, m->sentinel + k, sl - k) == 0)
            return k;
    }
    return 0;
}

int dw__sentinel_feed(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n,
                      size_t *used, dw_buf *raw, dw_error *err)
{
    (void)st;
    size_t sl = m->sentinel_len;
    size_t r = raw->len;
    size_t max = m->max_frame;
    /* Frame bytes still allowed; feed() is only called again while r < max. */
    size_t room = r < max ? max - r : 0;
    size_t k = straddle(m, raw, d, n);
    if (k) {
        if (sl - k > room)
            goto too_big;
        *used = sl - k;
        dw_buf_truncate(raw, r - k);
        return DW_OK;
    }
    /* Only a sentinel that ends inside the maximum frame counts, so the search
     * stops there: an oversized chunk is not scanned to its end. */
    size_t lim = n < room ? n : room;
    size_t i = find(m, d, lim);
    if (i < lim) {
        *used = i + sl;
        return dw_buf_append(raw, d, i);
    }
    if (n < room) {
        *used = n;
        return dw_buf_append(raw, d, n) == DW_OK ? DW_MORE : DW_ENOMEM;
    }
too_big:
    /* Keep what fits for the caller to inspect; stop reading. */
    *used = n < room ? n : room;
    if (dw_buf_append(raw, d, *used) != DW_OK)
        return DW_ENOMEM;
    return dw_error_set(err, DW_ETOOBIG, "%s: no terminator within the maximum frame of %zu bytes",
                        m->ops->name, max);
}

int dw__sentinel_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out,
                          dw_error *err)
{
    size_t sl = m->sentinel_len;
    size_t i = find(m, p, n);
    if (i == n && sl > 1 && n > 0) {
        /* The payload's tail and the sentinel's head could form an earlier
         * sentinel ("xa" + "aa"): the first one must start at n. */
        size_t tail = n < sl - 1 ? n : sl - 1;
        uint8_t tmp[2 * 64];
        dw_buf big = DW_BUF_INIT;
        uint8_t *t = tmp;
        if (tail + sl > sizeof tmp) {
            if (dw_buf_reserve(&big, tail + sl) != DW_OK)
                return DW_ENOMEM;
            t = big.data;
        }
        memcpy(t, p + n - tail, tail);
        memcpy(t + tail, m->sentinel, sl);
        size_t j = find(m, t, tail + sl);
        dw_buf_free(&big);
        if (j < tail)
            i = n - tail + j;
    }
    if (i < n)
        return dw_error_set(err, DW_EINVAL,
                            "%s: payload contains the sentinel (at byte %zu); it cannot be framed",
                            m->ops->name, i);
    int rc = dw_buf_reserve(out, n + sl);
    if (rc == DW_OK) {
        dw_buf_append(out, p, n);
        dw_buf_append(out, m->sentinel, sl);
    }
    return rc;
}

static const dw__marshaller_ops sentinel_ops = {
    .name = "sentinel",
    .marshall = dw__sentinel_marshall,
    .feed = dw__sentinel_feed,
};

dw_marshaller *dw_sentinel_marshaller_new(const void *sentinel, size_t len)
{
    if (!sentinel || len == 0)
        return NULL;
    return dw__marshaller_alloc(&sentinel_ops, sentinel, len);
}
