/* devwire-sim --record and --proxy: run a proxy (proxy.h) until SIGINT or
 * SIGTERM. Prints "listening on HOST:PORT" once it accepts connections;
 * at the end a recording is written to its file (record.h) and a line
 * says what it holds. With --control the proxy is the control API's device
 * "default" (its network faults at run time), and with --record
 * POST /record/stop writes the recording then ends the run as SIGTERM
 * does. */
#ifndef DW_SIM_PROXY_SERVE_H
#define DW_SIM_PROXY_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "run/cli.h"

typedef struct dw_sim_proxy_run {
    const char *script;   /* --script: transport, framing (and faults for --proxy) */
    const char *listen;   /* HOST:PORT */
    const char *upstream; /* HOST:PORT of the device; a serial script's: its terminal's path */
    const char *link;     /* --link: a serial script's link to the proxy's terminal, or NULL */
    const char *out;      /* --record: the script to write; NULL for --proxy */
    int as_steps, keep_timing;
    int have_seed;
    uint64_t seed;
    const char *transcript; /* NULL: none */
    const dw_logger *logger;
    size_t max_connections;
    int delayed_ack;          /* --delayed-ack: the client's side (proxy.h) */
    const char *control_host; /* --control: the control API (NULL: none) */
    uint16_t control_port;
    const char *control_token;
    int exit_with_stdin; /* --exit-with-stdin: the end of stdin stops as SIGTERM does */
} dw_sim_proxy_run;

/* The caller has blocked SIGINT, SIGTERM and SIGHUP in every thread.
 * Returns the exit status: 0; 2 (usage, a script that does not load);
 * 3 (cannot listen, cannot resolve the upstream, cannot write --out). */
int dw_sim_proxy_serve(const dw_sim_proxy_run *r);

/* The --record / --proxy mode of the command line (--upstream alone
 * proxies): checks the options that go together, blocks the signals and
 * runs dw_sim_proxy_serve with what c gives. Returns its exit status, or
 * 2 for options that do not go together. */
int dw_sim_run_proxy(const dw_sim_cli *c);

#endif
