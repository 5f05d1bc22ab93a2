/* A growable byte buffer. A transparent value type: zero-initialise it (or
 * call dw_buf_init) and release it with dw_buf_free. Not thread-safe. */
#ifndef DEVWIRE_BUF_H
#define DEVWIRE_BUF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dw_buf {
    uint8_t *data; /* owned; NULL while cap == 0 */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
} dw_buf;

#define DW_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void dw_buf_init(dw_buf *b);
/* Release the storage and empty the buffer. Accepts NULL. */
void dw_buf_free(dw_buf *b);
/* Forget the contents, keep the storage. */
void dw_buf_clear(dw_buf *b);
/* Give back storage beyond `cap` bytes, keeping the contents: when b->cap >
 * cap, the storage becomes max(len, cap) bytes (none at all when that is 0).
 * For a buffer reused from one message to the next, so that one large
 * message does not leave its size allocated for the buffer's lifetime. If
 * the system cannot reallocate smaller, the storage stays as it was (nothing
 * is lost either way). */
void dw_buf_shrink(dw_buf *b, size_t cap);
/* Make room for `extra` more bytes beyond len (grows geometrically, so a
 * sequence of appends costs amortised O(1) per byte). DW_OK or DW_ENOMEM. */
int dw_buf_reserve(dw_buf *b, size_t extra);
/* Append n bytes (p may point into b itself; p may be NULL when n is 0).
 * DW_OK or DW_ENOMEM (b unchanged). */
int dw_buf_append(dw_buf *b, const void *p, size_t n);
int dw_buf_append_str(dw_buf *b, const char *s);
int dw_buf_append_byte(dw_buf *b, uint8_t c);
/* Append printf-style text (no terminating NUL counted in len). */
int dw_buf_printf(dw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (n > len drops all). */
void dw_buf_consume(dw_buf *b, size_t n);
/* Keep the first n bytes (n >= len does nothing). */
void dw_buf_truncate(dw_buf *b, size_t n);
/* Make data[len] a NUL byte without counting it, so text can be used as a C
 * string. DW_OK or DW_ENOMEM. */
int dw_buf_nul_terminate(dw_buf *b);

#ifdef __cplusplus
}
#endif
#endif
