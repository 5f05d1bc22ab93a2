/* devwire-sim's journal: see journal.h. */
#include "observe/journal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_bytes.h"

/* Entries, and bytes, copied per hold of the lock: a scan of a long
 * journal lets the device append between chunks. */
#define CHUNK       1024
#define CHUNK_BYTES (256 * 1024)
/* A waiter looks at the journal at most once per RECHECK_NS: under steady
 * traffic each waiter then costs the device at most one wake-up per period,
 * however many requests come, and finds a match at most this late. The
 * looks fall on common boundaries (multiples of RECHECK_NS on the
 * monotonic clock), so that waiters look together and share one copy of
 * what came (the cache): sixty waiters copy the new entries once per
 * period, not sixty times at sixty moments, each under the lock the
 * device appends with. */
#define RECHECK_NS 5000000L
/* How far past its deadline a wait's matching pass may run (a wait with
 * timeout_ms=0 still looks at what is already there). */
#define GRACE_NS 5000000L

struct dw_sim_journal {
    pthread_mutex_t lock;
    pthread_cond_t grew; /* an entry was added, or the journal closed */
    dw_sim_journal_entry *ring;
    size_t cap, head, count; /* the oldest entry is ring[head] */
    size_t size;             /* entries allocated: grows to cap as they come */
    uint64_t next_seq, dropped;
    size_t sleepers; /* waiters in pthread_cond_timedwait since the last wake-up */
    int closed;
    struct shared *cache; /* the newest waiters' snapshot */
};

/* Entries copied out of the ring, their bytes in one buffer, looked at
 * (matched, counted) outside the lock. */
typedef struct snapshot {
    dw_sim_journal_entry e[CHUNK];
    size_t n;
    dw_buf bytes;
} snapshot;

/* A snapshot that waiters share: waiters woken together mostly want the
 * same new entries, and one copy of them serves them all, so the lock time
 * waiters take does not grow with their number. Immutable once made;
 * `refs` counts its users and the cache, under the lock. */
typedef struct shared {
    size_t refs;
    uint64_t first, end; /* it holds every entry there was in [first, end) */
    int full;            /* it stopped at a bound: more came before `end` was taken */
    snapshot s;
} shared;

/* Under the lock: one user fewer. */
static void shared_release(shared *c)
{
    if (c && --c->refs == 0) {
        dw_buf_free(&c->s.bytes);
        free(c);
    }
}

void dw_sim_journal_entry_free(dw_sim_journal_entry *e)
{
    if (!e)
        return;
    free(e->req); /* one block holds the request, the reply and the name */
    memset(e, 0, sizeof *e);
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
    pthread_condattr_destroy(&ca);
    j->next_seq = 1;
    return j;
}

void dw_sim_journal_clear(dw_sim_journal *j)
{
    pthread_mutex_lock(&j->lock);
    shared_release(j->cache); /* a cleared entry is not seen again */
    j->cache = NULL;
    for (size_t k = 0; k < j->count; k++)
        dw_sim_journal_entry_free(&j->ring[(j->head + k) % j->size]);
    j->head = j->count = 0;
    j->dropped = 0; /* what a verification must know: dropped since the last clear */
    pthread_mutex_unlock(&j->lock);
}

void dw_sim_journal_free(dw_sim_journal *j)
{
    if (!j)
        return;
    dw_sim_journal_close(j);
    dw_sim_journal_clear(j);
    pthread_cond_destroy(&j->grew);
    pthread_mutex_destroy(&j->lock);
    free(j->ring);
    free(j);
}

void dw_sim_journal_close(dw_sim_journal *j)
{
    pthread_mutex_lock(&j->lock);
    j->closed = 1;
    pthread_cond_broadcast(&j->grew);
    pthread_mutex_unlock(&j->lock);
}

/* Fill e's bytes and name in one block (at most DW_SIM_JOURNAL_KEEP bytes
 * of each): 0, or -1 when out of memory. One allocation per entry keeps a
 * request's cost to the device small. */
static int fill(dw_sim_journal_entry *e, const uint8_t *req, size_t n, const char *match,
                const uint8_t *reply, size_t reply_n)
{
    e->req_len = n < DW_SIM_JOURNAL_KEEP ? n : DW_SIM_JOURNAL_KEEP;
    e->reply_len = reply_n < DW_SIM_JOURNAL_KEEP ? reply_n : DW_SIM_JOURNAL_KEEP;
    size_t mlen = match ? strlen(match) + 1 : 0;
    uint8_t *b = malloc(e->req_len + e->reply_len + mlen + 1);
    e->req = b;
    if (!b)
        return -1;
    e->reply = b + e->req_len;
    e->match = match ? (char *)b + e->req_len + e->reply_len : NULL;
    if (e->req_len)
        memcpy(e->req, req, e->req_len);
    if (e->reply_len)
        memcpy(e->reply, reply, e->reply_len);
    if (match)
        memcpy(e->match, match, mlen);
    return 0;
}

static int entry_copy(const dw_sim_journal_entry *from, dw_sim_journal_entry *to)
{
    *to = *from;
    if (fill(to, from->req, from->req_len, from->match, from->reply, from->reply_len) != 0) {
        memset(to, 0, sizeof *to);
        return DW_ENOMEM;
    }
    return DW_OK;
}

/* Under the lock, the ring full below its capacity: twice the entries
 * (at first 16, at most cap). The ring is allocated as it fills, so a
 * device that sees few requests keeps a small one: a bench of thousands of
 * devices with the control API would otherwise map cap entries each
 * (10,000 by default: 800 KB). Until the ring reaches cap nothing was
 * dropped, so head is 0 and the entries keep their order. 0, or -1 when
 * out of memory: then the ring stays as it is and that is its capacity. */
static int grow(dw_sim_journal *j)
{
    size_t size = j->size ? 2 * j->size : 16;
    if (size > j->cap)
        size = j->cap;
    dw_sim_journal_entry *ring = realloc(j->ring, size * sizeof *ring);
    if (!ring) {
        j->cap = j->size;
        return -1;
    }
    j->ring = ring;
    j->size = size;
    return 0;
}

uint64_t dw_sim_journal_add(dw_sim_journal *j, uint64_t conn, const uint8_t *req, size_t n,
                            const char *match, const uint8_t *reply, size_t reply_n,
                            const char *fault)
{
    dw_sim_journal_entry e = {0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e.time_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    e.conn = conn;
    e.req_total = n;
    e.reply_total = reply_n;
    e.fault = fault;
    int ok = fill(&e, req, n, match, reply, reply_n) == 0;
    pthread_mutex_lock(&j->lock);
    uint64_t seq = j->next_seq++;
    if (!ok) {
        j->dropped++;
        pthread_mutex_unlock(&j->lock);
        dw_sim_journal_entry_free(&e);
        return 0;
    }
    e.seq = seq;
    if (j->count == j->size && j->size < j->cap && grow(j) != 0 && j->size == 0) {
        j->dropped++;
        pthread_mutex_unlock(&j->lock);
        dw_sim_journal_entry_free(&e);
        return 0;
    }
    dw_sim_journal_entry old = {0};
    if (j->count == j->cap) { /* the oldest makes room (freed after the unlock) */
        old = j->ring[j->head];
        j->head = (j->head + 1) % j->size;
        j->count--;
        j->dropped++;
    }
    j->ring[(j->head + j->count) % j->size] = e;
    j->count++;
    /* One wake-up for whoever sleeps now, none when nobody does: the
     * device's cost does not grow with the waiters (see RECHECK_NS). */
    size_t wake = j->sleepers;
    j->sleepers = 0;
    pthread_mutex_unlock(&j->lock);
    if (wake)
        pthread_cond_broadcast(&j->grew);
    dw_sim_journal_entry_free(&old);
    return seq;
}

uint64_t dw_sim_journal_next_seq(dw_sim_journal *j)
{
    pthread_mutex_lock(&j->lock);
    uint64_t n = j->next_seq;
    pthread_mutex_unlock(&j->lock);
    return n;
}

uint64_t dw_sim_journal_dropped(dw_sim_journal *j)
{
    pthread_mutex_lock(&j->lock);
    uint64_t n = j->dropped;
    pthread_mutex_unlock(&j->lock);
    return n;
}

/* Under the lock: the first entry index (0..count) with seq >= since. */
static size_t first_since(const dw_sim_journal *j, uint64_t since)
{
    if (j->count == 0)
        return 0;
    uint64_t oldest = j->ring[j->head].seq;
    /* Sequence numbers are consecutive in the ring except where an entry
     * failed to be added: search from the estimate backwards. */
    size_t k = since <= oldest ? 0 : (size_t)(since - oldest);
    if (k > j->count)
        k = j->count;
    while (k > 0 && j->ring[(j->head + k - 1) % j->size].seq >= since)
        k--;
    while (k < j->count && j->ring[(j->head + k) % j->size].seq < since)
        k++;
    return k;
}

/* Under the lock: copy entries with seq >= *since and below `end` into s
 * (at most CHUNK of them and about CHUNK_BYTES of bytes), and move *since
 * past the last. Plain copies, no matching: the lock is held for
 * O(entries copied). Returns 1 when it stopped at a bound (more may follow
 * below `end`), 0 when it saw everything, -1 when out of memory. */
static int snap_chunk(dw_sim_journal *j, uint64_t *since, uint64_t end, size_t max, snapshot *s)
{
    s->n = 0;
    dw_buf_clear(&s->bytes);
    size_t k = first_since(j, *since);
    for (; k < j->count; k++) {
        const dw_sim_journal_entry *e = &j->ring[(j->head + k) % j->size];
        if (e->seq >= end)
            return 0;
        if (s->n == CHUNK || s->n == max || (s->n && s->bytes.len >= CHUNK_BYTES))
            return 1;
        size_t mlen = e->match ? strlen(e->match) + 1 : 0;
        dw_sim_journal_entry *c = &s->e[s->n];
        *c = *e;
        /* Offsets for now: the buffer may move while it grows. */
        c->req = (uint8_t *)(uintptr_t)s->bytes.len;
        if (dw_buf_append(&s->bytes, e->req, e->req_len + e->reply_len + mlen) != DW_OK)
            return -1;
        s->n++;
        *since = e->seq + 1;
    }
    return 0;
}

/* Outside the lock: point the copied entries at their bytes. */
static void snap_fix(snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        dw_sim_journal_entry *c = &s->e[i];
        uint8_t *b = s->bytes.data + (uintptr_t)c->req;
        c->req = b;
        c->reply = b + c->req_len;
        c->match = c->match ? (char *)b + c->req_len + c->reply_len : NULL;
    }
}

static snapshot *snap_new(void)
{
    snapshot *s = malloc(sizeof *s);
    if (s) {
        s->n = 0;
        s->bytes = (dw_buf)DW_BUF_INIT;
    }
    return s;
}

static void snap_free(snapshot *s)
{
    if (s)
        dw_buf_free(&s->bytes);
    free(s);
}

int dw_sim_journal_each(dw_sim_journal *j, uint64_t since,
                        int (*fn)(const dw_sim_journal_entry *e, void *arg), void *arg)
{
    snapshot *s = snap_new();
    if (!s)
        return 0;
    int r = 0, more = 1;
    pthread_mutex_lock(&j->lock);
    uint64_t end = j->next_seq; /* what is added meanwhile is not visited */
    while (more > 0 && !r) {
        more = snap_chunk(j, &since, end, CHUNK, s);
        pthread_mutex_unlock(&j->lock); /* fn runs on the copies, the device appends */
        snap_fix(s);
        for (size_t i = 0; i < s->n && !r; i++)
            r = fn(&s->e[i], arg);
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    snap_free(s);
    return r;
}

/* Outside the lock: owned copies of s's entries appended to *out. */
static int read_out(snapshot *s, dw_sim_journal_entry **out, size_t *n)
{
    snap_fix(s);
    if (!s->n)
        return DW_OK;
    dw_sim_journal_entry *e = realloc(*out, (*n + s->n) * sizeof *e);
    if (!e)
        return DW_ENOMEM;
    *out = e;
    for (size_t i = 0; i < s->n; i++, ++*n)
        if (entry_copy(&s->e[i], &e[*n]) != DW_OK)
            return DW_ENOMEM;
    return DW_OK;
}

int dw_sim_journal_read(dw_sim_journal *j, uint64_t since, size_t max, dw_sim_journal_entry **out,
                        size_t *n, uint64_t *first)
{
    *out = NULL;
    *n = 0;
    snapshot *s = snap_new();
    if (!s)
        return DW_ENOMEM;
    int rc = DW_OK, more = 1;
    pthread_mutex_lock(&j->lock);
    *first = j->count ? j->ring[j->head].seq : 0;
    uint64_t end = j->next_seq; /* a page is what was there when asked */
    while (more > 0 && rc == DW_OK && *n < max) {
        /* Plain copies under the lock; the allocations after it. */
        more = snap_chunk(j, &since, end, max - *n, s);
        pthread_mutex_unlock(&j->lock);
        rc = more < 0 ? DW_ENOMEM : read_out(s, out, n);
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    snap_free(s);
    return rc;
}

/* Printable ASCII (and tab, CR, LF) is shown as text, the rest as hex. */
static int add_bytes(cJSON *o, const char *key, const uint8_t *p, size_t n, size_t total)
{
    cJSON *b = cJSON_AddObjectToObject(o, key);
    if (!b)
        return -1;
    if (dw_sim_bytes_are_text(p, n, 1)) {
        char *t = malloc(n + 1);
        if (!t)
            return -1;
        if (n)
            memcpy(t, p, n);
        t[n] = 0;
        cJSON *s = cJSON_AddStringToObject(b, "text", t);
        free(t);
        if (!s)
            return -1;
    } else {
        char *h = dw_sim_bytes_hex(p, n);
        if (!h)
            return -1;
        cJSON *s = cJSON_AddStringToObject(b, "hex", h);
        free(h);
        if (!s)
            return -1;
    }
    if (!cJSON_AddNumberToObject(b, "bytes", (double)total))
        return -1;
    if (total > n && !cJSON_AddTrueToObject(b, "truncated"))
        return -1;
    return 0;
}

cJSON *dw_sim_journal_entry_json(const dw_sim_journal_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddNumberToObject(o, "seq", (double)e->seq) &&
             cJSON_AddNumberToObject(o, "time", (double)e->time_us / 1e6) &&
             cJSON_AddNumberToObject(o, "conn", (double)e->conn) &&
             add_bytes(o, "request", e->req, e->req_len, e->req_total) == 0 &&
             (e->match ? cJSON_AddStringToObject(o, "match", e->match)
                       : cJSON_AddNullToObject(o, "match")) &&
             add_bytes(o, "reply", e->reply, e->reply_len, e->reply_total) == 0 &&
             (e->fault ? cJSON_AddStringToObject(o, "fault", e->fault)
                       : cJSON_AddNullToObject(o, "fault"));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

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

/* Under the lock: entries from *since on, in the cached snapshot when it
 * holds *since, else in a new one that becomes the cache (NULL: none, or
 * *oom); *since moves past them, *more says whether there are newer ones. */
static shared *take(dw_sim_journal *j, uint64_t *since, int *more, int *oom)
{
    shared *c = j->cache;
    if (c && c->first <= *since && *since < c->end) {
        c->refs++;
        *since = c->end;
        *more = c->full;
        return c;
    }
    if (!(c = malloc(sizeof *c))) {
        *oom = 1;
        return NULL;
    }
    c->s.n = 0;
    c->s.bytes = (dw_buf)DW_BUF_INIT;
    c->first = *since;
    *more = snap_chunk(j, since, UINT64_MAX, CHUNK, &c->s);
    if (*more < 0 || c->s.n == 0) {
        *oom = *more < 0;
        dw_buf_free(&c->s.bytes);
        free(c);
        return NULL;
    }
    snap_fix(&c->s);
    c->end = *since;
    c->full = *more;
    c->refs = 2; /* the caller's and the cache's */
    shared_release(j->cache);
    j->cache = c;
    return c;
}

/* Outside the lock: the first copied entry pred accepts, copied to *out
 * (DW_OK, or DW_ENOMEM); 1 when none did; DW_ETIMEDOUT when the pass ran
 * out of time first (a bounded pattern keeps each step short). */
static int find(const snapshot *s, uint64_t from,
                int (*pred)(const dw_sim_journal_entry *e, void *arg), void *arg, int64_t stop_ns,
                dw_sim_journal_entry *out)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].seq < from)
            continue;
        if (pred(&s->e[i], arg))
            return entry_copy(&s->e[i], out);
        if (mono_ns() > stop_ns)
            return DW_ETIMEDOUT;
    }
    return 1;
}

/* Under the lock, after a look at the journal at look_ns found nothing:
 * sleep until an entry comes (unless one came meanwhile), the journal
 * closes or the deadline, then until the next boundary of RECHECK_NS after
 * the look, unregistered. The lock is held again on return. */
static void pace(dw_sim_journal *j, uint64_t since, int64_t look_ns, int64_t due_ns)
{
    if (since >= j->next_seq && !j->closed) {
        struct timespec due = as_timespec(due_ns);
        j->sleepers++;
        pthread_cond_timedwait(&j->grew, &j->lock, &due);
    }
    int64_t boundary = (look_ns / RECHECK_NS + 1) * RECHECK_NS;
    int64_t until = boundary < due_ns ? boundary : due_ns;
    if (mono_ns() >= until || j->closed)
        return;
    struct timespec ts = as_timespec(until);
    pthread_mutex_unlock(&j->lock);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    pthread_mutex_lock(&j->lock);
}

int dw_sim_journal_wait(dw_sim_journal *j, uint64_t since,
                        int (*pred)(const dw_sim_journal_entry *e, void *arg), void *arg,
                        int timeout_ms, dw_sim_journal_entry *out)
{
    int64_t due = mono_ns() + (int64_t)timeout_ms * 1000000;
    int rc = 1;
    pthread_mutex_lock(&j->lock);
    for (;;) {
        int64_t look = mono_ns();
        int more = 0, oom = 0;
        uint64_t from = since;
        shared *c = take(j, &since, &more, &oom);
        if (oom) {
            rc = DW_ENOMEM;
            break;
        }
        if (c) { /* match on this thread, the device appends meanwhile */
            pthread_mutex_unlock(&j->lock);
            rc = find(&c->s, from, pred, arg, due + GRACE_NS, out);
            pthread_mutex_lock(&j->lock);
            shared_release(c);
            if (rc != 1)
                break;
            if (more)
                continue; /* the rest of a backlog */
        } else if (since < j->next_seq)
            since = j->next_seq; /* only newer entries from now on */
        if (j->closed || mono_ns() >= due) {
            rc = j->closed ? DW_ECANCELED : DW_ETIMEDOUT;
            break;
        }
        pace(j, since, look, due);
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}
