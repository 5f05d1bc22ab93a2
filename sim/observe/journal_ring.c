/* devwire-sim's journal: the ring, appended to and copied out of (see
 * journal.h); its life and its waits are in journal.c. */
#include "observe/journal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_bytes.h"
#include "observe/journal_int.h"

void dw_sim_journal_entry_free(dw_sim_journal_entry *e)
{
    if (!e)
        return;
    free(e->req); /* one block holds the request, the reply and the name */
    memset(e, 0, sizeof *e);
}

/* Under the lock: forget every entry. */
void dw__journal_ring_drop_all(dw_sim_journal *j)
{
    for (size_t k = 0; k < j->count; k++)
        dw_sim_journal_entry_free(&j->ring[(j->head + k) % j->size]);
    j->head = j->count = 0;
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

int dw__journal_entry_copy(const dw_sim_journal_entry *from, dw_sim_journal_entry *to)
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
    /* One wake-up, of the waits' watcher, and only when it sleeps: the
     * device's cost does not grow with the waits (journal.c). */
    int wake = j->sleepers;
    j->sleepers = 0;
    pthread_mutex_unlock(&j->lock);
    if (wake)
        pthread_cond_signal(&j->grew);
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

/* Plain copies, no matching: the lock is held for O(entries copied). */
int dw__journal_snap_chunk(dw_sim_journal *j, uint64_t *since, uint64_t end, size_t max,
                           dw__journal_snapshot *s)
{
    s->n = 0;
    dw_buf_clear(&s->bytes);
    size_t k = first_since(j, *since);
    for (; k < j->count; k++) {
        const dw_sim_journal_entry *e = &j->ring[(j->head + k) % j->size];
        if (e->seq >= end)
            return 0;
        if (s->n == DW__JOURNAL_CHUNK || s->n == max ||
            (s->n && s->bytes.len >= DW__JOURNAL_CHUNK_BYTES))
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

void dw__journal_snap_fix(dw__journal_snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        dw_sim_journal_entry *c = &s->e[i];
        uint8_t *b = s->bytes.data + (uintptr_t)c->req;
        c->req = b;
        c->reply = b + c->req_len;
        c->match = c->match ? (char *)b + c->req_len + c->reply_len : NULL;
    }
}

static dw__journal_snapshot *snap_new(void)
{
    dw__journal_snapshot *s = malloc(sizeof *s);
    if (s) {
        s->n = 0;
        s->bytes = (dw_buf)DW_BUF_INIT;
    }
    return s;
}

static void snap_free(dw__journal_snapshot *s)
{
    if (s)
        dw_buf_free(&s->bytes);
    free(s);
}

int dw_sim_journal_each(dw_sim_journal *j, uint64_t since,
                        int (*fn)(const dw_sim_journal_entry *e, void *arg), void *arg)
{
    dw__journal_snapshot *s = snap_new();
    if (!s)
        return 0;
    int r = 0, more = 1;
    pthread_mutex_lock(&j->lock);
    uint64_t end = j->next_seq; /* what is added meanwhile is not visited */
    while (more > 0 && !r) {
        more = dw__journal_snap_chunk(j, &since, end, DW__JOURNAL_CHUNK, s);
        pthread_mutex_unlock(&j->lock); /* fn runs on the copies, the device appends */
        dw__journal_snap_fix(s);
        for (size_t i = 0; i < s->n && !r; i++)
            r = fn(&s->e[i], arg);
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    snap_free(s);
    return r;
}

/* Outside the lock: owned copies of s's entries appended to *out. */
static int read_out(dw__journal_snapshot *s, dw_sim_journal_entry **out, size_t *n)
{
    dw__journal_snap_fix(s);
    if (!s->n)
        return DW_OK;
    dw_sim_journal_entry *e = realloc(*out, (*n + s->n) * sizeof *e);
    if (!e)
        return DW_ENOMEM;
    *out = e;
    for (size_t i = 0; i < s->n; i++, ++*n)
        if (dw__journal_entry_copy(&s->e[i], &e[*n]) != DW_OK)
            return DW_ENOMEM;
    return DW_OK;
}

int dw_sim_journal_read(dw_sim_journal *j, uint64_t since, size_t max, dw_sim_journal_entry **out,
                        size_t *n, uint64_t *first)
{
    *out = NULL;
    *n = 0;
    dw__journal_snapshot *s = snap_new();
    if (!s)
        return DW_ENOMEM;
    int rc = DW_OK, more = 1;
    pthread_mutex_lock(&j->lock);
    *first = j->count ? j->ring[j->head].seq : 0;
    uint64_t end = j->next_seq; /* a page is what was there when asked */
    while (more > 0 && rc == DW_OK && *n < max) {
        /* Plain copies under the lock; the allocations after it. */
        more = dw__journal_snap_chunk(j, &since, end, max - *n, s);
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
