/* devwire-sim's set of names: see names.h. Open addressing, linear probing,
 * a table at most half full. */
#include "common/names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dw_sim_names {
    const char **slot;
    size_t mask, count, capacity;
};

dw_sim_names *dw_sim_names_new(size_t capacity)
{
    dw_sim_names *s = calloc(1, sizeof *s);
    size_t size = 16;
    while (size < 2 * capacity && size < SIZE_MAX / 4)
        size *= 2;
    if (s && !(s->slot = calloc(size, sizeof *s->slot))) {
        free(s);
        return NULL;
    }
    if (s) {
        s->mask = size - 1;
        s->capacity = capacity;
    }
    return s;
}

static uint64_t hash(const char *name) /* FNV-1a */
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

int dw_sim_names_add(dw_sim_names *s, const char *name)
{
    size_t i = (size_t)hash(name) & s->mask;
    for (; s->slot[i]; i = (i + 1) & s->mask)
        if (strcmp(s->slot[i], name) == 0)
            return 0;
    if (s->count >= s->capacity)
        return -1;
    s->slot[i] = name;
    s->count++;
    return 1;
}

void dw_sim_names_free(dw_sim_names *s)
{
    if (!s)
        return;
    free(s->slot);
    free(s);
}
