/* devwire-sim: a scriptable simulated device. See usage() below. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "engine/engine.h"
#include "observe/journal.h"
#include "common/net.h"
#include "common/memory.h"
#include "run/proxy_serve.h"
#include "script/script.h"
#include "run/serve.h"
#include "device/server.h"
#include "observe/transcript.h"

/* Exit statuses (documented in --help). */
enum {
    EXIT_OK = 0,
    EXIT_CHECK = 1,  /* --check: something unmatched or a step not reached;
                      * --probe / --ask: no simulator answered */
    EXIT_USAGE = 2,  /* bad arguments or a bad script */
    EXIT_SERVER = 3, /* cannot serve (address in use, ...) */
};

static const char *prog = "devwire-sim";

#define MAX_DEVICES 256 /* --device options; a bench file has no limit */
/* --max-buffered: at most 1 TiB. */
#define MAX_BUFFERED_LIMIT (1L << 40)

/* A whole decimal number within [lo, hi]: 0, or -1. */
static int parse_count(const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: %s --script FILE [--listen HOST:PORT] [--transcript FILE] [--check]\n"
        "                   [--log-level LEVEL] [--max-connections N] [--idle-timeout MS]\n"
        "                   [--write-timeout MS]\n"
        "                   [--max-frame BYTES] [--max-buffered BYTES]\n"
        "                   [--link PATH]\n"
        "                   [--control HOST:PORT [--control-token FILE]] [--journal N]\n"
        "                   [--seed N]\n"
        "       %s --record --upstream HOST:PORT --script BASE --out FILE [--listen HOST:PORT]\n"
        "                   [--as-steps] [--keep-timing] [--control HOST:PORT]\n"
        "       %s --proxy --upstream HOST:PORT --script FAULTS [--listen HOST:PORT]\n"
        "                   [--seed N] [--control HOST:PORT [--control-token FILE]]\n"
        "       %s --validate FILE\n"
        "       %s --probe HOST:PORT [--timeout MS]\n"
        "       %s --ask HOST:PORT --script FILE [--timeout MS] REQUEST\n"
        "       %s --help | --version\n"
        "\n"
        "Serve the simulated device described by a JSON script over TCP, Telnet, UDP\n"
        "or a serial line (a pseudo-terminal).\n"
        "\n"
        "  -s, --script FILE      the script to serve\n"
        "  -l, --listen HOST:PORT address to listen on (default 127.0.0.1:5025; port 0\n"
        "                         lets the system choose). \"listening on HOST:PORT\" is\n"
        "                         printed on stdout once connections are accepted.\n"
        "      --link PATH        a serial script: make PATH a symbolic link to the\n"
        "                         line's terminal (\"serial on /dev/pts/N\" is printed),\n"
        "                         removed at exit\n"
        "  -t, --transcript FILE  write one JSON object per line per event (- = stdout)\n"
        "  -c, --check            exit 1 if a request was unmatched or a step not reached\n"
        "      --log-level LEVEL  error, warn (default), info, debug or trace\n"
        "      --max-connections N  refuse clients above N at once (default 1024)\n"
        "      --idle-timeout MS  close a connection silent this long (default: never)\n"
        "      --write-timeout MS drop a client that takes none of its replies this long\n"
        "                         (default 10000)\n"
        "      --max-frame BYTES  cap every framing of the script (reloads too) at BYTES,\n"
        "                         1 to 1073741824; a larger frame closes its connection\n"
        "      --max-buffered BYTES  bytes buffered across all connections at most\n"
        "                         (requests being read, replies being written; default\n"
        "                         268435456); a connection that would pass it is closed\n"
        "      --control HOST:PORT  serve the HTTP control API there (port 0 lets the\n"
        "                         system choose; \"control on http://HOST:PORT\" is printed);\n"
        "                         see docs/control.md\n"
        "      --control-token FILE  every control request must carry \"Authorization:\n"
        "                         Bearer TOKEN\" (the file's first line); required to\n"
        "                         listen beyond loopback\n"
        "      --journal N        requests kept per device for the control API (default\n"
        "                         10000)\n"
        "      --record           forward clients to --upstream unchanged and write the\n"
        "                         conversation to --out as a script at the end\n"
        "      --proxy            forward clients to --upstream through the faults of\n"
        "                         the script's rules and \"network\"\n"
        "      --upstream HOST:PORT  the real device (--record, --proxy)\n"
        "      --out FILE         --record: the script to write\n"
        "      --as-steps         --record: write the conversation as steps, in order\n"
        "      --keep-timing      --record: each answer's median delay as delay_ms\n"
        "      --seed N           the seed of every random draw: faults, noise, Lua\n"
        "                         (printed when not given)\n"
        "      --validate FILE    check a script and exit (0 valid, 2 invalid)\n"
        "      --probe HOST:PORT  exit 0 if a simulator accepts a connection there\n"
        "      --ask HOST:PORT    send REQUEST with the script's transport and framing,\n"
        "                         print the reply payload\n"
        "      --timeout MS       for --probe and --ask (default 3000)\n"
        "  -h, --help             show this help\n"
        "  -V, --version          show the version\n"
        "\n"
        "Signals: SIGINT/SIGTERM stop cleanly and print the summary; SIGHUP reloads the\n"
        "script (a broken script is reported and the old one keeps serving).\n"
        "\n"
        "Exit status: 0 success; 1 --check failed, or --probe/--ask got no answer;\n"
        "2 usage error or invalid script; 3 cannot serve (e.g. address in use).\n",
        prog, prog, prog, prog, prog, prog, prog);
}

static void log_fn(void *user, dw_log_level level, const char *message)
{
    (void)user;
    fprintf(stderr, "%s: %s: %s\n", prog, dw_log_level_name(level), message);
}

static dw_sim_script *load(const char *path)
{
    dw_sim_script *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_script_load_file(path, &s, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return NULL;
    }
    return s;
}

/* Parse the HOST:PORT given to `option`, then load the script: the script
 * (with *host to free) or NULL after saying what was wrong. */
static dw_sim_script *address_and_script(const char *option, const char *addr,
                                         const char *script_path, char **host, uint16_t *port)
{
    if (dw_sim_parse_hostport(addr, host, port) != 0) {
        fprintf(stderr, "%s: %s %s: expected HOST:PORT\n", prog, option, addr);
        return NULL;
    }
    dw_sim_script *script = load(script_path);
    if (!script)
        free(*host);
    return script;
}

static int do_probe(const char *addr, int timeout_ms)
{
    char *host;
    uint16_t port;
    if (dw_sim_parse_hostport(addr, &host, &port) != 0) {
        fprintf(stderr, "%s: --probe %s: expected HOST:PORT\n", prog, addr);
        return EXIT_USAGE;
    }
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = host;
    o.port = port;
    o.connect_timeout_ms = timeout_ms;
    o.timeout_ms = timeout_ms;
    dw_client *c = dw_tcp_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    int rc = c ? dw_client_connect(c, &s, &err) : dw_error_set(&err, DW_ENOMEM, "out of memory");
    dw_session_close(s);
    dw_client_free(c);
    free(host);
    if (rc != DW_OK) {
        fprintf(stderr, "%s: probe: %s\n", prog, dw_error_message(&err));
        return EXIT_CHECK;
    }
    printf("%s: accepting connections\n", addr);
    return EXIT_OK;
}

/* What marks the end of the banner on the wire. A banner with no
 * placeholder is known byte for byte: its whole text, once. One with
 * placeholders (a state variable that may have changed since start) ends
 * with its last literal segment: wait for as many of those as its literal
 * text holds. No literal tail at all: give up on skipping (0). */
static size_t banner_end(const dw_sim_template *t, const dw_buf *rendered, const uint8_t **mark,
                         size_t *count)
{
    *count = 1;
    int fixed = 1;
    for (size_t i = 0; i < t->nsegs; i++)
        fixed &= t->segs[i].kind == DW_SIM_SEG_LITERAL;
    if (fixed) {
        *mark = rendered->data;
        return rendered->len;
    }
    const dw_sim_seg *last = t->nsegs ? &t->segs[t->nsegs - 1] : NULL;
    if (!last || last->kind != DW_SIM_SEG_LITERAL || last->literal.len == 0)
        return 0;
    *count = 0;
    for (size_t i = 0; i < t->nsegs; i++) {
        const dw_sim_bytes *lit = &t->segs[i].literal;
        for (size_t at = 0;
             t->segs[i].kind == DW_SIM_SEG_LITERAL && at + last->literal.len <= lit->len; at++)
            *count += memcmp(lit->data + at, last->literal.data, last->literal.len) == 0;
    }
    *mark = last->literal.data;
    return last->literal.len;
}

/* Read and drop the banner: everything up to and including the count-th
 * occurrence of `mark` (the sentinel framing finds it across any split). */
static int skip_banner(dw_session *s, const uint8_t *mark, size_t len, size_t count, dw_error *err)
{
    dw_marshaller *m = dw_sentinel_marshaller_new(mark, len);
    if (!m)
        return DW_ENOMEM;
    dw_buf junk = DW_BUF_INIT;
    int rc = DW_OK;
    for (size_t i = 0; i < count && rc == DW_OK; i++)
        rc = dw_unmarshall(m, dw_session_iter(s), &junk, err);
    if (rc != DW_OK)
        rc = dw_error_set(err, rc == DW_EOF ? DW_ETRUNCATED : rc, "reading the banner: %s",
                          dw_strerror(rc));
    dw_buf_free(&junk);
    dw_marshaller_free(m);
    return rc;
}

static int do_ask(const char *addr, const char *script_path, const char *request, int timeout_ms)
{
    char *host;
    uint16_t port;
    dw_sim_script *script = address_and_script("--ask", addr, script_path, &host, &port);
    if (!script)
        return EXIT_USAGE;
    dw_error err;
    dw_error_clear(&err);
    int status = EXIT_CHECK;
    dw_sim_engine *e = NULL;
    dw_sim_session *ss = NULL;
    dw_client *tc = NULL;
    dw_app_client *ac = NULL;
    dw_app_session *as = NULL;
    dw_buf banner = DW_BUF_INIT, reply = DW_BUF_INIT;
    if (script->transport == DW_SIM_UDP || script->transport == DW_SIM_SERIAL) {
        fprintf(stderr, "%s: --ask speaks TCP and Telnet; %s is a %s device\n", prog, script_path,
                script->transport == DW_SIM_UDP ? "UDP" : "serial");
        status = EXIT_USAGE;
        goto out;
    }
    int rc = dw_sim_engine_new(script, &e, &err);
    if (rc != DW_OK || !(ss = dw_sim_session_new(e)) ||
        dw_sim_engine_banner(e, ss, &banner) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        status = EXIT_USAGE;
        goto out;
    }
    const uint8_t *mark = NULL;
    size_t mark_count = 0;
    size_t mark_len = banner.len ? banner_end(&script->banner, &banner, &mark, &mark_count) : 0;
    if (script->transport == DW_SIM_TELNET) {
        dw_telnet_client_options o;
        dw_telnet_client_options_init(&o);
        o.tcp.host = host;
        o.tcp.port = port;
        o.tcp.timeout_ms = timeout_ms;
        o.tcp.connect_timeout_ms = timeout_ms;
        /* Read the banner up to its known end (its last literal text when
         * placeholders make the rest unpredictable), else until quiet. */
        if (mark_len) {
            o.banner = DW_TELNET_BANNER_PROMPT;
            o.banner_prompt = mark;
            o.banner_prompt_len = mark_len;
        } else if (banner.len) {
            o.banner = DW_TELNET_BANNER_QUIET;
        }
        tc = dw_telnet_client_new(&o);
    } else {
        dw_tcp_client_options o;
        dw_tcp_client_options_init(&o);
        o.host = host;
        o.port = port;
        o.timeout_ms = timeout_ms;
        o.connect_timeout_ms = timeout_ms;
        tc = dw_tcp_client_new(&o);
    }
    ac = tc ? dw_app_client_new(tc, dw_sim_engine_request_marshaller(e),
                                dw_sim_engine_response_marshaller(e))
            : NULL;
    if (!ac) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto out;
    }
    rc = dw_app_client_connect(ac, &as, &err);
    if (rc == DW_OK && script->transport != DW_SIM_TELNET && mark_len)
        rc = skip_banner(dw_app_session_transport(as), mark, mark_len, mark_count, &err);
    if (rc == DW_OK)
        rc = dw_app_session_send_receive_bytes(as, request, strlen(request), &reply, &err);
    if (rc != DW_OK) {
        fprintf(stderr, "%s: ask %s: %s\n", prog, addr, dw_error_message(&err));
        goto out;
    }
    fwrite(reply.data ? (const void *)reply.data : "", 1, reply.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    status = EXIT_OK;
out:
    dw_app_session_close(as);
    dw_app_client_free(ac);
    dw_client_free(tc);
    dw_sim_session_free(ss);
    dw_sim_engine_free(e);
    dw_sim_script_free(script);
    dw_buf_free(&banner);
    dw_buf_free(&reply);
    free(host);
    return status;
}

/* Whether the file holds a JSON list (a bench file) rather than an object. */
static int is_bench_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    int ch = EOF;
    while (f && (ch = getc(f)) != EOF && (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')) {
    }
    if (f)
        fclose(f);
    return ch == '[';
}

/* --validate: a script, or a bench file and every script it names. */
static int do_validate(const char *path)
{
    if (!is_bench_file(path)) {
        dw_sim_script *s = load(path);
        if (!s)
            return EXIT_USAGE;
        size_t np = dw_sim_props_count(s->props);
        printf("%s: valid (%zu steps, %zu rules", path, s->nsteps, s->nrules);
        printf(np ? ", %zu properties)\n" : ")\n", np);
        dw_sim_script_free(s);
        return EXIT_OK;
    }
    dw_sim_bench *b = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_bench_load_file(path, &b, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return EXIT_USAGE;
    }
    int status = EXIT_OK;
    for (size_t i = 0; i < b->ndevices; i++) {
        dw_sim_script *s = NULL;
        if (dw_sim_script_load_file(b->devices[i].script, &s, &err) != DW_OK) {
            fprintf(stderr, "%s: %s: %s\n", prog, b->devices[i].name, dw_error_message(&err));
            status = EXIT_USAGE;
        }
        dw_sim_script_free(s);
    }
    if (status == EXIT_OK)
        printf("%s: valid bench (%zu devices)\n", path, b->ndevices);
    dw_sim_bench_free(b);
    return status;
}

/* The strings of devs[0..n) are owned by the array. */
static void devices_free(dw_sim_device *devs, size_t n)
{
    for (size_t i = 0; devs && i < n; i++) {
        free((char *)devs[i].name);
        free((char *)devs[i].script);
        free((char *)devs[i].host);
        free((char *)devs[i].link);
    }
    free(devs);
}

/* A device with copies of its strings (name may be NULL): 0, or -1 when
 * out of memory. */
static int device_set(dw_sim_device *d, const char *name, const char *script, size_t script_len,
                      const char *host, uint16_t port, int transport)
{
    d->name = name ? strdup(name) : NULL;
    d->script = strndup(script, script_len);
    d->host = strdup(host);
    d->port = port;
    d->transport = transport;
    return (name && !d->name) || !d->script || !d->host ? -1 : 0;
}

/* "NAME=SCRIPT@HOST:PORT" into d: 0, or -1 when it is not that. */
static int parse_device(const char *arg, dw_sim_device *d)
{
    const char *eq = strchr(arg, '=');
    const char *at = strrchr(arg, '@');
    char *host = NULL, *name = NULL;
    uint16_t port;
    if (!eq || eq == arg || !at || at < eq + 2 || dw_sim_parse_hostport(at + 1, &host, &port) != 0)
        return -1;
    int rc = (name = strndup(arg, (size_t)(eq - arg))) ? 0 : -1;
    if (rc == 0)
        rc = device_set(d, name, eq + 1, (size_t)(at - eq - 1), host, port, -1);
    free(name);
    free(host);
    return rc;
}

/* The devices to serve: --script (unnamed when alone), each --device, each
 * device of --bench. EXIT_OK, or EXIT_USAGE after saying what is wrong. */
static int collect_devices(const char *script_path, const char *listen, const char *link_path,
                           const char **device_args, size_t ndevice_args, const char *bench_path,
                           dw_sim_device **devs, size_t *n)
{
    dw_sim_bench *bench = NULL;
    int status = EXIT_OK;
    dw_error err;
    dw_error_clear(&err);
    if (bench_path && dw_sim_bench_load_file(bench_path, &bench, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return EXIT_USAGE;
    }
    size_t total = (script_path ? 1 : 0) + ndevice_args + (bench ? bench->ndevices : 0);
    if (!(*devs = calloc(total, sizeof **devs)))
        status = EXIT_SERVER;
    char *host = NULL;
    uint16_t port = 0;
    if (status == EXIT_OK && script_path && dw_sim_parse_hostport(listen, &host, &port) != 0) {
        fprintf(stderr, "%s: --listen %s: expected HOST:PORT\n", prog, listen);
        status = EXIT_USAGE;
    }
    if (status == EXIT_OK && script_path &&
        device_set(&(*devs)[(*n)++], total > 1 ? "main" : NULL, script_path, strlen(script_path),
                   host, port, -1) != 0)
        status = EXIT_SERVER;
    if (status == EXIT_OK && script_path && link_path && !((*devs)[0].link = strdup(link_path)))
        status = EXIT_SERVER;
    free(host);
    for (size_t i = 0; status == EXIT_OK && i < ndevice_args; i++) {
        if (parse_device(device_args[i], &(*devs)[(*n)++]) != 0) {
            fprintf(stderr, "%s: --device %s: expected NAME=SCRIPT@HOST:PORT\n", prog,
                    device_args[i]);
            status = EXIT_USAGE;
        }
    }
    for (size_t i = 0; status == EXIT_OK && bench && i < bench->ndevices; i++) {
        const dw_sim_device_spec *b = &bench->devices[i];
        if (device_set(&(*devs)[(*n)++], b->name, b->script, strlen(b->script), b->host, b->port,
                       b->transport) != 0 ||
            (b->link && !((*devs)[*n - 1].link = strdup(b->link))))
            status = EXIT_SERVER;
        (*devs)[*n - 1].baud = b->baud;
    }
    dw_sim_bench_free(bench);
    for (size_t i = 0; status == EXIT_OK && i < *n; i++)
        for (size_t j = 0; (*devs)[i].name && j < i && status == EXIT_OK; j++)
            if ((*devs)[j].name && strcmp((*devs)[i].name, (*devs)[j].name) == 0) {
                fprintf(stderr, "%s: two devices are named \"%s\"\n", prog, (*devs)[i].name);
                status = EXIT_USAGE;
            }
    return status;
}

/* The bearer token: the file's first line, without its line end. NULL
 * after saying why not. */
static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "%s: --control-token %s: %s\n", prog, path,
                f ? "the file is empty" : strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) {
        fprintf(stderr, "%s: --control-token %s: the first line is empty\n", prog, path);
        return NULL;
    }
    char *t = strdup(line);
    if (!t)
        fprintf(stderr, "%s: out of memory\n", prog);
    return t;
}

/* --control and --control-token into the serve options. */
static int control_setup(const char *control, const char *token_path, dw_sim_serve_options *so,
                         char **host, char **token)
{
    if (token_path && !control) {
        fprintf(stderr, "%s: --control-token goes with --control\n", prog);
        return EXIT_USAGE;
    }
    if (!control)
        return EXIT_OK;
    if (dw_sim_parse_hostport(control, host, &so->control_port) != 0) {
        fprintf(stderr, "%s: --control %s: expected HOST:PORT\n", prog, control);
        return EXIT_USAGE;
    }
    so->control_host = *host;
    if (token_path && !(*token = read_token(token_path)))
        return EXIT_USAGE;
    so->control_token = *token;
    return EXIT_OK;
}

/* Signals are taken synchronously by this thread (sigwait); every thread
 * started from here on inherits the mask. */
static void block_signals(void)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* --record and --proxy: check the options that go together, then serve. */
static int do_proxy(dw_sim_proxy_run *r, int record, int proxy)
{
    const char *mode = record ? "--record" : "--proxy";
    if (record && proxy) {
        fprintf(stderr, "%s: --record and --proxy: choose one\n", prog);
        return EXIT_USAGE;
    }
    if (!r->upstream || !r->script || (record && !r->out)) {
        fprintf(stderr, "%s: %s needs --upstream HOST:PORT, --script FILE%s\n", prog, mode,
                record ? " and --out FILE" : "");
        return EXIT_USAGE;
    }
    if (!record && (r->out || r->as_steps || r->keep_timing)) {
        fprintf(stderr, "%s: --out, --as-steps and --keep-timing go with --record\n", prog);
        return EXIT_USAGE;
    }
    block_signals();
    return dw_sim_proxy_serve(r);
}

/* Open the transcript, take the signals, serve. */
static int serve(const dw_sim_device *devs, size_t n, const char *transcript_path,
                 dw_sim_serve_options *so)
{
    dw_error err;
    dw_error_clear(&err);
    if (transcript_path &&
        dw_sim_transcript_open(transcript_path, &so->transcript, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return EXIT_USAGE;
    }
    block_signals();
    int status = dw_sim_serve(devs, n, so);
    dw_sim_transcript_close(so->transcript);
    return status;
}

int main(int argc, char **argv)
{
    enum {
        OPT_LOG = 256,
        OPT_VALIDATE,
        OPT_PROBE,
        OPT_ASK,
        OPT_TIMEOUT,
        OPT_MAXCONN,
        OPT_IDLE,
        OPT_WRITE_TIMEOUT,
        OPT_DEVICE,
        OPT_BENCH,
        OPT_MAXFRAME,
        OPT_MAXBUF,
        OPT_LINK,
        OPT_CONTROL,
        OPT_CONTROL_TOKEN,
        OPT_JOURNAL,
        OPT_RECORD,
        OPT_PROXY,
        OPT_UPSTREAM,
        OPT_OUT,
        OPT_AS_STEPS,
        OPT_KEEP_TIMING,
        OPT_SEED
    };
    static const struct option longopts[] = {
        {"script", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"transcript", required_argument, NULL, 't'},
        {"check", no_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"validate", required_argument, NULL, OPT_VALIDATE},
        {"probe", required_argument, NULL, OPT_PROBE},
        {"ask", required_argument, NULL, OPT_ASK},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-connections", required_argument, NULL, OPT_MAXCONN},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"write-timeout", required_argument, NULL, OPT_WRITE_TIMEOUT},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"bench", required_argument, NULL, OPT_BENCH},
        {"max-frame", required_argument, NULL, OPT_MAXFRAME},
        {"max-buffered", required_argument, NULL, OPT_MAXBUF},
        {"link", required_argument, NULL, OPT_LINK},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"control-token", required_argument, NULL, OPT_CONTROL_TOKEN},
        {"journal", required_argument, NULL, OPT_JOURNAL},
        {"record", no_argument, NULL, OPT_RECORD},
        {"proxy", no_argument, NULL, OPT_PROXY},
        {"upstream", required_argument, NULL, OPT_UPSTREAM},
        {"out", required_argument, NULL, OPT_OUT},
        {"as-steps", no_argument, NULL, OPT_AS_STEPS},
        {"keep-timing", no_argument, NULL, OPT_KEEP_TIMING},
        {"seed", required_argument, NULL, OPT_SEED},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *script_path = NULL, *listen = "127.0.0.1:5025", *transcript_path = NULL;
    const char *link_path = NULL, *control = NULL, *token_path = NULL;
    long journal = 0;
    const char *validate = NULL, *probe = NULL, *ask = NULL, *bench_path = NULL;
    const char *device_args[MAX_DEVICES];
    size_t ndevices = 0;
    int check = 0, timeout_ms = 3000, idle_ms = -1, write_ms = 10000, opt;
    long max_conns = 1024, max_frame = 0, max_buffered = (long)DW_SIM_MAX_BUFFERED;
    dw_logger logger = {log_fn, NULL, DW_LOG_WARN};
    dw_sim_proxy_run pr = {0};
    int record = 0, proxy = 0;
    dw_sim_memory_init();

    while ((opt = getopt_long(argc, argv, "s:l:t:chV", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            script_path = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 't':
            transcript_path = optarg;
            break;
        case 'c':
            check = 1;
            break;
        case OPT_LOG:
            if (dw_log_level_parse(optarg, &logger.level) != 0) {
                fprintf(stderr, "%s: --log-level %s: expected error, warn, info, debug or trace\n",
                        prog, optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_VALIDATE:
            validate = optarg;
            break;
        case OPT_PROBE:
            probe = optarg;
            break;
        case OPT_ASK:
            ask = optarg;
            break;
        case OPT_TIMEOUT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || v > 3600000) {
                fprintf(stderr, "%s: --timeout %s: expected milliseconds\n", prog, optarg);
                return EXIT_USAGE;
            }
            timeout_ms = (int)v;
            break;
        }
        case OPT_MAXCONN:
            if (parse_count(optarg, 1, 1000000, &max_conns) != 0) {
                fprintf(stderr, "%s: --max-connections %s: expected a number from 1 to 1000000\n",
                        prog, optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_IDLE:
        case OPT_WRITE_TIMEOUT: {
            long v;
            const char *name = opt == OPT_IDLE ? "--idle-timeout" : "--write-timeout";
            if (parse_count(optarg, 1, 86400000, &v) != 0) {
                fprintf(stderr, "%s: %s %s: expected milliseconds (1 to 86400000)\n", prog, name,
                        optarg);
                return EXIT_USAGE;
            }
            *(opt == OPT_IDLE ? &idle_ms : &write_ms) = (int)v;
            break;
        }
        case OPT_DEVICE:
            if (ndevices == MAX_DEVICES) {
                fprintf(stderr, "%s: at most %d --device options (use --bench)\n", prog,
                        MAX_DEVICES);
                return EXIT_USAGE;
            }
            device_args[ndevices++] = optarg;
            break;
        case OPT_BENCH:
            bench_path = optarg;
            break;
        case OPT_LINK:
            link_path = optarg;
            break;
        case OPT_CONTROL:
            control = optarg;
            break;
        case OPT_CONTROL_TOKEN:
            token_path = optarg;
            break;
        case OPT_JOURNAL:
            if (parse_count(optarg, 1, DW_SIM_JOURNAL_MAX, &journal) != 0) {
                fprintf(stderr, "%s: --journal %s: expected a number from 1 to %d\n", prog, optarg,
                        DW_SIM_JOURNAL_MAX);
                return EXIT_USAGE;
            }
            break;
        case OPT_RECORD:
            record = 1;
            break;
        case OPT_PROXY:
            proxy = 1;
            break;
        case OPT_UPSTREAM:
            pr.upstream = optarg;
            break;
        case OPT_OUT:
            pr.out = optarg;
            break;
        case OPT_AS_STEPS:
            pr.as_steps = 1;
            break;
        case OPT_KEEP_TIMING:
            pr.keep_timing = 1;
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "%s: --seed %s: expected a number from 0 to %llu\n", prog, optarg,
                        (unsigned long long)UINT64_MAX);
                return EXIT_USAGE;
            }
            pr.seed = v;
            pr.have_seed = 1;
            break;
        }
        case OPT_MAXFRAME:
            if (parse_count(optarg, 1, (long)DW_SIM_MAX_FRAME_LIMIT, &max_frame) != 0) {
                fprintf(stderr, "%s: --max-frame %s: expected bytes from 1 to %zu\n", prog, optarg,
                        DW_SIM_MAX_FRAME_LIMIT);
                return EXIT_USAGE;
            }
            break;
        case OPT_MAXBUF:
            if (parse_count(optarg, 1, MAX_BUFFERED_LIMIT, &max_buffered) != 0) {
                fprintf(stderr, "%s: --max-buffered %s: expected bytes from 1 to %ld\n", prog,
                        optarg, MAX_BUFFERED_LIMIT);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("%s %s (libdevwire %s)\n", prog, DW_VERSION, dw_version());
            return EXIT_OK;
        default:
            fprintf(stderr, "Try '%s --help' for more information.\n", prog);
            return EXIT_USAGE;
        }
    }

    if (validate)
        return do_validate(validate);
    if (probe)
        return do_probe(probe, timeout_ms);
    if (ask) {
        if (!script_path || optind != argc - 1) {
            fprintf(stderr, "%s: --ask needs --script FILE and one REQUEST\n", prog);
            return EXIT_USAGE;
        }
        return do_ask(ask, script_path, argv[optind], timeout_ms);
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        return EXIT_USAGE;
    }
    if (record || proxy || pr.upstream) {
        pr.script = script_path;
        pr.listen = listen;
        pr.transcript = transcript_path;
        pr.logger = &logger;
        pr.max_connections = (size_t)max_conns;
        dw_sim_serve_options co = {0};
        char *chost = NULL, *ctoken = NULL;
        int st = control_setup(control, token_path, &co, &chost, &ctoken);
        pr.control_host = co.control_host;
        pr.control_port = co.control_port;
        pr.control_token = co.control_token;
        if (st == EXIT_OK)
            st = do_proxy(&pr, record, proxy || !record);
        free(chost);
        free(ctoken);
        return st;
    }
    if (link_path && (!script_path || !link_path[0])) {
        fprintf(stderr, "%s: --link %s: %s\n", prog, link_path,
                link_path[0] ? "goes with --script (in a bench file, write \"link\")"
                             : "expected a path");
        return EXIT_USAGE;
    }
    if (!script_path && ndevices == 0 && !bench_path) {
        fprintf(stderr,
                "%s: --script FILE, --device or --bench is required\n"
                "Try '%s --help' for more information.\n",
                prog, prog);
        return EXIT_USAGE;
    }
    dw_sim_serve_options so = {&logger,
                               NULL,
                               (size_t)max_conns,
                               idle_ms,
                               write_ms,
                               (size_t)max_frame,
                               (size_t)max_buffered,
                               check,
                               NULL,
                               0,
                               NULL,
                               (size_t)journal,
                               pr.seed,
                               pr.have_seed};
    char *control_host = NULL, *token = NULL;
    int status = control_setup(control, token_path, &so, &control_host, &token);
    dw_sim_device *devs = NULL;
    size_t ndevs = 0;
    if (status == EXIT_OK)
        status = collect_devices(script_path, listen, link_path, device_args, ndevices, bench_path,
                                 &devs, &ndevs);
    if (status == EXIT_OK)
        status = serve(devs, ndevs, transcript_path, &so);
    devices_free(devs, ndevs);
    free(control_host);
    free(token);
    return status;
}
