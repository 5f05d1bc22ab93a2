/* devwire-sim's control API, the device's side: what the control API keeps
 * for each device (its journal, the faults injected at run time, figures
 * for /metrics) and the hooks the server calls with each request.
 *
 * A device served with --control has a dw_sim_devctl (server->ctl); the
 * server and its transports call the dw__sim_ctl_* hooks on its loop thread, and the control
 * API reaches everything here but the journal through dw_sim_loop_call, so
 * nothing needs a lock but the journal (journal.h). */
#ifndef DW_SIM_DEVICE_DEVCTL_H
#define DW_SIM_DEVICE_DEVCTL_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include <devwire/devwire.h>

#include "observe/pattern.h"
#include "engine/engine.h"
#include "observe/journal.h"
#include "device/server.h"

typedef struct dw_sim_devctl dw_sim_devctl;

/* The faults the control API injects. */
typedef enum dw_sim_ctl_fault {
    DW_SIM_CTL_CLOSE,          /* close the connection instead of answering */
    DW_SIM_CTL_RESET,          /* reset it (RST) */
    DW_SIM_CTL_HANG,           /* never answer this connection again */
    DW_SIM_CTL_GARBAGE,        /* these bytes instead of the reply */
    DW_SIM_CTL_DELAY,          /* the reply delay_ms later */
    DW_SIM_CTL_DROP,           /* no reply to this request */
    DW_SIM_CTL_REFUSE,         /* refuse_connections: stop listening for duration_ms */
    DW_SIM_CTL_DISCONNECT_ALL, /* close every connection now */
    DW_SIM_CTL_NKINDS
} dw_sim_ctl_fault;

/* "close", ... "refuse_connections", "disconnect_all"; the kind by name
 * (-1: none). */
const char *dw_sim_ctl_fault_name(dw_sim_ctl_fault k);
int dw_sim_ctl_fault_parse(const char *name);

/* A fault to inject. Without count, duration_ms or probability it fires
 * once; with count it fires on the next `count` matching requests; with
 * duration_ms on every matching request for that long; with probability p
 * on each matching request with that chance (within the count or duration,
 * if given, else for ever). */
typedef struct dw_sim_fault_spec {
    dw_sim_ctl_fault kind;
    dw_sim_pattern match; /* DW_SIM_PATTERN_ANY: every request */
    uint64_t count;       /* 0: no bound */
    uint64_t duration_ms; /* 0: no bound */
    double probability;   /* 0 < p <= 1 */
    unsigned delay_ms;    /* delay */
    dw_buf garbage;       /* garbage (empty: eight pseudo-random bytes) */
} dw_sim_fault_spec;

void dw_sim_fault_spec_init(dw_sim_fault_spec *f);
void dw_sim_fault_spec_free(dw_sim_fault_spec *f);

/* A device's control side with a journal of `journal_size` entries; NULL
 * when out of memory. Free after the loop stopped (dw_sim_devctl_close ran
 * on it). Accepts NULL. */
dw_sim_devctl *dw_sim_devctl_new(size_t journal_size);
void dw_sim_devctl_free(dw_sim_devctl *d);
/* Give device s its control side (s->ctl; before the loop starts, or on
 * the loop thread). s does not own it. */
void dw_sim_devctl_attach(dw_sim_server *s, dw_sim_devctl *d);
/* The journal (thread-safe, see journal.h). */
dw_sim_journal *dw_sim_devctl_journal(dw_sim_devctl *d);

/* ---- on the loop thread ---------------------------------------------- */

/* Inject a fault into s (whose ctl is set): *spec is taken (reset), *id is
 * its number. DW_OK, or DW_EINVAL with `err` (refuse_connections on a
 * device without connections, or without duration_ms). */
int dw_sim_devctl_fault_add(dw_sim_server *s, dw_sim_fault_spec *spec, uint64_t *id, dw_error *err);
/* The faults still active, as a JSON list; NULL when out of memory. */
cJSON *dw_sim_devctl_faults_json(dw_sim_server *s);
/* Remove fault `id` (DW_OK, or DW_ENOENT), or all of them. */
int dw_sim_devctl_fault_remove(dw_sim_server *s, uint64_t id);
void dw_sim_devctl_faults_clear(dw_sim_server *s);
/* Back to the start: faults and, unless keep_counters, the figures and the
 * journal. */
void dw_sim_devctl_reset(dw_sim_server *s, int keep_counters);
/* Append the device's samples in Prometheus' text format, every one
 * labelled device="NAME", to fam[i] for metric family i (so that each
 * family's samples of every device can be printed together under its
 * HELP and TYPE lines). DW_OK or DW_ENOMEM. */
#define DW_SIM_METRIC_FAMILIES 14
int dw_sim_devctl_metrics(dw_sim_server *s, const char *name, dw_buf fam[DW_SIM_METRIC_FAMILIES]);
/* Family i's name, type and help text: DW_OK, or DW_ENOENT past the last. */
int dw_sim_metric_family(size_t i, const char **name, const char **type, const char **help);
/* Figures for the devices list and the status page. */
typedef struct dw_sim_devctl_counts {
    uint64_t requests, replies, unmatched, faults;
    uint64_t connections_open, connections_total, bytes_in, bytes_out;
} dw_sim_devctl_counts;
void dw_sim_devctl_counts_get(dw_sim_server *s, dw_sim_devctl_counts *c);
/* Close the loop handles (before the loop stops). */
void dw_sim_devctl_close(dw_sim_server *s);

/* fn on the session of every open connection on the script serving now
 * (none for a transport without connections). */
void dw__sim_each_session(dw_sim_server *s, void (*fn)(dw_sim_session *ss, void *arg), void *arg);

/* Hooks: a request was decided (apply the injected faults to `o`, count it,
 * journal it); its reply went out (asked_ns: when it was read, uv_hrtime);
 * the summary's lines. */
void dw__sim_ctl_request(dw_sim_server *s, dw_sim_session *sess, uint64_t conn, const uint8_t *req,
                         size_t n, dw_sim_outcome *o);
void dw__sim_ctl_replied(dw_sim_server *s, const dw_sim_outcome *o, uint64_t asked_ns);
void dw__sim_ctl_summary(dw_sim_server *s, FILE *f);

#endif
