/* devwire-sim's Lua checker: the syntax of a script's chunks of Lua, checked
 * when the script is loaded (docs/sim.md, "Conditions and computed values
 * (Lua)"), and the one way a chunk's text becomes a Lua function, which the
 * engine's sandbox (engine/lua_sandbox.h) compiles with too.
 *
 * Plain source text in, a line and a message out: the checker knows nothing
 * of the script that holds the chunk. */
#ifndef DW_SIM_LUA_CHECK_H
#define DW_SIM_LUA_CHECK_H

#include <stddef.h>

#include <devwire/devwire.h>

struct lua_State;

typedef struct dw_sim_lua_checker dw_sim_lua_checker;

/* A compiler for checking chunks (no libraries, no sandbox); NULL when out of
 * memory. Free with dw_sim_lua_checker_free (accepts NULL). */
dw_sim_lua_checker *dw_sim_lua_checker_new(void);
void dw_sim_lua_checker_free(dw_sim_lua_checker *k);

/* Compile src as an expression (statements == 0) or statements. DW_OK;
 * DW_ESCRIPT with *line the chunk's line (1-based) where Lua found the error
 * and msg its message without position ("unexpected symbol near 'x'");
 * DW_ENOMEM. */
int dw_sim_lua_check(dw_sim_lua_checker *k, const char *src, int statements, unsigned *line,
                     char *msg, size_t cap);

/* Push chunk text src as a function on L's stack, named `where` in Lua's
 * messages ("rules[3].if:1: ..."): an expression is compiled as "return
 * EXPR" (same lines, so Lua's line numbers are the chunk's); text only,
 * never bytecode. Lua's load status (LUA_OK, LUA_ERRSYNTAX with the message
 * pushed instead, LUA_ERRMEM). */
int dw_sim_lua_compile(struct lua_State *L, const char *src, int statements, const char *where);

#endif
