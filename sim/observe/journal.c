/* devwire-sim's journal (journal.h): its life, and the waits for an
 * entry; the ring itself is in journal_ring.c.
 *
 * One watcher thread per journal, started by the first wait, tests new
 * entries for every wait; the waiting threads only sleep until it answers
 * them or their time is up. Waits with the same key (the same pattern) form
 * a group that tests each entry once for all its members: sixty test
 * suites waiting for "OUTP ON" cost the device what one does. The watcher
 * looks at most once per RECHECK_NS, on one copy of what came since its
 * last look (a chunk copied under the lock, matched outside it), so under
 * steady traffic the device pays one wake-up per period whatever the
 * number of waits, and each group's matching per look is bounded by
 * GROUP_BUDGET_NS, so a slow pattern delays only its own group. A wait for
 * an exact request or name (dw_sim_journal_want) looks its candidates up
 * in a hash index of the copy instead of testing every entry. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/journal_int.h"

/* The watcher looks at most once per RECHECK_NS (a new wait makes it look
 * at once), on the boundaries of that period on the monotonic clock. */
#define RECHECK_NS 5000000L
/* How far past its deadline a wait may wait for the watcher to look at
 * what was there when it came (a wait with timeout_ms=0 still looks). */
#define GRACE_NS 5000000L
/* A group's matching per look: a group whose pattern is slow goes on
 * where it stopped at the next look, and the others are not held up. */
#define GROUP_BUDGET_NS 2000000L

/* A copy of entries that groups looking at the same range share. Immutable
 * once made; `refs` counts its users and the cache, under the lock. */
typedef struct dw__journal_shared {
    size_t refs;
    uint64_t first, end;      /* it holds every entry there was in [first, end) */
    struct snap_index *index; /* made by the watcher when a wait wants it */
    dw__journal_snapshot s;
} shared;

/* The entries of a copy by the hash of their request and of their match's
 * name: a wait for an exact request or name finds its candidates in a few
 * steps, not by a pred call on every entry (sixty waits for sixty
 * different requests cost about what one does). Each bucket lists its
 * entries in order; -1 ends a list. */
#define INDEX_BUCKETS (2 * DW__JOURNAL_CHUNK)
typedef struct snap_index {
    int16_t req_head[INDEX_BUCKETS], name_head[INDEX_BUCKETS];
    int16_t req_next[DW__JOURNAL_CHUNK], name_next[DW__JOURNAL_CHUNK];
} snap_index;

/* One wait, on its caller's stack. */
typedef struct waiter {
    struct waiter *next; /* in its group */
    struct dw__journal_group *group;
    uint64_t since;
    uint64_t came_at; /* next_seq when it came: what it looks at before a timeout */
    const dw_sim_journal_want *want;
    int rc; /* 1 while waiting, then what the wait returns */
    dw_sim_journal_entry *out;
} waiter;

/* Waits that test entries from the same point on with the same pattern. */
typedef struct dw__journal_group {
    struct dw__journal_group *next;
    char *key;       /* NULL: a wait of its own (its pred keeps state) */
    uint32_t hash;   /* of key: groups are compared by it first */
    uint64_t cursor; /* every entry below it was tested */
    waiter *members;
    waiter *testing;  /* whose pred the watcher runs now, outside the lock */
    int64_t spent_ns; /* matching in this look */
} group;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec as_timespec(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return ts;
}

/* Under the lock: one user fewer. */
static void shared_release(shared *c)
{
    if (c && --c->refs == 0) {
        dw_buf_free(&c->s.bytes);
        free(c->index);
        free(c);
    }
}

static void forget_cache(dw_sim_journal *j)
{
    shared_release(j->cache);
    j->cache = NULL;
}

/* Under the lock: entries from *since on, in the cached copy when it holds
 * *since, else in a new one that becomes the cache (NULL: none, or *oom);
 * *since moves past them. */
static shared *take(dw_sim_journal *j, uint64_t *since, int *oom)
{
    shared *c = j->cache;
    if (c && c->first <= *since && *since < c->end) {
        c->refs++;
        *since = c->end;
        return c;
    }
    if (!(c = malloc(sizeof *c))) {
        *oom = 1;
        return NULL;
    }
    c->s.n = 0;
    c->s.bytes = (dw_buf)DW_BUF_INIT;
    c->index = NULL;
    c->first = *since;
    int more = dw__journal_snap_chunk(j, since, UINT64_MAX, DW__JOURNAL_CHUNK, &c->s);
    if (more < 0 || c->s.n == 0) {
        *oom = more < 0;
        dw_buf_free(&c->s.bytes);
        free(c);
        return NULL;
    }
    dw__journal_snap_fix(&c->s);
    c->end = *since;
    c->refs = 2; /* the caller's and the cache's */
    shared_release(j->cache);
    j->cache = c;
    return c;
}

/* Under the lock: w leaves its group (the watcher frees empty groups),
 * once the watcher is done with w's pred (one group's look is bounded), so
 * that the caller's arg can go. */
static void leave(dw_sim_journal *j, waiter *w)
{
    j->lingering++;
    while (w->group && w->group->testing == w)
        pthread_cond_wait(&j->answered, &j->lock);
    j->lingering--;
    if (!w->group)
        return; /* answered meanwhile */
    waiter **p = &w->group->members;
    while (*p && *p != w)
        p = &(*p)->next;
    if (*p)
        *p = w->next;
}

/* Under the lock, at a hit on e: every member that asked for e's seq or
 * earlier gets a copy and leaves. */
static void answer(dw_sim_journal *j, group *g, const dw_sim_journal_entry *e)
{
    for (waiter **p = &g->members; *p;) {
        waiter *w = *p;
        if (w->since > e->seq) {
            p = &w->next;
            continue;
        }
        w->rc = dw__journal_entry_copy(e, w->out);
        w->group = NULL;
        *p = w->next;
    }
    pthread_cond_broadcast(&j->answered);
}

/* Outside the lock: w's pred on c's entries from `from` on, until a hit
 * (its index), the end (-1) or `stop` (-1, *reached says how far). */
static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Outside the lock, on the watcher: c's index, made the first time (NULL
 * when out of memory). Only the watcher reads a copy's index. */
static const snap_index *index_of(shared *c)
{
    if (c->index)
        return c->index;
    snap_index *x = malloc(sizeof *x);
    if (!x)
        return NULL;
    memset(x->req_head, 0xff, sizeof x->req_head); /* every list empty (-1) */
    memset(x->name_head, 0xff, sizeof x->name_head);
    for (size_t i = c->s.n; i-- > 0;) { /* backwards: each list in order */
        const dw_sim_journal_entry *e = &c->s.e[i];
        uint32_t r = hash_bytes(e->req, e->req_len) % INDEX_BUCKETS;
        x->req_next[i] = x->req_head[r];
        x->req_head[r] = (int16_t)i;
        uint32_t m = e->match ? hash_bytes((const uint8_t *)e->match, strlen(e->match)) : 0;
        x->name_next[i] = e->match ? x->name_head[m % INDEX_BUCKETS] : -1;
        if (e->match)
            x->name_head[m % INDEX_BUCKETS] = (int16_t)i;
    }
    return c->index = x;
}

/* The first entry of a list at or after `from` (and before `limit`) that
 * the wait accepts, or -1. */
static long first_in(const shared *c, const int16_t *next, int16_t i, uint64_t from, long limit,
                     const dw_sim_journal_want *want)
{
    for (; i >= 0 && (limit < 0 || i < limit); i = next[i])
        if (c->s.e[i].seq >= from && want->pred(&c->s.e[i], want->arg))
            return i;
    return -1;
}

/* A wait for an exact request or name, through c's index: the first
 * candidate it accepts (its index), or -1. */
static long scan_indexed(const shared *c, const snap_index *x, uint64_t from,
                         const dw_sim_journal_want *want)
{
    long hit = -1;
    if (want->request) {
        uint32_t r = hash_bytes(want->request, want->request_len) % INDEX_BUCKETS;
        hit = first_in(c, x->req_next, x->req_head[r], from, -1, want);
    }
    if (want->name) {
        uint32_t m = hash_bytes((const uint8_t *)want->name, strlen(want->name)) % INDEX_BUCKETS;
        long by_name = first_in(c, x->name_next, x->name_head[m], from, hit, want);
        hit = by_name >= 0 ? by_name : hit;
    }
    return hit;
}

static long scan(shared *c, uint64_t from, waiter *w, int64_t stop, uint64_t *reached)
{
    const dw_sim_journal_want *want = w->want;
    const snap_index *x = want->request || want->name ? index_of(c) : NULL;
    *reached = c->end;
    if (x)
        return scan_indexed(c, x, from, want);
    for (size_t i = 0; i < c->s.n; i++) {
        const dw_sim_journal_entry *e = &c->s.e[i];
        if (e->seq < from)
            continue;
        if (want->pred(e, want->arg))
            return (long)i;
        if (i % 32 == 31 && mono_ns() > stop) { /* a look at the clock costs a pred call */
            *reached = e->seq + 1;
            return -1;
        }
    }
    return -1;
}

/* Under the lock: fail every member of g with rc. */
static void fail_all(dw_sim_journal *j, group *g, int rc)
{
    for (waiter *w = g->members; w; w = w->next) {
        w->rc = rc;
        w->group = NULL;
    }
    g->members = NULL;
    pthread_cond_broadcast(&j->answered);
}

/* Under the lock: test g's entries in c from its cursor on with its first
 * member's pred, letting go of the lock meanwhile, and charge the time to
 * g's budget for this look. */
static void look_at(dw_sim_journal *j, group *g, shared *c)
{
    int64_t t0 = mono_ns();
    waiter *w = g->members;
    uint64_t from = g->cursor, reached;
    g->testing = w;
    pthread_mutex_unlock(&j->lock);
    long hit = scan(c, from, w, t0 + GROUP_BUDGET_NS - g->spent_ns, &reached);
    pthread_mutex_lock(&j->lock);
    g->testing = NULL;
    if (hit >= 0) {
        answer(j, g, &c->s.e[hit]);
        reached = c->s.e[hit].seq + 1;
    } else if (j->lingering) /* waits past their deadline wait for this */
        pthread_cond_broadcast(&j->answered);
    g->cursor = reached;
    g->spent_ns += mono_ns() - t0;
}

/* Under the lock: the group furthest behind that may still look, or NULL. */
static group *furthest_behind(dw_sim_journal *j)
{
    group *first = NULL;
    for (group *g = j->groups; g; g = g->next)
        if (g->members && g->cursor < j->next_seq && g->spent_ns < GROUP_BUDGET_NS &&
            (!first || g->cursor < first->cursor))
            first = g;
    return first;
}

/* Under the lock: one look, copy by copy: each copy of new entries (made
 * from the cursor furthest behind) is tested for every group whose cursor
 * is in it, so the groups share it (one copy of what came per look,
 * however many groups), and each group gets at most GROUP_BUDGET_NS of
 * matching. */
static void look_all(dw_sim_journal *j)
{
    for (group *g = j->groups; g; g = g->next)
        g->spent_ns = 0;
    group *first;
    while (!j->closed && (first = furthest_behind(j))) {
        uint64_t next = first->cursor;
        int oom = 0;
        shared *c = take(j, &next, &oom);
        if (!c && oom) {
            fail_all(j, first, DW_ENOMEM);
            continue;
        }
        for (group *g = j->groups; g; g = g->next) {
            if (!c && g->cursor >= first->cursor)
                g->cursor = j->next_seq; /* nothing left there: dropped or cleared */
            else if (c && g->members && g->cursor >= c->first && g->cursor < c->end &&
                     g->spent_ns < GROUP_BUDGET_NS)
                look_at(j, g, c);
        }
        shared_release(c);
    }
}

static int same_key(const group *a, const group *b)
{
    return a->key && b->key && a->hash == b->hash && strcmp(a->key, b->key) == 0;
}

/* Under the lock, between looks: free empty groups, and merge groups with
 * the same key that reached the same point. */
static void tidy(dw_sim_journal *j)
{
    for (group **p = &j->groups; *p;) {
        group *g = *p, *into = NULL;
        for (group *o = j->groups; o && !into; o = o->next)
            if (o != g && o->cursor == g->cursor && same_key(o, g) && o->members)
                into = o;
        if (g->members && !into) {
            p = &g->next;
            continue;
        }
        while (g->members) { /* into another group, in order */
            waiter *w = g->members;
            g->members = w->next;
            w->next = into->members;
            w->group = into;
            into->members = w;
        }
        *p = g->next;
        free(g->key);
        free(g);
    }
}

/* Under the lock: some group has entries it has not tested. */
static int behind(const dw_sim_journal *j)
{
    for (const group *g = j->groups; g; g = g->next)
        if (g->members && g->cursor < j->next_seq)
            return 1;
    return 0;
}

/* Under the lock: sleep until the next boundary of RECHECK_NS (or until the
 * journal closes, or a wait comes). */
static void pace(dw_sim_journal *j)
{
    int64_t now = mono_ns();
    struct timespec until = as_timespec((now / RECHECK_NS + 1) * RECHECK_NS);
    while (!j->closed && !j->urgent &&
           pthread_cond_timedwait(&j->grew, &j->lock, &until) != ETIMEDOUT)
        ;
}

static void *watch(void *arg)
{
    dw_sim_journal *j = arg;
    pthread_setname_np(pthread_self(), "devwire-watch");
    pthread_mutex_lock(&j->lock);
    while (!j->closed) {
        tidy(j);
        if (!behind(j) && !j->urgent) { /* until an entry or a wait comes */
            j->sleepers = 1;
            pthread_cond_wait(&j->grew, &j->lock);
            continue;
        }
        if (!j->urgent)
            pace(j);
        j->urgent = 0;
        look_all(j);
    }
    for (group *g = j->groups; g; g = g->next)
        fail_all(j, g, DW_ECANCELED);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* After close: join the watcher and free what the waits left. */
static void free_waits(dw_sim_journal *j)
{
    if (j->watching)
        pthread_join(j->watcher, NULL);
    j->watching = 0;
    while (j->groups) {
        group *g = j->groups;
        j->groups = g->next;
        free(g->key);
        free(g);
    }
    forget_cache(j);
}

/* Under the lock: w into the group with its key that has not gone past its
 * `since`, or a new one. DW_OK or DW_ENOMEM. */
static int join(dw_sim_journal *j, const char *key, waiter *w)
{
    group *g = NULL;
    uint32_t hash = key ? hash_bytes((const uint8_t *)key, strlen(key)) : 0;
    for (group *o = key ? j->groups : NULL; o && !g; o = o->next)
        if (o->key && o->hash == hash && strcmp(o->key, key) == 0 && o->cursor <= w->since &&
            o->members)
            g = o;
    if (!g) {
        if (!(g = calloc(1, sizeof *g)) || (key && !(g->key = strdup(key)))) {
            free(g);
            return DW_ENOMEM;
        }
        g->hash = hash;
        g->cursor = w->since;
        g->next = j->groups;
        j->groups = g;
    }
    w->group = g;
    w->next = g->members;
    g->members = w;
    return DW_OK;
}

/* Under the lock: start the watcher. DW_OK or DW_ENOMEM. */
static int start_watcher(dw_sim_journal *j)
{
    if (j->watching)
        return DW_OK;
    if (pthread_create(&j->watcher, NULL, watch, j) != 0)
        return DW_ENOMEM;
    j->watching = 1;
    return DW_OK;
}

/* Under the lock: until the watcher answers w, the journal closes, or the
 * deadline (and then what was there when w came has been looked at, or
 * GRACE_NS more went by). */
static void sleep_until_answered(dw_sim_journal *j, waiter *w, int64_t due)
{
    while (w->rc == 1 && !j->closed) {
        int64_t now = mono_ns();
        int looked = w->group->cursor >= w->came_at && !w->group->testing;
        if (now >= due && (looked || now >= due + GRACE_NS)) {
            w->rc = DW_ETIMEDOUT;
            break;
        }
        struct timespec ts = as_timespec(now >= due ? due + GRACE_NS : due);
        j->lingering += now >= due;
        pthread_cond_timedwait(&j->answered, &j->lock, &ts);
        j->lingering -= now >= due;
    }
    if (w->rc == 1)
        w->rc = DW_ECANCELED;
}

int dw_sim_journal_wait(dw_sim_journal *j, uint64_t since, const char *key,
                        int (*pred)(const dw_sim_journal_entry *e, void *arg), void *arg,
                        int timeout_ms, dw_sim_journal_entry *out)
{
    dw_sim_journal_want want = {.key = key, .pred = pred, .arg = arg};
    return dw_sim_journal_wait_for(j, since, &want, timeout_ms, out);
}

int dw_sim_journal_wait_for(dw_sim_journal *j, uint64_t since, const dw_sim_journal_want *want,
                            int timeout_ms, dw_sim_journal_entry *out)
{
    int64_t due = mono_ns() + (int64_t)timeout_ms * 1000000;
    const char *key = want->key;
    memset(out, 0, sizeof *out);
    waiter w = {.since = since, .want = want, .rc = 1, .out = out};
    pthread_mutex_lock(&j->lock);
    int rc = j->closed ? DW_ECANCELED : start_watcher(j);
    if (rc == DW_OK)
        rc = join(j, key, &w);
    if (rc != DW_OK) {
        pthread_mutex_unlock(&j->lock);
        return rc;
    }
    w.came_at = j->next_seq;
    j->urgent = 1;
    pthread_cond_signal(&j->grew);
    sleep_until_answered(j, &w, due);
    leave(j, &w);
    pthread_mutex_unlock(&j->lock);
    if (w.rc != DW_OK)
        dw_sim_journal_entry_free(out);
    return w.rc;
}

dw_sim_journal *dw_sim_journal_new(size_t capacity)
{
    dw_sim_journal *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->cap = capacity ? capacity : 1;
    pthread_mutex_init(&j->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->grew, &ca);
    pthread_cond_init(&j->answered, &ca);
    pthread_condattr_destroy(&ca);
    j->next_seq = 1;
    return j;
}

void dw_sim_journal_clear(dw_sim_journal *j)
{
    pthread_mutex_lock(&j->lock);
    forget_cache(j); /* a cleared entry is not seen again */
    dw__journal_ring_drop_all(j);
    j->dropped = 0; /* what a verification must know: dropped since the last clear */
    pthread_mutex_unlock(&j->lock);
}

void dw_sim_journal_free(dw_sim_journal *j)
{
    if (!j)
        return;
    dw_sim_journal_close(j);
    free_waits(j);
    dw_sim_journal_clear(j);
    pthread_cond_destroy(&j->grew);
    pthread_cond_destroy(&j->answered);
    pthread_mutex_destroy(&j->lock);
    free(j->ring);
    free(j);
}

void dw_sim_journal_close(dw_sim_journal *j)
{
    pthread_mutex_lock(&j->lock);
    j->closed = 1;
    pthread_cond_broadcast(&j->grew);
    pthread_cond_broadcast(&j->answered);
    pthread_mutex_unlock(&j->lock);
}
