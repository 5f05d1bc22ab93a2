/* devwire-sim: the loader of "properties" (model/props.h): every key is
 * checked, errors name the place ("sg.json:14:9: properties.freq.min:
 * expected a number"). */
#include "script/load_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHOICES 64
#define INT_LIMIT   9007199254740992.0 /* 2^53 */

enum {
    P_TYPE,
    P_DEFAULT,
    P_MIN,
    P_MAX,
    P_VALUES,
    P_UNIT,
    P_FORMAT,
    P_ACCESS,
    P_SCPI,
    P_COMMAND,
    P_ACK,
    P_RAMP,
    P_NOISE,
    P_DESCRIPTION,
    P_CHOICES,
    P_ALIASES,
    P_BUSY,
    P_CHANNELS,
    P_N
};
static const char *const prop_keys[] = {"type",    "default", "min",     "max",         "values",
                                        "unit",    "format",  "access",  "scpi",        "command",
                                        "ack",     "ramp",    "noise",   "description", "choices",
                                        "aliases", "busy_ms", "channels"};
static const char *const type_names[] = {"float", "int", "bool", "enum", "string"};
static const char *const access_names[] = {"rw", "ro", "wo"};
static const char *const noise_names[] = {"none", "uniform", "normal"};

/* Run check(c, v, d) with the path at key `key` of the property. */
typedef int (*prop_check)(dw__load *c, const cJSON *v, dw_sim_prop_def *d);

static int at_key(dw__load *c, const cJSON *v, dw_sim_prop_def *d, prop_check check)
{
    if (!v)
        return DW_OK;
    size_t old = dw__load_push(c, v->string);
    int rc = check(c, v, d);
    dw__load_pop(c, old);
    return rc;
}

static int numeric(const dw_sim_prop_def *d)
{
    return d->type == DW_SIM_PROP_FLOAT || d->type == DW_SIM_PROP_INT;
}

static int only_numeric(dw__load *c, const cJSON *v, const dw_sim_prop_def *d)
{
    return numeric(d) ? DW_OK : dw__load_fail(c, v, 1, "only for a \"float\" or \"int\" property");
}

/* A number for property d: whole for an int. */
static int get_number(dw__load *c, const cJSON *v, const dw_sim_prop_def *d, double *out)
{
    if (!cJSON_IsNumber(v))
        return dw__load_fail(c, v, 0, "expected a number");
    double x = v->valuedouble;
    if (d->type == DW_SIM_PROP_INT && (x != floor(x) || fabs(x) > INT_LIMIT))
        return dw__load_fail(c, v, 0, "expected a whole number (the property is an \"int\")");
    *out = x;
    return DW_OK;
}

static int check_min(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    int rc = only_numeric(c, v, d);
    return rc == DW_OK ? get_number(c, v, d, &d->min) : rc;
}

static int check_max(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    int rc = only_numeric(c, v, d);
    if (rc == DW_OK)
        rc = get_number(c, v, d, &d->max);
    if (rc == DW_OK && d->min > d->max)
        rc = dw__load_fail(c, v, 0, "max (%.15g) is less than min (%.15g)", d->max, d->min);
    return rc;
}

int dw__load_busy(dw__load *c, const cJSON *v, unsigned *out)
{
    uint64_t u = 0;
    if (c->s->profile != DW_SIM_PROFILE_SCPI)
        return dw__load_fail(c, v, 1, "only with \"profile\": \"scpi\" (*OPC, *OPC?, *WAI)");
    int rc = dw__load_uint(c, v, 0, DW__LOAD_MAX_DELAY_MS, &u);
    *out = (unsigned)u;
    c->s->has_busy |= u > 0;
    return rc;
}

static int check_busy(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    if (d->access == DW_SIM_PROP_RO)
        return dw__load_fail(c, v, 1, "a read-only property is never set");
    return dw__load_busy(c, v, &d->busy_ms);
}

/* One choice: a mnemonic, its short form in upper case first. */
static int check_choice(dw__load *c, const cJSON *e)
{
    if (!cJSON_IsString(e))
        return dw__load_fail(c, e, 0, "expected a string");
    const char *t = e->valuestring;
    size_t i = 0;
    int lower = 0;
    if (!((t[0] >= 'A' && t[0] <= 'Z')))
        return dw__load_fail_in(c, e, 0, "a choice starts with its short form in upper case");
    for (; t[i]; i++) {
        int up = t[i] >= 'A' && t[i] <= 'Z', low = t[i] >= 'a' && t[i] <= 'z';
        if (!up && !low && !(t[i] >= '0' && t[i] <= '9') && t[i] != '_')
            return dw__load_fail_in(c, e, i, "a choice is letters, digits and '_'");
        if (up && lower)
            return dw__load_fail_in(c, e, i, "upper case marks the short form: it must come first");
        lower |= low;
    }
    return i > DW_SCPI_MAX_MNEMONIC ? dw__load_fail(c, e, 0, "choice too long") : DW_OK;
}

static int check_values(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    if (d->type != DW_SIM_PROP_ENUM)
        return dw__load_fail(c, v, 1, "only for an \"enum\" property");
    if (!cJSON_IsArray(v) || !v->child)
        return dw__load_fail(c, v, 0,
                             "expected a list of choices such as [\"IMMediate\", \"BUS\"]");
    dw_buf joined = DW_BUF_INIT;
    int rc = DW_OK;
    size_t i = 0;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t old = dw__load_push_index(c, i);
        if (i == MAX_CHOICES)
            rc = dw__load_fail(c, e, 0, "at most %d choices", MAX_CHOICES);
        else if ((rc = check_choice(c, e)) == DW_OK &&
                 ((i && dw_buf_append_byte(&joined, '|') != DW_OK) ||
                  dw_buf_append(&joined, e->valuestring, strlen(e->valuestring)) != DW_OK ||
                  dw_buf_append_byte(&joined, 0) != DW_OK))
            rc = dw__load_oom(c);
        joined.len -= rc == DW_OK; /* the NUL stays past the end */
        d->nchoices = i + 1;
        dw__load_pop(c, old);
    }
    d->choices = (char *)joined.data;
    return rc;
}

static int check_unit(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    int rc = only_numeric(c, v, d);
    if (rc != DW_OK)
        return rc;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= sizeof d->unit)
        return dw__load_fail(c, v, 0, "expected a SCPI unit such as \"Hz\", \"V\" or \"CEL\"");
    for (size_t i = 0; v->valuestring[i]; i++) {
        char ch = v->valuestring[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')))
            return dw__load_fail_in(c, v, i, "a unit is letters only (\"Hz\", \"V\", \"DBM\")");
        d->unit[i] = ch >= 'a' ? (char)(ch - 'a' + 'A') : ch;
    }
    return DW_OK;
}

/* One printf conversion that fits the type: %[flags][width][.prec]conv;
 * an int's conversion gets "ll" (the value is printed as a long long). */
static int check_format(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    int rc = only_numeric(c, v, d);
    if (rc != DW_OK)
        return rc;
    if (!cJSON_IsString(v) || strlen(v->valuestring) > 60)
        return dw__load_fail(c, v, 0, "expected a printf format such as \"%%.6e\"");
    const char *f = v->valuestring, *convs = d->type == DW_SIM_PROP_INT ? "diouxX" : "eEfFgGaA";
    size_t conv = SIZE_MAX;
    for (size_t i = 0; f[i]; i++) {
        if (f[i] != '%')
            continue;
        if (f[i + 1] == '%') {
            i++;
            continue;
        }
        size_t start = i++;
        while (f[i] && strchr("-+ #0", f[i]))
            i++;
        while (f[i] >= '0' && f[i] <= '9')
            i++;
        if (f[i] == '.')
            for (i++; f[i] >= '0' && f[i] <= '9';)
                i++;
        if (!f[i] || !strchr(convs, f[i]))
            return dw__load_fail_in(c, v, start, "expected one conversion of %s for a%s",
                                    d->type == DW_SIM_PROP_INT ? "d, i, o, u, x or X"
                                                               : "e, f, g or a",
                                    d->type == DW_SIM_PROP_INT ? "n \"int\"" : " \"float\"");
        if (conv != SIZE_MAX)
            return dw__load_fail_in(c, v, start, "only one conversion (write %%%% for a '%%')");
        conv = i;
    }
    if (conv == SIZE_MAX)
        return dw__load_fail(c, v, 0, "no conversion (such as %s)",
                             d->type == DW_SIM_PROP_INT ? "%d" : "%.6e");
    size_t n = strlen(f), extra = d->type == DW_SIM_PROP_INT ? 2 : 0;
    if (!(d->format = malloc(n + extra + 1)))
        return dw__load_oom(c);
    memcpy(d->format, f, conv);
    memcpy(d->format + conv, "ll", extra);
    memcpy(d->format + conv + extra, f + conv, n - conv + 1);
    return DW_OK;
}

static int check_access(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    int e = 0;
    int rc = dw__load_enum(c, v, access_names, 3, &e);
    d->access = (dw_sim_prop_access)e;
    return rc;
}

/* A property's header (or an alias) at v into *out. */
static int compile_header(dw__load *c, const cJSON *v, dw_scpi_pattern **out)
{
    if (!cJSON_IsString(v))
        return dw__load_fail(c, v, 0, "expected a string");
    size_t n = strlen(v->valuestring);
    if (v->valuestring[0] == '*')
        return dw__load_fail_in(c, v, 0, "a property's header is not a common command");
    if (n && v->valuestring[n - 1] == '?')
        return dw__load_fail_in(c, v, n - 1,
                                "write the header without '?': it gives both the set and "
                                "the query form");
    return dw__load_channel_header(c, v, c->channel, "property", out);
}

static int check_scpi(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    if (c->s->profile != DW_SIM_PROFILE_SCPI)
        return dw__load_fail(c, v, 1, "a SCPI header needs \"profile\": \"scpi\"");
    return compile_header(c, v, &d->scpi);
}

/* A list of 1..MAX_CHOICES items at v, each checked by item(c, e, d, i)
 * with the path at its index. */
typedef int (*list_item)(dw__load *c, const cJSON *e, dw_sim_prop_def *d, size_t i);

static int check_list(dw__load *c, const cJSON *v, dw_sim_prop_def *d, const char *example,
                      list_item item)
{
    if (!cJSON_IsArray(v) || !v->child)
        return dw__load_fail(c, v, 0, "expected a list such as %s", example);
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t old = dw__load_push_index(c, i);
        rc =
            i == MAX_CHOICES ? dw__load_fail(c, e, 0, "at most %d", MAX_CHOICES) : item(c, e, d, i);
        dw__load_pop(c, old);
    }
    return rc;
}

static int alias_item(dw__load *c, const cJSON *e, dw_sim_prop_def *d, size_t i)
{
    int rc = compile_header(c, e, &d->aliases[i]);
    d->naliases += d->aliases[i] != NULL;
    return rc;
}

static int check_aliases(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    if (!d->scpi)
        return dw__load_fail(c, v, 1, "only with \"scpi\"");
    if (!(d->aliases = calloc(MAX_CHOICES, sizeof *d->aliases)))
        return dw__load_oom(c);
    return check_list(c, v, d, "[\"SOURce:VOLTage[:LEVel]\"]", alias_item);
}

static int string_item(dw__load *c, const cJSON *e, dw_sim_prop_def *d, size_t i)
{
    if (!cJSON_IsString(e))
        return dw__load_fail(c, e, 0, "expected a string");
    if (dw_sim_prop_string_choice(d, e->valuestring, strlen(e->valuestring)))
        return dw__load_fail(c, e, 0, "a choice twice (choices are matched ignoring case)");
    if (!(d->strs[i] = strdup(e->valuestring)))
        return dw__load_oom(c);
    d->nstrs++;
    return DW_OK;
}

static int check_choices(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    if (d->type != DW_SIM_PROP_STRING)
        return dw__load_fail(c, v, 1,
                             "only for a \"string\" property (an \"enum\" has \"values\")");
    if (!(d->strs = calloc(MAX_CHOICES, sizeof *d->strs)))
        return dw__load_oom(c);
    return check_list(c, v, d, "[\"CH1\", \"CH2\"]", string_item);
}

static int check_command(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    if (c->s->profile == DW_SIM_PROFILE_SCPI)
        return dw__load_fail(c, v, 1, "not with the SCPI profile (give \"scpi\": a header)");
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return dw__load_fail(c, v, 0, "expected a non-empty string");
    size_t bad = strcspn(v->valuestring, " ?\t\r\n");
    if (v->valuestring[bad])
        return dw__load_fail_in(c, v, bad,
                                "a command has no space or '?' (\"SP\" takes \"SP 25\" and "
                                "\"SP?\")");
    return (d->command = strdup(v->valuestring)) ? DW_OK : dw__load_oom(c);
}

static int check_ack(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    if (!d->command)
        return dw__load_fail(c, v, 1, "only with \"command\"");
    if (!cJSON_IsString(v))
        return dw__load_fail(c, v, 0, "expected a string");
    return (d->ack = strdup(v->valuestring)) ? DW_OK : dw__load_oom(c);
}

/* {"to": "volt", "rate": 2.0}: the target is resolved once every property
 * is known (ramp_targets). */
static int check_ramp(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    static const char *const keys[] = {"to", "rate"};
    const cJSON *vals[2];
    int rc = only_numeric(c, v, d);
    if (rc == DW_OK && !cJSON_IsObject(v))
        rc = dw__load_fail(c, v, 0, "expected an object such as {\"to\": \"volt\", \"rate\": 2}");
    if (rc == DW_OK)
        rc = dw__load_members(c, v, keys, 2, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[0] || !vals[1])
        return dw__load_fail(c, v, 0, "missing \"%s\"", vals[0] ? "rate" : "to");
    size_t old = dw__load_push(c, "rate");
    if (!cJSON_IsNumber(vals[1]) || !(vals[1]->valuedouble > 0) || !isfinite(vals[1]->valuedouble))
        rc = dw__load_fail(c, vals[1], 0, "expected a positive number (units per second)");
    d->rate = vals[1]->valuedouble;
    dw__load_pop(c, old);
    if (rc == DW_OK && !cJSON_IsString(vals[0])) {
        old = dw__load_push(c, "to");
        rc = dw__load_fail(c, vals[0], 0, "expected the name of a property");
        dw__load_pop(c, old);
    }
    d->ramp_to = SIZE_MAX - 1; /* resolved later */
    return rc;
}

static int check_noise(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    static const char *const keys[] = {"amplitude", "distribution"};
    const cJSON *vals[2];
    int rc = only_numeric(c, v, d);
    if (rc == DW_OK && !cJSON_IsObject(v))
        rc = dw__load_fail(c, v, 0,
                           "expected an object such as {\"amplitude\": 0.01, "
                           "\"distribution\": \"normal\"}");
    if (rc == DW_OK)
        rc = dw__load_members(c, v, keys, 2, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[0])
        return dw__load_fail(c, v, 0, "missing \"amplitude\"");
    size_t old = dw__load_push(c, "amplitude");
    if (!cJSON_IsNumber(vals[0]) || !(vals[0]->valuedouble >= 0) || !isfinite(vals[0]->valuedouble))
        rc = dw__load_fail(c, vals[0], 0, "expected a number >= 0");
    d->amplitude = vals[0]->valuedouble;
    dw__load_pop(c, old);
    int e = 1;
    if (rc == DW_OK && vals[1]) {
        old = dw__load_push(c, "distribution");
        rc = dw__load_enum(c, vals[1], noise_names, 3, &e);
        dw__load_pop(c, old);
    }
    d->noise = (dw_sim_prop_noise)e;
    return rc;
}

/* An enum's choice named by text (long or short form, any case), or -1. */
static int choice_of(const char *choices, const char *text)
{
    size_t n = strlen(text);
    for (int i = 0; *choices; i++) {
        size_t len = strcspn(choices, "|"), s = 0;
        while (s < len && !(choices[s] >= 'a' && choices[s] <= 'z'))
            s++;
        if ((n == s || n == len) && strncasecmp(choices, text, n) == 0)
            return i;
        choices += len + (choices[len] == '|');
    }
    return -1;
}

static int check_default(dw__load *c, const cJSON *v, dw_sim_prop_def *d)
{
    int rc = DW_OK, k;
    switch (d->type) {
    case DW_SIM_PROP_FLOAT:
    case DW_SIM_PROP_INT:
        if ((rc = get_number(c, v, d, &d->def)) == DW_OK && (d->def < d->min || d->def > d->max))
            rc = dw__load_fail(c, v, 0, "%.15g is out of range [%.15g, %.15g]", d->def, d->min,
                               d->max);
        break;
    case DW_SIM_PROP_BOOL:
        if (!cJSON_IsBool(v))
            rc = dw__load_fail(c, v, 0, "expected true or false");
        d->def = cJSON_IsTrue(v);
        break;
    case DW_SIM_PROP_ENUM:
        if (!cJSON_IsString(v) || (k = choice_of(d->choices, v->valuestring)) < 0)
            return dw__load_fail(c, v, 0, "expected one of the choices (\"%.200s\")", d->choices);
        d->def = k;
        break;
    case DW_SIM_PROP_STRING: {
        const char *def = cJSON_IsString(v) ? v->valuestring : NULL;
        if (!def)
            return dw__load_fail(c, v, 0, "expected a string");
        if (d->strs && !(def = dw_sim_prop_string_choice(d, def, strlen(def))))
            return dw__load_fail(c, v, 0, "expected one of the choices");
        free(d->def_str);
        if (!(d->def_str = strdup(def)))
            rc = dw__load_oom(c);
        break;
    }
    }
    return rc;
}

/* Defaults when the script gives none: 0 within the range, false, the
 * first choice, "". */
static int implicit_default(dw__load *c, dw_sim_prop_def *d)
{
    d->def = 0 < d->min ? d->min : 0 > d->max ? d->max : 0;
    if (d->type == DW_SIM_PROP_STRING && !(d->def_str = strdup("")))
        return dw__load_oom(c);
    return DW_OK;
}

static int check_name(dw__load *c, const cJSON *m, const dw_sim_props *p)
{
    const char *n = m->string;
    if (!dw__load_name_ok(n))
        return dw__load_fail(c, m, 1,
                             "invalid property name (use letters, digits, '_', '-' and '.', "
                             "starting with a letter or '_')");
    if (strcmp(n, "request") == 0)
        return dw__load_fail(c, m, 1, "\"request\" is reserved: \"${request}\" is the request");
    if (dw__load_find_var(c, n, strlen(n)) != SIZE_MAX)
        return dw__load_fail(c, m, 1,
                             "\"%s\" is also a variable in \"state\" (properties and "
                             "variables share one namespace)",
                             n);
    if (dw_sim_prop_find(p, n, strlen(n)) != SIZE_MAX)
        return dw__load_fail(c, m, 1, "duplicate property");
    return DW_OK;
}

/* One property: `m` is its member of "properties". */
static int parse_prop(dw__load *c, const cJSON *m, dw_sim_props *p)
{
    int rc = check_name(c, m, p);
    const cJSON *vals[P_N];
    if (rc == DW_OK && !cJSON_IsObject(m))
        rc = dw__load_fail(c, m, 0, "expected an object such as {\"type\": \"float\"}");
    if (rc == DW_OK)
        rc = dw__load_members(c, m, prop_keys, P_N, vals);
    if (rc != DW_OK)
        return rc;
    dw_sim_prop_def *d = dw_sim_props_add(p);
    char name[320];
    snprintf(name, sizeof name, c->channel ? "%s[%u]" : "%s", m->string, c->channel);
    if (!d || !(d->name = strdup(name)))
        return dw__load_oom(c);
    d->channel = c->channel;
    if (c->channel && !vals[P_SCPI])
        return dw__load_fail(c, vals[P_CHANNELS], 1,
                             "only with a \"scpi\" header, its channel's suffix marked '#'");
    if (!vals[P_TYPE])
        return dw__load_fail(c, m, 0,
                             "missing \"type\" (\"float\", \"int\", \"bool\", "
                             "\"enum\" or \"string\")");
    size_t old = dw__load_push(c, "type");
    int e = 0;
    rc = dw__load_enum(c, vals[P_TYPE], type_names, 5, &e);
    d->type = (dw_sim_prop_type)e;
    dw__load_pop(c, old);
    if (rc == DW_OK && d->type == DW_SIM_PROP_INT)
        d->min = -INT_LIMIT, d->max = INT_LIMIT;
    if (rc == DW_OK && d->type == DW_SIM_PROP_BOOL)
        d->min = 0, d->max = 1;
    if (rc == DW_OK && d->type == DW_SIM_PROP_ENUM && !vals[P_VALUES])
        rc = dw__load_fail(c, m, 0, "an \"enum\" needs \"values\"");
    static const prop_check checks[P_N] = {
        NULL,         check_default, check_min,     check_max,     check_values, check_unit,
        check_format, check_access,  check_scpi,    check_command, check_ack,    check_ramp,
        check_noise,  NULL,          check_choices, check_aliases, check_busy,   NULL};
    /* Values before the default (it must be one), the range before it. */
    static const int order[] = {P_VALUES, P_CHOICES, P_MIN,   P_MAX,     P_UNIT,
                                P_FORMAT, P_ACCESS,  P_SCPI,  P_ALIASES, P_COMMAND,
                                P_ACK,    P_RAMP,    P_NOISE, P_BUSY,    P_DEFAULT};
    if (rc == DW_OK && !vals[P_DEFAULT])
        rc = implicit_default(c, d);
    for (size_t k = 0; k < sizeof order / sizeof order[0] && rc == DW_OK; k++)
        rc = at_key(c, vals[order[k]], d, checks[order[k]]);
    if (rc == DW_OK && d->nstrs && !vals[P_DEFAULT]) { /* the first choice */
        free(d->def_str);
        if (!(d->def_str = strdup(d->strs[0])))
            rc = dw__load_oom(c);
    }
    if (rc == DW_OK && vals[P_DESCRIPTION] && !cJSON_IsString(vals[P_DESCRIPTION])) {
        old = dw__load_push(c, "description");
        rc = dw__load_fail(c, vals[P_DESCRIPTION], 0, "expected a string");
        dw__load_pop(c, old);
    }
    return rc;
}

/* Each ramp's "to": a float or int property that does not ramp itself;
 * members[i] is property i's definition. */
static int ramp_targets(dw__load *c, const cJSON *const *members, dw_sim_props *p)
{
    for (size_t i = 0; i < dw_sim_props_count(p); i++) {
        const cJSON *m = members[i];
        dw_sim_prop_def *d = (dw_sim_prop_def *)dw_sim_props_def(p, i);
        if (d->ramp_to == SIZE_MAX)
            continue;
        const cJSON *to =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "ramp"), "to");
        size_t o1 = dw__load_push(c, m->string);
        size_t o2 = dw__load_push(c, "ramp");
        dw__load_push(c, "to");
        size_t t = SIZE_MAX;
        if (d->channel) { /* a channel ramps toward the same channel, if it has one */
            char name[320];
            snprintf(name, sizeof name, "%s[%u]", to->valuestring, d->channel);
            t = dw_sim_prop_find(p, name, strlen(name));
        }
        if (t == SIZE_MAX)
            t = dw_sim_prop_find(p, to->valuestring, strlen(to->valuestring));
        const dw_sim_prop_def *td = t != SIZE_MAX ? dw_sim_props_def(p, t) : NULL;
        int rc = DW_OK;
        if (!td) {
            const char **names = malloc(dw_sim_props_count(p) * sizeof *names);
            char buf[96];
            for (size_t k = 0; names && k < dw_sim_props_count(p); k++)
                names[k] = dw_sim_props_def(p, k)->name;
            rc = dw__load_fail(c, to, 0, "no property \"%.60s\"%s", to->valuestring,
                               names ? dw__load_near(to->valuestring, names, dw_sim_props_count(p),
                                                     buf, sizeof buf)
                                     : "");
            free(names);
        } else if (t == i) {
            rc = dw__load_fail(c, to, 0, "a property cannot ramp toward itself");
        } else if (!numeric(td)) {
            rc = dw__load_fail(c, to, 0, "\"%s\" is not a \"float\" or \"int\" property", td->name);
        } else if (td->ramp_to != SIZE_MAX) {
            rc = dw__load_fail(c, to, 0, "\"%s\" ramps itself: ramp toward its set point instead",
                               td->name);
        }
        dw__load_pop(c, o2);
        dw__load_pop(c, o1);
        if (rc != DW_OK)
            return rc;
        d->ramp_to = t;
    }
    return DW_OK;
}

/* One member of "properties": one property, or one per channel. *who
 * gets the member of each definition made. */
static int parse_member(dw__load *c, const cJSON *m, dw_sim_props *p, const cJSON ***who,
                        size_t *cap)
{
    unsigned chans[DW__LOAD_MAX_CHANNELS];
    size_t nch = 0;
    const cJSON *ch = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, "channels") : NULL;
    int rc = ch ? dw__load_channels(c, ch, chans, &nch) : DW_OK;
    for (size_t k = 0; k < (nch ? nch : 1) && rc == DW_OK; k++) {
        c->channel = nch ? chans[k] : 0;
        rc = parse_prop(c, m, p);
        size_t i = dw_sim_props_count(p);
        if (rc == DW_OK && i > *cap) {
            const cJSON **w = realloc(*who, 2 * i * sizeof *w);
            if (!w)
                return dw__load_oom(c);
            *who = w;
            *cap = 2 * i;
        }
        if (rc == DW_OK)
            (*who)[i - 1] = m;
    }
    c->channel = 0;
    return rc;
}

int dw__load_properties(dw__load *c, const cJSON *v)
{
    dw_sim_script *s = c->s;
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected an object of properties by name");
    if (!(s->props = dw_sim_props_new()))
        return dw__load_oom(c);
    int rc = DW_OK;
    const cJSON **who = NULL;
    size_t cap = 0;
    for (const cJSON *m = v->child; m && rc == DW_OK; m = m->next) {
        size_t old = dw__load_push(c, m->string);
        rc = parse_member(c, m, s->props, &who, &cap);
        dw__load_pop(c, old);
    }
    if (rc == DW_OK)
        rc = ramp_targets(c, who, s->props);
    free(who);
    if (rc == DW_OK && dw_sim_props_finish(s->props) != DW_OK)
        rc = dw__load_oom(c);
    return rc;
}
