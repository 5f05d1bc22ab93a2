#include "devwire/devwire.h"

const char *dw_version(void)
{
    return DW_VERSION;
}
