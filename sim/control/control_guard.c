/* devwire-sim's control API: the HTTP server's guards, so that no client
 * can starve the others. Two of them, both under guard_lock:
 *
 *   deadlines   every connection is on a list with the phase it is in; a
 *               reaper thread shuts down the socket of one that has not
 *               sent its request's headers within GUARD_HEADERS_MS (since
 *               it connected or its last answer) or its body within
 *               GUARD_BODY_MS. A slow sender (headers trickled byte by
 *               byte) resets libmicrohttpd's idle timeout with every byte;
 *               these deadlines do not move. A request being handled (a
 *               journal wait) has none: it ends by its own timeout.
 *   bodies      the bytes reserved for bodies being received, across all
 *               connections, stay under a cap, so many large uploads held
 *               open cannot take the process's memory.
 *
 * Nothing here knows HTTP; control_http.c calls it. */
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "control/control_int.h"

struct ctl_conn {
    ctl_conn *prev, *next;
    int fd;
    int phase;
    long long since_ms; /* when the phase began */
    int cut;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ctl_conn *dw__ctl_conn_open(dw_sim_control *c, int fd)
{
    ctl_conn *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->fd = fd;
    k->phase = CTL_PHASE_HEADERS;
    k->since_ms = now_ms();
    pthread_mutex_lock(&c->guard_lock);
    k->next = c->conns;
    if (c->conns)
        c->conns->prev = k;
    c->conns = k;
    pthread_mutex_unlock(&c->guard_lock);
    return k;
}

void dw__ctl_conn_phase(dw_sim_control *c, ctl_conn *k, int phase)
{
    if (!k)
        return;
    pthread_mutex_lock(&c->guard_lock);
    if (k->phase != phase) {
        k->phase = phase;
        k->since_ms = now_ms();
    }
    pthread_mutex_unlock(&c->guard_lock);
}

/* Called before libmicrohttpd closes the socket: the reaper never shuts
 * down a descriptor that may already be another file's. */
void dw__ctl_conn_close(dw_sim_control *c, ctl_conn *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&c->guard_lock);
    if (k->prev)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    pthread_mutex_unlock(&c->guard_lock);
    free(k);
}

/* Under guard_lock: shut down the connections past their deadline; the
 * connection's own thread then sees the end and closes it. */
static void reap(dw_sim_control *c, long long now)
{
    for (ctl_conn *k = c->conns; k; k = k->next) {
        long long limit = k->phase == CTL_PHASE_HEADERS ? GUARD_HEADERS_MS
                          : k->phase == CTL_PHASE_BODY  ? GUARD_BODY_MS
                                                        : -1;
        if (limit >= 0 && !k->cut && now - k->since_ms > limit) {
            k->cut = 1;
            shutdown(k->fd, SHUT_RDWR);
        }
    }
}

static void *reaper(void *arg)
{
    dw_sim_control *c = arg;
    pthread_mutex_lock(&c->guard_lock);
    while (!c->reaper_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->reaper_wake, &c->guard_lock, &ts);
        reap(c, now_ms());
    }
    pthread_mutex_unlock(&c->guard_lock);
    return NULL;
}

int dw__ctl_guard_init(dw_sim_control *c)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->reaper_wake, &a);
    pthread_condattr_destroy(&a);
    if (rc != 0)
        return -1;
    pthread_mutex_init(&c->guard_lock, NULL);
    c->guard_ready = 1;
    return 0;
}

int dw__ctl_guard_start(dw_sim_control *c)
{
    if (pthread_create(&c->reaper, NULL, reaper, c) != 0)
        return -1;
    c->reaper_running = 1;
    return 0;
}

void dw__ctl_guard_stop(dw_sim_control *c)
{
    if (!c->reaper_running)
        return;
    pthread_mutex_lock(&c->guard_lock);
    c->reaper_stop = 1;
    pthread_cond_signal(&c->reaper_wake);
    pthread_mutex_unlock(&c->guard_lock);
    pthread_join(c->reaper, NULL);
    c->reaper_running = 0;
}

void dw__ctl_guard_free(dw_sim_control *c)
{
    if (!c->guard_ready)
        return;
    dw__ctl_guard_stop(c);
    while (c->conns)
        dw__ctl_conn_close(c, c->conns);
    pthread_cond_destroy(&c->reaper_wake);
    pthread_mutex_destroy(&c->guard_lock);
    c->guard_ready = 0;
}

size_t dw__ctl_bodies_cap(const dw_sim_control *c)
{
    return c->o.max_body * GUARD_BODIES;
}

int dw__ctl_body_take(dw_sim_control *c, size_t n, size_t *held)
{
    pthread_mutex_lock(&c->guard_lock);
    int ok = n <= dw__ctl_bodies_cap(c) - c->bodies_held;
    if (ok)
        c->bodies_held += n;
    if (held)
        *held = c->bodies_held;
    pthread_mutex_unlock(&c->guard_lock);
    return ok;
}

void dw__ctl_body_give(dw_sim_control *c, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&c->guard_lock);
    c->bodies_held -= n;
    pthread_mutex_unlock(&c->guard_lock);
}
