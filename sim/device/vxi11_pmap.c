/* devwire-sim's portmapper for a VXI-11 device: see vxi11_pmap.h. */
#include "device/vxi11_pmap.h"

#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <rpc/rpc.h>
#include <rpc/pmap_clnt.h>
#include <rpc/pmap_prot.h>
#include <rpc/rpcb_clnt.h>

#include "common/net.h"
#include "device/conn.h"
#include "model/vxi11_rpc.h"

#define MAX_RECORD 4096 /* a portmapper question is a few dozen bytes */

struct dw_sim_pmap {
    uv_tcp_t tcp;
    uv_udp_t udp;
    int handles; /* open handles of the portmapper itself */
    int tcp_open, udp_open;
    int registered; /* with rpcbind: nothing of ours listens */
    uint16_t core_port;
    char host[DW_SIM_ADDR_MAX];
    char addr[DW_SIM_ADDR_MAX];
    const dw_logger *logger;
    struct pmap_conn *conns;
    dw_buf reply;
    uint8_t dgram[MAX_RECORD];
};

/* One TCP client of the portmapper. */
typedef struct pmap_conn {
    uv_tcp_t tcp;
    dw_sim_pmap *pm;
    struct pmap_conn *prev, *next;
    dw_sim_rpc_rm rm;
    dw_buf record;
    int closing;
} pmap_conn;

/* The answer to one call into pm->reply (marked for TCP): DW_OK, or an
 * error when the call is not worth an answer (a malformed record). */
static int answer(dw_sim_pmap *pm, const uint8_t *rec, size_t n)
{
    dw_sim_rpc_call c;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_rpc_call_decode(rec, n, &c, &err) != DW_OK)
        return DW_EPROTO;
    dw_buf *out = &pm->reply;
    if (c.rpcvers != 2)
        return dw_sim_rpc_reply_rpc_mismatch(out, c.xid);
    int rc;
    if (c.prog != DW_PMAP_PROG) {
        rc = dw_sim_rpc_reply_begin(out, c.xid, DW_RPC_PROG_UNAVAIL);
    } else if (c.vers < 2 || c.vers > 4) {
        const uint32_t range[] = {2, 4};
        rc = dw_sim_rpc_reply_begin(out, c.xid, DW_RPC_PROG_MISMATCH);
        if (rc == DW_OK)
            rc = dw_sim_rpc_put_u32(out, range, 2);
    } else if (c.proc == DW_PMAP_NULL) {
        rc = dw_sim_rpc_reply_begin(out, c.xid, DW_RPC_SUCCESS);
    } else if (c.proc != DW_PMAP_GETPORT) { /* == DW_RPCB_GETADDR */
        rc = dw_sim_rpc_reply_begin(out, c.xid, DW_RPC_PROC_UNAVAIL);
    } else {
        dw_sim_pmap_query q;
        if (dw_sim_pmap_query_decode(c.vers, c.args, c.nargs, &q, &err) != DW_OK) {
            rc = dw_sim_rpc_reply_begin(out, c.xid, DW_RPC_GARBAGE_ARGS);
        } else {
            int ours =
                q.prog == DW_VXI11_CORE_PROG && q.vers == DW_VXI11_VERS && q.prot == IPPROTO_TCP;
            uint32_t port = ours ? pm->core_port : 0;
            rc = dw_sim_rpc_reply_begin(out, c.xid, DW_RPC_SUCCESS);
            if (rc == DW_OK && c.vers == 2) {
                rc = dw_sim_rpc_put_u32(out, &port, 1);
            } else if (rc == DW_OK) { /* a universal address: h1.h2.h3.h4.p1.p2, or "" */
                char uaddr[DW_SIM_ADDR_MAX + 16] = "";
                if (ours)
                    snprintf(uaddr, sizeof uaddr, "%s.%u.%u", pm->host, (unsigned)(port >> 8),
                             (unsigned)(port & 0xff));
                rc = dw_sim_rpc_put_string(out, uaddr);
            }
        }
    }
    if (rc == DW_OK)
        dw_sim_rpc_reply_end(out);
    return rc;
}

/* ---- TCP ---------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    pmap_conn *pc = h->data;
    dw_buf_free(&pc->record);
    free(pc);
}

static void conn_close(pmap_conn *pc)
{
    if (pc->closing)
        return;
    pc->closing = 1;
    dw_sim_pmap *pm = pc->pm;
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        pm->conns = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    uv_close((uv_handle_t *)&pc->tcp, on_conn_closed);
}

/* Reads are handled before the next one: one buffer serves every client. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    const pmap_conn *pc = h->data;
    (void)hint;
    *b = uv_buf_init((char *)pc->pm->dgram, sizeof pc->pm->dgram);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    pmap_conn *pc = st->data;
    if (nread == 0 || pc->closing)
        return;
    if (nread < 0) {
        conn_close(pc);
        return;
    }
    const uint8_t *p = (const uint8_t *)b->base;
    size_t n = (size_t)nread, at = 0;
    while (at < n && !pc->closing) {
        size_t used = 0;
        dw_error err;
        dw_error_clear(&err);
        int rc = dw_sim_rpc_rm_feed(&pc->rm, p + at, n - at, &used, &pc->record, &err);
        at += used;
        if (rc == DW_MORE)
            break;
        /* Replies are a few dozen bytes: the socket takes them whole, or
         * the client is not one worth waiting for. */
        if (rc != DW_OK || answer(pc->pm, pc->record.data, pc->record.len) != DW_OK ||
            dw__sim_try_send(&pc->tcp, pc->pm->reply.data, pc->pm->reply.len) !=
                (ssize_t)pc->pm->reply.len) {
            dw_log(pc->pm->logger, DW_LOG_DEBUG, "portmapper %s: closing a client: %s",
                   pc->pm->addr, rc != DW_OK ? dw_error_message(&err) : "a bad call");
            conn_close(pc);
            return;
        }
        dw_buf_clear(&pc->record);
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    dw_sim_pmap *pm = l->data;
    if (status < 0)
        return;
    pmap_conn *pc = calloc(1, sizeof *pc);
    if (!pc || uv_tcp_init(l->loop, &pc->tcp) != 0) {
        free(pc);
        return;
    }
    pc->tcp.data = pc;
    pc->pm = pm;
    dw_sim_rpc_rm_init(&pc->rm, MAX_RECORD);
    if (uv_accept(l, (uv_stream_t *)&pc->tcp) != 0) {
        pc->closing = 1;
        uv_close((uv_handle_t *)&pc->tcp, on_conn_closed);
        return;
    }
    pc->next = pm->conns;
    if (pm->conns)
        pm->conns->prev = pc;
    pm->conns = pc;
    uv_read_start((uv_stream_t *)&pc->tcp, on_alloc, on_read);
}

/* ---- UDP ---------------------------------------------------------------------- */

static void on_dgram_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    dw_sim_pmap *pm = h->data;
    (void)hint;
    *b = uv_buf_init((char *)pm->dgram, sizeof pm->dgram);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b, const struct sockaddr *addr,
                    unsigned flags)
{
    dw_sim_pmap *pm = h->data;
    (void)flags;
    if (nread <= 0 || !addr)
        return;
    if (answer(pm, (const uint8_t *)b->base, (size_t)nread) != DW_OK)
        return;
    uv_buf_t out = uv_buf_init((char *)pm->reply.data + DW_SIM_RPC_MARK,
                               (unsigned)(pm->reply.len - DW_SIM_RPC_MARK));
    (void)uv_udp_try_send(&pm->udp, &out, 1, addr); /* a lost answer is asked again */
}

/* ---- life ---------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    dw_sim_pmap *pm = h->data;
    if (--pm->handles == 0) {
        dw_buf_free(&pm->reply);
        free(pm);
    }
}

/* The TCP port that the portmapper on host:111 has for the core program, 0
 * when none (or when what holds the port does not answer as a portmapper
 * within two seconds). Over TCP: the port is known to be held. */
static unsigned registered_port(const char *host)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(111);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int sock = RPC_ANYSOCK; /* closed by clnt_destroy */
    CLIENT *cl = clnttcp_create(&sa, PMAPPROG, PMAPVERS, &sock, 0, 0);
    if (!cl)
        return 0;
    struct pmap q = {DW_VXI11_CORE_PROG, DW_VXI11_VERS, IPPROTO_TCP, 0};
    u_long port = 0;
    struct timeval tv = {2, 0};
    if (clnt_call(cl, PMAPPROC_GETPORT, (xdrproc_t)xdr_pmap, (char *)&q, (xdrproc_t)xdr_u_long,
                  (char *)&port, tv) != RPC_SUCCESS)
        port = 0;
    clnt_destroy(cl);
    return port <= 65535 ? (unsigned)port : 0;
}

/* Registered with rpcbind on host:port. */
static int registered(dw_sim_pmap *pm, const char *host, uint16_t port)
{
    pm->registered = 1;
    snprintf(pm->addr, sizeof pm->addr, "%s:%u", host, (unsigned)port);
    dw_log(pm->logger, DW_LOG_INFO,
           "portmapper %s is taken by rpcbind: the VXI-11 core channel (port %u) is registered "
           "with it",
           pm->addr, (unsigned)pm->core_port);
    return DW_OK;
}

/* pmap_set for TCP, without libtirpc's leak: its pmap_set frees the netbuf
 * uaddr2taddr made but not the address inside (16 bytes per call). The
 * address is ours here, on the stack; rpcb_set copies what it needs.
 * 1 when rpcbind took the registration. */
static int register_tcp(unsigned long prog, unsigned long vers, uint16_t port)
{
    struct netconfig *nconf = getnetconfigent("tcp");
    if (!nconf)
        return 0;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    struct netbuf nb = {sizeof sin, sizeof sin, &sin};
    int ok = rpcb_set((rpcprog_t)prog, (rpcvers_t)vers, nconf, &nb) ? 1 : 0;
    freenetconfigent(nconf);
    return ok;
}

/* The port is taken: register with the portmapper there, if it is one. */
static int use_rpcbind(dw_sim_pmap *pm, const char *host, uint16_t port, dw_error *err)
{
    rpc_createerr.cf_stat = RPC_SUCCESS; /* set by rpcb_set when rpcbind could not be asked */
    if (port == 111 && register_tcp(DW_VXI11_CORE_PROG, DW_VXI11_VERS, pm->core_port))
        return registered(pm, host, port);
    /* rpcbind answered no: it refuses a second registration of a program
     * and version, another device's or one left by a simulator killed
     * (SIGKILL) before it could remove its own. */
    unsigned held = port == 111 && rpc_createerr.cf_stat == RPC_SUCCESS ? registered_port(host) : 0;
    if (held)
        return dw_error_set(err, DW_EIO,
                            "portmapper %s:111 (rpcbind) already has the VXI-11 core program "
                            "0x%X version %u registered, at TCP port %u: another device's, or "
                            "left by a simulator that was killed; `rpcinfo -d %u %u` removes it, "
                            "or give another port with --portmapper PORT",
                            host, (unsigned)DW_VXI11_CORE_PROG, (unsigned)DW_VXI11_VERS, held,
                            (unsigned)DW_VXI11_CORE_PROG, (unsigned)DW_VXI11_VERS);
    return dw_error_set(err, DW_EIO,
                        "portmapper %s:%u: the port is taken%s; stop what holds it or give "
                        "another with --portmapper PORT",
                        host, (unsigned)port,
                        port == 111 ? " and no rpcbind there takes a registration (pmap_set "
                                      "failed)"
                                    : "");
}

static int bind_both(dw_sim_pmap *pm, uv_loop_t *loop, const char *host, uint16_t port,
                     dw_error *err)
{
    int fd = -1;
    uint16_t bound = 0;
    int rc = dw_sim_net_bind(host, port, SOCK_STREAM, 64, &fd, pm->addr, &bound, err);
    if (rc == -EADDRINUSE)
        return use_rpcbind(pm, host, port, err);
    if (rc == -EACCES || rc == -EPERM)
        return dw_error_set(err, rc,
                            "portmapper %s:%u: binding a port below 1024 needs root or "
                            "CAP_NET_BIND_SERVICE; or give another port with --portmapper PORT "
                            "(clients must then be told it)",
                            host, (unsigned)port);
    if (rc != DW_OK)
        return rc;
    char *bound_host = NULL; /* the address as bound, for universal addresses */
    if (dw_sim_parse_hostport(pm->addr, &bound_host, &bound) == 0) {
        snprintf(pm->host, sizeof pm->host, "%s", bound_host);
        free(bound_host);
    }
    uv_tcp_init(loop, &pm->tcp);
    pm->tcp.data = pm;
    pm->handles++;
    pm->tcp_open = 1;
    if ((rc = dw__sim_listen_fd(&pm->tcp, fd, on_connection, pm->addr, err)) != DW_OK)
        return rc;
    char uaddr[DW_SIM_ADDR_MAX];
    if ((rc = dw_sim_net_bind(host, bound, SOCK_DGRAM, 0, &fd, uaddr, &bound, err)) != DW_OK)
        return rc;
    uv_udp_init(loop, &pm->udp);
    pm->udp.data = pm;
    pm->handles++;
    pm->udp_open = 1;
    int r = uv_udp_open(&pm->udp, fd);
    if (r != 0)
        close(fd);
    else
        r = uv_udp_recv_start(&pm->udp, on_dgram_alloc, on_recv);
    if (r != 0)
        return dw_error_set(err, DW_EIO, "portmapper %s (UDP): %s", uaddr, uv_strerror(r));
    return DW_OK;
}

int dw__sim_pmap_open(uv_loop_t *loop, const char *host, uint16_t port, uint16_t core_port,
                      const dw_logger *logger, dw_sim_pmap **out, dw_error *err)
{
    *out = NULL;
    dw_sim_pmap *pm = calloc(1, sizeof *pm);
    if (!pm)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    pm->core_port = core_port;
    pm->logger = logger;
    snprintf(pm->host, sizeof pm->host, "%s", host);
    int rc = bind_both(pm, loop, host, port, err);
    if (rc != DW_OK) {
        pm->registered = 0;
        dw__sim_pmap_close(pm);
        return rc;
    }
    *out = pm;
    return DW_OK;
}

const char *dw__sim_pmap_address(const dw_sim_pmap *p)
{
    return p->addr;
}

int dw__sim_pmap_registered(const dw_sim_pmap *p)
{
    return p->registered;
}

void dw__sim_pmap_close(dw_sim_pmap *p)
{
    if (!p)
        return;
    if (p->registered)
        pmap_unset(DW_VXI11_CORE_PROG, DW_VXI11_VERS);
    while (p->conns)
        conn_close(p->conns);
    if (p->handles == 0) {
        dw_buf_free(&p->reply);
        free(p);
        return;
    }
    if (p->tcp_open)
        uv_close((uv_handle_t *)&p->tcp, on_closed);
    if (p->udp_open)
        uv_close((uv_handle_t *)&p->udp, on_closed);
}
