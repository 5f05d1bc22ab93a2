/* devwire-sim over VXI-11: the interrupt channel (vxi11_int.h).
 *
 * create_intr_chan names the client's own RPC server (its "interrupt
 * server", program 0x0607B1 version 1 over TCP): the device connects to it
 * and, when the status byte of a link with SRQ enabled raises its request
 * for service, calls device_intr_srq there with the link's handle. That
 * call has no reply (VXI-11 B.6.4): the device sends it and goes on; what
 * the client sends back anyway is read and dropped. The channel belongs to
 * the core connection that asked for it and ends with it. It calls nothing
 * above it: a change of state reaches the waiting create_intr_chan through
 * vx->wake. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/loop.h"
#include "device/vxi11_int.h"

struct vx_intr {
    uv_tcp_t tcp;
    uv_connect_t connect;
    dw_sim_wire wire;
    sim_vxi11 *vx;
    vx_conn *conn; /* NULL once the connection let go of the channel */
    int state;     /* VX_INTR_* */
    int closing;
    uint32_t prog, vers, xid;
    dw_buf call;
    char peer[DW_SIM_ADDR_MAX];
};

static void on_closed(uv_handle_t *h)
{
    vx_intr *ch = h->data;
    dw_buf_free(&ch->call);
    free(ch);
}

static void shut(vx_intr *ch)
{
    if (ch->closing)
        return;
    ch->closing = 1;
    if (ch->conn && ch->conn->intr == ch)
        ch->conn->intr = NULL;
    ch->conn = NULL;
    dw__sim_tcp_close(&ch->tcp, 0, on_closed);
}

/* The client ended the channel (or it failed): later SRQs have nowhere to
 * go. The connection that owns it closes it when it next looks (a waiting
 * create_intr_chan answers 6; another create_intr_chan makes a new one). */
static void lost(vx_intr *ch, const char *why)
{
    if (ch->closing || ch->state == VX_INTR_FAILED)
        return;
    if (ch->state == VX_INTR_UP)
        dw__sim_log(ch->vx->srv, DW_LOG_INFO, "VXI-11 interrupt channel to %s: %s", ch->peer, why);
    ch->state = VX_INTR_FAILED;
    uv_read_stop((uv_stream_t *)&ch->tcp);
    ch->vx->wake(ch->vx);
}

static int wire_gone(dw_sim_wire *w)
{
    const vx_intr *ch = w->owner;
    return ch->closing;
}

static void wire_failed(dw_sim_wire *w, int status)
{
    vx_intr *ch = w->owner;
    lost(ch, status == DW_SIM_WIRE_NOMEM ? "out of memory" : uv_strerror(status));
}

static void wire_stall(dw_sim_wire *w)
{
    (void)w; /* an SRQ is a few dozen bytes: nothing to pace */
}

static const dw_sim_wire_ops intr_wire = {wire_gone, wire_failed, NULL, wire_stall};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    vx_intr *ch = h->data;
    (void)hint;
    size_t size;
    uint8_t *p = dw_sim_loop_read_buffer(ch->vx->srv->loop, &size);
    *b = uv_buf_init((char *)p, (unsigned)size);
}

/* What the client's interrupt server sends (replies it should not send):
 * dropped. The end of the stream ends the channel. */
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    vx_intr *ch = st->data;
    (void)b;
    if (nread < 0 && !ch->closing)
        lost(ch, nread == UV_EOF ? "the client closed it" : uv_strerror((int)nread));
}

static void on_connect(uv_connect_t *req, int status)
{
    vx_intr *ch = req->data;
    if (ch->closing) /* cancelled: the channel is being closed */
        return;
    if (status < 0) {
        dw__sim_log(ch->vx->srv, DW_LOG_WARN, "VXI-11 interrupt channel: connect %s: %s", ch->peer,
                    uv_strerror(status));
        lost(ch, uv_strerror(status));
        return;
    }
    ch->state = VX_INTR_UP;
    uv_tcp_nodelay(&ch->tcp, 1);
    uv_read_start((uv_stream_t *)&ch->tcp, on_alloc, on_read);
    dw__sim_log(ch->vx->srv, DW_LOG_INFO, "VXI-11 interrupt channel to %s (program 0x%x)", ch->peer,
                (unsigned)ch->prog);
    ch->vx->wake(ch->vx);
}

vx_intr *dw__vxi11_intr_open(vx_conn *c, uint32_t addr, uint16_t port, uint32_t prog, uint32_t vers)
{
    vx_intr *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    sim_vxi11 *vx = c->vx;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(addr);
    ch->vx = vx;
    ch->conn = c;
    ch->prog = prog;
    ch->vers = vers;
    ch->state = VX_INTR_CONNECTING;
    ch->wire = (dw_sim_wire){&ch->tcp, &intr_wire, ch, 0};
    snprintf(ch->peer, sizeof ch->peer, "%u.%u.%u.%u:%u", (unsigned)(addr >> 24),
             (unsigned)(addr >> 16) & 0xff, (unsigned)(addr >> 8) & 0xff, (unsigned)addr & 0xff,
             (unsigned)port);
    uv_tcp_init(dw_sim_loop_uv(vx->srv->loop), &ch->tcp);
    ch->tcp.data = ch;
    ch->connect.data = ch;
    int rc = uv_tcp_connect(&ch->connect, &ch->tcp, (const struct sockaddr *)&sa, on_connect);
    if (rc < 0) {
        dw__sim_log(vx->srv, DW_LOG_WARN, "VXI-11 interrupt channel: connect %s: %s", ch->peer,
                    uv_strerror(rc));
        ch->state = VX_INTR_FAILED;
    }
    return ch;
}

int dw__vxi11_intr_state(const vx_intr *ch)
{
    return ch->state;
}

const char *dw__vxi11_intr_peer(const vx_intr *ch)
{
    return ch->peer;
}

int dw__vxi11_intr_srq(vx_intr *ch, const uint8_t *handle, size_t n)
{
    if (ch->state != VX_INTR_UP || ch->closing)
        return DW_ECLOSED;
    dw_buf *b = &ch->call;
    if (dw_sim_rpc_call_begin(b, ++ch->xid, ch->prog, ch->vers, DW_VXI11_DEVICE_INTR_SRQ) !=
            DW_OK ||
        dw_sim_rpc_put_opaque(b, handle, n) != DW_OK)
        return DW_ENOMEM;
    dw_sim_rpc_reply_end(b);
    dw__sim_wire_write(&ch->wire, b->data, b->len);
    return DW_OK;
}

void dw__vxi11_intr_close(vx_intr *ch)
{
    if (ch)
        shut(ch);
}
