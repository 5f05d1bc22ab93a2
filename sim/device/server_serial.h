/* devwire-sim over a serial line (server_serial.c): the transport table of
 * a device whose script's transport is "serial". */
#ifndef DW_SIM_SERVER_SERIAL_H
#define DW_SIM_SERVER_SERIAL_H

#include "device/server_int.h"

extern const dw_sim_transport_ops dw__sim_serial_transport;

#endif
