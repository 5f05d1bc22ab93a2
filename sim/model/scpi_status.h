/* The IEEE 488.2 / SCPI-99 status model of a simulated instrument: the
 * error queue, the Standard Event Status Register and its enable register,
 * the status byte and the service request enable register, SCPI-99's
 * OPERation and QUEStionable registers (condition, transition filters,
 * event, enable) summarised into the status byte, and the built-in
 * commands that read and write them (*IDN?, *ESR?, *ESE, *STB?, *SRE,
 * *CLS, *RST, *OPC, *OPC?, *WAI, *TST?, SYSTem:ERRor[:NEXT]?,
 * SYSTem:ERRor:COUNt?, SYSTem:VERSion?, STATus:OPERation|QUEStionable
 * [:EVENt]?, :CONDition?, :ENABle, :PTRansition, :NTRansition,
 * STATus:PRESet). Pure: no I/O, no clock, no global state. One status
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
    DW_SCPI_STB_QUES = 1 << 3, /* QUEStionable event & enable != 0 */
    DW_SCPI_STB_EAV = 1 << 2,  /* the error queue is not empty */
    DW_SCPI_STB_MAV = 1 << 4,  /* a response is waiting */
    DW_SCPI_STB_ESB = 1 << 5,  /* ESR & ESE != 0 */
    DW_SCPI_STB_MSS = 1 << 6,  /* STB & SRE != 0 (bit 6 aside) */
    DW_SCPI_STB_OPER = 1 << 7, /* OPERation event & enable != 0 */
    /* The bits a device may set itself (dw_scpi_status_stb_bits). */
    DW_SCPI_STB_DEVICE = 1 << 0 | 1 << 1 | 1 << 7,
};

/* SCPI-99's status registers (chapter 9 of volume 1). */
typedef enum dw_scpi_reg { DW_SCPI_REG_OPER, DW_SCPI_REG_QUES, DW_SCPI_NREGS } dw_scpi_reg;
/* The parts of one register. */
typedef enum dw_scpi_reg_part {
    DW_SCPI_COND,
    DW_SCPI_EVENT,
    DW_SCPI_ENABLE,
    DW_SCPI_PTR,
    DW_SCPI_NTR,
} dw_scpi_reg_part;
/* Bit 15 of a SCPI register is always 0; the transition filters' values
 * at power on and after STATus:PRESet. */
#define DW_SCPI_REG_MASK    0x7FFFu
#define DW_SCPI_PTR_DEFAULT 0x7FFFu
#define DW_SCPI_NTR_DEFAULT 0u

#define DW_SCPI_QUEUE_DEFAULT 20

typedef struct dw_scpi_status dw_scpi_status;

/* A status at power on: empty queue of `depth` entries (at least 2; 0
 * gives DW_SCPI_QUEUE_DEFAULT), ESR = PON, ESE = SRE = 0, OPERation and
 * QUEStionable all 0 but PTR = 32767. NULL when out of
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
/* Is `code` with `text` (text[0..len), or NULL: the standard one) an
 * error a script may queue? NULL if so: a standard SCPI-99 code (negative,
 * dw_scpi_error_standard), or a positive device-specific code up to 32767
 * with a text; a text has at most 255 bytes and no control character.
 * Else what is wrong (static text). */
const char *dw_scpi_status_error_check(long long code, const char *text, size_t len);
/* Empty the queue (*CLS). */
void dw_scpi_status_clear(dw_scpi_status *st);
/* Take the oldest error: its code (0 when the queue is empty). */
int dw_scpi_status_pop(dw_scpi_status *st);
size_t dw_scpi_status_count(const dw_scpi_status *st);
uint8_t dw_scpi_status_esr(const dw_scpi_status *st);
/* The status byte; `mav`: a response is waiting. */
uint8_t dw_scpi_status_stb(const dw_scpi_status *st, int mav);
/* Set the Operation Complete bit of the ESR (an *OPC whose operations
 * have completed). */
void dw_scpi_status_opc(dw_scpi_status *st);

/* Register r's new condition (bit 15 ignored): the bits that rose since
 * the last condition and pass the positive transition filter, and those
 * that fell and pass the negative one, are set in its event register. */
void dw_scpi_status_condition(dw_scpi_status *st, dw_scpi_reg r, uint16_t cond);
/* A part of register r. */
uint16_t dw_scpi_status_reg(const dw_scpi_status *st, dw_scpi_reg r, dw_scpi_reg_part part);
/* The device's own status byte bits (only DW_SCPI_STB_DEVICE's count; bit
 * 7 is or'ed with the OPERation summary). */
void dw_scpi_status_stb_bits(dw_scpi_status *st, uint8_t bits);

/* Reads of a built-in command beyond the status. */
typedef struct dw_scpi_context {
    const char *idn;     /* the *IDN? answer */
    int mav;             /* responses of this message are already waiting */
    const char *version; /* the SYSTem:VERSion? answer (NULL: "1999.0") */
    int pending;         /* some overlapped operation has not completed */
} dw_scpi_context;

/* Events a built-in command raises for its caller. */
enum {
    DW_SCPI_EVENT_RST = 1,  /* *RST: the device's settings to their defaults */
    DW_SCPI_EVENT_OPC = 2,  /* *OPC with operations pending: set OPC when they complete */
    DW_SCPI_EVENT_WAIT = 4, /* *WAI or *OPC?: what follows waits for the pending operations */
};

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
