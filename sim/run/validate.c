/* devwire-sim --validate: see validate.h. */
#include "run/validate.h"

#include <stdio.h>

#include "script/script.h"

static const char *prog = DW_SIM_PROG;

/* Whether the file holds a JSON list (a bench file) rather than an object. */
static int is_bench_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    int ch = EOF;
    while (f && (ch = getc(f)) != EOF && (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')) {
    }
    if (f)
        fclose(f);
    return ch == '[';
}

/* A bench file and every script it names. */
static int validate_bench(const char *path)
{
    dw_sim_bench *b = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_bench_load_file(path, &b, &err) != DW_OK) {
        fprintf(stderr, "%s: %s\n", prog, dw_error_message(&err));
        return DW_SIM_EXIT_USAGE;
    }
    int status = DW_SIM_EXIT_OK;
    for (size_t i = 0; i < b->ndevices; i++) {
        dw_sim_script *s = NULL;
        if (dw_sim_script_load_file(b->devices[i].script, &s, &err) != DW_OK) {
            fprintf(stderr, "%s: %s: %s\n", prog, b->devices[i].name, dw_error_message(&err));
            status = DW_SIM_EXIT_USAGE;
        }
        dw_sim_script_free(s);
    }
    if (status == DW_SIM_EXIT_OK)
        printf("%s: valid bench (%zu devices)\n", path, b->ndevices);
    dw_sim_bench_free(b);
    return status;
}

int dw_sim_run_validate(const dw_sim_cli *c)
{
    const char *path = c->validate;
    if (is_bench_file(path))
        return validate_bench(path);
    dw_sim_script *s = dw_sim_cli_load(path);
    if (!s)
        return DW_SIM_EXIT_USAGE;
    size_t np = dw_sim_props_count(s->props);
    printf("%s: valid (%zu steps, %zu rules", path, s->nsteps, s->nrules);
    printf(np ? ", %zu properties)\n" : ")\n", np);
    dw_sim_script_free(s);
    return DW_SIM_EXIT_OK;
}
