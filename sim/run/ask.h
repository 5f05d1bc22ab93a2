/* devwire-sim --probe and --ask: a client of a running simulator.
 * --probe says whether something accepts a TCP connection at HOST:PORT;
 * --ask talks to it with a script's transport and framing (TCP or Telnet),
 * skips its banner, sends one request and prints the reply's payload. */
#ifndef DW_SIM_ASK_H
#define DW_SIM_ASK_H

#include "run/cli.h"

/* --probe c->probe within c->timeout_ms: prints "HOST:PORT: accepting
 * connections" and returns 0, or 1 (2: not HOST:PORT). */
int dw_sim_run_probe(const dw_sim_cli *c);

/* --ask c->ask with c->script's transport and framing, c->request as the
 * request: prints the reply's payload and a newline and returns 0; 1 when
 * nothing answered; 2 for a bad address, script or transport. */
int dw_sim_run_ask(const dw_sim_cli *c);

#endif
