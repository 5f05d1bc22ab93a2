/* The IEEE 488.2 / SCPI-99 status model of a simulated instrument: the
 * error queue, the Standard Event Status Register and its enable register,
 * the status byte and the service request enable register, and the
 * built-in commands that read and write them (*IDN?, *ESR?, *ESE, *STB?,
 * *SRE, *CLS, *RST, *OPC, *OPC?, *WAI, *TST?, SYSTem:ERRor[:NEXT]?,
 * SYSTem:ERRor:COUNt?). Pure: no I/O, no clock, no global state. One status
 * is used by one thread at a time (the engine holds its state lock). */
#ifndef DW_SCPI_STATUS_H
#define DW_SCPI_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/buf.h>

#include "model/scpi_parse.h"

/* Standard Event Status Register bits. */
enum {
    DW_SCPI_ESR_OPC = 1 << 0, /* operation complete (*OPC) */
    DW_SCPI_ESR_QYE = 1 << 2, /* query error (-4xx) */
    DW_SCPI_ESR_DDE = 1 << 3, /* device-dependent error (-3xx) */
    DW_SCPI_ESR_EXE = 1 << 4, /* execution error (-2xx) */
    DW_SCPI_ESR_CME = 1 << 5, /* command error (-1xx) */
    DW_SCPI_ESR_PON = 1 << 7, /* power on: set when the status is created */
};

/* Status byte bits. */
enum {
    DW_SCPI_STB_EAV = 1 << 2, /* the error queue is not empty */
    DW_SCPI_STB_MAV = 1 << 4, /* a response is waiting */
    DW_SCPI_STB_ESB = 1 << 5, /* ESR & ESE != 0 */
    DW_SCPI_STB_MSS = 1 << 6, /* STB & SRE != 0 (bit 6 aside) */
};

#define DW_SCPI_QUEUE_DEFAULT 20

typedef struct dw_scpi_status dw_scpi_status;

/* A status at power on: empty queue of `depth` entries (at least 2; 0
 * gives DW_SCPI_QUEUE_DEFAULT), ESR = PON, ESE = SRE = 0. NULL when out of
 * memory. Free with dw_scpi_status_free (accepts NULL). */
dw_scpi_status *dw_scpi_status_new(size_t depth);
void dw_scpi_status_free(dw_scpi_status *st);

/* Queue error `code` (its standard message) and set its class's ESR bit.
 * A full queue keeps its older entries and its newest becomes -350
 * "Queue overflow" (IEEE 488.2 / SCPI-99 21.8). */
void dw_scpi_status_error(dw_scpi_status *st, int code);
/* As dw_scpi_status_error, with the entry's own description (copied;
 * NULL: the standard one): SYSTem:ERRor? answers -222,"Load must be
 * positive". */
void dw_scpi_status_error_text(dw_scpi_status *st, int code, const char *text);
/* Empty the queue (*CLS). */
void dw_scpi_status_clear(dw_scpi_status *st);
/* Take the oldest error: its code (0 when the queue is empty). */
int dw_scpi_status_pop(dw_scpi_status *st);
size_t dw_scpi_status_count(const dw_scpi_status *st);
uint8_t dw_scpi_status_esr(const dw_scpi_status *st);
/* The status byte; `mav`: a response is waiting. */
uint8_t dw_scpi_status_stb(const dw_scpi_status *st, int mav);

/* Reads of a built-in command beyond the status. */
typedef struct dw_scpi_context {
    const char *idn; /* the *IDN? answer */
    int mav;         /* responses of this message are already waiting */
} dw_scpi_context;

/* Events a built-in command raises for its caller. */
enum { DW_SCPI_EVENT_RST = 1 };

/* The built-in commands' header patterns, compiled once; immutable. NULL
 * when out of memory. */
typedef struct dw_scpi_builtins dw_scpi_builtins;
dw_scpi_builtins *dw_scpi_builtins_new(void);
void dw_scpi_builtins_free(dw_scpi_builtins *b);

/* Carry out unit `u` if it is a built-in command: 1 (a query's response
 * appended to `resp`, events or'ed into *events), 0 (not a built-in), a
 * negative SCPI error code for the caller to queue (-108, -109, -104,
 * -222, -114), or DW_SCPI_NOMEM. */
int dw_scpi_builtin(const dw_scpi_builtins *b, dw_scpi_status *st, const dw_scpi_context *ctx,
                    const dw_scpi_unit *u, dw_buf *resp, unsigned *events);

/* Append error `code` as a SYSTem:ERRor? response: -113,"Undefined header". */
int dw_scpi_error_print(int code, dw_buf *out);

#endif
