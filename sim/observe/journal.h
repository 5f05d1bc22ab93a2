/* devwire-sim's journal: what each request of a device was and what
 * answered it, in a bounded ring that the control API reads (control.h).
 *
 * The device's loop thread appends; HTTP threads read and wait. A mutex
 * guards the ring, and everyone holds it only for O(1) work per entry: the
 * loop builds an entry before it takes the lock and only links it in;
 * readers copy what they need out and look at it (match patterns, count)
 * on their own thread after letting go. One watcher thread per journal
 * tests new entries for every wait (journal.c): the loop wakes it at
 * most once per few milliseconds and never while it is awake, waits with
 * the same pattern test each entry once between them, and a slow pattern
 * delays only its own waits, so neither many waiters nor slow patterns
 * hold up the device. Sequence numbers start at 1
 * and never go back, not even when the journal is cleared: a reader that
 * remembers the last number it saw can ask for what came after. When the
 * ring is full the oldest entry makes room and is counted as dropped. */
#ifndef DW_SIM_JOURNAL_H
#define DW_SIM_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include <devwire/devwire.h>

/* Bytes kept of each request and reply (the lengths are kept whole). */
#define DW_SIM_JOURNAL_KEEP 4096
/* --journal: the ring's default size and bounds. */
#define DW_SIM_JOURNAL_DEFAULT 10000
#define DW_SIM_JOURNAL_MAX     10000000

typedef struct dw_sim_journal dw_sim_journal;

/* One request and its answer. In an entry handed out, the pointers belong
 * to the entry (dw_sim_journal_entry_free). */
typedef struct dw_sim_journal_entry {
    uint64_t seq;
    int64_t time_us; /* wall clock, microseconds since the epoch */
    uint64_t conn;   /* the connection (or datagram peer) */
    uint8_t *req;    /* the request's first bytes (at most DW_SIM_JOURNAL_KEEP) */
    size_t req_len, req_total;
    char *match;    /* what answered: "rules[2]" (or its name), "steps[0]", "unmatched", "hung" */
    uint8_t *reply; /* the bytes written in answer (first DW_SIM_JOURNAL_KEEP) */
    size_t reply_len, reply_total;
    const char *fault; /* "close", "garbage", ... or NULL (a static string) */
} dw_sim_journal_entry;

void dw_sim_journal_entry_free(dw_sim_journal_entry *e);

/* A ring of `capacity` entries (at least 1), allocated as it fills (16
 * entries, then twice as many each time it is full). NULL when out of memory. */
dw_sim_journal *dw_sim_journal_new(size_t capacity);
/* Wakes every waiter first. Accepts NULL. */
void dw_sim_journal_free(dw_sim_journal *j);

/* Append an entry (its seq and time are set here; the bytes and the name
 * are copied). Returns its sequence number, or 0 when out of memory (then
 * counted as dropped). Thread-safe. */
uint64_t dw_sim_journal_add(dw_sim_journal *j, uint64_t conn, const uint8_t *req, size_t n,
                            const char *match, const uint8_t *reply, size_t reply_n,
                            const char *fault);
/* Forget every entry, and the count of dropped ones (sequence numbers go
 * on). Thread-safe. */
void dw_sim_journal_clear(dw_sim_journal *j);
/* Stop every wait now (they return DW_ECANCELED) and any later one. */
void dw_sim_journal_close(dw_sim_journal *j);

/* The next sequence number to be given; entries dropped since the journal
 * was made or last cleared. */
uint64_t dw_sim_journal_next_seq(dw_sim_journal *j);
uint64_t dw_sim_journal_dropped(dw_sim_journal *j);

/* Call fn on each entry with seq >= since that was there when the call
 * began, oldest first, until fn returns non-zero (the entry is a copy,
 * borrowed for the call). Entries are copied out 1024 at a time under the
 * lock and fn runs on the copies without it, so a long scan or a slow fn
 * never holds up the device; entries dropped between two chunks are not
 * seen. Returns fn's last result (0 when it never returned non-zero, or
 * when out of memory). */
int dw_sim_journal_each(dw_sim_journal *j, uint64_t since,
                        int (*fn)(const dw_sim_journal_entry *e, void *arg), void *arg);

/* Copies of up to `max` entries with seq >= since, oldest first, in *out
 * (caller frees each with dw_sim_journal_entry_free, then the array); *n
 * of them, and *first the oldest seq held (0: none). The lock is held only
 * to copy. DW_OK or DW_ENOMEM. */
int dw_sim_journal_read(dw_sim_journal *j, uint64_t since, size_t max, dw_sim_journal_entry **out,
                        size_t *n, uint64_t *first);

/* The entry as JSON: {"seq", "time", "conn", "request" ("text" when
 * printable, else "hex"), "request_bytes", "match", "reply", "reply_bytes",
 * "fault"}. NULL when out of memory. */
cJSON *dw_sim_journal_entry_json(const dw_sim_journal_entry *e);

/* Wait up to timeout_ms for an entry with seq >= since that `pred`
 * accepts, past ones included: DW_OK and *out (a copy, caller frees),
 * DW_ETIMEDOUT, DW_ECANCELED (the journal closed) or DW_ENOMEM. Waits with
 * the same `key` (their patterns' text: equal keys must mean equal preds)
 * share one test of each entry, run with one of their preds; NULL: this
 * wait's pred alone (one that keeps state). Each entry is tested once per
 * key, on a copy, on the journal's watcher thread, never under the lock the
 * device appends with; a new entry is tested at most about 5 ms after it
 * came, and the wait ends within a few ms of its deadline provided each
 * pred call is bounded (see pattern.h). Thread-safe; blocks only the
 * caller; pred and arg must live until it returns. */
int dw_sim_journal_wait(dw_sim_journal *j, uint64_t since, const char *key,
                        int (*pred)(const dw_sim_journal_entry *e, void *arg), void *arg,
                        int timeout_ms, dw_sim_journal_entry *out);

/* What a wait looks for: its key and pred as above and, when pred can
 * accept only an entry whose request is exactly `request` (when not NULL)
 * or whose match is `name` (when not NULL), those: then the entries are
 * found through an index of the new ones and pred runs only on candidates,
 * so many waits for different requests cost about what one does. */
typedef struct dw_sim_journal_want {
    const char *key;
    int (*pred)(const dw_sim_journal_entry *e, void *arg);
    void *arg;
    const uint8_t *request;
    size_t request_len;
    const char *name;
} dw_sim_journal_want;

/* dw_sim_journal_wait with a want (which must live until it returns). */
int dw_sim_journal_wait_for(dw_sim_journal *j, uint64_t since, const dw_sim_journal_want *want,
                            int timeout_ms, dw_sim_journal_entry *out);

#endif
