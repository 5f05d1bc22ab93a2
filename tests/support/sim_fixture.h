/* What the simulator suites (tests/test_sim*.c) each wrote for themselves:
 * start a simulator and connect to it asserting that both worked, ask and
 * compare, print what it wrote; and the per-test fixture that stops the
 * simulator and removes its files whatever happened. Built on sim_proc.h. */
#ifndef DW_TEST_SIM_FIXTURE_H
#define DW_TEST_SIM_FIXTURE_H

#include "sim_proc.h"

/* The running test's simulator and files. A suite (or a test) that sets
 * .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini keeps its
 * simulator in dw_sim_fixture.proc and its files in .script and
 * .transcript: .fini stops and removes them even after a failed assertion
 * ended the test early. Each test runs in its own process, so one global
 * serves. */
extern dw_sim_run dw_sim_fixture;
void dw_sim_fixture_init(void);
void dw_sim_fixture_fini(void);

/* What the simulator wrote on stdout / stderr so far ("" for nothing). */
const char *dw_sim_out_of(const dw_sim_proc *p);
const char *dw_sim_err_of(const dw_sim_proc *p);

/* dw_sim_proc_serve, asserting that the simulator started (its stderr in
 * the message otherwise). */
void dw_sim_serve_ok(dw_sim_proc *p, const char *tag, const char *script, const char *const *extra,
                     char **path);

/* dw_sim_client_open to 127.0.0.1:port, asserting that it connected. */
void dw_sim_open_ok(dw_sim_client *c, uint16_t port, dw_marshaller *m, int timeout_ms);

/* Ask `req`: asserts a reply came, expects it to be `want`. */
void dw_sim_ask_eq(dw_sim_client *c, const char *req, const char *want);

#endif
