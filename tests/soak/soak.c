/* dw-soak: load generator, echo server and idle-memory probe for the soak
 * and chaos runs (scripts/soak.sh, scripts/chaos.sh).
 *
 *   dw-soak serve  an application server (sentinel "\n" framing) on the
 *                  devwire TCP server, answering the protocol in
 *                  soak_common.h; run it as its own process so that its
 *                  memory can be measured from outside.
 *   dw-soak load   many clients at once, each with its own connection,
 *                  pipelined round trips with every reply checked for
 *                  content and order; samples the server's RSS.
 *   dw-soak idle   open N connections, one round trip each, then leave them
 *                  idle and report the server's RSS growth per connection.
 *
 * Every figure is also printed as a machine-readable line:
 *   BENCH <name> <value> <unit> <baseline> <ratio>
 * which scripts/bench.sh collects. */
#include "soak_common.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *prog = "dw-soak";

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: %s serve [--listen HOST:PORT] [--max-connections N] [--idle-timeout MS]\n"
            "                [--max-frame BYTES] [--log-level LEVEL]\n"
            "       %s load --connect HOST:PORT [--clients N] [--round-trips N] [--seconds S]\n"
            "                [--pipeline D] [--pad BYTES] [--pid PID] [--rss-allowance KIB]\n"
            "                [--label NAME] [--warmup N]\n"
            "       %s idle --connect HOST:PORT --pid PID [--connections N] [--label NAME]\n"
            "\n"
            "serve: print \"listening on HOST:PORT\", serve until SIGINT/SIGTERM.\n"
            "load:  exit 1 on any wrong, missing or out-of-order reply, on any connection\n"
            "       error, or when the server's RSS grows by more than --rss-allowance KiB\n"
            "       between the warm sample (10%% of the run, after --warmup (50) uncounted\n"
            "       round trips per client) and the end.\n"
            "idle:  print the server's RSS growth per idle connection (KiB).\n",
            prog, prog, prog);
}

/* ---- serve --------------------------------------------------------------- */

static int echo_cb(void *user, dw_conn *c, const void *request, void **response)
{
    (void)user;
    (void)c;
    const dw_buf *rq = request;
    dw_buf *out = calloc(1, sizeof *out);
    if (!out)
        return DW_ENOMEM;
    int rc = DW_OK;
    if (rq->len >= 4 && memcmp(rq->data, "REQ ", 4) == 0) {
        rc = dw_buf_append(out, "ACK ", 4);
        if (rc == DW_OK)
            rc = dw_buf_append(out, rq->data + 4, rq->len - 4);
    } else if (rq->len == 3 && memcmp(rq->data, "BIG", 3) == 0) {
        rc = dw_buf_reserve(out, SOAK_BIG_LEN);
        if (rc == DW_OK) {
            memset(out->data, 'x', SOAK_BIG_LEN);
            out->len = SOAK_BIG_LEN;
        }
    } else {
        rc = DW_EPROTO; /* not our protocol: close this connection */
    }
    if (rc != DW_OK) {
        dw_buf_free(out);
        free(out);
        return rc;
    }
    *response = out;
    return DW_OK;
}

static int do_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"max-connections", required_argument, NULL, 'm'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"max-frame", required_argument, NULL, 'f'},
        {"log-level", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "127.0.0.1:0";
    size_t max_conn = 1024, max_frame = 65536;
    int idle_ms = -1, opt;
    dw_logger logger = {soak_log_fn, (void *)"dw-soak serve", DW_LOG_WARN};
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen = optarg;
            break;
        case 'm':
            max_conn = strtoul(optarg, NULL, 10);
            break;
        case 'i':
            idle_ms = atoi(optarg);
            break;
        case 'f':
            max_frame = strtoul(optarg, NULL, 10);
            break;
        case 'L':
            if (dw_log_level_parse(optarg, &logger.level) != 0) {
                fprintf(stderr, "%s: --log-level %s: unknown level\n", prog, optarg);
                return 2;
            }
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    char host[256];
    uint16_t port = 0;
    if (strcmp(listen, "127.0.0.1:0") != 0 &&
        soak_parse_addr(listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "%s: --listen %s: expected HOST:PORT\n", prog, listen);
        return 2;
    }
    if (port == 0)
        strcpy(host, "127.0.0.1");

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    if (!m)
        return 1;
    dw_marshaller_set_max_frame(m, max_frame);
    dw_app_server *app = dw_app_server_new(m, m, echo_cb, NULL);
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    o.host = host;
    o.port = port;
    o.max_connections = max_conn;
    o.idle_timeout_ms = idle_ms;
    o.logger = &logger;
    dw_server_handler h = dw_app_server_handler(app);
    dw_tcp_server *srv = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (!app || dw_tcp_server_new(&o, &h, &srv, &err) != DW_OK ||
        dw_tcp_server_start(srv, &err) != DW_OK) {
        fprintf(stderr, "%s: serve: %s\n", prog, dw_error_message(&err));
        dw_tcp_server_free(srv);
        dw_app_server_free(app);
        dw_marshaller_free(m);
        return 1;
    }
    printf("listening on %s\n", dw_tcp_server_address(srv));
    fflush(stdout);
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    unsigned long long accepted = (unsigned long long)dw_tcp_server_accepted(srv);
    dw_tcp_server_free(srv);
    dw_app_server_free(app);
    dw_marshaller_free(m);
    fprintf(stderr, "%s serve: stopped after %llu connection(s)\n", prog, accepted);
    return 0;
}

/* ---- load ---------------------------------------------------------------- */

typedef struct load_cfg {
    char host[256];
    uint16_t port;
    unsigned clients;
    uint64_t total;
    int64_t deadline_ns;
    unsigned pipeline;
    unsigned warmup;
    size_t pad;
} load_cfg;

static load_cfg cfg;
static uint64_t claimed;   /* atomic: round trips handed out */
static uint64_t completed; /* atomic: round trips checked good */
static uint64_t errors;    /* atomic */
static unsigned connected; /* atomic */
static int stop_all;       /* atomic: an error or the deadline */
static pthread_barrier_t start_barrier, end_barrier, close_barrier;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned err_printed;

static void report_error(unsigned client, const char *what, const char *detail)
{
    __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&err_lock);
    if (err_printed++ < 20)
        fprintf(stderr, "%s: client %u: %s: %.100s\n", prog, client, what, detail);
    pthread_mutex_unlock(&err_lock);
}

static void *load_client(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = cfg.host;
    o.port = cfg.port;
    o.timeout_ms = 20000;
    o.buffer_size = 16384;
    dw_client *tc = dw_tcp_client_new(&o);
    dw_app_client *ac = tc && m ? dw_app_client_new(tc, m, m) : NULL;
    dw_app_session *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    int ok = ac && dw_app_client_connect(ac, &s, &err) == DW_OK;
    if (!ok)
        report_error(id, "connect", dw_error_message(&err));
    else
        __atomic_add_fetch(&connected, 1, __ATOMIC_RELAXED);

    /* Warm-up round trips (not counted): the server's thread for this
     * connection runs and has its buffers before the warm RSS sample. */
    dw_buf wreq = DW_BUF_INIT, wwant = DW_BUF_INIT, wreply = DW_BUF_INIT;
    for (unsigned i = 0; ok && i < cfg.warmup; i++) {
        soak_request(&wreq, &wwant, id, (uint64_t)i, cfg.pad);
        int rc = dw_app_session_send_receive_bytes(s, wreq.data, wreq.len, &wreply, &err);
        if (rc != DW_OK || wreply.len != wwant.len ||
            memcmp(wreply.data, wwant.data, wwant.len) != 0) {
            report_error(id, "warm-up round trip", dw_error_message(&err));
            ok = 0;
        }
    }
    dw_buf_free(&wreq);
    dw_buf_free(&wwant);
    dw_buf_free(&wreply);
    uint64_t seq = cfg.warmup;
    pthread_barrier_wait(&start_barrier);
    dw_buf *reqs = calloc(cfg.pipeline, sizeof *reqs);
    dw_buf *wants = calloc(cfg.pipeline, sizeof *wants);
    dw_buf reply = DW_BUF_INIT;
    while (ok && reqs && wants && !__atomic_load_n(&stop_all, __ATOMIC_RELAXED)) {
        uint64_t first = __atomic_fetch_add(&claimed, cfg.pipeline, __ATOMIC_RELAXED);
        if (first >= cfg.total || soak_now_ns() > cfg.deadline_ns)
            break;
        unsigned d = cfg.pipeline;
        if (first + d > cfg.total)
            d = (unsigned)(cfg.total - first);
        /* Send d requests back to back, then read d replies: the server
         * must answer them in order. */
        for (unsigned i = 0; i < d && ok; i++) {
            soak_request(&reqs[i], &wants[i], id, ++seq, cfg.pad);
            if (dw_app_session_send_bytes(s, reqs[i].data, reqs[i].len, &err) != DW_OK) {
                report_error(id, "send", dw_error_message(&err));
                ok = 0;
            }
        }
        dw_iter *it = ok ? dw_session_iter(dw_app_session_transport(s)) : NULL;
        for (unsigned i = 0; i < d && ok; i++) {
            int rc = dw_unmarshall(m, it, &reply, &err);
            if (rc != DW_OK) {
                report_error(id, "reply",
                             rc == DW_EOF ? "server closed the connection"
                                          : dw_error_message(&err));
                ok = 0;
            } else if (reply.len != wants[i].len ||
                       memcmp(reply.data, wants[i].data, reply.len) != 0) {
                dw_buf_nul_terminate(&reply);
                report_error(id, "wrong or out-of-order reply", (char *)reply.data);
                ok = 0;
            } else {
                __atomic_add_fetch(&completed, 1, __ATOMIC_RELAXED);
            }
        }
    }
    for (unsigned i = 0; reqs && wants && i < cfg.pipeline; i++) {
        dw_buf_free(&reqs[i]);
        dw_buf_free(&wants[i]);
    }
    free(reqs);
    free(wants);
    dw_buf_free(&reply);
    /* Keep the connection open until the end sample is taken. */
    pthread_barrier_wait(&end_barrier);
    pthread_barrier_wait(&close_barrier);
    dw_app_session_close(s);
    dw_app_client_free(ac);
    dw_client_free(tc);
    dw_marshaller_free(m);
    return NULL;
}

static int do_load(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"clients", required_argument, NULL, 'n'},
        {"round-trips", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'},
        {"pipeline", required_argument, NULL, 'd'},
        {"pad", required_argument, NULL, 'p'},
        {"pid", required_argument, NULL, 'P'},
        {"rss-allowance", required_argument, NULL, 'a'},
        {"label", required_argument, NULL, 'l'},
        {"warmup", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    const char *addr = NULL, *label = "server";
    unsigned clients = 256, pipeline = 2, warmup = 50;
    uint64_t total = 100000;
    double seconds = 600;
    size_t pad = 16;
    pid_t pid = 0;
    long allowance = 4096;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            addr = optarg;
            break;
        case 'n':
            clients = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            total = strtoull(optarg, NULL, 10);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'd':
            pipeline = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            pad = strtoul(optarg, NULL, 10);
            break;
        case 'P':
            pid = (pid_t)atol(optarg);
            break;
        case 'a':
            allowance = atol(optarg);
            break;
        case 'l':
            label = optarg;
            break;
        case 'w':
            warmup = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!addr || soak_parse_addr(addr, cfg.host, sizeof cfg.host, &cfg.port) != 0 || clients == 0 ||
        pipeline == 0 || total == 0 || seconds <= 0) {
        fprintf(stderr, "%s: load: need --connect HOST:PORT and positive counts\n", prog);
        return 2;
    }
    cfg.clients = clients;
    cfg.total = total;
    cfg.pipeline = pipeline;
    cfg.warmup = warmup;
    cfg.pad = pad;
    signal(SIGPIPE, SIG_IGN);

    long rss_before = pid ? soak_rss_kib(pid) : -1;
    pthread_barrier_init(&start_barrier, NULL, clients + 1);
    pthread_barrier_init(&end_barrier, NULL, clients + 1);
    pthread_barrier_init(&close_barrier, NULL, clients + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    pthread_t *th = calloc(clients, sizeof *th);
    if (!th)
        return 1;
    for (unsigned i = 0; i < clients; i++) {
        int rc = pthread_create(&th[i], &attr, load_client, (void *)(uintptr_t)(i + 1));
        if (rc != 0) {
            fprintf(stderr, "%s: cannot start client thread %u: %s\n", prog, i + 1, strerror(rc));
            return 1; /* the barriers would never open */
        }
    }
    /* The clients read the deadline once they pass the barrier. */
    int64_t t0 = soak_now_ns();
    cfg.deadline_ns = t0 + (int64_t)(seconds * 1e9);
    pthread_barrier_wait(&start_barrier);
    t0 = soak_now_ns();
    unsigned nconn = __atomic_load_n(&connected, __ATOMIC_RELAXED);
    long rss_connected = pid ? soak_rss_kib(pid) : -1; /* and warmed up */

    /* Sample the server's RSS when the run is 10% (warm), 50% (middle) done,
     * by count or by time, whichever comes first. */
    long rss_warm = -1, rss_mid = -1;
    for (;;) {
        uint64_t done = __atomic_load_n(&completed, __ATOMIC_RELAXED) +
                        __atomic_load_n(&errors, __ATOMIC_RELAXED);
        double frac_n = (double)done / (double)total;
        double frac_t = (double)(soak_now_ns() - t0) / (seconds * 1e9);
        double frac = frac_n > frac_t ? frac_n : frac_t;
        if (rss_warm < 0 && frac >= 0.10)
            rss_warm = pid ? soak_rss_kib(pid) : 0;
        if (rss_mid < 0 && frac >= 0.50)
            rss_mid = pid ? soak_rss_kib(pid) : 0;
        if (__atomic_load_n(&errors, __ATOMIC_RELAXED))
            __atomic_store_n(&stop_all, 1, __ATOMIC_RELAXED);
        if (done >= total || frac >= 1.0 || __atomic_load_n(&errors, __ATOMIC_RELAXED))
            break;
        soak_sleep_ms(20);
    }
    pthread_barrier_wait(&end_barrier);
    int64_t t1 = soak_now_ns();
    long rss_end = pid ? soak_rss_kib(pid) : -1;
    if (rss_warm < 0)
        rss_warm = rss_end;
    if (rss_mid < 0)
        rss_mid = rss_end;
    pthread_barrier_wait(&close_barrier);
    for (unsigned i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    free(th);
    pthread_attr_destroy(&attr);

    uint64_t good = __atomic_load_n(&completed, __ATOMIC_RELAXED);
    uint64_t bad = __atomic_load_n(&errors, __ATOMIC_RELAXED);
    double secs = (double)(t1 - t0) / 1e9;
    printf("%s: %u clients connected at once (of %u), pipeline depth %u\n", label, nconn, clients,
           pipeline);
    printf("%s: round trips %llu of %llu in %.1f s (%.0f/s; plus %u warm-up per client), "
           "errors %llu%s\n",
           label, (unsigned long long)good, (unsigned long long)total, secs, (double)good / secs,
           warmup, (unsigned long long)bad,
           good + bad < total && !bad ? " (stopped by the time limit)" : "");
    int status = bad || nconn != clients ? 1 : 0;
    if (pid) {
        long growth = rss_end - rss_warm;
        printf("%s: server RSS KiB: before %ld, after warm-up %ld, start (10%%) %ld, middle %ld, "
               "end %ld; "
               "growth start to end %ld KiB (allowance %ld)\n",
               label, rss_before, rss_connected, rss_warm, rss_mid, rss_end, growth, allowance);
        if (growth > allowance) {
            printf("%s: FAIL: server memory grew by %ld KiB once warm (allowance %ld KiB)\n", label,
                   growth, allowance);
            status = 1;
        }
        printf("SOAK %s rss_kib %ld %ld %ld %ld\n", label, rss_before, rss_warm, rss_mid, rss_end);
    }
    printf("SOAK %s round_trips %llu errors %llu\n", label, (unsigned long long)good,
           (unsigned long long)bad);
    printf("%s: %s\n", label, status ? "FAIL" : "ok");
    return status;
}

/* ---- idle ---------------------------------------------------------------- */

static int do_idle(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"pid", required_argument, NULL, 'P'},
        {"connections", required_argument, NULL, 'n'},
        {"label", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    const char *addr = NULL, *label = "server";
    pid_t pid = 0;
    unsigned n = 1000;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            addr = optarg;
            break;
        case 'P':
            pid = (pid_t)atol(optarg);
            break;
        case 'n':
            n = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'l':
            label = optarg;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    char host[256];
    uint16_t port;
    if (!addr || !pid || !n || soak_parse_addr(addr, host, sizeof host, &port) != 0) {
        fprintf(stderr, "%s: idle: need --connect HOST:PORT, --pid PID, --connections N > 0\n",
                prog);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int *fds = malloc(n * sizeof *fds);
    if (!fds)
        return 1;
    dw_buf req = DW_BUF_INIT, want = DW_BUF_INIT;
    char buf[256];
    /* One round trip first, so that what is measured is an idle connection
     * of a warm server, not the server's first-use allocations. */
    int status = 0;
    for (int warm = 0; warm < 2 && !status; warm++) {
        int fd = soak_connect_raw(host, port, 5000);
        soak_request(&req, &want, 0, (uint64_t)warm, 16);
        dw_buf_append_byte(&req, '\n');
        if (fd < 0 || send(fd, req.data, req.len, MSG_NOSIGNAL) != (ssize_t)req.len ||
            recv(fd, buf, sizeof buf, 0) <= 0) {
            fprintf(stderr, "%s: idle: warm-up round trip to %s failed\n", prog, addr);
            status = 1;
        }
        if (fd >= 0)
            close(fd);
    }
    soak_sleep_ms(300);
    long before = soak_rss_kib(pid);
    unsigned open_n = 0;
    for (unsigned i = 0; i < n && !status; i++) {
        int fd = soak_connect_raw(host, port, 5000);
        if (fd < 0) {
            fprintf(stderr, "%s: idle: connection %u: %s\n", prog, i + 1, strerror(-fd));
            status = 1;
            break;
        }
        fds[open_n++] = fd;
        soak_request(&req, &want, i + 1, 1, 16);
        dw_buf_append_byte(&req, '\n');
        dw_buf_append_byte(&want, '\n');
        ssize_t got = -1;
        if (send(fd, req.data, req.len, MSG_NOSIGNAL) == (ssize_t)req.len)
            got = recv(fd, buf, sizeof buf, 0);
        if (got != (ssize_t)want.len || memcmp(buf, want.data, want.len) != 0) {
            fprintf(stderr, "%s: idle: connection %u: no or wrong reply\n", prog, i + 1);
            status = 1;
        }
    }
    /* Let the server's threads settle into their blocking reads. */
    soak_sleep_ms(500);
    long after = soak_rss_kib(pid);
    for (unsigned i = 0; i < open_n; i++)
        close(fds[i]);
    free(fds);
    dw_buf_free(&req);
    dw_buf_free(&want);
    if (status)
        return status;
    double per = (double)(after - before) / (double)n;
    printf("%s: %u idle connections: server RSS %ld -> %ld KiB, %.1f KiB per connection "
           "(target <= 64)\n",
           label, n, before, after, per);
    printf("BENCH %s_idle_conn_memory %.1f KiB 64 %.2f\n", label, per, per / 64.0);
    return per <= 64.0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "-h") || !strcmp(mode, "--help")) {
        usage(stdout);
        return 0;
    }
    /* getopt_long starts at argv[1], which is then the mode name. */
    argv[1] = argv[0];
    if (!strcmp(mode, "serve"))
        return do_serve(argc - 1, argv + 1);
    if (!strcmp(mode, "load"))
        return do_load(argc - 1, argv + 1);
    if (!strcmp(mode, "idle"))
        return do_idle(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown mode '%s'\n", prog, mode);
    usage(stderr);
    return 2;
}
