/* devwire-sim's set of names: is this name taken already? In constant time
 * per name, so checking that the devices of a bench of thousands have
 * different names costs no more than reading them. */
#ifndef DW_SIM_NAMES_H
#define DW_SIM_NAMES_H

#include <stddef.h>

typedef struct dw_sim_names dw_sim_names;

/* A set for up to `capacity` names. NULL when out of memory. */
dw_sim_names *dw_sim_names_new(size_t capacity);
/* Add `name` (borrowed: it must outlive the set): 1 when it was new, 0
 * when the set held it already, -1 when the set is full. */
int dw_sim_names_add(dw_sim_names *s, const char *name);
/* Accepts NULL. */
void dw_sim_names_free(dw_sim_names *s);

#endif
