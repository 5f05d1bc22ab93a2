/* devwire-sim's event loop: see loop.h. */
#include "common/loop.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUFFER_SIZE ((size_t)64 * 1024)

/* One dw_sim_loop_call waiting for the loop thread (on the caller's stack). */
typedef struct call {
    void (*fn)(void *);
    void *arg;
    int done;
    struct call *next;
} call;

struct dw_sim_loop {
    uv_loop_t uv;
    uv_async_t wake; /* runs queued calls on the loop thread */
    pthread_mutex_t lock;
    pthread_cond_t done;
    call *calls; /* queued, oldest first */
    call **tail;
    pthread_t thread;
    int running; /* the loop thread exists (set and read by the owner's threads) */
    int stopped;
    uint8_t *rbuf; /* every read lands here (dw_sim_loop_read_buffer) */
};

/* On the loop thread: run every queued call, then tell the callers. */
static void on_wake(uv_async_t *a)
{
    dw_sim_loop *l = a->data;
    pthread_mutex_lock(&l->lock);
    call *c = l->calls;
    l->calls = NULL;
    l->tail = &l->calls;
    pthread_mutex_unlock(&l->lock);
    while (c) {
        call *next = c->next;
        c->fn(c->arg);
        pthread_mutex_lock(&l->lock);
        c->done = 1; /* c lives on the caller's stack: not touched after this */
        pthread_cond_broadcast(&l->done);
        pthread_mutex_unlock(&l->lock);
        c = next;
    }
}

int dw_sim_loop_new(dw_sim_loop **out, dw_error *err)
{
    *out = NULL;
    dw_sim_loop *l = calloc(1, sizeof *l);
    if (l && !(l->rbuf = malloc(READ_BUFFER_SIZE))) {
        free(l);
        l = NULL;
    }
    if (!l)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    int rc = uv_loop_init(&l->uv);
    if (rc == 0) {
        rc = uv_async_init(&l->uv, &l->wake, on_wake);
        if (rc != 0)
            uv_loop_close(&l->uv);
    }
    if (rc != 0) {
        free(l->rbuf);
        free(l);
        return dw_error_set(err, DW_EIO, "event loop: %s", uv_strerror(rc));
    }
    l->wake.data = l;
    l->tail = &l->calls;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->done, NULL);
    *out = l;
    return DW_OK;
}

uv_loop_t *dw_sim_loop_uv(dw_sim_loop *l)
{
    return &l->uv;
}

uint8_t *dw_sim_loop_read_buffer(dw_sim_loop *l, size_t *size)
{
    *size = READ_BUFFER_SIZE;
    return l->rbuf;
}

static void *loop_main(void *arg)
{
    dw_sim_loop *l = arg;
    /* Named for top -H, perf and /proc/PID/task/TID/comm. */
    pthread_setname_np(pthread_self(), "devwire-loop");
    uv_run(&l->uv, UV_RUN_DEFAULT);
    return NULL;
}

int dw_sim_loop_start(dw_sim_loop *l, dw_error *err)
{
    if (l->running || l->stopped)
        return dw_error_set(err, DW_EINVAL, "event loop: already started");
    /* Signals go to the application's threads, never to the loop's. */
    sigset_t all, old;
    sigfillset(&all);
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP};
    for (size_t i = 0; i < sizeof sync_signals / sizeof sync_signals[0]; i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&l->thread, NULL, loop_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return dw_error_set(err, -rc, "event loop: cannot create a thread: %s", strerror(rc));
    l->running = 1;
    return DW_OK;
}

void dw_sim_loop_call(dw_sim_loop *l, void (*fn)(void *), void *arg)
{
    if (!l->running || pthread_equal(pthread_self(), l->thread)) {
        fn(arg);
        return;
    }
    call c = {fn, arg, 0, NULL};
    pthread_mutex_lock(&l->lock);
    *l->tail = &c;
    l->tail = &c.next;
    pthread_mutex_unlock(&l->lock);
    uv_async_send(&l->wake);
    pthread_mutex_lock(&l->lock);
    while (!c.done)
        pthread_cond_wait(&l->done, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

static void close_wake(void *arg)
{
    dw_sim_loop *l = arg;
    uv_close((uv_handle_t *)&l->wake, NULL); /* embedded in l: nothing to free */
}

void dw_sim_loop_stop(dw_sim_loop *l)
{
    if (l->stopped)
        return;
    dw_sim_loop_call(l, close_wake, l);
    if (l->running) {
        pthread_join(l->thread, NULL);
        l->running = 0;
    } else {
        uv_run(&l->uv, UV_RUN_DEFAULT);
    }
    l->stopped = 1;
}

void dw_sim_loop_free(dw_sim_loop *l)
{
    if (!l)
        return;
    dw_sim_loop_stop(l);
    uv_loop_close(&l->uv);
    pthread_cond_destroy(&l->done);
    pthread_mutex_destroy(&l->lock);
    free(l->rbuf);
    free(l);
}
