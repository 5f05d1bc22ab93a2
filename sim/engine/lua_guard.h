/* Guards on Lua's libraries for the sandbox (lua_sandbox.h):
 *  - string.find, match, gmatch and gsub bounded in time (lua_pattern.h);
 *  - string, table, math, utf8, os (and scpi, if there) read-only: each global is an empty
 *    proxy that reads through to the library and refuses writes, and the
 *    strings' metatable is hidden (its __index is the real string table);
 *  - setmetatable refuses a __gc field: a finalizer runs whenever the
 *    collector gets to it, in a later evaluation, inside a C call or at
 *    exit, outside the deadline of the chunk that made it, and Lua drops
 *    its errors;
 *  - xpcall's message handler is skipped once the evaluation is over: Lua
 *    runs the handler of an error raised by a hook with hooks off.
 * On the thread of the lua_State. */
#ifndef DW_SIM_ENGINE_LUA_GUARD_H
#define DW_SIM_ENGINE_LUA_GUARD_H

#include <lua.h>

/* Guard the libraries in the global table. `check` is the pattern functions'
 * deadline check (dw__sim_lua_patterns); `expired` pushes whether the
 * evaluation is over (a boolean) and returns 1. Allocates: under a
 * protected call, after the libraries are open, before any chunk runs. */
void dw__sim_lua_protect(lua_State *L, lua_CFunction check, lua_CFunction expired);

#endif
