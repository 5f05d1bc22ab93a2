/* devwire-sim: bench files (--bench), a JSON list of devices, each a script
 * to serve with its own address and transport. Errors are located as the
 * script loader's are; the scripts themselves are loaded later. */
#include "script/load_int.h"

#include "common/names.h"
#include "common/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const device_keys[] = {"name",        "script", "listen", "transport",
                                          "description", "link",   "baud"};
enum { D_NAME, D_SCRIPT, D_LISTEN, D_TRANSPORT, D_DESCRIPTION, D_LINK, D_BAUD, D_NKEYS };

/* The script's path as the bench names it: relative to the bench's directory. */
static int device_script(dw__load *c, const cJSON *v, dw_sim_device_spec *d)
{
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return dw__load_fail(c, v, 0, "expected the script's file name");
    const char *slash = strrchr(c->name, '/');
    int dir = v->valuestring[0] != '/' && slash ? (int)(slash - c->name) : -1;
    int w = dir >= 0 ? asprintf(&d->script, "%.*s/%s", dir, c->name, v->valuestring)
                     : asprintf(&d->script, "%s", v->valuestring);
    return w < 0 ? dw__load_oom(c) : DW_OK;
}

/* "link": where to put a symbolic link to the serial line's terminal. */
static int device_link(dw__load *c, const cJSON *v, dw_sim_device_spec *d)
{
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return dw__load_fail(c, v, 0, "expected a path for the link (\"/tmp/ttyUSB-sim\")");
    if (v->valuestring[strlen(v->valuestring) - 1] == '/')
        return dw__load_fail(c, v, 0, "expected a path for the link, not a directory (\"%.60s\")",
                             v->valuestring);
    return dw__load_string(c, v, &d->link);
}

static int parse_device(dw__load *c, const cJSON *v, dw_sim_names *names, dw_sim_device_spec *d)
{
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object (a device: name, script, listen)");
    const cJSON *m[D_NKEYS];
    int rc = dw__load_members(c, v, device_keys, D_NKEYS, m);
    if (rc == DW_OK && (!m[D_NAME] || !m[D_SCRIPT]))
        return dw__load_fail(c, v, 0, "a device needs \"%s\"", m[D_NAME] ? "script" : "name");
    d->transport = -1;
    for (int k = 0; rc == DW_OK && k < D_NKEYS; k++) {
        if (!m[k])
            continue;
        size_t old = dw__load_push(c, device_keys[k]);
        int e;
        if (k == D_NAME && (rc = dw__load_string(c, m[k], &d->name)) == DW_OK && !d->name[0])
            rc = dw__load_fail(c, m[k], 0, "must not be empty");
        if (rc == DW_OK && k == D_NAME && dw_sim_names_add(names, d->name) != 1)
            rc = dw__load_fail(c, m[k], 0, "another device is named \"%.60s\"", d->name);
        if (k == D_SCRIPT)
            rc = device_script(c, m[k], d);
        if (k == D_LISTEN && (!cJSON_IsString(m[k]) ||
                              dw_sim_parse_hostport(m[k]->valuestring, &d->host, &d->port) != 0))
            rc = dw__load_fail(c, m[k], 0,
                               "expected \"HOST:PORT\" (\"127.0.0.1:5025\", \"[::1]:0\")");
        if (k == D_TRANSPORT &&
            (rc = dw__load_enum(c, m[k], dw__load_transports, DW__LOAD_NTRANSPORTS, &e)) == DW_OK)
            d->transport = e;
        if (k == D_DESCRIPTION && !cJSON_IsString(m[k]))
            rc = dw__load_fail(c, m[k], 0, "expected string");
        if (k == D_LINK)
            rc = device_link(c, m[k], d);
        if (k == D_BAUD)
            rc = dw__load_baud(c, m[k], &d->baud);
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && d->transport >= 0 && d->transport != DW_SIM_SERIAL &&
        (m[D_LINK] || m[D_BAUD])) {
        int k = m[D_LINK] ? D_LINK : D_BAUD;
        size_t old = dw__load_push(c, device_keys[k]);
        rc = dw__load_fail(c, m[k], 0, "only for a serial device (\"transport\": \"serial\")");
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && !d->host && !(d->host = strdup("127.0.0.1")))
        rc = dw__load_oom(c);
    return rc;
}

static int parse_bench(dw__load *c, const cJSON *root, dw_sim_bench *b)
{
    if (!cJSON_IsArray(root))
        return dw__load_fail(c, root, 0,
                             "expected a list of devices ([{\"name\": ..., \"script\": ...}])");
    size_t n = (size_t)cJSON_GetArraySize(root);
    if (n == 0)
        return dw__load_fail(c, root, 0, "a bench lists at least one device");
    b->devices = calloc(n, sizeof *b->devices);
    dw_sim_names *names = dw_sim_names_new(n);
    if (!b->devices || !names) {
        dw_sim_names_free(names);
        return dw__load_oom(c);
    }
    int rc = DW_OK;
    for (const cJSON *v = root->child; v && rc == DW_OK; v = v->next) {
        size_t old = dw__load_push_index(c, b->ndevices);
        rc = parse_device(c, v, names, &b->devices[b->ndevices++]);
        dw__load_pop(c, old);
    }
    dw_sim_names_free(names);
    return rc;
}

int dw_sim_bench_load_buffer(const char *name, const char *text, size_t len, dw_sim_bench **out,
                             dw_error *err)
{
    dw_error local;
    if (!err)
        err = &local;
    dw_error_clear(err);
    *out = NULL;
    dw__load c;
    cJSON *root = NULL;
    int rc = dw__load_open(&c, name ? name : "<bench>", text, text ? len : 0, err, &root);
    if (rc != DW_OK)
        return rc;
    dw_sim_bench *b = calloc(1, sizeof *b);
    rc = dw__json_pos_bind(c.pos, root);
    if (rc == DW_ENOMEM || !b)
        rc = dw__load_oom(&c);
    else
        rc = parse_bench(&c, root, b);
    dw__load_close(&c, root);
    if (rc != DW_OK) {
        dw_sim_bench_free(b);
        return rc;
    }
    *out = b;
    return DW_OK;
}

int dw_sim_bench_load_file(const char *path, dw_sim_bench **out, dw_error *err)
{
    *out = NULL;
    dw_buf b = DW_BUF_INIT;
    int rc = dw__load_read_file(path, &b, err);
    if (rc == DW_OK)
        rc = dw_sim_bench_load_buffer(path, (const char *)b.data, b.len, out, err);
    dw_buf_free(&b);
    return rc;
}

void dw_sim_bench_free(dw_sim_bench *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->ndevices; i++) {
        free(b->devices[i].name);
        free(b->devices[i].script);
        free(b->devices[i].host);
        free(b->devices[i].link);
    }
    free(b->devices);
    free(b);
}
