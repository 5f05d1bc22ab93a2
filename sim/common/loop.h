/* devwire-sim's event loop: one libuv loop, run by one thread, that owns
 * every device of the process (listeners, connections, timers, writes).
 *
 * Nothing outside the loop thread touches a device's state: another thread
 * (main's signal handling, a benchmark) hands work to the loop with
 * dw_sim_loop_call, which runs a function on the loop thread and waits for
 * it. Before dw_sim_loop_start and after dw_sim_loop_stop there is no loop
 * thread, and calls run at once in the caller's thread.
 *
 *     dw_sim_loop *l;
 *     dw_sim_loop_new(&l, &err);
 *     ... create handles on dw_sim_loop_uv(l) ...
 *     dw_sim_loop_start(l, &err);        // the loop thread runs
 *     dw_sim_loop_call(l, fn, arg);      // fn(arg) on the loop thread
 *     ... close every handle (from a call) ...
 *     dw_sim_loop_stop(l);               // returns when the loop is done
 *     dw_sim_loop_free(l); */
#ifndef DW_SIM_LOOP_H
#define DW_SIM_LOOP_H

#include <uv.h>

#include <devwire/devwire.h>

typedef struct dw_sim_loop dw_sim_loop;

/* A loop with nothing on it yet. DW_OK and *out, or an error in `err`. */
int dw_sim_loop_new(dw_sim_loop **out, dw_error *err);
/* The libuv loop, to create handles on (from the loop thread once started). */
uv_loop_t *dw_sim_loop_uv(dw_sim_loop *l);
/* Run the loop in a background thread (asynchronous signals blocked there,
 * so the process's signals reach its other threads). DW_OK or an error. */
int dw_sim_loop_start(dw_sim_loop *l, dw_error *err);
/* Run fn(arg) on the loop thread and return once it has returned. From
 * the loop thread itself, or while no loop thread runs, fn runs at once.
 * Thread-safe; not async-signal-safe. */
void dw_sim_loop_call(dw_sim_loop *l, void (*fn)(void *), void *arg);
/* Let the loop end: the caller has closed (or asked to close) every handle
 * it created; this closes the loop's own, waits until every close callback
 * ran and joins the loop thread (or, if it never started, runs the loop
 * here until it is done). Idempotent. */
void dw_sim_loop_stop(dw_sim_loop *l);
/* The loop's read buffer (*size bytes), shared by every connection of every
 * device on the loop: a read lands here and is consumed before the loop runs
 * anything else, so one buffer serves them all. Loop thread only. */
uint8_t *dw_sim_loop_read_buffer(dw_sim_loop *l, size_t *size);
/* Stop (if needed) and free. Accepts NULL. */
void dw_sim_loop_free(dw_sim_loop *l);

#endif
