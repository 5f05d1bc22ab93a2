/* The baseline: a minimal blocking C line server, one thread per connection,
 * each reading with read() and writing every "\n"-terminated line straight
 * back with write(). What a competent hand-written server does with no
 * framework at all; devwire's server is measured against it. */
#ifndef BENCH_BASELINE_SERVER_H
#define BENCH_BASELINE_SERVER_H

#include <stdint.h>

typedef struct bench_baseline bench_baseline;

/* Listen on 127.0.0.1, port chosen by the kernel, and serve in the
 * background. NULL on failure. */
bench_baseline *bench_baseline_start(void);
uint16_t bench_baseline_port(const bench_baseline *b);
/* Connections whose thread is still running. */
int bench_baseline_connections(bench_baseline *b);
/* Stop accepting, end every connection, join every thread, free. */
void bench_baseline_stop(bench_baseline *b);

/* The matching client, as bench_client_ops (ctx: a uint16_t * port). */
struct bench_client_ops;
extern const struct bench_client_ops bench_raw_client;

#endif
