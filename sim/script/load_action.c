/* devwire-sim: what a rule, a step, "unmatched" or "on_error" does with a
 * request, at load (load_int.h): replies (frames, lists, after_last), sets
 * of variables and properties, delays, split writes, faults and a "lua"
 * action; "then" (close or reset after the reply). */
#include "script/load_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One reply of a list: null (no reply), a frame, or {"frames": [...]}. */
static int parse_reply_item(dw__load *c, const cJSON *v, int cap, dw_sim_template **frames,
                            size_t *nframes)
{
    if (cJSON_IsNull(v))
        return DW_OK;
    const cJSON *list = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "frames") : NULL;
    if (!list) {
        if (!cJSON_IsString(v) && !cJSON_IsObject(v))
            return dw__load_fail(c, v, 0, "expected string, object or null");
        *frames = calloc(1, sizeof **frames);
        if (!*frames)
            return dw__load_oom(c);
        *nframes = 1;
        int rc = dw__load_frame(c, v, cap, &(*frames)[0]);
        return rc == DW_OK ? dw__load_check_frame(c, v, &(*frames)[0]) : rc;
    }
    static const char *const keys[] = {"frames"};
    const cJSON *vals[1];
    int rc = dw__load_members(c, v, keys, 1, vals);
    if (rc != DW_OK)
        return rc;
    size_t old = dw__load_push(c, "frames");
    size_t n = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
    if (!cJSON_IsArray(list))
        rc = dw__load_fail(c, list, 0, "expected array");
    else if (n == 0)
        rc = dw__load_fail(c, list, 0, "expected at least one frame");
    else if (!(*frames = calloc(n, sizeof **frames)))
        rc = dw__load_oom(c);
    else
        *nframes = n;
    size_t i = 0;
    for (const cJSON *f = list->child; f && rc == DW_OK; f = f->next, i++) {
        size_t o2 = dw__load_push_index(c, i);
        rc = dw__load_frame(c, f, cap, &(*frames)[i]);
        if (rc == DW_OK)
            rc = dw__load_check_frame(c, f, &(*frames)[i]);
        dw__load_pop(c, o2);
    }
    dw__load_pop(c, old);
    return rc;
}

static int parse_replies(dw__load *c, const cJSON *v, int cap, dw_sim_action *a)
{
    if (cJSON_IsNull(v))
        return DW_OK;
    if (!cJSON_IsArray(v) && !cJSON_IsString(v) && !cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected string, object, array or null");
    size_t n = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 1;
    if (n == 0)
        return dw__load_fail(c, v, 0, "expected at least one reply (write null for no reply)");
    a->replies = calloc(n, sizeof *a->replies);
    a->nframes = calloc(n, sizeof *a->nframes);
    if (!a->replies || !a->nframes)
        return dw__load_oom(c);
    a->nreplies = n;
    if (!cJSON_IsArray(v))
        return parse_reply_item(c, v, cap, &a->replies[0], &a->nframes[0]);
    size_t i = 0;
    for (const cJSON *r = v->child; r; r = r->next, i++) {
        size_t old = dw__load_push_index(c, i);
        int rc = parse_reply_item(c, r, cap, &a->replies[i], &a->nframes[i]);
        dw__load_pop(c, old);
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

static int parse_sets(dw__load *c, const cJSON *v, int cap, dw_sim_action *a)
{
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0)
        return DW_OK;
    a->sets = calloc(n, sizeof *a->sets);
    if (!a->sets)
        return dw__load_oom(c);
    a->nsets = n;
    c->mark_gen++;
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *m = v->child; m && rc == DW_OK; m = m->next, i++) {
        size_t old = dw__load_push(c, m->string);
        size_t var = dw__load_find_var(c, m->string, strlen(m->string));
        if (dw__load_channel_ref(m->string, strlen(m->string))) { /* "freq[channel]" */
            rc = dw__load_channel_props(c, dw__json_pos_of(c->pos, m, 1), m->string,
                                        strlen(m->string), &a->sets[i].by_channel);
            a->sets[i].prop = 1;
            a->sets[i].var = a->sets[i].by_channel ? a->sets[i].by_channel[0] : 0;
            if (rc == DW_OK)
                rc = dw__load_value_template(c, m, cap, &a->sets[i].value);
        } else if (var == SIZE_MAX && (var = dw_sim_prop_find(c->s->props, m->string,
                                                              strlen(m->string))) != SIZE_MAX) {
            a->sets[i].prop = 1; /* a property: set at run time, validated */
            a->sets[i].var = var;
            rc = dw__load_value_template(c, m, cap, &a->sets[i].value);
        } else if (var == SIZE_MAX) {
            rc = dw__load_unknown_var(c, dw__json_pos_of(c->pos, m, 1), m->string,
                                      strlen(m->string), 0);
        } else if (c->var_mark[var] == c->mark_gen) {
            rc = dw__load_fail(c, m, 1, "duplicate key");
        } else {
            c->var_mark[var] = c->mark_gen;
            a->sets[i].var = var;
            rc = dw__load_value_template(c, m, cap, &a->sets[i].value);
        }
        dw__load_pop(c, old);
    }
    return rc;
}

/* "split": the sizes of the pieces the reply is written in. */
static int parse_split(dw__load *c, const cJSON *v, dw_sim_action *a)
{
    size_t n = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
    if (!cJSON_IsArray(v))
        return dw__load_fail(c, v, 0, "expected array");
    if (n == 0)
        return dw__load_fail(c, v, 0, "expected at least one size");
    if (!(a->split = calloc(n, sizeof *a->split)))
        return dw__load_oom(c);
    a->nsplit = n;
    size_t i = 0;
    int rc = DW_OK;
    uint64_t u;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t o2 = dw__load_push_index(c, i);
        if ((rc = dw__load_uint(c, e, 1, DW_SIM_MAX_FRAME_LIMIT, &u)) == DW_OK)
            a->split[i] = (size_t)u;
        dw__load_pop(c, o2);
    }
    return rc;
}

/* "error": N or {"code": N, "message": "text"}: the SCPI error the action
 * queues. */
static int parse_error(dw__load *c, const cJSON *v, dw_sim_action *a)
{
    static const char *const keys[] = {"code", "message"};
    const cJSON *vals[2] = {v, NULL};
    if (c->s->profile != DW_SIM_PROFILE_SCPI)
        return dw__load_fail(c, v, 1, "only with \"profile\": \"scpi\" (its error queue)");
    if (cJSON_IsObject(v)) {
        int rc = dw__load_members(c, v, keys, 2, vals);
        if (rc != DW_OK)
            return rc;
        if (!vals[0])
            return dw__load_fail(c, v, 0, "missing \"code\"");
    }
    size_t old = vals[0] != v ? dw__load_push(c, "code") : SIZE_MAX;
    const cJSON *n = vals[0];
    int rc = DW_OK;
    if (!cJSON_IsNumber(n) || !(n->valuedouble >= -32768 && n->valuedouble <= 32767) ||
        n->valuedouble != (double)(int)n->valuedouble || n->valuedouble == 0)
        rc = dw__load_fail(c, n, 0,
                           "expected a SCPI error number (-32768 to 32767, not 0), or "
                           "{\"code\": N, \"message\": \"text\"}");
    a->scpi_error = n->valueint;
    if (old != SIZE_MAX)
        dw__load_pop(c, old);
    if (rc == DW_OK && vals[1]) {
        old = dw__load_push(c, "message");
        if (!cJSON_IsString(vals[1]) || strlen(vals[1]->valuestring) > 255)
            rc = dw__load_fail(c, vals[1], 0, "expected a string of at most 255 bytes");
        else if (!(a->scpi_error_text = strdup(vals[1]->valuestring)))
            rc = dw__load_oom(c);
        dw__load_pop(c, old);
    }
    return rc;
}

static const char *const after_last_names[] = {"repeat_last", "cycle", "silent"};
static const char *const then_names[] = {"close", "reset"};

/* "then": end the connection once the reply is out; a fault that answers
 * nothing (close, reset, hang, drop) leaves nothing to end after. */
static int parse_then(dw__load *c, const cJSON *v, const cJSON *fault, dw_sim_action *a)
{
    int e = 0;
    int rc = dw__load_enum(c, v, then_names, 2, &e);
    if (rc != DW_OK)
        return rc;
    a->then = e ? DW_SIM_THEN_RESET : DW_SIM_THEN_CLOSE;
    if (fault && cJSON_IsString(fault) && strcmp(fault->valuestring, "garbage") != 0 &&
        strcmp(fault->valuestring, "duplicate") != 0)
        return dw__load_fail(c, v, 1, "not with fault \"%s\" (it sends no reply to end after)",
                             fault->valuestring);
    return DW_OK;
}
static const char *const fault_names[] = {"none",    "close", "reset",    "hang",
                                          "garbage", "drop",  "duplicate"};

/* The action keys of a rule, step or "unmatched", already separated by
 * dw__load_members(): av[A_...]. */
int dw__load_action(dw__load *c, const cJSON *const *av, int cap, dw_sim_action *a)
{
    int rc = DW_OK;
    uint64_t u;
    for (int k = 0; k < DW__ACTION_N && rc == DW_OK; k++) {
        const cJSON *v = av[k];
        if (!v)
            continue;
        size_t old = dw__load_push(c, v->string);
        switch (k) {
        case DW__ACTION_REPLY:
            rc = parse_replies(c, v, cap, a);
            break;
        case DW__ACTION_AFTER_LAST: {
            int e = 0;
            if (!av[DW__ACTION_REPLY] || !cJSON_IsArray(av[DW__ACTION_REPLY]))
                rc = dw__load_fail(c, v, 1, "only with a list of replies");
            else if ((rc = dw__load_enum(c, v, after_last_names, 3, &e)) == DW_OK)
                a->after_last = (dw_sim_after_last)e;
            break;
        }
        case DW__ACTION_SET:
            rc = parse_sets(c, v, cap, a);
            break;
        case DW__ACTION_DELAY:
            if ((rc = dw__load_uint(c, v, 0, DW__LOAD_MAX_DELAY_MS, &u)) == DW_OK)
                a->delay_ms = (unsigned)u;
            break;
        case DW__ACTION_SPLIT:
            rc = parse_split(c, v, a);
            break;
        case DW__ACTION_SPLIT_DELAY:
            if (!av[DW__ACTION_SPLIT])
                rc = dw__load_fail(c, v, 1, "only with \"split\"");
            else if ((rc = dw__load_uint(c, v, 0, DW__LOAD_MAX_DELAY_MS, &u)) == DW_OK)
                a->split_delay_ms = (unsigned)u;
            break;
        case DW__ACTION_FAULT: {
            int e = 0;
            if ((rc = dw__load_enum(c, v, fault_names + 1, 6, &e)) == DW_OK)
                a->fault = (dw_sim_fault)(e + 1);
            if (rc == DW_OK && a->fault == DW_SIM_FAULT_GARBAGE && !av[DW__ACTION_GARBAGE])
                rc = dw__load_fail(c, v, 0,
                                   "fault \"garbage\" needs \"garbage\": the bytes to send");
            break;
        }
        case DW__ACTION_FAULT_ON:
            if (!av[DW__ACTION_FAULT])
                rc = dw__load_fail(c, v, 1, "only with \"fault\"");
            else if ((rc = dw__load_uint(c, v, 1, UINT32_MAX, &u)) == DW_OK)
                a->fault_on = (unsigned)u;
            break;
        case DW__ACTION_GARBAGE:
            if (!av[DW__ACTION_FAULT] || !cJSON_IsString(av[DW__ACTION_FAULT]) ||
                strcmp(av[DW__ACTION_FAULT]->valuestring, "garbage") != 0)
                rc = dw__load_fail(c, v, 1, "only with \"fault\": \"garbage\"");
            else if ((rc = dw__load_bytes(c, v, &a->garbage)) == DW_OK && a->garbage.len == 0)
                rc = dw__load_fail(c, v, 0, "must not be empty");
            break;
        case DW__ACTION_LUA:
            rc = dw__load_lua(c, v, 1, &a->lua);
            break;
        case DW__ACTION_ERROR:
            rc = parse_error(c, v, a);
            break;
        case DW__ACTION_THEN:
            rc = parse_then(c, v, av[DW__ACTION_FAULT], a);
            break;
        case DW__ACTION_BUSY:
            rc = dw__load_busy(c, v, &a->busy_ms);
            break;
        }
        dw__load_pop(c, old);
    }
    return rc;
}
