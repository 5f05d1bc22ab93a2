/* devwire-sim serving: see serve.h. */
#include "run/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/loop.h"
#include "common/names.h"
#include "common/net.h"
#include "control/control.h"
#include "device/server.h"
#include "record/proxy.h"
#include "run/cli.h"
#include "script/script.h"

static const char *prog = DW_SIM_PROG;

/* Load a device's script (with its transport override), or NULL after
 * saying what is wrong. */
static dw_sim_script *load(const dw_sim_device *d)
{
    dw_sim_script *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_script_load_file(d->script, &s, &err) != DW_OK) {
        fprintf(stderr, "%s: %s%s%s\n", prog, d->name ? d->name : "", d->name ? ": " : "",
                dw_error_message(&err));
        return NULL;
    }
    if (d->transport >= 0)
        s->transport = (dw_sim_transport)d->transport;
    const char *why = NULL;
    for (size_t i = 0; i < s->nrules && !why; i++)
        if (s->rules[i].net && s->rules[i].net->direction == DW_SIM_DIR_REPLY)
            why = s->rules[i].name;
    if (why) {
        fprintf(stderr,
                "%s: %s%s%s: %s: \"direction\": \"reply\" matches a device's replies: use "
                "the script with --proxy\n",
                prog, d->name ? d->name : "", d->name ? ": " : "", d->script, why);
        dw_sim_script_free(s);
        return NULL;
    }
    if (s->network && (s->transport == DW_SIM_UDP || s->transport == DW_SIM_SERIAL ||
                       s->transport == DW_SIM_VXI11)) {
        fprintf(stderr, "%s: %s%s%s: \"network\" faults need transport tcp or telnet\n", prog,
                d->name ? d->name : "", d->name ? ": " : "", d->script);
        dw_sim_script_free(s);
        return NULL;
    }
    if ((d->link || d->baud) && s->transport != DW_SIM_SERIAL) {
        fprintf(stderr,
                "%s: %s%s%s: %s goes with a serial device; the script's transport is not "
                "\"serial\"\n",
                prog, d->name ? d->name : "", d->name ? ": " : "", d->script,
                d->link ? "a link" : "\"baud\"");
        dw_sim_script_free(s);
        return NULL;
    }
    return s;
}

/* The proxy that puts a script's network faults in front of its device:
 * it listens on the device's address and forwards to the device's own. */
static int front_open(const dw_sim_device *d, const dw_sim_script *script,
                      const dw_sim_serve_options *o, dw_sim_loop *loop, dw_sim_server *srv,
                      dw_sim_proxy **out)
{
    dw_error err;
    dw_error_clear(&err);
    dw_sim_script *front = NULL;
    int rc = dw_sim_script_load_buffer(d->script, "{}", 2, &front, &err);
    if (rc == DW_OK && dw_sim_netfaults_copy(script->network, &front->network) != DW_OK)
        rc = dw_error_set(&err, DW_ENOMEM, "out of memory");
    if (rc == DW_OK) /* the client's side acknowledges as the device would */
        front->tcp_ack = script->tcp_ack;
    dw_sim_proxy_options po;
    dw_sim_proxy_options_init(&po);
    po.host = d->host;
    po.port = d->port;
    po.upstream_host = "127.0.0.1";
    po.upstream_port = dw_sim_server_port(srv);
    po.logger = o->logger;
    po.max_connections = o->max_connections;
    po.loop = loop;
    po.seed = o->seed;
    po.raw = 1;
    po.delayed_ack = o->delayed_ack;
    po.framing = script;           /* a "fuzz" reads the device's frames */
    po.transcript = o->transcript; /* and notes its mutations there */
    if (rc == DW_OK)
        rc = dw_sim_proxy_new(&po, front, out, &err);
    if (rc != DW_OK) {
        fprintf(stderr, "%s: %s%s%s\n", prog, d->name ? d->name : "", d->name ? ": " : "",
                dw_error_message(&err));
        dw_sim_script_free(front);
        return 3;
    }
    return DW_OK;
}

/* Whether serving the script draws random numbers: network faults, a
 * rule's "probability" or "delay", a property's noise, Lua (math.random). */
static int draws(const dw_sim_script *s)
{
    int any = s->network != NULL || s->nlua > 0;
    for (size_t r = 0; r < s->nrules; r++)
        any |= s->rules[r].net && (s->rules[r].net->has_delay || s->rules[r].net->probability < 1);
    size_t n = s->props ? dw_sim_props_count(s->props) : 0;
    for (size_t i = 0; i < n; i++)
        any |= dw_sim_props_def(s->props, i)->noise != DW_SIM_NOISE_NONE;
    return any;
}

/* The event loops the devices are spread over: device i lives on
 * l[i % n] for its whole life, and nothing is shared between loops. */
typedef struct loop_set {
    dw_sim_loop **l;
    size_t n;
} loop_set;

/* --loops, or one per CPU the process may use; never more than devices. */
static size_t loop_count(const dw_sim_serve_options *o, size_t ndevs)
{
    size_t want = o->loops ? o->loops : (size_t)uv_available_parallelism();
    if (want > ndevs)
        want = ndevs;
    return want ? want : 1;
}

static int loops_new(loop_set *ls, size_t n, dw_error *err)
{
    ls->n = 0;
    ls->l = calloc(n, sizeof *ls->l);
    if (!ls->l)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    for (; ls->n < n; ls->n++) {
        int rc = dw_sim_loop_new(&ls->l[ls->n], err);
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

static int loops_start(loop_set *ls, dw_error *err)
{
    for (size_t i = 0; i < ls->n; i++) {
        int rc = dw_sim_loop_start(ls->l[i], err);
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

/* Stop every loop (each returns once its close callbacks ran) and free. */
static void loops_free(loop_set *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        dw_sim_loop_stop(ls->l[i]);
    for (size_t i = 0; i < ls->n; i++)
        dw_sim_loop_free(ls->l[i]);
    free(ls->l);
    ls->l = NULL;
    ls->n = 0;
}

/* Bind every device on its loop (behind a proxy when its script has network
 * faults): DW_OK, or the exit status after saying why. */
static int open_all(const dw_sim_device *devs, size_t n, const dw_sim_serve_options *o,
                    const loop_set *loops, dw_sim_server **srv, dw_sim_proxy **px, int *random)
{
    for (size_t i = 0; i < n; i++) {
        dw_sim_loop *loop = loops->l[i % loops->n];
        dw_sim_script *script = load(&devs[i]);
        if (!script)
            return 2;
        int front = script->network != NULL;
        *random |= draws(script);
        dw_sim_server_options so;
        dw_sim_server_options_init(&so);
        so.name = devs[i].name;
        so.host = front ? "127.0.0.1" : devs[i].host;
        so.port = front ? 0 : devs[i].port;
        so.link = devs[i].link;
        so.baud = devs[i].baud;
        so.logger = o->logger;
        so.transcript = o->transcript;
        so.max_connections = o->max_connections;
        so.idle_timeout_ms = o->idle_timeout_ms;
        so.write_timeout_ms = o->write_timeout_ms;
        so.max_frame = o->max_frame;
        so.max_buffered = o->max_buffered;
        so.loop = loop;
        so.seed = o->seed;
        so.lua_deadline_ms = o->lua_deadline_ms;
        so.delayed_ack = o->delayed_ack;
        so.portmapper = o->portmapper;
        so.abort_port = o->abort_port;
        dw_error err;
        dw_error_clear(&err);
        if (dw_sim_server_new(&so, script, &srv[i], &err) != DW_OK) {
            fprintf(stderr, "%s: %s%s%s\n", prog, devs[i].name ? devs[i].name : "",
                    devs[i].name ? ": " : "", dw_error_message(&err));
            dw_sim_script_free(script);
            return err.code == DW_ESCRIPT || err.code == DW_EINVAL ? 2 : 3;
        }
        int rc = front ? front_open(&devs[i], script, o, loop, srv[i], &px[i]) : DW_OK;
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

/* Serve `fresh` on device i (taken on success), its "network" through the
 * proxy in front: 0, or -1 after logging why the old script keeps serving. */
static int reload_one(const dw_sim_device *d, const dw_sim_serve_options *o, dw_sim_server *srv,
                      dw_sim_proxy *px, dw_sim_script *fresh)
{
    dw_error err;
    dw_error_clear(&err);
    if (fresh->network && !px) {
        dw_log(o->logger, DW_LOG_ERROR,
               "reload %s: \"network\" needs the proxy a device started with \"network\" has "
               "in front of it, and this one started without (an empty \"network\": {} "
               "will do); the old script keeps serving",
               d->script);
        return -1;
    }
    dw_sim_netfaults *net = NULL;
    dw_sim_tcp_ack ack = fresh->tcp_ack;
    int rc = dw_sim_netfaults_copy(fresh->network, &net) == DW_OK
                 ? dw_sim_server_reload(srv, fresh, &err)
                 : dw_error_set(&err, DW_ENOMEM, "out of memory");
    if (rc != DW_OK) {
        dw_log(o->logger, DW_LOG_ERROR, "reload %s: %s; the old script keeps serving", d->script,
               dw_error_message(&err));
        dw_sim_netfaults_free(net);
        return -1;
    }
    /* The device serves fresh now; a script without "network" has none. */
    if (px && dw_sim_proxy_set_network(px, net, ack, &err) != DW_OK)
        dw_log(o->logger, DW_LOG_ERROR, "reload %s: network faults not replaced: %s", d->script,
               dw_error_message(&err));
    dw_sim_netfaults_free(net);
    return 0;
}

static void reload_all(const dw_sim_device *devs, size_t n, const dw_sim_serve_options *o,
                       dw_sim_server **srv, dw_sim_proxy **px)
{
    for (size_t i = 0; i < n; i++) {
        const char *path = devs[i].script;
        dw_log(o->logger, DW_LOG_INFO, "SIGHUP: reloading %s", path);
        dw_sim_script *fresh = load(&devs[i]);
        if (!fresh)
            dw_log(o->logger, DW_LOG_ERROR, "reload %s failed; the old script keeps serving", path);
        else if (reload_one(&devs[i], o, srv[i], px[i], fresh) != 0)
            dw_sim_script_free(fresh);
        else
            dw_log(o->logger, DW_LOG_WARN, "reloaded %s", path);
    }
}

/* What a SIGHUP reloads. */
typedef struct reload_job {
    const dw_sim_device *devs;
    size_t n;
    const dw_sim_serve_options *o;
    dw_sim_server **srv;
    dw_sim_proxy **px;
} reload_job;

static void on_hup(void *arg)
{
    reload_job *j = arg;
    reload_all(j->devs, j->n, j->o, j->srv, j->px);
}

/* Every device's summary, then the verdict of --check over all of them. */
static int report(size_t n, const dw_sim_serve_options *o, dw_sim_server **srv)
{
    uint64_t unmatched = 0;
    size_t not_reached = 0;
    for (size_t i = 0; i < n; i++) {
        dw_sim_totals t;
        dw_sim_server_totals(srv[i], &t);
        dw_sim_server_summary(srv[i], stdout);
        unmatched += t.unmatched;
        not_reached += t.steps_not_reached;
    }
    int status = 0;
    if (o->check && (unmatched || not_reached)) {
        printf("check failed: %llu unmatched request(s), %zu step(s) not reached\n",
               (unsigned long long)unmatched, not_reached);
        status = 1;
    } else if (o->check) {
        printf("check passed\n");
    }
    fflush(stdout);
    return status;
}

/* The control API over every device (before the loop starts): DW_OK, or
 * the exit status after saying why not. */
static int control_open(const dw_sim_device *devs, size_t n, const dw_sim_serve_options *o,
                        dw_sim_server **srv, dw_sim_proxy **px, dw_sim_control **out)
{
    dw_sim_control_device *cd = calloc(n, sizeof *cd);
    if (!cd) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 3;
    }
    for (size_t i = 0; i < n; i++) {
        cd[i].name = devs[i].name;
        cd[i].server = srv[i];
        cd[i].transport = devs[i].transport;
        cd[i].front = px[i];
    }
    dw_sim_control_options co;
    dw_sim_control_options_init(&co);
    co.host = o->control_host;
    co.port = o->control_port;
    co.token = o->control_token;
    co.journal_size = o->journal_size;
    co.logger = o->logger;
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_sim_control_new(&co, cd, n, out, &err);
    free(cd);
    if (rc != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return rc == DW_EINVAL ? 2 : 3;
    }
    return DW_OK;
}

/* The address a device is reached at: its proxy's, if it has one. */
static const char *address(dw_sim_server *srv, dw_sim_proxy *px)
{
    return px ? dw_sim_proxy_address(px) : dw_sim_server_address(srv);
}

/* Serving from the readiness lines to the signal that ends it. */
static void serve_until_signal(const dw_sim_device *devs, size_t n, const dw_sim_serve_options *o,
                               dw_sim_server **srv, dw_sim_proxy **px, dw_sim_control *control)
{
    for (size_t i = 0; i < n; i++)
        printf("%s %s%s%s%s\n", dw_sim_server_serial(srv[i]) ? "serial on" : "listening on",
               address(srv[i], px[i]), devs[i].name ? " (" : "", devs[i].name ? devs[i].name : "",
               devs[i].name ? ")" : "");
    for (size_t i = 0; i < n; i++) /* after every "listening on": tools wait for those first */
        if (dw_sim_server_resource(srv[i]))
            printf("vxi11 on %s%s%s%s\n", dw_sim_server_resource(srv[i]), devs[i].name ? " (" : "",
                   devs[i].name ? devs[i].name : "", devs[i].name ? ")" : "");
    if (control)
        printf("control on http://%s\n", dw_sim_control_address(control));
    fflush(stdout);
    reload_job j = {devs, n, o, srv, px};
    /* Closing the devices needs the loop threads: if one is stuck, the
     * watchdog ends the process instead. */
    dw_sim_cli_stop_begin(dw_sim_cli_wait_signals(o->exit_with_stdin, on_hup, &j));
}

/* The devices of one loop, stopped on that loop in one call: a call per
 * device, each waiting for the loop thread, made stopping 10,000 devices
 * take longer than the grace period after SIGTERM. */
typedef struct stop_job {
    dw_sim_server **srv;
    dw_sim_proxy **px;
    size_t n, first, step;
} stop_job;

static void stop_on_loop(void *arg)
{
    const stop_job *j = arg;
    for (size_t i = j->first; i < j->n; i += j->step) {
        dw_sim_proxy_stop(j->px[i]);
        dw_sim_server_stop(j->srv[i]);
    }
}

/* Every device holds a descriptor (two behind a proxy), every connection
 * one more: the soft limit of open files is raised to the hard one, and a
 * limit below what the devices and loops alone need is refused up front,
 * rather than failing at the thousandth bind. DW_OK, or the exit status
 * after saying why. */
static int open_files(size_t ndevs, size_t nloops, const dw_logger *log)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return DW_OK;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            dw_log(log, DW_LOG_DEBUG, "open files: soft limit raised from %llu to %llu",
                   (unsigned long long)was, (unsigned long long)rl.rlim_cur);
        else
            rl.rlim_cur = was;
    }
    size_t need = ndevs + 4 * nloops + 32; /* stdio, loops, control, transcript */
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return DW_OK;
    fprintf(stderr,
            "%s: %zu device(s) need at least %zu open files (one each, more for their "
            "connections) and the limit is %llu (RLIMIT_NOFILE, hard limit %llu): raise it "
            "(ulimit -n, or the container's nofile ulimit)\n",
            prog, ndevs, need, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    return DW_SIM_EXIT_SERVER;
}

int dw_sim_serve(const dw_sim_device *devs, size_t n, const dw_sim_serve_options *o)
{
    int limit = open_files(n, loop_count(o, n), o->logger);
    if (limit != DW_OK)
        return limit;
    dw_sim_control *control = NULL;
    dw_sim_server **srv = calloc(n, sizeof *srv);
    dw_sim_proxy **px = calloc(n, sizeof *px);
    loop_set loops = {NULL, 0};
    dw_error err;
    dw_error_clear(&err);
    if (!srv || !px || loops_new(&loops, loop_count(o, n), &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, srv && px ? dw_error_message(&err) : "out of memory");
        loops_free(&loops);
        free(srv);
        free(px);
        return 3;
    }
    dw_sim_serve_options seeded = *o;
    if (!o->have_seed)
        seeded.seed = dw_sim_rng_entropy();
    o = &seeded;
    int random = 0;
    int status = open_all(devs, n, o, &loops, srv, px, &random);
    if (status == DW_OK && !o->have_seed && random)
        fprintf(stderr, "%s: seed %llu (repeat this run's random draws with --seed %llu)\n", prog,
                (unsigned long long)o->seed, (unsigned long long)o->seed);
    if (status == DW_OK && o->control_host)
        status = control_open(devs, n, o, srv, px, &control);
    if (status == DW_OK && loops_start(&loops, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        status = 3;
    }
    if (status == DW_OK && control && dw_sim_control_start(control, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        status = 3;
    }
    if (status == DW_OK)
        serve_until_signal(devs, n, o, srv, px, control);
    dw_sim_control_stop(control); /* before the devices: no call reaches them after */
    for (size_t k = 0; k < loops.n; k++) {
        stop_job j = {srv, px, n, k, loops.n};
        dw_sim_loop_call(loops.l[k], stop_on_loop, &j);
    }
    for (size_t i = 0; i < loops.n; i++)
        dw_sim_loop_stop(loops.l[i]); /* every close callback has run */
    dw_sim_cli_stop_done();
    if (status == DW_OK)
        status = report(n, o, srv);
    for (size_t i = 0; i < n; i++) {
        dw_sim_proxy_free(px[i]);
        dw_sim_server_free(srv[i]);
    }
    dw_sim_control_free(control);
    loops_free(&loops);
    free(srv);
    free(px);
    return status;
}

/* The strings of devs[0..n) are owned by the array. */
static void devices_free(dw_sim_device *devs, size_t n)
{
    for (size_t i = 0; devs && i < n; i++) {
        free((char *)devs[i].name);
        free((char *)devs[i].script);
        free((char *)devs[i].host);
        free((char *)devs[i].link);
    }
    free(devs);
}

/* A device with copies of its strings (name may be NULL): 0, or -1 when
 * out of memory. */
static int device_set(dw_sim_device *d, const char *name, const char *script, size_t script_len,
                      const char *host, uint16_t port, int transport)
{
    d->name = name ? strdup(name) : NULL;
    d->script = strndup(script, script_len);
    d->host = strdup(host);
    d->port = port;
    d->transport = transport;
    return (name && !d->name) || !d->script || !d->host ? -1 : 0;
}

/* "NAME=SCRIPT@HOST:PORT" into d: 0, or -1 when it is not that. */
static int parse_device(const char *arg, dw_sim_device *d)
{
    const char *eq = strchr(arg, '=');
    const char *at = strrchr(arg, '@');
    char *host = NULL, *name = NULL;
    uint16_t port;
    if (!eq || eq == arg || !at || at < eq + 2 || dw_sim_parse_hostport(at + 1, &host, &port) != 0)
        return -1;
    int rc = (name = strndup(arg, (size_t)(eq - arg))) ? 0 : -1;
    if (rc == 0)
        rc = device_set(d, name, eq + 1, (size_t)(at - eq - 1), host, port, -1);
    free(name);
    free(host);
    return rc;
}

/* DW_SIM_EXIT_OK when no two devices have the same name, else
 * DW_SIM_EXIT_USAGE after saying which. */
static int names_differ(const dw_sim_device *devs, size_t n)
{
    dw_sim_names *names = dw_sim_names_new(n);
    int status = names ? DW_SIM_EXIT_OK : DW_SIM_EXIT_SERVER;
    if (!names)
        fprintf(stderr, "%s: out of memory\n", prog);
    for (size_t i = 0; status == DW_SIM_EXIT_OK && i < n; i++)
        if (devs[i].name && dw_sim_names_add(names, devs[i].name) != 1) {
            fprintf(stderr, "%s: two devices are named \"%s\"\n", prog, devs[i].name);
            status = DW_SIM_EXIT_USAGE;
        }
    dw_sim_names_free(names);
    return status;
}

/* The devices to serve: --script (unnamed when alone), each --device, each
 * device of --bench. DW_SIM_EXIT_OK, or the exit status after saying what
 * is wrong. */
static int collect_devices(const dw_sim_cli *c, dw_sim_device **devs, size_t *n)
{
    dw_sim_bench *bench = NULL;
    int status = DW_SIM_EXIT_OK;
    dw_error err;
    dw_error_clear(&err);
    if (c->bench && dw_sim_bench_load_file(c->bench, &bench, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return DW_SIM_EXIT_USAGE;
    }
    size_t total = (c->script ? 1 : 0) + c->ndevices + (bench ? bench->ndevices : 0);
    if (!(*devs = calloc(total, sizeof **devs)))
        status = DW_SIM_EXIT_SERVER;
    char *host = NULL;
    uint16_t port = 0;
    if (status == DW_SIM_EXIT_OK && c->script &&
        dw_sim_parse_hostport(c->listen, &host, &port) != 0) {
        fprintf(stderr, "%s: --listen %s: expected HOST:PORT\n", prog, c->listen);
        status = DW_SIM_EXIT_USAGE;
    }
    if (status == DW_SIM_EXIT_OK && c->script &&
        device_set(&(*devs)[(*n)++], total > 1 ? "main" : NULL, c->script, strlen(c->script), host,
                   port, -1) != 0)
        status = DW_SIM_EXIT_SERVER;
    if (status == DW_SIM_EXIT_OK && c->script && c->link && !((*devs)[0].link = strdup(c->link)))
        status = DW_SIM_EXIT_SERVER;
    free(host);
    for (size_t i = 0; status == DW_SIM_EXIT_OK && i < c->ndevices; i++) {
        if (parse_device(c->devices[i], &(*devs)[(*n)++]) != 0) {
            fprintf(stderr, "%s: --device %s: expected NAME=SCRIPT@HOST:PORT\n", prog,
                    c->devices[i]);
            status = DW_SIM_EXIT_USAGE;
        }
    }
    for (size_t i = 0; status == DW_SIM_EXIT_OK && bench && i < bench->ndevices; i++) {
        const dw_sim_device_spec *b = &bench->devices[i];
        if (device_set(&(*devs)[(*n)++], b->name, b->script, strlen(b->script), b->host, b->port,
                       b->transport) != 0 ||
            (b->link && !((*devs)[*n - 1].link = strdup(b->link))))
            status = DW_SIM_EXIT_SERVER;
        (*devs)[*n - 1].baud = b->baud;
    }
    dw_sim_bench_free(bench);
    return status == DW_SIM_EXIT_OK ? names_differ(*devs, *n) : status;
}

/* Open the transcript, take the signals, serve. */
static int serve_with_transcript(const dw_sim_device *devs, size_t n, const char *transcript_path,
                                 dw_sim_serve_options *so)
{
    dw_error err;
    dw_error_clear(&err);
    if (transcript_path &&
        dw_sim_transcript_open(transcript_path, &so->transcript, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return DW_SIM_EXIT_USAGE;
    }
    dw_sim_cli_block_signals();
    int status = dw_sim_serve(devs, n, so);
    dw_sim_transcript_close(so->transcript);
    return status;
}

/* The options that go with serving, checked before anything is read:
 * DW_SIM_EXIT_OK, or DW_SIM_EXIT_USAGE after saying what is wrong. */
static int check_options(const dw_sim_cli *c)
{
    if (c->link && (!c->script || !c->link[0])) {
        fprintf(stderr, "%s: --link %s: %s\n", prog, c->link,
                c->link[0] ? "goes with --script (in a bench file, write \"link\")"
                           : "expected a path");
        return DW_SIM_EXIT_USAGE;
    }
    if (!c->script && c->ndevices == 0 && !c->bench) {
        fprintf(stderr,
                "%s: --script FILE, --device or --bench is required\n"
                "Try '%s --help' for more information.\n",
                prog, prog);
        return DW_SIM_EXIT_USAGE;
    }
    return DW_SIM_EXIT_OK;
}

int dw_sim_run_serve(const dw_sim_cli *c)
{
    int status = check_options(c);
    if (status != DW_SIM_EXIT_OK)
        return status;
    dw_sim_serve_options so = {&c->logger,
                               NULL,
                               (size_t)c->max_connections,
                               c->idle_ms,
                               c->write_ms,
                               (size_t)c->max_frame,
                               (size_t)c->max_buffered,
                               c->check,
                               NULL,
                               0,
                               NULL,
                               (size_t)c->journal,
                               c->seed,
                               c->have_seed,
                               (unsigned)c->lua_deadline_ms,
                               (unsigned)c->loops,
                               c->delayed_ack,
                               c->exit_with_stdin,
                               c->portmapper,
                               c->abort_port};
    char *control_host = NULL, *token = NULL;
    status = dw_sim_cli_control(c, &control_host, &so.control_port, &token);
    so.control_host = control_host;
    so.control_token = token;
    dw_sim_device *devs = NULL;
    size_t ndevs = 0;
    if (status == DW_SIM_EXIT_OK)
        status = collect_devices(c, &devs, &ndevs);
    if (status == DW_SIM_EXIT_OK)
        status = serve_with_transcript(devs, ndevs, c->transcript, &so);
    devices_free(devs, ndevs);
    free(control_host);
    free(token);
    return status;
}
