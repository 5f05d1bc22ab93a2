/* devwire-sim: chunks of Lua in a script (load_int.h). Each is checked for
 * syntax at load, by one checker per load, and kept as written with its
 * JSON path for a name; each engine compiles them again in its own
 * sandbox. */
#include "script/load_int.h"

#include "model/lua_check.h"

#include <stdlib.h>
#include <string.h>

/* Where line `line` (1-based) of string v's value starts in the text. */
static size_t lua_line_pos(dw__load *c, const cJSON *v, unsigned line)
{
    const char *s = v->valuestring;
    size_t i = 0;
    for (unsigned l = 1; l < line && s[i]; i++)
        if (s[i] == '\n')
            l++;
    return dw__load_str_pos(c, v, i);
}

static int add_chunk(dw__load *c, dw_sim_lua_chunk *ch)
{
    dw_sim_script *s = c->s;
    if (s->nlua == c->lua_cap) {
        size_t ncap = c->lua_cap ? 2 * c->lua_cap : 4;
        dw_sim_lua_chunk **l = realloc(s->lua, ncap * sizeof *l);
        if (!l)
            return dw__load_oom(c);
        s->lua = l;
        c->lua_cap = ncap;
    }
    ch->id = s->nlua;
    s->lua[s->nlua++] = ch;
    return DW_OK;
}

/* A chunk of Lua at v (the current path): an expression, or statements.
 * Its syntax is checked now; an error points at the line of the string
 * where Lua found it. */
int dw__load_lua(dw__load *c, const cJSON *v, int statements, const dw_sim_lua_chunk **out)
{
    if (!cJSON_IsString(v))
        return dw__load_fail(c, v, 0, "expected string (Lua %s)",
                             statements ? "statements" : "expression");
    if (c->no_lua)
        return dw__load_fail(c, v, 0, "Lua runs only in rules and steps");
    if (!v->valuestring[strspn(v->valuestring, " \t\r\n")])
        return dw__load_fail(c, v, 0, "empty Lua %s", statements ? "statements" : "expression");
    if (!c->lua && !(c->lua = dw_sim_lua_checker_new()))
        return dw__load_oom(c);
    char msg[300];
    unsigned line = 1;
    int rc = dw_sim_lua_check(c->lua, v->valuestring, statements, &line, msg, sizeof msg);
    if (rc == DW_ENOMEM)
        return dw__load_oom(c);
    if (rc != DW_OK)
        return dw__load_fail_at(c, lua_line_pos(c, v, line), "%s", msg);
    dw_sim_lua_chunk *ch = calloc(1, sizeof *ch);
    if (!ch || !(ch->source = strdup(v->valuestring)) || !(ch->where = strdup(c->path))) {
        dw__sim_lua_chunk_free(ch);
        return dw__load_oom(c);
    }
    ch->statements = statements;
    if (add_chunk(c, ch) != DW_OK) {
        dw__sim_lua_chunk_free(ch);
        return DW_ENOMEM;
    }
    *out = ch;
    return DW_OK;
}

void dw__load_lua_done(dw__load *c)
{
    dw_sim_lua_checker_free(c->lua);
    c->lua = NULL;
}
