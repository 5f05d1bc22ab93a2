#include "devwire/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

const char *dw_log_level_name(dw_log_level level)
{
    if ((unsigned)level < sizeof level_names / sizeof level_names[0])
        return level_names[level];
    return "?";
}

int dw_log_level_parse(const char *name, dw_log_level *level)
{
    for (unsigned i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (dw_log_level)i;
            return 0;
        }
    }
    return -1;
}

void dw_log_stderr(void *user, dw_log_level level, const char *message)
{
    (void)user;
    /* One fprintf per message: stdio locks the stream, so lines from
     * several threads do not interleave. */
    fprintf(stderr, "devwire: %s: %s\n", dw_log_level_name(level), message);
}

int dw_log_enabled(const dw_logger *lg, dw_log_level level)
{
    return lg && lg->fn && level <= lg->level;
}

void dw_log(const dw_logger *lg, dw_log_level level, const char *fmt, ...)
{
    if (!dw_log_enabled(lg, level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lg->fn(lg->user, level, msg);
}
