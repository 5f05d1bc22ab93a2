/* ONC RPC for VXI-11: see vxi11_rpc.h. Every word goes through libtirpc's
 * XDR (xdrmem streams); opaque data and strings are located, not copied. */
#include "model/vxi11_rpc.h"

#include <string.h>

#include <netinet/in.h>
#include <rpc/xdr.h>
#include <rpc/auth.h>

#define MAX_AUTH 400 /* RFC 5531: a credential or verifier body holds at most 400 bytes */

/* ---- record marking ------------------------------------------------------ */

void dw_sim_rpc_rm_init(dw_sim_rpc_rm *rm, size_t max_record)
{
    memset(rm, 0, sizeof *rm);
    rm->max_record = max_record;
}

int dw_sim_rpc_rm_partial(const dw_sim_rpc_rm *rm)
{
    return rm->nhdr > 0;
}

/* The fragment header just completed: its length and "last" bit. */
static uint32_t header_word(const uint8_t hdr[4])
{
    XDR x;
    uint32_t v = 0;
    xdrmem_create(&x, (char *)(uintptr_t)hdr, 4, XDR_DECODE);
    (void)xdr_u_int(&x, &v);
    xdr_destroy(&x);
    return v;
}

int dw_sim_rpc_rm_feed(dw_sim_rpc_rm *rm, const uint8_t *p, size_t n, size_t *used, dw_buf *record,
                       dw_error *err)
{
    size_t at = 0;
    for (;;) {
        if (rm->nhdr < 4) {
            while (rm->nhdr < 4 && at < n)
                rm->hdr[rm->nhdr++] = p[at++];
            if (rm->nhdr < 4)
                break;
            uint32_t h = header_word(rm->hdr);
            rm->last = (h >> 31) != 0;
            rm->left = h & 0x7fffffffu;
            if (rm->left > rm->max_record || record->len > rm->max_record - rm->left) {
                *used = at;
                return dw_error_set(err, DW_ETOOBIG,
                                    "RPC record of more than %zu bytes (a fragment of %u bytes "
                                    "after %zu)",
                                    rm->max_record, (unsigned)rm->left, record->len);
            }
        }
        size_t take = n - at < rm->left ? n - at : rm->left;
        if (take && dw_buf_append(record, p + at, take) != DW_OK) {
            *used = at;
            return dw_error_set(err, DW_ENOMEM, "out of memory");
        }
        at += take;
        rm->left -= (uint32_t)take;
        if (rm->left)
            break;
        rm->nhdr = 0;
        if (rm->last) {
            rm->last = 0;
            *used = at;
            return DW_OK;
        }
    }
    *used = at;
    return DW_MORE;
}

/* ---- decoding ---------------------------------------------------------------- */

/* Locate variable-length opaque data (or a string) of at most max bytes:
 * its bytes stay in the record, the stream moves past their padding. */
static int locate(XDR *x, const uint8_t *base, size_t n, size_t max, const uint8_t **out,
                  size_t *len)
{
    uint32_t l;
    if (!xdr_u_int(x, &l) || l > max)
        return 0;
    size_t pos = xdr_getpos(x), padded = ((size_t)l + 3) & ~(size_t)3;
    if (padded > n - pos || !xdr_setpos(x, (u_int)(pos + padded)))
        return 0;
    *out = base + pos;
    *len = l;
    return 1;
}

int dw_sim_rpc_call_decode(const uint8_t *rec, size_t n, dw_sim_rpc_call *c, dw_error *err)
{
    memset(c, 0, sizeof *c);
    if (n > 0x7fffffffu)
        return dw_error_set(err, DW_EPROTO, "RPC call of %zu bytes", n);
    XDR x;
    xdrmem_create(&x, (char *)(uintptr_t)rec, (u_int)n, XDR_DECODE);
    uint32_t mtype = 1;
    char body[2][MAX_AUTH];
    struct opaque_auth cred = {0, body[0], 0}, verf = {0, body[1], 0};
    int ok =
        xdr_u_int(&x, &c->xid) && xdr_u_int(&x, &mtype) && mtype == 0 && xdr_u_int(&x, &c->rpcvers);
    if (ok && c->rpcvers != 2) { /* answered with RPC_MISMATCH: the rest need not decode */
        xdr_destroy(&x);
        return DW_OK;
    }
    ok = ok && xdr_u_int(&x, &c->prog) && xdr_u_int(&x, &c->vers) && xdr_u_int(&x, &c->proc) &&
         xdr_opaque_auth(&x, &cred) && xdr_opaque_auth(&x, &verf);
    size_t pos = ok ? xdr_getpos(&x) : 0;
    xdr_destroy(&x);
    if (!ok)
        return dw_error_set(err, DW_EPROTO,
                            mtype != 0 ? "RPC record of %zu bytes is not a call"
                                       : "RPC call header cut short or malformed (%zu bytes)",
                            n);
    c->args = rec + pos;
    c->nargs = n - pos;
    return DW_OK;
}

/* The fields of the procedures' arguments, in XDR order. */
enum {
    F_END,
    F_LID,
    F_FLAGS,
    F_LOCK_TIMEOUT,
    F_IO_TIMEOUT,
    F_CLIENT_ID,
    F_LOCK_DEVICE,
    F_DEVICE,
    F_DATA,
    F_REQUEST_SIZE,
    F_TERM_CHAR,
    F_ENABLE,
    F_HANDLE,
    F_CMD,
    F_NETWORK_ORDER,
    F_DATASIZE,
    F_HOST_ADDR,
    F_HOST_PORT,
    F_PROG_NUM,
    F_PROG_VERS,
    F_PROG_FAMILY,
};

/* Device_GenericParms. */
#define GENERIC                                                                                    \
    {                                                                                              \
        F_LID, F_FLAGS, F_LOCK_TIMEOUT, F_IO_TIMEOUT, F_END                                        \
    }

static const uint8_t layouts[][9] = {
    [DW_VXI11_CREATE_LINK] = {F_CLIENT_ID, F_LOCK_DEVICE, F_LOCK_TIMEOUT, F_DEVICE, F_END},
    [DW_VXI11_DEVICE_WRITE] = {F_LID, F_IO_TIMEOUT, F_LOCK_TIMEOUT, F_FLAGS, F_DATA, F_END},
    [DW_VXI11_DEVICE_READ] = {F_LID, F_REQUEST_SIZE, F_IO_TIMEOUT, F_LOCK_TIMEOUT, F_FLAGS,
                              F_TERM_CHAR, F_END},
    [DW_VXI11_DEVICE_READSTB] = GENERIC,
    [DW_VXI11_DEVICE_TRIGGER] = GENERIC,
    [DW_VXI11_DEVICE_CLEAR] = GENERIC,
    [DW_VXI11_DEVICE_REMOTE] = GENERIC,
    [DW_VXI11_DEVICE_LOCAL] = GENERIC,
    [DW_VXI11_DEVICE_LOCK] = {F_LID, F_FLAGS, F_LOCK_TIMEOUT, F_END},
    [DW_VXI11_DEVICE_UNLOCK] = {F_LID, F_END},
    [DW_VXI11_DEVICE_ENABLE_SRQ] = {F_LID, F_ENABLE, F_HANDLE, F_END},
    [DW_VXI11_DEVICE_DOCMD] = {F_LID, F_FLAGS, F_IO_TIMEOUT, F_LOCK_TIMEOUT, F_CMD, F_NETWORK_ORDER,
                               F_DATASIZE, F_DATA, F_END},
    [DW_VXI11_DESTROY_LINK] = {F_LID, F_END},
    [DW_VXI11_CREATE_INTR_CHAN] = {F_HOST_ADDR, F_HOST_PORT, F_PROG_NUM, F_PROG_VERS, F_PROG_FAMILY,
                                   F_END},
    [DW_VXI11_DESTROY_INTR_CHAN] = {F_END},
};

/* Where a 32-bit field goes (NULL: a variable-length one). */
static uint32_t *word_of(dw_sim_vxi11_args *a, int f)
{
    uint32_t *words[] = {
        [F_LID] = (uint32_t *)&a->lid,
        [F_FLAGS] = &a->flags,
        [F_LOCK_TIMEOUT] = &a->lock_timeout,
        [F_IO_TIMEOUT] = &a->io_timeout,
        [F_CLIENT_ID] = (uint32_t *)&a->client_id,
        [F_LOCK_DEVICE] = &a->lock_device,
        [F_REQUEST_SIZE] = &a->request_size,
        [F_TERM_CHAR] = &a->term_char,
        [F_ENABLE] = &a->enable,
        [F_CMD] = (uint32_t *)&a->cmd,
        [F_HOST_ADDR] = &a->host_addr,
        [F_HOST_PORT] = &a->host_port,
        [F_PROG_NUM] = &a->prog_num,
        [F_PROG_VERS] = &a->prog_vers,
        [F_PROG_FAMILY] = &a->prog_family,
        [F_PROG_FAMILY + 1] = NULL,
    };
    return f <= F_PROG_FAMILY ? words[f] : NULL;
}

static int decode_fields(XDR *x, const uint8_t *layout, const uint8_t *p, size_t n,
                         dw_sim_vxi11_args *a)
{
    uint32_t ignored;
    for (; *layout != F_END; layout++) {
        const uint8_t *where = NULL;
        size_t len = 0;
        switch (*layout) {
        case F_DEVICE:
            if (!locate(x, p, n, 0x7fffffffu, &where, &len))
                return 0;
            a->device = (const char *)where;
            a->device_len = len;
            break;
        case F_DATA:
        case F_HANDLE:
            if (!locate(x, p, n, *layout == F_HANDLE ? 40 : 0x7fffffffu, &where, &len))
                return 0;
            a->data = where;
            a->data_len = len;
            break;
        case F_NETWORK_ORDER:
        case F_DATASIZE:
            if (!xdr_u_int(x, &ignored))
                return 0;
            break;
        default:
            if (!xdr_u_int(x, word_of(a, *layout)))
                return 0;
        }
    }
    return 1;
}

int dw_sim_vxi11_args_decode(uint32_t prog, uint32_t proc, const uint8_t *p, size_t n,
                             dw_sim_vxi11_args *a, dw_error *err)
{
    memset(a, 0, sizeof *a);
    const uint8_t *layout;
    static const uint8_t abort_layout[] = {F_LID, F_END};
    if (prog == DW_VXI11_ABORT_PROG && proc == DW_VXI11_DEVICE_ABORT)
        layout = abort_layout;
    else if (prog == DW_VXI11_CORE_PROG && proc < sizeof layouts / sizeof layouts[0] &&
             (layouts[proc][0] != F_END || proc == DW_VXI11_DESTROY_INTR_CHAN))
        layout = layouts[proc];
    else
        return dw_error_set(err, DW_ENOENT, "no procedure %u in program 0x%x", (unsigned)proc,
                            (unsigned)prog);
    if (n > 0x7fffffffu)
        return dw_error_set(err, DW_EPROTO, "arguments of %zu bytes", n);
    XDR x;
    xdrmem_create(&x, (char *)(uintptr_t)p, (u_int)n, XDR_DECODE);
    int ok = decode_fields(&x, layout, p, n, a);
    xdr_destroy(&x);
    if (!ok)
        return dw_error_set(err, DW_EPROTO, "procedure %u: arguments cut short or malformed",
                            (unsigned)proc);
    return DW_OK;
}

int dw_sim_pmap_query_decode(uint32_t vers, const uint8_t *p, size_t n, dw_sim_pmap_query *q,
                             dw_error *err)
{
    memset(q, 0, sizeof *q);
    if (n > 0x7fffffffu)
        return dw_error_set(err, DW_EPROTO, "arguments of %zu bytes", n);
    XDR x;
    xdrmem_create(&x, (char *)(uintptr_t)p, (u_int)n, XDR_DECODE);
    int ok = xdr_u_int(&x, &q->prog) && xdr_u_int(&x, &q->vers);
    if (vers == 2) {
        ok = ok && xdr_u_int(&x, &q->prot);
    } else {
        const uint8_t *netid = NULL;
        size_t len = 0;
        ok = ok && locate(&x, p, n, 255, &netid, &len);
        if (ok && len >= 3 && memcmp(netid, "tcp", 3) == 0 && (len == 3 || len == 4))
            q->prot = IPPROTO_TCP;
        else if (ok && len >= 3 && memcmp(netid, "udp", 3) == 0 && (len == 3 || len == 4))
            q->prot = IPPROTO_UDP;
    }
    xdr_destroy(&x);
    if (!ok)
        return dw_error_set(err, DW_EPROTO, "portmapper query cut short or malformed");
    return DW_OK;
}

/* ---- replies ---------------------------------------------------------------- */

/* An encoding stream over the `room` bytes after out's end. */
static int enc_begin(dw_buf *out, size_t room, XDR *x)
{
    if (room > 0x7fffffffu || dw_buf_reserve(out, room) != DW_OK)
        return DW_ENOMEM;
    xdrmem_create(x, (char *)out->data + out->len, (u_int)room, XDR_ENCODE);
    return DW_OK;
}

static int enc_end(dw_buf *out, XDR *x, int ok)
{
    if (ok)
        out->len += xdr_getpos(x);
    xdr_destroy(x);
    return ok ? DW_OK : DW_ENOMEM;
}

int dw_sim_rpc_put_u32(dw_buf *out, const uint32_t *v, size_t n)
{
    XDR x;
    if (enc_begin(out, 4 * n, &x) != DW_OK)
        return DW_ENOMEM;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = xdr_u_int(&x, (uint32_t *)(uintptr_t)&v[i]);
    return enc_end(out, &x, ok);
}

int dw_sim_rpc_put_opaque(dw_buf *out, const uint8_t *p, size_t n)
{
    XDR x;
    if (n > 0x7ffffff0u || enc_begin(out, 4 + ((n + 3) & ~(size_t)3), &x) != DW_OK)
        return DW_ENOMEM;
    char *data = (char *)(uintptr_t)p;
    u_int len = (u_int)n;
    return enc_end(out, &x, xdr_bytes(&x, &data, &len, len));
}

int dw_sim_rpc_put_string(dw_buf *out, const char *s)
{
    XDR x;
    size_t n = strlen(s);
    if (enc_begin(out, 4 + ((n + 3) & ~(size_t)3), &x) != DW_OK)
        return DW_ENOMEM;
    char *str = (char *)(uintptr_t)s;
    return enc_end(out, &x, xdr_string(&x, &str, (u_int)n));
}

int dw_sim_rpc_reply_begin(dw_buf *out, uint32_t xid, uint32_t accept_stat)
{
    dw_buf_clear(out);
    /* the record mark, then REPLY, MSG_ACCEPTED, a null verifier (AUTH_NONE, no body) */
    const uint32_t head[] = {0, xid, 1, 0};
    struct opaque_auth null_verf = {0, NULL, 0};
    XDR x;
    if (dw_sim_rpc_put_u32(out, head, 4) != DW_OK || enc_begin(out, 8, &x) != DW_OK ||
        enc_end(out, &x, xdr_opaque_auth(&x, &null_verf)) != DW_OK)
        return DW_ENOMEM;
    return dw_sim_rpc_put_u32(out, &accept_stat, 1);
}

int dw_sim_rpc_call_begin(dw_buf *out, uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc)
{
    dw_buf_clear(out);
    /* the record mark, then CALL, RPC version 2, the procedure */
    const uint32_t head[] = {0, xid, 0, 2, prog, vers, proc};
    struct opaque_auth none = {0, NULL, 0};
    XDR x;
    if (dw_sim_rpc_put_u32(out, head, 7) != DW_OK || enc_begin(out, 16, &x) != DW_OK)
        return DW_ENOMEM;
    return enc_end(out, &x, xdr_opaque_auth(&x, &none) && xdr_opaque_auth(&x, &none));
}

int dw_sim_rpc_reply_rpc_mismatch(dw_buf *out, uint32_t xid)
{
    dw_buf_clear(out);
    /* mark, xid, REPLY, MSG_DENIED, RPC_MISMATCH, versions 2 to 2 */
    const uint32_t words[] = {0, xid, 1, 1, 0, 2, 2};
    if (dw_sim_rpc_put_u32(out, words, 7) != DW_OK)
        return DW_ENOMEM;
    dw_sim_rpc_reply_end(out);
    return DW_OK;
}

void dw_sim_rpc_reply_end(dw_buf *out)
{
    uint32_t mark = 0x80000000u | (uint32_t)(out->len - DW_SIM_RPC_MARK);
    XDR x;
    xdrmem_create(&x, (char *)out->data, DW_SIM_RPC_MARK, XDR_ENCODE);
    (void)xdr_u_int(&x, &mark);
    xdr_destroy(&x);
}
