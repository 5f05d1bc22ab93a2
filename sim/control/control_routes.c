/* devwire-sim's control API: the routes, method and target to a resource's
 * handler (one control_<resource>.c each). A request's path is cut into
 * decoded segments and matched against the table's rows; a row allows its
 * methods and its handler tells them apart. Adding a resource is writing
 * its file and adding its row here. */
#include <string.h>

#include "control/control_int.h"

/* What a row answers: a path that names no device (only while recording,
 * for RECORDING), or one that names a server or a proxy as its second
 * segment. */
enum { ON_TOP = 1, ON_RECORDING = 2, ON_SERVER = 4, ON_PROXY = 8 };

/* A path is its segments joined by '/', a "*" standing for any one
 * segment; the methods are listed as a 405 lists them. */
typedef struct route {
    const char *path;
    unsigned on; /* ON_... */
    const char *allow;
    ctl_handler fn;
} route;

static const route routes[] = {
    {"", ON_TOP, "GET", dw__ctl_page_get},
    {"health", ON_TOP, "GET", dw__ctl_health_get},
    {"metrics", ON_TOP, "GET", dw__ctl_metrics_get},
    {"devices", ON_TOP, "GET", dw__ctl_devices_get},
    {"record/stop", ON_RECORDING, "POST", dw__ctl_record_stop},
    {"devices/*", ON_SERVER | ON_PROXY, "GET", dw__ctl_device_get},
    {"devices/*/state", ON_SERVER, "GET, PATCH", dw__ctl_state},
    {"devices/*/reset", ON_SERVER, "POST", dw__ctl_reset_post},
    {"devices/*/faults", ON_SERVER, "GET, POST, DELETE", dw__ctl_faults},
    {"devices/*/faults/*", ON_SERVER, "DELETE", dw__ctl_faults},
    {"devices/*/journal", ON_SERVER | ON_PROXY, "GET", dw__ctl_journal_get},
    {"devices/*/journal/wait", ON_SERVER | ON_PROXY, "GET", dw__ctl_journal_wait},
    {"devices/*/verify", ON_SERVER, "POST", dw__ctl_verify_post},
    {"devices/*/script", ON_SERVER, "PUT", dw__ctl_script_put},
    {"devices/*/faults", ON_PROXY, "GET, POST, DELETE", dw__ctl_proxy_faults},
    {"devices/*/faults/*", ON_PROXY, "DELETE", dw__ctl_proxy_faults},
};

/* Split the path into decoded segments: their number, or -1. */
static int split_path(const char *path, char seg[MAX_SEGMENTS][MAX_SEGMENT])
{
    int n = 0;
    if (!path || *path != '/')
        return -1;
    for (const char *p = path + 1; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == MAX_SEGMENTS || dw__ctl_decode(p, len, 0, seg[n], MAX_SEGMENT) != 0)
            return -1;
        n++;
        if (!end)
            break;
        p = end + 1;
        if (!*p) /* a trailing slash */
            break;
    }
    return n;
}

/* 1 when seg[0..n) has the row's path; *id is then what a "*" after the
 * device's name matched (a fault's id), or NULL. */
static int matches(const char *path, char seg[MAX_SEGMENTS][MAX_SEGMENT], int n, const char **id)
{
    int k = 0;
    *id = NULL;
    for (const char *p = path; *p; k++) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (k == n)
            return 0;
        if (len == 1 && *p == '*') {
            if (k >= 2) /* seg[1] is the device's name */
                *id = seg[k];
        } else if (strlen(seg[k]) != len || memcmp(seg[k], p, len) != 0) {
            return 0;
        }
        p += end ? len + 1 : len;
    }
    return k == n;
}

static ctl_device *find_device(dw_sim_control *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->devs[i].name, name) == 0)
            return &c->devs[i];
    return NULL;
}

/* No row for a path that names device d (or no device, d NULL). */
static void not_found(const ctl_device *d, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    if (!d)
        dw__ctl_error(r, 404, "path", "%.200s: no such endpoint", req->path);
    else if (d->proxy)
        dw__ctl_error(
            r, 404, "path",
            "%s: no such endpoint: device %s is a proxy (to %s); it has only faults and a journal",
            req->path, d->name, d->upstream);
    else
        dw__ctl_error(r, 404, "path", "%s: no such endpoint", req->path);
}

void dw__ctl_route(dw_sim_control *c, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    char seg[MAX_SEGMENTS][MAX_SEGMENT];
    int n = split_path(req->path, seg);
    if (n < 0) {
        dw__ctl_error(r, 404, "path", "%.200s: no such endpoint", req->path ? req->path : "");
        return;
    }
    ctl_call call = {c, NULL, NULL, req, r};
    unsigned on = ON_TOP | (c->o.record_stop ? ON_RECORDING : 0);
    if (n >= 2 && strcmp(seg[0], "devices") == 0) {
        if (!(call.d = find_device(c, seg[1]))) {
            dw__ctl_error(r, 404, "path", "no device named \"%s\"", seg[1]);
            return;
        }
        on = call.d->proxy ? ON_PROXY : ON_SERVER;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!(routes[i].on & on) || !matches(routes[i].path, seg, n, &call.id))
            continue;
        if (dw__ctl_allowed(req, r, routes[i].allow))
            routes[i].fn(&call);
        return;
    }
    not_found(call.d, req, r);
}
