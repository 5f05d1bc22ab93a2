/* devwire-sim --record and --proxy: see proxy_serve.h. */
#include "proxy_serve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "net.h"
#include "proxy.h"
#include "record.h"
#include "script.h"
#include "transcript.h"

static const char *prog = "devwire-sim";

/* Until SIGINT or SIGTERM (SIGHUP does nothing here). */
static void wait_stop(void)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) == 0 && sig != SIGHUP)
            return;
    }
}

/* Write text to path through a temporary file renamed over it, so a
 * reader never sees half a script. 0, or -1 after saying why. */
static int write_file(const char *path, const dw_buf *text)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp-%ld", path, (long)getpid()) < 0)
        return -1;
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(text->data, 1, text->len, f) == text->len;
    int e = errno;
    if (f && fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        fprintf(stderr, "%s: --out %s: %s\n", prog, path, strerror(e));
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

/* The conversation as a script, into r->out. */
static int write_recording(const dw_sim_proxy_run *r, dw_sim_recorder *rec,
                           const dw_sim_script *base)
{
    dw_sim_conversation cv;
    if (dw_sim_recorder_conversation(rec, &cv) != DW_OK) {
        fprintf(stderr, "%s: out of memory reading the recording\n", prog);
        return 3;
    }
    dw_sim_record_options o = {r->as_steps, r->keep_timing, r->upstream};
    dw_buf text = DW_BUF_INIT;
    int status = dw_sim_record_write(&cv, base, &o, &text) == DW_OK ? 0 : 3;
    if (status == 0)
        status = write_file(r->out, &text) == 0 ? 0 : 3;
    if (status == 0)
        printf("recorded %zu request%s on %zu connection%s to %s\n", cv.nex, cv.nex == 1 ? "" : "s",
               cv.connections, cv.connections == 1 ? "" : "s", r->out);
    fflush(stdout);
    dw_buf_free(&text);
    dw_sim_conversation_free(&cv);
    return status;
}

static dw_sim_script *load(const char *path)
{
    dw_sim_script *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_script_load_file(path, &s, &err) != DW_OK)
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
    return s;
}

/* Proxy options from the run: 0, or the exit status after saying why. */
static int options(const dw_sim_proxy_run *r, dw_sim_proxy_options *po, char **host, char **up)
{
    dw_sim_proxy_options_init(po);
    if (dw_sim_parse_hostport(r->listen, host, &po->port) != 0) {
        fprintf(stderr, "%s: --listen %s: expected HOST:PORT\n", prog, r->listen);
        return 2;
    }
    if (dw_sim_parse_hostport(r->upstream, up, &po->upstream_port) != 0) {
        fprintf(stderr, "%s: --upstream %s: expected HOST:PORT\n", prog, r->upstream);
        return 2;
    }
    po->host = *host;
    po->upstream_host = *up;
    po->logger = r->logger;
    po->max_connections = r->max_connections;
    po->seed = r->have_seed ? r->seed : dw_sim_rng_entropy();
    if (!r->have_seed && !r->out)
        fprintf(stderr, "%s: seed %llu (repeat this run's random draws with --seed %llu)\n", prog,
                (unsigned long long)po->seed, (unsigned long long)po->seed);
    return 0;
}

/* Serve on `loop` until a signal; the recording is written after. */
static int run(const dw_sim_proxy_run *r, dw_sim_proxy_options *po, dw_sim_script *script,
               dw_sim_loop *loop)
{
    dw_error err;
    dw_error_clear(&err);
    dw_sim_recorder *rec = r->out ? dw_sim_recorder_new(script) : NULL;
    if (r->out && !rec) {
        dw_sim_script_free(script);
        return 3;
    }
    po->recorder = rec;
    po->loop = loop;
    dw_sim_proxy *p = NULL;
    if (dw_sim_proxy_new(po, script, &p, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        dw_sim_script_free(script);
        dw_sim_recorder_free(rec);
        return err.code == DW_EINVAL ? 2 : 3;
    }
    int status = 0;
    if (dw_sim_loop_start(loop, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        status = 3;
    } else {
        printf("listening on %s\n", dw_sim_proxy_address(p));
        fflush(stdout);
        wait_stop();
    }
    dw_sim_proxy_stop(p);
    dw_sim_loop_stop(loop);
    uint64_t accepted = 0, served = 0;
    dw_sim_proxy_counts(p, &accepted, &served);
    if (status == 0)
        printf("summary: %s to %s: %llu connection%s, %llu refused\n", rec ? "recorder" : "proxy",
               r->upstream, (unsigned long long)served, served == 1 ? "" : "s",
               (unsigned long long)(accepted - served));
    if (status == 0 && rec)
        status = write_recording(r, rec, script);
    dw_sim_proxy_free(p); /* frees the script */
    dw_sim_recorder_free(rec);
    return status;
}

int dw_sim_proxy_serve(const dw_sim_proxy_run *r)
{
    char *host = NULL, *up = NULL;
    dw_sim_proxy_options po;
    int status = options(r, &po, &host, &up);
    dw_sim_script *script = status ? NULL : load(r->script);
    if (!status && !script)
        status = 2;
    dw_sim_transcript *tr = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (!status && r->transcript && dw_sim_transcript_open(r->transcript, &tr, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        dw_sim_script_free(script);
        status = 2;
    }
    po.transcript = tr;
    dw_sim_loop *loop = NULL;
    if (!status && dw_sim_loop_new(&loop, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        dw_sim_script_free(script);
        status = 3;
    }
    if (!status)
        status = run(r, &po, script, loop);
    dw_sim_loop_free(loop);
    dw_sim_transcript_close(tr);
    free(host);
    free(up);
    return status;
}
