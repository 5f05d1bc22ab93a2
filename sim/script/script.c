/* devwire-sim: what the runtime needs of a loaded script (script.h): freeing
 * it and its parts, a marshaller for its framing, and --max-frame's cap.
 * Nothing here parses; the loader (load*.c) sits above this file. */
#include "script/script.h"

#include <stdlib.h>
#include <string.h>

void dw__sim_template_free(dw_sim_template *t)
{
    for (size_t i = 0; i < t->nsegs; i++) {
        free(t->segs[i].literal.data);
        free(t->segs[i].by_channel);
    }
    free(t->segs);
    t->segs = NULL;
    t->nsegs = 0;
}

void dw__sim_lua_chunk_free(dw_sim_lua_chunk *ch)
{
    if (!ch)
        return;
    free(ch->source);
    free(ch->where);
    free(ch);
}

static void match_free(dw_sim_match *m)
{
    pcre2_code_free(m->re);
    m->re = NULL;
    dw_scpi_pattern_free(m->scpi);
    m->scpi = NULL;
    for (size_t i = 0; i < m->nchannels; i++)
        dw_scpi_pattern_free(m->chan_scpi[i]);
    free(m->chan_scpi);
    free(m->channels);
    m->chan_scpi = NULL;
    m->channels = NULL;
    m->nchannels = 0;
    for (size_t i = 0; i < m->nparams; i++)
        free(m->params[i].choices);
    free(m->params);
    m->params = NULL;
    m->nparams = 0;
    m->kind = DW_SIM_MATCH_EXACT;
    free(m->bytes.data);
    m->bytes.data = NULL;
    free(m->source);
    m->source = NULL;
}

static void action_free(dw_sim_action *a)
{
    for (size_t i = 0; i < a->nreplies; i++) {
        if (a->replies[i])
            for (size_t f = 0; f < a->nframes[i]; f++)
                dw__sim_template_free(&a->replies[i][f]);
        free(a->replies[i]);
    }
    free(a->replies);
    free(a->nframes);
    for (size_t i = 0; i < a->nsets; i++) {
        dw__sim_template_free(&a->sets[i].value);
        free(a->sets[i].by_channel);
    }
    free(a->sets);
    free(a->split);
    free(a->garbage.data);
    free(a->scpi_error_text);
    memset(a, 0, sizeof *a);
}

static void framing_free(dw_sim_framing *f)
{
    free(f->sentinel.data);
}

void dw_sim_script_free(dw_sim_script *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->name);
    free(s->idn);
    free(s->scpi_version);
    for (size_t i = 0; i < s->nstatus; i++) {
        free(s->status[i].name);
        free(s->status[i].text);
    }
    free(s->status);
    framing_free(&s->request_framing);
    framing_free(&s->response_framing);
    dw__sim_template_free(&s->banner);
    free(s->prompt.data);
    for (size_t i = 0; i < s->nvars; i++) {
        free(s->vars[i].name);
        free(s->vars[i].initial.data);
    }
    free(s->vars);
    for (size_t i = 0; i < s->nsteps; i++) {
        free(s->steps[i].name);
        match_free(&s->steps[i].expect);
        action_free(&s->steps[i].action);
    }
    free(s->steps);
    for (size_t i = 0; i < s->nrules; i++) {
        free(s->rules[i].name);
        match_free(&s->rules[i].when);
        action_free(&s->rules[i].action);
        free(s->rules[i].net);
    }
    free(s->rules);
    dw_sim_netfaults_free(s->network);
    for (size_t i = 0; i < s->nvxi11_devices; i++)
        free(s->vxi11_devices[i]);
    free(s->vxi11_devices);
    action_free(&s->unmatched);
    action_free(&s->on_error);
    dw_sim_props_free(s->props);
    for (size_t i = 0; i < s->nperiodic; i++)
        dw__sim_template_free(&s->periodic[i].send);
    free(s->periodic);
    for (size_t i = 0; i < s->nlua; i++)
        dw__sim_lua_chunk_free(s->lua[i]);
    free(s->lua);
    free(s);
}

dw_marshaller *dw_sim_framing_marshaller(const dw_sim_framing *f)
{
    dw_marshaller *m = NULL;
    switch (f->type) {
    case DW_SIM_FRAMING_SENTINEL:
        m = dw_sentinel_marshaller_new(f->sentinel.data, f->sentinel.len);
        break;
    case DW_SIM_FRAMING_FIXED:
        m = dw_fixed_marshaller_new(f->length);
        break;
    case DW_SIM_FRAMING_LENGTH_PREFIXED:
        m = dw_length_prefixed_marshaller_new(f->header_size, f->endian);
        break;
    case DW_SIM_FRAMING_SCPI:
        m = dw_scpi_marshaller_new(f->sentinel.data, f->sentinel.len);
        break;
    case DW_SIM_FRAMING_JSON_LINES:
        m = dw_json_marshaller_new();
        break;
    }
    if (m)
        dw_marshaller_set_max_frame(m, f->max_frame ? f->max_frame : DW_DEFAULT_MAX_FRAME);
    return m;
}

int dw_sim_script_cap_frames(dw_sim_script *s, size_t max, dw_error *err)
{
    dw_sim_framing *f[2] = {&s->request_framing, &s->response_framing};
    static const char *const which[2] = {"request", "response"};
    for (int i = 0; max && i < 2; i++)
        if (f[i]->type == DW_SIM_FRAMING_FIXED && f[i]->length > max)
            return dw_error_set(err, DW_ESCRIPT,
                                "%s: the %s framing's fixed length %zu is larger than "
                                "--max-frame %zu",
                                s->path ? s->path : "script", which[i], f[i]->length, max);
    for (int i = 0; max && i < 2; i++)
        if (f[i]->max_frame > max)
            f[i]->max_frame = max;
    return DW_OK;
}
