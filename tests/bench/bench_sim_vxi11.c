/* What VXI-11 costs in devwire-sim: *IDN? round trips per second over
 * VXI-11 (libtirpc's client: a device_write with END, then a device_read,
 * two RPC calls on one link) against the same SCPI device over a raw socket
 * ("*IDN?\n" out, a line back), one client each, both devwire-sim in its own
 * process, in the same run. The VXI-11 device runs with --portmapper none:
 * the client is given the core channel's port.
 *
 * DW_BENCH_QUICK=1 runs a short version. */
#ifndef DW_BENCH_HAVE_SIM_CORE
#include <stdio.h>
int main(void)
{
    fprintf(stderr, "bench_sim_vxi11: built without devwire-sim\n");
    return 1;
}
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "bench_child.h"

static const char idn[] = "ACME,VX-1,7,1.0\n";

static char *write_script(const char *transport)
{
    char *path = NULL;
    if (asprintf(&path, "/tmp/dwsim-bench-vxi11-%s-%ld.json", transport, (long)getpid()) < 0)
        return NULL;
    FILE *f = fopen(path, "w");
    if (!f) {
        free(path);
        return NULL;
    }
    fprintf(f,
            "{\"transport\": \"%s\", \"profile\": \"scpi\", \"idn\": \"ACME,VX-1,7,1.0\",\n"
            " \"framing\": {\"request\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
            "             \"response\": {\"type\": \"scpi\", \"sentinel\": \"\\n\"}}}\n",
            transport);
    fclose(f);
    return path;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- raw socket ---------------------------------------------------------------- */

static double raw_rate(uint16_t port, double seconds)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bench_sim_vxi11: connect");
        close(fd);
        return 0;
    }
    char buf[256];
    long n = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds) {
        if (send(fd, "*IDN?\n", 6, MSG_NOSIGNAL) != 6)
            break;
        size_t got = 0;
        while (got < sizeof idn - 1) {
            ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
            if (r <= 0)
                goto out;
            got += (size_t)r;
        }
        if (memcmp(buf, idn, sizeof idn - 1) != 0) {
            fprintf(stderr, "bench_sim_vxi11: raw: a wrong answer\n");
            break;
        }
        n++;
        if ((n & 63) == 0)
            t = now_s();
    }
out:
    t = now_s();
    close(fd);
    return (double)n / (t - t0);
}

/* ---- VXI-11 -------------------------------------------------------------------- */

typedef struct {
    int client_id, lock_device;
    u_int lock_timeout;
    char *device;
} link_parms;
typedef struct {
    int error, lid;
    u_int abort_port, max_recv_size;
} link_resp;
typedef struct {
    int lid;
    u_int io_timeout, lock_timeout, flags, len;
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

static bool_t x_link_parms(XDR *x, void *v)
{
    link_parms *p = v;
    return xdr_int(x, &p->client_id) && xdr_bool(x, &p->lock_device) &&
           xdr_u_int(x, &p->lock_timeout) && xdr_string(x, &p->device, ~0u);
}
static bool_t x_link_resp(XDR *x, void *v)
{
    link_resp *r = v;
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

#define XP(f) ((xdrproc_t)(void (*)(void))(f))

static double vxi11_rate(uint16_t port, double seconds)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int sock = RPC_ANYSOCK;
    CLIENT *c = clnttcp_create(&a, 0x0607AF, 1, &sock, 0, 0);
    if (!c) {
        fprintf(stderr, "bench_sim_vxi11: %s\n", clnt_spcreateerror("clnttcp_create"));
        return 0;
    }
    struct timeval tmo = {10, 0};
    link_parms lp = {1, 0, 1000, "inst0"};
    link_resp lr = {0};
    if (clnt_call(c, 10, XP(x_link_parms), &lp, XP(x_link_resp), &lr, tmo) != RPC_SUCCESS ||
        lr.error) {
        fprintf(stderr, "bench_sim_vxi11: create_link failed\n");
        clnt_destroy(c);
        return 0;
    }
    long n = 0;
    double t0 = now_s(), t = t0;
    char *buf = malloc(256);
    while (t - t0 < seconds) {
        write_parms wp = {lr.lid, 1000, 1000, 8, 6, "*IDN?\n"};
        write_resp wr = {0};
        read_parms rp = {lr.lid, 256, 1000, 1000, 0, 0};
        read_resp rr = {0, 0, 256, buf};
        if (clnt_call(c, 11, XP(x_write_parms), &wp, XP(x_write_resp), &wr, tmo) != RPC_SUCCESS ||
            wr.error ||
            clnt_call(c, 12, XP(x_read_parms), &rp, XP(x_read_resp), &rr, tmo) != RPC_SUCCESS ||
            rr.error || rr.len != sizeof idn - 1 || memcmp(rr.data, idn, rr.len) != 0) {
            fprintf(stderr, "bench_sim_vxi11: VXI-11: a call failed or a wrong answer\n");
            break;
        }
        n++;
        if ((n & 63) == 0)
            t = now_s();
    }
    t = now_s();
    free(buf);
    clnt_destroy(c);
    return (double)n / (t - t0);
}

static pid_t start(const char *script, int vxi11, uint16_t *port)
{
#ifdef DW_SIM_PATH
    char *argv[] = {DW_SIM_PATH,   "--script",    (char *)script, "--listen",
                    "127.0.0.1:0", "--log-level", "error",        vxi11 ? "--portmapper" : NULL,
                    "none",        NULL};
    return bench_child_exec(argv, port);
#else
    (void)script;
    (void)vxi11;
    (void)port;
    fprintf(stderr, "bench_sim_vxi11: devwire-sim was not built\n");
    return -1;
#endif
}

int main(void)
{
    double seconds = getenv("DW_BENCH_QUICK") ? 0.5 : 3.0;
    int runs = 3, status = 0;
    char *tcp = write_script("tcp"), *vx = write_script("vxi11");
    uint16_t tcp_port = 0, vx_port = 0;
    pid_t tp = tcp ? start(tcp, 0, &tcp_port) : -1, vp = vx ? start(vx, 1, &vx_port) : -1;
    if (tp <= 0 || vp <= 0) {
        status = 1;
    } else {
        double best_raw = 0, best_vx = 0;
        for (int i = 0; i < runs; i++) { /* interleaved: the machine's load falls on both */
            double r = raw_rate(tcp_port, seconds), v = vxi11_rate(vx_port, seconds);
            best_raw = r > best_raw ? r : best_raw;
            best_vx = v > best_vx ? v : best_vx;
        }
        printf("\n*IDN? round trips per second, one client, devwire-sim in its own process "
               "(best of %d runs of %.1f s)\n",
               runs, seconds);
        printf("%-28s | %12s\n", "path", "rt/s");
        printf("%-28s | %12.0f\n", "raw socket (TCP, \"\\n\")", best_raw);
        printf("%-28s | %12.0f\n", "VXI-11 (write + read)", best_vx);
        printf("BENCH sim_vxi11_idn_rt %.0f rt/s %.0f %.2f\n", best_vx, best_raw,
               best_raw > 0 ? best_vx / best_raw : 0);
        if (best_vx <= 0 || best_raw <= 0)
            status = 1;
    }
    if (tp > 0)
        bench_child_stop(tp);
    if (vp > 0)
        bench_child_stop(vp);
    if (tcp)
        unlink(tcp);
    if (vx)
        unlink(vx);
    free(tcp);
    free(vx);
    return status;
}
#endif
