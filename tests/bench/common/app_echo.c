#include "app_echo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bench_echo(void *user, dw_conn *c, const void *request, void **response)
{
    (void)user;
    (void)c;
    const dw_buf *in = request;
    dw_buf *out = calloc(1, sizeof *out);
    if (!out || dw_buf_append(out, in->data, in->len) != DW_OK) {
        free(out);
        return DW_ENOMEM;
    }
    *response = out;
    return DW_OK;
}

int bench_echo_server_start(bench_echo_server *e, const dw_tcp_server_options *so, dw_error *err)
{
    memset(e, 0, sizeof *e);
    dw_tcp_server_options defaults;
    dw_tcp_server_options_init(&defaults);
    e->lines = dw_sentinel_marshaller_new("\n", 1);
    e->app = e->lines ? dw_app_server_new(e->lines, e->lines, bench_echo, NULL) : NULL;
    if (!e->app)
        return DW_ENOMEM;
    dw_server_handler h = dw_app_server_handler(e->app);
    int rc = dw_tcp_server_new(so ? so : &defaults, &h, &e->tcp, err);
    return rc == DW_OK ? dw_tcp_server_start(e->tcp, err) : rc;
}

void bench_echo_server_free(bench_echo_server *e)
{
    dw_tcp_server_free(e->tcp);
    dw_app_server_free(e->app);
    dw_marshaller_free(e->lines);
    memset(e, 0, sizeof *e);
}

typedef struct app_conn {
    dw_app_session *s;
    dw_buf resp;
} app_conn;

static void *app_open(void *ctx)
{
    app_conn *c = calloc(1, sizeof *c);
    dw_error err;
    dw_error_clear(&err);
    if (!c || dw_app_client_connect(ctx, &c->s, &err) != DW_OK) {
        fprintf(stderr, "bench: %s\n", dw_error_message(&err));
        free(c);
        return NULL;
    }
    return c;
}

static int app_round_trip(void *p, const char *req, size_t n)
{
    app_conn *c = p;
    if (dw_app_session_send_receive_bytes(c->s, req, n, &c->resp, NULL) != DW_OK)
        return -1;
    return c->resp.len == n && memcmp(c->resp.data, req, n) == 0 ? 0 : -1;
}

static void app_close(void *p)
{
    app_conn *c = p;
    dw_app_session_close(c->s);
    dw_buf_free(&c->resp);
    free(c);
}

const bench_client_ops bench_app_client_ops = {app_open, app_round_trip, app_close};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *v, int n)
{
    double *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return 0;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}
