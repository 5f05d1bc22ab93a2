/* The SCPI status model and built-in commands: see scpi_status.h. */
#include "model/scpi_status.h"

#include "model/scpi_index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/error.h>

struct dw_scpi_status {
    int *queue;   /* a ring of error codes */
    char **texts; /* beside each, its own description (owned) or NULL */
    size_t depth, head, count;
    uint8_t esr, ese, sre;
    uint8_t stb_dev;                              /* the device's own bits 0, 1 and 7 */
    uint16_t reg[DW_SCPI_NREGS][DW_SCPI_NTR + 1]; /* OPERation, QUEStionable */
};

/* STATus:PRESet: enables to 0, transition filters to their defaults. */
static void status_preset(dw_scpi_status *st)
{
    for (int r = 0; r < DW_SCPI_NREGS; r++) {
        st->reg[r][DW_SCPI_ENABLE] = 0;
        st->reg[r][DW_SCPI_PTR] = DW_SCPI_PTR_DEFAULT;
        st->reg[r][DW_SCPI_NTR] = DW_SCPI_NTR_DEFAULT;
    }
}

dw_scpi_status *dw_scpi_status_new(size_t depth)
{
    if (depth == 0)
        depth = DW_SCPI_QUEUE_DEFAULT;
    if (depth < 2)
        depth = 2;
    dw_scpi_status *st = calloc(1, sizeof *st);
    if (!st || !(st->queue = calloc(depth, sizeof *st->queue)) ||
        !(st->texts = calloc(depth, sizeof *st->texts))) {
        dw_scpi_status_free(st);
        return NULL;
    }
    st->depth = depth;
    st->esr = DW_SCPI_ESR_PON;
    status_preset(st);
    return st;
}

void dw_scpi_status_free(dw_scpi_status *st)
{
    if (!st)
        return;
    if (st->texts)
        dw_scpi_status_clear(st);
    free(st->texts);
    free(st->queue);
    free(st);
}

static uint8_t class_bit(int code)
{
    if (code <= -100 && code > -200)
        return DW_SCPI_ESR_CME;
    if (code <= -200 && code > -300)
        return DW_SCPI_ESR_EXE;
    if (code <= -300 && code > -400)
        return DW_SCPI_ESR_DDE;
    if (code <= -400 && code > -500)
        return DW_SCPI_ESR_QYE;
    return 0;
}

void dw_scpi_status_error(dw_scpi_status *st, int code)
{
    dw_scpi_status_error_text(st, code, NULL);
}

void dw_scpi_status_error_text(dw_scpi_status *st, int code, const char *text)
{
    st->esr |= class_bit(code);
    size_t at = (st->head + st->count) % st->depth;
    if (st->count == st->depth) {
        at = (st->head + st->count - 1) % st->depth;
        code = DW_SCPI_E_QUEUE_OVERFLOW;
        text = NULL;
    } else {
        st->count++;
    }
    free(st->texts[at]);
    st->queue[at] = code;
    st->texts[at] = text ? strdup(text) : NULL; /* out of memory: the standard text */
}

const char *dw_scpi_status_error_check(long long code, const char *text, size_t len)
{
    if (code < 0 && !dw_scpi_error_standard((int)(code < -1000 ? -1 : code)))
        return "not a standard SCPI-99 error (such as -222; a device-specific error is "
               "positive, with a message)";
    if (code == 0 || code > 32767)
        return "not an error code (a standard SCPI-99 code such as -222, or a device-specific "
               "one from 1 to 32767 with a message)";
    if (code > 0 && !text)
        return "a device-specific error needs a message";
    if (text && len > 255)
        return "the message is longer than 255 bytes";
    for (size_t i = 0; text && i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return "the message holds a control character";
    return NULL;
}

/* Take the oldest entry: its code (0 when the queue is empty) and its own
 * text (the caller frees it), or NULL. */
static int status_take(dw_scpi_status *st, char **text)
{
    *text = NULL;
    if (st->count == 0)
        return 0;
    int code = st->queue[st->head];
    *text = st->texts[st->head];
    st->texts[st->head] = NULL;
    st->head = (st->head + 1) % st->depth;
    st->count--;
    return code;
}

int dw_scpi_status_pop(dw_scpi_status *st)
{
    char *text;
    int code = status_take(st, &text);
    free(text);
    return code;
}

void dw_scpi_status_clear(dw_scpi_status *st)
{
    while (st->count)
        dw_scpi_status_pop(st);
}

size_t dw_scpi_status_count(const dw_scpi_status *st)
{
    return st->count;
}

uint8_t dw_scpi_status_esr(const dw_scpi_status *st)
{
    return st->esr;
}

void dw_scpi_status_opc(dw_scpi_status *st)
{
    st->esr |= DW_SCPI_ESR_OPC;
}

void dw_scpi_status_condition(dw_scpi_status *st, dw_scpi_reg r, uint16_t cond)
{
    uint16_t *g = st->reg[r];
    cond &= DW_SCPI_REG_MASK;
    unsigned rose = cond & ~g[DW_SCPI_COND], fell = g[DW_SCPI_COND] & ~cond;
    g[DW_SCPI_EVENT] |= (uint16_t)((rose & g[DW_SCPI_PTR]) | (fell & g[DW_SCPI_NTR]));
    g[DW_SCPI_COND] = cond;
}

uint16_t dw_scpi_status_reg(const dw_scpi_status *st, dw_scpi_reg r, dw_scpi_reg_part part)
{
    return st->reg[r][part];
}

void dw_scpi_status_stb_bits(dw_scpi_status *st, uint8_t bits)
{
    st->stb_dev = bits & DW_SCPI_STB_DEVICE;
}

/* A register's summary: some event bit is enabled. */
static int summary(const dw_scpi_status *st, dw_scpi_reg r)
{
    return (st->reg[r][DW_SCPI_EVENT] & st->reg[r][DW_SCPI_ENABLE]) != 0;
}

uint8_t dw_scpi_status_stb(const dw_scpi_status *st, int mav)
{
    unsigned stb = st->stb_dev;
    if (summary(st, DW_SCPI_REG_QUES))
        stb |= DW_SCPI_STB_QUES;
    if (summary(st, DW_SCPI_REG_OPER))
        stb |= DW_SCPI_STB_OPER;
    if (st->count)
        stb |= DW_SCPI_STB_EAV;
    if (mav)
        stb |= DW_SCPI_STB_MAV;
    if (st->esr & st->ese)
        stb |= DW_SCPI_STB_ESB;
    if (stb & st->sre & ~(unsigned)DW_SCPI_STB_MSS)
        stb |= DW_SCPI_STB_MSS;
    return (uint8_t)stb;
}

int dw_scpi_error_print(int code, dw_buf *out)
{
    return dw_buf_printf(out, "%d,\"%s\"", code, code ? dw_scpi_strerror(code) : "No error");
}

/* An entry with its own text, inner quotes doubled. */
static int error_print_text(int code, const char *text, dw_buf *out)
{
    if (!text)
        return dw_scpi_error_print(code, out);
    int rc = dw_buf_printf(out, "%d,\"", code);
    for (; *text && rc == DW_OK; text++)
        rc = *text == '"' ? dw_buf_append(out, "\"\"", 2) : dw_buf_append_byte(out, (uint8_t)*text);
    return rc == DW_OK ? dw_buf_append_byte(out, '"') : rc;
}

/* ---- built-in commands --------------------------------------------------- */

/* Append v in NR1 ("%zu" without printf: a status query's answer is one
 * register, and printf cost more than finding the command). */
static int append_nr1(dw_buf *out, size_t v)
{
    char digits[24];
    size_t at = sizeof digits;
    do
        digits[--at] = (char)('0' + v % 10);
    while (v /= 10);
    return dw_buf_append(out, digits + at, sizeof digits - at);
}

typedef enum builtin_id {
    B_IDN,
    B_ESR,
    B_ESE,
    B_ESE_Q,
    B_STB,
    B_SRE,
    B_SRE_Q,
    B_CLS,
    B_RST,
    B_OPC,
    B_OPC_Q,
    B_WAI,
    B_TST,
    B_ERR,
    B_ERR_COUNT,
    B_VERS,
    B_PRES,
    B_STAT, /* then, per register (OPERation, QUEStionable), the S_ commands */
    B_N = B_STAT + 2 * 8
} builtin_id;

/* A register's commands, in the order of status_headers. */
enum { S_EVENT, S_COND, S_ENAB, S_ENAB_Q, S_PTR, S_PTR_Q, S_NTR, S_NTR_Q, S_N };

static const char *const builtin_headers[B_STAT] = {"*IDN?",
                                                    "*ESR?",
                                                    "*ESE",
                                                    "*ESE?",
                                                    "*STB?",
                                                    "*SRE",
                                                    "*SRE?",
                                                    "*CLS",
                                                    "*RST",
                                                    "*OPC",
                                                    "*OPC?",
                                                    "*WAI",
                                                    "*TST?",
                                                    "SYSTem:ERRor[:NEXT]?",
                                                    "SYSTem:ERRor:COUNt?",
                                                    "SYSTem:VERSion?",
                                                    "STATus:PRESet"};
static const char *const status_headers[S_N] = {"[:EVENt]?",   "CONDition?",  "ENABle",
                                                "ENABle?",     "PTRansition", "PTRansition?",
                                                "NTRansition", "NTRansition?"};
static const char *const register_names[DW_SCPI_NREGS] = {"OPERation", "QUEStionable"};

/* The header of built-in i. */
static void builtin_header(int i, char *buf, size_t cap)
{
    if (i < B_STAT) {
        snprintf(buf, cap, "%s", builtin_headers[i]);
        return;
    }
    i -= B_STAT;
    const char *tail = status_headers[i % S_N];
    snprintf(buf, cap, "STATus:%s%s%s", register_names[i / S_N], tail[0] == '[' ? "" : ":", tail);
}

struct dw_scpi_builtins {
    dw_scpi_pattern *p[B_N];
    dw_scpi_index *index; /* a unit's candidates among p, by its last node */
};

void dw_scpi_builtins_free(dw_scpi_builtins *b)
{
    if (!b)
        return;
    for (int i = 0; i < B_N; i++)
        dw_scpi_pattern_free(b->p[i]);
    dw_scpi_index_free(b->index);
    free(b);
}

dw_scpi_builtins *dw_scpi_builtins_new(void)
{
    dw_scpi_builtins *b = calloc(1, sizeof *b);
    if (!b || !(b->index = dw_scpi_index_new())) {
        dw_scpi_builtins_free(b);
        return NULL;
    }
    for (int i = 0; i < B_N; i++) {
        size_t where;
        const char *why;
        char h[64];
        builtin_header(i, h, sizeof h);
        if (dw_scpi_pattern_compile(h, &b->p[i], &where, &why) != DW_OK ||
            dw_scpi_index_add(b->index, b->p[i], (size_t)i) != DW_OK) {
            dw_scpi_builtins_free(b);
            return NULL;
        }
    }
    return b;
}

/* The one NRf parameter of *ESE / *SRE (0..255) or of a SCPI register's
 * ENABle, PTRansition, NTRansition (0..65535, bit 15 then dropped), or an
 * error. */
static int register_value(const dw_scpi_unit *u, double max)
{
    if (u->nparams == 0)
        return DW_SCPI_E_MISSING_PARAM;
    if (u->nparams > 1)
        return DW_SCPI_E_PARAM_NOT_ALLOWED;
    const dw_scpi_param *p = &u->params[0];
    if (p->kind != DW_SCPI_NUMERIC)
        return DW_SCPI_E_DATA_TYPE;
    if (p->unit[0])
        return DW_SCPI_E_INVALID_SUFFIX;
    if (!(p->value > -0.5 && p->value < max + 0.5))
        return DW_SCPI_E_OUT_OF_RANGE;
    return (int)(p->value + 0.5);
}

static int error_pop_print(dw_scpi_status *st, dw_buf *resp)
{
    char *text;
    int code = status_take(st, &text);
    int rc = error_print_text(code, text, resp);
    free(text);
    return rc;
}

/* A STATus command of register r (S_...). */
static int run_register(int cmd, dw_scpi_status *st, dw_scpi_reg r, const dw_scpi_unit *u,
                        dw_buf *resp)
{
    static const dw_scpi_reg_part parts[S_N] = {DW_SCPI_EVENT,  DW_SCPI_COND, DW_SCPI_ENABLE,
                                                DW_SCPI_ENABLE, DW_SCPI_PTR,  DW_SCPI_PTR,
                                                DW_SCPI_NTR,    DW_SCPI_NTR};
    uint16_t *g = &st->reg[r][parts[cmd]];
    if (cmd == S_ENAB || cmd == S_PTR || cmd == S_NTR) {
        int v = register_value(u, 65535);
        if (v < 0)
            return v;
        *g = (uint16_t)((unsigned)v & DW_SCPI_REG_MASK);
        return 1;
    }
    int rc = append_nr1(resp, *g);
    if (cmd == S_EVENT) /* reading the event register clears it */
        *g = 0;
    return rc == DW_OK ? 1 : DW_SCPI_NOMEM;
}

/* *OPC, *OPC?, *WAI: with operations pending, the caller completes them. */
static int run_opc(builtin_id id, dw_scpi_status *st, const dw_scpi_context *ctx, dw_buf *resp,
                   unsigned *events)
{
    if (id == B_OPC) {
        if (ctx->pending)
            *events |= DW_SCPI_EVENT_OPC;
        else
            st->esr |= DW_SCPI_ESR_OPC;
        return DW_OK;
    }
    if (ctx->pending)
        *events |= DW_SCPI_EVENT_WAIT;
    return id == B_OPC_Q ? dw_buf_append_str(resp, "1") : DW_OK;
}

/* *ESE, *SRE and their queries. */
static int run_enable(builtin_id id, dw_scpi_status *st, const dw_scpi_unit *u, dw_buf *resp)
{
    if (id == B_ESE_Q || id == B_SRE_Q)
        return append_nr1(resp, id == B_ESE_Q ? st->ese : st->sre) == DW_OK ? 1 : DW_SCPI_NOMEM;
    int v = register_value(u, 255);
    if (v < 0)
        return v;
    if (id == B_ESE)
        st->ese = (uint8_t)v;
    else
        st->sre = (uint8_t)(v & ~DW_SCPI_STB_MSS);
    return 1;
}

static int run(builtin_id id, dw_scpi_status *st, const dw_scpi_context *ctx, const dw_scpi_unit *u,
               dw_buf *resp, unsigned *events)
{
    int rc = DW_OK;
    switch (id) {
    case B_IDN:
        rc = dw_buf_append_str(resp, ctx->idn ? ctx->idn : "");
        break;
    case B_ESR:
        rc = append_nr1(resp, st->esr);
        st->esr = 0;
        break;
    case B_ESE:
    case B_SRE:
    case B_ESE_Q:
    case B_SRE_Q:
        return run_enable(id, st, u, resp);
    case B_STB:
        rc = append_nr1(resp, dw_scpi_status_stb(st, ctx->mav));
        break;
    case B_CLS: /* the error queue and every event register */
        st->esr = 0;
        for (int r = 0; r < DW_SCPI_NREGS; r++)
            st->reg[r][DW_SCPI_EVENT] = 0;
        dw_scpi_status_clear(st);
        break;
    case B_RST:
        *events |= DW_SCPI_EVENT_RST;
        break;
    case B_OPC:
    case B_OPC_Q:
    case B_WAI:
        rc = run_opc(id, st, ctx, resp, events);
        break;
    case B_TST:
        rc = dw_buf_append_str(resp, "0");
        break;
    case B_ERR:
        rc = error_pop_print(st, resp);
        break;
    case B_ERR_COUNT:
        rc = append_nr1(resp, st->count);
        break;
    case B_VERS:
        rc = dw_buf_append_str(resp, ctx->version ? ctx->version : "1999.0");
        break;
    case B_PRES:
        status_preset(st);
        break;
    default: /* B_STAT and up */
        return run_register((id - B_STAT) % S_N, st, (dw_scpi_reg)((id - B_STAT) / S_N), u, resp);
    }
    return rc == DW_OK ? 1 : DW_SCPI_NOMEM;
}

/* Does built-in i take a parameter? */
static int takes_value(int i)
{
    int s = (i - B_STAT) % S_N;
    return i == B_ESE || i == B_SRE || (i >= B_STAT && (s == S_ENAB || s == S_PTR || s == S_NTR));
}

int dw_scpi_builtin(const dw_scpi_builtins *b, dw_scpi_status *st, const dw_scpi_context *ctx,
                    const dw_scpi_unit *u, dw_buf *resp, unsigned *events)
{
    int why = 0;
    size_t n;
    const size_t *ids = dw_scpi_index_find(b->index, u, &n);
    for (size_t k = 0; k < n; k++) {
        int i = (int)ids[k];
        int m = dw_scpi_pattern_match(b->p[i], u);
        if (m != 1) {
            why = why ? why : m;
            continue;
        }
        if (u->nparams && !takes_value(i))
            return DW_SCPI_E_PARAM_NOT_ALLOWED;
        return run((builtin_id)i, st, ctx, u, resp, events);
    }
    return why;
}
