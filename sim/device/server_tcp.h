/* devwire-sim over TCP and Telnet (server_tcp.c): the transport table of a
 * device whose script's transport is "tcp" or "telnet". */
#ifndef DW_SIM_SERVER_TCP_H
#define DW_SIM_SERVER_TCP_H

#include "device/server_int.h"

extern const dw_sim_transport_ops dw__sim_tcp_transport;

#endif
