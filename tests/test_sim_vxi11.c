/* devwire-sim over VXI-11, driven by libtirpc's own RPC client (clnttcp,
 * clntudp) with the VXI-11 structures written as rpcgen would: links,
 * writes collected until END, reads by REQCNT / CHR / END, the status byte
 * from the SCPI model, device clear, trigger, locks from two connections
 * (with and without waiting, released by another thread), the abort
 * channel, the error codes, device names, the portmapper over TCP and
 * UDP on a port of its own (--portmapper 0), and service requests on an
 * interrupt channel to a server of the test's own (a socket reading the
 * device's RPC calls). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>
#include <rpc/pmap_prot.h>

#include "sim_fixture.h"

TestSuite(sim_vxi11, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 120);

static const char script[] =
    "{\"transport\": \"vxi11\",\n"
    " \"vxi11\": {\"devices\": [\"inst0\", \"gpib0,5\"], \"max_recv_size\": 256},\n"
    " \"profile\": \"scpi\", \"idn\": \"ACME,VX-1,7,1.0\",\n"
    " \"framing\": {\"request\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
    "               \"response\": {\"type\": \"scpi\", \"sentinel\": \"\\n\"}},\n"
    " \"state\": {\"trg\": \"0\"},\n"
    " \"rules\": [\n"
    "  {\"when\": {\"scpi\": \"*TRG\"}, \"set\": {\"trg\": \"1\"}},\n"
    "  {\"when\": {\"scpi\": \"TRIGgered?\"}, \"reply\": \"${trg}\"},\n"
    "  {\"when\": {\"scpi\": \"ECHO\"}, \"reply\": \"$1\"},\n"
    "  {\"when\": {\"scpi\": \"LINES?\"}, \"reply\": \"a,b;c,d\"},\n"
    "  {\"when\": {\"scpi\": \"SLOW?\"}, \"reply\": \"late\", \"delay_ms\": 300}\n"
    " ]}\n";

/* ---- the VXI-11 structures, as rpcgen writes them from vxi11.x ------------- */

typedef struct {
    int client_id, lock_device;
    u_int lock_timeout;
    char *device;
} create_link_parms;
typedef struct {
    int error, lid;
    u_int abort_port, max_recv_size;
} create_link_resp;
typedef struct {
    int lid;
    u_int io_timeout, lock_timeout, flags;
    u_int len;
    char *data;
} write_parms;
typedef struct {
    int error;
    u_int size;
} write_resp;
typedef struct {
    int lid;
    u_int request_size, io_timeout, lock_timeout, flags;
    char term_char;
} read_parms;
typedef struct {
    int error, reason;
    u_int len;
    char *data;
} read_resp;
typedef struct {
    int lid;
    u_int flags, lock_timeout, io_timeout;
} generic_parms;
typedef struct {
    int error;
    u_char stb;
} readstb_resp;
typedef struct {
    int lid;
    u_int flags, lock_timeout;
} lock_parms;

static bool_t x_create_link_parms(XDR *x, void *v)
{
    create_link_parms *p = v;
    return xdr_int(x, &p->client_id) && xdr_bool(x, &p->lock_device) &&
           xdr_u_int(x, &p->lock_timeout) && xdr_string(x, &p->device, ~0u);
}
static bool_t x_create_link_resp(XDR *x, void *v)
{
    create_link_resp *r = v;
    return xdr_int(x, &r->error) && xdr_int(x, &r->lid) && xdr_u_int(x, &r->abort_port) &&
           xdr_u_int(x, &r->max_recv_size);
}
static bool_t x_write_parms(XDR *x, void *v)
{
    write_parms *p = v;
    return xdr_int(x, &p->lid) && xdr_u_int(x, &p->io_timeout) && xdr_u_int(x, &p->lock_timeout) &&
           xdr_u_int(x, &p->flags) && xdr_bytes(x, &p->data, &p->len, ~0u);
}
static bool_t x_write_resp(XDR *x, void *v)
{
    write_resp *r = v;
    return xdr_int(x, &r->error) && xdr_u_int(x, &r->size);
}
static bool_t x_read_parms(XDR *x, void *v)
{
    read_parms *p = v;
    return xdr_int(x, &p->lid) && xdr_u_int(x, &p->request_size) && xdr_u_int(x, &p->io_timeout) &&
           xdr_u_int(x, &p->lock_timeout) && xdr_u_int(x, &p->flags) && xdr_char(x, &p->term_char);
}
static bool_t x_read_resp(XDR *x, void *v)
{
    read_resp *r = v;
    return xdr_int(x, &r->error) && xdr_int(x, &r->reason) && xdr_bytes(x, &r->data, &r->len, ~0u);
}
static bool_t x_generic_parms(XDR *x, void *v)
{
    generic_parms *p = v;
    return xdr_int(x, &p->lid) && xdr_u_int(x, &p->flags) && xdr_u_int(x, &p->lock_timeout) &&
           xdr_u_int(x, &p->io_timeout);
}
static bool_t x_readstb_resp(XDR *x, void *v)
{
    readstb_resp *r = v;
    return xdr_int(x, &r->error) && xdr_u_char(x, &r->stb);
}
static bool_t x_lock_parms(XDR *x, void *v)
{
    lock_parms *p = v;
    return xdr_int(x, &p->lid) && xdr_u_int(x, &p->flags) && xdr_u_int(x, &p->lock_timeout);
}
typedef struct {
    int lid;
    u_int flags, io_timeout, lock_timeout;
    int cmd, network_order, datasize;
    u_int len;
    char *data;
} docmd_parms;
static bool_t x_docmd_parms(XDR *x, void *v)
{
    docmd_parms *p = v;
    return xdr_int(x, &p->lid) && xdr_u_int(x, &p->flags) && xdr_u_int(x, &p->io_timeout) &&
           xdr_u_int(x, &p->lock_timeout) && xdr_int(x, &p->cmd) &&
           xdr_bool(x, &p->network_order) && xdr_int(x, &p->datasize) &&
           xdr_bytes(x, &p->data, &p->len, ~0u);
}
/* Device_DocmdResp: the error and data_out, which stays empty here. */
static bool_t x_docmd_resp(XDR *x, void *v)
{
    write_resp *r = v;
    return xdr_int(x, &r->error) && xdr_u_int(x, &r->size);
}
static bool_t x_int(XDR *x, void *v)
{
    return xdr_int(x, v);
}

#define XP(f) ((xdrproc_t)(void (*)(void))(f))

/* ---- a client ---------------------------------------------------------------- */

static uint16_t pmap_port;

static dw_sim_proc *serve(void)
{
    static const char *const args[] = {"--portmapper", "0", "--log-level", "info", NULL};
    dw_sim_proc *p = dw_sim_serve("vxi11", script, args);
    cr_assert(dw_sim_proc_wait_output(p, 0, ")\n", 20000), "%s", dw_sim_out_of(p));
    const char *at = strstr(dw_sim_out_of(p), "vxi11 on TCPIP::127.0.0.1::inst0::INSTR (portmapper "
                                              "127.0.0.1:");
    cr_assert(at != NULL, "the readiness line names the resource:\n%s", dw_sim_out_of(p));
    pmap_port = (uint16_t)atoi(strrchr(at, ':') + 1);
    cr_assert(pmap_port > 0);
    return p;
}

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static CLIENT *connect_to(uint16_t port, u_long prog)
{
    struct sockaddr_in a = loopback(port);
    int sock = RPC_ANYSOCK;
    CLIENT *c = clnttcp_create(&a, prog, 1, &sock, 0, 0);
    cr_assert(c != NULL, "clnttcp_create to port %u: %s", (unsigned)port,
              clnt_spcreateerror("vxi11"));
    return c;
}

static const struct timeval patience = {25, 0};

static void call(CLIENT *c, u_long proc, xdrproc_t xa, void *a, xdrproc_t xr, void *r)
{
    enum clnt_stat st = clnt_call(c, (rpcproc_t)proc, xa, a, xr, r, patience);
    cr_assert(eq(int, st, RPC_SUCCESS), "procedure %lu: %s", proc, clnt_sperrno(st));
}

static create_link_resp link_to(CLIENT *c, const char *device, int lock)
{
    create_link_parms p = {42, lock, 1000, (char *)device};
    create_link_resp r = {0};
    call(c, 10, XP(x_create_link_parms), &p, XP(x_create_link_resp), &r);
    return r;
}

static write_resp write_data(CLIENT *c, int lid, const char *data, size_t n, u_int flags)
{
    write_parms p = {lid, 1000, 1000, flags, (u_int)n, (char *)data};
    write_resp r = {0};
    call(c, 11, XP(x_write_parms), &p, XP(x_write_resp), &r);
    return r;
}

static void write_ok(CLIENT *c, int lid, const char *text)
{
    write_resp r = write_data(c, lid, text, strlen(text), 8);
    cr_assert(eq(int, r.error, 0), "write \"%s\"", text);
    cr_assert(eq(u32, r.size, (uint32_t)strlen(text)));
}

/* A read: its data is copied into buf (NUL-terminated). */
static read_resp read_data(CLIENT *c, int lid, u_int size, u_int io_ms, u_int flags, char term,
                           char *buf, size_t cap)
{
    read_parms p = {lid, size, io_ms, 1000, flags, term};
    read_resp r = {0};
    call(c, 12, XP(x_read_parms), &p, XP(x_read_resp), &r);
    size_t n = r.len < cap ? r.len : cap - 1;
    memcpy(buf, r.data ? r.data : "", n);
    buf[n] = '\0';
    clnt_freeres(c, XP(x_read_resp), (char *)&r);
    return r;
}

static int generic(CLIENT *c, u_long proc, int lid, u_int flags, u_int lock_ms)
{
    generic_parms p = {lid, flags, lock_ms, 1000};
    int error = -1;
    call(c, proc, XP(x_generic_parms), &p, XP(x_int), &error);
    return error;
}

static readstb_resp readstb(CLIENT *c, int lid)
{
    generic_parms p = {lid, 0, 1000, 1000};
    readstb_resp r = {0};
    call(c, 13, XP(x_generic_parms), &p, XP(x_readstb_resp), &r);
    return r;
}

static int lock(CLIENT *c, int lid, u_int flags, u_int ms)
{
    lock_parms p = {lid, flags, ms};
    int error = -1;
    call(c, 18, XP(x_lock_parms), &p, XP(x_int), &error);
    return error;
}

static int by_lid(CLIENT *c, u_long proc, int lid)
{
    int error = -1;
    call(c, proc, XP(x_int), &lid, XP(x_int), &error);
    return error;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- the tests ---------------------------------------------------------------- */

Test(sim_vxi11, query_in_pieces_reads_by_reqcnt_chr_and_end)
{
    dw_sim_proc *p = serve();
    CLIENT *c = connect_to(p->port, 0x0607AF);
    create_link_resp l = link_to(c, "inst0", 0);
    cr_assert(eq(int, l.error, 0));
    cr_expect(eq(u32, l.max_recv_size, 256), "the script's max_recv_size");
    cr_expect(l.abort_port > 0);
    char buf[1024];
    write_ok(c, l.lid, "*IDN?\r\n");
    read_resp r = read_data(c, l.lid, 1000, 1000, 0, 0, buf, sizeof buf);
    cr_expect(eq(int, r.error, 0));
    cr_expect(eq(int, r.reason, 4), "END");
    cr_expect(eq(str, buf, "ACME,VX-1,7,1.0\n"));

    /* A message in three writes, END on the last: one request. */
    cr_assert(eq(int, write_data(c, l.lid, "EC", 2, 0).error, 0));
    cr_assert(eq(int, write_data(c, l.lid, "HO \"ab", 6, 0).error, 0));
    write_ok(c, l.lid, "cd\"\n");
    r = read_data(c, l.lid, 3, 1000, 0, 0, buf, sizeof buf);
    cr_expect(eq(int, r.reason, 1), "REQCNT");
    cr_expect(eq(str, buf, "abc"), "the string parameter of the one request");
    r = read_data(c, l.lid, 100, 1000, 0x80, ',', buf, sizeof buf);
    cr_expect(eq(int, r.reason, 4), "END before any comma");
    cr_expect(eq(str, buf, "d\n"));

    write_ok(c, l.lid, "LINES?");
    r = read_data(c, l.lid, 100, 1000, 0x80, ',', buf, sizeof buf);
    cr_expect(eq(int, r.reason, 2), "CHR");
    cr_expect(eq(str, buf, "a,"));
    r = read_data(c, l.lid, 100, 1000, 0, 0, buf, sizeof buf);
    cr_expect(eq(int, r.reason, 4));
    cr_expect(eq(str, buf, "b;c,d\n"));

    /* Nothing queued: the read waits io_timeout, then error 15. */
    double t0 = now_ms();
    r = read_data(c, l.lid, 100, 250, 0, 0, buf, sizeof buf);
    cr_expect(eq(int, r.error, 15));
    cr_expect(now_ms() - t0 >= 200, "it waited (%.0f ms)", now_ms() - t0);
    /* A reply 300 ms late is waited for within io_timeout. */
    write_ok(c, l.lid, "SLOW?\n");
    r = read_data(c, l.lid, 100, 5000, 0, 0, buf, sizeof buf);
    cr_expect(eq(int, r.error, 0));
    cr_expect(eq(str, buf, "late\n"));
    cr_expect(eq(int, by_lid(c, 23, l.lid), 0), "destroy_link");
    cr_expect(eq(int, by_lid(c, 23, l.lid), 4), "the link is gone");
    clnt_destroy(c);
    const char *out;
    cr_expect(eq(int, dw_sim_stop(p, 20000, &out), 0), "%s", dw_sim_err_of(p));
    cr_expect(strstr(out, "  requests: 4\n") && strstr(out, "  unmatched requests: 0\n"),
              "each END-ended message is one request, less its terminator:\n%s", out);
}

Test(sim_vxi11, status_byte_clear_and_trigger)
{
    dw_sim_proc *p = serve();
    CLIENT *c = connect_to(p->port, 0x0607AF);
    create_link_resp l = link_to(c, "gpib0,5", 0);
    cr_assert(eq(int, l.error, 0));
    cr_expect(eq(int, readstb(c, l.lid).stb, 0));
    write_ok(c, l.lid, "BOGUS\n");
    cr_expect(eq(int, readstb(c, l.lid).stb, 0x04), "EAV: -113 queued");
    write_ok(c, l.lid, "*CLS;*IDN?\n");
    readstb_resp s = readstb(c, l.lid);
    cr_expect(eq(int, s.error, 0));
    cr_expect(eq(int, s.stb, 0x10), "MAV: a response waits, the error queue is clear");
    cr_expect(eq(int, generic(c, 15, l.lid, 0, 0), 0), "device_clear");
    cr_expect(eq(int, readstb(c, l.lid).stb, 0), "the output queue is empty");
    char buf[256];
    cr_expect(eq(int, read_data(c, l.lid, 100, 100, 0, 0, buf, sizeof buf).error, 15));
    cr_expect(eq(int, generic(c, 14, l.lid, 0, 0), 0), "device_trigger");
    write_ok(c, l.lid, "TRIG?\n");
    read_data(c, l.lid, 100, 1000, 0, 0, buf, sizeof buf);
    cr_expect(eq(str, buf, "1\n"), "device_trigger reached the engine as *TRG");
    cr_expect(eq(int, generic(c, 16, l.lid, 0, 0), 0), "device_remote");
    cr_expect(eq(int, generic(c, 17, l.lid, 0, 0), 0), "device_local");
    docmd_parms d = {l.lid, 0, 100, 100, 0x20000, 1, 1, 0, NULL};
    write_resp dr = {-1, 0};
    call(c, 22, XP(x_docmd_parms), &d, XP(x_docmd_resp), &dr);
    cr_expect(eq(int, dr.error, 8), "device_docmd: operation not supported");
    cr_expect(eq(int, link_to(c, "inst7", 0).error, 3), "a device the script does not list");
    cr_expect(eq(int, readstb(c, 999).error, 4), "an unknown link");
    cr_expect(eq(int, by_lid(c, 19, l.lid), 12), "unlock without the lock");
    clnt_destroy(c);
}

typedef struct unlock_later {
    CLIENT *c;
    int lid;
    int error;
} unlock_later;

static void *unlock_after_a_while(void *arg)
{
    unlock_later *u = arg;
    usleep(300 * 1000);
    u->error = by_lid(u->c, 19, u->lid);
    return NULL;
}

Test(sim_vxi11, locks_between_two_links)
{
    dw_sim_proc *p = serve();
    CLIENT *a = connect_to(p->port, 0x0607AF), *b = connect_to(p->port, 0x0607AF);
    create_link_resp la = link_to(a, "inst0", 0), lb = link_to(b, "inst0", 0);
    cr_assert(eq(int, la.error, 0));
    cr_assert(eq(int, lb.error, 0));
    cr_assert(la.lid != lb.lid);
    cr_expect(eq(int, lock(a, la.lid, 0, 0), 0));
    cr_expect(eq(int, lock(b, lb.lid, 0, 0), 11), "no wait: locked by another link");
    double t0 = now_ms();
    cr_expect(eq(int, lock(b, lb.lid, 1, 300), 11), "waited lock_timeout, then 11");
    cr_expect(now_ms() - t0 >= 250, "it waited (%.0f ms)", now_ms() - t0);
    cr_expect(eq(int, write_data(b, lb.lid, "*CLS\n", 5, 8).error, 11), "writes are locked out");
    cr_expect(eq(int, readstb(b, lb.lid).error, 11));
    write_ok(a, la.lid, "*IDN?\n");

    /* B waits for the lock; A lets go of it meanwhile: B gets it. */
    unlock_later u = {a, la.lid, -1};
    pthread_t t;
    cr_assert(eq(int, pthread_create(&t, NULL, unlock_after_a_while, &u), 0));
    cr_expect(eq(int, lock(b, lb.lid, 1, 10000), 0), "the lock came once A unlocked");
    pthread_join(t, NULL);
    cr_expect(eq(int, u.error, 0));
    cr_expect(eq(int, lock(a, la.lid, 0, 0), 11));
    /* The lock goes with its connection. */
    clnt_destroy(b);
    usleep(100 * 1000);
    cr_expect(eq(int, lock(a, la.lid, 1, 5000), 0), "B's connection closed: its lock is free");

    /* create_link with lockDevice takes the lock or times out with 11. */
    CLIENT *c2 = connect_to(p->port, 0x0607AF);
    cr_expect(eq(int, link_to(c2, "inst0", 1).error, 11));
    clnt_destroy(c2);
    clnt_destroy(a);
}

typedef struct read_later {
    CLIENT *c;
    int lid;
    int error;
    double ms;
} read_later;

static void *read_long(void *arg)
{
    read_later *r = arg;
    char buf[64];
    double t0 = now_ms();
    r->error = read_data(r->c, r->lid, 64, 20000, 0, 0, buf, sizeof buf).error;
    r->ms = now_ms() - t0;
    return NULL;
}

Test(sim_vxi11, device_abort_ends_a_waiting_read)
{
    dw_sim_proc *p = serve();
    CLIENT *c = connect_to(p->port, 0x0607AF);
    create_link_resp l = link_to(c, "inst0", 0);
    cr_assert(eq(int, l.error, 0));
    read_later r = {c, l.lid, -1, 0};
    pthread_t t;
    cr_assert(eq(int, pthread_create(&t, NULL, read_long, &r), 0));
    usleep(200 * 1000);
    CLIENT *ab = connect_to((uint16_t)l.abort_port, 0x0607B0);
    cr_expect(eq(int, by_lid(ab, 1, l.lid), 0), "device_abort");
    cr_expect(eq(int, by_lid(ab, 1, 999), 4), "device_abort on an unknown link");
    pthread_join(t, NULL);
    cr_expect(eq(int, r.error, 23), "the read ended with abort");
    cr_expect(r.ms < 10000, "long before its io_timeout (%.0f ms)", r.ms);
    clnt_destroy(ab);
    clnt_destroy(c);
}

static bool_t x_pmap(XDR *x, void *v)
{
    return xdr_pmap(x, v);
}
static bool_t x_u_int(XDR *x, void *v)
{
    return xdr_u_int(x, v);
}

Test(sim_vxi11, portmapper_over_tcp_and_udp)
{
    dw_sim_proc *p = serve();
    struct pmap q = {0x0607AF, 1, IPPROTO_TCP, 0};
    u_int port = 0;
    CLIENT *t = connect_to(pmap_port, PMAPPROG);
    clnt_control(t, CLSET_VERS, &(rpcvers_t){PMAPVERS});
    call(t, PMAPPROC_NULL, XP(xdr_void), NULL, XP(xdr_void), NULL);
    call(t, PMAPPROC_GETPORT, XP(x_pmap), &q, XP(x_u_int), &port);
    cr_expect(eq(u32, port, p->port), "TCP: the core channel's port");
    struct pmap other = {100003, 3, IPPROTO_TCP, 0};
    call(t, PMAPPROC_GETPORT, XP(x_pmap), &other, XP(x_u_int), &port);
    cr_expect(eq(u32, port, 0), "another program is not registered");
    clnt_destroy(t);

    struct sockaddr_in a = loopback(pmap_port);
    int sock = RPC_ANYSOCK;
    CLIENT *u = clntudp_create(&a, PMAPPROG, PMAPVERS, (struct timeval){1, 0}, &sock);
    cr_assert(u != NULL, "%s", clnt_spcreateerror("udp"));
    port = 0;
    call(u, PMAPPROC_GETPORT, XP(x_pmap), &q, XP(x_u_int), &port);
    cr_expect(eq(u32, port, p->port), "UDP: the core channel's port");
    clnt_destroy(u);

    /* The core channel refuses what is not VXI-11 version 1. */
    CLIENT *c = connect_to(p->port, 0x0607AF);
    clnt_control(c, CLSET_VERS, &(rpcvers_t){2});
    enum clnt_stat st = clnt_call(c, 10, XP(xdr_void), NULL, XP(xdr_void), NULL, patience);
    cr_expect(eq(int, st, RPC_PROGVERSMISMATCH), "%s", clnt_sperrno(st));
    clnt_destroy(c);
}

Test(sim_vxi11, a_taken_portmapper_port_is_named)
{
    /* A port held by something that is not a portmapper. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    cr_assert(eq(int, bind(fd, (struct sockaddr *)&a, sizeof a), 0));
    cr_assert(eq(int, listen(fd, 1), 0));
    cr_assert(eq(int, getsockname(fd, (struct sockaddr *)&a, &len), 0));
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)ntohs(a.sin_port));
    const char *path = dw_sim_fixture_file("vxi11taken", script);
    const char *const args[] = {"--script",     path, "--listen", "127.0.0.1:0",
                                "--portmapper", port, NULL};
    dw_sim_proc *p = &dw_sim_fixture.proc;
    cr_expect(eq(int, dw_sim_proc_run(p, args, 20000), 3), "%s", dw_sim_err_of(p));
    char want[96];
    snprintf(want, sizeof want, "portmapper 127.0.0.1:%s: the port is taken", port);
    cr_expect(strstr(dw_sim_err_of(p), want) && strstr(dw_sim_err_of(p), "--portmapper PORT"),
              "the error names the port and the option:\n%s", dw_sim_err_of(p));
    close(fd);
}

/* ---- the interrupt channel: service requests -------------------------------- */

typedef struct {
    u_int host_addr, host_port, prog_num, prog_vers, prog_family;
} intr_chan_parms;
static bool_t x_intr_chan_parms(XDR *x, void *v)
{
    intr_chan_parms *p = v;
    return xdr_u_int(x, &p->host_addr) && xdr_u_int(x, &p->host_port) &&
           xdr_u_int(x, &p->prog_num) && xdr_u_int(x, &p->prog_vers) &&
           xdr_u_int(x, &p->prog_family);
}
typedef struct {
    int lid;
    bool_t enable;
    u_int len;
    char *handle;
} enable_srq_parms;
static bool_t x_enable_srq_parms(XDR *x, void *v)
{
    enable_srq_parms *p = v;
    return xdr_int(x, &p->lid) && xdr_bool(x, &p->enable) && xdr_bytes(x, &p->handle, &p->len, 40);
}

static int create_intr_chan(CLIENT *c, uint16_t port, u_int family)
{
    intr_chan_parms p = {INADDR_LOOPBACK, port, 0x0607B1, 1, family};
    int error = -1;
    call(c, 25, XP(x_intr_chan_parms), &p, XP(x_int), &error);
    return error;
}

static int enable_srq(CLIENT *c, int lid, int enable, const char *handle)
{
    enable_srq_parms p = {lid, enable, (u_int)strlen(handle), (char *)handle};
    int error = -1;
    call(c, 20, XP(x_enable_srq_parms), &p, XP(x_int), &error);
    return error;
}

/* The client's interrupt server: a listening socket on 127.0.0.1. */
static int intr_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    cr_assert(eq(int, bind(fd, (struct sockaddr *)&a, sizeof a), 0));
    cr_assert(eq(int, listen(fd, 4), 0));
    cr_assert(eq(int, getsockname(fd, (struct sockaddr *)&a, &len), 0));
    *port = ntohs(a.sin_port);
    return fd;
}

/* Read n bytes within ms: 1, or 0 (timed out, or the stream ended). */
static int read_within(int fd, uint8_t *p, size_t n, int ms)
{
    while (n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, ms) != 1)
            return 0;
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return 0;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

typedef struct srq_call {
    u_int xid, prog, vers, proc;
    char handle[41];
} srq_call;

/* One RPC record from the device, decoded as the call device_intr_srq:
 * 1, or 0 when none came within ms. */
static int srq_within(int fd, int ms, srq_call *out)
{
    uint8_t mark[4], rec[512];
    if (!read_within(fd, mark, 4, ms))
        return 0;
    uint32_t m =
        (uint32_t)mark[0] << 24 | (uint32_t)mark[1] << 16 | (uint32_t)mark[2] << 8 | mark[3];
    cr_assert(eq(u32, m >> 31, 1), "one fragment, the last (mark %08x)", m);
    size_t n = m & 0x7fffffffu;
    cr_assert(n <= sizeof rec, "a record of %zu bytes", n);
    cr_assert(read_within(fd, rec, n, 5000), "the record's %zu bytes", n);
    XDR x;
    xdrmem_create(&x, (char *)rec, (u_int)n, XDR_DECODE);
    u_int mtype = 1, rpcvers = 0, len = 0;
    struct opaque_auth cred, verf;
    char body[2][400];
    cred.oa_base = body[0];
    verf.oa_base = body[1];
    char *h = out->handle;
    memset(out, 0, sizeof *out);
    bool_t ok = xdr_u_int(&x, &out->xid) && xdr_u_int(&x, &mtype) && xdr_u_int(&x, &rpcvers) &&
                xdr_u_int(&x, &out->prog) && xdr_u_int(&x, &out->vers) &&
                xdr_u_int(&x, &out->proc) && xdr_opaque_auth(&x, &cred) &&
                xdr_opaque_auth(&x, &verf) && xdr_bytes(&x, &h, &len, 40);
    cr_assert(ok, "the record decodes as an RPC call with opaque<40> arguments");
    cr_assert(eq(u32, xdr_getpos(&x), (uint32_t)n), "nothing after the handle");
    xdr_destroy(&x);
    cr_expect(eq(u32, mtype, 0), "CALL");
    cr_expect(eq(u32, rpcvers, 2));
    cr_expect(eq(u32, cred.oa_flavor, AUTH_NONE));
    out->handle[len] = '\0';
    return 1;
}

Test(sim_vxi11, service_requests_on_the_interrupt_channel)
{
    dw_sim_proc *p = serve();
    CLIENT *c = connect_to(p->port, 0x0607AF);
    create_link_resp l = link_to(c, "inst0", 0);
    cr_assert(eq(int, l.error, 0));
    uint16_t port;
    int lfd = intr_listen(&port);
    cr_expect(eq(int, enable_srq(c, l.lid, 1, "h"), 6), "enabling SRQ needs the channel");
    cr_expect(eq(int, by_lid(c, 26, 0), 6), "destroy_intr_chan without one");
    cr_expect(eq(int, create_intr_chan(c, port, 1), 8), "DEVICE_UDP is not supported");
    cr_assert(eq(int, create_intr_chan(c, port, 0), 0), "create_intr_chan");
    cr_expect(eq(int, create_intr_chan(c, port, 0), 29), "one channel a connection");
    int fd = accept(lfd, NULL, NULL);
    cr_assert(fd >= 0, "the device connected to the interrupt server");
    cr_assert(eq(int, enable_srq(c, l.lid, 1, "srq-handle-7"), 0), "device_enable_srq");

    srq_call s;
    write_ok(c, l.lid, "*SRE 16\n");
    cr_expect(eq(int, srq_within(fd, 300, &s), 0), "MAV is not set: no service request");
    write_ok(c, l.lid, "*IDN?\n");
    cr_assert(srq_within(fd, 5000, &s), "device_intr_srq after *SRE 16 and a query (MAV)");
    cr_expect(eq(u32, s.prog, 0x0607B1));
    cr_expect(eq(u32, s.vers, 1));
    cr_expect(eq(u32, s.proc, 30), "device_intr_srq");
    cr_expect(eq(str, s.handle, "srq-handle-7"), "the handle of device_enable_srq");
    cr_expect(eq(int, readstb(c, l.lid).stb, 0x50), "MAV and RQS");
    /* A reply from the client's side (it should send none) is dropped. */
    static const uint8_t stray[] = {0x80, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1};
    cr_assert(eq(int, (int)write(fd, stray, sizeof stray), (int)sizeof stray));
    write_ok(c, l.lid, "*IDN?\n");
    cr_expect(eq(int, srq_within(fd, 300, &s), 0), "MSS stayed set: no new request for service");

    char buf[256];
    read_data(c, l.lid, 100, 1000, 0, 0, buf, sizeof buf);
    read_data(c, l.lid, 100, 1000, 0, 0, buf, sizeof buf);
    cr_expect(eq(int, readstb(c, l.lid).stb, 0), "the output queue is empty");
    u_int first = s.xid;
    write_ok(c, l.lid, "*SRE 4\n");
    write_ok(c, l.lid, "BOGUS\n");
    cr_assert(srq_within(fd, 5000, &s), "device_intr_srq after *SRE 4 and an error (EAV)");
    cr_expect(s.xid != first, "each call its own xid");
    cr_expect(eq(int, readstb(c, l.lid).stb, 0x44), "EAV and RQS");

    cr_expect(eq(int, enable_srq(c, l.lid, 0, ""), 0), "disable");
    write_ok(c, l.lid, "*CLS;BOGUS\n");
    cr_expect(eq(int, srq_within(fd, 300, &s), 0), "SRQ disabled: nothing sent");
    cr_expect(eq(int, by_lid(c, 26, 0), 0), "destroy_intr_chan");
    uint8_t b;
    cr_expect(eq(int, read_within(fd, &b, 1, 5000), 0), "the device closed the channel");
    cr_expect(eq(int, by_lid(c, 26, 0), 6), "no channel any more");

    /* Nobody listens there any more: the channel cannot be made. */
    close(fd);
    close(lfd);
    cr_expect(eq(int, create_intr_chan(c, port, 0), 6), "connection refused: 6");
    clnt_destroy(c);
    const char *out;
    cr_expect(eq(int, dw_sim_stop(p, 20000, &out), 0), "%s", dw_sim_err_of(p));
    cr_expect(strstr(dw_sim_err_of(p), "link 1: service request (status byte 80) to 127.0.0.1:") !=
                  NULL,
              "logged at info:\n%s", dw_sim_err_of(p));
}

Test(sim_vxi11, a_fixed_abort_port)
{
    /* A port free a moment ago: --abort-port binds it, create_link tells it. */
    uint16_t port;
    close(intr_listen(&port));
    char arg[16];
    snprintf(arg, sizeof arg, "%u", (unsigned)port);
    const char *const args[] = {"--portmapper", "none", "--abort-port", arg, NULL};
    dw_sim_proc *p = dw_sim_serve("vxi11", script, args);
    cr_assert(dw_sim_proc_wait_output(p, 0, ")\n", 20000), "%s", dw_sim_out_of(p));
    CLIENT *c = connect_to(p->port, 0x0607AF);
    create_link_resp l = link_to(c, "inst0", 0);
    cr_assert(eq(int, l.error, 0));
    cr_expect(eq(u32, l.abort_port, (uint32_t)port),
              "the abort channel is where --abort-port says");
    CLIENT *ab = connect_to(port, 0x0607B0);
    cr_expect(eq(int, by_lid(ab, 1, l.lid), 0), "device_abort on it");
    clnt_destroy(ab);
    clnt_destroy(c);
}
