/* devwire-sim serving: one device or a bench of them, spread over event
 * loops (each device on one loop thread for its whole life), until SIGINT or SIGTERM; SIGHUP
 * reloads every device's script. Prints each device's readiness line ("listening on HOST:PORT", or
 * "serial on /dev/pts/N" for a serial device, followed by " (NAME)" for a
 * named device), then at the end each device's summary
 * and, with --check, the verdict over all of them. */
#ifndef DW_SIM_SERVE_H
#define DW_SIM_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "observe/transcript.h"
#include "run/cli.h"

/* One device to serve. Strings are borrowed for the call. */
typedef struct dw_sim_device {
    const char *name;   /* NULL: the only device, unnamed (plain --script) */
    const char *script; /* the script's file */
    const char *host;
    uint16_t port;
    int transport;    /* a dw_sim_transport overriding the script's, or -1 */
    const char *link; /* serial: a symbolic link to the line's terminal, or NULL */
    uint32_t baud;    /* serial: overrides the script's "baud"; 0 = the script's */
} dw_sim_device;

typedef struct dw_sim_serve_options {
    const dw_logger *logger;
    dw_sim_transcript *transcript; /* NULL: none */
    size_t max_connections;        /* per device */
    int idle_timeout_ms, write_timeout_ms;
    size_t max_frame;    /* --max-frame, 0 = each framing's own */
    size_t max_buffered; /* --max-buffered, per device; 0 = no bound */
    int check;           /* exit 1 when a request was unmatched or a step not reached */
    /* --control HOST:PORT: serve the control API there (control.h) and
     * print "control on http://HOST:PORT" after the devices' lines. */
    const char *control_host; /* NULL: no control API */
    uint16_t control_port;
    const char *control_token; /* --control-token's contents, or NULL */
    size_t journal_size;       /* --journal: entries per device (0: the default) */
    uint64_t seed;             /* --seed: every random draw (faults, noise, Lua) */
    int have_seed;             /* 0: a seed is drawn, and printed when a script uses it */
    unsigned lua_deadline_ms;  /* --lua-deadline: one Lua evaluation at most (0: 10 ms) */
    unsigned loops;            /* --loops: event loop threads (0: one per usable CPU) */
    int delayed_ack;           /* --delayed-ack: no quick ACKs unless a script asks */
    int exit_with_stdin;       /* --exit-with-stdin: the end of stdin stops as SIGTERM does */
    int portmapper;            /* --portmapper: VXI-11 devices' (111; 0: any; -1: none) */
    int abort_port;            /* --abort-port: VXI-11 devices' abort channel (0: any) */
} dw_sim_serve_options;

/* Serve devs[0..n) until SIGINT or SIGTERM. A script with "network"
 * faults is served behind a proxy (proxy.h) on the device's address that
 * applies them, the device itself listening on a loopback port of its own;
 * the faults are read at start (a reload keeps them). The caller has blocked SIGINT,
 * SIGTERM and SIGHUP in every thread (they are taken with sigwait here).
 * Returns the exit status: 0, 1 (--check failed), 2 (a script does not
 * load), 3 (cannot serve: an address in use). */
int dw_sim_serve(const dw_sim_device *devs, size_t n, const dw_sim_serve_options *o);

/* The serving mode of the command line: the devices of c->script (on
 * c->listen), c->devices and c->bench, with the options c gives, served
 * as dw_sim_serve does after blocking the signals. Returns the exit
 * status, as dw_sim_serve, or 2 for options that do not go together, a
 * --device that is not NAME=SCRIPT@HOST:PORT, a bench file that does not
 * load, two devices of one name. */
int dw_sim_run_serve(const dw_sim_cli *c);

#endif
