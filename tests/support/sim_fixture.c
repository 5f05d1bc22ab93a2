/* The simulator suites' shared setup and checks: see sim_fixture.h. */
#include "sim_fixture.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

dw_sim_run dw_sim_fixture;

void dw_sim_fixture_init(void)
{
    dw_sim_run_init(&dw_sim_fixture);
}

void dw_sim_fixture_fini(void)
{
    dw_sim_run_free(&dw_sim_fixture);
}

const char *dw_sim_out_of(const dw_sim_proc *p)
{
    return p->out.data ? (const char *)p->out.data : "";
}

const char *dw_sim_err_of(const dw_sim_proc *p)
{
    return p->err.data ? (const char *)p->err.data : "";
}

void dw_sim_serve_ok(dw_sim_proc *p, const char *tag, const char *script, const char *const *extra,
                     char **path)
{
    int rc = dw_sim_proc_serve(p, tag, script, extra, path);
    cr_assert(eq(int, rc, DW_OK), "devwire-sim did not start (%s); stderr:\n%s", dw_strerror(rc),
              dw_sim_err_of(p));
}

void dw_sim_open_ok(dw_sim_client *c, uint16_t port, dw_marshaller *m, int timeout_ms)
{
    int rc = dw_sim_client_open(c, port, m, timeout_ms);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&c->err));
}

void dw_sim_ask_eq(dw_sim_client *c, const char *req, const char *want)
{
    const char *got = dw_sim_client_ask(c, req);
    cr_assert(got != NULL, "%s: no reply: %s", req, dw_error_message(&c->err));
    cr_expect(eq(str, (char *)got, (char *)want), "%s: reply", req);
}
