/* devwire-sim's recording and fault-injecting proxy, a connection's state:
 * what proxy_conn.c (its bytes) and proxy_open.c (its opening and the
 * faults it draws) share. See proxy.h and proxy_int.h.
 *
 * Everything runs on the loop thread. A connection is two legs, one per
 * direction, each reading one socket and writing the other (through the
 * device's connection core, device/conn.h). A leg writes at once when
 * nothing is scheduled before it; otherwise its output waits in a queue of
 * timed items (data, a close, a reset, the end of the direction) that the
 * leg's timer releases in order. Past a bound of bytes waiting for a
 * socket, the leg stops reading its source until they have gone out.
 *
 * A rule's outcome (the engine's dw_sim_outcome) is carried out here, in
 * apply_rule, not by the device's outcome player (device/outcome.h). Both
 * read the same decision and share the piece sizes (dw__sim_piece), the
 * fault names and the connection core, but they act in two ways: the
 * player serves one request at a time from its timer (after the delay it
 * charges --max-buffered, then acts on the fault, then writes piece after
 * piece while the connection is open), while the proxy schedules it all
 * when the frame is decided, as items due at delay + pauses in the leg's
 * queue, because each piece must pass the network faults and keep its
 * order with the bytes forwarded behind it. And what each fault does
 * differs on every point, so one plan for both would be two plans behind
 * flags:
 *   - the bytes: the frame as read; the rule's reply only when the rule
 *     has replies and no fault (or a duplicate), and a request rule's
 *     reply goes back to the client (the device never sees the request);
 *     the device always writes its reply;
 *   - a rule's "probability" and "delay" are drawn here, per connection
 *     (the proxy's engines have no generator); a spared frame passes as it
 *     came, not as the rule's reply;
 *   - "close" and "reset" end both sides after what is queued (reset: RST
 *     to the client); "hang" stops both directions; the device ends its
 *     one connection (a line or datagrams: nothing), and its hang leaves
 *     the connection reading;
 *   - "garbage" goes whole, never split;
 *   - "duplicate": both copies in pieces, each timed from the delay, so the
 *     queue sends the second right behind the first; the device writes the
 *     copy whole, then the reply in its pieces (datagrams: one more
 *     datagram, only when the reply is not split);
 *   - the transcript gets the "fault" when the frame is decided; its "in"
 *     and "out" are the frames as each side sent them, before any fault
 *     (proxy_tap.h); the device's "fault" comes after the delay (on
 *     datagrams, when decided) and its garbage is an event with the bytes. */
#ifndef DW_SIM_PROXY_CONN_H
#define DW_SIM_PROXY_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "device/conn.h"
#include "engine/engine.h"
#include "model/netfault.h"
#include "record/proxy_fuzz.h"
#include "record/proxy_int.h"
#include "record/proxy_tap.h"

typedef enum { ITEM_DATA, ITEM_CLOSE, ITEM_RESET, ITEM_END, ITEM_HANG } item_kind;

typedef struct item {
    struct item *next;
    uint64_t due_us;
    item_kind kind;
    size_t len;
    uint8_t data[];
} item;

typedef struct leg {
    pconn *c;
    int dir; /* DW_SIM_DIR_REQUEST: client to device */
    uv_tcp_t *src, *dst;
    dw_sim_wire wire;  /* writes to dst; stalled: dst does not take what comes */
    uv_timer_t timer;  /* releases the queue */
    dw_telnet *telnet; /* fault proxy over Telnet: terminates Telnet on src */
    dw_decoder *dec;   /* frames, when this direction has rules */
    dw_sim_session *sess;
    dw_buf data, payload, raw; /* data bytes read; the frame; its bytes as read */
    dw_sim_outcome out;
    dw_sim_shaper sh;
    dw__sim_fuzz_leg fz;
    dw__sim_tap tap; /* the transcript's frames */
    item *head, *tail;
    size_t queued;                 /* bytes in the queue */
    int reading, eof, ended, held; /* held: the queue is full */
} leg;

struct pconn {
    uv_tcp_t down, up; /* the client, the device */
    uv_connect_t creq;
    uv_timer_t guard; /* a timeout fault's deadline */
    uv_timer_t ack;   /* the client's quick ACK when the device has not answered soon */
    int handles;
    dw_sim_proxy *px;
    pconn *prev, *next;
    uint64_t id;
    char peer[DW_SIM_ADDR_MAX];
    leg legs[2];
    int connected, closing, hung, guard_reset;
    dw_sim_rng rng;
};

static inline uint64_t dw__sim_pconn_now_us(void)
{
    return uv_hrtime() / 1000;
}

/* The fault proxy over Telnet: each side negotiates with the proxy. */
static inline int dw__sim_proxy_telnet(const dw_sim_proxy *p)
{
    return !p->rec && !p->raw && p->script->transport == DW_SIM_TELNET;
}

/* proxy_conn.c: a leg's handles and wire, as the connection c starts. */
void dw__sim_pleg_init(leg *l, pconn *c, int dir);
/* Read the leg's source while connected, not ended, and the destination
 * takes what comes. */
void dw__sim_pleg_reading(leg *l);
/* Raw bytes to the leg's destination (negotiation answers). */
void dw__sim_pleg_raw_write(leg *l, const uint8_t *p, size_t n);
/* Data out through the network faults, `delay_ms` later. */
void dw__sim_pleg_emit(leg *l, const uint8_t *p, size_t n, unsigned delay_ms);
/* Close both sides now: the client's with RST when reset_down, the
 * device's with RST when reset_up; what waits is dropped. */
void dw__sim_pconn_teardown(pconn *c, int reset_down, int reset_up);
/* A "fault" event in the transcript. */
void dw__sim_pconn_fault(pconn *c, const char *what);

#endif
