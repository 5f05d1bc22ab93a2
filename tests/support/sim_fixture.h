/* What the simulator suites (tests/test_sim*.c) each wrote for themselves:
 * start a simulator and connect to it asserting that both worked, ask and
 * compare, print what it wrote; and the per-test fixture that holds the
 * running test's simulators and files, and stops and removes them whatever
 * happened. Built on sim_proc.h. */
#ifndef DW_TEST_SIM_FIXTURE_H
#define DW_TEST_SIM_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "sim_proc.h"

/* A test's simulators and the files it made. */
typedef struct dw_sim_run {
    dw_sim_proc proc; /* the simulator under test (a proxy, a recorder) */
    dw_sim_proc peer; /* a second one: the device behind a proxy or a recorder */
    uint16_t control; /* proc's control port, once dw_sim_control_of found it */
    char *script;     /* removed and freed; may stay NULL */
    char *transcript; /* idem */
    char **files;     /* more files (dw_sim_fixture_file), idem */
    size_t nfiles;
} dw_sim_run;

/* The running test's simulators and files. A suite (or a test) that sets
 * .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini keeps its
 * simulators in dw_sim_fixture.proc and .peer and its files in .script,
 * .transcript and .files: .fini stops and removes them even after a failed
 * assertion ended the test early. Each test runs in its own process, so one
 * global serves. A test that checks an exit status or the final output
 * stops its simulator itself (dw_sim_stop); .fini then only frees it. */
extern dw_sim_run dw_sim_fixture;
void dw_sim_fixture_init(void);
void dw_sim_fixture_fini(void);

/* A new temporary file holding `text` (named after `tag`), removed by
 * .fini: its path, the fixture's. Asserts it was written. */
const char *dw_sim_fixture_file(const char *tag, const char *text);

/* A new empty file in dw_sim_fixture.transcript (one left there before is
 * removed first): its path. Asserts it was made. */
const char *dw_sim_fixture_transcript(void);

/* Start devwire-sim with `args` (NULL-terminated) in `slot`
 * (&dw_sim_fixture.proc or .peer: a simulator that ran there before is
 * killed and freed first) and wait for its readiness line; asserts that it
 * started (`what` and its stderr in the message otherwise). Returns slot. */
dw_sim_proc *dw_sim_start(dw_sim_proc *slot, const char *const *args, const char *what);

/* Write `script` to a new dw_sim_fixture.script (named after `tag`; one
 * left there before is removed first), serve it in dw_sim_fixture.proc on
 * 127.0.0.1:0 with `extra` args (may be NULL) and wait for it to listen;
 * asserts it started. Returns &dw_sim_fixture.proc. */
dw_sim_proc *dw_sim_serve(const char *tag, const char *script, const char *const *extra);

/* Wait up to timeout_ms for p's "control on" line: the port, also kept in
 * dw_sim_fixture.control. Asserts it came. */
uint16_t dw_sim_control_of(dw_sim_proc *p, int timeout_ms);

/* Stop p (SIGTERM, then SIGKILL after timeout_ms) and collect its output:
 * its exit status; *out (out may be NULL) gets its stdout ("" for
 * nothing), borrowed until p is started again or .fini. */
int dw_sim_stop(dw_sim_proc *p, int timeout_ms, const char **out);

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
