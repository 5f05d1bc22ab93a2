/* Transport protocols as small vtables (the Python original's
 * TransportClientProtocol and TransportClientSessionProtocol).
 *
 * A transport client (TCP, Telnet, a test's in-memory fake) can `connect` to
 * give a session: one session per connection. A session can `request` (send
 * bytes, then hand back the iterator over the response stream), `send` (no
 * response expected) and `close`. A client may open a new session after
 * closing one, like the original's `with client as session:` used twice.
 *
 * The session's iterator keeps leftover bytes between requests, so pipelined
 * or early bytes are never lost. A session is used by one thread at a time;
 * a client may open sessions from several threads at once. */
#ifndef DEVWIRE_TRANSPORT_H
#define DEVWIRE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "devwire/error.h"
#include "devwire/iter.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dw_client dw_client;
typedef struct dw_session dw_session;

/* What an implementation provides. Every function returns DW_OK or a
 * negative code and describes failures in `err` (which may be NULL). */
typedef struct dw_session_ops {
    /* Write all n bytes (n may be 0). */
    int (*send)(dw_session *s, const uint8_t *p, size_t n, dw_error *err);
    /* The iterator over received bytes; lives as long as the session. */
    dw_iter *(*iter)(dw_session *s);
    /* Close the connection and free the session. */
    void (*close)(dw_session *s);
    /* The peer's "HOST:PORT", for messages. May be NULL (then "?"). */
    const char *(*peer)(dw_session *s);
} dw_session_ops;

typedef struct dw_client_ops {
    int (*connect)(dw_client *c, dw_session **out, dw_error *err);
    void (*free)(dw_client *c);
} dw_client_ops;

/* Implementations embed these as their first member. */
struct dw_session {
    const dw_session_ops *ops;
};
struct dw_client {
    const dw_client_ops *ops;
};

/* Open a new connection. On DW_OK *out is a new session that the caller
 * ends with dw_session_close. Errors name the address ("connect
 * 127.0.0.1:5025: Connection refused"). */
int dw_client_connect(dw_client *c, dw_session **out, dw_error *err);
/* Free a client (its sessions must be closed first). Accepts NULL. */
void dw_client_free(dw_client *c);

/* Send a request and return the iterator over the response stream in *it
 * (borrowed from the session). Pull from it until the response is whole;
 * unread what belongs to the next one. */
int dw_session_request(dw_session *s, const void *p, size_t n, dw_iter **it, dw_error *err);
/* Send bytes for which no response is expected. */
int dw_session_send(dw_session *s, const void *p, size_t n, dw_error *err);
/* The session's receive iterator (borrowed), for reading without sending. */
dw_iter *dw_session_iter(dw_session *s);
/* Close the connection and free the session. Accepts NULL. */
void dw_session_close(dw_session *s);
/* The peer's "HOST:PORT" ("[::1]:5025"), borrowed for the session's
 * lifetime; "?" when the transport does not say. */
const char *dw_session_peer(dw_session *s);

#ifdef __cplusplus
}
#endif
#endif
