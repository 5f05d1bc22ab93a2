/* Pieces the server, Telnet and simulator benchmarks share: an echoing
 * application-server callback, load-generator client ops over a
 * dw_app_client, and a median. */
#ifndef BENCH_APP_ECHO_H
#define BENCH_APP_ECHO_H

#include <devwire/devwire.h>

#include "loadgen.h"

/* dw_app_callback that answers every byte payload with a copy of itself. */
int bench_echo(void *user, dw_conn *c, const void *request, void **response);

/* Client ops for bench_run whose ctx is a dw_app_client over byte
 * marshallers: one application session per connection, a round trip is
 * send_receive, and the response must equal the request. */
extern const bench_client_ops bench_app_client_ops;

/* The median of v[0..n) (sorts a copy; n >= 1). */
double bench_median(const double *v, int n);

#endif
