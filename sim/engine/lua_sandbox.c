/* devwire-sim's Lua sandbox: see lua_sandbox.h. */
#include "engine/lua_sandbox.h"
#include "engine/lua_guard.h"
#include "model/lua_check.h"
#include "model/scpi_status.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCAP 10 /* captures[0..9] */

/* Codes of the names lookup() knows besides the variables (>= 0). */
enum { NAME_REQUEST = -1, NAME_CAPTURES = -2, NAME_NOW = -3, NAME_STATE = -4, NAME_CHANNEL = -5 };

struct dw_sim_lua {
    lua_State *L;
    const dw_sim_script *script;
    size_t used, cap; /* bytes held and the memory cap */
    uint32_t budget;
    uint32_t step;                 /* instructions to the next hook call */
    uint32_t spent;                /* instructions of this evaluation, at the last hook */
    uint64_t limit_ns, deadline;   /* time per evaluation, and when this one's is up */
    int expired;                   /* this evaluation is over: everything raises */
    char why[64];                  /* and why ("instruction budget (1000) exceeded") */
    const dw_sim_lua_scope *scope; /* during an evaluation */
    int chunks;                    /* registry: the compiled chunks, by id + 1 */
    int randomseed;                /* registry: Lua's math.randomseed */
};

/* ---- memory and time ------------------------------------------------------- */

/* lua_Alloc with a cap: refuses (NULL) what would take the state past it;
 * Lua then collects garbage and retries, or raises a memory error. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    dw_sim_lua *x = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        x->used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > x->cap - (x->used < x->cap ? x->used : x->cap))
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        x->used = x->used - old + nsize;
    return p;
}

static dw_sim_lua *sandbox_of(lua_State *L)
{
    return *(dw_sim_lua **)lua_getextraspace(L);
}

/* ---- names --------------------------------------------------------------- */

/* Push a variable's value: a boolean for "true" / "false", a number for the
 * text of a Lua number, else the string. */
static void push_value(lua_State *L, const dw_buf *v)
{
    char tmp[64];
    if (v->len == 4 && memcmp(v->data, "true", 4) == 0) {
        lua_pushboolean(L, 1);
        return;
    }
    if (v->len == 5 && memcmp(v->data, "false", 5) == 0) {
        lua_pushboolean(L, 0);
        return;
    }
    if (v->len && v->len < sizeof tmp && !memchr(v->data, 0, v->len)) {
        memcpy(tmp, v->data, v->len);
        tmp[v->len] = '\0';
        if (lua_stringtonumber(L, tmp))
            return;
    }
    lua_pushlstring(L, v->len ? (const char *)v->data : "", v->len);
}

static void push_captures(lua_State *L, const dw_sim_lua_scope *sc)
{
    lua_createtable(L, NCAP - 1, 1);
    for (int i = 0; sc->cap_so && i < NCAP; i++) {
        if (sc->cap_so[i] == SIZE_MAX || sc->cap_eo[i] < sc->cap_so[i])
            continue;
        lua_pushlstring(L, (const char *)sc->request + sc->cap_so[i],
                        sc->cap_eo[i] - sc->cap_so[i]);
        lua_rawseti(L, -2, i);
    }
}

/* Property i's value at the request's time, typed (a ramp moved on, noise
 * drawn): a number, a boolean, an enum's short form, a string. */
static void push_prop(lua_State *L, const dw_sim_lua_scope *sc, size_t i)
{
    dw_sim_prop_value v;
    dw_sim_prop_get(sc->props, i, sc->now, &v);
    const char *name;
    size_t n;
    switch (v.type) {
    case DW_SIM_PROP_FLOAT:
        lua_pushnumber(L, v.num);
        break;
    case DW_SIM_PROP_INT:
        lua_pushinteger(L, (lua_Integer)v.num);
        break;
    case DW_SIM_PROP_BOOL:
        lua_pushboolean(L, v.num != 0);
        break;
    case DW_SIM_PROP_ENUM:
        n = dw_sim_prop_choice_name(dw_sim_props_def(sandbox_of(L)->script->props, i),
                                    (size_t)v.num, &name);
        lua_pushlstring(L, name, n);
        break;
    case DW_SIM_PROP_STRING:
        lua_pushlstring(L, v.str, v.len);
        break;
    }
}

/* A variable's or a property's value by its code in the names table
 * (variables 0 .. nvars - 1, then the properties). */
static void push_named(lua_State *L, const dw_sim_lua_scope *sc, size_t code)
{
    size_t nvars = sandbox_of(L)->script->nvars;
    if (code < nvars)
        push_value(L, &sc->vars[code]);
    else
        push_prop(L, sc, code - nvars);
}

/* Every global a chunk reads that is not one of Lua's own (those are fields
 * of the global table and never come here) resolves in this one function:
 * push its value and return 1, or return 0 for an unknown name. Names are
 * looked up in `names` (upvalue 1: name -> a NAME_ code, a variable's index
 * or nvars + a property's index): request, captures, now, state, then the
 * variables and the typed properties, which share one namespace (the loader
 * refuses a property with a variable's name). */
static int lookup(lua_State *L, dw_sim_lua *x, int key)
{
    const dw_sim_lua_scope *sc = x->scope;
    lua_pushvalue(L, key);
    int t = lua_rawget(L, lua_upvalueindex(1));
    if (t == LUA_TTABLE) /* a property's channels: freq[2] */
        return 1;
    if (t != LUA_TNUMBER) {
        lua_pop(L, 1);
        return 0;
    }
    lua_Integer code = lua_tointeger(L, -1);
    lua_pop(L, 1);
    switch (code) {
    case NAME_REQUEST:
        if (sc->request)
            lua_pushlstring(L, (const char *)sc->request, sc->request_len);
        else
            lua_pushnil(L);
        return 1;
    case NAME_CAPTURES:
        push_captures(L, sc);
        return 1;
    case NAME_NOW:
        lua_pushnumber(L, sc->now);
        return 1;
    case NAME_STATE:
        lua_pushvalue(L, lua_upvalueindex(2));
        return 1;
    case NAME_CHANNEL:
        if (sc->channel)
            lua_pushinteger(L, (lua_Integer)sc->channel);
        else
            lua_pushnil(L);
        return 1;
    default:
        push_named(L, sc, (size_t)code);
        return 1;
    }
}

/* An error, placed ("rules[3].if:1: ") at the Lua function that made the
 * access. */
static int fail_name(lua_State *L, const char *fmt, const char *name)
{
    luaL_where(L, 1);
    lua_pushfstring(L, fmt, name);
    lua_concat(L, 2);
    return lua_error(L);
}

static const char *key_name(lua_State *L, int key)
{
    return lua_type(L, key) == LUA_TSTRING ? lua_tostring(L, key) : "?";
}

/* The global table's __index (upvalues: names, the state proxy). */
static int global_index(lua_State *L)
{
    dw_sim_lua *x = sandbox_of(L);
    if (!x->scope) /* a finalizer, between evaluations */
        return fail_name(L, "'%s': no request in progress", key_name(L, 2));
    if (lua_type(L, 2) == LUA_TSTRING && lookup(L, x, 2))
        return 1;
    return fail_name(L, "unknown name '%s'", key_name(L, 2));
}

/* state.NAME (upvalue 1: the variables, name -> index). */
static int state_index(lua_State *L)
{
    dw_sim_lua *x = sandbox_of(L);
    if (!x->scope)
        return fail_name(L, "'%s': no request in progress", key_name(L, 2));
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNUMBER)
        return fail_name(L, "unknown variable '%s' (declare it in \"state\")", key_name(L, 2));
    push_named(L, x->scope, (size_t)lua_tointeger(L, -1));
    return 1;
}

/* Assign value idx to variable `var` (a "lua" action only). */
static int assign(lua_State *L, dw_sim_lua *x, size_t var, int idx, const char *name)
{
    const dw_sim_lua_scope *sc = x->scope;
    if (!sc || !sc->assign)
        return fail_name(L, "cannot set '%s' here (only a \"lua\" action sets variables)", name);
    int t = lua_type(L, idx);
    size_t n = 0;
    const char *p;
    if (t == LUA_TBOOLEAN) {
        p = lua_toboolean(L, idx) ? "true" : "false";
        n = strlen(p);
    } else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        lua_pushvalue(L, idx); /* tolstring converts a number in place */
        p = lua_tolstring(L, -1, &n);
    } else {
        return fail_name(L, "cannot set '%s' to that value (a string, a number or a boolean)",
                         name);
    }
    if (sc->assign(sc->arg, var, (const uint8_t *)p, n) != DW_OK)
        return luaL_error(L, "not enough memory");
    return 0;
}

/* Lua value idx as a value for property d: a boolean, a number, a string
 * (an enum's choice by its long or short form). 0, or -224 for a string
 * that names no choice of an enum. */
static int prop_value(lua_State *L, const dw_sim_prop_def *d, int idx, dw_sim_prop_value *v)
{
    memset(v, 0, sizeof *v);
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        v->type = DW_SIM_PROP_BOOL;
        v->num = lua_toboolean(L, idx);
        return 0;
    case LUA_TNUMBER:
        v->type = DW_SIM_PROP_FLOAT;
        v->num = lua_tonumber(L, idx);
        return 0;
    case LUA_TSTRING:
        v->type = DW_SIM_PROP_STRING;
        v->str = lua_tolstring(L, idx, &v->len);
        if (d->type != DW_SIM_PROP_ENUM)
            return 0;
        v->type = DW_SIM_PROP_ENUM;
        int k = dw_sim_prop_choice(d, v->str, v->len);
        v->num = k;
        return k < 0 ? k : 0;
    default:
        v->type = DW_SIM_PROP_STRING; /* a table, a function, nil: refused as a wrong type */
        v->str = "";
        return 0;
    }
}

/* Assign value idx to property i (a "lua" action only), validated as a
 * property's command validates it; a refused value is an error that names
 * the property, the value and the reason. */
static int assign_prop(lua_State *L, dw_sim_lua *x, size_t i, int idx, const char *name)
{
    const dw_sim_lua_scope *sc = x->scope;
    if (!sc || !sc->set_prop)
        return fail_name(L, "cannot set '%s' here (only a \"lua\" action sets properties)", name);
    dw_sim_prop_value v;
    int rc = prop_value(L, dw_sim_props_def(x->script->props, i), idx, &v);
    if (rc == 0)
        rc = sc->set_prop(sc->arg, i, &v);
    if (rc == DW_SCPI_NOMEM)
        return luaL_error(L, "not enough memory");
    if (rc == 0)
        return 0;
    luaL_where(L, 1);
    lua_pushfstring(L, "property '%s' refuses %s: %s (%d)", name, luaL_tolstring(L, idx, NULL),
                    dw_scpi_strerror(rc), rc);
    lua_remove(L, -2);
    lua_concat(L, 2);
    return lua_error(L);
}

/* __newindex of the global table and of state (upvalue 1: the variables
 * and properties, as in lookup()). */
static int var_newindex(lua_State *L)
{
    dw_sim_lua *x = sandbox_of(L);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNUMBER)
        return fail_name(L,
                         "cannot set unknown variable '%s' (declare it in \"state\", or use local)",
                         key_name(L, 2));
    size_t code = (size_t)lua_tointeger(L, -1);
    if (code >= x->script->nvars)
        return assign_prop(L, x, code - x->script->nvars, 3, key_name(L, 2));
    return assign(L, x, code, 3, key_name(L, 2));
}

/* A property with channels reads as a table (upvalues: the state proxy,
 * the property's name): freq[2] is state["freq[2]"], read and set. */
static void channel_key(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushfstring(L, "%s[%I]", lua_tostring(L, lua_upvalueindex(2)), luaL_checkinteger(L, 2));
}

static int channel_index(lua_State *L)
{
    channel_key(L);
    lua_gettable(L, -2);
    return 1;
}

static int channel_newindex(lua_State *L)
{
    channel_key(L);
    lua_pushvalue(L, 3);
    lua_settable(L, -3);
    return 0;
}

/* scpi.error(code [, message]): queue a SCPI error once the unit's action
 * has run through (a "lua" action of a SCPI script only). */
static int scpi_error(lua_State *L)
{
    const dw_sim_lua_scope *sc = sandbox_of(L)->scope;
    lua_Integer code = luaL_checkinteger(L, 1);
    size_t n = 0;
    const char *text = luaL_optlstring(L, 2, NULL, &n);
    if (!sc || !sc->queue_error)
        return luaL_error(L, "scpi.error: only in a \"lua\" action");
    const char *bad = dw_scpi_status_error_check((long long)code, text, n);
    if (bad)
        return luaL_error(L, "scpi.error(%I): %s", code, bad);
    if (sc->queue_error(sc->arg, (int)code, text) != DW_OK)
        return luaL_error(L, "not enough memory");
    return 0;
}

/* ---- the sandbox --------------------------------------------------------- */

/* load(chunk [, name [, mode [, env]]]), text chunks only. */
static int text_load(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *name = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");
    if (strcmp(mode, "t") != 0)
        return luaL_error(L, "load: only text chunks (mode \"t\")");
    if (luaL_loadbufferx(L, s, n, name, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (!lua_isnone(L, 4)) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

/* Instructions between two hook calls: each call reads the clock. */
#define HOOK_STEP 1000u

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void budget_hook(lua_State *L, lua_Debug *ar);

/* Raise the evaluation's end, placed at the Lua function at `level`. */
static int raise_expired(lua_State *L, dw_sim_lua *x, int level)
{
    luaL_where(L, level);
    lua_pushstring(L, x->why);
    lua_concat(L, 2);
    return lua_error(L);
}

/* The evaluation is over. From now on the hook fires at every instruction
 * and raises again, and so does every pattern step check: pcall, xpcall
 * and a looping message handler or __close catch one error, never the
 * next, so the chunk unwinds within a few instructions per level. */
static void expire(lua_State *L, dw_sim_lua *x, const char *why)
{
    snprintf(x->why, sizeof x->why, "%s", why);
    x->expired = 1;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
}

/* Is the evaluation's time or budget spent (at a hook call)? */
static int spent(dw_sim_lua *x, uint32_t step, char *why, size_t cap)
{
    x->spent += step;
    if (x->spent >= x->budget) {
        snprintf(why, cap, "instruction budget (%u) exceeded", (unsigned)x->budget);
        return 1;
    }
    if (now_ns() >= x->deadline) {
        snprintf(why, cap, "deadline (%g ms) exceeded", (double)x->limit_ns / 1e6);
        return 1;
    }
    return 0;
}

static uint32_t next_step(const dw_sim_lua *x)
{
    uint32_t left = x->budget - x->spent;
    return left < HOOK_STEP ? left : HOOK_STEP;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    dw_sim_lua *x = sandbox_of(L);
    char why[64];
    if (!x->expired) {
        if (!spent(x, x->step, why, sizeof why)) {
            x->step = next_step(x);
            lua_sethook(L, budget_hook, LUA_MASKCOUNT, (int)x->step);
            return;
        }
        expire(L, x, why);
    }
    raise_expired(L, x, 0); /* in a hook, level 0 is the function it interrupted */
}

/* The pattern functions' check (lua_pattern.h): in a C function, level 1 is
 * the Lua function that called it. */
static int pattern_check(lua_State *L)
{
    dw_sim_lua *x = sandbox_of(L);
    if (!x->expired && now_ns() >= x->deadline) {
        char why[64];
        snprintf(why, sizeof why, "deadline (%g ms) exceeded", (double)x->limit_ns / 1e6);
        expire(L, x, why);
    }
    if (x->expired)
        raise_expired(L, x, 1);
    return 0;
}

/* Is the evaluation over (lua_guard.h)? Pushes a boolean. */
static int is_expired(lua_State *L)
{
    lua_pushboolean(L, sandbox_of(L)->expired);
    return 1;
}

static void open_libs(lua_State *L)
{
    static const struct {
        const char *name;
        lua_CFunction open;
    } libs[] = {{LUA_GNAME, luaopen_base},
                {LUA_STRLIBNAME, luaopen_string},
                {LUA_TABLIBNAME, luaopen_table},
                {LUA_MATHLIBNAME, luaopen_math},
                {LUA_UTF8LIBNAME, luaopen_utf8}};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].open, 1);
        lua_pop(L, 1);
    }
    /* os: time and clock only. */
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    lua_createtable(L, 0, 2);
    lua_getfield(L, -2, "time");
    lua_setfield(L, -2, "time");
    lua_getfield(L, -2, "clock");
    lua_setfield(L, -2, "clock");
    lua_setglobal(L, LUA_OSLIBNAME);
    lua_pop(L, 1);
    /* The whole os library stays in the registry's loaded table: drop it. */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushnil(L);
    lua_setfield(L, -2, LUA_OSLIBNAME);
    lua_pop(L, 1);
    static const char *const gone[] = {"collectgarbage", "dofile", "loadfile",
                                       "print",          "rawset", "require"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, gone[i]);
    }
    lua_pushcfunction(L, text_load);
    lua_setglobal(L, "load");
}

/* math.randomseed leaves the sandbox for the registry (dw_sim_lua_seed). */
static void take_randomseed(lua_State *L, dw_sim_lua *x)
{
    lua_getglobal(L, LUA_MATHLIBNAME);
    lua_getfield(L, -1, "randomseed");
    x->randomseed = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushnil(L);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);
}

/* Push {name -> code} of the script's variables (their index) and
 * properties (nvars + their index). */
static void push_vars(lua_State *L, const dw_sim_script *s)
{
    size_t nprops = s->props ? dw_sim_props_count(s->props) : 0;
    lua_createtable(L, 0, (int)(s->nvars + nprops < 1000000 ? s->nvars + nprops : 0));
    for (size_t i = 0; i < s->nvars; i++) {
        lua_pushinteger(L, (lua_Integer)i);
        lua_setfield(L, -2, s->vars[i].name);
    }
    for (size_t i = 0; i < nprops; i++) {
        lua_pushinteger(L, (lua_Integer)(s->nvars + i));
        lua_setfield(L, -2, dw_sim_props_def(s->props, i)->name);
    }
}

/* In `names` (below the state proxy on the stack), each property with
 * channels by its name alone ("freq"): its channels' table. */
static void set_channels(lua_State *L, const dw_sim_script *s)
{
    size_t n = s->props ? dw_sim_props_count(s->props) : 0;
    for (size_t i = 0; i < n; i++) {
        const dw_sim_prop_def *d = dw_sim_props_def(s->props, i);
        if (!d->channel)
            continue;
        lua_pushlstring(L, d->name, strcspn(d->name, "["));
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -4) != LUA_TNIL) { /* made for an earlier channel */
            lua_pop(L, 2);
            continue;
        }
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 3);
        lua_pushvalue(L, -4); /* the state proxy */
        lua_pushvalue(L, -4); /* the name */
        lua_pushcclosure(L, channel_index, 2);
        lua_setfield(L, -2, "__index");
        lua_pushvalue(L, -4);
        lua_pushvalue(L, -4);
        lua_pushcclosure(L, channel_newindex, 2);
        lua_setfield(L, -2, "__newindex");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_setmetatable(L, -2);
        lua_rawset(L, -4);
    }
}

/* The global table's and state's metatables. */
static void set_names(lua_State *L, const dw_sim_script *s)
{
    static const struct {
        const char *name;
        int code;
    } special[] = {{"request", NAME_REQUEST},
                   {"captures", NAME_CAPTURES},
                   {"now", NAME_NOW},
                   {"state", NAME_STATE},
                   {"channel", NAME_CHANNEL}};
    push_vars(L, s); /* 1: the variables */
    push_vars(L, s); /* 2: every name lookup() knows */
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        if (special[i].code == NAME_CHANNEL) {
            /* A variable or property "channel" keeps its name: the script
             * then has no match with "channels" (the loader sees to it). */
            int taken = lua_getfield(L, -1, "channel") != LUA_TNIL;
            lua_pop(L, 1);
            if (taken)
                continue;
        }
        lua_pushinteger(L, special[i].code);
        lua_setfield(L, -2, special[i].name);
    }
    lua_newtable(L); /* 3: the state proxy */
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -4);
    lua_pushcclosure(L, state_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -4);
    lua_pushcclosure(L, var_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    set_channels(L, s);

    /* The globals chunks see (_ENV, _G) are an empty table that stays
     * empty: every read goes to the libraries' table, then to lookup(); every
     * write to var_newindex. Nothing a chunk does outlives its evaluation
     * but what it assigns to variables and properties (and its scpi.error). */
    lua_pushglobaltable(L); /* the libraries */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -4); /* names */
    lua_pushvalue(L, -4); /* the proxy */
    lua_pushcclosure(L, global_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_newtable(L); /* the chunks' globals */
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -6); /* the variables */
    lua_pushcclosure(L, var_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, LUA_GNAME); /* _G is the chunks' globals */
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pop(L, 4);
}

/* Everything that allocates, under lua_pcall (a memory error must not
 * panic). */
static int setup(lua_State *L)
{
    dw_sim_lua *x = sandbox_of(L);
    const dw_sim_script *s = x->script;
    open_libs(L);
    if (s->profile == DW_SIM_PROFILE_SCPI) { /* the scpi library */
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, scpi_error);
        lua_setfield(L, -2, "error");
        lua_setglobal(L, "scpi");
    }
    take_randomseed(L, x);
    dw__sim_lua_protect(L, pattern_check, is_expired);
    set_names(L, s);
    lua_createtable(L, (int)(s->nlua < 1000000 ? s->nlua : 0), 0);
    for (size_t i = 0; i < s->nlua; i++) {
        const dw_sim_lua_chunk *ch = s->lua[i];
        if (dw_sim_lua_compile(L, ch->source, ch->statements, ch->where) != LUA_OK)
            return lua_error(L); /* checked at load: out of memory */
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    x->chunks = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int dw_sim_lua_new(const dw_sim_script *script, dw_sim_lua **out, dw_error *err)
{
    *out = NULL;
    dw_sim_lua *x = calloc(1, sizeof *x);
    if (!x)
        return dw_error_set(err, DW_ENOMEM, "lua: out of memory");
    x->script = script;
    x->cap = DW_SIM_LUA_MEMORY_CAP;
    x->budget = DW_SIM_LUA_BUDGET;
    x->limit_ns = DW_SIM_LUA_DEADLINE_NS;
    x->expired = 1; /* no evaluation yet */
    snprintf(x->why, sizeof x->why, "no evaluation in progress");
    x->L = lua_newstate(capped_alloc, x);
    if (!x->L) {
        dw_sim_lua_free(x);
        return dw_error_set(err, DW_ENOMEM, "lua: out of memory");
    }
    *(dw_sim_lua **)lua_getextraspace(x->L) = x;
    lua_pushcfunction(x->L, setup);
    if (lua_pcall(x->L, 0, 0, 0) != LUA_OK) {
        dw_error_set(err, DW_ENOMEM, "lua: %s",
                     lua_isstring(x->L, -1) ? lua_tostring(x->L, -1) : "cannot set up");
        dw_sim_lua_free(x);
        return DW_ENOMEM;
    }
    /* The hook stays set and raises at once outside an evaluation. */
    lua_sethook(x->L, budget_hook, LUA_MASKCOUNT, 1);
    *out = x;
    return DW_OK;
}

void dw_sim_lua_free(dw_sim_lua *x)
{
    if (!x)
        return;
    if (x->L)
        lua_close(x->L);
    free(x);
}

void dw_sim_lua_set_limits(dw_sim_lua *x, uint32_t instructions, size_t memory)
{
    x->budget = instructions ? instructions : 1;
    if (x->budget > INT32_MAX)
        x->budget = INT32_MAX;
    x->cap = memory;
}

void dw_sim_lua_set_deadline(dw_sim_lua *x, uint64_t ns)
{
    x->limit_ns = ns ? ns : 1;
}

void dw_sim_lua_seed(dw_sim_lua *x, uint64_t seed)
{
    lua_rawgeti(x->L, LUA_REGISTRYINDEX, x->randomseed);
    lua_pushinteger(x->L, (lua_Integer)seed);
    if (lua_pcall(x->L, 1, 0, 0) != LUA_OK)
        lua_pop(x->L, 1);
}

size_t dw_sim_lua_memory(dw_sim_lua *x)
{
    return x->used;
}

/* ---- evaluation ---------------------------------------------------------- */

/* The value on top as text (see dw_sim_lua_eval). */
static int value_text(lua_State *L, const dw_sim_lua_chunk *ch, dw_buf *text, char *msg, size_t cap)
{
    int t = lua_type(L, -1);
    size_t n = 0;
    const char *p;
    if (t == LUA_TBOOLEAN) {
        p = lua_toboolean(L, -1) ? "true" : "false";
        n = strlen(p);
    } else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        p = lua_tolstring(L, -1, &n);
    } else {
        snprintf(msg, cap, "%s: gave %s (expected a string, a number or a boolean)", ch->where,
                 t == LUA_TNIL ? "nil" : lua_typename(L, t));
        return DW_ESCRIPT;
    }
    return dw_buf_append(text, p, n) == DW_OK ? DW_OK : DW_ENOMEM;
}

static int run(dw_sim_lua *x, const dw_sim_lua_chunk *ch, int *truth, dw_buf *text, char *msg,
               size_t cap)
{
    lua_State *L = x->L;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->chunks);
    lua_rawgeti(L, -1, (lua_Integer)ch->id + 1);
    lua_remove(L, -2);
    /* Setting the hook again starts its count afresh. */
    x->spent = 0;
    x->expired = 0;
    x->step = next_step(x);
    x->deadline = now_ns() + x->limit_ns;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, (int)x->step);
    int rc = lua_pcall(L, 0, 1, 0);
    expire(L, x, "no evaluation in progress");
    if (rc == LUA_ERRMEM) {
        snprintf(msg, cap, "%s: memory cap (%zu bytes) reached", ch->where, x->cap);
    } else if (rc != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (m)
            snprintf(msg, cap, "%s", m);
        else
            snprintf(msg, cap, "%s: error object is a %s", ch->where, luaL_typename(L, -1));
    } else {
        if (truth)
            *truth = lua_toboolean(L, -1);
        if (text)
            rc = value_text(L, ch, text, msg, cap);
    }
    lua_settop(L, 0);
    return rc == LUA_OK ? DW_OK : rc == DW_ENOMEM ? DW_ENOMEM : DW_ESCRIPT;
}

int dw_sim_lua_eval(dw_sim_lua *x, const dw_sim_lua_chunk *chunk, const dw_sim_lua_scope *scope,
                    int *truth, dw_buf *text, char *msg, size_t cap)
{
    x->scope = scope;
    int rc = run(x, chunk, truth, text, msg, cap);
    x->scope = NULL;
    return rc;
}
