/* devwire-sim: the listener of a device served over TCP or Telnet. Paused
 * by the control API's refuse_connections and resumed on the same address,
 * also within one loop turn (a resume waits for the pending close). Loop
 * thread only. */
#ifndef DW_SIM_SERVER_LISTEN_H
#define DW_SIM_SERVER_LISTEN_H

#include <uv.h>

#include "device/server_int.h"

/* Adopt the bound socket fd as s's listener and listen, accepting with
 * on_connection (kept for a resume): DW_OK, or `err` says why not. */
int dw__sim_listen_on(dw_sim_server *s, int fd, uv_connection_cb on_connection, dw_error *err);
/* Stop listening: connections are refused until a resume. */
void dw__sim_listen_pause(dw_sim_server *s);
/* Listen again on the same address (DW_OK when listening already, or when
 * the device has stopped or is no TCP device). */
int dw__sim_listen_resume(dw_sim_server *s, dw_error *err);

#endif
