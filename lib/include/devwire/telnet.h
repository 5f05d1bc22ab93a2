/* Telnet transport (RFC 854) through libtelnet.
 *
 * Three parts:
 *  - dw_telnet, a filter used on both sides of a connection. It wraps the
 *    raw iterator of a socket and is itself a dw_iter that yields data bytes
 *    only (or, in push mode, dw_telnet_feed takes the bytes an event loop
 *    read and hands back the data bytes): IAC commands are stripped, IAC IAC becomes one 0xFF byte,
 * option negotiation is answered through a write callback. dw_telnet_send escapes 0xFF on the way
 * out. Unmarshallers read the filter's iterator exactly as they read a TCP session's.
 *  - the Telnet client and session, a dw_client / dw_session over the TCP
 *    client, with banner handling done once per connection.
 *  - dw_telnet_conn_new, the filter over one dw_conn of a dw_tcp_server
 *    (devwire-sim serves Telnet with it).
 *
 * The option table: what the filter agrees to when the peer asks (or what
 * it offers). Everything else (TIMING-MARK, TERMINAL-TYPE, NAWS, LINEMODE,
 * NEW-ENVIRON, COMPRESS2, ...) is refused with DONT / WONT, and their
 * subnegotiations are ignored.
 *
 *   option                 client side            server side
 *   TRANSMIT-BINARY (0)    accepted, both ways    accepted, both ways
 *   ECHO (1), peer echoes  accepted (DO ECHO)     refused (DONT ECHO)
 *   ECHO (1), we echo      refused (WONT ECHO)    offered at start if `echo`
 *   SUPPRESS-GO-AHEAD (3)  accepted, both ways    offered at start (WILL SGA),
 *                                                 accepted both ways
 *
 * Each row can be switched off in dw_telnet_options, or the whole table
 * replaced (`table`: the options agreed to each way, which a server also
 * offers or asks for at start). Nothing is asked for on the client side.
 * The filter never echoes by itself, translates CR or LF only when asked
 * (`cr_nul`: CR NUL is CR outside BINARY) and never sends GA: a server that
 * offers ECHO promises that its application echoes what it reads.
 *
 * Errors: a stream the filter cannot follow fails its iterator with
 * DW_EPROTO and keeps the message (dw_telnet_error_message): a peer that
 * turns on MCCP2 compression (libtelnet would inflate it though it was never
 * agreed), a subnegotiation longer than libtelnet's 16 KiB buffer (libtelnet
 * would hand its rest on as data), any fatal libtelnet error. Malformed
 * commands that libtelnet recovers from (a truncated subnegotiation, a byte
 * other than SE or IAC after IAC inside SB) are logged at DEBUG and skipped.
 * Whatever the bytes, negotiation answers at most a few bytes per byte
 * received: it never loops. */
#ifndef DEVWIRE_TELNET_H
#define DEVWIRE_TELNET_H

#include <stddef.h>
#include <stdint.h>

#include "devwire/buf.h"
#include "devwire/error.h"
#include "devwire/iter.h"
#include "devwire/log.h"
#include "devwire/tcp.h"
#include "devwire/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the filter ------------------------------------------------------- */

typedef struct dw_telnet dw_telnet;

typedef struct dw_telnet_options {
    int server;              /* 0: the client side (default); 1: the server side */
    int echo;                /* client: let the peer echo (accept WILL ECHO), default 1;
                                server: offer WILL ECHO at start, default 0 */
    int sga;                 /* SUPPRESS-GO-AHEAD both ways; a server offers it at start
                                (default 1) */
    int binary;              /* accept TRANSMIT-BINARY both ways when the peer asks
                                (default 1); never asked for */
    const char *name;        /* the peer, for messages ("127.0.0.1:23");
                                copied; NULL = "telnet peer" */
    const dw_logger *logger; /* negotiation at DEBUG; NULL = silent; must
                                outlive the filter */
    int table;               /* 1: `will` and `ask` are the whole option table
                                (echo, sga and binary are ignored); default 0 */
    uint8_t will[32];        /* with table, bit n (will[n / 8] >> n % 8 & 1): agree to
                                DO n; a server offers WILL n at start */
    uint8_t ask[32];         /* with table, bit n: agree to WILL n; a server asks
                                DO n at start */
    int cr_nul;              /* 1: a CR NUL received while the peer does not send in
                                BINARY is a CR (RFC 854): the NUL is dropped;
                                default 0 (every byte is data) */
    int observe;             /* 1: follow one direction of a conversation between
                                others: answer nothing, and let the option bits
                                say what this stream's sender said last (remote:
                                WILL or WONT, local: DO or DONT); default 0 */
} dw_telnet_options;

/* Option n's bit in dw_telnet_options' `will` or `ask`. */
static inline void dw_telnet_option_set(uint8_t bits[32], uint8_t n)
{
    bits[n / 8] = (uint8_t)(bits[n / 8] | 1u << (n % 8));
}
static inline int dw_telnet_option_isset(const uint8_t bits[32], uint8_t n)
{
    return bits[n / 8] >> (n % 8) & 1;
}

/* The lowercase name libtelnet gives option n (TELNET_TELOPT_NEW_ENVIRON:
 * "new_environ"), or NULL when it names none. Thread-safe. */
const char *dw_telnet_option_name(uint8_t n);
/* The option named `name` (dw_telnet_option_name's names), or -1. */
int dw_telnet_option_by_name(const char *name);

/* Defaults: client side, echo 1, sga 1, binary 1. A server wants
 * o.server = 1 and usually o.echo = 0 (or 1 for an echoing console). */
void dw_telnet_options_init(dw_telnet_options *o);

/* Where the filter's bytes go out (negotiation answers and escaped data):
 * write all n bytes, return DW_OK or a negative code. Called with the
 * filter's lock held, from dw_iter_next on the filter's iterator and from
 * dw_telnet_send / dw_telnet_start. */
typedef int (*dw_telnet_write_fn)(void *user, const uint8_t *p, size_t n);

/* A filter reading `inner` (may be NULL, set later with dw_telnet_wrap) and
 * writing through `write(user, ...)`. `o` is copied (NULL = defaults);
 * `inner` and `user` are borrowed. NULL when out of memory or `write` is
 * NULL. Nothing is sent until dw_telnet_start. Free with dw_telnet_free. */
dw_telnet *dw_telnet_new(const dw_telnet_options *o, dw_iter *inner, dw_telnet_write_fn write,
                         void *user);
/* Accepts NULL. The inner iterator is not freed. */
void dw_telnet_free(dw_telnet *t);

/* Send the opening offers: on the server side WILL SGA (if sga) and WILL
 * ECHO (if echo), or with `table` WILL for each option of `will` and DO for
 * each of `ask`, in the order of their numbers; nothing on the client side
 * or when observing. DW_OK or the write's error. */
int dw_telnet_start(dw_telnet *t);

/* The filtered iterator (borrowed, lives as long as the filter). Its chunks
 * hold data bytes only; a chunk of the inner iterator that was all
 * negotiation is never returned empty: the filter pulls again. Returns the
 * inner iterator's DW_EOF and errors as they come, DW_EPROTO (sticky) when
 * the stream is not Telnet it can follow, or the write callback's error
 * when an answer could not be sent (sticky too). The data bytes that came
 * before the failure in the stream (before the command whose answer failed)
 * are returned first, so data, answers and the ending are the same however
 * the inner chunks were cut. Bytes given back with dw_iter_unread stay in
 * the filter. One reader thread at a time. */
dw_iter *dw_telnet_iter(dw_telnet *t);

/* Make `inner` the iterator the filter reads from (a server's handler gets
 * its connection's iterator with each request), and return the filtered
 * iterator. Unread data bytes stay pending across the change. */
dw_iter *dw_telnet_wrap(dw_telnet *t, dw_iter *inner);

/* Push mode, for an event loop that reads the socket itself: run the n
 * bytes received from the peer through the filter. Data bytes are appended
 * to `data`; answers to the peer's negotiation leave through the write
 * callback before this returns. DW_OK, or the sticky failure (DW_EPROTO,
 * the write callback's error, DW_ENOMEM) once the stream failed: the data
 * bytes that came before the failure are appended all the same, so data,
 * answers and the ending do not depend on how the bytes were cut. n may be
 * 0 (then it only reports the state). Do not mix with reading the filter's
 * iterator. */
int dw_telnet_feed(dw_telnet *t, const uint8_t *p, size_t n, dw_buf *data);

/* Send data: 0xFF bytes go out doubled (IAC IAC), in one write. DW_OK, the
 * write's error, or DW_ENOMEM. Thread-safe with the reader and with other
 * senders (a server's periodic messages): writes never interleave. */
int dw_telnet_send(dw_telnet *t, const void *p, size_t n);

/* Append p[0..n) to `out` with every 0xFF doubled (for a server whose reply
 * buffer is written by someone else). DW_OK or DW_ENOMEM. Thread-safe. */
int dw_telnet_escape(const void *p, size_t n, dw_buf *out);

/* Whether an option is in effect now, on our side (`local`, we WILL) or on
 * the peer's (we DO): 1 or 0. Options are the TELNET_TELOPT_* numbers
 * (0 binary, 1 echo, 3 sga). Reflects what the reader has seen so far.
 * Thread-safe. */
int dw_telnet_local_enabled(const dw_telnet *t, uint8_t option);
int dw_telnet_remote_enabled(const dw_telnet *t, uint8_t option);

/* Why the iterator failed with DW_EPROTO or a write error
 * ("telnet 127.0.0.1:23: inflate() failed: data error"), or "" while it has
 * not failed. Borrowed from the filter. */
const char *dw_telnet_error_message(const dw_telnet *t);

/* ---- server side ------------------------------------------------------- */

/* A filter for one connection of a dw_tcp_server: it writes through
 * dw_conn_write (so its writes never interleave with the server's own) and
 * is named after dw_conn_peer; o->logger NULL takes dw_conn_logger. Call it
 * in on_open, then dw_telnet_start and dw_telnet_send for a banner; in
 * on_request read dw_telnet_wrap(t, in) and escape the response into `out`
 * with dw_telnet_escape (or send it with dw_telnet_send and leave `out`
 * empty). `o` may be NULL: the server-side defaults (server 1, echo 0).
 * NULL when out of memory. Free it in on_close with dw_telnet_free. */
dw_telnet *dw_telnet_conn_new(dw_conn *c, const dw_telnet_options *o);

/* ---- client and session ----------------------------------------------- */

/* What the client does with the text a Telnet server sends on connect
 * (a login banner, a prompt), once per connection, before
 * dw_client_connect returns. (The Python original reads and throws away a
 * banner before every request; here it is read once and kept.) */
typedef enum dw_telnet_banner_mode {
    DW_TELNET_BANNER_NONE = 0, /* read nothing: the first request's
                                  response may start with the banner */
    DW_TELNET_BANNER_QUIET,    /* read until nothing arrives for
                                  banner_quiet_ms */
    DW_TELNET_BANNER_PROMPT    /* read until banner_prompt has arrived;
                                  bytes after it stay in the iterator */
} dw_telnet_banner_mode;

typedef struct dw_telnet_client_options {
    dw_tcp_client_options tcp; /* host, port, timeouts, buffer, logger */
    dw_telnet_options telnet;  /* the option table (server is ignored);
                                  name is the connection's "HOST:PORT";
                                  logger NULL = tcp.logger */
    dw_telnet_banner_mode banner;
    int banner_quiet_ms;       /* QUIET: the quiet period (default 200) */
    const void *banner_prompt; /* PROMPT: the bytes that end the banner;
                                  copied */
    size_t banner_prompt_len;
    size_t banner_max; /* a longer banner fails with DW_ETOOBIG (default
                          65536) */
} dw_telnet_client_options;

/* TCP defaults (dw_tcp_client_options_init), dw_telnet_options_init, no
 * banner. */
void dw_telnet_client_options_init(dw_telnet_client_options *o);

/* A Telnet transport client; NULL when out of memory, `o->tcp.host` is NULL,
 * or the banner mode is PROMPT without a prompt. Free with dw_client_free.
 *
 * dw_client_connect connects, then reads the banner. The whole banner must
 * arrive within tcp.timeout_ms (DW_ETIMEDOUT otherwise, "telnet banner from
 * 127.0.0.1:2323: no prompt within 10000 ms"); in QUIET mode a server that
 * never goes quiet for that long fails the same way. Sessions' iterators
 * yield data bytes only; their send escapes 0xFF. Errors as the TCP
 * session's, plus DW_EPROTO (see the filter). */
dw_client *dw_telnet_client_new(const dw_telnet_client_options *o);

/* The banner read at connect (data bytes, including the prompt in PROMPT
 * mode; empty in NONE mode), NUL-terminated for printing. Borrowed until the
 * session closes; NULL when `s` is not a Telnet session. */
const dw_buf *dw_telnet_session_banner(dw_session *s);

/* The session's filter (to query options), or NULL when `s` is not a Telnet
 * session. Borrowed until the session closes. */
dw_telnet *dw_telnet_session_filter(dw_session *s);

#ifdef __cplusplus
}
#endif
#endif
