/* The application layer (the original's ApplicationClient,
 * ApplicationClientSession and ApplicationServer): the caller deals only in
 * payloads; marshallers turn them into bytes and back. Payloads are opaque
 * here: a dw_buf for the byte framings, a cJSON value for JSON lines (see
 * dw_marshall_payload). */
#ifndef DEVWIRE_APP_H
#define DEVWIRE_APP_H

#include "devwire/marshaller.h"
#include "devwire/tcp.h"
#include "devwire/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dw_app_client dw_app_client;
typedef struct dw_app_session dw_app_session;

/* An application client over `transport`, marshalling requests with
 * `request` and unmarshalling responses with `response` (they may differ).
 * All three are borrowed and must outlive the client. NULL when out of
 * memory. Free with dw_app_client_free. */
dw_app_client *dw_app_client_new(dw_client *transport, const dw_marshaller *request,
                                 const dw_marshaller *response);
void dw_app_client_free(dw_app_client *c);

/* Open a new session (a new connection). End it with dw_app_session_close. */
int dw_app_client_connect(dw_app_client *c, dw_app_session **out, dw_error *err);

/* Send a request payload for which no response is expected. */
int dw_app_session_send(dw_app_session *s, const void *request, dw_error *err);
/* Send a request payload and wait for the response payload; on DW_OK
 * *response is new and the caller frees it with
 * dw_payload_free(response_marshaller, *response). */
int dw_app_session_send_receive(dw_app_session *s, const void *request, void **response,
                                dw_error *err);
/* Byte-payload shorthands: request p[0..n), response into `response`. */
int dw_app_session_send_bytes(dw_app_session *s, const void *p, size_t n, dw_error *err);
int dw_app_session_send_receive_bytes(dw_app_session *s, const void *p, size_t n, dw_buf *response,
                                      dw_error *err);
/* The transport session underneath (borrowed). */
dw_session *dw_app_session_transport(dw_app_session *s);
/* Close the connection and free the session. Accepts NULL. */
void dw_app_session_close(dw_app_session *s);

/* Called with each request payload (borrowed). Set *response to a new
 * payload of the response marshaller's type (freed by the server), or leave
 * it NULL for no response. Return DW_OK, or a negative code to close the
 * connection. Called concurrently for different connections. */
typedef int (*dw_app_callback)(void *user, dw_conn *c, const void *request, void **response);

typedef struct dw_app_server dw_app_server;

/* An application server: request unmarshaller + response marshaller +
 * callback. Borrowed; must outlive it. NULL when out of memory. */
dw_app_server *dw_app_server_new(const dw_marshaller *request, const dw_marshaller *response,
                                 dw_app_callback callback, void *user);
void dw_app_server_free(dw_app_server *a);
/* The bytes handler to give dw_tcp_server_new. A malformed or oversized
 * frame closes that connection only (logged). */
dw_server_handler dw_app_server_handler(dw_app_server *a);

#ifdef __cplusplus
}
#endif
#endif
