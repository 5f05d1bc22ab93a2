/* TCP server: one accept loop, one thread per connection with blocking I/O.
 *
 * Why threads: the handler contract is a blocking iterator (the pull model of
 * the original), and a thread blocked in recv() on its own socket is the
 * cheapest way to honour it with the lowest round-trip latency: one recv and
 * one send per request, no event loop hop. Slow, silent or half-closed
 * clients only ever block their own thread. Threads get small stacks so an
 * idle connection costs a few pages.
 *
 * Stopping: dw_tcp_server_stop only sets a flag and writes to an eventfd
 * (both async-signal-safe). The accept loop wakes, closes the listening
 * socket, shuts the read side of every connection (a blocked recv returns
 * end of stream, a response being written still goes out), waits for every
 * connection thread to finish and joins them.
 *
 * Finished connection threads put themselves on a "done" list and poke the
 * eventfd; the accept loop joins and frees them, so nothing accumulates over
 * millions of connections. */
#include "devwire/tcp.h"
#include "sock.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_STACK ((size_t)256 * 1024)

struct dw_conn {
    dw_tcp_server *srv;
    dw_conn *prev, *next; /* on srv->live, then on srv->done */
    pthread_t thread;
    int fd;
    pthread_mutex_t wlock; /* serialises writes and close */
    int closed;            /* dw_conn_close was called (under wlock) */
    uint64_t id;
    void *user;
    dw__sock_iter it;
    dw_buf out;
    char peer[DW__ADDR_MAX];
};

struct dw_tcp_server {
    int lfd;
    int wakefd;
    uint16_t port;
    char addr[DW__ADDR_MAX];
    dw_server_handler h;
    size_t max_connections;
    int idle_timeout_ms;
    int write_timeout_ms;
    size_t buffer_size;
    const dw_logger *logger;
    pthread_attr_t attr;

    pthread_mutex_t lock; /* guards live, done, next_id */
    pthread_cond_t idle;  /* signalled when a connection leaves `live` */
    dw_conn *live;
    dw_conn *done;
    uint64_t next_id;
    size_t nlive;      /* atomic reads */
    uint64_t accepted; /* atomic */
    int stopping;      /* atomic */
    int serving;       /* atomic: serve() entered */
    int started;
    pthread_t thread;
};

void dw_tcp_server_options_init(dw_tcp_server_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->max_connections = 1024;
    o->idle_timeout_ms = -1;
    o->buffer_size = 16384;
    o->backlog = 512;
    o->write_timeout_ms = 10000;
    o->thread_stack_size = DEFAULT_STACK;
}

/* Start a thread with asynchronous signals blocked, so that the
 * application's signal handlers (SIGINT calling dw_tcp_server_stop, say) run
 * on the application's own threads, never in the middle of a handler. */
static int spawn(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP};
    for (size_t i = 0; i < sizeof sync_signals / sizeof sync_signals[0]; i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static void list_unlink(dw_conn **head, dw_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void list_push(dw_conn **head, dw_conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void wake(dw_tcp_server *s)
{
    uint64_t one = 1;
    ssize_t r = write(s->wakefd, &one, sizeof one);
    (void)r; /* a full counter is still a wake-up */
}

static void conn_free(dw_conn *c)
{
    dw__sock_iter_free(&c->it);
    dw_buf_free(&c->out);
    pthread_mutex_destroy(&c->wlock);
    free(c);
}

/* Log why a connection ended, at a level that matches how ordinary it is. */
static void log_end(dw_tcp_server *s, dw_conn *c, int rc)
{
    if (rc == DW_EOF)
        dw_log(s->logger, DW_LOG_DEBUG, "%s: connection %llu closed by peer", c->peer,
               (unsigned long long)c->id);
    else if (rc == DW_ETIMEDOUT && s->idle_timeout_ms >= 0)
        dw_log(s->logger, DW_LOG_INFO, "%s: connection %llu idle for %d ms, closing", c->peer,
               (unsigned long long)c->id, s->idle_timeout_ms);
    else if (rc == DW_ETRUNCATED || rc == DW_ECONNRESET || rc == DW_EPIPE)
        dw_log(s->logger, DW_LOG_INFO, "%s: connection %llu lost: %s", c->peer,
               (unsigned long long)c->id, dw_strerror(rc));
    else
        dw_log(s->logger, DW_LOG_WARN, "%s: connection %llu closed: %s (%s)", c->peer,
               (unsigned long long)c->id, dw_strerror(rc), dw_err_name(rc));
}

static void *conn_main(void *arg)
{
    dw_conn *c = arg;
    dw_tcp_server *s = c->srv;
    const dw_server_handler *h = &s->h;
    int rc = h->on_open ? h->on_open(h->user, c) : DW_OK;
    int wrc = DW_OK;
    while (rc == DW_OK && wrc == DW_OK) {
        dw_buf_clear(&c->out);
        rc = h->on_request(h->user, c, &c->it.base, &c->out);
        if (rc == DW_OK && c->out.len > 0)
            wrc = dw_conn_write(c, c->out.data, c->out.len);
    }
    if (wrc == DW_ECLOSED)
        dw_log(s->logger, DW_LOG_DEBUG, "%s: connection %llu closed by the handler", c->peer,
               (unsigned long long)c->id);
    else if (wrc != DW_OK)
        dw_log(s->logger, DW_LOG_INFO, "%s: connection %llu dropped: sending a response: %s",
               c->peer, (unsigned long long)c->id,
               wrc == DW_ETIMEDOUT ? "the client is not reading (write timeout)"
                                   : dw_strerror(wrc));
    else
        log_end(s, c, rc);
    if (h->on_close)
        h->on_close(h->user, c);

    pthread_mutex_lock(&s->lock);
    list_unlink(&s->live, c);
    __atomic_sub_fetch(&s->nlive, 1, __ATOMIC_RELAXED);
    list_push(&s->done, c);
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    /* Off the live list, so nobody else touches the descriptor any more. */
    close(c->fd);
    wake(s);
    return NULL;
}

/* Join and free finished connection threads. */
static void reap(dw_tcp_server *s)
{
    pthread_mutex_lock(&s->lock);
    dw_conn *done = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->lock);
    while (done) {
        dw_conn *next = done->next;
        pthread_join(done->thread, NULL);
        conn_free(done);
        done = next;
    }
}

static void start_conn(dw_tcp_server *s, int fd, const char *peer)
{
    dw_conn *c = calloc(1, sizeof *c);
    if (c)
        pthread_mutex_init(&c->wlock, NULL);
    if (!c || dw__sock_iter_init(&c->it, fd, s->buffer_size, s->idle_timeout_ms) != DW_OK) {
        dw_log(s->logger, DW_LOG_ERROR, "%s: out of memory, dropping connection", peer);
        if (c)
            conn_free(c);
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    memcpy(c->peer, peer, sizeof c->peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    dw__sock_set_timeouts(fd, s->idle_timeout_ms, s->write_timeout_ms);

    pthread_mutex_lock(&s->lock);
    c->id = ++s->next_id;
    list_push(&s->live, c);
    __atomic_add_fetch(&s->nlive, 1, __ATOMIC_RELAXED);
    int rc = spawn(&c->thread, &s->attr, conn_main, c);
    if (rc != 0) {
        list_unlink(&s->live, c);
        __atomic_sub_fetch(&s->nlive, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != 0) {
        dw_log(s->logger, DW_LOG_ERROR, "%s: cannot start a thread: %s, dropping connection", peer,
               strerror(rc));
        close(fd);
        conn_free(c);
        return;
    }
    dw_log(s->logger, DW_LOG_DEBUG, "%s: connection %llu open", peer, (unsigned long long)c->id);
}

/* Wait on the wake-up descriptor only (after a resource error on accept). */
static void back_off(dw_tcp_server *s, int ms)
{
    struct pollfd p = {s->wakefd, POLLIN, 0};
    poll(&p, 1, ms);
}

static void accept_ready(dw_tcp_server *s)
{
    /* Bounded, so a flood of connections cannot starve the stop check. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            int e = errno;
            dw_log(s->logger, DW_LOG_ERROR, "accept %s: %s", s->addr, strerror(e));
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
                back_off(s, 100);
            return;
        }
        __atomic_add_fetch(&s->accepted, 1, __ATOMIC_RELAXED);
        char peer[DW__ADDR_MAX];
        dw__sock_addr_format((struct sockaddr *)&ss, len, peer, sizeof peer);
        if (__atomic_load_n(&s->nlive, __ATOMIC_RELAXED) >= s->max_connections) {
            dw_log(s->logger, DW_LOG_WARN, "%s: refused: connection limit (%zu) reached", peer,
                   s->max_connections);
            close(fd);
            continue;
        }
        start_conn(s, fd, peer);
    }
}

static int serve(dw_tcp_server *s, dw_error *err)
{
    if (__atomic_exchange_n(&s->serving, 1, __ATOMIC_ACQ_REL))
        return dw_error_set(err, DW_EINVAL, "serve %s: already serving", s->addr);
    dw_log(s->logger, DW_LOG_INFO, "listening on %s", s->addr);
    int rc = DW_OK;
    while (!__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE)) {
        struct pollfd p[2] = {{s->lfd, POLLIN, 0}, {s->wakefd, POLLIN, 0}};
        int n = poll(p, 2, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = dw_error_set(err, -errno, "poll %s: %s", s->addr, strerror(errno));
            dw_log(s->logger, DW_LOG_ERROR, "%s", dw_error_message(err));
            break;
        }
        if (p[1].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(s->wakefd, &v, sizeof v);
            (void)r;
        }
        reap(s);
        if ((p[0].revents & POLLIN) && !__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE))
            accept_ready(s);
    }

    /* Stop accepting (new clients are refused by the kernel from here on),
     * end every connection's reading, let handlers finish, join. */
    close(s->lfd);
    s->lfd = -1;
    pthread_mutex_lock(&s->lock);
    size_t nopen = s->nlive;
    for (dw_conn *c = s->live; c; c = c->next)
        shutdown(c->fd, SHUT_RD);
    while (s->live)
        pthread_cond_wait(&s->idle, &s->lock);
    pthread_mutex_unlock(&s->lock);
    reap(s);
    dw_log(s->logger, DW_LOG_INFO, "stopped %s (%zu connection(s) were open)", s->addr, nopen);
    return rc;
}

int dw_tcp_server_new(const dw_tcp_server_options *o, const dw_server_handler *h,
                      dw_tcp_server **out, dw_error *err)
{
    *out = NULL;
    dw_tcp_server_options defaults;
    if (!o) {
        dw_tcp_server_options_init(&defaults);
        o = &defaults;
    }
    if (!h || !h->on_request)
        return dw_error_set(err, DW_EINVAL, "tcp server: a handler with on_request is required");
    dw_tcp_server *s = calloc(1, sizeof *s);
    if (!s)
        return dw_error_set(err, DW_ENOMEM, "tcp server: out of memory");
    s->h = *h;
    s->max_connections = o->max_connections;
    s->idle_timeout_ms = o->idle_timeout_ms < 0 ? -1 : o->idle_timeout_ms;
    s->write_timeout_ms = o->write_timeout_ms < 0 ? -1 : o->write_timeout_ms;
    s->buffer_size = o->buffer_size ? o->buffer_size : 16384;
    s->logger = o->logger;
    s->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wakefd < 0) {
        int rc = -errno;
        free(s);
        return dw_error_set(err, rc, "eventfd: %s", strerror(-rc));
    }
    int rc = dw__sock_listen(o->host ? o->host : "127.0.0.1", o->port,
                             o->backlog > 0 ? o->backlog : 512, &s->lfd, s->addr, &s->port, err);
    if (rc != DW_OK) {
        close(s->wakefd);
        free(s);
        return rc;
    }
    size_t stack = o->thread_stack_size ? o->thread_stack_size : DEFAULT_STACK;
#if defined(__SANITIZE_ADDRESS__)
    stack *= 4; /* redzones make frames several times larger */
#endif
    if (stack < (size_t)PTHREAD_STACK_MIN)
        stack = (size_t)PTHREAD_STACK_MIN;
    pthread_attr_init(&s->attr);
    pthread_attr_setstacksize(&s->attr, stack);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    *out = s;
    return DW_OK;
}

uint16_t dw_tcp_server_port(const dw_tcp_server *s)
{
    return s->port;
}

const char *dw_tcp_server_address(const dw_tcp_server *s)
{
    return s->addr;
}

static void *server_main(void *arg)
{
    serve(arg, NULL);
    return NULL;
}

int dw_tcp_server_start(dw_tcp_server *s, dw_error *err)
{
    if (s->started || __atomic_load_n(&s->serving, __ATOMIC_ACQUIRE))
        return dw_error_set(err, DW_EINVAL, "start %s: already serving", s->addr);
    int rc = spawn(&s->thread, NULL, server_main, s);
    if (rc != 0)
        return dw_error_set(err, -rc, "start %s: cannot create a thread: %s", s->addr,
                            strerror(rc));
    s->started = 1;
    return DW_OK;
}

int dw_tcp_server_run(dw_tcp_server *s, dw_error *err)
{
    return serve(s, err);
}

void dw_tcp_server_stop(dw_tcp_server *s)
{
    if (!s)
        return;
    int saved = errno; /* may run in a signal handler */
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
    wake(s);
    errno = saved;
}

void dw_tcp_server_free(dw_tcp_server *s)
{
    if (!s)
        return;
    dw_tcp_server_stop(s);
    if (s->started)
        pthread_join(s->thread, NULL);
    if (s->lfd >= 0)
        close(s->lfd);
    close(s->wakefd);
    pthread_attr_destroy(&s->attr);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->idle);
    free(s);
}

size_t dw_tcp_server_connections(const dw_tcp_server *s)
{
    return __atomic_load_n(&s->nlive, __ATOMIC_RELAXED);
}

uint64_t dw_tcp_server_accepted(const dw_tcp_server *s)
{
    return __atomic_load_n(&s->accepted, __ATOMIC_RELAXED);
}

int dw_conn_write(dw_conn *c, const void *p, size_t n)
{
    pthread_mutex_lock(&c->wlock);
    int rc = c->closed ? DW_ECLOSED : dw__sock_send_all(c->fd, p, n, c->srv->write_timeout_ms);
    pthread_mutex_unlock(&c->wlock);
    if (rc != DW_OK && rc != DW_ECLOSED)
        dw_log(c->srv->logger, DW_LOG_DEBUG, "send %s: %s", c->peer, dw_strerror(rc));
    return rc;
}

void dw_conn_close(dw_conn *c, int reset)
{
    pthread_mutex_lock(&c->wlock);
    if (!c->closed) {
        c->closed = 1;
        if (reset) {
            /* Linger 0 makes the final close() send an RST; shutting the
             * read side wakes the connection's thread to do that close. */
            struct linger l = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            shutdown(c->fd, SHUT_RD);
        } else {
            shutdown(c->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&c->wlock);
}

void dw_conn_set_user(dw_conn *c, void *user)
{
    c->user = user;
}

void *dw_conn_user(const dw_conn *c)
{
    return c->user;
}

uint64_t dw_conn_id(const dw_conn *c)
{
    return c->id;
}

const char *dw_conn_peer(const dw_conn *c)
{
    return c->peer;
}

const dw_logger *dw_conn_logger(const dw_conn *c)
{
    return c->srv->logger;
}
