/* devwire-sim: "channels" at load (load_int.h), for properties and for the
 * SCPI headers of rules and steps alike: the list of channel numbers, a
 * header whose '#' marks the channel's suffix compiled once a channel, and
 * the names that follow the channel of the match ("${freq[channel]}",
 * "set": {"freq[channel]": ...}). */
#include "script/load_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHANNEL_NO 999

int dw__load_channels(dw__load *c, const cJSON *v, unsigned *chans, size_t *n)
{
    size_t old = dw__load_push(c, "channels");
    int rc = DW_OK;
    *n = 0;
    if (!cJSON_IsArray(v) || !v->child || cJSON_GetArraySize(v) > DW__LOAD_MAX_CHANNELS)
        rc = dw__load_fail(c, v, 0, "expected a list of 1 to %d channel numbers, such as [1, 2]",
                           DW__LOAD_MAX_CHANNELS);
    for (const cJSON *e = rc == DW_OK ? v->child : NULL; e && rc == DW_OK; e = e->next) {
        uint64_t u = 0;
        size_t o2 = dw__load_push_index(c, *n);
        rc = dw__load_uint(c, e, 1, MAX_CHANNEL_NO, &u);
        for (size_t k = 0; k < *n && rc == DW_OK; k++)
            if (chans[k] == u)
                rc = dw__load_fail(c, e, 0, "channel %u is listed twice", (unsigned)u);
        chans[(*n)++] = (unsigned)u;
        dw__load_pop(c, o2);
    }
    dw__load_pop(c, old);
    return rc;
}

/* The header text with its '#' replaced by the channel's suffix: "[1]"
 * for channel 1 (no suffix also means it), the number otherwise. *off is
 * where the '#' was, *grew how much longer the text became. */
static int channel_text(dw__load *c, const cJSON *v, unsigned channel, const char *who, char *buf,
                        size_t cap, size_t *off, size_t *grew)
{
    const char *t = v->valuestring, *hash = strchr(t, '#');
    if (!hash && channel)
        return dw__load_fail(c, v, 0,
                             "a %s with \"channels\" marks its channel's suffix with '#' "
                             "(\"SOURce#:FREQuency\")",
                             who);
    if (hash && !channel)
        return dw__load_fail_in(c, v, (size_t)(hash - t),
                                "'#' marks a channel's suffix: only with \"channels\"");
    if (hash && strchr(hash + 1, '#'))
        return dw__load_fail_in(c, v, (size_t)(strchr(hash + 1, '#') - t),
                                "one '#' only: a %s has one channel suffix", who);
    *off = hash ? (size_t)(hash - t) : 0;
    int n = hash ? snprintf(buf, cap, "%.*s%s%u%s%s", (int)*off, t, channel == 1 ? "[" : "",
                            channel, channel == 1 ? "]" : "", hash + 1)
                 : snprintf(buf, cap, "%s", t);
    if (n < 0 || (size_t)n >= cap)
        return dw__load_fail(c, v, 0, "header too long");
    *grew = (size_t)n - strlen(t);
    return DW_OK;
}

int dw__load_channel_header(dw__load *c, const cJSON *v, unsigned channel, const char *who,
                            dw_scpi_pattern **out)
{
    char text[512];
    size_t where = 0, off = 0, grew = 0;
    const char *why = NULL;
    int rc = channel_text(c, v, channel, who, text, sizeof text, &off, &grew);
    if (rc != DW_OK)
        return rc;
    rc = dw_scpi_pattern_compile(text, out, &where, &why);
    if (rc == DW_ENOMEM)
        return dw__load_oom(c);
    if (where > off) /* back to the text as written */
        where = where > off + grew ? where - grew : off;
    return rc == DW_OK ? DW_OK : dw__load_fail_in(c, v, where, "bad SCPI header: %s", why);
}

int dw__load_channel_ref(const char *name, size_t len)
{
    static const char tail[] = "[channel]";
    size_t n = sizeof tail - 1;
    return len > n && memcmp(name + len - n, tail, n) == 0;
}

int dw__load_channel_props(dw__load *c, size_t off, const char *name, size_t len,
                           size_t **by_channel)
{
    size_t base = len - strlen("[channel]");
    if (!c->nchans)
        return dw__load_fail_at(c, off, "\"%.*s\": only in a rule or step with \"channels\"",
                                (int)len, name);
    size_t *t = calloc(c->nchans, sizeof *t);
    if (!t)
        return dw__load_oom(c);
    for (size_t k = 0; k < c->nchans; k++) {
        char full[320];
        int n = snprintf(full, sizeof full, "%.*s[%u]", (int)base, name, c->chans[k]);
        t[k] = n > 0 && (size_t)n < sizeof full ? dw_sim_prop_find(c->s->props, full, (size_t)n)
                                                : SIZE_MAX;
        if (t[k] == SIZE_MAX) {
            free(t);
            return dw__load_fail_at(c, off,
                                    "\"%.*s\": no property \"%.*s\" with channel %u (a property "
                                    "declared with \"channels\" that has every channel of the "
                                    "match)",
                                    (int)len, name, (int)base, name, c->chans[k]);
        }
    }
    *by_channel = t;
    return DW_OK;
}

/* Is "channel" (or "channel[N]") the name of a variable or property? */
static int channel_is_taken(const dw__load *c)
{
    if (dw__load_find_var(c, "channel", 7) != SIZE_MAX)
        return 1;
    size_t n = c->s->props ? dw_sim_props_count(c->s->props) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = dw_sim_props_def(c->s->props, i)->name;
        if (strcspn(p, "[") == 7 && strncmp(p, "channel", 7) == 0)
            return 1;
    }
    return 0;
}

int dw__load_match_channels(dw__load *c, const cJSON *pattern, const cJSON *v, dw_sim_match *m)
{
    unsigned chans[DW__LOAD_MAX_CHANNELS];
    size_t n = 0;
    int rc = v ? dw__load_channels(c, v, chans, &n) : DW_OK;
    size_t old = dw__load_push(c, "channels");
    if (rc == DW_OK && n && channel_is_taken(c))
        rc = dw__load_fail(c, v, 1,
                           "\"channel\" is a variable or property here: a match with "
                           "\"channels\" reads its channel as \"${channel}\" and Lua's "
                           "channel (rename it)");
    dw__load_pop(c, old);
    if (rc == DW_OK && n) {
        m->channels = malloc(n * sizeof *m->channels);
        m->chan_scpi = calloc(n, sizeof *m->chan_scpi);
        if (!m->channels || !m->chan_scpi)
            return dw__load_oom(c);
        memcpy(m->channels, chans, n * sizeof *chans);
        m->nchannels = n;
    }
    old = dw__load_push(c, "scpi");
    for (size_t k = 0; k < (n ? n : 1) && rc == DW_OK; k++)
        rc = dw__load_channel_header(c, pattern, n ? chans[k] : 0, "rule or step",
                                     n ? &m->chan_scpi[k] : &m->scpi);
    dw__load_pop(c, old);
    return rc;
}
