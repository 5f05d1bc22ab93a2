/* devwire-sim's journal (sim/journal.h): a bounded ring that counts what it
 * drops, scans longer than one lock hold, waits that wake, time out and are
 * cancelled. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "observe/journal.h"

TestSuite(sim_journal, .timeout = 60);

static void add(dw_sim_journal *j, const char *req)
{
    cr_assert(dw_sim_journal_add(j, 1, (const uint8_t *)req, strlen(req), "rules[0]",
                                 (const uint8_t *)"ok\n", 3, NULL) != 0);
}

typedef struct seen {
    uint64_t first, last, n;
    int ordered;
} seen;

static int visit(const dw_sim_journal_entry *e, void *arg)
{
    seen *s = arg;
    if (s->n && e->seq != s->last + 1)
        s->ordered = 0;
    if (!s->n)
        s->first = e->seq;
    s->last = e->seq;
    s->n++;
    return 0;
}

Test(sim_journal, a_full_ring_drops_the_oldest_and_says_so)
{
    dw_sim_journal *j = dw_sim_journal_new(2500);
    char req[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(req, sizeof req, "REQ %d", i);
        add(j, req);
    }
    cr_expect(eq(u64, dw_sim_journal_dropped(j), 500));
    cr_expect(eq(u64, dw_sim_journal_next_seq(j), 3001));
    seen s = {0, 0, 0, 1};
    dw_sim_journal_each(j, 1, visit, &s); /* more than one chunk of the lock */
    cr_expect(eq(u64, s.n, 2500));
    cr_expect(eq(u64, s.first, 501));
    cr_expect(eq(u64, s.last, 3000));
    cr_expect(s.ordered, "in order, none twice");
    dw_sim_journal_entry *e = NULL;
    size_t n = 0;
    uint64_t first = 0;
    cr_assert(eq(int, dw_sim_journal_read(j, 2999, 10, &e, &n, &first), DW_OK));
    cr_expect(eq(sz, n, 2));
    cr_expect(eq(u64, first, 501));
    cr_expect(eq(str, (char *)e[0].match, "rules[0]"));
    cr_expect(eq(int, memcmp(e[1].req, "REQ 2999", 8), 0));
    for (size_t i = 0; i < n; i++)
        dw_sim_journal_entry_free(&e[i]);
    free(e);
    dw_sim_journal_clear(j);
    add(j, "AFTER");
    cr_expect(eq(u64, dw_sim_journal_next_seq(j), 3002), "numbers go on after a clear");
    dw_sim_journal_free(j);
}

/* The process's virtual size in KiB (VmSize). */
static long vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

Test(sim_journal, the_ring_is_allocated_as_it_fills)
{
    /* A thousand devices' journals at the default size: allocated whole,
     * they took 800 KB each, 800 MB in all, before a request came. */
    enum { N = 1000 };
    static dw_sim_journal *j[N];
    long before = vm_size_kib();
    for (int i = 0; i < N; i++) {
        j[i] = dw_sim_journal_new(DW_SIM_JOURNAL_DEFAULT);
        cr_assert(j[i] != NULL);
    }
    long grew = vm_size_kib() - before;
    cr_expect(grew < 64 * 1024, "%d empty journals took %ld KiB of address space", N, grew);
    char req[32];
    for (int i = 0; i < 100; i++) { /* grows 16, 32, 64, 128: order kept */
        snprintf(req, sizeof req, "REQ %d", i);
        add(j[0], req);
    }
    seen s = {0, 0, 0, 1};
    dw_sim_journal_each(j[0], 1, visit, &s);
    cr_expect(eq(u64, s.n, 100));
    cr_expect(eq(u64, s.first, 1));
    cr_expect(s.ordered, "in order across the ring's growth");
    cr_expect(eq(u64, dw_sim_journal_dropped(j[0]), 0));
    for (int i = 0; i < N; i++)
        dw_sim_journal_free(j[i]);
}

Test(sim_journal, long_requests_are_kept_in_part_with_their_length)
{
    dw_sim_journal *j = dw_sim_journal_new(4);
    static uint8_t big[DW_SIM_JOURNAL_KEEP * 2];
    memset(big, 'x', sizeof big);
    cr_assert(dw_sim_journal_add(j, 7, big, sizeof big, NULL, NULL, 0, "garbage") == 1);
    dw_sim_journal_entry *e = NULL;
    size_t n = 0;
    uint64_t first = 0;
    cr_assert(eq(int, dw_sim_journal_read(j, 1, 10, &e, &n, &first), DW_OK));
    cr_assert(eq(sz, n, 1));
    cr_expect(eq(sz, e[0].req_len, DW_SIM_JOURNAL_KEEP));
    cr_expect(eq(sz, e[0].req_total, sizeof big));
    cJSON *o = dw_sim_journal_entry_json(&e[0]);
    char *text = cJSON_PrintUnformatted(o);
    cr_expect(strstr(text, "\"truncated\":true") != NULL, "%.200s", text);
    cr_expect(strstr(text, "\"fault\":\"garbage\"") != NULL);
    free(text);
    cJSON_Delete(o);
    dw_sim_journal_entry_free(&e[0]);
    free(e);
    dw_sim_journal_free(j);
}

static int is_outp_on(const dw_sim_journal_entry *e, void *arg)
{
    (void)arg;
    return e->req_len == 7 && memcmp(e->req, "OUTP ON", 7) == 0;
}

static void *later(void *arg)
{
    usleep(200 * 1000);
    add(arg, "*IDN?");
    usleep(100 * 1000);
    add(arg, "OUTP ON");
    return NULL;
}

Test(sim_journal, a_wait_wakes_when_the_entry_comes)
{
    dw_sim_journal *j = dw_sim_journal_new(16);
    pthread_t t;
    pthread_create(&t, NULL, later, j);
    dw_sim_journal_entry e;
    int rc = dw_sim_journal_wait(j, 1, NULL, is_outp_on, NULL, 30000, &e);
    pthread_join(t, NULL);
    cr_assert(eq(int, rc, DW_OK));
    cr_expect(eq(u64, e.seq, 2));
    dw_sim_journal_entry_free(&e);
    /* A past entry counts; `since` past it does not. */
    cr_expect(eq(int, dw_sim_journal_wait(j, 1, NULL, is_outp_on, NULL, 0, &e), DW_OK));
    dw_sim_journal_entry_free(&e);
    cr_expect(eq(int, dw_sim_journal_wait(j, 3, NULL, is_outp_on, NULL, 100, &e), DW_ETIMEDOUT));
    dw_sim_journal_free(j);
}

static void *close_later(void *arg)
{
    usleep(200 * 1000);
    dw_sim_journal_close(arg);
    return NULL;
}

Test(sim_journal, closing_ends_every_wait)
{
    dw_sim_journal *j = dw_sim_journal_new(16);
    pthread_t t;
    pthread_create(&t, NULL, close_later, j);
    dw_sim_journal_entry e;
    cr_expect(eq(int, dw_sim_journal_wait(j, 1, NULL, is_outp_on, NULL, 60000, &e), DW_ECANCELED));
    pthread_join(t, NULL);
    dw_sim_journal_free(j);
}

typedef struct hit_waiter {
    dw_sim_journal *j;
    int rc;
    uint64_t seq;
    int64_t ms;
} hit_waiter;

static int is_hit(const dw_sim_journal_entry *e, void *arg)
{
    (void)arg;
    return e->req_len == 3 && memcmp(e->req, "HIT", 3) == 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *wait_hit(void *arg)
{
    hit_waiter *w = arg;
    dw_sim_journal_entry e = {0};
    w->rc = dw_sim_journal_wait(w->j, 1, NULL, is_hit, NULL, 30000, &e);
    w->seq = e.seq;
    dw_sim_journal_entry_free(&e);
    return NULL;
}

/* Waiters woken together share one copy of the new entries: each must
 * still find its own match, and a cleared entry must not be found again. */
Test(sim_journal, many_waiters_each_find_the_entry_and_a_cleared_one_is_gone)
{
    dw_sim_journal *j = dw_sim_journal_new(5000);
    hit_waiter w[16];
    pthread_t t[16];
    for (int i = 0; i < 16; i++) {
        w[i] = (hit_waiter){j, -1, 0, 0};
        pthread_create(&t[i], NULL, wait_hit, &w[i]);
    }
    usleep(100 * 1000);
    char req[32];
    for (int i = 0; i < 3000; i++) { /* more than one snapshot's worth */
        snprintf(req, sizeof req, "MISS %d", i);
        add(j, req);
    }
    add(j, "HIT");
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        cr_expect(eq(int, w[i].rc, DW_OK), "waiter %d: %s", i, dw_strerror(w[i].rc));
        cr_expect(eq(u64, w[i].seq, 3001), "waiter %d", i);
    }
    dw_sim_journal_clear(j);
    dw_sim_journal_entry e = {0};
    int64_t t0 = mono_ms();
    cr_expect(eq(int, dw_sim_journal_wait(j, 1, NULL, is_hit, NULL, 100, &e), DW_ETIMEDOUT));
    int64_t took = mono_ms() - t0;
    cr_expect(took >= 95 && took < 2000, "timeout_ms=100 took %lld ms", (long long)took);
    dw_sim_journal_free(j);
}

/* A wait with its own key and its own `since`. */
typedef struct keyed_waiter {
    dw_sim_journal *j;
    const char *key;
    uint64_t since;
    int (*pred)(const dw_sim_journal_entry *e, void *arg);
    int timeout_ms;
    int rc;
    uint64_t seq;
    int64_t ms; /* how long the wait took */
} keyed_waiter;

static void *wait_keyed(void *arg)
{
    keyed_waiter *w = arg;
    dw_sim_journal_entry e = {0};
    int64_t t0 = mono_ms();
    w->rc = dw_sim_journal_wait(w->j, w->since, w->key, w->pred, NULL, w->timeout_ms, &e);
    w->ms = mono_ms() - t0;
    w->seq = e.seq;
    dw_sim_journal_entry_free(&e);
    return NULL;
}

static void start_keyed(keyed_waiter *w, pthread_t *t)
{
    cr_assert(eq(int, pthread_create(t, NULL, wait_keyed, w), 0));
}

/* Waits with the same key test each entry once between them, but each
 * still gets the first match at or after its own `since`. */
Test(sim_journal, waits_sharing_a_key_each_get_the_first_match_from_their_since)
{
    dw_sim_journal *j = dw_sim_journal_new(100);
    add(j, "HIT"); /* 1 */
    add(j, "MISS");
    keyed_waiter w[3] = {
        {j, "match=HIT", 1, is_hit, 5000, -1, 0, 0},
        {j, "match=HIT", 2, is_hit, 5000, -1, 0, 0},
        {j, "match=HIT", 3, is_hit, 5000, -1, 0, 0},
    };
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        start_keyed(&w[i], &t[i]);
    usleep(50 * 1000);
    add(j, "HIT"); /* 3 */
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_expect(eq(int, w[i].rc, DW_OK), "wait %d: %s", i, dw_strerror(w[i].rc));
    }
    cr_expect(eq(u64, w[0].seq, 1));
    cr_expect(eq(u64, w[1].seq, 3));
    cr_expect(eq(u64, w[2].seq, 3));
    dw_sim_journal_free(j);
}

static int slow_never(const dw_sim_journal_entry *e, void *arg)
{
    (void)e;
    (void)arg;
    usleep(1000); /* a pattern at its match limits */
    return 0;
}

/* A hostile neighbour: a wait whose pattern takes 1 ms per entry, over
 * 3000 entries (3 s of matching), must not hold up another wait on the
 * same journal, whose match comes last, nor outlive its own timeout. */
Test(sim_journal, a_slow_pattern_delays_neither_another_wait_nor_its_own_timeout)
{
    dw_sim_journal *j = dw_sim_journal_new(5000);
    for (int i = 0; i < 3000; i++)
        add(j, "MISS");
    keyed_waiter slow = {j, "regex=slow", 1, slow_never, 300, -1, 0, 0};
    keyed_waiter good = {j, "match=HIT", 1, is_hit, 5000, -1, 0, 0};
    pthread_t ts, tg;
    start_keyed(&slow, &ts);
    usleep(20 * 1000); /* the slow one is matching */
    start_keyed(&good, &tg);
    usleep(20 * 1000);
    add(j, "HIT");
    pthread_join(tg, NULL);
    pthread_join(ts, NULL);
    cr_expect(eq(int, good.rc, DW_OK));
    cr_expect(eq(u64, good.seq, 3001));
    cr_expect(good.ms < 1000, "the good wait took %lld ms beside a slow pattern",
              (long long)good.ms);
    cr_expect(eq(int, slow.rc, DW_ETIMEDOUT));
    cr_expect(slow.ms >= 295 && slow.ms < 1000, "timeout_ms=300 took %lld ms", (long long)slow.ms);
    dw_sim_journal_free(j);
}

static int slow_counting(const dw_sim_journal_entry *e, void *arg)
{
    (void)e;
    usleep(1000);
    ++*(int *)arg;
    return 0;
}

/* A wait that times out while the watcher runs its pred returns only once
 * the watcher let go of its arg (freed right after: ASan sees a late use). */
Test(sim_journal, a_wait_returns_only_when_its_pred_is_no_longer_running)
{
    dw_sim_journal *j = dw_sim_journal_new(5000);
    for (int i = 0; i < 2000; i++)
        add(j, "MISS");
    for (int round = 0; round < 5; round++) {
        int *calls = calloc(1, sizeof *calls);
        cr_assert(calls != NULL);
        dw_sim_journal_entry e = {0};
        int rc = dw_sim_journal_wait(j, 1, NULL, slow_counting, calls, 20 + round, &e);
        cr_expect(eq(int, rc, DW_ETIMEDOUT));
        cr_expect(gt(int, *calls, 0), "the pred ran");
        free(calls);
    }
    dw_sim_journal_free(j);
}

static void add_named(dw_sim_journal *j, const char *req, const char *name)
{
    cr_assert(dw_sim_journal_add(j, 1, (const uint8_t *)req, strlen(req), name,
                                 (const uint8_t *)"ok\n", 3, NULL) != 0);
}

/* The exact text a want names, as a pattern's pred would test it: the
 * request (want->request) or the name of what answered (want->name). */
static int exact_pred(const dw_sim_journal_entry *e, void *arg)
{
    const dw_sim_journal_want *w = arg;
    int by_req =
        w->request && e->req_len == w->request_len && memcmp(e->req, w->request, e->req_len) == 0;
    int by_name = w->name && e->match && strcmp(e->match, w->name) == 0;
    return by_req || by_name;
}

typedef struct exact_waiter {
    dw_sim_journal *j;
    dw_sim_journal_want want;
    uint64_t since;
    int rc;
    uint64_t seq;
} exact_waiter;

static void *wait_exact(void *arg)
{
    exact_waiter *w = arg;
    dw_sim_journal_entry e = {0};
    w->want.pred = exact_pred;
    w->want.arg = &w->want;
    w->rc = dw_sim_journal_wait_for(w->j, w->since, &w->want, 10000, &e);
    w->seq = e.seq;
    dw_sim_journal_entry_free(&e);
    return NULL;
}

/* Sixty waits, each for a request of its own, found through the index of
 * new entries: each gets the first entry at or after its since with its
 * request, among thousands of others (and repeats of its own before). */
Test(sim_journal, waits_for_exact_requests_each_find_their_own)
{
    dw_sim_journal *j = dw_sim_journal_new(20000);
    enum { N = 60 };
    static char reqs[N][16];
    exact_waiter w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        snprintf(reqs[i], sizeof reqs[i], "REQ %d", i);
        add(j, reqs[i]); /* seq i + 1: before every wait's since */
    }
    for (int i = 0; i < N; i++) {
        w[i] = (exact_waiter){j, {.key = reqs[i]}, N + 1, -1, 0};
        w[i].want.request = (const uint8_t *)reqs[i];
        w[i].want.request_len = strlen(reqs[i]);
        cr_assert(eq(int, pthread_create(&t[i], NULL, wait_exact, &w[i]), 0));
    }
    usleep(50 * 1000);
    for (int k = 0; k < 3000; k++)        /* several chunks of others */
        add(j, k % 2 ? "MISS" : "REQ 6"); /* REQ 6 is not REQ 60 */
    for (int i = N - 1; i >= 0; i--)
        add(j, reqs[i]); /* REQ i at seq N + 3000 + N - i */
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        cr_expect(eq(int, w[i].rc, DW_OK), "wait %d: %s", i, dw_strerror(w[i].rc));
        uint64_t want = i == 6 ? N + 1 : (uint64_t)(N + 3000 + N - i);
        cr_expect(eq(u64, w[i].seq, want), "wait %d", i);
    }
    dw_sim_journal_free(j);
}

/* A want for a request or a name gets whichever comes first, and the
 * index's candidates still go through pred. */
Test(sim_journal, a_want_for_a_request_or_a_name_gets_the_first_of_either)
{
    dw_sim_journal *j = dw_sim_journal_new(100);
    add_named(j, "OUTP ON", "rules[1]"); /* 1 */
    add_named(j, "X", "output");         /* 2 */
    add_named(j, "OUTP ON", "rules[1]"); /* 3 */
    dw_sim_journal_want want = {.key = "match=output",
                                .pred = exact_pred,
                                .request = (const uint8_t *)"output",
                                .request_len = 6,
                                .name = "output"};
    want.arg = &want;
    dw_sim_journal_entry e = {0};
    cr_expect(eq(int, dw_sim_journal_wait_for(j, 1, &want, 1000, &e), DW_OK));
    cr_expect(eq(u64, e.seq, 2));
    dw_sim_journal_entry_free(&e);
    want = (dw_sim_journal_want){.key = "match=OUTP ON",
                                 .pred = exact_pred,
                                 .request = (const uint8_t *)"OUTP ON",
                                 .request_len = 7,
                                 .name = "OUTP ON"};
    want.arg = &want;
    cr_expect(eq(int, dw_sim_journal_wait_for(j, 2, &want, 1000, &e), DW_OK));
    cr_expect(eq(u64, e.seq, 3));
    dw_sim_journal_entry_free(&e);
    /* pred has the last word: it refuses what the index offers. */
    want.pred = slow_never;
    cr_expect(eq(int, dw_sim_journal_wait_for(j, 1, &want, 50, &e), DW_ETIMEDOUT));
    dw_sim_journal_free(j);
}
