/* Lua chunks under devwire-sim's sandbox.
 * Input: the text of a chunk.
 *
 * Oracles: the chunk is served as a "lua" action and as a computed reply of
 * two rules of a script; every request, whatever the chunk does (loop under
 * pcall, backtrack in a pattern, tamper with the libraries), is answered
 * within the deadline plus a margin for one bounded C call and a busy
 * machine, and a plain rule next to it still answers "pong" (nothing the
 * chunk did outlives its evaluation). Never a crash or a leak (ASan). */
#include <time.h>

#include "devwire/devwire.h"
#include "engine/engine.h"
#include "script/script.h"

#include "fuzz_framing.h"

/* The deadline (10 ms) plus room for one C call bounded by the memory cap
 * and for a loaded, sanitized build. */
#define MARGIN_S 0.25

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Append `p[0..n)` to `b` as the inside of a JSON string. */
static int json_string(dw_buf *b, const uint8_t *p, size_t n)
{
    char esc[8];
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (p[i] == '"' || p[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)p[i];
            rc = dw_buf_append(b, esc, 2);
        } else if (p[i] < 0x20 || p[i] >= 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", p[i]);
            rc = dw_buf_append(b, esc, 6);
        } else {
            rc = dw_buf_append(b, &p[i], 1);
        }
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

/* A script with the chunk as a "lua" action (statement) or as a computed
 * reply (value) of the rule "go", and a plain rule "ping" next to it. */
static int script_of(dw_buf *b, const uint8_t *p, size_t n, int value)
{
    int rc = dw_buf_append_str(b, value ? "{\"rules\": [{\"when\": \"go\", \"reply\": {\"lua\": \""
                                        : "{\"rules\": [{\"when\": \"go\", \"lua\": \"");
    if (rc == DW_OK)
        rc = json_string(b, p, n);
    if (rc == DW_OK)
        rc = dw_buf_append_str(b, value ? "\"}}, " : "\", \"reply\": \"ok\"}, ");
    if (rc == DW_OK)
        rc = dw_buf_append_str(
            b, "{\"when\": \"ping\", \"reply\": \"pong\"}], \"unmatched\": {\"reply\": \"?\"}}");
    return rc;
}

static void serve(dw_sim_engine *e, dw_sim_session *ses)
{
    static const char *const requests[] = {"go", "ping", "go", "ping"};
    dw_sim_outcome o;
    dw_error err;
    dw_sim_outcome_init(&o);
    for (size_t i = 0; i < sizeof requests / sizeof *requests; i++) {
        double t0 = seconds();
        int rc = dw_sim_engine_handle(e, ses, (const uint8_t *)requests[i], strlen(requests[i]), &o,
                                      &err);
        double took = seconds() - t0;
        if (took > 0.010 + MARGIN_S) {
            fprintf(stderr, "fuzz oracle: lua: '%s' took %.3f s\n", requests[i], took);
            abort();
        }
        if (rc != DW_OK && rc != DW_ENOMEM && rc != DW_EINVAL)
            abort();
        if (rc == DW_OK && strcmp(requests[i], "ping") == 0 &&
            (o.bytes.len != 5 || memcmp(o.bytes.data, "pong\n", 5) != 0)) {
            fprintf(stderr, "fuzz oracle: lua: ping not answered\n");
            abort();
        }
    }
    dw_sim_outcome_free(&o);
}

static void run(const uint8_t *data, size_t size, int value)
{
    dw_buf b;
    dw_sim_script *s = NULL;
    dw_error err;
    dw_buf_init(&b);
    dw_error_clear(&err);
    if (script_of(&b, data, size, value) == DW_OK &&
        dw_sim_script_load_buffer("fuzz.json", (const char *)b.data, b.len, &s, &err) == DW_OK) {
        dw_sim_engine *e = NULL;
        if (dw_sim_engine_new(s, &e, &err) == DW_OK) {
            dw_sim_engine_lua_limits(e, 1000000u, (size_t)2 << 20);
            dw_sim_session *ses = dw_sim_session_new(e);
            if (ses)
                serve(e, ses);
            dw_sim_session_free(ses);
            dw_sim_engine_free(e);
        }
        dw_sim_script_free(s);
    }
    dw_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    run(data, size, 0);
    run(data, size, 1);
    return 0;
}
