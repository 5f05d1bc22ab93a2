/* The header patterns' index (sim/model/scpi_index.c): a unit's candidates
 * hold every pattern that fits it or refuses it only for its suffix, in
 * order and once each, so trying them gives what trying every pattern
 * gives; and the index grows past any first size. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "model/scpi_index.h"
#include "model/scpi_parse.h"

/* Patterns that put an optional node first or last, suffixes on either,
 * a pattern of optional nodes only, one all in lower case (no short
 * form), common commands and two headers that share their last node. */
static const char *const patterns[] = {
    "[SOURce[1]:]FREQuency[:CW]",
    "SOURce[1-4]:VOLTage",
    "OUTPut<n>",
    "OUTPut2:IMPedance",
    "STATus:OPERation[:EVENt]?",
    "STATus:OPERation:CONDition?",
    "STATus:QUEStionable:CONDition?",
    "SYSTem:ERRor[:NEXT]?",
    "*IDN?",
    "*OPC",
    "SOURce[:SOURce]",
    "[EVENt]",
    "level",
    "[SOURce[1]:]FREQuency[:CW]?",
};
#define NPAT (sizeof patterns / sizeof patterns[0])

static const char *const units[] = {
    "FREQ 1",
    "SOUR:FREQ:CW 5",
    "SOUR1:FREQ?",
    "SOUR2:FREQ?",
    "FREQUENCY:CW?",
    "sour3:volt 1",
    "SOUR5:VOLT 1",
    "SOUR:VOLT 1",
    "OUTP",
    "OUTP7 ON",
    "OUTP2:IMP 50",
    "OUTP3:IMP 50",
    "STAT:OPER?",
    "STAT:OPER:EVEN?",
    "STATUS:OPERATION:EVENT?",
    "STAT:OPER:COND?",
    "STAT:QUES:COND?",
    "SYST:ERR?",
    "SYST:ERR:NEXT?",
    "*IDN?",
    "*opc",
    "IDN?",
    "SOUR:SOUR",
    "SOURCE",
    "EVEN",
    "EVENT2",
    "LEVEL",
    "LEV",
    "XYZ?",
    "CW",
    "VOLT1",
};
#define NUNITS (sizeof units / sizeof units[0])

/* A message's first unit, in a parser the caller frees. */
static void parse(dw_scpi_parser *p, dw_scpi_unit *u, const char *msg)
{
    dw_scpi_parser_init(p, (const uint8_t *)msg, strlen(msg));
    cr_assert(eq(int, dw_scpi_parser_next(p, u), 1), "%s", msg);
}

static void compile_all(dw_scpi_pattern **pat, dw_scpi_index *x)
{
    for (size_t i = 0; i < NPAT; i++) {
        size_t where;
        const char *why;
        cr_assert(eq(int, dw_scpi_pattern_compile(patterns[i], &pat[i], &where, &why), DW_OK), "%s",
                  patterns[i]);
        cr_assert(eq(int, dw_scpi_index_add(x, pat[i], i), DW_OK));
    }
}

Test(scpi_index, candidates_hold_every_pattern_that_fits_in_order)
{
    dw_scpi_pattern *pat[NPAT];
    dw_scpi_index *x = dw_scpi_index_new();
    cr_assert(x != NULL);
    compile_all(pat, x);
    for (size_t k = 0; k < NUNITS; k++) {
        dw_scpi_parser p;
        dw_scpi_unit u;
        parse(&p, &u, units[k]);
        size_t n;
        const size_t *ids = dw_scpi_index_find(x, &u, &n);
        size_t c = 0; /* walks ids beside every pattern */
        for (size_t i = 0; i < NPAT; i++) {
            int listed = c < n && ids[c] == i;
            c += listed;
            int m = dw_scpi_pattern_match_header(pat[i], &u);
            cr_expect(listed || m == 0, "%s: %s (%d) is no candidate", units[k], patterns[i], m);
        }
        cr_expect(eq(sz, c, n), "%s: candidates ascending, each once", units[k]);
        cr_expect(le(sz, n, 4), "%s: %zu candidates", units[k], n);
        dw_scpi_parser_free(&p);
    }
    dw_scpi_index_free(x);
    for (size_t i = 0; i < NPAT; i++)
        dw_scpi_pattern_free(pat[i]);
}

/* The first candidate that fits, else the first refusal: what a caller
 * gets, the index against every pattern in order. */
static int first_fit(dw_scpi_pattern **pat, const size_t *ids, size_t n, const dw_scpi_unit *u)
{
    int why = 0;
    for (size_t k = 0; k < n; k++) {
        int m = dw_scpi_pattern_match(pat[ids ? ids[k] : k], u);
        if (m == 1)
            return (int)(ids ? ids[k] : k) + 1;
        why = why ? why : m;
    }
    return why;
}

Test(scpi_index, the_first_fit_and_the_refusal_are_as_without_it)
{
    dw_scpi_pattern *pat[NPAT];
    dw_scpi_index *x = dw_scpi_index_new();
    cr_assert(x != NULL);
    compile_all(pat, x);
    static const struct {
        const char *unit;
        int want; /* 1 + the pattern that takes it, or a refusal */
    } cases[] = {
        {"SOUR1:FREQ?", 14},
        {"SOUR2:FREQ?", -114},
        {"FREQ:CW 1", 1},
        {"SOUR5:VOLT 1", -114},
        {"OUTP7 ON", 3},
        {"OUTP3:IMP 50", -114},
        {"STAT:OPER?", 5},
        {"STAT:OPER:EVEN?", 5},
        {"STAT:QUES:COND?", 7},
        {"SYST:ERR:NEXT?", 8},
        {"*opc", 10},
        {"IDN?", 0},
        {"SOURCE:SOURCE", 11},
        {"EVENT", 12},
        {"EVENT2", 0},
        {"LEVEL", 13},
        {"LEV", 0},
        {"XYZ?", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dw_scpi_parser p;
        dw_scpi_unit u;
        parse(&p, &u, cases[k].unit);
        size_t n;
        const size_t *ids = dw_scpi_index_find(x, &u, &n);
        cr_expect(eq(int, first_fit(pat, ids, n, &u), cases[k].want), "%s", cases[k].unit);
        cr_expect(eq(int, first_fit(pat, NULL, NPAT, &u), cases[k].want), "%s: every pattern",
                  cases[k].unit);
        dw_scpi_parser_free(&p);
    }
    dw_scpi_index_free(x);
    for (size_t i = 0; i < NPAT; i++)
        dw_scpi_pattern_free(pat[i]);
}

Test(scpi_index, one_id_with_several_patterns_is_listed_once)
{
    dw_scpi_index *x = dw_scpi_index_new();
    cr_assert(x != NULL);
    const char *forms[] = {"[SOURce:]VOLTage[:LEVel]", "APPLy:VOLTage", "VSET<n>", "VOLTage"};
    for (size_t i = 0; i < 4; i++) {
        dw_scpi_pattern *p;
        size_t where;
        const char *why;
        cr_assert(eq(int, dw_scpi_pattern_compile(forms[i], &p, &where, &why), DW_OK));
        cr_assert(eq(int, dw_scpi_index_add(x, p, i < 3 ? 7 : 9), DW_OK));
        dw_scpi_pattern_free(p); /* the index keeps words, not patterns */
    }
    dw_scpi_parser p;
    dw_scpi_unit u;
    parse(&p, &u, "APPL:VOLT 5");
    size_t n;
    const size_t *ids = dw_scpi_index_find(x, &u, &n);
    cr_assert(eq(sz, n, 2));
    cr_expect(eq(sz, ids[0], 7));
    cr_expect(eq(sz, ids[1], 9));
    dw_scpi_parser_free(&p);
    parse(&p, &u, "VSET3 5");
    ids = dw_scpi_index_find(x, &u, &n);
    cr_expect(eq(sz, n, 1));
    dw_scpi_parser_free(&p);
    dw_scpi_index_free(x);
}

/* Far more words than the first table holds (a property with 64 aliases
 * once filled a fixed table and the lookup never ended): each is found,
 * and a word never added finds nothing. */
Test(scpi_index, grows_past_its_first_size, .timeout = 10)
{
    dw_scpi_index *x = dw_scpi_index_new();
    cr_assert(x != NULL);
    enum { N = 600 };
    char h[32];
    for (size_t i = 0; i < N; i++) {
        snprintf(h, sizeof h, "SUBSystem:X%c%c%cabc", 'A' + (int)(i / 676),
                 'A' + (int)(i / 26 % 26), 'A' + (int)(i % 26));
        dw_scpi_pattern *p;
        size_t where;
        const char *why;
        cr_assert(eq(int, dw_scpi_pattern_compile(h, &p, &where, &why), DW_OK), "%s", h);
        cr_assert(eq(int, dw_scpi_index_add(x, p, i), DW_OK));
        dw_scpi_pattern_free(p);
    }
    for (size_t i = 0; i < N; i++) {
        snprintf(h, sizeof h, "SUBS:X%c%c%c%s", 'A' + (int)(i / 676), 'A' + (int)(i / 26 % 26),
                 'A' + (int)(i % 26), i % 2 ? "ABC?" : "?");
        dw_scpi_parser p;
        dw_scpi_unit u;
        parse(&p, &u, h);
        size_t n;
        const size_t *ids = dw_scpi_index_find(x, &u, &n);
        cr_assert(eq(sz, n, 1), "%s", h);
        cr_expect(eq(sz, ids[0], i), "%s", h);
        dw_scpi_parser_free(&p);
    }
    dw_scpi_parser p;
    dw_scpi_unit u;
    parse(&p, &u, "SUBS:XZZZ?");
    size_t n;
    cr_expect(dw_scpi_index_find(x, &u, &n) == NULL && n == 0, "never added");
    dw_scpi_parser_free(&p);
    dw_scpi_index_free(x);
}

Test(scpi_index, free_accepts_null)
{
    dw_scpi_index_free(NULL);
}
