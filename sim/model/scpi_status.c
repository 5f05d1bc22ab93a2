/* The SCPI status model and built-in commands: see scpi_status.h. */
#include "model/scpi_status.h"

#include <stdlib.h>
#include <string.h>

#include <devwire/error.h>

struct dw_scpi_status {
    int *queue;   /* a ring of error codes */
    char **texts; /* beside each, its own description (owned) or NULL */
    size_t depth, head, count;
    uint8_t esr, ese, sre;
};

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

uint8_t dw_scpi_status_stb(const dw_scpi_status *st, int mav)
{
    unsigned stb = 0;
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
    B_N
} builtin_id;

static const char *const builtin_headers[B_N] = {"*IDN?",
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
                                                 "SYSTem:ERRor:COUNt?"};

struct dw_scpi_builtins {
    dw_scpi_pattern *p[B_N];
};

void dw_scpi_builtins_free(dw_scpi_builtins *b)
{
    if (!b)
        return;
    for (int i = 0; i < B_N; i++)
        dw_scpi_pattern_free(b->p[i]);
    free(b);
}

dw_scpi_builtins *dw_scpi_builtins_new(void)
{
    dw_scpi_builtins *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    for (int i = 0; i < B_N; i++) {
        size_t where;
        const char *why;
        if (dw_scpi_pattern_compile(builtin_headers[i], &b->p[i], &where, &why) != DW_OK) {
            dw_scpi_builtins_free(b);
            return NULL;
        }
    }
    return b;
}

/* The one NRf parameter of *ESE / *SRE: 0..255, or an error. */
static int register_value(const dw_scpi_unit *u)
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
    if (!(p->value > -0.5 && p->value < 255.5))
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

static int run(builtin_id id, dw_scpi_status *st, const dw_scpi_context *ctx, const dw_scpi_unit *u,
               dw_buf *resp, unsigned *events)
{
    int v, rc = DW_OK;
    switch (id) {
    case B_IDN:
        rc = dw_buf_append_str(resp, ctx->idn ? ctx->idn : "");
        break;
    case B_ESR:
        rc = dw_buf_printf(resp, "%u", st->esr);
        st->esr = 0;
        break;
    case B_ESE:
    case B_SRE:
        if ((v = register_value(u)) < 0)
            return v;
        if (id == B_ESE)
            st->ese = (uint8_t)v;
        else
            st->sre = (uint8_t)(v & ~DW_SCPI_STB_MSS);
        break;
    case B_ESE_Q:
        rc = dw_buf_printf(resp, "%u", st->ese);
        break;
    case B_SRE_Q:
        rc = dw_buf_printf(resp, "%u", st->sre);
        break;
    case B_STB:
        rc = dw_buf_printf(resp, "%u", dw_scpi_status_stb(st, ctx->mav));
        break;
    case B_CLS:
        st->esr = 0;
        dw_scpi_status_clear(st);
        break;
    case B_RST:
        *events |= DW_SCPI_EVENT_RST;
        break;
    case B_OPC:
        st->esr |= DW_SCPI_ESR_OPC; /* nothing is ever pending */
        break;
    case B_OPC_Q:
        rc = dw_buf_append_str(resp, "1");
        break;
    case B_WAI:
        break;
    case B_TST:
        rc = dw_buf_append_str(resp, "0");
        break;
    case B_ERR:
        rc = error_pop_print(st, resp);
        break;
    case B_ERR_COUNT:
        rc = dw_buf_printf(resp, "%zu", st->count);
        break;
    case B_N:
        return 0;
    }
    return rc == DW_OK ? 1 : DW_SCPI_NOMEM;
}

int dw_scpi_builtin(const dw_scpi_builtins *b, dw_scpi_status *st, const dw_scpi_context *ctx,
                    const dw_scpi_unit *u, dw_buf *resp, unsigned *events)
{
    int why = 0;
    for (int i = 0; i < B_N; i++) {
        int m = dw_scpi_pattern_match(b->p[i], u);
        if (m != 1) {
            why = why ? why : m;
            continue;
        }
        if (u->nparams && i != B_ESE && i != B_SRE)
            return DW_SCPI_E_PARAM_NOT_ALLOWED;
        return run((builtin_id)i, st, ctx, u, resp, events);
    }
    return why;
}
