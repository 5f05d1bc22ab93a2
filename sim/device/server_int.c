/* devwire-sim's device, the helpers every file of device/ shares: the
 * device's log lines, its script generations, the --max-buffered budget,
 * the report of a request's limits, and the names and piece sizes of an
 * outcome. The lowest file of device/: it calls nothing above it, so the
 * transports and the control side can all use it. */
#include "device/server_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void dw__sim_log(const dw_sim_server *s, dw_log_level level, const char *fmt, ...)
{
    if (!dw_log_enabled(s->logger, level))
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    dw_log(s->logger, level, "%s%s%s", s->name ? s->name : "", s->name ? ": " : "", line);
}

void dw__sim_gen_release(dw_sim_server *s, sim_gen *g)
{
    if (!g || --g->refs)
        return;
    s->retired_requests += dw_sim_engine_requests(g->engine);
    s->retired_unmatched += dw_sim_engine_unmatched(g->engine);
    s->retired_limit_hits += dw_sim_engine_regex_limit_hits(g->engine);
    s->retired_lua_errors += dw_sim_engine_lua_errors(g->engine);
    dw_sim_engine_free(g->engine);
    dw_sim_script_free(g->script);
    free(g);
}

int dw__sim_budget_take(dw_sim_server *s, size_t *charged, size_t n, size_t *refusal)
{
    if (!s->max_buffered)
        return DW_OK;
    if (n > s->max_buffered || s->buffered > s->max_buffered - n) {
        *refusal = s->buffered + n;
        return DW_ELIMIT;
    }
    s->buffered += n;
    *charged += n;
    return DW_OK;
}

void dw__sim_budget_give_back(dw_sim_server *s, size_t *charged)
{
    s->buffered -= *charged;
    *charged = 0;
}

void dw__sim_report_limits(dw_sim_server *s, uint64_t id, const char *peer, const dw_sim_outcome *o,
                           size_t request_len)
{
    for (size_t i = 0; i < o->nlimits; i++) {
        const dw_sim_limit_hit *h = &o->limits[i];
        static const char what[] = "regex match limit";
        dw_sim_transcript_event(s->transcript, s->name, id, "note", (const uint8_t *)what,
                                sizeof what - 1, h->name, NULL);
        if (h->first)
            dw__sim_log(s, DW_LOG_WARN,
                        "%s: connection %llu: %s: regex match limit reached on a %zu-byte "
                        "request; counted as no match (logged once for this rule, counted in the "
                        "summary)",
                        peer, (unsigned long long)id, h->name, request_len);
    }
    if (o->lua.name) {
        static const char what[] = "lua error: ";
        dw_buf text = DW_BUF_INIT;
        if (dw_buf_append_str(&text, what) == DW_OK &&
            dw_buf_append_str(&text, o->lua.message) == DW_OK)
            dw_sim_transcript_event(s->transcript, s->name, id, "note", text.data, text.len,
                                    o->lua.name, NULL);
        dw_buf_free(&text);
        if (o->lua.first)
            dw__sim_log(s, DW_LOG_WARN,
                        "%s: connection %llu: %s: lua error: %s; handled as unmatched (logged "
                        "once for this rule, counted in the summary)",
                        peer, (unsigned long long)id, o->lua.name, o->lua.message);
    }
}

int dw__sim_bind(dw_sim_server *s, sim_gen **gen, dw_sim_session **sess)
{
    sim_gen *g = s->gen;
    dw_sim_session *fresh = dw_sim_session_new(g->engine);
    if (!fresh)
        return DW_ENOMEM;
    g->refs++;
    dw_sim_session_free(*sess);
    dw__sim_gen_release(s, *gen);
    *gen = g;
    *sess = fresh;
    return DW_OK;
}

size_t dw__sim_piece(const dw_sim_outcome *o, size_t left, size_t k)
{
    size_t piece = o->split[k < o->nsplit ? k : o->nsplit - 1];
    return piece == 0 || piece > left ? left : piece;
}

const char *dw__sim_fault_name(dw_sim_fault f)
{
    switch (f) {
    case DW_SIM_FAULT_CLOSE:
        return "close";
    case DW_SIM_FAULT_RESET:
        return "reset";
    case DW_SIM_FAULT_HANG:
        return "hang";
    case DW_SIM_FAULT_GARBAGE:
        return "garbage";
    case DW_SIM_FAULT_DROP:
        return "drop";
    case DW_SIM_FAULT_DUPLICATE:
        return "duplicate";
    default:
        return "none";
    }
}
