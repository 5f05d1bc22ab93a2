/* The frame fuzzer's byte readers and mutations (sim/model/fuzz.h).
 * Input: 8 bytes of seed, a byte of mutation kinds, then a payload.
 * Oracles: no crash, no leak, no over-read (the payload sits in a buffer
 * of its size); every number found is inside the payload, in order, not
 * overlapping, and starts with a sign, a digit or a dot; a block's length
 * digits are digits; a decision is the same twice and for the frame alone
 * ("frames"); a number or block_length mutation keeps the bytes around the
 * replaced ones; a flip keeps the length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "model/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_numbers(const uint8_t *p, size_t n)
{
    size_t at[32], len[32];
    size_t k = dw_sim_fuzz_numbers(p, n, at, len, 32), end = 0;
    for (size_t i = 0; i < k; i++) {
        uint8_t c = p[at[i]];
        if (at[i] < end || len[i] == 0 || at[i] + len[i] > n ||
            !(c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9')))
            abort();
        end = at[i] + len[i];
    }
    size_t b, d;
    if (dw_sim_fuzz_block(p, n, &b, &d))
        for (size_t i = 0; i < d; i++)
            if (b + i >= n || p[b + i] < '0' || p[b + i] > '9')
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9)
        return 0;
    uint64_t seed;
    memcpy(&seed, data, 8);
    dw_sim_fuzz f;
    memset(&f, 0, sizeof f);
    f.mutations = data[8] & 0x7f;
    f.frame_probability = 1;
    size_t n = size - 9;
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return 0;
    memcpy(p, data + 9, n);
    check_numbers(p, n);
    dw_sim_mutation a, b;
    uint64_t frame = 1 + (seed & 0xff);
    int got = dw_sim_fuzz_decide(&f, seed, 1, 1, frame, p, n, n + 1, &a);
    if (got != dw_sim_fuzz_decide(&f, seed, 1, 1, frame, p, n, n + 1, &b) ||
        (got && strcmp(a.what, b.what) != 0))
        abort();
    f.frames[0] = frame;
    f.nframes = 1;
    if (got != dw_sim_fuzz_decide(&f, seed, 1, 1, frame, p, n, n + 1, &b) ||
        (got && strcmp(a.what, b.what) != 0))
        abort();
    dw_buf out;
    dw_buf_init(&out);
    if (got && dw_sim_fuzz_apply(&a, p, n, &out) == DW_OK) {
        if (a.kind == DW_SIM_MUT_NUMBER || a.kind == DW_SIM_MUT_BLOCK_LENGTH) {
            size_t tail = n - a.at - a.len;
            /* memcmp of 0 bytes only where both sides exist: an empty
             * replacement leaves out.data NULL. */
            if (out.len < a.at + tail || (a.at && memcmp(out.data, p, a.at) != 0) ||
                (tail && memcmp(out.data + out.len - tail, p + a.at + a.len, tail) != 0))
                abort();
        } else if (out.len != n) {
            abort();
        }
    }
    dw_buf_free(&out);
    free(p);
    return 0;
}
