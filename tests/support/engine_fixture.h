/* The engine without sockets, as the engine-level suites (props, status,
 * channels, SCPI dispatch, lenient mode) drive it: load a script, ask it
 * requests at a given time, read the error queue. Header-only (static
 * inline): the files of tests/support go into every test program, and only the
 * simulator's suites link the engine. */
#ifndef DW_TEST_ENGINE_FIXTURE_H
#define DW_TEST_ENGINE_FIXTURE_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "script/script.h"

typedef struct fix {
    dw_sim_script *script;
    dw_sim_engine *e;
    dw_sim_session *s;
    dw_sim_outcome o;
    char reply[512];
} fix;

/* Scripts are written with ' for " to keep them readable: a copy with
 * every ' made ", caller frees. */
static inline char *dq(const char *text)
{
    char *t = strdup(text);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

/* Load `text` (with ' for ") and open a session on a new engine whose
 * clock is `clock(arg)` (NULL: the engine's own); asserts that it all
 * worked. */
static inline void fix_open_clock(fix *f, const char *text, double (*clock)(void *arg), void *arg)
{
    memset(f, 0, sizeof *f);
    char *t = dq(text);
    dw_error err;
    int rc = dw_sim_script_load_buffer("t.json", t, strlen(t), &f->script, &err);
    free(t);
    cr_assert(eq(int, rc, DW_OK), "%s", err.message);
    cr_assert(eq(int, dw_sim_engine_new(f->script, &f->e, &err), DW_OK), "%s", err.message);
    if (clock)
        dw_sim_engine_set_clock(f->e, clock, arg);
    f->s = dw_sim_session_new(f->e);
    cr_assert(f->s != NULL);
    dw_sim_outcome_init(&f->o);
}

static inline void fix_open(fix *f, const char *text)
{
    fix_open_clock(f, text, NULL, NULL);
}

static inline void fix_close(fix *f)
{
    dw_sim_outcome_free(&f->o);
    dw_sim_session_free(f->s);
    dw_sim_engine_free(f->e);
    dw_sim_script_free(f->script);
}

/* The reply to `req` at time `now`, its terminator taken off ("" for
 * none); borrowed until the next ask. */
static inline const char *ask_at(fix *f, const char *req, double now)
{
    size_t n = strlen(req);
    uint8_t *copy = malloc(n ? n : 1); /* exactly its size: over-reads show */
    memcpy(copy, req, n);
    dw_error err;
    int rc = dw_sim_engine_handle_at(f->e, f->s, copy, n, now, &f->o, &err);
    free(copy);
    cr_assert(eq(int, rc, DW_OK), "%s: %s", req, err.message);
    size_t len = f->o.bytes.len;
    while (len && (f->o.bytes.data[len - 1] == '\n' || f->o.bytes.data[len - 1] == '\r'))
        len--;
    snprintf(f->reply, sizeof f->reply, "%.*s", (int)len, len ? (char *)f->o.bytes.data : "");
    return f->reply;
}

static inline const char *ask(fix *f, const char *req)
{
    return ask_at(f, req, 0);
}

/* The error queue, emptied: "" when it was empty, else its entries
 * joined with '|' (a static buffer). */
static inline const char *errors(fix *f)
{
    static char all[1024];
    all[0] = 0;
    for (int i = 0; i < 20; i++) {
        const char *e = ask(f, "SYST:ERR?");
        if (strncmp(e, "0,", 2) == 0)
            break;
        if (all[0])
            strcat(all, "|");
        strncat(all, e, sizeof all - strlen(all) - 1);
    }
    return all;
}

/* `text` (with ' for ") is refused at load with a message holding `want`. */
static inline void load_fails(const char *text, const char *want)
{
    dw_sim_script *s = NULL;
    dw_error err;
    char *t = dq(text);
    int rc = dw_sim_script_load_buffer("t.json", t, strlen(t), &s, &err);
    free(t);
    cr_expect(eq(int, rc, DW_ESCRIPT), "loaded: %s", text);
    cr_expect(strstr(err.message, want) != NULL, "%s\n  wanted: %s", err.message, want);
    dw_sim_script_free(s);
}

#endif
