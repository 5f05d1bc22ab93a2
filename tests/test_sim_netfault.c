/* Network faults' pure parts: the seeded generator, delay distributions,
 * the shaper's plans, the fault list. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "model/netfault.h"

typedef struct plan {
    size_t off[256], len[256];
    uint64_t due[256];
    size_t n;
} plan;

static void record_piece(void *user, size_t off, size_t len, uint64_t due_us)
{
    plan *p = user;
    cr_assert(p->n < 256);
    p->off[p->n] = off;
    p->len[p->n] = len;
    p->due[p->n++] = due_us;
}

static void shaper_with(dw_sim_shaper *sh, const dw_sim_toxic *t, uint64_t seed, dw_sim_rng *r)
{
    dw_sim_netfaults l = {0};
    dw_error err;
    cr_assert(eq(int, dw_sim_netfaults_add(&l, t, &err), DW_OK));
    dw_sim_rng_seed(r, seed, 1);
    dw_sim_shaper_init(sh, &l, t->direction, r);
    free(l.toxics);
}

Test(netfault, the_same_seed_draws_the_same)
{
    dw_sim_rng a, b, c;
    dw_sim_rng_seed(&a, 42, 7);
    dw_sim_rng_seed(&b, 42, 7);
    dw_sim_rng_seed(&c, 42, 8);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = dw_sim_rng_next(&a);
        cr_assert(eq(u64, x, dw_sim_rng_next(&b)));
        differ |= x != dw_sim_rng_next(&c);
    }
    cr_assert(differ, "another stream, other draws");
}

Test(netfault, delay_distributions)
{
    dw_sim_rng r;
    dw_sim_rng_seed(&r, 1, 1);
    dw_sim_delay fixed = {DW_SIM_DIST_FIXED, 25, 0}, uni = {DW_SIM_DIST_UNIFORM, 10, 20},
                 logn = {DW_SIM_DIST_LOGNORMAL, 50, 0.5}, norm = {DW_SIM_DIST_NORMAL, 100, 10};
    unsigned below = 0, sum = 0;
    for (int i = 0; i < 2000; i++) {
        cr_assert(eq(uint, dw_sim_delay_draw(&fixed, &r), 25));
        unsigned u = dw_sim_delay_draw(&uni, &r);
        cr_assert(u >= 10 && u <= 20, "uniform draw %u", u);
        below += dw_sim_delay_draw(&logn, &r) < 50;
        sum += dw_sim_delay_draw(&norm, &r);
    }
    cr_assert(below > 850 && below < 1150, "half the lognormal draws below the median: %u", below);
    cr_assert(sum / 2000 >= 98 && sum / 2000 <= 102, "normal mean %u", sum / 2000);
}

Test(netfault, slicer_cuts_within_the_variation)
{
    dw_sim_toxic t = {.name = "s",
                      .kind = DW_SIM_TOXIC_SLICER,
                      .direction = DW_SIM_DIR_REPLY,
                      .probability = 1,
                      .avg_size = 5,
                      .size_variation = 2,
                      .pause_ms = 4};
    dw_sim_shaper sh;
    dw_sim_rng r;
    shaper_with(&sh, &t, 3, &r);
    plan p = {0};
    int close;
    cr_assert(eq(sz, dw_sim_shaper_plan(&sh, &r, 1000, 200, record_piece, &p, &close), 200));
    size_t at = 0;
    for (size_t i = 0; i < p.n; i++) {
        cr_assert(eq(sz, p.off[i], at));
        cr_assert(p.len[i] >= 3 && (p.len[i] <= 7 || i == p.n - 1), "piece of %zu", p.len[i]);
        cr_assert(i == 0 || (p.due[i] >= p.due[i - 1] && p.due[i] <= p.due[i - 1] + 4000));
        at += p.len[i];
    }
    cr_assert(eq(sz, at, 200));
    cr_assert(eq(int, close, 0));
}

Test(netfault, bandwidth_spaces_the_pieces)
{
    dw_sim_toxic t = {.name = "b",
                      .kind = DW_SIM_TOXIC_BANDWIDTH,
                      .direction = DW_SIM_DIR_REPLY,
                      .probability = 1,
                      .rate = 1000};
    dw_sim_shaper sh;
    dw_sim_rng r;
    shaper_with(&sh, &t, 3, &r);
    plan p = {0};
    int close;
    dw_sim_shaper_plan(&sh, &r, 0, 100, record_piece, &p, &close);
    cr_assert(eq(sz, p.n, 10), "10 ms slices of 10 bytes");
    cr_assert(eq(u64, p.due[9], 90000), "the last slice after 90 ms");
    p.n = 0;
    dw_sim_shaper_plan(&sh, &r, 0, 10, record_piece, &p, &close);
    cr_assert(eq(u64, p.due[0], 100000), "the line is busy until 100 ms");
}

Test(netfault, limit_data_cuts_and_closes)
{
    dw_sim_toxic t = {.name = "l",
                      .kind = DW_SIM_TOXIC_LIMIT_DATA,
                      .direction = DW_SIM_DIR_REQUEST,
                      .probability = 1,
                      .bytes = 15};
    dw_sim_shaper sh;
    dw_sim_rng r;
    shaper_with(&sh, &t, 3, &r);
    plan p = {0};
    int close;
    cr_assert(eq(sz, dw_sim_shaper_plan(&sh, &r, 0, 10, record_piece, &p, &close), 10));
    cr_assert(eq(int, close, 0));
    cr_assert(eq(sz, dw_sim_shaper_plan(&sh, &r, 0, 10, record_piece, &p, &close), 5));
    cr_assert(eq(int, close, 1));
}

Test(netfault, latency_keeps_order)
{
    dw_sim_toxic t = {.name = "j",
                      .kind = DW_SIM_TOXIC_LATENCY,
                      .direction = DW_SIM_DIR_REPLY,
                      .probability = 1,
                      .delay = {DW_SIM_DIST_UNIFORM, 0, 100}};
    dw_sim_shaper sh;
    dw_sim_rng r;
    shaper_with(&sh, &t, 9, &r);
    plan p = {0};
    int close;
    for (uint64_t i = 0; i < 50; i++)
        dw_sim_shaper_plan(&sh, &r, i * 1000, 1, record_piece, &p, &close);
    for (size_t i = 1; i < p.n; i++)
        cr_assert(p.due[i] >= p.due[i - 1], "piece %zu leaves before the one before", i);
}

Test(netfault, probability_draws_per_connection)
{
    dw_sim_toxic t = {.name = "x",
                      .kind = DW_SIM_TOXIC_TIMEOUT,
                      .direction = DW_SIM_DIR_REPLY,
                      .probability = 0.5,
                      .ms = 10};
    dw_sim_netfaults l = {0};
    dw_error err;
    cr_assert(eq(int, dw_sim_netfaults_add(&l, &t, &err), DW_OK));
    int on = 0;
    for (uint64_t conn = 1; conn <= 200; conn++) {
        dw_sim_rng r;
        dw_sim_shaper sh;
        dw_sim_rng_seed(&r, 5, conn);
        dw_sim_shaper_init(&sh, &l, DW_SIM_DIR_REPLY, &r);
        on += sh.timeout;
        dw_sim_shaper_init(&sh, &l, DW_SIM_DIR_REQUEST, &r);
        cr_assert(eq(int, sh.timeout, 0), "the other direction has none");
    }
    cr_assert(on > 70 && on < 130, "about half the connections: %d", on);
    free(l.toxics);
}

Test(netfault, the_list_adds_and_removes_by_name)
{
    dw_sim_netfaults l = {0};
    dw_error err;
    dw_sim_toxic t = {.name = "reply.latency",
                      .kind = DW_SIM_TOXIC_LATENCY,
                      .direction = DW_SIM_DIR_REPLY,
                      .probability = 1};
    cr_assert(eq(int, dw_sim_netfaults_add(&l, &t, &err), DW_OK));
    cr_assert(eq(int, dw_sim_netfaults_add(&l, &t, &err), DW_EINVAL));
    cr_assert(
        eq(str, (char *)dw_error_message(&err), "network fault \"reply.latency\": already there"));
    strcpy(t.name, "b");
    t.kind = DW_SIM_TOXIC_BANDWIDTH;
    cr_assert(eq(int, dw_sim_netfaults_add(&l, &t, &err), DW_EINVAL), "a rate of 0");
    t.rate = 10;
    cr_assert(eq(int, dw_sim_netfaults_add(&l, &t, &err), DW_OK));
    cr_assert(dw_sim_netfaults_find(&l, "b") != NULL);
    cr_assert(eq(int, dw_sim_netfaults_remove(&l, "reply.latency"), DW_OK));
    cr_assert(eq(int, dw_sim_netfaults_remove(&l, "reply.latency"), DW_ENOENT));
    cr_assert(eq(sz, l.n, 1));
    cr_assert(eq(str, l.toxics[0].name, "b"));
    free(l.toxics);
}

/* A fault added at run time reaches an open connection's shaper, and its
 * removal takes off only the fault the shaper took (by serial). */
Test(netfault, take_and_drop_by_serial)
{
    dw_sim_rng r;
    dw_sim_rng_seed(&r, 1, 1);
    dw_sim_shaper sh;
    dw_sim_shaper_init(&sh, NULL, DW_SIM_DIR_REPLY, &r);
    cr_assert(eq(int, dw_sim_shaper_active(&sh), 0));
    dw_sim_toxic a = {.name = "a",
                      .kind = DW_SIM_TOXIC_LATENCY,
                      .direction = DW_SIM_DIR_REPLY,
                      .probability = 1,
                      .delay = {DW_SIM_DIST_FIXED, 10, 0},
                      .serial = 1};
    dw_sim_toxic b = a;
    b.serial = 2;
    snprintf(b.name, sizeof b.name, "b");
    cr_assert(eq(int, dw_sim_shaper_drop(&sh, &a), 0), "nothing taken yet");
    cr_assert(eq(int, dw_sim_shaper_take(&sh, &a, &r), 1));
    cr_assert(dw_sim_shaper_active(&sh));
    cr_assert(eq(int, dw_sim_shaper_drop(&sh, &b), 0), "b was never taken: a stays");
    cr_assert(dw_sim_shaper_active(&sh));
    cr_assert(eq(int, dw_sim_shaper_take(&sh, &b, &r), 1), "b takes a's place");
    cr_assert(eq(int, dw_sim_shaper_drop(&sh, &a), 0), "a is no longer in effect");
    cr_assert(eq(int, dw_sim_shaper_drop(&sh, &b), 1));
    cr_assert(eq(int, dw_sim_shaper_active(&sh), 0));
    dw_sim_toxic never = a;
    never.probability = 0;
    cr_assert(eq(int, dw_sim_shaper_take(&sh, &never, &r), 0), "not drawn");
    cr_assert(eq(int, dw_sim_shaper_active(&sh), 0));

    /* A limit_data taken later counts from then. */
    dw_sim_toxic lim = {.name = "l",
                        .kind = DW_SIM_TOXIC_LIMIT_DATA,
                        .direction = DW_SIM_DIR_REPLY,
                        .probability = 1,
                        .bytes = 4,
                        .serial = 3};
    plan p = {0};
    int close = 0;
    cr_assert(eq(int, dw_sim_shaper_take(&sh, &lim, &r), 1));
    cr_assert(eq(sz, dw_sim_shaper_plan(&sh, &r, 0, 3, record_piece, &p, &close), 3));
    cr_assert(eq(int, close, 0));
    dw_sim_toxic lim2 = lim;
    lim2.serial = 4;
    cr_assert(eq(int, dw_sim_shaper_take(&sh, &lim2, &r), 1));
    cr_assert(eq(sz, dw_sim_shaper_plan(&sh, &r, 0, 10, record_piece, &p, &close), 4),
              "the new limit counts from when it was taken");
    cr_assert(eq(int, close, 1));
}
