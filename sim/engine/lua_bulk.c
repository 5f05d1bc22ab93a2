/* string.rep and table.concat, bounded in time: see lua_bulk.h. Their
 * results are Lua's own (lstrlib.c, ltablib.c); only how the bytes are
 * copied, and the deadline checks, differ. */
#include "engine/lua_bulk.h"

#include <lauxlib.h>
#include <string.h>

/* Bytes copied, or table fields added, between two checks of the deadline. */
#define TICK_BYTES  (256 * 1024)
#define TICK_FIELDS 4096

static lua_CFunction check_of(lua_State *L)
{
    return lua_tocfunction(L, lua_upvalueindex(1)); /* set by dw__sim_lua_bulk */
}

/* string.rep(s, n [, sep]): one copy of s..sep, then copies of what is
 * there already, each as long as all before it. */
static int str_rep(lua_State *L)
{
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    size_t unit = l + lsep;
    if (unit < l || unit > ((size_t)LUA_MAXINTEGER - 1) / (size_t)n)
        return luaL_error(L, "resulting string too large");
    size_t total = (size_t)n * unit - lsep; /* no separator after the last */
    lua_CFunction check = check_of(L);
    check(L);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, total + lsep);
    memcpy(p, s, l);
    memcpy(p + l, sep, lsep);
    size_t done = unit, since_check = unit;
    while (done < total) {
        size_t more = done < total - done ? done : total - done;
        memcpy(p + done, p, more); /* the string repeats every `unit` bytes */
        done += more;
        if ((since_check += more) >= TICK_BYTES) {
            check(L);
            since_check = 0;
        }
    }
    luaL_pushresultsize(&b, total);
    return 1;
}

static void add_field(lua_State *L, luaL_Buffer *b, lua_Integer i)
{
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid value (%s) at index %I in table for 'concat'", luaL_typename(L, -1),
                   (LUAI_UACINT)i);
    luaL_addvalue(b);
}

/* table.concat(list [, sep [, i [, j]]]). */
static int tab_concat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer last = luaL_len(L, 1);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    lua_CFunction check = check_of(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (unsigned k = 1; i < last; i++, k++) {
        add_field(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
        if (k % TICK_FIELDS == 0)
            check(L);
    }
    if (i == last)
        add_field(L, &b, i);
    luaL_pushresult(&b);
    return 1;
}

static void set(lua_State *L, int table, const char *name, lua_CFunction f, lua_CFunction check)
{
    lua_pushcfunction(L, check);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, table, name);
}

void dw__sim_lua_bulk(lua_State *L, int str, int tab, lua_CFunction check)
{
    str = lua_absindex(L, str);
    tab = lua_absindex(L, tab);
    set(L, str, "rep", str_rep, check);
    set(L, tab, "concat", tab_concat, check);
}
