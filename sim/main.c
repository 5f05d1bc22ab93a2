/* devwire-sim: a scriptable simulated device. The options are read into
 * one struct (run/cli.h, where --help's text is too), then each mode runs
 * from its own file under run/. */
#include <stdio.h>

#include "common/memory.h"
#include "run/ask.h"
#include "run/cli.h"
#include "run/proxy_serve.h"
#include "run/serve.h"
#include "run/validate.h"

int main(int argc, char **argv)
{
    dw_sim_memory_init();
    dw_sim_cli cli;
    switch (dw_sim_cli_parse(argc, argv, &cli)) {
    case DW_SIM_MODE_HELP:
        dw_sim_cli_usage(stdout);
        return DW_SIM_EXIT_OK;
    case DW_SIM_MODE_VERSION:
        dw_sim_cli_version(stdout);
        return DW_SIM_EXIT_OK;
    case DW_SIM_MODE_VALIDATE:
        return dw_sim_run_validate(&cli);
    case DW_SIM_MODE_PROBE:
        return dw_sim_run_probe(&cli);
    case DW_SIM_MODE_ASK:
        return dw_sim_run_ask(&cli);
    case DW_SIM_MODE_PROXY:
        return dw_sim_run_proxy(&cli);
    case DW_SIM_MODE_SERVE:
        return dw_sim_run_serve(&cli);
    case DW_SIM_MODE_USAGE_ERROR:
    default:
        return DW_SIM_EXIT_USAGE;
    }
}
