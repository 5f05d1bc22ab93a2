#include "devwire/buf.h"
#include "devwire/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dw_buf_init(dw_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void dw_buf_free(dw_buf *b)
{
    if (!b)
        return;
    free(b->data);
    dw_buf_init(b);
}

void dw_buf_clear(dw_buf *b)
{
    b->len = 0;
}

void dw_buf_shrink(dw_buf *b, size_t cap)
{
    if (b->cap <= cap)
        return;
    size_t keep = b->len > cap ? b->len : cap;
    if (keep == 0) {
        dw_buf_free(b);
        return;
    }
    uint8_t *p = realloc(b->data, keep);
    if (!p)
        return;
    b->data = p;
    b->cap = keep;
}

int dw_buf_reserve(dw_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return DW_ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return DW_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return DW_ENOMEM;
    b->data = p;
    b->cap = cap;
    return DW_OK;
}

int dw_buf_append(dw_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return DW_OK;
    /* p may point into b itself (appending part of the buffer to itself):
     * find it again after a reallocation moved the storage. */
    const uint8_t *src = p;
    int inside = b->data && src >= b->data && src < b->data + b->len;
    size_t off = inside ? (size_t)(src - b->data) : 0;
    int rc = dw_buf_reserve(b, n);
    if (rc != DW_OK)
        return rc;
    if (inside)
        src = b->data + off;
    memmove(b->data + b->len, src, n);
    b->len += n;
    return DW_OK;
}

int dw_buf_append_str(dw_buf *b, const char *s)
{
    return dw_buf_append(b, s, strlen(s));
}

int dw_buf_append_byte(dw_buf *b, uint8_t c)
{
    return dw_buf_append(b, &c, 1);
}

int dw_buf_printf(dw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return DW_EINVAL;
    int rc = dw_buf_reserve(b, (size_t)n + 1);
    if (rc != DW_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return DW_OK;
}

void dw_buf_consume(dw_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void dw_buf_truncate(dw_buf *b, size_t n)
{
    if (n < b->len)
        b->len = n;
}

int dw_buf_nul_terminate(dw_buf *b)
{
    int rc = dw_buf_reserve(b, 1);
    if (rc == DW_OK)
        b->data[b->len] = 0;
    return rc;
}
