/* devwire: talk to hardware over byte streams, and stand in for it in tests.
 * The umbrella header: includes every public module. */
#ifndef DEVWIRE_H
#define DEVWIRE_H

#include "devwire/app.h"
#include "devwire/buf.h"
#include "devwire/decoder.h"
#include "devwire/error.h"
#include "devwire/iter.h"
#include "devwire/log.h"
#include "devwire/marshaller.h"
#include "devwire/tcp.h"
#include "devwire/telnet.h"
#include "devwire/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *dw_version(void);

#ifdef __cplusplus
}
#endif
#endif
