/* A minimal HTTP/1.1 client for tests of devwire-sim's control API: one
 * request per connection ("Connection: close"), the whole answer read until
 * the server closes. Blocking, with a timeout on every read and write. */
#ifndef DW_TEST_HTTP_CLIENT_H
#define DW_TEST_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "sim_proc.h"

typedef struct dw_test_http_reply {
    int status;    /* 0 when no answer came */
    char *headers; /* the header block, NUL-terminated (caller frees via _free) */
    char *body;    /* NUL-terminated */
    size_t body_len;
    char error[160]; /* why there is no answer */
} dw_test_http_reply;

/* Send METHOD TARGET to 127.0.0.1:port with `extra_headers` ("Name: value\r\n"
 * lines, may be NULL) and body[0..len) (a Content-Length is added when body
 * is not NULL). "Host: 127.0.0.1:PORT" is added unless extra_headers name
 * a Host, and "Content-Type: application/json" for a non-empty body unless
 * they name a Content-Type. Returns the status (0 on failure: r->error says
 * why). */
int dw_test_http(uint16_t port, const char *method, const char *target, const char *extra_headers,
                 const char *body, size_t len, int timeout_ms, dw_test_http_reply *r);
/* Send head[0..head_len) as it is (the request line and the headers, with
 * the blank line that ends them), then body[0..len) (may be NULL), and read
 * the answer as dw_test_http does. */
int dw_test_http_raw(uint16_t port, const char *head, size_t head_len, const char *body, size_t len,
                     int timeout_ms, dw_test_http_reply *r);
/* The value of header `name` (case-insensitive) in a reply, copied into
 * out[size]: 1 found, 0 not. */
int dw_test_http_header(const dw_test_http_reply *r, const char *name, char *out, size_t size);
void dw_test_http_reply_free(dw_test_http_reply *r);

/* The port of a simulator's control API, from its "control on
 * http://HOST:PORT" line (waited for up to timeout_ms); 0 if none. */
uint16_t dw_test_control_port(dw_sim_proc *p, int timeout_ms);

#endif
