/* The event-loop baseline: a minimal line server on one thread with epoll,
 * nonblocking sockets and a buffer per connection. It answers the line
 * "MEAS:VOLT?" with "1.234" and any other line with "ERR", each reply
 * "\n"-terminated, in order, however many lines arrive at once. What a
 * competent hand-written event-loop server does with no framework at all. */
#ifndef BENCH_EPOLL_SERVER_H
#define BENCH_EPOLL_SERVER_H

#include <stdint.h>

typedef struct bench_epoll_server bench_epoll_server;

/* Listen on 127.0.0.1, port chosen by the kernel, and serve on one
 * background thread. NULL on failure. */
bench_epoll_server *bench_epoll_start(void);
uint16_t bench_epoll_port(const bench_epoll_server *s);
/* Stop the thread, close every connection, free. */
void bench_epoll_stop(bench_epoll_server *s);

#endif
