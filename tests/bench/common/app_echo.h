/* Pieces the server, Telnet and simulator benchmarks share: an echoing
 * application-server callback, load-generator client ops over a
 * dw_app_client, and a median. */
#ifndef BENCH_APP_ECHO_H
#define BENCH_APP_ECHO_H

#include <devwire/devwire.h>

#include "loadgen.h"

/* dw_app_callback that answers every byte payload with a copy of itself. */
int bench_echo(void *user, dw_conn *c, const void *request, void **response);

/* A devwire TCP server on 127.0.0.1 whose application server echoes each
 * "\n"-terminated line: the "bare server" the benchmarks measure against. */
typedef struct bench_echo_server {
    dw_marshaller *lines; /* "\n" sentinel framing, usable by clients too */
    dw_app_server *app;
    dw_tcp_server *tcp;
} bench_echo_server;

/* Start one with options `so` (NULL: the defaults). DW_OK or an error (err
 * says what, may be NULL); free with bench_echo_server_free either way. */
int bench_echo_server_start(bench_echo_server *e, const dw_tcp_server_options *so, dw_error *err);
void bench_echo_server_free(bench_echo_server *e);

/* Client ops for bench_run whose ctx is a dw_app_client over byte
 * marshallers: one application session per connection, a round trip is
 * send_receive, and the response must equal the request. */
extern const bench_client_ops bench_app_client_ops;

/* The median of v[0..n) (sorts a copy; n >= 1). */
double bench_median(const double *v, int n);

#endif
