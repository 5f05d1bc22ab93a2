/* devwire-sim over UDP (server_udp.c): the transport table of a device
 * whose script's transport is "udp". */
#ifndef DW_SIM_SERVER_UDP_H
#define DW_SIM_SERVER_UDP_H

#include "device/server_int.h"

extern const dw_sim_transport_ops dw__sim_udp_transport;

#endif
