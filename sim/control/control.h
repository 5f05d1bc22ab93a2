/* devwire-sim's control API: HTTP/1.1 with JSON bodies (libmicrohttpd),
 * to change the simulated devices while they run and to see what they
 * were sent (docs/control.md).
 *
 *   GET    /health, /devices, /metrics (Prometheus), / (a status page)
 *   GET    /devices/NAME                        the device
 *   GET    /devices/NAME/state                  its variables
 *   PATCH  /devices/NAME/state                  set variables
 *   POST   /devices/NAME/reset                  back to the start
 *   GET    /devices/NAME/faults                 the faults injected and active
 *   POST   /devices/NAME/faults                 inject one
 *   DELETE /devices/NAME/faults[/ID]            remove one, or all
 *   GET    /devices/NAME/journal?since=&limit=  the requests and their answers
 *   GET    /devices/NAME/journal/wait?match=&timeout_ms=   wait for a request
 *   POST   /devices/NAME/verify                 check what the device was sent
 *   PUT    /devices/NAME/script                 serve another script
 *
 * The HTTP server runs its own threads (one per HTTP connection, so a
 * long-poll waits in its own thread). Anything that touches a device is
 * handed to the device's loop thread (dw_sim_loop_call) and is short: a
 * client can slow its own request, never the device. The journal is read
 * under its own lock (journal.h). Errors are JSON: {"error": "...",
 * "where": "..."} with 400, 401, 403 (a request a web page could have
 * sent), 404, 405, 408 (a wait timed out), 413, 415 (a body not sent as
 * JSON), 422 (a field that is wrong: "where" names it). Every answer is
 * UTF-8: bytes that are not become U+FFFD. */
#ifndef DW_SIM_CONTROL_H
#define DW_SIM_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "common/loop.h"
#include "device/server.h"

typedef struct dw_sim_control dw_sim_control;
struct cJSON;

/* One device as the control API sees it. Strings are copied. */
typedef struct dw_sim_control_device {
    const char *name; /* "default" for the only, unnamed device */
    dw_sim_server *server;
    int transport; /* the transport override of PUT .../script, or -1 */
    /* A proxy (--proxy, --record) in place of a server: its faults are the
     * network faults (control_proxy.c); `upstream` and `mode` ("proxy",
     * "record") are shown in /devices. */
    struct dw_sim_proxy *proxy;
    const char *upstream, *mode;
    /* The raw proxy in front of `server` that applies its script's
     * "network" (run/serve.c), or NULL: PUT .../script replaces its faults. */
    struct dw_sim_proxy *front;
} dw_sim_control_device;

typedef struct dw_sim_control_options {
    const char *host;    /* default "127.0.0.1" */
    uint16_t port;       /* 0: the kernel chooses */
    const char *token;   /* bearer token every request must carry; NULL: none */
    size_t journal_size; /* entries per device, default DW_SIM_JOURNAL_DEFAULT */
    int max_wait_ms;     /* the longest journal wait, default 600000 */
    size_t max_body;     /* bytes, default DW_SIM_CONTROL_MAX_BODY */
    const dw_logger *logger;
    /* POST /record/stop (--record): write the recording now and say what it
     * holds ({"out", "rules", ...} in *out); DW_OK, or an error in `err`.
     * Called on an HTTP thread. NULL: no such endpoint. */
    int (*record_stop)(void *arg, struct cJSON **out, dw_error *err);
    /* Then, once the answer was sent (on the HTTP thread): end the run. */
    void (*record_stopped)(void *arg);
    void *record_arg;
} dw_sim_control_options;

#define DW_SIM_CONTROL_MAX_BODY ((size_t)16 * 1024 * 1024)

void dw_sim_control_options_init(dw_sim_control_options *o);

/* The control API for devs[0..n): gives each device its control side
 * (journal, faults, figures; device/devctl.h). Call before the loops start.
 * DW_OK and *out, or an error in `err`. */
int dw_sim_control_new(const dw_sim_control_options *o, const dw_sim_control_device *devs, size_t n,
                       dw_sim_control **out, dw_error *err);
/* Listen: DW_OK, or `err` names the address ("control 127.0.0.1:80: ..."). */
int dw_sim_control_start(dw_sim_control *c, dw_error *err);
/* "HOST:PORT" bound (after start). */
const char *dw_sim_control_address(const dw_sim_control *c);
/* End the waits, stop the HTTP server (its threads are joined) and close
 * the devices' control handles, each on its device's loop. Call before the
 * devices stop. */
void dw_sim_control_stop(dw_sim_control *c);
/* After the loops stopped and the summaries were printed. Accepts NULL. */
void dw_sim_control_free(dw_sim_control *c);

/* ---- the handler, without HTTP (tests and the fuzz target call it) ---- */

typedef struct dw_sim_http_request {
    const char *method;        /* "GET", ... */
    const char *path;          /* "/devices/sg/state", percent-encoded */
    const char *query;         /* "since=3&limit=10" (no '?'), or NULL */
    const char *authorization; /* the Authorization header, or NULL */
    const uint8_t *body;       /* may be NULL when body_len is 0 */
    size_t body_len;
    /* The headers that tell a web page's request (control_access.c), and the
     * body's type; NULL when absent. */
    const char *host;           /* Host */
    const char *origin;         /* Origin */
    const char *sec_fetch_site; /* Sec-Fetch-Site */
    const char *content_type;   /* Content-Type */
} dw_sim_http_request;

typedef struct dw_sim_http_response {
    int status;
    const char *content_type; /* static */
    const char *allow;        /* 405: the methods allowed (static), else NULL */
    dw_buf body;
    void (*then)(void *arg); /* called once the answer was sent, or NULL */
    void *then_arg;
} dw_sim_http_response;

void dw_sim_http_response_init(dw_sim_http_response *r);
void dw_sim_http_response_free(dw_sim_http_response *r);

/* Answer one request. Never fails: out of memory is a 500. Thread-safe. */
void dw_sim_control_handle(dw_sim_control *c, const dw_sim_http_request *req,
                           dw_sim_http_response *resp);

#endif
