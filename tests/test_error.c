/* The error table, dw_error, and the logging hook. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

#include <devwire/error.h>
#include <devwire/log.h>

static const int all_codes[] = {DW_OK, DW_EOF, DW_MORE,
#define DW_X(name, value, text) DW_##name,
                                DW_ERRNO_MAP(DW_X)
#undef DW_X
};
static const char *const all_names[] = {"DW_OK", "DW_EOF", "DW_MORE",
#define DW_X(name, value, text) "DW_" #name,
                                        DW_ERRNO_MAP(DW_X)
#undef DW_X
};
#define NCODES (sizeof all_codes / sizeof all_codes[0])

Test(error, every_code_has_its_name_and_a_distinct_text)
{
    for (size_t i = 0; i < NCODES; i++) {
        cr_expect(eq(str, (char *)dw_err_name(all_codes[i]), (char *)all_names[i]));
        const char *t = dw_strerror(all_codes[i]);
        cr_expect(t && t[0], "%s has a description", all_names[i]);
        for (size_t j = 0; j < i; j++) {
            cr_expect(not(eq(int, all_codes[i], all_codes[j])), "%s and %s share a value",
                      all_names[i], all_names[j]);
            cr_expect(strcmp(t, dw_strerror(all_codes[j])) != 0, "%s and %s read the same",
                      all_names[i], all_names[j]);
        }
        if (i >= 3)
            cr_expect(lt(int, all_codes[i], 0), "%s is negative", all_names[i]);
    }
}

Test(error, system_codes_keep_their_errno)
{
    cr_expect(eq(int, DW_ETIMEDOUT, -ETIMEDOUT));
    cr_expect(eq(int, DW_ECONNREFUSED, -ECONNREFUSED));
    cr_expect(eq(int, DW_ETOOBIG, -EMSGSIZE));
    cr_expect(eq(str, (char *)dw_strerror(DW_ETRUNCATED), "stream ended inside a frame"));
    cr_expect(eq(str, (char *)dw_strerror(DW_OK), "success"));
    cr_expect(eq(str, (char *)dw_strerror(DW_EOF), "end of stream"));
    cr_expect(eq(int, DW_MORE, 2), "DW_MORE is positive: not an error");
    cr_expect(eq(str, (char *)dw_strerror(DW_MORE), "frame not complete yet"));
}

Test(error, unknown_codes)
{
    cr_expect(eq(str, (char *)dw_err_name(-4999), "DW_UNKNOWN"));
    cr_expect(eq(str, (char *)dw_err_name(77), "DW_UNKNOWN"));
    cr_expect(eq(str, (char *)dw_strerror(77), "unknown error"));
    cr_expect(eq(str, (char *)dw_strerror(-4999), "unknown error"));
    cr_expect(eq(str, (char *)dw_strerror(-EACCES), strerror(EACCES)),
              "other errno values fall back to strerror");
}

Test(error, error_struct)
{
    dw_error err;
    dw_error_clear(&err);
    cr_expect(eq(int, err.code, DW_OK));
    cr_expect(eq(str, (char *)dw_error_message(&err), "success"));
    cr_expect(eq(int,
                 dw_error_set(&err, DW_ECONNREFUSED, "connect %s:%d: %s", "127.0.0.1", 5025,
                              dw_strerror(DW_ECONNREFUSED)),
                 DW_ECONNREFUSED));
    cr_expect(eq(str, err.message, "connect 127.0.0.1:5025: connection refused"));
    cr_expect(eq(str, (char *)dw_error_message(&err), err.message));
    /* Wrapping a message in itself. */
    dw_error_set(&err, err.code, "session 3: %s", err.message);
    cr_expect(eq(str, err.message, "session 3: connect 127.0.0.1:5025: connection refused"));
    cr_expect(eq(int, dw_error_set(NULL, DW_EIO, "ignored %d", 1), DW_EIO));
    dw_error_clear(NULL);
    cr_expect(eq(str, (char *)dw_error_message(NULL), ""));
    err.message[0] = '\0';
    err.code = DW_ETIMEDOUT;
    cr_expect(eq(str, (char *)dw_error_message(&err), "timed out"), "no message: the code's text");
    char longer[600];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    dw_error_set(&err, DW_EINVAL, "%s", longer);
    cr_expect(eq(sz, strlen(err.message), sizeof err.message - 1), "long messages are cut");
}

typedef struct seen {
    int calls;
    dw_log_level level;
    char msg[128];
} seen;

static void record(void *user, dw_log_level level, const char *message)
{
    seen *s = user;
    s->calls++;
    s->level = level;
    snprintf(s->msg, sizeof s->msg, "%s", message);
}

Test(log, silent_by_default_and_filtered_by_level)
{
    dw_log(NULL, DW_LOG_ERROR, "nobody hears this %d", 1);
    dw_logger none = {0};
    dw_log(&none, DW_LOG_ERROR, "nor this");
    cr_expect(not(dw_log_enabled(NULL, DW_LOG_ERROR)));
    cr_expect(not(dw_log_enabled(&none, DW_LOG_ERROR)));

    seen s = {0};
    dw_logger lg = {record, &s, DW_LOG_INFO};
    dw_log(&lg, DW_LOG_DEBUG, "dropped");
    cr_expect(eq(int, s.calls, 0), "above the level: dropped");
    dw_log(&lg, DW_LOG_WARN, "client %s: %d", "a", 7);
    cr_expect(eq(int, s.calls, 1));
    cr_expect(eq(int, (int)s.level, (int)DW_LOG_WARN));
    cr_expect(eq(str, s.msg, "client a: 7"));
    cr_expect(dw_log_enabled(&lg, DW_LOG_INFO));
    cr_expect(not(dw_log_enabled(&lg, DW_LOG_TRACE)));
}

Test(log, level_names)
{
    const char *names[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; i++) {
        dw_log_level l;
        cr_expect(eq(str, (char *)dw_log_level_name((dw_log_level)i), (char *)names[i]));
        cr_expect(eq(int, dw_log_level_parse(names[i], &l), 0));
        cr_expect(eq(int, (int)l, i));
    }
    dw_log_level l = DW_LOG_INFO;
    cr_expect(eq(int, dw_log_level_parse("loud", &l), -1));
    cr_expect(eq(int, (int)l, (int)DW_LOG_INFO), "unchanged on failure");
    cr_expect(eq(str, (char *)dw_log_level_name((dw_log_level)9), "?"));
}

Test(log, stderr_sink, .init = cr_redirect_stderr)
{
    dw_logger lg = {dw_log_stderr, NULL, DW_LOG_TRACE};
    dw_log(&lg, DW_LOG_INFO, "listening on %s", "127.0.0.1:5025");
    fflush(stderr);
    cr_expect_stderr_eq_str("devwire: info: listening on 127.0.0.1:5025\n");
}
