/* devwire-sim's control API: GET /metrics, every server's figures in the
 * Prometheus text format, family by family (a proxy has none). Each
 * server's are read on its loop. */
#include "common/json_bytes.h"
#include "control/control_int.h"
#include "device/server_int.h"

typedef struct metrics_job {
    ctl_device *d;
    dw_buf *fam;
    int rc;
} metrics_job;

static void metrics_one(void *arg)
{
    metrics_job *m = arg;
    m->rc = dw_sim_devctl_metrics(m->d->server, m->d->name, m->fam);
}

void dw__ctl_metrics_get(const ctl_call *call)
{
    const dw_sim_control *c = call->c;
    dw_sim_http_response *r = call->r;
    dw_buf fam[DW_SIM_METRIC_FAMILIES];
    for (size_t i = 0; i < DW_SIM_METRIC_FAMILIES; i++)
        dw_buf_init(&fam[i]);
    int rc = DW_OK;
    for (size_t i = 0; i < c->n && rc == DW_OK; i++) {
        if (c->devs[i].proxy)
            continue;
        metrics_job m = {&c->devs[i], fam, DW_OK};
        dw_sim_loop_call(c->devs[i].server->loop, metrics_one, &m);
        rc = m.rc;
    }
    dw_buf_clear(&r->body);
    for (size_t i = 0; i < DW_SIM_METRIC_FAMILIES && rc == DW_OK; i++) {
        const char *name, *type, *help;
        dw_sim_metric_family(i, &name, &type, &help);
        rc = dw_buf_printf(&r->body, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
        if (rc == DW_OK)
            rc = dw_buf_append(&r->body, fam[i].data, fam[i].len);
    }
    for (size_t i = 0; i < DW_SIM_METRIC_FAMILIES; i++)
        dw_buf_free(&fam[i]);
    /* Labels hold the scripts' names: UTF-8 as the JSON answers are. */
    if (rc == DW_OK)
        rc = dw_sim_utf8_repair(&r->body);
    if (rc != DW_OK) {
        dw__ctl_json(r, 500, NULL);
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
