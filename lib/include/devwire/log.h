/* Logging hook. devwire is silent by default: nothing is logged unless the
 * application hands a dw_logger to an options struct. */
#ifndef DEVWIRE_LOG_H
#define DEVWIRE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dw_log_level {
    DW_LOG_ERROR = 0,
    DW_LOG_WARN = 1,
    DW_LOG_INFO = 2,
    DW_LOG_DEBUG = 3,
    DW_LOG_TRACE = 4
} dw_log_level;

/* Called with one formatted message (no trailing newline). May be called
 * from several threads at once (server connection threads): make it
 * thread-safe. */
typedef void (*dw_log_fn)(void *user, dw_log_level level, const char *message);

typedef struct dw_logger {
    dw_log_fn fn;       /* NULL: log nothing */
    void *user;         /* passed to fn */
    dw_log_level level; /* messages above this level are dropped */
} dw_logger;

/* A ready-made callback that writes "devwire: LEVEL: message\n" to stderr
 * (user is ignored). Thread-safe. */
void dw_log_stderr(void *user, dw_log_level level, const char *message);

/* "error", "warn", "info", "debug", "trace". */
const char *dw_log_level_name(dw_log_level level);
/* Parse a level name; returns 0 and sets *level, or -1 if unknown. */
int dw_log_level_parse(const char *name, dw_log_level *level);

/* Format and deliver a message. `lg` may be NULL (silent). */
void dw_log(const dw_logger *lg, dw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether a message at `level` would be delivered (skip costly formatting). */
int dw_log_enabled(const dw_logger *lg, dw_log_level level);

#ifdef __cplusplus
}
#endif
#endif
