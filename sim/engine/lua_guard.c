/* The sandbox's guards on Lua's libraries: see lua_guard.h. */
#include "engine/lua_guard.h"
#include "engine/lua_bulk.h"
#include "engine/lua_pattern.h"

#include <lauxlib.h>
#include <lualib.h>

/* setmetatable without finalizers: a __gc function runs when the collector
 * gets to it, inside some later evaluation or C call or at exit, outside
 * the deadline of the chunk that made it, and Lua turns its errors into
 * warnings it drops. Otherwise as Lua's own. */
static int safe_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE && lua_getfield(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "setmetatable: no __gc here (a finalizer would run outside "
                             "any evaluation's deadline)");
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* __newindex of a library's read-only proxy. */
static int lib_newindex(lua_State *L)
{
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "cannot set '%s' (the libraries are read-only)", k);
}

/* __pairs of a library's proxy (upvalues: next, the library). */
static int lib_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushnil(L);
    return 3;
}

/* Replace global library `name` by an empty table that reads through to it
 * and refuses writes, so no chunk changes what the next one sees. */
static void make_read_only(lua_State *L, const char *name)
{
    if (lua_getglobal(L, name) == LUA_TNIL) { /* scpi: only with the SCPI profile */
        lua_pop(L, 1);
        return;
    }
    lua_newtable(L);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lib_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_getglobal(L, "next");
    lua_pushvalue(L, -4);
    lua_pushcclosure(L, lib_pairs, 2);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setglobal(L, name);
    lua_pop(L, 1);
}

/* xpcall's message handler, guarded (upvalues: is the evaluation over,
 * the script's handler). Lua runs a message handler with hooks off when the
 * error it handles came from a hook, so a looping handler would never be
 * stopped: once the evaluation is over, the error passes through as is. */
static int guarded_handler(lua_State *L)
{
    lua_CFunction expired = lua_tocfunction(L, lua_upvalueindex(1));
    expired(L);
    int over = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (over)
        return 1;
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* xpcall(f, msgh, ...) as Lua's, its handler guarded. */
static int safe_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_handler, 2);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2); /* true, f below f's arguments */
    if (lua_pcall(L, n - 2, LUA_MULTRET, 2) != LUA_OK) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - 2;
}

/* string's bounded pattern functions and rep, table's bounded concat,
 * string's metatable hidden (("").x reads
 * the real string table, which getmetatable('').__index would hand out),
 * the libraries read-only, no finalizers. */
void dw__sim_lua_protect(lua_State *L, lua_CFunction check, lua_CFunction expired)
{
    static const char *const libs[] = {LUA_STRLIBNAME,  LUA_TABLIBNAME, LUA_MATHLIBNAME,
                                       LUA_UTF8LIBNAME, LUA_OSLIBNAME,  "scpi"};
    lua_getglobal(L, LUA_STRLIBNAME);
    dw__sim_lua_patterns(L, -1, check);
    lua_getglobal(L, LUA_TABLIBNAME);
    dw__sim_lua_bulk(L, -2, -1, check);
    lua_pop(L, 2);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
        make_read_only(L, libs[i]);
    lua_pushcfunction(L, safe_setmetatable);
    lua_setglobal(L, "setmetatable");
    lua_pushcfunction(L, expired);
    lua_pushcclosure(L, safe_xpcall, 1);
    lua_setglobal(L, "xpcall");
}
