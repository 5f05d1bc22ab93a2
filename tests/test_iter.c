/* The iterator contract: chunks are never empty, the end is its own code,
 * unread gives back exactly the tail of the last chunk. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "support.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* Pull everything, recording chunk lengths; returns the end code. */
static int drain(dw_iter *it, size_t *lens, size_t *nchunks, size_t max, char *joined)
{
    const uint8_t *d;
    size_t n;
    int rc;
    size_t k = 0, pos = 0;
    while ((rc = dw_iter_next(it, &d, &n)) == DW_OK) {
        cr_assert(gt(sz, n, 0), "DW_OK always comes with at least one byte");
        cr_assert(lt(sz, k, max));
        lens[k++] = n;
        memcpy(joined + pos, d, n);
        pos += n;
    }
    joined[pos] = '\0';
    *nchunks = k;
    return rc;
}

Test(mem_iter, cuts_give_exactly_those_chunks)
{
    dw_mem_iter it;
    size_t cuts[] = {2, 5};
    dw_mem_iter_init(&it, S("abcdefg"), cuts, 2);
    size_t lens[8], k;
    char all[16];
    cr_expect(eq(int, drain(&it.base, lens, &k, 8, all), DW_EOF));
    cr_expect(eq(sz, k, 3));
    cr_expect(eq(sz, lens[0], 2));
    cr_expect(eq(sz, lens[1], 3));
    cr_expect(eq(sz, lens[2], 2));
    cr_expect(eq(str, all, "abcdefg"));
}

Test(mem_iter, bad_cuts_never_make_empty_chunks)
{
    dw_mem_iter it;
    size_t cuts[] = {0, 0, 3, 3, 2, 7, 99};
    dw_mem_iter_init(&it, S("abcdefg"), cuts, 7);
    size_t lens[16], k;
    char all[16];
    cr_expect(eq(int, drain(&it.base, lens, &k, 16, all), DW_EOF));
    cr_expect(eq(sz, k, 2), "zero, repeated, descending and out-of-range cuts are skipped");
    cr_expect(eq(sz, lens[0], 3));
    cr_expect(eq(sz, lens[1], 4));
    cr_expect(eq(str, all, "abcdefg"));
}

Test(mem_iter, chunked)
{
    dw_mem_iter it;
    dw_mem_iter_init_chunked(&it, S("abcdefg"), 3);
    size_t lens[8], k;
    char all[16];
    cr_expect(eq(int, drain(&it.base, lens, &k, 8, all), DW_EOF));
    cr_expect(eq(sz, k, 3));
    cr_expect(eq(sz, lens[2], 1));
    dw_mem_iter_init_chunked(&it, S("abcdefg"), 0);
    cr_expect(eq(int, drain(&it.base, lens, &k, 8, all), DW_EOF));
    cr_expect(eq(sz, k, 1), "chunk 0: everything at once");
    cr_expect(eq(sz, lens[0], 7));
}

Test(mem_iter, end_code_repeats_and_is_settable)
{
    dw_mem_iter it;
    const uint8_t *d = (const uint8_t *)"x";
    size_t n = 99;
    dw_mem_iter_init(&it, NULL, 0, NULL, 0);
    cr_expect(eq(int, dw_iter_next(&it.base, &d, &n), DW_EOF), "empty buffer: EOF at once");
    cr_expect(eq(int, dw_iter_next(&it.base, &d, &n), DW_EOF), "and again");
    dw_iter_unread(&it.base, 5);
    cr_expect(eq(sz, dw_iter_pending(&it.base), 0), "nothing to give back after the end");
    cr_expect(eq(int, dw_iter_next(&it.base, &d, &n), DW_EOF));

    dw_mem_iter_init(&it, S("ab"), NULL, 0);
    it.end_code = DW_ECONNRESET;
    cr_expect(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(eq(int, dw_iter_next(&it.base, &d, &n), DW_ECONNRESET));
    cr_expect(eq(int, dw_iter_next(&it.base, &d, &n), DW_ECONNRESET));
}

Test(iter, unread_returns_exactly_the_tail)
{
    dw_mem_iter it;
    size_t cuts[] = {4};
    dw_mem_iter_init(&it, S("abcdef"), cuts, 1);
    const uint8_t *d;
    size_t n;
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_assert(eq(sz, n, 4));
    dw_iter_unread(&it.base, 3);
    cr_expect(eq(sz, dw_iter_pending(&it.base), 3));
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(eq(sz, n, 3));
    cr_expect(eq(int, memcmp(d, "bcd", 3), 0), "the last 3 bytes of the chunk");
    cr_expect(eq(sz, dw_iter_pending(&it.base), 0));
    /* Unread again from the chunk that was itself unread. */
    dw_iter_unread(&it.base, 1);
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(n == 1 && d[0] == 'd');
    dw_iter_unread(&it.base, 0);
    cr_expect(eq(sz, dw_iter_pending(&it.base), 0), "unread 0 gives back nothing");
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(n == 2 && memcmp(d, "ef", 2) == 0, "then the next chunk");
    dw_iter_unread(&it.base, 100);
    cr_expect(eq(sz, dw_iter_pending(&it.base), 2), "clamped to the chunk");
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(n == 2 && memcmp(d, "ef", 2) == 0);
    dw_iter_unread(&it.base, 2);
    dw_iter_unread(&it.base, 1);
    cr_expect(eq(sz, dw_iter_pending(&it.base), 1), "a second unread replaces the first");
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(n == 1 && d[0] == 'f');
    cr_expect(eq(int, dw_iter_next(&it.base, &d, &n), DW_EOF));
}

Test(iter, unread_whole_chunk_does_not_pull)
{
    dw_test_iter it;
    dw_test_iter_init(&it, S("abc"), NULL, 0);
    const uint8_t *d;
    size_t n;
    for (int i = 0; i < 5; i++) {
        cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
        cr_assert(eq(sz, n, 3));
        dw_iter_unread(&it.base, n);
    }
    cr_expect(eq(sz, it.pulls, 1), "pending bytes are served without pulling");
    cr_expect(eq(sz, dw_test_iter_offset(&it), 0));
    dw_test_iter_free(&it);
}

/* A custom implementation: the base handles unread for it. */
typedef struct counting_iter {
    dw_iter base;
    int left;
    uint8_t byte;
} counting_iter;

/* Hands out bytes 1, 2, ... one at a time, with an empty chunk between
 * them (which dw_iter_next must never pass on), then DW_ETIMEDOUT. */
static int counting_pull(dw_iter *base, const uint8_t **data, size_t *len)
{
    counting_iter *it = (counting_iter *)base;
    if (it->left == 0)
        return DW_ETIMEDOUT;
    it->left--;
    *data = &it->byte;
    *len = it->left % 2;
    if (*len)
        it->byte++;
    return DW_OK;
}

Test(iter, custom_implementation)
{
    counting_iter it = {.left = 5};
    dw_iter_init(&it.base, counting_pull);
    const uint8_t *d;
    size_t n;
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(eq(sz, n, 1), "empty chunks from the implementation are skipped");
    cr_expect(eq(u8, d[0], 1));
    dw_iter_unread(&it.base, 1);
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(eq(u8, d[0], 1), "pull was not called while a byte was pending");
    cr_assert(eq(int, dw_iter_next(&it.base, &d, &n), DW_OK));
    cr_expect(eq(u8, d[0], 2));
    cr_expect(eq(int, dw_iter_next(&it.base, &d, &n), DW_ETIMEDOUT), "errors pass through");
}
