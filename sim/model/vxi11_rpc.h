/* ONC RPC (RFC 5531) for VXI-11: record marking over TCP, the call header,
 * the arguments of the VXI-11 core and abort channels and of the portmapper
 * (RFC 1833, versions 2 to 4), and the replies. Pure: no I/O, no clock, no
 * global state. XDR is libtirpc's (xdrmem streams and xdr_* primitives);
 * opaque data is not copied: a decoded call points into its record.
 *
 * Record marking: a record is one or more fragments, each after a 4-byte
 * big-endian header whose top bit says "last fragment" and whose other 31
 * bits are its length. The decoder is a push decoder (like dw_decoder):
 * it takes whatever bytes arrived and says when a record is whole, however
 * the stream was cut. */
#ifndef DW_SIM_VXI11_RPC_H
#define DW_SIM_VXI11_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

/* Programs and versions. */
#define DW_VXI11_CORE_PROG  0x0607AFu
#define DW_VXI11_ABORT_PROG 0x0607B0u
#define DW_VXI11_INTR_PROG  0x0607B1u
#define DW_VXI11_VERS       1u
#define DW_PMAP_PROG        100000u

/* VXI-11 procedures (VXI-11 rev 1.0, B.6). */
enum {
    DW_VXI11_DEVICE_ABORT = 1, /* abort channel */
    DW_VXI11_CREATE_LINK = 10,
    DW_VXI11_DEVICE_WRITE = 11,
    DW_VXI11_DEVICE_READ = 12,
    DW_VXI11_DEVICE_READSTB = 13,
    DW_VXI11_DEVICE_TRIGGER = 14,
    DW_VXI11_DEVICE_CLEAR = 15,
    DW_VXI11_DEVICE_REMOTE = 16,
    DW_VXI11_DEVICE_LOCAL = 17,
    DW_VXI11_DEVICE_LOCK = 18,
    DW_VXI11_DEVICE_UNLOCK = 19,
    DW_VXI11_DEVICE_ENABLE_SRQ = 20,
    DW_VXI11_DEVICE_DOCMD = 22,
    DW_VXI11_DESTROY_LINK = 23,
    DW_VXI11_CREATE_INTR_CHAN = 25,
    DW_VXI11_DESTROY_INTR_CHAN = 26,
    DW_VXI11_DEVICE_INTR_SRQ = 30, /* interrupt channel (the client serves it) */
};

/* Device_Flags and the reasons a read ends. */
enum {
    DW_VXI11_WAITLOCK = 1,
    DW_VXI11_END = 8,
    DW_VXI11_TERMCHRSET = 128,
    DW_VXI11_REQCNT = 1,
    DW_VXI11_CHR = 2,
    DW_VXI11_REASON_END = 4,
};

/* Device_ErrorCode. */
enum {
    DW_VXI11_OK = 0,
    DW_VXI11_E_SYNTAX = 1,
    DW_VXI11_E_NOT_ACCESSIBLE = 3,
    DW_VXI11_E_INVALID_LINK = 4,
    DW_VXI11_E_PARAMETER = 5,
    DW_VXI11_E_NO_CHANNEL = 6,
    DW_VXI11_E_NOT_SUPPORTED = 8,
    DW_VXI11_E_RESOURCES = 9,
    DW_VXI11_E_LOCKED = 11,
    DW_VXI11_E_NO_LOCK = 12,
    DW_VXI11_E_IO_TIMEOUT = 15,
    DW_VXI11_E_IO = 17,
    DW_VXI11_E_ABORT = 23,
    DW_VXI11_E_CHANNEL_EXISTS = 29,
};

/* Portmapper procedures: version 2 (PMAPPROC_*) and 3/4 (RPCBPROC_*). */
enum { DW_PMAP_NULL = 0, DW_PMAP_GETPORT = 3, DW_RPCB_GETADDR = 3 };

/* accept_stat of an accepted reply. */
enum {
    DW_RPC_SUCCESS = 0,
    DW_RPC_PROG_UNAVAIL = 1,
    DW_RPC_PROG_MISMATCH = 2,
    DW_RPC_PROC_UNAVAIL = 3,
    DW_RPC_GARBAGE_ARGS = 4,
};

/* ---- record marking ------------------------------------------------------ */

typedef struct dw_sim_rpc_rm {
    uint8_t hdr[4];
    unsigned nhdr;     /* header bytes of the current fragment seen */
    uint32_t left;     /* bytes of the current fragment still to come */
    int last;          /* the current fragment ends the record */
    size_t max_record; /* the most bytes a record may hold */
} dw_sim_rpc_rm;

void dw_sim_rpc_rm_init(dw_sim_rpc_rm *rm, size_t max_record);
/* Take bytes p[0..n): DW_OK (a whole record appended to `record`, which the
 * caller clears between records; *used bytes consumed: call again with the
 * rest), DW_MORE (all taken, the record goes on), DW_ETOOBIG (the record
 * would pass max_record; `err` says by how much). *used is set in every
 * case. */
int dw_sim_rpc_rm_feed(dw_sim_rpc_rm *rm, const uint8_t *p, size_t n, size_t *used, dw_buf *record,
                       dw_error *err);
/* 1 when a record is under way (a header byte or fragment bytes taken). */
int dw_sim_rpc_rm_partial(const dw_sim_rpc_rm *rm);

/* ---- calls ----------------------------------------------------------------- */

typedef struct dw_sim_rpc_call {
    uint32_t xid, rpcvers, prog, vers, proc;
    const uint8_t *args; /* into the record */
    size_t nargs;
} dw_sim_rpc_call;

/* Decode a call's header from record rec[0..n): DW_OK, or DW_EPROTO with
 * `err` (not a call, cut short, credentials too long). A call whose
 * rpcvers is not 2 decodes (answer it with dw_sim_rpc_reply_rpc_mismatch). */
int dw_sim_rpc_call_decode(const uint8_t *rec, size_t n, dw_sim_rpc_call *c, dw_error *err);

/* The arguments of every VXI-11 procedure, in one struct (each uses a few
 * fields; the others stay 0). Opaque data and strings point into the
 * record and are not NUL-terminated. */
typedef struct dw_sim_vxi11_args {
    int32_t lid;
    uint32_t flags, lock_timeout, io_timeout;
    int32_t client_id;     /* create_link */
    uint32_t lock_device;  /* create_link */
    const char *device;    /* create_link */
    size_t device_len;     /* create_link */
    const uint8_t *data;   /* device_write, docmd's data_in, enable_srq's handle */
    size_t data_len;       /* idem */
    uint32_t request_size; /* device_read */
    uint32_t term_char;    /* device_read */
    uint32_t enable;       /* enable_srq */
    int32_t cmd;           /* docmd */
    uint32_t host_addr, host_port, prog_num, prog_vers, prog_family; /* create_intr_chan */
} dw_sim_vxi11_args;

/* Decode the arguments of core (or abort) procedure `proc`: DW_OK,
 * DW_ENOENT (no such procedure), or DW_EPROTO (garbage arguments). */
int dw_sim_vxi11_args_decode(uint32_t prog, uint32_t proc, const uint8_t *p, size_t n,
                             dw_sim_vxi11_args *a, dw_error *err);

/* A portmapper question: which port serves (prog, vers) over `prot`
 * (IPPROTO_TCP, IPPROTO_UDP; version 2), or over netid "tcp" / "udp"
 * (versions 3 and 4, *prot set from it, 0 for another netid). */
typedef struct dw_sim_pmap_query {
    uint32_t prog, vers, prot;
} dw_sim_pmap_query;
int dw_sim_pmap_query_decode(uint32_t vers, const uint8_t *p, size_t n, dw_sim_pmap_query *q,
                             dw_error *err);

/* ---- replies ---------------------------------------------------------------- */

/* Start a reply in `out` (cleared first): the record mark's room, xid,
 * REPLY, MSG_ACCEPTED, a null verifier and accept_stat. DW_OK or
 * DW_ENOMEM. */
int dw_sim_rpc_reply_begin(dw_buf *out, uint32_t xid, uint32_t accept_stat);
/* A denied reply (RPC_MISMATCH, versions 2 to 2), whole (marked). */
int dw_sim_rpc_reply_rpc_mismatch(dw_buf *out, uint32_t xid);
/* Results: unsigned 32-bit words, then variable-length opaque data (its
 * length, the bytes, the padding), then an XDR string. */
int dw_sim_rpc_put_u32(dw_buf *out, const uint32_t *v, size_t n);
int dw_sim_rpc_put_opaque(dw_buf *out, const uint8_t *p, size_t n);
int dw_sim_rpc_put_string(dw_buf *out, const char *s);
/* Start a call in `out` (cleared first), as the device makes one on the
 * interrupt channel: the record mark's room, xid, CALL, RPC version 2,
 * prog, vers, proc, and null credentials and verifier (AUTH_NONE). Put
 * the arguments after it, then end it with dw_sim_rpc_reply_end. DW_OK or
 * DW_ENOMEM. */
int dw_sim_rpc_call_begin(dw_buf *out, uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc);
/* Write the record mark (one last fragment) over the room left at the
 * start (of a reply or of a call). For a datagram, send out->data +
 * DW_SIM_RPC_MARK instead. */
#define DW_SIM_RPC_MARK 4
void dw_sim_rpc_reply_end(dw_buf *out);

#endif
