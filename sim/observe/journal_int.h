/* devwire-sim's journal, inside: its life and waits (journal.c) and the
 * ring (journal_ring.c). Only those two files include this. */
#ifndef DW_SIM_OBSERVE_JOURNAL_INT_H
#define DW_SIM_OBSERVE_JOURNAL_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/journal.h"

/* Entries, and bytes, copied per hold of the lock: a scan of a long
 * journal lets the device append between chunks. */
#define DW__JOURNAL_CHUNK       1024
#define DW__JOURNAL_CHUNK_BYTES (256 * 1024)

struct dw__journal_group;

struct dw_sim_journal {
    pthread_mutex_t lock;
    pthread_cond_t grew;     /* an entry was added, a wait came, or the journal closed */
    pthread_cond_t answered; /* a wait was answered, or the watcher let go of a pattern */
    dw_sim_journal_entry *ring;
    size_t cap, head, count; /* the oldest entry is ring[head] */
    size_t size;             /* entries allocated: grows to cap as they come */
    uint64_t next_seq, dropped;
    int sleepers; /* the watcher sleeps on `grew` until an entry comes */
    int closed;
    /* The waits (journal.c): their groups, the watcher thread that
     * tests new entries for them, and its newest copy of entries. */
    struct dw__journal_group *groups;
    pthread_t watcher;
    int watching;  /* the watcher was started (and must be joined) */
    int urgent;    /* a wait came: look now, not at the next period */
    int lingering; /* waits past their deadline, waiting for the watcher */
    struct dw__journal_shared *cache;
};

/* Entries copied out of the ring, their bytes in one buffer, looked at
 * (matched, counted) outside the lock. */
typedef struct dw__journal_snapshot {
    dw_sim_journal_entry e[DW__JOURNAL_CHUNK];
    size_t n;
    dw_buf bytes;
} dw__journal_snapshot;

/* Under the lock: copy entries with seq >= *since and below `end` into s
 * (at most `max` and DW__JOURNAL_CHUNK of them, about
 * DW__JOURNAL_CHUNK_BYTES of bytes) and move *since past the last. 1 when
 * it stopped at a bound, 0 when it saw everything, -1 when out of memory. */
int dw__journal_snap_chunk(dw_sim_journal *j, uint64_t *since, uint64_t end, size_t max,
                           dw__journal_snapshot *s);
/* Outside the lock: point the copied entries at their bytes. */
void dw__journal_snap_fix(dw__journal_snapshot *s);
/* An owned copy of an entry: DW_OK, or DW_ENOMEM (then *to is zeroed). */
int dw__journal_entry_copy(const dw_sim_journal_entry *from, dw_sim_journal_entry *to);

/* Under the lock: forget every entry (sequence numbers go on). */
void dw__journal_ring_drop_all(dw_sim_journal *j);

#endif
