/* devwire-sim --record and --proxy: see proxy_serve.h. */
#include "run/proxy_serve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/loop.h"
#include "common/net.h"
#include "control/control.h"
#include "observe/transcript.h"
#include "record/proxy.h"
#include "record/record.h"
#include "run/cli.h"
#include "script/script.h"

static const char *prog = DW_SIM_PROG;

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

/* The rules (or steps) the written script holds. */
static int rules_in(const dw_buf *text)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)text->data, text->len);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "rules");
    if (!list)
        list = cJSON_GetObjectItemCaseSensitive(doc, "steps");
    int n = cJSON_GetArraySize(list);
    cJSON_Delete(doc);
    return n;
}

typedef struct conv_job {
    dw_sim_recorder *rec;
    dw_sim_conversation *cv;
    int rc;
} conv_job;

static void conv_on_loop(void *arg)
{
    conv_job *j = arg;
    j->rc = dw_sim_recorder_conversation(j->rec, j->cv);
}

/* The recording replayed against the script written for it (record.h):
 * 0 when every exchange replays as recorded (and the client's line ends
 * were the base's), else DW_SIM_EXIT_CHECK after printing the mismatches;
 * *mismatches their number. */
static int check_recording(const dw_sim_proxy_run *r, const dw_sim_conversation *cv,
                           const dw_buf *text, size_t *mismatches)
{
    dw_buf report = DW_BUF_INIT;
    int rc = dw_sim_record_check(cv, (const char *)text->data, text->len, &report, mismatches);
    dw_buf_nul_terminate(&report);
    const char *what = report.data ? (const char *)report.data : "";
    int status = 0;
    if (rc != DW_OK) {
        fprintf(stderr, "%s: --out %s: cannot replay the recording: %s\n", prog, r->out,
                rc == DW_ENOMEM ? "out of memory" : what);
        status = DW_SIM_EXIT_CHECK;
    } else if (*mismatches) {
        fprintf(stderr,
                "%s: --out %s: the recording does not replay as recorded (%zu mismatch%s):\n%s",
                prog, r->out, *mismatches, *mismatches == 1 ? "" : "es", what);
        status = DW_SIM_EXIT_CHECK;
    } else if (cv->eol_note[0]) { /* the check passes, but without the client's lines */
        fprintf(stderr,
                "%s: --out %s: the recording does not replay as recorded: the client's lines "
                "are not requests in the base script's framing (above)\n",
                prog, r->out);
        status = DW_SIM_EXIT_CHECK;
    } else {
        printf("replay check passed: %zu request%s replay as recorded\n", cv->nex,
               cv->nex == 1 ? "" : "s");
    }
    dw_buf_free(&report);
    return status;
}

/* What writing the recording gave. */
typedef struct written {
    int rules;         /* rules (or steps) in the script */
    size_t mismatches; /* exchanges that do not replay as recorded */
} written;

/* The conversation as a script, into r->out, then its replay check: 0,
 * DW_SIM_EXIT_CHECK (written, but it does not replay as recorded) or 3
 * (not written). */
static int write_recording(const dw_sim_proxy_run *r, dw_sim_recorder *rec,
                           const dw_sim_script *base, dw_sim_loop *loop, written *wr)
{
    dw_sim_conversation cv;
    conv_job j = {rec, &cv, DW_OK};
    dw_sim_loop_call(loop, conv_on_loop, &j);
    if (j.rc != DW_OK) {
        fprintf(stderr, "%s: out of memory reading the recording\n", prog);
        return 3;
    }
    if (cv.prompt_note[0])
        fprintf(stderr, "%s: --record: %s\n", prog, cv.prompt_note);
    if (cv.eol_note[0])
        fprintf(stderr, "%s: --record: %s\n", prog, cv.eol_note);
    dw_sim_record_options o = {r->as_steps, r->keep_timing, r->upstream};
    dw_buf text = DW_BUF_INIT;
    int status = dw_sim_record_write(&cv, base, &o, &text) == DW_OK ? 0 : 3;
    if (status == 0)
        status = write_file(r->out, &text) == 0 ? 0 : 3;
    if (status == 0)
        wr->rules = rules_in(&text);
    if (status == 0)
        printf("recorded %zu request%s on %zu connection%s to %s\n", cv.nex, cv.nex == 1 ? "" : "s",
               cv.connections, cv.connections == 1 ? "" : "s", r->out);
    if (status == 0)
        status = check_recording(r, &cv, &text, &wr->mismatches);
    fflush(stdout);
    dw_buf_free(&text);
    dw_sim_conversation_free(&cv);
    return status;
}

/* What POST /record/stop needs. */
typedef struct recording {
    const dw_sim_proxy_run *r;
    dw_sim_recorder *rec;
    dw_sim_script *script;
    dw_sim_proxy *p;
    dw_sim_loop *loop;
    pthread_mutex_t lock;
    int written; /* the recording was written */
    int status;  /* and what writing it gave (write_recording) */
} recording;

/* POST /record/stop: stop the proxy and write the recording (the run ends
 * once the answer was sent, record_stopped). */
static int record_stop(void *arg, cJSON **out, dw_error *err)
{
    recording *g = arg;
    pthread_mutex_lock(&g->lock);
    written wr = {0, 0};
    int status = g->status;
    if (!g->written) {
        dw_sim_proxy_stop(g->p);
        status = g->status = write_recording(g->r, g->rec, g->script, g->loop, &wr);
        g->written = status != 3;
    }
    pthread_mutex_unlock(&g->lock);
    if (status == 3)
        return dw_error_set(err, DW_EIO, "--out %s: cannot write the recording", g->r->out);
    *out = cJSON_CreateObject();
    if (!*out)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    cJSON_AddStringToObject(*out, "out", g->r->out);
    cJSON_AddNumberToObject(*out, "rules", wr.rules);
    cJSON_AddBoolToObject(*out, "replays", status == 0);
    cJSON_AddNumberToObject(*out, "mismatches", (double)wr.mismatches);
    cJSON_AddBoolToObject(*out, "stopping", 1);
    return DW_OK;
}

/* After the answer to POST /record/stop: end the run as SIGTERM does. */
static void record_stopped(void *arg)
{
    (void)arg;
    kill(getpid(), SIGTERM);
}

/* The control API over the proxy, started: DW_OK, or 3 after saying why. */
static int control_open(recording *g, dw_sim_control **out)
{
    const dw_sim_proxy_run *r = g->r;
    dw_sim_control_options co;
    dw_sim_control_options_init(&co);
    co.host = r->control_host;
    co.port = r->control_port;
    co.token = r->control_token;
    co.logger = r->logger;
    if (r->out) {
        co.record_stop = record_stop;
        co.record_stopped = record_stopped;
        co.record_arg = g;
    }
    dw_sim_control_device dev = {
        "default", NULL, -1, g->p, r->upstream, r->out ? "record" : "proxy", NULL};
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_control_new(&co, &dev, 1, out, &err) != DW_OK ||
        dw_sim_control_start(*out, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return 3;
    }
    printf("control on http://%s\n", dw_sim_control_address(*out));
    return 0;
}

/* Proxy options from the run and its script: 0, or the exit status after
 * saying why. A serial script's --upstream is a path, taken whole. */
static int options(const dw_sim_proxy_run *r, const dw_sim_script *script, dw_sim_proxy_options *po,
                   char **host, char **up)
{
    dw_sim_proxy_options_init(po);
    int serial = script->transport == DW_SIM_SERIAL;
    if (r->link && (!serial || !r->link[0])) {
        fprintf(stderr, "%s: --link %s: %s\n", prog, r->link,
                r->link[0] ? "goes with a serial script" : "expected a path");
        return 2;
    }
    if (!serial && dw_sim_parse_hostport(r->listen, host, &po->port) != 0) {
        fprintf(stderr, "%s: --listen %s: expected HOST:PORT\n", prog, r->listen);
        return 2;
    }
    if (serial) {
        po->upstream_path = r->upstream;
        po->link = r->link;
    } else if (dw_sim_parse_hostport(r->upstream, up, &po->upstream_port) != 0) {
        fprintf(stderr, "%s: --upstream %s: expected HOST:PORT\n", prog, r->upstream);
        return 2;
    }
    po->host = *host;
    po->upstream_host = *up;
    po->logger = r->logger;
    po->max_connections = r->max_connections;
    po->delayed_ack = r->delayed_ack;
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
    const char *ready = script->transport == DW_SIM_SERIAL ? "serial on" : "listening on";
    recording g = {r, rec, script, p, loop, PTHREAD_MUTEX_INITIALIZER, 0, 0};
    dw_sim_control *control = NULL;
    if (dw_sim_loop_start(loop, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        status = 3;
    } else if (!r->control_host || (status = control_open(&g, &control)) == 0) {
        printf("%s %s\n", ready, dw_sim_proxy_address(p));
        fflush(stdout);
        /* SIGHUP does nothing here; a stuck loop ends in the watchdog. */
        dw_sim_cli_stop_begin(dw_sim_cli_wait_signals(r->exit_with_stdin, NULL, NULL));
    }
    dw_sim_control_stop(control);
    dw_sim_proxy_stop(p);
    dw_sim_loop_stop(loop);
    dw_sim_cli_stop_done();
    uint64_t accepted = 0, served = 0;
    dw_sim_proxy_counts(p, &accepted, &served);
    if (status == 0)
        printf("summary: %s to %s: %llu connection%s, %llu refused\n", rec ? "recorder" : "proxy",
               r->upstream, (unsigned long long)served, served == 1 ? "" : "s",
               (unsigned long long)(accepted - served));
    if (status == 0 && rec && !g.written)
        status = write_recording(r, rec, script, loop, &(written){0, 0});
    else if (status == 0 && rec)
        status = g.status; /* written by POST /record/stop: its check's verdict */
    dw_sim_control_free(control);
    dw_sim_proxy_free(p); /* frees the script */
    dw_sim_recorder_free(rec);
    return status;
}

int dw_sim_proxy_serve(const dw_sim_proxy_run *r)
{
    char *host = NULL, *up = NULL;
    dw_sim_proxy_options po;
    dw_sim_script *script = dw_sim_cli_load(r->script);
    int status = script ? options(r, script, &po, &host, &up) : 2;
    if (status && script) {
        dw_sim_script_free(script);
        script = NULL;
    }
    dw_sim_transcript *tr = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (!status && r->transcript && dw_sim_transcript_open(r->transcript, &tr, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        dw_sim_script_free(script);
        status = 2;
    }
    if (!status)
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

/* --record and --proxy: the options that go together, or
 * DW_SIM_EXIT_USAGE after saying what is wrong. */
static int check_options(const dw_sim_cli *c, int record, int proxy)
{
    const char *mode = record ? "--record" : "--proxy";
    if (record && proxy) {
        fprintf(stderr, "%s: --record and --proxy: choose one\n", prog);
        return DW_SIM_EXIT_USAGE;
    }
    if (!c->upstream || !c->script || (record && !c->out)) {
        fprintf(stderr,
                "%s: %s needs --upstream HOST:PORT (a serial device: PATH), --script FILE%s\n",
                prog, mode, record ? " and --out FILE" : "");
        return DW_SIM_EXIT_USAGE;
    }
    if (!record && (c->out || c->as_steps || c->keep_timing)) {
        fprintf(stderr, "%s: --out, --as-steps and --keep-timing go with --record\n", prog);
        return DW_SIM_EXIT_USAGE;
    }
    return DW_SIM_EXIT_OK;
}

int dw_sim_run_proxy(const dw_sim_cli *c)
{
    dw_sim_proxy_run r = {0};
    r.script = c->script;
    r.listen = c->listen;
    r.upstream = c->upstream;
    r.link = c->link;
    r.out = c->out;
    r.as_steps = c->as_steps;
    r.keep_timing = c->keep_timing;
    r.have_seed = c->have_seed;
    r.seed = c->seed;
    r.transcript = c->transcript;
    r.logger = &c->logger;
    r.max_connections = (size_t)c->max_connections;
    r.delayed_ack = c->delayed_ack;
    r.exit_with_stdin = c->exit_with_stdin;
    char *host = NULL, *token = NULL;
    int status = dw_sim_cli_control(c, &host, &r.control_port, &token);
    r.control_host = host;
    r.control_token = token;
    /* --upstream alone proxies. */
    if (status == DW_SIM_EXIT_OK)
        status = check_options(c, c->record, c->proxy || !c->record);
    if (status == DW_SIM_EXIT_OK) {
        dw_sim_cli_block_signals();
        status = dw_sim_proxy_serve(&r);
    }
    free(host);
    free(token);
    return status;
}
