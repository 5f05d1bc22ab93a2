/* devwire-sim over a serial line (server_serial.c): the transport table of
 * a device whose script's transport is "serial". */
#ifndef DW_SIM_SERVER_SERIAL_H
#define DW_SIM_SERVER_SERIAL_H

#include "device/server_int.h"

extern const dw_sim_transport_ops dw__sim_serial_transport;

/* What a line needs of a terminal, shared with the fault proxy's line
 * (record/proxy_serial.c). Errors name the call and the path. */

/* Put the terminal fd (at path, for messages) in raw mode: no echo, no
 * translation of line endings, bytes as they are. DW_OK or DW_EIO. */
int dw__sim_tty_make_raw(int fd, const char *path, dw_error *err);
/* A pseudo-terminal: *master non-blocking, *slave (its path in
 * path[0..cap)) opened raw, for the caller to keep open so that a driver's
 * last close gives the master no hangup. DW_OK or DW_EIO; either way the
 * caller closes what is not -1. */
int dw__sim_pty_open(int *master, int *slave, char *path, size_t cap, dw_error *err);
/* `link` -> `target`: a symbolic link put in place atomically (rename),
 * over a symbolic link already there, never over anything else. DW_OK,
 * DW_EINVAL (path too long) or DW_EIO. */
int dw__sim_link_make(const char *link, const char *target, dw_error *err);
/* Remove `link` if it still points at `target`. */
void dw__sim_link_remove(const char *link, const char *target);

#endif
