/* The simulator suites' shared setup and checks: see sim_fixture.h. */
#include "sim_fixture.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.h"

dw_sim_run dw_sim_fixture;

static void proc_init(dw_sim_proc *p)
{
    memset(p, 0, sizeof *p);
    p->out_fd = p->err_fd = -1;
}

/* Remove and free *path, if any. */
static void remove_file(char **path)
{
    if (*path)
        unlink(*path);
    free(*path);
    *path = NULL;
}

void dw_sim_fixture_init(void)
{
    memset(&dw_sim_fixture, 0, sizeof dw_sim_fixture);
    proc_init(&dw_sim_fixture.proc);
    proc_init(&dw_sim_fixture.peer);
}

/* A simulator still running is stopped as a user would stop it (SIGTERM,
 * then SIGKILL after a while), so that it exits through its own cleanup,
 * where the sanitizers' leak check runs. */
static void stop_and_free(dw_sim_proc *p)
{
    if (p->pid > 0)
        dw_sim_proc_stop(p, 10000);
    dw_sim_proc_free(p);
}

void dw_sim_fixture_fini(void)
{
    dw_sim_run *r = &dw_sim_fixture;
    stop_and_free(&r->proc);
    stop_and_free(&r->peer);
    remove_file(&r->script);
    remove_file(&r->transcript);
    for (size_t i = 0; i < r->nfiles; i++)
        remove_file(&r->files[i]);
    free(r->files);
    r->files = NULL;
    r->nfiles = 0;
}

const char *dw_sim_fixture_file(const char *tag, const char *text)
{
    dw_sim_run *r = &dw_sim_fixture;
    char **files = realloc(r->files, (r->nfiles + 1) * sizeof *files);
    cr_assert(files != NULL, "out of memory");
    r->files = files;
    char *path = dw_sim_temp_file(tag, text);
    cr_assert(path != NULL, "cannot write a temporary file for %s", tag);
    r->files[r->nfiles++] = path;
    return path;
}

const char *dw_sim_fixture_transcript(void)
{
    remove_file(&dw_sim_fixture.transcript);
    dw_sim_fixture.transcript = dw_sim_temp_file("transcript", "");
    cr_assert(dw_sim_fixture.transcript != NULL, "cannot make a transcript file");
    return dw_sim_fixture.transcript;
}

dw_sim_proc *dw_sim_start(dw_sim_proc *slot, const char *const *args, const char *what)
{
    dw_sim_proc_free(slot);
    int rc = dw_sim_proc_start(slot, args, 1, 20000);
    cr_assert(eq(int, rc, DW_OK), "%s did not start (%s); stderr:\n%s", what, dw_strerror(rc),
              dw_sim_err_of(slot));
    return slot;
}

dw_sim_proc *dw_sim_serve(const char *tag, const char *script, const char *const *extra)
{
    dw_sim_proc *p = &dw_sim_fixture.proc;
    dw_sim_proc_free(p);
    remove_file(&dw_sim_fixture.script);
    dw_sim_serve_ok(p, tag, script, extra, &dw_sim_fixture.script);
    return p;
}

uint16_t dw_sim_control_of(dw_sim_proc *p, int timeout_ms)
{
    uint16_t port = dw_test_control_port(p, timeout_ms);
    cr_assert(port != 0, "no \"control on\" line:\n%s", dw_sim_out_of(p));
    dw_sim_fixture.control = port;
    return port;
}

int dw_sim_stop(dw_sim_proc *p, int timeout_ms, const char **out)
{
    int status = dw_sim_proc_stop(p, timeout_ms);
    if (out)
        *out = dw_sim_out_of(p);
    return status;
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
