/* devwire-sim's use of memory: what a connection keeps from one request to
 * the next, and how memory it no longer needs goes back to the system.
 *
 * A connection's buffers (the request being read, the reply being written,
 * their Telnet and rendering copies) grow to the largest frame it handled.
 * After a frame larger than DW_SIM_KEEP_BYTES they shrink back to that, so a
 * device that once got a large request returns to its baseline.
 *
 * glibc's malloc adapts its mmap threshold: each time a block that was
 * mmap'd is freed, the threshold rises to that block's size (up to 32 MiB on
 * 64-bit), so the next large buffers come from the heap arenas instead, and
 * freed arena memory mostly stays with the process. A simulator that met a
 * few oversized frames would then keep about max_frame bytes per concurrent
 * sender for the rest of its life. Fixing the threshold (at glibc's own
 * default, 128 KiB) keeps every large buffer mmap'd: freeing or shrinking it
 * unmaps the pages at once. What is left in the arenas (many small blocks)
 * is handed back with malloc_trim when a connection that held large buffers
 * closes. The cost: a large frame costs an mmap and a munmap, small next to
 * touching its pages.
 *
 * Each connection thread would otherwise get an arena of its own, up to 8
 * per processor, and an arena keeps about 132 KiB resident for good once it
 * exists: a burst of clients would leave megabytes behind (hundreds on a
 * large machine). So the arenas are limited to one per processor (at most
 * 8); a connection's requests allocate little (its buffers are reused), so
 * threads rarely wait for an arena. */
#ifndef DW_SIM_MEMORY_H
#define DW_SIM_MEMORY_H

#include <stddef.h>

/* The capacity a connection's buffers keep after a larger frame. */
#define DW_SIM_KEEP_BYTES ((size_t)64 * 1024)

/* Set the process's allocator policy (see above). Call once at the start of
 * the program, before any thread starts. Does nothing without glibc. */
void dw_sim_memory_init(void);

/* Give memory that the process freed back to the system (malloc_trim).
 * Thread-safe; it walks every arena, so call it after something large was
 * freed, not after every request. Does nothing without glibc. */
void dw_sim_memory_release(void);

/* Room for one more element in a growing array arr[0..n) that holds *cap
 * elements of `elem` bytes: arr itself while n < *cap, else arr reallocated
 * to twice *cap (`first` when *cap is 0), *cap updated. NULL when out of
 * memory, and then arr and *cap are as they were. */
void *dw_sim_grow(void *arr, size_t n, size_t *cap, size_t elem, size_t first);

#endif
