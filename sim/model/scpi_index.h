/* An index of SCPI header patterns by the word a header they fit can end
 * with, so that a unit is tried against a few candidates, not against
 * every pattern: the properties' headers (props.c) and the built-in
 * commands (scpi_status.c) find theirs through one.
 *
 *     dw_scpi_index *x = dw_scpi_index_new();
 *     dw_scpi_index_add(x, pattern, id);              // ids ascending
 *     const size_t *ids = dw_scpi_index_find(x, unit, &n);
 *     for (k = 0; k < n; k++) ... dw_scpi_pattern_match(pattern[ids[k]], unit)
 *     dw_scpi_index_free(x);
 *
 * A pattern is filed under each word its last node can be named by, and
 * under those of the optional nodes after it ("SYSTem:ERRor[:NEXT]?": ERR,
 * ERROR, NEXT), upper-cased, without a numeric suffix; a unit is looked up
 * by its last node the same way (OUTP2 -> OUTP). Every pattern that fits a
 * unit, or refuses it only for a numeric suffix (-114), is among its
 * candidates, so trying the candidates in order gives what trying every
 * pattern in order gives. Pure; immutable once built (share it freely
 * between threads). */
#ifndef DW_SCPI_INDEX_H
#define DW_SCPI_INDEX_H

#include <stddef.h>

#include "model/scpi_parse.h"

typedef struct dw_scpi_index dw_scpi_index;

/* An empty index; NULL when out of memory. Free with dw_scpi_index_free
 * (accepts NULL). */
dw_scpi_index *dw_scpi_index_new(void);
void dw_scpi_index_free(dw_scpi_index *x);

/* File pattern p (borrowed, not kept) under `id`. Ids come in ascending
 * order; one id may be added with several patterns (a property and its
 * aliases) and is then listed once. DW_OK or DW_ENOMEM (the index is then
 * still usable, but may miss p). */
int dw_scpi_index_add(dw_scpi_index *x, const dw_scpi_pattern *p, size_t id);

/* The ids of the patterns that may fit unit u, ascending, each once: *n of
 * them (0 and NULL when none), borrowed until the next add or the free. */
const size_t *dw_scpi_index_find(const dw_scpi_index *x, const dw_scpi_unit *u, size_t *n);

#endif
