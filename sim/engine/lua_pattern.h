/* string.find, match, gmatch and gsub, bounded in time.
 *
 * Lua's own pattern functions run in C, where the count hook that bounds an
 * evaluation never fires: ('a'):rep(3000):find('.-.-.-.-b') backtracks for
 * ever, and one match of '^%s*(.-)%s*$' on a long run of blanks takes
 * seconds. Guessing a pattern's cost from its text refuses good patterns and
 * lets bad ones through, so the sandbox swaps in a copy of Lua's matcher
 * that counts its steps instead and asks the sandbox, every few thousand
 * steps, whether the evaluation's time is up.
 *
 * On the thread of the lua_State, like all of the sandbox. */
#ifndef DW_SIM_ENGINE_LUA_PATTERN_H
#define DW_SIM_ENGINE_LUA_PATTERN_H

#include <lua.h>

/* Set find, match, gmatch and gsub of the table at `idx` to the bounded
 * copies. `check` is called with the state every few thousand steps of
 * matching (and of a plain find); it raises an error to stop the call and
 * returns normally to let it go on. Allocates: under a protected call. */
void dw__sim_lua_patterns(lua_State *L, int idx, lua_CFunction check);

#endif
