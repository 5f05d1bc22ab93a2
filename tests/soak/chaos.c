/* dw-chaos: well-behaved clients, checked, next to misbehaving ones.
 *
 * Well-behaved clients send paced round trips (the protocol in
 * soak_common.h) for the whole run and check every reply. The run is cut
 * into alternating slices, calm and chaos, so that the latency with and
 * without chaos is measured in the same run under the same background
 * noise. During chaos slices other threads misbehave:
 *   silent     connect and say nothing (until the server's idle timeout, or
 *              a second when it has none)
 *   half       send half a frame and vanish
 *   slow       send a frame byte by byte with pauses (legal: must be served)
 *   oversized  send more than the maximum frame without a terminator
 *   garbage    send a line of random bytes
 *   reset      ask for a long reply and reset the connection (RST) after
 *              its first bytes
 *   limit      open connections until the server refuses some (alone: the
 *              other misbehaviours pause meanwhile, so none of theirs is
 *              refused)
 * At the end the server's log (--server-log) is read and each misbehaviour
 * must appear in it exactly once. Exit 1 when a well-behaved client saw an
 * error, when the log does not match, or when the p99 latency under chaos
 * exceeds --ratio-limit times the calm p99. */
#include "soak_common.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *prog = "dw-chaos";

enum kind { SILENT, HALF, SLOW, OVERSIZED, GARBAGE, RESET, LIMIT, NKINDS };
static const char *const kind_names[NKINDS] = {"silent",  "half",  "slow", "oversized",
                                               "garbage", "reset", "limit"};

static struct {
    char host[256];
    uint16_t port;
    unsigned clients;
    double rate;
    int idle_timeout_ms; /* the server's; 0 = it has none */
    size_t max_frame;
    int sim; /* the server is devwire-sim (unmatched lines are answered) */
} cfg;

static int running = 1;             /* atomic */
static int chaos_on;                /* atomic */
static int measuring;               /* atomic: latency samples are kept (not during
                                       the start-up and the tail) */
static uint64_t events[NKINDS];     /* atomic: misbehaviours carried out */
static uint64_t refusals_seen;      /* atomic */
static uint64_t good_errors;        /* atomic: errors seen by well-behaved clients */
static uint64_t good_round_trips;   /* atomic */
static uint64_t chaos_failures;     /* atomic: a misbehaving client could not do its thing */
static pthread_rwlock_t limit_lock; /* writer-preferring: see main */
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static int skip[NKINDS]; /* --skip: misbehaviours not to carry out */

static void complain(uint64_t *counter, const char *who, const char *what)
{
    uint64_t n = __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
    if (n <= 10) {
        pthread_mutex_lock(&print_lock);
        fprintf(stderr, "%s: %s: %s\n", prog, who, what);
        pthread_mutex_unlock(&print_lock);
    }
}

/* ---- well-behaved clients ----------------------------------------------- */

typedef struct good_client {
    pthread_t th;
    unsigned id;
    soak_lat calm, chaos;
} good_client;

static void *good_main(void *arg)
{
    good_client *g = arg;
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = cfg.host;
    o.port = cfg.port;
    o.timeout_ms = 10000;
    o.buffer_size = 4096;
    dw_client *tc = dw_tcp_client_new(&o);
    dw_app_client *ac = tc && m ? dw_app_client_new(tc, m, m) : NULL;
    dw_app_session *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    char who[32];
    snprintf(who, sizeof who, "client %u", g->id);
    if (!ac || dw_app_client_connect(ac, &s, &err) != DW_OK) {
        complain(&good_errors, who, dw_error_message(&err));
        s = NULL;
    }
    dw_buf req = DW_BUF_INIT, want = DW_BUF_INIT, reply = DW_BUF_INIT;
    int64_t period = (int64_t)(1e9 / cfg.rate);
    /* Spread the clients over one period so they do not fire together. */
    int64_t next = soak_now_ns() + period * g->id / cfg.clients;
    uint64_t seq = 0;
    while (s && __atomic_load_n(&running, __ATOMIC_RELAXED)) {
        int64_t now = soak_now_ns();
        if (next > now)
            soak_sleep_ms((int)((next - now) / 1000000));
        next += period;
        int during_chaos = __atomic_load_n(&chaos_on, __ATOMIC_RELAXED);
        int keep = __atomic_load_n(&measuring, __ATOMIC_RELAXED);
        soak_request(&req, &want, g->id, ++seq, 16);
        int64_t t0 = soak_now_ns();
        int rc = dw_app_session_send_receive_bytes(s, req.data, req.len, &reply, &err);
        int64_t dt = soak_now_ns() - t0;
        if (rc != DW_OK) {
            complain(&good_errors, who, dw_error_message(&err));
            break;
        }
        if (reply.len != want.len || memcmp(reply.data, want.data, want.len) != 0) {
            complain(&good_errors, who, "wrong reply");
            break;
        }
        __atomic_add_fetch(&good_round_trips, 1, __ATOMIC_RELAXED);
        if (keep)
            soak_lat_add(during_chaos ? &g->chaos : &g->calm, dt);
    }
    dw_buf_free(&req);
    dw_buf_free(&want);
    dw_buf_free(&reply);
    dw_app_session_close(s);
    dw_app_client_free(ac);
    dw_client_free(tc);
    dw_marshaller_free(m);
    return NULL;
}

/* ---- misbehaving clients ------------------------------------------------ */

/* Read until the server closes (EOF or reset) or `ms` pass. 1 closed,
 * 0 still open; received bytes are dropped. */
static int wait_closed(int fd, int ms)
{
    int64_t end = soak_now_ns() + (int64_t)ms * 1000000;
    char buf[4096];
    for (;;) {
        int64_t left = (end - soak_now_ns()) / 1000000;
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
            return 1;
    }
}

/* Read until a "\n" arrives: 1; 0 when the peer closed or reset; -1 on
 * timeout. */
static int read_line(int fd, int ms)
{
    int64_t end = soak_now_ns() + (int64_t)ms * 1000000;
    char buf[512];
    for (;;) {
        int64_t left = (end - soak_now_ns()) / 1000000;
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0)
            return -1;
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        if (memchr(buf, '\n', (size_t)r))
            return 1;
    }
}

static void reset_close(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int chaos_connect(const char *who)
{
    int fd = soak_connect_raw(cfg.host, cfg.port, 5000);
    if (fd < 0)
        complain(&chaos_failures, who, strerror(-fd));
    return fd;
}

static void act_silent(void)
{
    int fd = chaos_connect("silent");
    if (fd < 0)
        return;
    if (cfg.idle_timeout_ms > 0) {
        int64_t t0 = soak_now_ns();
        int closed = wait_closed(fd, cfg.idle_timeout_ms + 3000);
        int64_t ms = (soak_now_ns() - t0) / 1000000;
        /* Closed at once: refused, the server still at its limit after a
         * flood (it logs a refusal then). */
        if (closed)
            __atomic_add_fetch(&events[ms < cfg.idle_timeout_ms / 2 ? LIMIT : SILENT], 1,
                               __ATOMIC_RELAXED);
        else
            complain(&chaos_failures, "silent", "the server did not close an idle connection");
    } else {
        soak_sleep_ms(1000);
        __atomic_add_fetch(&events[SILENT], 1, __ATOMIC_RELAXED);
    }
    close(fd);
}

static void act_half(void)
{
    int fd = chaos_connect("half");
    if (fd < 0)
        return;
    static const char half[] = "REQ 0 1 half-a-fr";
    if (send_all(fd, half, sizeof half - 1) == 0) {
        soak_sleep_ms(20);
        __atomic_add_fetch(&events[HALF], 1, __ATOMIC_RELAXED);
    }
    close(fd);
}

static void act_slow(uint64_t n)
{
    int fd = chaos_connect("slow");
    if (fd < 0)
        return;
    dw_buf req = DW_BUF_INIT, want = DW_BUF_INIT;
    soak_request(&req, &want, 0, n, 8);
    dw_buf_append_byte(&req, '\n');
    dw_buf_append_byte(&want, '\n');
    int ok = 1;
    for (size_t i = 0; i < req.len && ok; i++) {
        ok = send_all(fd, req.data + i, 1) == 0;
        soak_sleep_ms(10);
    }
    char buf[256];
    size_t got = 0;
    while (ok && got < want.len) {
        ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
        if (r <= 0)
            ok = 0;
        else
            got += (size_t)r;
    }
    if (ok && got == want.len && memcmp(buf, want.data, got) == 0)
        __atomic_add_fetch(&events[SLOW], 1, __ATOMIC_RELAXED);
    else /* a slow client is a legal one: it must be served */
        complain(&good_errors, "slow client", "no or wrong reply to a frame sent byte by byte");
    dw_buf_free(&req);
    dw_buf_free(&want);
    close(fd);
}

static void act_oversized(void)
{
    int fd = chaos_connect("oversized");
    if (fd < 0)
        return;
    size_t n = cfg.max_frame + 4096;
    char *p = malloc(n);
    if (p) {
        memset(p, 'A', n);
        memcpy(p, "REQ ", 4);
        /* The server may close before it has read everything (the write
         * then fails): either way it met an oversized frame. */
        send_all(fd, p, n);
        if (wait_closed(fd, 5000))
            __atomic_add_fetch(&events[OVERSIZED], 1, __ATOMIC_RELAXED);
        else
            complain(&chaos_failures, "oversized", "the server kept the connection open");
    }
    free(p);
    close(fd);
}

static void act_garbage(unsigned *seed)
{
    int fd = chaos_connect("garbage");
    if (fd < 0)
        return;
    uint8_t line[201];
    line[0] = 0xff; /* never "REQ " or "BIG" */
    for (size_t i = 1; i < sizeof line - 1; i++) {
        uint8_t c = (uint8_t)rand_r(seed);
        line[i] = c == '\n' ? 0 : c;
    }
    line[sizeof line - 1] = '\n';
    if (send_all(fd, line, sizeof line) == 0) {
        /* devwire-sim answers it as unmatched and keeps the connection;
         * dw-soak serve closes it. */
        if (!cfg.sim)
            wait_closed(fd, 5000);
        else if (read_line(fd, 5000) != 1) /* read it: unread bytes make close() reset */
            complain(&chaos_failures, "garbage", "no answer from the simulator");
        __atomic_add_fetch(&events[GARBAGE], 1, __ATOMIC_RELAXED);
    }
    close(fd);
}

static void act_reset(void)
{
    int fd = chaos_connect("reset");
    if (fd < 0)
        return;
    char buf[1024];
    if (send_all(fd, "BIG\n", 4) == 0 && recv(fd, buf, sizeof buf, 0) > 0) {
        reset_close(fd);
        __atomic_add_fetch(&events[RESET], 1, __ATOMIC_RELAXED);
        return;
    }
    complain(&chaos_failures, "reset", "no reply to start with");
    close(fd);
}

/* Open connections in batches until the server refuses some. Each one
 * sends a request: an accepted connection is answered, a refused one is
 * closed by the server unanswered, so every connection is told apart
 * however late the server gets to it. */
static void act_limit(void)
{
    enum { MAX = 4096, WANT_REFUSED = 3 };
    size_t batch = 32;
    int *fds = malloc(MAX * sizeof *fds);
    if (!fds)
        return;
    size_t n = 0;
    uint64_t refused = 0;
    dw_buf req = DW_BUF_INIT, want = DW_BUF_INIT;
    while (refused < WANT_REFUSED && n + batch <= MAX && __atomic_load_n(&running, 0)) {
        size_t first = n;
        for (size_t i = 0; i < batch; i++) {
            int fd = chaos_connect("limit");
            if (fd < 0)
                break;
            fds[n++] = fd;
            soak_request(&req, &want, 0, n, 4);
            dw_buf_append_byte(&req, '\n');
            send_all(fd, req.data, req.len); /* fails when refused already */
        }
        for (size_t i = first; i < n; i++) {
            int r = read_line(fds[i], 10000);
            if (r == 0)
                refused++;
            else if (r < 0)
                complain(&chaos_failures, "limit", "neither answered nor refused in 10 s");
        }
        if (batch < 256)
            batch *= 2; /* reach a large limit (devwire-sim: 1024) quickly */
        if (n == first)
            break; /* cannot connect at all */
    }
    dw_buf_free(&req);
    dw_buf_free(&want);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    /* Give the server time to see those connections end before the other
     * misbehaviours connect again, or theirs would be refused. */
    soak_sleep_ms(500);
    __atomic_add_fetch(&refusals_seen, refused, __ATOMIC_RELAXED);
    __atomic_add_fetch(&events[LIMIT], refused, __ATOMIC_RELAXED);
    if (refused == 0)
        complain(&chaos_failures, "limit", "no connection was refused");
}

typedef struct actor {
    pthread_t th;
    enum kind kind;
    unsigned seed;
} actor;

static void *actor_main(void *arg)
{
    actor *a = arg;
    uint64_t n = 0;
    while (__atomic_load_n(&running, __ATOMIC_RELAXED)) {
        if (!__atomic_load_n(&chaos_on, __ATOMIC_RELAXED)) {
            soak_sleep_ms(10);
            continue;
        }
        if (a->kind == LIMIT) {
            pthread_rwlock_wrlock(&limit_lock);
            act_limit();
            pthread_rwlock_unlock(&limit_lock);
            soak_sleep_ms(2000); /* one flood per two seconds is plenty */
            continue;
        }
        pthread_rwlock_rdlock(&limit_lock);
        switch (a->kind) {
        case SILENT:
            act_silent();
            break;
        case HALF:
            act_half();
            break;
        case SLOW:
            act_slow(++n);
            break;
        case OVERSIZED:
            act_oversized();
            break;
        case GARBAGE:
            act_garbage(&a->seed);
            break;
        case RESET:
            act_reset();
            break;
        default:
            break;
        }
        pthread_rwlock_unlock(&limit_lock);
        soak_sleep_ms(50);
    }
    return NULL;
}

/* ---- the server's log --------------------------------------------------- */

/* Which misbehaviour a log line reports, or -1 (-2: a line to ignore). The
 * texts are those of libdevwire's TCP server and application layer, and of
 * devwire-sim. */
static int classify(const char *line)
{
    if (strstr(line, "listening on") || strstr(line, "stopped"))
        return -2;
    if (strstr(line, "idle for"))
        return SILENT;
    if (strstr(line, "inside a frame"))
        return HALF;
    if (strstr(line, "maximum frame"))
        return OVERSIZED;
    if (strstr(line, "unmatched request") || strstr(line, "request handler failed") ||
        strstr(line, "protocol error"))
        return GARBAGE;
    if (strstr(line, "reset by peer") || strstr(line, "roken pipe"))
        return RESET;
    if (strstr(line, "connection limit"))
        return LIMIT;
    return -1;
}

static int check_log(const char *path, uint64_t expect[NKINDS])
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot read the server log %s: %s\n", prog, path, strerror(errno));
        return 1;
    }
    uint64_t seen[NKINDS] = {0}, other = 0;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        int k = classify(line);
        if (k >= 0)
            seen[k]++;
        else if (k == -1) {
            if (other++ < 5)
                fprintf(stderr, "%s: unexpected server log line: %s", prog, line);
        }
    }
    fclose(f);
    int bad = 0;
    printf("chaos: %-10s %8s %10s %s\n", "misbehaviour", "done", "log lines", "");
    for (int k = 0; k < NKINDS; k++) {
        const char *verdict = seen[k] == expect[k] ? "ok" : "MISMATCH";
        if (seen[k] != expect[k])
            bad = 1;
        printf("chaos: %-10s %8llu %10llu (expected %llu) %s\n", kind_names[k],
               (unsigned long long)events[k], (unsigned long long)seen[k],
               (unsigned long long)expect[k], verdict);
        printf("CHAOS log %s %llu %llu %llu\n", kind_names[k], (unsigned long long)events[k],
               (unsigned long long)seen[k], (unsigned long long)expect[k]);
    }
    printf("chaos: other log lines: %llu (expected 0)\n", (unsigned long long)other);
    return bad || other;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"clients", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'},
        {"slice", required_argument, NULL, 'S'},
        {"server-log", required_argument, NULL, 'L'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"max-frame", required_argument, NULL, 'f'},
        {"sim", no_argument, NULL, 'm'},
        {"pid", required_argument, NULL, 'P'},
        {"ratio-limit", required_argument, NULL, 'R'},
        {"skip", required_argument, NULL, 'k'},
        {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *addr = NULL, *log_path = NULL, *label = "chaos";
    double seconds = 10, slice = 0.5, ratio_limit = 2.0;
    pid_t pid = 0;
    cfg.clients = 64;
    cfg.rate = 50;
    cfg.max_frame = 65536;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            addr = optarg;
            break;
        case 'n':
            cfg.clients = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            cfg.rate = atof(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'S':
            slice = atof(optarg);
            break;
        case 'L':
            log_path = optarg;
            break;
        case 'i':
            cfg.idle_timeout_ms = atoi(optarg);
            break;
        case 'f':
            cfg.max_frame = strtoul(optarg, NULL, 10);
            break;
        case 'm':
            cfg.sim = 1;
            break;
        case 'P':
            pid = (pid_t)atol(optarg);
            break;
        case 'R':
            ratio_limit = atof(optarg);
            break;
        case 'l':
            label = optarg;
            break;
        case 'k':
            for (int k = 0; k < NKINDS; k++)
                if (strstr(optarg, kind_names[k]))
                    skip[k] = 1;
            break;
        case 'h':
            printf("Usage: %s --connect HOST:PORT [--clients N] [--rate HZ] [--seconds S]\n"
                   "       [--slice S] [--server-log FILE] [--idle-timeout MS] [--max-frame N]\n"
                   "       [--sim] [--pid PID] [--ratio-limit X] [--skip KIND,...] [--label NAME]\n"
                   "--seconds is the time spent in each condition (calm, chaos).\n"
                   "--ratio-limit 0 reports the p99 ratio without enforcing it.\n",
                   prog);
            return 0;
        default:
            return 2;
        }
    }
    if (!addr || soak_parse_addr(addr, cfg.host, sizeof cfg.host, &cfg.port) != 0 || !cfg.clients ||
        cfg.rate <= 0 || seconds <= 0 || slice <= 0) {
        fprintf(stderr, "%s: need --connect HOST:PORT and positive figures (--help)\n", prog);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The limit flood must get its turn between the other misbehaviours. */
    pthread_rwlockattr_t rwa;
    pthread_rwlockattr_init(&rwa);
    pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&limit_lock, &rwa);
    pthread_rwlockattr_destroy(&rwa);
    long rss_start = pid ? soak_rss_kib(pid) : -1;

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    good_client *good = calloc(cfg.clients, sizeof *good);
    actor actors[NKINDS + 1];
    if (!good)
        return 1;
    for (unsigned i = 0; i < cfg.clients; i++) {
        good[i].id = i + 1;
        if (pthread_create(&good[i].th, &attr, good_main, &good[i]) != 0) {
            fprintf(stderr, "%s: cannot start client threads\n", prog);
            return 1;
        }
    }
    /* Two silent ones, so that one is always waiting for the idle timeout
     * while the other is being counted. */
    size_t nactors = 0;
    for (int k = 0; k < NKINDS; k++) {
        if (skip[k])
            continue;
        for (int copies = k == SILENT ? 2 : 1; copies > 0; copies--) {
            actors[nactors].kind = (enum kind)k;
            actors[nactors].seed = (unsigned)(k * 7919 + copies);
            pthread_create(&actors[nactors].th, &attr, actor_main, &actors[nactors]);
            nactors++;
        }
    }

    /* Alternate calm and chaos slices: 2 * seconds in all. */
    soak_sleep_ms(500); /* connections up */
    int slices = (int)(2 * seconds / slice + 0.5);
    if (slices < 2)
        slices = 2;
    int64_t t0 = soak_now_ns();
    __atomic_store_n(&measuring, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < slices; i++) {
        __atomic_store_n(&chaos_on, i % 2, __ATOMIC_RELAXED);
        soak_sleep_ms((int)(slice * 1000));
    }
    __atomic_store_n(&chaos_on, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&measuring, 0, __ATOMIC_RELAXED);
    soak_sleep_ms((int)(slice * 1000)); /* a calm tail, while the last misbehaviours finish */
    __atomic_store_n(&running, 0, __ATOMIC_RELAXED);
    for (size_t i = 0; i < nactors; i++)
        pthread_join(actors[i].th, NULL);
    soak_lat calm = {0}, chaos = {0};
    for (unsigned i = 0; i < cfg.clients; i++) {
        pthread_join(good[i].th, NULL);
        soak_lat_merge(&calm, &good[i].calm);
        soak_lat_merge(&chaos, &good[i].chaos);
        soak_lat_free(&good[i].calm);
        soak_lat_free(&good[i].chaos);
    }
    free(good);
    pthread_attr_destroy(&attr);
    double secs = (double)(soak_now_ns() - t0) / 1e9;
    long rss_end = pid ? soak_rss_kib(pid) : -1;

    double c50 = soak_lat_pct_us(&calm, 50), c99 = soak_lat_pct_us(&calm, 99);
    double x50 = soak_lat_pct_us(&chaos, 50), x99 = soak_lat_pct_us(&chaos, 99);
    double ratio = c99 > 0 ? x99 / c99 : 0;
    printf("chaos: %u well-behaved clients at %.0f/s each for %.1f s: %llu round trips, "
           "errors %llu\n",
           cfg.clients, cfg.rate, secs, (unsigned long long)good_round_trips,
           (unsigned long long)good_errors);
    printf("chaos: latency without chaos: p50 %.0f us, p99 %.0f us (%zu samples)\n", c50, c99,
           calm.n);
    printf("chaos: latency under chaos:   p50 %.0f us, p99 %.0f us (%zu samples)\n", x50, x99,
           chaos.n);
    printf("chaos: p99 ratio chaos/calm %.2f (limit %.2f)\n", ratio, ratio_limit);
    printf("BENCH %s_p99 %.0f us %.0f %.2f\n", label, x99, c99, ratio);
    if (pid)
        printf("chaos: server RSS %ld KiB before, %ld KiB after\n", rss_start, rss_end);
    if (chaos_failures)
        printf("chaos: %llu misbehaviour(s) could not be carried out as planned\n",
               (unsigned long long)chaos_failures);
    int over = ratio_limit > 0 && ratio > ratio_limit; /* 0: report only */
    int status = good_errors || chaos_failures || over || chaos.n == 0;
    if (over)
        printf("chaos: FAIL: p99 under chaos is %.2fx the calm p99 (limit %.2fx)\n", ratio,
               ratio_limit);
    soak_lat_free(&calm);
    soak_lat_free(&chaos);

    if (log_path) {
        /* Let the server finish logging what happened last (an idle
         * timeout still running). */
        soak_sleep_ms(cfg.idle_timeout_ms + 1000);
        uint64_t expect[NKINDS];
        for (int k = 0; k < NKINDS; k++)
            expect[k] = events[k];
        expect[SLOW] = 0; /* legal: nothing to log */
        if (cfg.idle_timeout_ms <= 0)
            expect[SILENT] = 0; /* no idle timeout: a client that leaves is not logged */
        status |= check_log(log_path, expect);
    }
    printf("chaos: %s\n", status ? "FAIL" : "ok");
    return status;
}
