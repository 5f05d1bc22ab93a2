/* devwire-sim: the script loader (work in progress). */
#include "script.h"

#include <stdlib.h>

int dw_sim_script_load_buffer(const char *name, const char *text, size_t len,
                              dw_sim_script **out, dw_error *err)
{
    (void)text;
    (void)len;
    *out = NULL;
    return dw_error_set(err, DW_ESCRIPT, "%s: the script loader is not implemented yet", name);
}

int dw_sim_script_load_file(const char *path, dw_sim_script **out, dw_error *err)
{
    return dw_sim_script_load_buffer(path, "", 0, out, err);
}

void dw_sim_script_free(dw_sim_script *s)
{
    free(s);
}

dw_marshaller *dw_sim_framing_marshaller(const dw_sim_framing *f)
{
    (void)f;
    return NULL;
}
