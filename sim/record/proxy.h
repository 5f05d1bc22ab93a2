/* devwire-sim between a client and a real device: the recording proxy
 * (--record) and the fault-injecting proxy (--proxy).
 *
 * The proxy listens like a simulator and connects each client to the
 * upstream device with its own connection, on the process's one event loop
 * (loop.h; no thread per connection). Each connection has two directions:
 * requests (client to device) and replies (device to client).
 *
 * Recording: every byte is forwarded unchanged and in order, as soon as it
 * arrives, in pieces as they came; a close (FIN), a reset (RST) or a
 * silence of the device reaches the client as such, and the other way
 * round. A copy of each piece goes to the recorder (record.h), which frames
 * it and writes the conversation as a script at the end.
 *
 * Faults: the script's rules match frames (framed with the script's
 * framing) of requests, or of replies with "direction": "reply", and apply
 * their fault, delay, split or rewritten reply to them; frames no rule
 * matches, and every byte of a direction with no rules, are forwarded as
 * they are. The script's "network" faults (netfault.h) act on the bytes of
 * each direction. A Telnet script makes the proxy a Telnet server to the
 * client and a Telnet client to the device (each side negotiates with the
 * proxy), so rules see data bytes; a recording passes Telnet through. A
 * UDP faults script makes it pass datagrams whole, a socket to the device
 * per client address, through the network faults a datagram can take; a
 * serial one makes it a line between the device's terminal and one of its
 * own, through the network faults a line can take. */
#ifndef DW_SIM_PROXY_H
#define DW_SIM_PROXY_H

#include <stdint.h>

#include <devwire/devwire.h>

#include "model/netfault.h"
#include "script/script.h"
#include "observe/journal.h"
#include "observe/transcript.h"

typedef struct dw_sim_proxy dw_sim_proxy;
typedef struct dw_sim_loop dw_sim_loop;
typedef struct dw_sim_recorder dw_sim_recorder;

typedef struct dw_sim_proxy_options {
    const char *host;          /* listen here; default "127.0.0.1"; copied */
    uint16_t port;             /* 0: the kernel chooses */
    const char *upstream_host; /* the device; copied */
    uint16_t upstream_port;
    const dw_logger *logger;       /* NULL: silent; must outlive the proxy */
    dw_sim_transcript *transcript; /* NULL: none; borrowed */
    size_t max_connections;        /* default 1024 */
    dw_sim_loop *loop;             /* required; borrowed, must outlive the proxy */
    dw_sim_recorder *recorder;     /* record (faults are then ignored); NULL: fault proxy */
    uint64_t seed;                 /* every random draw: faults, Lua's math.random (--seed) */
    int raw; /* bytes only: the script's network faults, no rules, Telnet passed
              * through (a simulator's own "network", in front of it) */
    /* The client's side, as a device's (dw_sim_server_options): 0 ACKs
     * what each read got at once unless the script's "tcp" says
     * "quickack": false; 1 leaves ACKs to the kernel unless it says true. */
    int delayed_ack;
    /* The script whose framing a "fuzz" fault reads frames with (a raw
     * proxy's device's); NULL: the proxy's own script. Read in
     * dw_sim_proxy_new only. A raw proxy writes only its faults' notes to
     * the transcript (the device writes the rest). */
    const dw_sim_script *framing;
    /* A UDP faults script: a client address sends and gets nothing for
     * this long, and its socket to the device is closed (0: 30000). */
    uint64_t udp_idle_ms;
    /* A serial faults script: the device's terminal (upstream_host and
     * _port are not read), and a symbolic link to make to the proxy's own
     * terminal (NULL: none; removed at the stop). Copied. */
    const char *upstream_path;
    const char *link;
} dw_sim_proxy_options;

void dw_sim_proxy_options_init(dw_sim_proxy_options *o);

/* Resolve the upstream address, bind and listen (accepting starts with the
 * loop); for a serial script, open the device's terminal and one for the
 * client instead. Call it before dw_sim_loop_start. On DW_OK the proxy owns `script` (its
 * transport, framing, rules and network faults); on failure the caller keeps it and `err` names the
 * problem (DW_EINVAL for a script the proxy cannot serve: UDP or serial when recording, or with
 * rules or faults a datagram or a line cannot carry; DW_EIO for a terminal that does not open). */
int dw_sim_proxy_new(const dw_sim_proxy_options *o, dw_sim_script *script, dw_sim_proxy **out,
                     dw_error *err);
/* "HOST:PORT" bound; a serial line's terminal for the client (/dev/pts/N). */
const char *dw_sim_proxy_address(const dw_sim_proxy *p);

/* Faults at run time (thread-safe, through the loop). A network fault
 * added reaches the open connections too (each draws it, t->probability,
 * as when it opens), unless t->new_only; one removed leaves every
 * connection that has it. */
int dw_sim_proxy_add_fault(dw_sim_proxy *p, const dw_sim_toxic *t, dw_error *err);
int dw_sim_proxy_remove_fault(dw_sim_proxy *p, const char *name);
/* Replace every network fault with copies of `net`'s (NULL: none), and the
 * client's side's ACKs with `ack` (a script's "tcp"): what a reloaded
 * script of the device behind a raw proxy says. Connections opened
 * afterwards draw the new faults; open ones keep theirs. The listener's
 * windows count from now: refuse_connections from now + after_ms,
 * disconnect_all after_ms from now (then every every_ms). Thread-safe,
 * through the loop. DW_OK or DW_ENOMEM. */
int dw_sim_proxy_set_network(dw_sim_proxy *p, const dw_sim_netfaults *net, dw_sim_tcp_ack ack,
                             dw_error *err);
/* Refuse new connections for `ms` milliseconds from now (0: stop refusing). */
void dw_sim_proxy_refuse_for(dw_sim_proxy *p, uint64_t ms);
/* Close every open connection now (both sides). */
void dw_sim_proxy_disconnect_all(dw_sim_proxy *p);

/* Where a "fuzz" fault also notes each mutation (the control API's
 * journal; NULL: nowhere but the transcript and the log). The journal must
 * outlive the proxy or be set back to NULL first. Thread-safe. */
void dw_sim_proxy_set_journal(dw_sim_proxy *p, dw_sim_journal *j);

/* Connections accepted (refused ones included) and served. */
void dw_sim_proxy_counts(dw_sim_proxy *p, uint64_t *accepted, uint64_t *served);

/* Stop accepting and close every connection (a piece under way is not
 * finished). Thread-safe; idempotent. */
void dw_sim_proxy_stop(dw_sim_proxy *p);
/* Free, after dw_sim_loop_stop. Accepts NULL. */
void dw_sim_proxy_free(dw_sim_proxy *p);

#endif
