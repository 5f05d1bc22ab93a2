/* devwire-sim over VXI-11 (server_vxi11.c): the transport table of a
 * device whose script's transport is "vxi11". */
#ifndef DW_SIM_SERVER_VXI11_H
#define DW_SIM_SERVER_VXI11_H

#include "device/server_int.h"

extern const dw_sim_transport_ops dw__sim_vxi11_transport;

#endif
