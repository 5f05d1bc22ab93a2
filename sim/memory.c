/* devwire-sim's allocator policy: see memory.h. */
#include "memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* glibc's default threshold; setting it (to any value) stops its dynamic
 * adjustment. */
#define MMAP_THRESHOLD (128 * 1024)

void dw_sim_memory_init(void)
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
#endif
}

void dw_sim_memory_release(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
