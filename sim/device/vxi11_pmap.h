/* devwire-sim's portmapper for a VXI-11 device: how clients find the core
 * channel's port from the well-known port 111 (RFC 1833).
 *
 * The device answers on HOST:PORT itself, over TCP and UDP, on its own
 * event loop: PMAPPROC_NULL and PMAPPROC_GETPORT (version 2), and
 * RPCBPROC_NULL and RPCBPROC_GETADDR (versions 3 and 4, which libtirpc's
 * clients ask first), for the VXI-11 core program only: any other program
 * gets port 0 (not registered). When HOST:PORT is taken and a portmapper
 * there answers (rpcbind), the device registers the core channel with it
 * instead (pmap_set) and removes the registration when it stops; when
 * rpcbind already has one (another device's, or a killed simulator's), the
 * error names its port and `rpcinfo -d`. When the port cannot be bound for lack of privilege, the
 * error says so and names
 * --portmapper. Loop thread only. */
#ifndef DW_SIM_VXI11_PMAP_H
#define DW_SIM_VXI11_PMAP_H

#include <stdint.h>

#include <uv.h>

#include <devwire/devwire.h>

typedef struct dw_sim_pmap dw_sim_pmap;

/* Answer (or register) on host:port for the core channel at core_port.
 * DW_OK and *out, or `err` says what failed and where. The logger (may be
 * NULL) must outlive the portmapper. */
int dw__sim_pmap_open(uv_loop_t *loop, const char *host, uint16_t port, uint16_t core_port,
                      const dw_logger *logger, dw_sim_pmap **out, dw_error *err);
/* "HOST:PORT" the portmapper answers on (its own or rpcbind's). */
const char *dw__sim_pmap_address(const dw_sim_pmap *p);
/* 1 when the core channel was registered with a running rpcbind. */
int dw__sim_pmap_registered(const dw_sim_pmap *p);
/* Stop answering (or unregister); freed once its handles are closed.
 * Accepts NULL. */
void dw__sim_pmap_close(dw_sim_pmap *p);

#endif
