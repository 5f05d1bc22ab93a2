/* devwire-sim's allocator policy: see memory.h. */
#include "common/memory.h"

#include <stdlib.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* glibc's default threshold; setting it (to any value) stops its dynamic
 * adjustment. */
#define MMAP_THRESHOLD (128 * 1024)
/* Arenas at most: one per processor, up to this many. */
#define MAX_ARENAS 8

void dw_sim_memory_init(void)
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, cpus < 1 ? 1 : cpus > MAX_ARENAS ? MAX_ARENAS : (int)cpus);
#endif
}

void dw_sim_memory_release(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void *dw_sim_grow(void *arr, size_t n, size_t *cap, size_t elem, size_t first)
{
    if (n < *cap)
        return arr;
    size_t grown = *cap ? 2 * *cap : first;
    void *p = realloc(arr, grown * elem);
    if (p)
        *cap = grown;
    return p;
}
