/* devwire-sim's command line and what every mode shares: the options read
 * into one struct (dw_sim_cli), the option table and the usage text, the
 * exit statuses, the logger, loading a script with its error printed, the
 * control API's options, and the signals: blocked at start, then waited
 * for in one loop (SIGINT and SIGTERM stop, SIGHUP is the mode's to
 * handle). */
#ifndef DW_SIM_CLI_H
#define DW_SIM_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <devwire/devwire.h>

#include "script/script.h"

/* The name every message starts with. */
#define DW_SIM_PROG "devwire-sim"

/* Exit statuses (documented in --help). */
enum {
    DW_SIM_EXIT_OK = 0,
    DW_SIM_EXIT_CHECK = 1,  /* --check: something unmatched or a step not reached;
                             * --probe / --ask: no simulator answered */
    DW_SIM_EXIT_USAGE = 2,  /* bad arguments or a bad script */
    DW_SIM_EXIT_SERVER = 3, /* cannot serve (address in use, ...) */
    DW_SIM_EXIT_STUCK = 4,  /* SIGINT/SIGTERM: the stop did not end within the
                             * grace period, or a second signal came */
};

/* How long the orderly stop after SIGINT/SIGTERM may take before the
 * process gives up on it (dw_sim_cli_stop_begin). */
#define DW_SIM_STOP_GRACE_MS 1000

#define DW_SIM_MAX_DEVICES 256 /* --device options; a bench file has no limit */
#define DW_SIM_MAX_LOOPS   256 /* --loops */

/* What the command line asks for. */
typedef enum dw_sim_mode {
    DW_SIM_MODE_USAGE_ERROR, /* already reported: exit 2 */
    DW_SIM_MODE_HELP,
    DW_SIM_MODE_VERSION,
    DW_SIM_MODE_VALIDATE, /* validate.h */
    DW_SIM_MODE_PROBE,    /* ask.h */
    DW_SIM_MODE_ASK,      /* ask.h */
    DW_SIM_MODE_PROXY,    /* --record, --proxy (or --upstream alone): proxy_serve.h */
    DW_SIM_MODE_SERVE,    /* --script, --device, --bench: serve.h */
} dw_sim_mode;

/* Every option, as given (strings point into argv). */
typedef struct dw_sim_cli {
    const char *script, *listen, *transcript, *link;
    const char *control, *control_token;
    const char *validate, *probe, *ask, *bench;
    const char *request; /* --ask: the one operand */
    const char *devices[DW_SIM_MAX_DEVICES];
    size_t ndevices;
    int check, timeout_ms, idle_ms, write_ms;
    long max_connections, max_frame, max_buffered, journal;
    long lua_deadline_ms; /* --lua-deadline, 0: the engine's own */
    long loops;           /* --loops, 0: one per CPU the process may use */
    int portmapper;       /* --portmapper: 111 by default, 0: the system's choice, -1: none */
    int abort_port;       /* --abort-port: 0 (the system's choice) by default */
    int record, proxy;
    const char *upstream, *out;
    int as_steps, keep_timing;
    int delayed_ack; /* --delayed-ack */
    int have_seed;
    uint64_t seed;
    int exit_with_stdin; /* --exit-with-stdin: stop when stdin ends (the parent is gone) */
    dw_logger logger;    /* --log-level; writes to stderr */
} dw_sim_cli;

/* Read argv into *c (defaults first) and say which mode it asks for. A
 * bad option is reported on stderr (DW_SIM_MODE_USAGE_ERROR). As getopt
 * goes, --help and --version win over the options after them. */
dw_sim_mode dw_sim_cli_parse(int argc, char **argv, dw_sim_cli *c);

/* The getopt_long table (*n entries before its terminating zero entry);
 * static, never freed. */
const struct option *dw_sim_cli_options(size_t *n);

/* --help's text, naming every option of the table. */
void dw_sim_cli_usage(FILE *f);

/* --version's line. */
void dw_sim_cli_version(FILE *f);

/* Load the script at path: it (caller frees), or NULL after printing why. */
dw_sim_script *dw_sim_cli_load(const char *path);

/* --control and --control-token: *host (NULL without --control) and
 * *token (NULL without a token file) are the caller's to free. Returns
 * DW_SIM_EXIT_OK, or DW_SIM_EXIT_USAGE after saying what is wrong. */
int dw_sim_cli_control(const dw_sim_cli *c, char **host, uint16_t *port, char **token);

/* Take SIGINT, SIGTERM and SIGHUP synchronously (dw_sim_cli_wait_signals):
 * every thread started after this call inherits the mask. SIGPIPE is
 * ignored. */
void dw_sim_cli_block_signals(void);

/* Until SIGINT or SIGTERM: returns that signal. Each SIGHUP calls
 * on_hup(arg) (NULL: a SIGHUP does nothing). Signals must have been
 * blocked first. With `exit_with_stdin` (--exit-with-stdin), the end of
 * standard input (EOF, an error, a hang-up: the parent holding the pipe's
 * other end is gone) counts as SIGTERM, after a line on stderr saying so;
 * what stdin carries is read and dropped. */
int dw_sim_cli_wait_signals(int exit_with_stdin, void (*on_hup)(void *arg), void *arg);

/* The orderly stop after `sig` (what dw_sim_cli_wait_signals returned)
 * begins. Until dw_sim_cli_stop_done, a watchdog thread waits: if the stop
 * has not ended within DW_SIM_STOP_GRACE_MS (the loop thread is busy and
 * never answers the calls that close the devices), or a second SIGINT or
 * SIGTERM comes, it says so on stderr and ends the process at once with
 * _exit(DW_SIM_EXIT_STUCK), touching nothing else. Call it on the thread
 * that stops; at most one stop at a time. */
void dw_sim_cli_stop_begin(int sig);
/* The stop no longer needs the loop thread (the loop has stopped): the
 * watchdog ends. Without a stop begun, does nothing. */
void dw_sim_cli_stop_done(void);

#endif
