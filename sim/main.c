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

#include "engine.h"
#include "memory.h"
#include "script.h"
#include "server.h"
#include "transcript.h"

/* Exit statuses (documented in --help). */
enum {
    EXIT_OK = 0,
    EXIT_CHECK = 1,  /* --check: something unmatched or a step not reached;
                      * --probe / --ask: no simulator answered */
    EXIT_USAGE = 2,  /* bad arguments or a bad script */
    EXIT_SERVER = 3, /* cannot serve (address in use, ...) */
};

static const char *prog = "devwire-sim";

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
    fprintf(f,
            "Usage: %s --script FILE [--listen HOST:PORT] [--transcript FILE] [--check]\n"
            "                   [--log-level LEVEL] [--max-connections N] [--idle-timeout MS]\n"
            "                   [--max-frame BYTES] [--max-buffered BYTES]\n"
            "       %s --validate FILE\n"
            "       %s --probe HOST:PORT [--timeout MS]\n"
            "       %s --ask HOST:PORT --script FILE [--timeout MS] REQUEST\n"
            "       %s --help | --version\n"
            "\n"
            "Serve the simulated device described by a JSON script over TCP or Telnet.\n"
            "\n"
            "  -s, --script FILE      the script to serve\n"
            "  -l, --listen HOST:PORT address to listen on (default 127.0.0.1:5025; port 0\n"
            "                         lets the system choose). \"listening on HOST:PORT\" is\n"
            "                         printed on stdout once connections are accepted.\n"
            "  -t, --transcript FILE  write one JSON object per line per event (- = stdout)\n"
            "  -c, --check            exit 1 if a request was unmatched or a step not reached\n"
            "      --log-level LEVEL  error, warn (default), info, debug or trace\n"
            "      --max-connections N  refuse clients above N at once (default 1024)\n"
            "      --idle-timeout MS  close a connection silent this long (default: never)\n"
            "      --max-frame BYTES  cap every framing of the script (reloads too) at BYTES,\n"
            "                         1 to 1073741824; a larger frame closes its connection\n"
            "      --max-buffered BYTES  bytes buffered across all connections at most\n"
            "                         (requests being read, replies being written; default\n"
            "                         268435456); a connection that would pass it is closed\n"
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
            prog, prog, prog, prog, prog);
}

static void log_fn(void *user, dw_log_level level, const char *message)
{
    (void)user;
    fprintf(stderr, "%s: %s: %s\n", prog, dw_log_level_name(level), message);
}

/* "HOST:PORT", "[V6]:PORT". Returns 0 and fills host (caller frees), or -1. */
static int parse_hostport(const char *s, char **host, uint16_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
    }
    char *endp;
    long p = strtol(colon + 1, &endp, 10);
    if (colon[1] == '\0' || *endp != '\0' || p < 0 || p > 65535 || hlen == 0)
        return -1;
    *host = strndup(h, hlen);
    *port = (uint16_t)p;
    return *host ? 0 : -1;
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
    if (parse_hostport(addr, host, port) != 0) {
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
    if (parse_hostport(addr, &host, &port) != 0) {
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
        OPT_MAXFRAME,
        OPT_MAXBUF
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
        {"max-frame", required_argument, NULL, OPT_MAXFRAME},
        {"max-buffered", required_argument, NULL, OPT_MAXBUF},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *script_path = NULL, *listen = "127.0.0.1:5025", *transcript_path = NULL;
    const char *validate = NULL, *probe = NULL, *ask = NULL;
    int check = 0, timeout_ms = 3000, idle_ms = -1, opt;
    long max_conns = 1024, max_frame = 0, max_buffered = (long)DW_SIM_MAX_BUFFERED;
    dw_logger logger = {log_fn, NULL, DW_LOG_WARN};
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
        case OPT_IDLE: {
            long v;
            if (parse_count(optarg, 1, 86400000, &v) != 0) {
                fprintf(stderr, "%s: --idle-timeout %s: expected milliseconds (1 to 86400000)\n",
                        prog, optarg);
                return EXIT_USAGE;
            }
            idle_ms = (int)v;
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

    if (validate) {
        dw_sim_script *s = load(validate);
        if (!s)
            return EXIT_USAGE;
        printf("%s: valid (%zu steps, %zu rules)\n", validate, s->nsteps, s->nrules);
        dw_sim_script_free(s);
        return EXIT_OK;
    }
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
    if (!script_path) {
        fprintf(stderr, "%s: --script FILE is required\nTry '%s --help' for more information.\n",
                prog, prog);
        return EXIT_USAGE;
    }

    char *host;
    uint16_t port;
    dw_sim_script *script = address_and_script("--listen", listen, script_path, &host, &port);
    if (!script)
        return EXIT_USAGE;
    dw_error err;
    dw_error_clear(&err);
    dw_sim_transcript *tr = NULL;
    if (transcript_path && dw_sim_transcript_open(transcript_path, &tr, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        dw_sim_script_free(script);
        free(host);
        return EXIT_USAGE;
    }

    /* Signals are taken synchronously by this thread (sigwait); every
     * thread started from here on inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    dw_sim_server_options o;
    dw_sim_server_options_init(&o);
    o.host = host;
    o.port = port;
    o.logger = &logger;
    o.transcript = tr;
    o.max_connections = (size_t)max_conns;
    o.idle_timeout_ms = idle_ms;
    o.max_frame = (size_t)max_frame;
    o.max_buffered = (size_t)max_buffered;
    dw_sim_server *srv = NULL;
    if (dw_sim_server_new(&o, script, &srv, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        dw_sim_script_free(script);
        dw_sim_transcript_close(tr);
        free(host);
        return err.code == DW_ESCRIPT || err.code == DW_EINVAL ? EXIT_USAGE : EXIT_SERVER;
    }
    free(host);
    if (dw_sim_server_start(srv, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        dw_sim_server_free(srv);
        dw_sim_transcript_close(tr);
        return EXIT_SERVER;
    }
    printf("listening on %s\n", dw_sim_server_address(srv));
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        dw_log(&logger, DW_LOG_INFO, "SIGHUP: reloading %s", script_path);
        dw_sim_script *fresh = load(script_path);
        if (!fresh) {
            dw_log(&logger, DW_LOG_ERROR, "reload %s failed; the old script keeps serving",
                   script_path);
            continue;
        }
        if (dw_sim_server_reload(srv, fresh, &err) != DW_OK) {
            dw_log(&logger, DW_LOG_ERROR, "reload %s: %s; the old script keeps serving",
                   script_path, dw_error_message(&err));
            dw_sim_script_free(fresh);
            continue;
        }
        dw_log(&logger, DW_LOG_WARN, "reloaded %s", script_path);
    }

    dw_sim_server_stop(srv);
    dw_sim_totals t;
    dw_sim_server_totals(srv, &t);
    dw_sim_server_summary(srv, stdout);
    int status = EXIT_OK;
    if (check && (t.unmatched || t.steps_not_reached)) {
        printf("check failed: %llu unmatched request(s), %zu step(s) not reached\n",
               (unsigned long long)t.unmatched, t.steps_not_reached);
        status = EXIT_CHECK;
    } else if (check) {
        printf("check passed\n");
    }
    fflush(stdout);
    dw_sim_server_free(srv);
    dw_sim_transcript_close(tr);
    return status;
}
