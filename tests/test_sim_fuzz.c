/* devwire-sim's frame fuzzer (model/fuzz.h): which frames, which
 * mutation, and the bytes; a frame's fate depends on the seed, the
 * connection and its number only. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "model/fuzz.h"

static dw_sim_fuzz every_frame(unsigned kinds)
{
    dw_sim_fuzz f;
    memset(&f, 0, sizeof f);
    f.mutations = kinds;
    f.frame_probability = 1;
    return f;
}

#define S(x) (const uint8_t *)(x), strlen(x)

Test(sim_fuzz, numbers_and_blocks_are_found)
{
    size_t at[8], len[8];
    const char *t = "+1.23450E+00,-7,SG-1000,x2,.5e-3,1.";
    size_t n = dw_sim_fuzz_numbers(S(t), at, len, 8);
    cr_assert(eq(sz, n, 5));
    cr_assert(eq(sz, at[0], 0));
    cr_assert(eq(sz, len[0], 12));
    cr_assert(eq(sz, len[1], 2), "-7");
    cr_assert(eq(sz, at[2], 19), "1000 after the dash of a word");
    cr_assert(eq(sz, len[3], 5), ".5e-3");
    cr_assert(eq(sz, len[4], 2), "1.");
    size_t b, d;
    cr_assert(dw_sim_fuzz_block(S("DATA #210ABCDEFGHIJ"), &b, &d));
    cr_assert(eq(sz, b, 7));
    cr_assert(eq(sz, d, 2));
    cr_assert(not(dw_sim_fuzz_block(S("\"#210\" #0abc #9"), &b, &d)), "quoted, indefinite, short");
}

Test(sim_fuzz, the_same_numbers_give_the_same_mutation)
{
    dw_sim_fuzz f = every_frame(0);
    const char *reply = "+1.23450E+00";
    int kinds[DW_SIM_MUT_NKINDS] = {0};
    for (uint64_t frame = 1; frame <= 200; frame++) {
        dw_sim_mutation a, b;
        cr_assert(dw_sim_fuzz_decide(&f, 42, 1, 3, frame, S(reply), 13, &a));
        cr_assert(dw_sim_fuzz_decide(&f, 42, 1, 3, frame, S(reply), 13, &b));
        cr_assert(eq(str, a.what, b.what));
        kinds[a.kind]++;
        /* That frame alone ("frames"): the same mutation. */
        dw_sim_fuzz only = f;
        only.frames[0] = frame;
        only.nframes = 1;
        cr_assert(dw_sim_fuzz_decide(&only, 42, 1, 3, frame, S(reply), 13, &b));
        cr_assert(eq(str, a.what, b.what));
        cr_assert(not(dw_sim_fuzz_decide(&only, 42, 1, 3, frame + 1, S(reply), 13, &b)));
    }
    for (int k = 0; k < DW_SIM_MUT_NKINDS; k++)
        cr_assert(k == DW_SIM_MUT_BLOCK_LENGTH ? kinds[k] == 0 : kinds[k] > 0, "%s drawn %d times",
                  dw_sim_mutation_name((dw_sim_mutation_kind)k), kinds[k]);
    dw_sim_mutation a, b;
    int differ = 0;
    for (uint64_t frame = 1; frame <= 20; frame++) {
        dw_sim_fuzz_decide(&f, 42, 1, 3, frame, S(reply), 13, &a);
        dw_sim_fuzz_decide(&f, 43, 1, 3, frame, S(reply), 13, &b);
        differ += strcmp(a.what, b.what) != 0;
    }
    cr_assert(differ > 0, "another seed, other mutations");
}

Test(sim_fuzz, every_after_and_probability)
{
    dw_sim_fuzz f = every_frame(1u << DW_SIM_MUT_DUPLICATE);
    f.every = 3;
    f.after_frames = 2;
    dw_sim_mutation m;
    for (uint64_t fr = 1; fr <= 12; fr++)
        cr_assert(eq(int, dw_sim_fuzz_decide(&f, 1, 1, 1, fr, S("x"), 2, &m),
                     fr > 2 && (fr - 2) % 3 == 0),
                  "frame %llu", (unsigned long long)fr);
    f.every = 0;
    f.after_frames = 0;
    f.frame_probability = 0.25;
    int hits = 0;
    for (uint64_t fr = 1; fr <= 4000; fr++)
        hits += dw_sim_fuzz_decide(&f, 1, 1, 1, fr, S("x"), 2, &m);
    cr_assert(hits > 800 && hits < 1200, "%d of 4000", hits);
    f.frame_probability = 1;
    f.connection = 2;
    cr_assert(not(dw_sim_fuzz_decide(&f, 1, 1, 1, 1, S("x"), 2, &m)), "another connection");
}

Test(sim_fuzz, the_bytes_of_each_payload_mutation)
{
    dw_sim_fuzz f = every_frame(1u << DW_SIM_MUT_NUMBER);
    dw_sim_mutation m;
    dw_buf out;
    dw_buf_init(&out);
    const char *reply = "V=+1.5;I=2";
    int seen_long = 0, seen_empty = 0;
    for (uint64_t fr = 1; fr <= 300; fr++) {
        cr_assert(dw_sim_fuzz_decide(&f, 9, 1, 1, fr, S(reply), 11, &m));
        cr_assert(eq(int, dw_sim_fuzz_apply(&m, S(reply), &out), DW_OK));
        size_t keep = strlen(reply) - m.len;
        if (strcmp(m.value, "9x400") == 0) {
            seen_long++;
            cr_assert(eq(sz, out.len, keep + 400));
        } else {
            seen_empty += m.value[0] == 0;
            cr_assert(eq(sz, out.len, keep + strlen(m.value)));
            cr_assert(eq(int, memcmp(out.data + m.at, m.value, strlen(m.value)), 0));
        }
    }
    cr_assert(seen_long && seen_empty);
    f = every_frame(1u << DW_SIM_MUT_BLOCK_LENGTH);
    cr_assert(dw_sim_fuzz_decide(&f, 9, 1, 1, 1, S("#210ABCDEFGHIJ"), 15, &m));
    cr_assert(eq(int, dw_sim_fuzz_apply(&m, S("#210ABCDEFGHIJ"), &out), DW_OK));
    cr_assert(out.len >= 14 && memcmp(out.data + 2, "10", 2) != 0, "%.*s", (int)out.len,
              (char *)out.data);
    f = every_frame(1u << DW_SIM_MUT_FLIP);
    cr_assert(dw_sim_fuzz_decide(&f, 9, 1, 1, 1, S("abcdef"), 7, &m));
    cr_assert(eq(int, dw_sim_fuzz_apply(&m, S("abcdef"), &out), DW_OK));
    cr_assert(eq(sz, out.len, 6));
    cr_assert(memcmp(out.data, "abcdef", 6) != 0 || m.nflip > 1, "%s", m.what);
    dw_buf_free(&out);
    cr_assert(not(dw_sim_fuzz_decide(&f, 9, 1, 1, 1, NULL, 0, 1, &m)), "no byte to flip");
}
