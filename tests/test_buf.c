/* dw_buf: growth, editing, self-append, NUL termination. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include <devwire/buf.h>
#include <devwire/error.h>

Test(buf, zero_initialised_is_empty)
{
    dw_buf b = DW_BUF_INIT;
    cr_expect(eq(ptr, b.data, NULL));
    cr_expect(eq(sz, b.len, 0));
    dw_buf_free(&b);
    dw_buf_free(NULL);
    dw_buf_init(&b);
    cr_expect(eq(sz, b.cap, 0));
    cr_expect(eq(int, dw_buf_append(&b, NULL, 0), DW_OK), "appending nothing is fine");
    cr_expect(eq(ptr, b.data, NULL), "and allocates nothing");
}

Test(buf, append_grows_geometrically)
{
    dw_buf b = DW_BUF_INIT;
    size_t reallocs = 0;
    size_t lastcap = 0;
    for (int i = 0; i < 100000; i++) {
        cr_assert(eq(int, dw_buf_append_byte(&b, (uint8_t)i), DW_OK));
        if (b.cap != lastcap) {
            reallocs++;
            lastcap = b.cap;
        }
    }
    cr_expect(eq(sz, b.len, 100000));
    cr_expect(le(sz, reallocs, 20), "amortised O(1): %zu reallocations", reallocs);
    for (int i = 0; i < 100000; i += 997)
        cr_assert(eq(u8, b.data[i], (uint8_t)i));
    dw_buf_free(&b);
    cr_expect(eq(sz, b.len, 0));
    cr_expect(eq(ptr, b.data, NULL));
}

Test(buf, reserve_keeps_contents)
{
    dw_buf b = DW_BUF_INIT;
    dw_buf_append_str(&b, "abc");
    cr_assert(eq(int, dw_buf_reserve(&b, 1000), DW_OK));
    cr_expect(ge(sz, b.cap, 1003));
    cr_expect(eq(sz, b.len, 3));
    cr_expect(eq(int, memcmp(b.data, "abc", 3), 0));
    cr_expect(eq(int, dw_buf_reserve(&b, SIZE_MAX), DW_ENOMEM), "overflow is refused");
    cr_expect(eq(sz, b.len, 3));
    dw_buf_free(&b);
}

Test(buf, printf_consume_truncate_clear)
{
    dw_buf b = DW_BUF_INIT;
    cr_assert(eq(int, dw_buf_printf(&b, "%s=%d", "x", 42), DW_OK));
    cr_expect(eq(sz, b.len, 4));
    cr_expect(eq(int, memcmp(b.data, "x=42", 4), 0));
    cr_assert(eq(int, dw_buf_printf(&b, ";%0300d", 7), DW_OK));
    cr_expect(eq(sz, b.len, 305), "long output grows the buffer");
    dw_buf_consume(&b, 2);
    cr_expect(eq(int, memcmp(b.data, "42;000", 6), 0));
    dw_buf_truncate(&b, 2);
    cr_expect(eq(sz, b.len, 2));
    dw_buf_truncate(&b, 10);
    cr_expect(eq(sz, b.len, 2), "truncating to more does nothing");
    cr_assert(eq(int, dw_buf_nul_terminate(&b), DW_OK));
    cr_expect(eq(str, (char *)b.data, "42"));
    cr_expect(eq(sz, b.len, 2), "the NUL is not counted");
    dw_buf_consume(&b, 99);
    cr_expect(eq(sz, b.len, 0));
    size_t cap = b.cap;
    dw_buf_append_str(&b, "again");
    dw_buf_clear(&b);
    cr_expect(eq(sz, b.len, 0));
    cr_expect(eq(sz, b.cap, cap), "clear keeps the storage");
    dw_buf_free(&b);
}

Test(buf, append_from_itself)
{
    dw_buf b = DW_BUF_INIT;
    dw_buf_append_str(&b, "0123456789");
    /* Doubling forces reallocations while the source is inside the buffer. */
    for (int i = 0; i < 12; i++)
        cr_assert(eq(int, dw_buf_append(&b, b.data, b.len), DW_OK));
    cr_expect(eq(sz, b.len, (size_t)10 << 12));
    for (size_t i = 0; i < b.len; i += 1231)
        cr_assert(eq(u8, b.data[i], (uint8_t)('0' + i % 10)));
    cr_assert(eq(int, dw_buf_append(&b, b.data + 3, 4), DW_OK));
    cr_expect(eq(int, memcmp(b.data + b.len - 4, "3456", 4), 0));
    dw_buf_free(&b);
}

Test(buf, shrink_gives_back_storage_and_keeps_contents)
{
    dw_buf b = DW_BUF_INIT;
    cr_assert(eq(int, dw_buf_reserve(&b, 1 << 20), DW_OK));
    cr_assert(eq(int, dw_buf_append(&b, "hello", 5), DW_OK));
    cr_assert(ge(sz, b.cap, (size_t)1 << 20));
    dw_buf_shrink(&b, 65536);
    cr_expect(eq(sz, b.cap, 65536), "capacity back to the bound");
    cr_expect(eq(sz, b.len, 5));
    cr_expect(eq(int, memcmp(b.data, "hello", 5), 0), "contents kept");
    b.data[b.cap - 1] = 'x'; /* the whole new capacity is usable (ASan checks) */

    uint8_t *before = b.data;
    dw_buf_shrink(&b, 65536);
    dw_buf_shrink(&b, 1 << 20);
    cr_expect(eq(ptr, b.data, before), "nothing to give back: untouched");
    cr_expect(eq(sz, b.cap, 65536));

    dw_buf_shrink(&b, 2);
    cr_expect(eq(sz, b.cap, 5), "never below the contents");
    cr_expect(eq(int, memcmp(b.data, "hello", 5), 0));
    cr_expect(eq(int, dw_buf_append(&b, " world", 6), DW_OK), "and it grows again");
    cr_expect(eq(int, memcmp(b.data, "hello world", 11), 0));

    dw_buf_clear(&b);
    dw_buf_shrink(&b, 0);
    cr_expect(eq(ptr, b.data, NULL), "empty and bound 0: no storage at all");
    cr_expect(eq(sz, b.cap, 0));
    dw_buf_shrink(&b, 0); /* an empty buffer is fine too */
    dw_buf_free(&b);
}
