/* devwire-sim's control API, internal: what control.c (the HTTP server),
 * control_api.c (the routes), control_verify.c and control_page.c share. */
#ifndef DW_SIM_CONTROL_INT_H
#define DW_SIM_CONTROL_INT_H

#include <cjson/cJSON.h>

#include "control.h"
#include "control_dev.h"
#include "net.h"

typedef struct ctl_device {
    char *name;
    dw_sim_server *server;
    dw_sim_devctl *dev;
    int transport;
} ctl_device;

struct dw_sim_control {
    dw_sim_control_options o; /* host and token point at the copies below */
    char *host, *token;
    ctl_device *devs;
    size_t n;
    struct MHD_Daemon *mhd;
    char addr[DW_SIM_ADDR_MAX];
    int stopped;
};

/* Answer with a JSON body (taken; NULL means out of memory: a 500). */
void dw__ctl_json(dw_sim_http_response *r, int status, cJSON *body);
/* Answer {"error": MESSAGE, "where": WHERE}. */
void dw__ctl_error(dw_sim_http_response *r, int status, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The "when" (or "expect") as written of the rule or step named `name`, a
 * copy the caller frees, or NULL. */
typedef char *(*dw__ctl_rule_text)(const char *name, void *arg);
/* POST .../verify on the device's journal (control_verify.c); rule_text
 * gives what a rule's near misses are measured against. */
void dw__ctl_verify(dw_sim_journal *j, const cJSON *body, dw__ctl_rule_text rule_text, void *arg,
                    dw_sim_http_response *r);
/* GET /: the status page (control_page.c). */
void dw__ctl_page(dw_sim_http_response *r);

#endif
