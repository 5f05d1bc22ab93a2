/* string.rep and table.concat, bounded in time.
 *
 * Both run in C, where the count hook that bounds an evaluation never
 * fires. The memory cap bounds how much they make, not how long they take:
 * Lua's string.rep copies its string once per repetition, so
 * string.rep('x', 4 * 1024 * 1024) is four million one-byte copies, about
 * 20 ms, twice a 10 ms deadline. These copies double what they have made
 * (a few dozen copies for any size) and ask the sandbox, every few
 * hundred thousand bytes or table fields, whether the evaluation's time is
 * up.
 *
 * On the thread of the lua_State, like all of the sandbox. */
#ifndef DW_SIM_ENGINE_LUA_BULK_H
#define DW_SIM_ENGINE_LUA_BULK_H

#include <lua.h>

/* Set `rep` of the string table at `str` and `concat` of the table library
 * at `tab` to the bounded versions. `check` is called with the state as in
 * dw__sim_lua_patterns: it raises an error to stop the call. Allocates:
 * under a protected call. */
void dw__sim_lua_bulk(lua_State *L, int str, int tab, lua_CFunction check);

#endif
