/* devwire-sim's journal: see journal.h. */
#include "observe/journal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_bytes.h"

/* Entries looked at per hold of the lock: a scan of a long journal lets the
 * device append between chunks. */
#define CHUNK 1024

struct dw_sim_journal {
    pthread_mutex_t lock;
    pthread_cond_t grew; /* an entry was added, or the journal closed */
    dw_sim_journal_entry *ring;
    size_t cap, head, count; /* the oldest entry is ring[head] */
    uint64_t next_seq, dropped;
    int closed;
};

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
    if (!(j->ring = calloc(j->cap, sizeof *j->ring))) {
        free(j);
        return NULL;
    }
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
    for (size_t k = 0; k < j->count; k++)
        dw_sim_journal_entry_free(&j->ring[(j->head + k) % j->cap]);
    j->head = j->count = 0;
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
    if (j->count == j->cap) { /* the oldest makes room */
        dw_sim_journal_entry_free(&j->ring[j->head]);
        j->head = (j->head + 1) % j->cap;
        j->count--;
        j->dropped++;
    }
    j->ring[(j->head + j->count) % j->cap] = e;
    j->count++;
    pthread_cond_broadcast(&j->grew);
    pthread_mutex_unlock(&j->lock);
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
    while (k > 0 && j->ring[(j->head + k - 1) % j->cap].seq >= since)
        k--;
    while (k < j->count && j->ring[(j->head + k) % j->cap].seq < since)
        k++;
    return k;
}

/* Under the lock: fn on at most CHUNK entries from seq `*since` on, and
 * below `end`; *since moves past the last one seen. Returns fn's result, or
 * -1 when there is nothing more (below `end`) to see. */
static int each_chunk(dw_sim_journal *j, uint64_t *since, uint64_t end,
                      int (*fn)(const dw_sim_journal_entry *e, void *arg), void *arg)
{
    size_t k = first_since(j, *since), n = 0;
    int r = 0;
    for (; k < j->count && n < CHUNK && !r; k++, n++) {
        const dw_sim_journal_entry *e = &j->ring[(j->head + k) % j->cap];
        if (e->seq >= end)
            break;
        r = fn(e, arg);
        *since = e->seq + 1;
    }
    return r ? r : n == CHUNK ? 0 : -1;
}

int dw_sim_journal_each(dw_sim_journal *j, uint64_t since,
                        int (*fn)(const dw_sim_journal_entry *e, void *arg), void *arg)
{
    int r = 0;
    pthread_mutex_lock(&j->lock);
    uint64_t end = j->next_seq; /* what is added meanwhile is not visited */
    while ((r = each_chunk(j, &since, end, fn, arg)) == 0) {
        pthread_mutex_unlock(&j->lock); /* let the device append */
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    return r < 0 ? 0 : r;
}

int dw_sim_journal_read(dw_sim_journal *j, uint64_t since, size_t max, dw_sim_journal_entry **out,
                        size_t *n, uint64_t *first)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&j->lock);
    *first = j->count ? j->ring[j->head].seq : 0;
    size_t k = first_since(j, since), count = j->count - k < max ? j->count - k : max;
    dw_sim_journal_entry *e = count ? calloc(count, sizeof *e) : NULL;
    int rc = count && !e ? DW_ENOMEM : DW_OK;
    for (size_t i = 0; i < count && rc == DW_OK; i++, *n = i)
        rc = entry_copy(&j->ring[(j->head + k + i) % j->cap], &e[i]);
    pthread_mutex_unlock(&j->lock);
    *out = e;
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

typedef struct find_args {
    int (*pred)(const dw_sim_journal_entry *e, void *arg);
    void *arg;
    dw_sim_journal_entry *out;
    int rc;
    uint64_t last; /* the last seq looked at */
} find_args;

static int find_one(const dw_sim_journal_entry *e, void *arg)
{
    find_args *f = arg;
    f->last = e->seq;
    if (!f->pred(e, f->arg))
        return 0;
    f->rc = entry_copy(e, f->out);
    return 1;
}

int dw_sim_journal_wait(dw_sim_journal *j, uint64_t since,
                        int (*pred)(const dw_sim_journal_entry *e, void *arg), void *arg,
                        int timeout_ms, dw_sim_journal_entry *out)
{
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    due.tv_sec += timeout_ms / 1000;
    due.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (due.tv_nsec >= 1000000000L) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000L;
    }
    find_args f = {pred, arg, out, DW_ETIMEDOUT, 0};
    pthread_mutex_lock(&j->lock);
    for (;;) {
        int r = each_chunk(j, &since, UINT64_MAX, find_one, &f);
        if (r > 0)
            break;    /* found (or out of memory copying it) */
        if (r == 0) { /* more to look at: let the device append first */
            pthread_mutex_unlock(&j->lock);
            pthread_mutex_lock(&j->lock);
            continue;
        }
        if (since < j->next_seq)
            since = j->next_seq; /* only newer entries from now on */
        if (j->closed) {
            f.rc = DW_ECANCELED;
            break;
        }
        if (pthread_cond_timedwait(&j->grew, &j->lock, &due) == ETIMEDOUT) {
            each_chunk(j, &since, UINT64_MAX, find_one, &f); /* what came with the timeout */
            break;
        }
    }
    pthread_mutex_unlock(&j->lock);
    return f.rc;
}
