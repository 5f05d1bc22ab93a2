/* devwire-sim's control API, the device's side: see devctl.h.
 *
 * Below the server and its transports: it reaches "disconnect all", "stop
 * listening" and "listen again" through the transport table the server set
 * (server_int.h), never by name, and the server and the transports call
 * its hooks. */
#include "device/devctl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "device/server_int.h"

/* Reply latency buckets, seconds (Prometheus' "le"). */
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

/* An injected fault, on the device's list until it is spent. */
typedef struct ctl_fault {
    struct ctl_fault *next;
    uint64_t id;
    dw_sim_fault_spec spec;
    uint64_t fired;
    uint64_t due; /* loop time it ends (duration_ms), 0: none */
} ctl_fault;

/* Figures for one rule, step, "unmatched" or "hung", by name. */
typedef struct ctl_stat {
    char *name;
    uint64_t requests, replies, faults;
} ctl_stat;

struct dw_sim_devctl {
    dw_sim_journal *journal;
    ctl_fault *faults;
    uint64_t next_id;
    uint64_t rng;
    uint64_t injected[DW_SIM_CTL_NKINDS];
    ctl_stat *stats; /* open addressing by name, power-of-two size */
    size_t nstats, stats_cap;
    uint64_t requests, replies, unmatched, faulted;
    uint64_t latency[NBUCKETS + 1]; /* per bucket (not cumulative); the last is +Inf */
    double latency_sum;
    uint64_t latency_count;
    uv_timer_t relisten; /* refuse_connections: when to listen again */
    int timer_open;
    uint64_t refuse_until; /* loop time; 0: not refusing */
};

static const char *const fault_names[DW_SIM_CTL_NKINDS] = {
    "close", "reset", "hang", "garbage", "delay", "drop", "refuse_connections", "disconnect_all"};

const char *dw_sim_ctl_fault_name(dw_sim_ctl_fault k)
{
    return k < DW_SIM_CTL_NKINDS ? fault_names[k] : "?";
}

int dw_sim_ctl_fault_parse(const char *name)
{
    for (int k = 0; k < DW_SIM_CTL_NKINDS; k++)
        if (strcmp(fault_names[k], name) == 0)
            return k;
    return -1;
}

void dw_sim_fault_spec_init(dw_sim_fault_spec *f)
{
    memset(f, 0, sizeof *f);
    f->probability = 1;
    dw_buf_init(&f->garbage);
}

void dw_sim_fault_spec_free(dw_sim_fault_spec *f)
{
    dw_sim_pattern_free(&f->match);
    dw_buf_free(&f->garbage);
    dw_sim_fault_spec_init(f);
}

dw_sim_devctl *dw_sim_devctl_new(size_t journal_size)
{
    dw_sim_devctl *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    if (!(d->journal = dw_sim_journal_new(journal_size))) {
        free(d);
        return NULL;
    }
    d->rng = 0x9e3779b97f4a7c15ULL;
    d->next_id = 1;
    return d;
}

static void stats_clear(dw_sim_devctl *d)
{
    for (size_t i = 0; i < d->stats_cap; i++)
        free(d->stats[i].name);
    free(d->stats);
    d->stats = NULL;
    d->nstats = d->stats_cap = 0;
}

void dw_sim_devctl_free(dw_sim_devctl *d)
{
    if (!d)
        return;
    while (d->faults) {
        ctl_fault *f = d->faults;
        d->faults = f->next;
        dw_sim_fault_spec_free(&f->spec);
        free(f);
    }
    stats_clear(d);
    dw_sim_journal_free(d->journal);
    free(d);
}

void dw_sim_devctl_attach(dw_sim_server *s, dw_sim_devctl *d)
{
    s->ctl = d;
}

dw_sim_journal *dw_sim_devctl_journal(dw_sim_devctl *d)
{
    return d->journal;
}

/* ---- figures by name ------------------------------------------------------ */

static size_t name_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static int stats_grow(dw_sim_devctl *d)
{
    size_t cap = d->stats_cap ? d->stats_cap * 2 : 64;
    ctl_stat *fresh = calloc(cap, sizeof *fresh);
    if (!fresh)
        return DW_ENOMEM;
    for (size_t i = 0; i < d->stats_cap; i++) {
        if (!d->stats[i].name)
            continue;
        size_t k = name_hash(d->stats[i].name) & (cap - 1);
        while (fresh[k].name)
            k = (k + 1) & (cap - 1);
        fresh[k] = d->stats[i];
    }
    free(d->stats);
    d->stats = fresh;
    d->stats_cap = cap;
    return DW_OK;
}

/* The figures for `name`, made on first use; NULL when out of memory. */
static ctl_stat *stat_for(dw_sim_devctl *d, const char *name)
{
    if ((d->nstats + 1) * 2 > d->stats_cap && stats_grow(d) != DW_OK)
        return NULL;
    size_t k = name_hash(name) & (d->stats_cap - 1);
    while (d->stats[k].name && strcmp(d->stats[k].name, name) != 0)
        k = (k + 1) & (d->stats_cap - 1);
    if (!d->stats[k].name) {
        if (!(d->stats[k].name = strdup(name)))
            return NULL;
        d->nstats++;
    }
    return &d->stats[k];
}

/* ---- faults ------------------------------------------------------------------ */

static uint64_t next_random(dw_sim_devctl *d)
{
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return d->rng;
}

static void fault_unlink(dw_sim_devctl *d, ctl_fault *f)
{
    for (ctl_fault **p = &d->faults; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    dw_sim_fault_spec_free(&f->spec);
    free(f);
}

static void on_relisten(uv_timer_t *t)
{
    dw_sim_server *s = t->data;
    dw_error err;
    dw_error_clear(&err);
    s->ctl->refuse_until = 0;
    if (s->transport->listen_resume(s, &err) != DW_OK)
        dw__sim_log(s, DW_LOG_ERROR, "refuse_connections ended, but: %s", dw_error_message(&err));
    else
        dw__sim_log(s, DW_LOG_INFO, "refuse_connections ended: listening on %s", s->addr);
}

static void refuse(dw_sim_server *s, uint64_t ms)
{
    dw_sim_devctl *d = s->ctl;
    uv_loop_t *uv = dw_sim_loop_uv(s->loop);
    if (!d->timer_open) {
        uv_timer_init(uv, &d->relisten);
        d->relisten.data = s;
        d->timer_open = 1;
    }
    s->transport->listen_pause(s);
    d->refuse_until = uv_now(uv) + ms;
    uv_timer_start(&d->relisten, on_relisten, ms, 0);
    dw_sim_transcript_event(s->transcript, s->name, 0, "fault", NULL, 0, "refuse_connections",
                            NULL);
}

int dw_sim_devctl_fault_add(dw_sim_server *s, dw_sim_fault_spec *spec, uint64_t *id, dw_error *err)
{
    dw_sim_devctl *d = s->ctl;
    int connected = !s->udp && !s->serial;
    if ((spec->kind == DW_SIM_CTL_REFUSE || spec->kind == DW_SIM_CTL_DISCONNECT_ALL) && !connected)
        return dw_error_set(err, DW_EINVAL, "%s: the device's transport has no connections",
                            dw_sim_ctl_fault_name(spec->kind));
    if (spec->kind == DW_SIM_CTL_REFUSE && !spec->duration_ms)
        return dw_error_set(err, DW_EINVAL, "refuse_connections needs duration_ms");
    *id = d->next_id++;
    d->injected[spec->kind]++;
    if (spec->kind == DW_SIM_CTL_REFUSE || spec->kind == DW_SIM_CTL_DISCONNECT_ALL) {
        if (spec->kind == DW_SIM_CTL_REFUSE)
            refuse(s, spec->duration_ms);
        else
            s->transport->disconnect_all(s);
        dw_sim_fault_spec_free(spec);
        return DW_OK;
    }
    ctl_fault *f = calloc(1, sizeof *f);
    if (!f)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    f->id = *id;
    f->spec = *spec;
    dw_sim_fault_spec_init(spec);
    if (f->spec.duration_ms)
        f->due = uv_now(dw_sim_loop_uv(s->loop)) + f->spec.duration_ms;
    if (!f->spec.count && !f->spec.duration_ms && f->spec.probability >= 1)
        f->spec.count = 1;
    ctl_fault **tail = &d->faults;
    while (*tail)
        tail = &(*tail)->next;
    *tail = f;
    return DW_OK;
}

/* Drop the faults whose time is up. */
static void faults_expire(dw_sim_server *s)
{
    dw_sim_devctl *d = s->ctl;
    uint64_t now = uv_now(dw_sim_loop_uv(s->loop));
    for (ctl_fault *f = d->faults, *next; f; f = next) {
        next = f->next;
        if (f->due && now >= f->due)
            fault_unlink(d, f);
    }
}

static int add_number(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

static cJSON *fault_json(const dw_sim_server *s, const ctl_fault *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *m = dw_sim_pattern_json(&f->spec.match);
    uint64_t now = uv_now(dw_sim_loop_uv(s->loop));
    int ok = o && m && add_number(o, "id", (double)f->id) &&
             cJSON_AddStringToObject(o, "kind", dw_sim_ctl_fault_name(f->spec.kind)) &&
             cJSON_AddItemToObject(o, "match", m) && add_number(o, "fired", (double)f->fired);
    if (!o || !ok) {
        if (!cJSON_IsNull(m) && (!o || !cJSON_GetObjectItem(o, "match")))
            cJSON_Delete(m);
        cJSON_Delete(o);
        return NULL;
    }
    if (f->spec.count)
        add_number(o, "remaining", (double)(f->spec.count - f->fired));
    if (f->due)
        add_number(o, "remaining_ms", (double)(f->due > now ? f->due - now : 0));
    if (f->spec.probability < 1)
        add_number(o, "probability", f->spec.probability);
    if (f->spec.kind == DW_SIM_CTL_DELAY)
        add_number(o, "delay_ms", f->spec.delay_ms);
    if (f->spec.match.limited) /* requests its regex could not decide on */
        add_number(o, "limited", (double)f->spec.match.limited);
    return o;
}

cJSON *dw_sim_devctl_faults_json(dw_sim_server *s)
{
    faults_expire(s);
    cJSON *list = cJSON_CreateArray();
    for (ctl_fault *f = s->ctl->faults; list && f; f = f->next) {
        cJSON *o = fault_json(s, f);
        if (!o) {
            cJSON_Delete(list);
            return NULL;
        }
        cJSON_AddItemToArray(list, o);
    }
    if (list && s->ctl->refuse_until) {
        cJSON *o = cJSON_CreateObject();
        uint64_t now = uv_now(dw_sim_loop_uv(s->loop));
        if (o) {
            cJSON_AddStringToObject(o, "kind", "refuse_connections");
            add_number(o, "remaining_ms",
                       (double)(s->ctl->refuse_until > now ? s->ctl->refuse_until - now : 0));
            cJSON_AddItemToArray(list, o);
        }
    }
    return list;
}

int dw_sim_devctl_fault_remove(dw_sim_server *s, uint64_t id)
{
    for (ctl_fault *f = s->ctl->faults; f; f = f->next)
        if (f->id == id) {
            fault_unlink(s->ctl, f);
            return DW_OK;
        }
    return DW_ENOENT;
}

void dw_sim_devctl_faults_clear(dw_sim_server *s)
{
    while (s->ctl->faults)
        fault_unlink(s->ctl, s->ctl->faults);
    if (s->ctl->refuse_until) { /* listen again now */
        uv_timer_stop(&s->ctl->relisten);
        on_relisten(&s->ctl->relisten);
    }
}

/* The first active fault that takes this request, counted; NULL: none. */
static ctl_fault *fault_for(dw_sim_server *s, const uint8_t *req, size_t n, const char *name)
{
    dw_sim_devctl *d = s->ctl;
    uint64_t now = uv_now(dw_sim_loop_uv(s->loop));
    for (ctl_fault *f = d->faults, *next; f; f = next) {
        next = f->next;
        if (f->due && now >= f->due) {
            fault_unlink(d, f);
            continue;
        }
        if (!dw_sim_pattern_match(&f->spec.match, req, n, name))
            continue;
        if (f->spec.probability < 1 &&
            (double)(next_random(d) >> 11) * 0x1.0p-53 >= f->spec.probability)
            continue;
        f->fired++;
        return f;
    }
    return NULL;
}

static int apply(dw_sim_devctl *d, const ctl_fault *f, dw_sim_session *sess, dw_sim_outcome *o)
{
    static const dw_sim_fault as_engine[] = {DW_SIM_FAULT_CLOSE, DW_SIM_FAULT_RESET,
                                             DW_SIM_FAULT_HANG,  DW_SIM_FAULT_GARBAGE,
                                             DW_SIM_FAULT_NONE,  DW_SIM_FAULT_DROP};
    if (f->spec.kind == DW_SIM_CTL_DELAY) {
        o->delay_ms += f->spec.delay_ms;
        return DW_OK;
    }
    o->fault = as_engine[f->spec.kind];
    o->close = 0;
    o->nframes = 0;
    o->nsplit = 0;
    dw_buf_clear(&o->bytes);
    if (f->spec.kind == DW_SIM_CTL_HANG)
        dw_sim_session_hang(sess);
    if (f->spec.kind != DW_SIM_CTL_GARBAGE)
        return DW_OK;
    if (f->spec.garbage.len)
        return dw_buf_append(&o->bytes, f->spec.garbage.data, f->spec.garbage.len);
    uint64_t r = next_random(d);
    return dw_buf_append(&o->bytes, &r, sizeof r);
}

void dw__sim_each_session(dw_sim_server *s, void (*fn)(dw_sim_session *ss, void *arg), void *arg)
{
    if (s->transport && s->transport->each_session)
        s->transport->each_session(s, fn, arg);
}

void dw__sim_ctl_request(dw_sim_server *s, dw_sim_session *sess, uint64_t conn, const uint8_t *req,
                         size_t n, dw_sim_outcome *o)
{
    dw_sim_devctl *d = s->ctl;
    const char *injected = NULL;
    ctl_fault *f = o->source == DW_SIM_BY_HUNG ? NULL : fault_for(s, req, n, o->name);
    if (f) {
        injected = dw_sim_ctl_fault_name(f->spec.kind);
        if (apply(d, f, sess, o) != DW_OK)
            dw__sim_log(s, DW_LOG_ERROR, "%s fault: out of memory", injected);
        if (f->spec.kind == DW_SIM_CTL_DELAY)
            dw_sim_transcript_event(s->transcript, s->name, conn, "fault", NULL, 0, "delay", NULL);
        if (f->spec.count && f->fired >= f->spec.count)
            fault_unlink(d, f);
    }
    int faulted = o->fault != DW_SIM_FAULT_NONE || injected;
    int replied =
        o->bytes.len && (o->fault == DW_SIM_FAULT_NONE || o->fault == DW_SIM_FAULT_DUPLICATE);
    d->requests++;
    d->unmatched += o->source == DW_SIM_BY_UNMATCHED;
    d->faulted += (uint64_t)faulted;
    d->replies += (uint64_t)replied;
    ctl_stat *st = stat_for(d, o->name ? o->name : "?");
    if (st) {
        st->requests++;
        st->faults += (uint64_t)faulted;
        st->replies += (uint64_t)replied;
    }
    const char *fault = injected                        ? injected
                        : o->fault != DW_SIM_FAULT_NONE ? dw__sim_fault_name(o->fault)
                                                        : NULL;
    dw_sim_journal_add(d->journal, conn, req, n, o->name, o->bytes.data, o->bytes.len, fault);
}

void dw__sim_ctl_replied(dw_sim_server *s, const dw_sim_outcome *o, uint64_t asked_ns)
{
    dw_sim_devctl *d = s->ctl;
    (void)o;
    double sec = (double)(uv_hrtime() - asked_ns) / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && sec > buckets[b])
        b++;
    d->latency[b]++;
    d->latency_sum += sec;
    d->latency_count++;
}

void dw__sim_ctl_summary(dw_sim_server *s, FILE *f)
{
    dw_sim_devctl *d = s->ctl;
    uint64_t total = 0;
    for (int k = 0; k < DW_SIM_CTL_NKINDS; k++)
        total += d->injected[k];
    if (!total)
        return;
    fprintf(f, "  faults injected by the control API: %llu (", (unsigned long long)total);
    const char *sep = "";
    for (int k = 0; k < DW_SIM_CTL_NKINDS; k++)
        if (d->injected[k]) {
            fprintf(f, "%s%s: %llu", sep, fault_names[k], (unsigned long long)d->injected[k]);
            sep = ", ";
        }
    fputs(")\n", f);
}

/* ---- reset, figures ------------------------------------------------------------ */

void dw_sim_devctl_reset(dw_sim_server *s, int keep_counters)
{
    dw_sim_devctl *d = s->ctl;
    dw_sim_devctl_faults_clear(s);
    if (keep_counters)
        return;
    stats_clear(d);
    d->requests = d->replies = d->unmatched = d->faulted = 0;
    memset(d->latency, 0, sizeof d->latency);
    d->latency_sum = 0;
    d->latency_count = 0;
    memset(d->injected, 0, sizeof d->injected);
    dw_sim_journal_clear(d->journal);
}

void dw_sim_devctl_counts_get(dw_sim_server *s, dw_sim_devctl_counts *c)
{
    dw_sim_devctl *d = s->ctl;
    c->requests = d->requests;
    c->replies = d->replies;
    c->unmatched = d->unmatched;
    c->faults = d->faulted;
    c->connections_open = s->nconns;
    c->connections_total = s->accepted;
    c->bytes_in = s->bytes_in;
    c->bytes_out = s->bytes_out;
}

/* A label value with \, " and newline escaped. */
static int label(dw_buf *out, const char *v)
{
    int rc = DW_OK;
    for (; *v && rc == DW_OK; v++) {
        if (*v == '\\' || *v == '"')
            rc = dw_buf_append(out, "\\", 1);
        if (rc == DW_OK)
            rc = *v == '\n' ? dw_buf_append(out, "\\n", 2) : dw_buf_append(out, v, 1);
    }
    return rc;
}

/* One sample: NAME{device="D"[,KEY="V"]} VALUE */
static int sample(dw_buf *out, const char *metric, const char *dev, const char *key,
                  const char *val, double v)
{
    int rc = dw_buf_printf(out, "%s{device=\"", metric);
    if (rc == DW_OK)
        rc = label(out, dev);
    if (rc == DW_OK && key) {
        rc = dw_buf_printf(out, "\",%s=\"", key);
        if (rc == DW_OK)
            rc = label(out, val);
    }
    if (rc == DW_OK)
        rc = dw_buf_printf(out, "\"} %.17g\n", v);
    return rc;
}

/* The metric families, in the order /metrics prints them. */
static const struct family {
    const char *name, *type, *help;
} families[DW_SIM_METRIC_FAMILIES] = {
    {"devwire_sim_requests_total", "counter", "Requests read."},
    {"devwire_sim_replies_total", "counter", "Requests answered with bytes."},
    {"devwire_sim_unmatched_total", "counter", "Requests nothing in the script expected."},
    {"devwire_sim_faults_total", "counter",
     "Requests answered with a fault (scripted or injected)."},
    {"devwire_sim_connections_open", "gauge", "Connections open now."},
    {"devwire_sim_connections_total", "counter", "Connections accepted."},
    {"devwire_sim_received_bytes_total", "counter", "Bytes read from clients."},
    {"devwire_sim_sent_bytes_total", "counter", "Bytes written to clients."},
    {"devwire_sim_journal_dropped_total", "counter",
     "Journal entries dropped (the ring was full)."},
    {"devwire_sim_injected_faults_total", "counter", "Faults injected through the control API."},
    {"devwire_sim_rule_requests_total", "counter", "Requests answered by each rule or step."},
    {"devwire_sim_rule_replies_total", "counter", "Replies given by each rule or step."},
    {"devwire_sim_rule_faults_total", "counter", "Faults on requests of each rule or step."},
    {"devwire_sim_reply_latency_seconds", "histogram",
     "From reading a request to writing the last byte of its reply."},
};

int dw_sim_metric_family(size_t i, const char **name, const char **type, const char **help)
{
    if (i >= DW_SIM_METRIC_FAMILIES)
        return DW_ENOENT;
    *name = families[i].name;
    *type = families[i].type;
    *help = families[i].help;
    return DW_OK;
}

static int per_rule(dw_sim_devctl *d, const char *dev, dw_buf *fam)
{
    int rc = DW_OK;
    for (size_t m = 0; m < 3 && rc == DW_OK; m++)
        for (size_t i = 0; i < d->stats_cap && rc == DW_OK; i++) {
            const ctl_stat *st = &d->stats[i];
            if (st->name)
                rc = sample(&fam[10 + m], families[10 + m].name, dev, "rule", st->name,
                            (double)(m == 0   ? st->requests
                                     : m == 1 ? st->replies
                                              : st->faults));
        }
    return rc;
}

static int histogram(dw_sim_devctl *d, const char *dev, dw_buf *out)
{
    uint64_t cum = 0;
    int rc = DW_OK;
    char le[32];
    for (size_t b = 0; b <= NBUCKETS && rc == DW_OK; b++) {
        cum += d->latency[b];
        if (b < NBUCKETS)
            snprintf(le, sizeof le, "%g", buckets[b]);
        else
            strcpy(le, "+Inf");
        rc = sample(out, "devwire_sim_reply_latency_seconds_bucket", dev, "le", le, (double)cum);
    }
    if (rc == DW_OK)
        rc = sample(out, "devwire_sim_reply_latency_seconds_sum", dev, NULL, NULL, d->latency_sum);
    if (rc == DW_OK)
        rc = sample(out, "devwire_sim_reply_latency_seconds_count", dev, NULL, NULL,
                    (double)d->latency_count);
    return rc;
}

int dw_sim_devctl_metrics(dw_sim_server *s, const char *name, dw_buf fam[DW_SIM_METRIC_FAMILIES])
{
    dw_sim_devctl *d = s->ctl;
    dw_sim_devctl_counts c;
    dw_sim_devctl_counts_get(s, &c);
    const uint64_t plain[] = {c.requests, c.replies,          c.unmatched,
                              c.faults,   c.connections_open, c.connections_total,
                              c.bytes_in, c.bytes_out,        dw_sim_journal_dropped(d->journal)};
    int rc = DW_OK;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0] && rc == DW_OK; i++)
        rc = sample(&fam[i], families[i].name, name, NULL, NULL, (double)plain[i]);
    for (int k = 0; k < DW_SIM_CTL_NKINDS && rc == DW_OK; k++)
        rc =
            sample(&fam[9], families[9].name, name, "kind", fault_names[k], (double)d->injected[k]);
    if (rc == DW_OK)
        rc = per_rule(d, name, fam);
    if (rc == DW_OK)
        rc = histogram(d, name, &fam[13]);
    return rc;
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h; /* embedded in the devctl */
}

void dw_sim_devctl_close(dw_sim_server *s)
{
    dw_sim_devctl *d = s->ctl;
    if (d && d->timer_open) {
        uv_close((uv_handle_t *)&d->relisten, on_timer_closed);
        d->timer_open = 0;
    }
}
