/* devwire-sim's command line and what every mode shares: see cli.h. */
#include "run/cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/net.h"
#include "device/server.h"
#include "observe/journal.h"

static const char *prog = DW_SIM_PROG;

/* --max-buffered: at most 1 TiB. */
#define MAX_BUFFERED_LIMIT (1L << 40)

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
    OPT_SEED,
    OPT_LUA_DEADLINE,
    OPT_LOOPS,
    OPT_DELAYED_ACK,
    OPT_EXIT_WITH_STDIN,
    OPT_PORTMAPPER,
    OPT_ABORT_PORT
};

/* Its order is getopt's when it names the candidates of an ambiguous
 * abbreviation. Every entry has its lines in usage_options, and usage names
 * no other option (tests/test_sim.c checks both). */
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
    {"lua-deadline", required_argument, NULL, OPT_LUA_DEADLINE},
    {"loops", required_argument, NULL, OPT_LOOPS},
    {"delayed-ack", no_argument, NULL, OPT_DELAYED_ACK},
    {"exit-with-stdin", no_argument, NULL, OPT_EXIT_WITH_STDIN},
    {"portmapper", required_argument, NULL, OPT_PORTMAPPER},
    {"abort-port", required_argument, NULL, OPT_ABORT_PORT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

const struct option *dw_sim_cli_options(size_t *n)
{
    *n = sizeof longopts / sizeof longopts[0] - 1;
    return longopts;
}

static void usage_synopsis(FILE *f)
{
    fprintf(
        f,
        "Usage: %s --script FILE [--listen HOST:PORT] [--transcript FILE] [--check]\n"
        "                   [--log-level LEVEL] [--max-connections N] [--idle-timeout MS]\n"
        "                   [--write-timeout MS]\n"
        "                   [--max-frame BYTES] [--max-buffered BYTES]\n"
        "                   [--link PATH]\n"
        "                   [--control HOST:PORT [--control-token FILE]] [--journal N]\n"
        "                   [--seed N] [--lua-deadline MS] [--loops N] [--delayed-ack]\n"
        "                   [--exit-with-stdin]\n"
        "                   [--portmapper PORT|none] [--abort-port PORT]\n"
        "       %s [--device NAME=SCRIPT@HOST:PORT]... [--bench FILE]\n"
        "                   [--script FILE] [options as above]\n"
        "       %s --record --upstream HOST:PORT --script BASE --out FILE [--listen HOST:PORT]\n"
        "                   [--as-steps] [--keep-timing] [--control HOST:PORT]\n"
        "       %s --proxy --upstream HOST:PORT|PATH --script FAULTS [--listen HOST:PORT]\n"
        "                   [--seed N] [--link PATH] [--control HOST:PORT [--control-token FILE]]\n"
        "       %s --validate FILE\n"
        "       %s --probe HOST:PORT [--timeout MS]\n"
        "       %s --ask HOST:PORT --script FILE [--timeout MS] REQUEST\n"
        "       %s --help | --version\n"
        "\n"
        "Serve the simulated device described by a JSON script over TCP, Telnet, UDP\n"
        "or a serial line (a pseudo-terminal).\n"
        "\n",
        prog, prog, prog, prog, prog, prog, prog, prog);
}

static void usage_options(FILE *f)
{
    fputs("  -s, --script FILE      the script to serve\n"
          "      --device NAME=SCRIPT@HOST:PORT\n"
          "                         serve SCRIPT as device NAME on HOST:PORT, next to the\n"
          "                         others; repeatable\n"
          "      --bench FILE       serve every device listed in FILE, a bench file (a JSON\n"
          "                         list of each device's name, script and address)\n"
          "  -l, --listen HOST:PORT address to listen on (default 127.0.0.1:5025; port 0\n"
          "                         lets the system choose). \"listening on HOST:PORT\" is\n"
          "                         printed on stdout once connections are accepted.\n"
          "      --link PATH        a serial script: make PATH a symbolic link to the\n"
          "                         line's terminal (\"serial on /dev/pts/N\" is printed),\n"
          "                         removed at exit; a serial --proxy: to the proxy's\n"
          "                         terminal\n"
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
          "                         without a token HOST must resolve to loopback addresses\n"
          "                         only, and requests a web page could send (another Host\n"
          "                         or Origin) are refused; see docs/control.md\n"
          "      --control-token FILE  every control request must carry \"Authorization:\n"
          "                         Bearer TOKEN\" (the file's first line); required to\n"
          "                         listen beyond loopback; a token in the URL is refused\n"
          "      --journal N        requests kept per device for the control API (default\n"
          "                         10000); a verify over a journal that dropped some\n"
          "                         fails: size it for a test's requests and more\n",
          f);
    fputs("      --record           forward clients to --upstream unchanged and write the\n"
          "                         conversation to --out as a script at the end\n"
          "      --proxy            forward clients to --upstream through the faults of\n"
          "                         the script's rules and \"network\"\n"
          "      --upstream HOST:PORT  the real device (--record, --proxy); with a serial\n"
          "                         faults script, PATH: the device's terminal (/dev/pts/N,\n"
          "                         a device's --link, /dev/ttyUSB0)\n"
          "      --out FILE         --record: the script to write\n"
          "      --as-steps         --record: write the conversation as steps, in order\n"
          "      --keep-timing      --record: each answer's median delay as delay_ms\n"
          "      --seed N           the seed of every random draw: faults, noise, Lua\n"
          "                         (printed when not given)\n"
          "      --lua-deadline MS  the wall-clock time one evaluation of a script's Lua\n"
          "                         may take before it fails (default 10)\n"
          "      --loops N          event loop threads the devices are spread over, each\n"
          "                         device on one for its whole life (default: one per CPU\n"
          "                         the process may use, at most one per device)\n"
          "      --delayed-ack      TCP and Telnet: leave ACKs to the kernel's delayed ACKs\n"
          "                         (by default what each read got is acknowledged at once,\n"
          "                         so a client with Nagle on sends a query after a command\n"
          "                         without waiting ~40 ms); a script's \"tcp\" wins\n"
          "      --exit-with-stdin  stdin is a pipe its parent holds: when it ends (the\n"
          "                         parent exited or was killed) stop as on SIGTERM\n"
          "      --portmapper PORT|none  VXI-11 devices: answer the portmapper on PORT of\n"
          "                         each device's host (default 111: needs root or\n"
          "                         CAP_NET_BIND_SERVICE; registers with rpcbind instead when\n"
          "                         one holds 111; 0 lets the system choose; none: no\n"
          "                         portmapper)\n"
          "      --abort-port PORT  VXI-11 devices: the abort channel's port on each\n"
          "                         device's host (default 0: the system chooses; fix it\n"
          "                         to publish it from a container)\n"
          "      --validate FILE    check a script and exit (0 valid, 2 invalid)\n"
          "      --probe HOST:PORT  exit 0 if a simulator accepts a connection there\n"
          "      --ask HOST:PORT    send REQUEST with the script's transport and framing,\n"
          "                         print the reply payload\n"
          "      --timeout MS       for --probe and --ask (default 3000)\n"
          "  -h, --help             show this help\n"
          "  -V, --version          show the version\n"
          "\n",
          f);
}

void dw_sim_cli_usage(FILE *f)
{
    usage_synopsis(f);
    usage_options(f);
    fputs("Signals: SIGINT/SIGTERM stop cleanly and print the summary; SIGHUP reloads the\n"
          "script (a broken script is reported and the old one keeps serving).\n"
          "\n"
          "Exit status: 0 success; 1 --check failed, or --probe/--ask got no answer;\n"
          "2 usage error or invalid script; 3 cannot serve (e.g. address in use);\n"
          "4 the stop after SIGINT/SIGTERM took over 1 s (a device busy) or was signalled\n"
          "again: exited without the summary.\n",
          f);
}

void dw_sim_cli_version(FILE *f)
{
    fprintf(f, "%s %s (libdevwire %s)\n", prog, DW_VERSION, dw_version());
}

static void log_fn(void *user, dw_log_level level, const char *message)
{
    (void)user;
    fprintf(stderr, "%s: %s: %s\n", prog, dw_log_level_name(level), message);
}

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

/* --timeout and --seed: 0, or -1 after saying what is wrong. */
static int take_time_or_seed(int opt, const char *arg, dw_sim_cli *c)
{
    char *end;
    if (opt == OPT_TIMEOUT) {
        long v = strtol(arg, &end, 10);
        if (*end || v <= 0 || v > 3600000) {
            fprintf(stderr, "%s: --timeout %s: expected milliseconds\n", prog, arg);
            return -1;
        }
        c->timeout_ms = (int)v;
        return 0;
    }
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-') {
        fprintf(stderr, "%s: --seed %s: expected a number from 0 to %llu\n", prog, arg,
                (unsigned long long)UINT64_MAX);
        return -1;
    }
    c->seed = v;
    c->have_seed = 1;
    return 0;
}

/* An option with a number (or a level): 0, or -1 after saying what is
 * wrong. Anything else is an option getopt did not know. */
static int take_number(int opt, const char *arg, dw_sim_cli *c)
{
    long v;
    switch (opt) {
    case OPT_LOG:
        if (dw_log_level_parse(arg, &c->logger.level) == 0)
            return 0;
        fprintf(stderr, "%s: --log-level %s: expected error, warn, info, debug or trace\n", prog,
                arg);
        return -1;
    case OPT_TIMEOUT:
    case OPT_SEED:
        return take_time_or_seed(opt, arg, c);
    case OPT_MAXCONN:
        if (parse_count(arg, 1, 1000000, &c->max_connections) == 0)
            return 0;
        fprintf(stderr, "%s: --max-connections %s: expected a number from 1 to 1000000\n", prog,
                arg);
        return -1;
    case OPT_IDLE:
    case OPT_WRITE_TIMEOUT:
        if (parse_count(arg, 1, 86400000, &v) != 0) {
            fprintf(stderr, "%s: %s %s: expected milliseconds (1 to 86400000)\n", prog,
                    opt == OPT_IDLE ? "--idle-timeout" : "--write-timeout", arg);
            return -1;
        }
        *(opt == OPT_IDLE ? &c->idle_ms : &c->write_ms) = (int)v;
        return 0;
    case OPT_LUA_DEADLINE:
        if (parse_count(arg, 1, 3600000, &c->lua_deadline_ms) == 0)
            return 0;
        fprintf(stderr, "%s: --lua-deadline %s: expected milliseconds (1 to 3600000)\n", prog, arg);
        return -1;
    case OPT_LOOPS:
        if (parse_count(arg, 1, DW_SIM_MAX_LOOPS, &c->loops) == 0)
            return 0;
        fprintf(stderr, "%s: --loops %s: expected a number from 1 to %d\n", prog, arg,
                DW_SIM_MAX_LOOPS);
        return -1;
    case OPT_PORTMAPPER:
        if (strcmp(arg, "none") == 0) {
            c->portmapper = -1;
            return 0;
        }
        if (parse_count(arg, 0, 65535, &v) == 0) {
            c->portmapper = (int)v;
            return 0;
        }
        fprintf(stderr, "%s: --portmapper %s: expected a port (0 to 65535) or none\n", prog, arg);
        return -1;
    case OPT_ABORT_PORT:
        if (parse_count(arg, 0, 65535, &v) == 0) {
            c->abort_port = (int)v;
            return 0;
        }
        fprintf(stderr, "%s: --abort-port %s: expected a port (0 to 65535)\n", prog, arg);
        return -1;
    case OPT_JOURNAL:
        if (parse_count(arg, 1, DW_SIM_JOURNAL_MAX, &c->journal) == 0)
            return 0;
        fprintf(stderr, "%s: --journal %s: expected a number from 1 to %d\n", prog, arg,
                DW_SIM_JOURNAL_MAX);
        return -1;
    case OPT_MAXFRAME:
        if (parse_count(arg, 1, (long)DW_SIM_MAX_FRAME_LIMIT, &c->max_frame) == 0)
            return 0;
        fprintf(stderr, "%s: --max-frame %s: expected bytes from 1 to %zu\n", prog, arg,
                DW_SIM_MAX_FRAME_LIMIT);
        return -1;
    case OPT_MAXBUF:
        if (parse_count(arg, 1, MAX_BUFFERED_LIMIT, &c->max_buffered) == 0)
            return 0;
        fprintf(stderr, "%s: --max-buffered %s: expected bytes from 1 to %ld\n", prog, arg,
                MAX_BUFFERED_LIMIT);
        return -1;
    default:
        fprintf(stderr, "Try '%s --help' for more information.\n", prog);
        return -1;
    }
}

/* The address of the string option opt stores in c, or NULL. */
static const char **string_of(int opt, dw_sim_cli *c)
{
    switch (opt) {
    case 's':
        return &c->script;
    case 'l':
        return &c->listen;
    case 't':
        return &c->transcript;
    case OPT_VALIDATE:
        return &c->validate;
    case OPT_PROBE:
        return &c->probe;
    case OPT_ASK:
        return &c->ask;
    case OPT_BENCH:
        return &c->bench;
    case OPT_LINK:
        return &c->link;
    case OPT_CONTROL:
        return &c->control;
    case OPT_CONTROL_TOKEN:
        return &c->control_token;
    case OPT_UPSTREAM:
        return &c->upstream;
    case OPT_OUT:
        return &c->out;
    default:
        return NULL;
    }
}

/* The flag option opt sets in c, or NULL. */
static int *flag_of(int opt, dw_sim_cli *c)
{
    switch (opt) {
    case 'c':
        return &c->check;
    case OPT_RECORD:
        return &c->record;
    case OPT_PROXY:
        return &c->proxy;
    case OPT_AS_STEPS:
        return &c->as_steps;
    case OPT_KEEP_TIMING:
        return &c->keep_timing;
    case OPT_DELAYED_ACK:
        return &c->delayed_ack;
    case OPT_EXIT_WITH_STDIN:
        return &c->exit_with_stdin;
    default:
        return NULL;
    }
}

/* One option other than --help and --version: 0, or -1 after saying what
 * is wrong. The last of an option given twice counts. */
static int take(int opt, const char *arg, dw_sim_cli *c)
{
    const char **s = string_of(opt, c);
    int *flag = flag_of(opt, c);
    if (s)
        *s = arg;
    else if (flag)
        *flag = 1;
    else if (opt != OPT_DEVICE)
        return take_number(opt, arg, c);
    else if (c->ndevices == DW_SIM_MAX_DEVICES) {
        fprintf(stderr, "%s: at most %d --device options (use --bench)\n", prog,
                DW_SIM_MAX_DEVICES);
        return -1;
    } else
        c->devices[c->ndevices++] = arg;
    return 0;
}

/* The mode the options ask for, once all are read; the operands
 * (argv[optind..argc)) only --ask takes. */
static dw_sim_mode mode_of(dw_sim_cli *c, int argc, char **argv)
{
    if (c->validate)
        return DW_SIM_MODE_VALIDATE;
    if (c->probe)
        return DW_SIM_MODE_PROBE;
    if (c->ask) {
        if (!c->script || optind != argc - 1) {
            fprintf(stderr, "%s: --ask needs --script FILE and one REQUEST\n", prog);
            return DW_SIM_MODE_USAGE_ERROR;
        }
        c->request = argv[optind];
        return DW_SIM_MODE_ASK;
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        return DW_SIM_MODE_USAGE_ERROR;
    }
    if (c->record || c->proxy || c->upstream)
        return DW_SIM_MODE_PROXY;
    return DW_SIM_MODE_SERVE;
}

/* --exit-with-stdin goes with serving, and stdin must be something that
 * ends when its writer does: a pipe, a socket or a terminal (a file or
 * /dev/null would end at once). 0, or -1 after saying what is wrong. */
static int check_exit_with_stdin(const dw_sim_cli *c, dw_sim_mode mode)
{
    struct stat st;
    if (!c->exit_with_stdin)
        return 0;
    if (mode != DW_SIM_MODE_SERVE && mode != DW_SIM_MODE_PROXY) {
        fprintf(stderr, "%s: --exit-with-stdin goes with serving or --proxy/--record\n", prog);
        return -1;
    }
    if (fstat(STDIN_FILENO, &st) != 0 ||
        !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO))) {
        fprintf(stderr, "%s: --exit-with-stdin: stdin is not a pipe, a socket or a terminal\n",
                prog);
        return -1;
    }
    return 0;
}

dw_sim_mode dw_sim_cli_parse(int argc, char **argv, dw_sim_cli *c)
{
    memset(c, 0, sizeof *c);
    c->listen = "127.0.0.1:5025";
    c->timeout_ms = 3000;
    c->idle_ms = -1;
    c->write_ms = 10000;
    c->max_connections = 1024;
    c->max_buffered = (long)DW_SIM_MAX_BUFFERED;
    c->portmapper = 111;
    c->logger = (dw_logger){log_fn, NULL, DW_LOG_WARN};
    int opt;
    while ((opt = getopt_long(argc, argv, "s:l:t:chV", longopts, NULL)) != -1) {
        if (opt == 'h')
            return DW_SIM_MODE_HELP;
        if (opt == 'V')
            return DW_SIM_MODE_VERSION;
        if (take(opt, optarg, c) != 0)
            return DW_SIM_MODE_USAGE_ERROR;
    }
    dw_sim_mode mode = mode_of(c, argc, argv);
    if (mode != DW_SIM_MODE_USAGE_ERROR && check_exit_with_stdin(c, mode) != 0)
        return DW_SIM_MODE_USAGE_ERROR;
    return mode;
}

dw_sim_script *dw_sim_cli_load(const char *path)
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

/* The bearer token: the file's first line, whatever its length, without
 * its line end. NULL after saying why not. */
static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    if (!f || getline(&line, &cap, f) < 0) {
        fprintf(stderr, "%s: --control-token %s: %s\n", prog, path,
                f ? "the file is empty" : strerror(errno));
        if (f)
            fclose(f);
        free(line);
        return NULL;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) {
        fprintf(stderr, "%s: --control-token %s: the first line is empty\n", prog, path);
        free(line);
        return NULL;
    }
    return line;
}

int dw_sim_cli_control(const dw_sim_cli *c, char **host, uint16_t *port, char **token)
{
    *host = *token = NULL;
    *port = 0;
    if (c->control_token && !c->control) {
        fprintf(stderr, "%s: --control-token goes with --control\n", prog);
        return DW_SIM_EXIT_USAGE;
    }
    if (!c->control)
        return DW_SIM_EXIT_OK;
    if (dw_sim_parse_hostport(c->control, host, port) != 0) {
        fprintf(stderr, "%s: --control %s: expected HOST:PORT\n", prog, c->control);
        return DW_SIM_EXIT_USAGE;
    }
    if (c->control_token && !(*token = read_token(c->control_token)))
        return DW_SIM_EXIT_USAGE;
    return DW_SIM_EXIT_OK;
}

/* The signals a run waits for. */
static void stop_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGHUP);
}

void dw_sim_cli_block_signals(void)
{
    sigset_t sigs;
    stop_signals(&sigs);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The parent holding stdin's other end is gone: say so once. */
static void parent_gone(void)
{
    static const char msg[] = DW_SIM_PROG ": stdin ended (--exit-with-stdin): stopping\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w; /* stderr may be gone with the parent */
}

/* The next signal of sfd (a signalfd of the stop signals), or SIGTERM when
 * stdin ends; what stdin carries meanwhile is dropped. 0: nothing yet. */
static int next_signal_or_eof(int sfd)
{
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0)
        return 0; /* EINTR: signals are blocked, but a debugger's stop is not */
    if (fds[0].revents & POLLIN) {
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
            return (int)si.ssi_signo;
    }
    if (fds[1].revents) {
        char drop[512];
        ssize_t r = read(STDIN_FILENO, drop, sizeof drop);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
            parent_gone();
            return SIGTERM;
        }
    }
    return 0;
}

int dw_sim_cli_wait_signals(int exit_with_stdin, void (*on_hup)(void *arg), void *arg)
{
    sigset_t sigs;
    stop_signals(&sigs);
    /* Watching stdin too: the signals come through a descriptor polled with
     * it, on this thread, so the device loop never sees either. Should that
     * descriptor not be had, the signals are still waited for. */
    int sfd = exit_with_stdin ? signalfd(-1, &sigs, SFD_CLOEXEC) : -1;
    if (exit_with_stdin && sfd < 0)
        fprintf(stderr, "%s: --exit-with-stdin: signalfd: %s: stdin is not watched\n", prog,
                strerror(errno));
    for (;;) {
        int sig = 0;
        if (sfd >= 0)
            sig = next_signal_or_eof(sfd);
        else if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == 0)
            continue;
        if (sig != SIGHUP) {
            if (sfd >= 0)
                close(sfd);
            return sig;
        }
        if (on_hup)
            on_hup(arg);
    }
}

/* The watchdog of an orderly stop (dw_sim_cli_stop_begin): one per
 * process, since a process stops once. */
static struct {
    pthread_mutex_t lock;
    pthread_t thread;
    int running; /* the watchdog thread exists */
    int done;    /* the stop no longer needs the loop: the watchdog ends */
    int sig;     /* the signal that began the stop */
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* How often the watchdog looks at the clock and at `done` between
 * signals: short enough that the grace period ends on time. */
#define WATCH_SLICE_NS (20L * 1000 * 1000)

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Say why and end the process, with watch.lock held so the stop cannot
 * finish half-way meanwhile. write(2), not stdio: the stuck loop thread may
 * hold stderr's lock. Nothing else is touched: the loop thread still runs. */
static void abandon(int again)
{
    char msg[160];
    int len;
    if (again)
        len = snprintf(msg, sizeof msg,
                       "%s: %s while stopping after %s: exiting without the summary\n", prog,
                       signal_name(again), signal_name(watch.sig));
    else
        len = snprintf(msg, sizeof msg,
                       "%s: device loop busy for %.1f s after %s: exiting without the summary\n",
                       prog, DW_SIM_STOP_GRACE_MS / 1000.0, signal_name(watch.sig));
    if (len > 0) {
        ssize_t w =
            write(STDERR_FILENO, msg, (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1);
        (void)w; /* nothing more to do if stderr is gone */
    }
    _exit(DW_SIM_EXIT_STUCK);
}

static void *watch_main(void *arg)
{
    (void)arg;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        /* SIGINT and SIGTERM stay blocked in every thread, so a second one
         * waits here for this sigtimedwait. */
        struct timespec slice = {0, WATCH_SLICE_NS};
        int sig = sigtimedwait(&sigs, NULL, &slice);
        pthread_mutex_lock(&watch.lock);
        if (watch.done) {
            pthread_mutex_unlock(&watch.lock);
            return NULL;
        }
        if (sig == SIGINT || sig == SIGTERM)
            abandon(sig);
        if (elapsed_ms(&start) >= DW_SIM_STOP_GRACE_MS)
            abandon(0);
        pthread_mutex_unlock(&watch.lock);
    }
}

void dw_sim_cli_stop_begin(int sig)
{
    pthread_mutex_lock(&watch.lock);
    if (!watch.running) {
        watch.sig = sig;
        watch.done = 0;
        /* Without a watchdog the stop is tried all the same, as before. */
        watch.running = pthread_create(&watch.thread, NULL, watch_main, NULL) == 0;
    }
    pthread_mutex_unlock(&watch.lock);
}

void dw_sim_cli_stop_done(void)
{
    pthread_mutex_lock(&watch.lock);
    int running = watch.running;
    watch.done = 1;
    pthread_mutex_unlock(&watch.lock);
    if (running)
        pthread_join(watch.thread, NULL);
    watch.running = 0;
}
