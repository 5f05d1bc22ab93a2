/* devwire-sim's Lua checker: see lua_check.h. */
#include "model/lua_check.h"

#include <lauxlib.h>
#include <lua.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dw_sim_lua_compile(lua_State *L, const char *src, int statements, const char *where)
{
    dw_buf text = DW_BUF_INIT;
    char name[160];
    snprintf(name, sizeof name, "=%s", where);
    if ((!statements && dw_buf_append_str(&text, "return ") != DW_OK) ||
        dw_buf_append_str(&text, src) != DW_OK) {
        dw_buf_free(&text);
        return LUA_ERRMEM;
    }
    int rc = luaL_loadbufferx(L, (const char *)text.data, text.len, name, "t");
    dw_buf_free(&text);
    return rc;
}

struct dw_sim_lua_checker {
    lua_State *L;
};

dw_sim_lua_checker *dw_sim_lua_checker_new(void)
{
    dw_sim_lua_checker *k = calloc(1, sizeof *k);
    if (k && !(k->L = luaL_newstate())) {
        free(k);
        k = NULL;
    }
    return k;
}

void dw_sim_lua_checker_free(dw_sim_lua_checker *k)
{
    if (!k)
        return;
    lua_close(k->L);
    free(k);
}

int dw_sim_lua_check(dw_sim_lua_checker *k, const char *src, int statements, unsigned *line,
                     char *msg, size_t cap)
{
    static const char where[] = "chunk";
    *line = 1;
    int rc = dw_sim_lua_compile(k->L, src, statements, where);
    if (rc == LUA_OK || rc == LUA_ERRMEM) {
        lua_settop(k->L, 0);
        return rc == LUA_OK ? DW_OK : DW_ENOMEM;
    }
    /* "chunk:LINE: message" */
    const char *m = lua_tostring(k->L, -1);
    if (!m)
        m = "syntax error";
    if (strncmp(m, where, sizeof where - 1) == 0 && m[sizeof where - 1] == ':') {
        char *end;
        unsigned long l = strtoul(m + sizeof where, &end, 10);
        if (end != m + sizeof where && *end == ':') {
            *line = l ? (unsigned)l : 1;
            m = end + 1 + (end[1] == ' ');
        }
    }
    snprintf(msg, cap, "%s", m);
    lua_settop(k->L, 0);
    return DW_ESCRIPT;
}
