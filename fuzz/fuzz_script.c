/* The simulator's script loader: any bytes as a script file.
 * Input: the script text.
 *
 * Oracles: it loads (DW_OK, a script) or fails with DW_ESCRIPT, no script
 * and a message "fuzz.json:LINE:COL: ..." with a 1-based location; never a
 * crash or a leak (ASan). A script that loads is served: an engine is built
 * on it and answers a few requests, the banner and the periodic messages
 * (the loader's guarantees are what the engine relies on). */
#include <ctype.h>

#include "devwire/devwire.h"
#include "engine/engine.h"
#include "script/script.h"

#include "fuzz_framing.h"

static void fail(const char *what, const dw_error *err)
{
    fprintf(stderr, "fuzz oracle: script: %s: %s\n", what, err ? dw_error_message(err) : "");
    abort();
}

/* "fuzz.json:" then a positive line, ':', a positive column, ": ". */
static int located(const char *msg)
{
    static const char prefix[] = "fuzz.json:";
    if (strncmp(msg, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *p = msg + sizeof prefix - 1;
    for (int field = 0; field < 2; field++) {
        if (*p < '1' || *p > '9')
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p++ != ':')
            return 0;
    }
    return *p == ' ';
}

static void serve(const dw_sim_script *s)
{
    dw_sim_engine *e = NULL;
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_sim_engine_new(s, &e, &err);
    if (rc == DW_ENOMEM)
        return;
    if (rc != DW_OK)
        fail("a loaded script has no engine", &err);
    dw_sim_engine_lua_limits(e, 10000, (size_t)1 << 20); /* a fuzzed loop ends soon */
    dw_sim_session *ses = dw_sim_session_new(e);
    if (!ses)
        abort();
    static const char *const requests[] = {"",        "*IDN?", "x", "\xff\x00", "{\"cmd\":1}",
                                           "FREQ 10", "*IDN?"};
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    for (size_t i = 0; i < sizeof requests / sizeof *requests; i++) {
        size_t n = i == 3 ? 2 : strlen(requests[i]);
        rc = dw_sim_engine_handle(e, ses, (const uint8_t *)requests[i], n, &o, &err);
        if (rc != DW_OK && rc != DW_EINVAL)
            fail("dw_sim_engine_handle", &err);
    }
    /* A long run then a byte that fails it: what makes a backtracking
     * pattern blow up; the limits must end the match. */
    static uint8_t run[2049];
    memset(run, 'a', sizeof run - 1);
    run[sizeof run - 1] = '!';
    rc = dw_sim_engine_handle(e, ses, run, sizeof run, &o, &err);
    if (rc != DW_OK && rc != DW_EINVAL)
        fail("dw_sim_engine_handle", &err);
    if (dw_sim_engine_regex_limit_hits(e) < o.nlimits)
        fail("limit hits listed but not counted", NULL);
    dw_buf out = DW_BUF_INIT;
    if (dw_sim_engine_banner(e, ses, &out) != DW_OK)
        fail("dw_sim_engine_banner", NULL);
    for (size_t i = 0; i < s->nperiodic; i++) {
        rc = dw_sim_engine_periodic(e, ses, i, &out, &err);
        if (rc != DW_OK && rc != DW_EINVAL)
            fail("dw_sim_engine_periodic", &err);
    }
    dw_buf_free(&out);
    dw_sim_outcome_free(&o);
    dw_sim_session_free(ses);
    dw_sim_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    dw_sim_script *s = (dw_sim_script *)&s; /* must be reset by the loader */
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_sim_script_load_buffer("fuzz.json", (const char *)data, size, &s, &err);
    if (rc == DW_OK) {
        if (!s)
            fail("DW_OK without a script", NULL);
        serve(s);
        dw_sim_script_free(s);
        return 0;
    }
    if (rc == DW_ENOMEM)
        return 0;
    if (rc != DW_ESCRIPT)
        fail("a failure other than DW_ESCRIPT", &err);
    if (s)
        fail("a failed load left a script", &err);
    if (err.code != rc && err.code != DW_OK)
        fail("err->code differs from the returned code", &err);
    if (!located(err.message))
        fail("a message without FILE:LINE:COL", &err);
    return 0;
}
