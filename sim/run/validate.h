/* devwire-sim --validate: load a script, or a bench file and every script
 * it names, and say whether it is valid. */
#ifndef DW_SIM_VALIDATE_H
#define DW_SIM_VALIDATE_H

#include "run/cli.h"

/* Check c->validate: prints "FILE: valid (...)" or "FILE: valid bench (N
 * devices)" and returns 0, or prints what is wrong and returns 2. */
int dw_sim_run_validate(const dw_sim_cli *c);

#endif
