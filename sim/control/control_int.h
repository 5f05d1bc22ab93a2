/* devwire-sim's control API, internal. Its files, top to bottom (each
 * calls only the ones below it):
 *
 *   control_http.c      the control's life, the HTTP server
 *   control_access.c    who may call and how: the token, a web page's
 *                       requests refused, the body's type
 *   control_routes.c    the route table: method and target to a resource
 *   control_<resource>.c  one resource each (page, health, metrics,
 *                       devices, record, state, reset, faults, journal,
 *                       verify, script, proxy); none calls another
 *   control_guard.c     the HTTP server's guards: the connections'
 *                       deadlines and the bodies' memory cap
 *   control_reply.c     what every resource shares: the request's parts,
 *                       the reply, a call on a device's loop */
#ifndef DW_SIM_CONTROL_INT_H
#define DW_SIM_CONTROL_INT_H

#include <pthread.h>

#include <cjson/cJSON.h>

#include "control/control.h"
#include "device/devctl.h"
#include "common/net.h"

typedef struct ctl_device {
    char *name;
    dw_sim_server *server;
    dw_sim_devctl *dev;
    int transport;
    struct dw_sim_proxy *proxy; /* a proxy in place of server (control_proxy.c) */
    struct dw_sim_proxy *front; /* the proxy in front of server applying "network", or NULL */
    char *upstream, *mode;
    cJSON *faults;           /* the proxy's faults added here, under fault_lock */
    dw_sim_journal *journal; /* a proxy's: what its "fuzz" faults changed */
} ctl_device;

/* The device's journal: a server's (its devctl's) or a proxy's. */
dw_sim_journal *dw__ctl_journal_of(const ctl_device *d);

/* A request's path has at most MAX_SEGMENTS segments of MAX_SEGMENT bytes
 * each, decoded. */
#define MAX_SEGMENTS 6
#define MAX_SEGMENT  256

/* A connection as control_guard.c sees it (its phase and deadline). */
typedef struct ctl_conn ctl_conn;

struct dw_sim_control {
    dw_sim_control_options o; /* host and token point at the copies below */
    char *host, *token;
    ctl_device *devs;
    size_t n;
    struct MHD_Daemon *mhd;
    char addr[DW_SIM_ADDR_MAX];
    char bound_host[DW_SIM_ADDR_MAX]; /* addr's host, without brackets */
    uint16_t port;                    /* addr's port */
    int stopped;
    pthread_mutex_t fault_lock;
    /* control_guard.c's: the connections, the bytes reserved for bodies
     * being received, the reaper thread; all under guard_lock. */
    pthread_mutex_t guard_lock;
    pthread_cond_t reaper_wake;
    pthread_t reaper;
    ctl_conn *conns;
    size_t bodies_held;
    int guard_ready, reaper_running, reaper_stop;
};

/* One request on its way to a resource: the device its path names (NULL
 * for /health, /devices...), and for .../faults/ID the ID. */
typedef struct ctl_call {
    dw_sim_control *c;
    ctl_device *d;
    const char *id;
    const dw_sim_http_request *req;
    dw_sim_http_response *r;
} ctl_call;

/* A resource's handler, for the methods its route allows: it answers in
 * call->r, whatever happens. */
typedef void (*ctl_handler)(const ctl_call *call);

/* ---- control_access.c: below control_http.c ---- */

/* Who may call: a token in the URL is refused (400), the bearer token
 * checked (401; GET / excepted, the page holds no data), and without a
 * token a request a web page could have sent refused (403: Host, Origin,
 * Sec-Fetch-Site). 1 when the request goes on, else 0 with the answer in
 * r. */
int dw__ctl_access(const dw_sim_control *c, const dw_sim_http_request *req,
                   dw_sim_http_response *r);
/* 1 when the request carries the token, or none is needed. */
int dw__ctl_authorized(const dw_sim_control *c, const dw_sim_http_request *req);
/* 1 when the request has no body or declares it JSON
 * (application/json[; params]); else 0 with a 415 in r. */
int dw__ctl_body_type(const dw_sim_http_request *req, dw_sim_http_response *r);

/* ---- control_guard.c: below control_http.c ---- */

/* Where a connection is: waiting for a request's headers (since it
 * connected or its last answer), receiving its body, or being handled. */
enum { CTL_PHASE_HEADERS, CTL_PHASE_BODY, CTL_PHASE_HANDLING };
/* The deadlines of the first two phases: a connection past one is cut. A
 * request being handled (a journal wait) has none. */
#define GUARD_HEADERS_MS 10000
#define GUARD_BODY_MS    60000
/* The bodies being received hold at most this many times max_body. */
#define GUARD_BODIES 4

/* Set up guard_lock and the reaper's condition: 0, or -1. */
int dw__ctl_guard_init(dw_sim_control *c);
/* Start the reaper thread (after the server): 0, or -1. */
int dw__ctl_guard_start(dw_sim_control *c);
/* Stop and join the reaper (idempotent). */
void dw__ctl_guard_stop(dw_sim_control *c);
/* Stop the reaper, forget every connection, destroy the lock. */
void dw__ctl_guard_free(dw_sim_control *c);
/* A new connection on socket fd, in the headers phase (NULL: out of
 * memory; it then has no deadline). */
ctl_conn *dw__ctl_conn_open(dw_sim_control *c, int fd);
/* Move k (may be NULL) to `phase`; its deadline starts now. */
void dw__ctl_conn_phase(dw_sim_control *c, ctl_conn *k, int phase);
/* Forget k (may be NULL), before its socket is closed. */
void dw__ctl_conn_close(dw_sim_control *c, ctl_conn *k);
/* The cap on the bytes reserved for bodies being received. */
size_t dw__ctl_bodies_cap(const dw_sim_control *c);
/* Reserve n bytes of the cap: 1, or 0 when they do not fit; *held (may be
 * NULL) gets the bytes reserved now. */
int dw__ctl_body_take(dw_sim_control *c, size_t n, size_t *held);
/* Give back n reserved bytes. */
void dw__ctl_body_give(dw_sim_control *c, size_t n);

/* ---- control_reply.c: below every resource ---- */

/* Answer with a JSON body (taken; NULL means out of memory: a 500). */
void dw__ctl_json(dw_sim_http_response *r, int status, cJSON *body);
/* Answer {"error": MESSAGE, "where": WHERE}. */
void dw__ctl_error(dw_sim_http_response *r, int status, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Bytes as JSON: a string when they are printable text, else {"hex": ...};
 * NULL when out of memory. */
cJSON *dw__ctl_bytes_json(const uint8_t *p, size_t n);
/* Percent-decode p[0..n) into out[size] ('+' is a space when plus): 0, or
 * -1 when too long, malformed or holding a NUL byte. */
int dw__ctl_decode(const char *p, size_t n, int plus, char *out, size_t size);
/* The value of `key` in the query, decoded: 1 found, 0 absent, -1 bad. */
int dw__ctl_query_get(const char *query, const char *key, char *out, size_t size);
/* A whole number in [lo, hi] from the query: 1 (set), 0 (absent), or -1
 * after answering 422. */
int dw__ctl_query_number(const dw_sim_http_request *req, const char *key, long long lo,
                         long long hi, long long *v, dw_sim_http_response *r);
/* The request's body as JSON (an empty one is {} unless required), or NULL
 * after answering 400. */
cJSON *dw__ctl_parse_body(const dw_sim_http_request *req, dw_sim_http_response *r, int required);
/* 1 when the request's method is one of `allow` ("GET, PATCH"); else 405. */
int dw__ctl_allowed(const dw_sim_http_request *req, dw_sim_http_response *r, const char *allow);

/* A call on a device's loop thread: what goes in, what comes out, and on a
 * refusal the status, where and why. */
typedef struct ctl_job {
    ctl_device *d;
    const cJSON *in;
    cJSON *out;
    int status;
    char where[128];
    char error[400];
    long long num;
    int flag;
    void *arg; /* what else the call takes (a fault's spec) */
} ctl_job;
/* Run fn(j) on d's loop thread (j->d set to d), and wait for it. */
void dw__ctl_on_loop(ctl_device *d, void (*fn)(void *), ctl_job *j);

/* ---- control_routes.c ---- */

/* Find the request's resource and call it; a 404 or 405 when there is
 * none. The token and the body's size were checked. */
void dw__ctl_route(dw_sim_control *c, const dw_sim_http_request *req, dw_sim_http_response *r);

/* ---- the resources: a file and a row of the route table each ---- */

/* Each in control_<name>.c after its name (dw__ctl_device_get and
 * dw__ctl_devices_get in control_devices.c, dw__ctl_proxy_faults in
 * control_proxy.c); the comment names the route. */
void dw__ctl_page_get(const ctl_call *call);     /* GET / */
void dw__ctl_health_get(const ctl_call *call);   /* GET /health */
void dw__ctl_metrics_get(const ctl_call *call);  /* GET /metrics */
void dw__ctl_devices_get(const ctl_call *call);  /* GET /devices */
void dw__ctl_device_get(const ctl_call *call);   /* GET /devices/NAME, a server or a proxy */
void dw__ctl_record_stop(const ctl_call *call);  /* POST /record/stop, when recording */
void dw__ctl_state(const ctl_call *call);        /* GET, PATCH /devices/NAME/state */
void dw__ctl_reset_post(const ctl_call *call);   /* POST /devices/NAME/reset */
void dw__ctl_faults(const ctl_call *call);       /* GET, POST, DELETE a server's .../faults[/ID] */
void dw__ctl_journal_get(const ctl_call *call);  /* GET /devices/NAME/journal */
void dw__ctl_journal_wait(const ctl_call *call); /* GET /devices/NAME/journal/wait */
void dw__ctl_verify_post(const ctl_call *call);  /* POST /devices/NAME/verify */
void dw__ctl_script_put(const ctl_call *call);   /* PUT /devices/NAME/script */
void dw__ctl_proxy_faults(const ctl_call *call); /* GET, POST, DELETE a proxy's .../faults[/ID] */

#endif
