/* Run devwire-sim as a subprocess: see sim_proc.h. */
#include "sim_proc.h"

#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *dw_sim_proc_path(void)
{
#ifdef DW_SIM_PATH
    return DW_SIM_PATH;
#else
    return NULL;
#endif
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reap(dw_sim_proc *p, int block)
{
    if (p->pid <= 0)
        return;
    int st;
    if (dw_test_child_reap(p->pid, block, &st) == 1) {
        p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        p->pid = 0;
    }
}

/* Read what is available (waiting up to ms); 0 when both pipes are closed. */
static int pump(dw_sim_proc *p, int ms)
{
    struct pollfd fds[2] = {{p->out_fd, POLLIN, 0}, {p->err_fd, POLLIN, 0}};
    if (p->out_fd < 0 && p->err_fd < 0)
        return 0;
    int n = poll(fds, 2, ms);
    if (n <= 0)
        return 1;
    for (int i = 0; i < 2; i++) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        char chunk[4096];
        ssize_t r = read(fds[i].fd, chunk, sizeof chunk);
        dw_buf *b = i == 0 ? &p->out : &p->err;
        if (r > 0) {
            dw_buf_append(b, chunk, (size_t)r);
            dw_buf_nul_terminate(b);
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(fds[i].fd);
            if (i == 0)
                p->out_fd = -1;
            else
                p->err_fd = -1;
        }
    }
    return 1;
}

/* "serial on PATH": the terminal's path into p->tty. */
static int parse_serial(dw_sim_proc *p)
{
    const char *l = strstr((const char *)p->out.data, "serial on ");
    if (!l)
        return 0;
    l += strlen("serial on ");
    size_t n = strcspn(l, " \n");
    if (l[n] == '\0' || n >= sizeof p->tty)
        return 0;
    memcpy(p->tty, l, n);
    p->tty[n] = 0;
    return 1;
}

/* The first readiness line: "listening on HOST:PORT" or "serial on PATH". */
static int parse_listen(dw_sim_proc *p)
{
    if (!p->out.data)
        return 0;
    const char *l = strstr((const char *)p->out.data, "listening on ");
    const char *tty = strstr((const char *)p->out.data, "serial on ");
    if (tty && (!l || tty < l))
        return parse_serial(p);
    if (!l)
        return 0;
    l += strlen("listening on ");
    const char *nl = strchr(l, '\n');
    if (!nl)
        return 0;
    const char *colon = nl;
    while (colon > l && *colon != ':')
        colon--;
    if (*colon != ':')
        return 0;
    const char *h = l, *he = colon;
    if (*h == '[') {
        h++;
        he--;
    }
    size_t hl = (size_t)(he - h);
    if (hl >= sizeof p->host)
        return 0;
    memcpy(p->host, h, hl);
    p->host[hl] = 0;
    p->port = (uint16_t)atoi(colon + 1);
    return 1;
}

int dw_sim_proc_start(dw_sim_proc *p, const char *const *args, int wait_listen, int timeout_ms)
{
    memset(p, 0, sizeof *p);
    p->out_fd = p->err_fd = -1;
    p->status = -1;
    const char *path = dw_sim_proc_path();
    if (!path)
        return DW_ENOENT;
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return -errno;
    }
    size_t n = 0;
    while (args[n])
        n++;
    char **argv = calloc(n + 2, sizeof *argv);
    argv[0] = (char *)path;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    /* It dies with this process whatever ends it, even a crash or a kill
     * that runs no cleanup. */
    pid_t pid = dw_test_child_fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execv(path, argv);
        _exit(127);
    }
    free(argv);
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        close(po[0]);
        close(pe[0]);
        return -errno;
    }
    p->pid = pid;
    p->out_fd = po[0];
    p->err_fd = pe[0];
    if (!wait_listen)
        return DW_OK;
    long long end = now_ms() + timeout_ms;
    while (!parse_listen(p)) {
        long long left = end - now_ms();
        if (left <= 0)
            return DW_ETIMEDOUT;
        if (!pump(p, (int)(left < 100 ? left : 100))) {
            reap(p, 1);
            return DW_EOF;
        }
        reap(p, 0);
        if (p->pid == 0) {
            while (pump(p, 100)) {
            }
            return DW_EOF;
        }
    }
    return DW_OK;
}

int dw_sim_proc_wait(dw_sim_proc *p, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (p->pid > 0) {
        long long left = end - now_ms();
        if (left <= 0)
            return -1;
        if (!pump(p, (int)(left < 50 ? left : 50)))
            reap(p, 1);
        else
            reap(p, 0);
    }
    while (pump(p, 200)) { /* the rest of its output */
    }
    return p->status;
}

int dw_sim_proc_run(dw_sim_proc *p, const char *const *args, int timeout_ms)
{
    int rc = dw_sim_proc_start(p, args, 0, timeout_ms);
    if (rc != DW_OK)
        return -1;
    rc = dw_sim_proc_wait(p, timeout_ms);
    if (rc < 0)
        dw_test_child_kill(p->pid, SIGKILL);
    return rc;
}

int dw_sim_proc_kill(dw_sim_proc *p, int sig)
{
    if (p->pid <= 0)
        return DW_ECLOSED;
    return kill(p->pid, sig) == 0 ? DW_OK : -errno;
}

int dw_sim_proc_stop(dw_sim_proc *p, int timeout_ms)
{
    dw_sim_proc_kill(p, SIGTERM);
    int st = dw_sim_proc_wait(p, timeout_ms);
    if (st < 0) {
        dw_test_child_kill(p->pid, SIGKILL);
        st = dw_sim_proc_wait(p, 5000);
    }
    return st;
}

int dw_sim_proc_wait_output(dw_sim_proc *p, int err, const char *needle, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    dw_buf *b = err ? &p->err : &p->out;
    for (;;) {
        if (b->data && strstr((const char *)b->data, needle))
            return 1;
        long long left = end - now_ms();
        if (left <= 0)
            return 0;
        if (!pump(p, (int)(left < 50 ? left : 50)) && p->pid > 0)
            reap(p, 0);
    }
}

size_t dw_sim_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle))
        n++;
    return n;
}

long dw_sim_proc_rss_kib(const dw_sim_proc *p)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)p->pid);
    FILE *f = p->pid > 0 ? fopen(path, "r") : NULL;
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (kib < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) != 1)
            kib = -1;
    fclose(f);
    return kib;
}

void dw_sim_proc_free(dw_sim_proc *p)
{
    if (p->pid > 0) {
        dw_test_child_kill(p->pid, SIGKILL);
        reap(p, 1);
    }
    if (p->out_fd >= 0)
        close(p->out_fd);
    if (p->err_fd >= 0)
        close(p->err_fd);
    p->out_fd = p->err_fd = -1;
    dw_buf_free(&p->out);
    dw_buf_free(&p->err);
}

char *dw_sim_temp_file(const char *tag, const char *text)
{
    const char *dir = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/dwsim-%s-XXXXXX", dir && *dir ? dir : "/tmp", tag) < 0)
        return NULL;
    int fd = mkstemp(path);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w <= 0) {
            close(fd);
            unlink(path);
            free(path);
            return NULL;
        }
        off += (size_t)w;
    }
    close(fd);
    return path;
}

char *dw_sim_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    dw_buf b = DW_BUF_INIT;
    char chunk[4096];
    size_t n;
    int rc = DW_OK;
    while (rc == DW_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = dw_buf_append(&b, chunk, n);
    if (rc != DW_OK || ferror(f) || dw_buf_nul_terminate(&b) != DW_OK) {
        fclose(f);
        dw_buf_free(&b);
        return NULL;
    }
    fclose(f);
    if (len)
        *len = b.len;
    return (char *)b.data;
}

int dw_sim_proc_serve(dw_sim_proc *p, const char *tag, const char *script, const char *const *extra,
                      char **path)
{
    const char *args[32];
    size_t n = 0;
    char *file = dw_sim_temp_file(tag, script);
    if (path)
        *path = file;
    memset(p, 0, sizeof *p);
    p->out_fd = p->err_fd = -1;
    if (!file)
        return DW_EIO;
    args[n++] = "--script";
    args[n++] = file;
    args[n++] = "--listen";
    args[n++] = "127.0.0.1:0";
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    int rc = dw_sim_proc_start(p, args, 1, 10000);
    if (!path) {
        unlink(file);
        free(file);
    }
    return rc;
}

int dw_sim_client_open(dw_sim_client *c, uint16_t port, dw_marshaller *m, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = "127.0.0.1";
    o.port = port;
    o.timeout_ms = timeout_ms;
    c->client = dw_tcp_client_new(&o);
    if (!c->client || !m)
        return dw_error_set(&c->err, DW_ENOMEM, "out of memory");
    return dw_client_connect(c->client, &c->session, &c->err);
}

int dw_sim_client_send(dw_sim_client *c, const void *p, size_t n)
{
    dw_buf frame = DW_BUF_INIT;
    int rc = dw_marshall(c->m, p, n, &frame, &c->err);
    if (rc == DW_OK)
        rc = dw_session_send(c->session, frame.data, frame.len, &c->err);
    dw_buf_free(&frame);
    return rc;
}

int dw_sim_client_recv(dw_sim_client *c)
{
    int rc = dw_unmarshall(c->m, dw_session_iter(c->session), &c->reply, &c->err);
    if (rc != DW_OK && c->err.code == DW_OK)
        dw_error_set(&c->err, rc, "%s", dw_strerror(rc));
    dw_buf_nul_terminate(&c->reply);
    return rc;
}

const char *dw_sim_client_ask(dw_sim_client *c, const char *request)
{
    if (dw_sim_client_send(c, request, strlen(request)) != DW_OK)
        return NULL;
    if (dw_sim_client_recv(c) != DW_OK)
        return NULL;
    return c->reply.data ? (const char *)c->reply.data : "";
}

int dw_sim_client_recv_raw(dw_sim_client *c, size_t n)
{
    dw_iter *it = dw_session_iter(c->session);
    dw_buf_clear(&c->reply);
    while (c->reply.len < n) {
        const uint8_t *p;
        size_t len;
        int rc = dw_iter_next(it, &p, &len);
        if (rc != DW_OK)
            return dw_error_set(&c->err, rc, "raw read: %s", dw_strerror(rc));
        size_t want = n - c->reply.len;
        if (len > want) {
            dw_iter_unread(it, len - want);
            len = want;
        }
        dw_buf_append(&c->reply, p, len);
    }
    dw_buf_nul_terminate(&c->reply);
    return DW_OK;
}

void dw_sim_client_close(dw_sim_client *c)
{
    dw_session_close(c->session);
    dw_client_free(c->client);
    dw_marshaller_free(c->m);
    dw_buf_free(&c->reply);
    memset(c, 0, sizeof *c);
}

int dw_sim_raw_connect(uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}
