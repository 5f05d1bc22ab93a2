#include "sim_child.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_child.h"

int bench_sim_child_start(bench_sim_child *p, const char *script)
{
#ifndef DW_SIM_PATH
    (void)p;
    (void)script;
    fprintf(stderr, "bench: devwire-sim was not built\n");
    return -1;
#else
    char *argv[] = {DW_SIM_PATH,   "--script",    (char *)script, "--listen",
                    "127.0.0.1:0", "--log-level", "error",        NULL};
    p->pid = bench_child_exec(argv, &p->port);
    return p->pid > 0 ? 0 : -1;
#endif
}

void bench_sim_child_stop(bench_sim_child *p)
{
    bench_child_stop(p->pid);
}

char *bench_sim_script(const char *tag, size_t n, void (*rule)(FILE *f, size_t i, void *arg),
                       void *arg)
{
    char *path = NULL;
    if (asprintf(&path, "/tmp/dwsim-bench-%s-%ld.json", tag, (long)getpid()) < 0)
        return NULL;
    FILE *f = fopen(path, "w");
    if (!f) {
        free(path);
        return NULL;
    }
    fputs("{\"name\": \"bench\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
          " \"rules\": [\n",
          f);
    for (size_t i = 0; i < n; i++) {
        fputs("  ", f);
        rule(f, i, arg);
        fputs(i + 1 < n ? ",\n" : "\n", f);
    }
    fputs(" ]}\n", f);
    if (fclose(f) != 0) {
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}
