/* The SCPI model (sim/model/): program message parsing (headers, the path
 * rule, parameters), header patterns, the canonical printer, the error
 * queue and the status registers, and the built-in commands. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "model/scpi_parse.h"
#include "model/scpi_status.h"

/* A message's units, each printed canonically, joined with " | "; an error
 * ends the text as "!<code>". The message sits in a buffer of its size. */
static char *parse_text(const char *msg)
{
    static char out[1024];
    size_t n = strlen(msg);
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, msg, n);
    dw_scpi_parser p;
    dw_scpi_unit u;
    dw_buf b = DW_BUF_INIT;
    dw_scpi_parser_init(&p, copy, n);
    int rc, first = 1;
    while ((rc = dw_scpi_parser_next(&p, &u)) == 1) {
        if (!first)
            dw_buf_append_str(&b, " | ");
        first = 0;
        cr_assert(eq(int, dw_scpi_unit_print(&u, &b), DW_OK));
    }
    if (rc < 0)
        dw_buf_printf(&b, "%s!%d", first ? "" : " ", rc);
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.data ? (char *)b.data : "");
    dw_buf_free(&b);
    dw_scpi_parser_free(&p);
    free(copy);
    return out;
}

/* Does pattern `pat` match the (single-unit) message `msg`? */
static int fits(const char *pat, const char *msg)
{
    dw_scpi_pattern *p;
    size_t where;
    const char *why;
    cr_assert(eq(int, dw_scpi_pattern_compile(pat, &p, &where, &why), DW_OK), "%s", pat);
    dw_scpi_parser ps;
    dw_scpi_unit u;
    dw_scpi_parser_init(&ps, (const uint8_t *)msg, strlen(msg));
    cr_assert(eq(int, dw_scpi_parser_next(&ps, &u), 1), "%s", msg);
    int m = dw_scpi_pattern_match(p, &u);
    dw_scpi_parser_free(&ps);
    dw_scpi_pattern_free(p);
    return m;
}

/* Every standard code has its standard message; others are unknown. */
Test(scpi_parse, standard_error_messages)
{
    cr_expect(eq(str, (char *)dw_scpi_strerror(-113), "Undefined header"));
    cr_expect(eq(str, (char *)dw_scpi_strerror(-211), "Trigger ignored"));
    cr_expect(eq(str, (char *)dw_scpi_strerror(-214), "Trigger deadlock"));
    cr_expect(eq(str, (char *)dw_scpi_strerror(-221), "Settings conflict"));
    cr_expect(eq(str, (char *)dw_scpi_strerror(-230), "Data corrupt or stale"));
    cr_expect(eq(str, (char *)dw_scpi_strerror(-410), "Query INTERRUPTED"));
    cr_expect(eq(str, (char *)dw_scpi_strerror(-199), "Unknown error"));
    cr_expect(eq(str, (char *)dw_scpi_strerror(5), "Unknown error"));
}

Test(scpi_parse, header_long_and_short_forms)
{
    const char *pat = "[SOURce:]FREQuency[:CW]";
    cr_expect(eq(int, fits(pat, "FREQ 1"), 1));
    cr_expect(eq(int, fits(pat, "freq 1"), 1));
    cr_expect(eq(int, fits(pat, "SOUR:FREQ:CW 1"), 1));
    cr_expect(eq(int, fits(pat, "frequency 1"), 1));
    cr_expect(eq(int, fits(pat, "source:Frequency:cw 1"), 1));
    cr_expect(eq(int, fits(pat, ":FREQ:CW 1"), 1));
    cr_expect(eq(int, fits(pat, "FREQU 1"), 0), "neither the short nor the long form");
    cr_expect(eq(int, fits(pat, "FRE 1"), 0));
    cr_expect(eq(int, fits(pat, "SOUR:CW 1"), 0), "FREQuency is not optional");
    cr_expect(eq(int, fits(pat, "FREQ? "), 0), "a query is not the command");
    cr_expect(eq(int, fits("[SOURce:]FREQuency[:CW]?", "SOUR:FREQ?"), 1));
    cr_expect(eq(int, fits("*IDN?", "*idn?"), 1));
    cr_expect(eq(int, fits("*IDN?", "*IDN"), 0));
}

Test(scpi_parse, numeric_suffixes)
{
    const char *pat = "OUTPut[1-4]:STATe";
    cr_expect(eq(int, fits(pat, "OUTP:STAT ON"), 1), "no suffix is 1");
    cr_expect(eq(int, fits("OUTPut[1-4][:STATe]", "OUTP ON"), 1));
    cr_expect(eq(int, fits(pat, "OUTP3:STAT ON"), 1));
    cr_expect(eq(int, fits(pat, "output4:state ON"), 1));
    cr_expect(eq(int, fits(pat, "OUTP5:STAT ON"), -114));
    cr_expect(eq(int, fits(pat, "OUTP0:STAT ON"), -114));
    cr_expect(eq(int, fits("OUTPut<n>", "OUTP12 1"), 1));
    cr_expect(eq(int, fits("OUTPut2", "OUTP2 1"), 1));
    cr_expect(eq(int, fits("OUTPut2", "OUTP 1"), -114), "only suffix 2");
    cr_expect(eq(int, fits("OUTPut", "OUTP2 1"), 0), "no suffix allowed");
    cr_expect(eq(int, fits("[SOURce[1]:]FREQuency", "SOUR1:FREQ 1"), 1), "the manuals' [1]");
    cr_expect(eq(int, fits("[SOURce[1]:]FREQuency", "SOUR:FREQ 1"), 1));
    cr_expect(eq(int, fits("[SOURce[1]:]FREQuency", "FREQ 1"), 1));
    cr_expect(eq(int, fits("[SOURce[1]:]FREQuency", "SOUR2:FREQ 1"), -114));
    cr_expect(eq(int, fits("OUTPut[2]", "OUTP2 1"), 1));
    cr_expect(eq(int, fits("SOURce1:DATA?", "SOUR2:FREQ?"), 0), "-114 only when the rest fits");
    cr_expect(eq(int, fits("SOURce1:DATA?", "SOUR2:DATA?"), -114));
    cr_expect(eq(int, fits("[SOURce1:]DATA?", "SOUR2:FREQ?"), 0));
    cr_expect(eq(int, fits("OUTPut[1-2]:STATe", "OUTP3:STAT2 1"), 0));
}

Test(scpi_parse, the_more_specific_refusal)
{
    cr_expect(eq(int, dw_scpi_refusal_pick(0, -114), -114));
    cr_expect(eq(int, dw_scpi_refusal_pick(-114, -109), -109));
    cr_expect(eq(int, dw_scpi_refusal_pick(-109, -104), -104));
    cr_expect(eq(int, dw_scpi_refusal_pick(-104, -224), -224));
    cr_expect(eq(int, dw_scpi_refusal_pick(-222, -224), -222), "a tie keeps the first");
    cr_expect(eq(int, dw_scpi_refusal_pick(-104, -131), -104));
    cr_expect(eq(int, dw_scpi_refusal_pick(-224, -104), -224));
    cr_expect(eq(int, dw_scpi_refusal_pick(-114, 0), -114));
}

Test(scpi_parse, bad_patterns_say_where)
{
    static const struct {
        const char *pat;
        size_t where;
    } bad[] = {{"FREQ[", 5},     {"[SOURce:FREQ", 12}, {"FREquEncy", 5},
               {"OUTP[4-1]", 4}, {"FREQ:?x", 5},       {"*IDN?x", 5},
               {"", 0},          {"FREQ::CW", 5},      {"SENSe:TRANsmissionsx", 6},
               {"OUTP[1-]", 4},  {"OUTP[1x]", 4}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dw_scpi_pattern *p = (dw_scpi_pattern *)1;
        size_t where = 99;
        const char *why = NULL;
        int rc = dw_scpi_pattern_compile(bad[i].pat, &p, &where, &why);
        cr_expect(eq(int, rc, DW_EINVAL), "%s", bad[i].pat);
        cr_expect(p == NULL);
        cr_expect(why != NULL);
        cr_expect(eq(sz, where, bad[i].where), "%s: %s", bad[i].pat, why ? why : "");
    }
}

Test(scpi_parse, path_rule_across_units)
{
    cr_expect(eq(str, parse_text("SOUR:FREQ 1e6;POW -10"), ":SOUR:FREQ 1000000 | :SOUR:POW -10"));
    cr_expect(eq(str, parse_text("SOUR:FREQ 1;:OUTP ON"), ":SOUR:FREQ 1 | :OUTP ON"));
    cr_expect(eq(str, parse_text("SOUR:FREQ 1;*OPC;POW 2"), ":SOUR:FREQ 1 | *OPC | :SOUR:POW 2"),
              "a common command keeps the path");
    cr_expect(eq(str, parse_text("*IDN?;FREQ?"), "*IDN? | :FREQ?"));
    cr_expect(eq(str, parse_text("A:B:C 1;D?;:E;F"), ":A:B:C 1 | :A:B:D? | :E | :F"));
    cr_expect(eq(str, parse_text("  freq?  \r"), ":FREQ?"), "white space and CR around");
}

Test(scpi_parse, numbers_units_and_multipliers)
{
    cr_expect(eq(str, parse_text("F 1"), ":F 1"));
    cr_expect(eq(str, parse_text("F +1.5"), ":F 1.5"));
    cr_expect(eq(str, parse_text("F -.25E+3"), ":F -250"));
    cr_expect(eq(str, parse_text("F 2.5e6"), ":F 2500000"));
    cr_expect(eq(str, parse_text("F 1 E 3"), ":F 1000"), "white space around the E");
    cr_expect(eq(str, parse_text("F 10kHz"), ":F 10000HZ"));
    cr_expect(eq(str, parse_text("F 2 MHZ"), ":F 2000000HZ"), "MHZ is mega");
    cr_expect(eq(str, parse_text("F 2 mhz"), ":F 2000000HZ"), "case does not matter");
    cr_expect(eq(str, parse_text("F 5 MOHM"), ":F 5000000OHM"));
    cr_expect(eq(str, parse_text("V 250mV"), ":V 0.25V"), "M is milli");
    cr_expect(eq(str, parse_text("V 3MAV"), ":V 3000000V"), "MA is mega");
    cr_expect(eq(str, parse_text("T 20us"), ":T 2e-05S"));
    cr_expect(eq(str, parse_text("P -10dBm"), ":P -10DBM"));
    cr_expect(eq(str, parse_text("F 0.1"), ":F 0.1"));
    cr_expect(eq(str, parse_text("F #H1F,#Q17,#b101"), ":F 31,15,5"));
    cr_expect(eq(str, parse_text("F MIN;F MAX;F DEF"), ":F MIN | :F MAX | :F DEF"));
    cr_expect(eq(str, parse_text("F 1.2.3"), "!-121"));
    cr_expect(eq(str, parse_text("F 1x2"), "!-131"));
    cr_expect(eq(str, parse_text("F 10 kqz"), "!-131"));
    cr_expect(eq(str, parse_text("F 1e999"), "!-222"));
    cr_expect(eq(str, parse_text("F 1 2"), "!-103"));
    cr_expect(eq(str, parse_text("F +"), "!-121"));
}

static int one_param(const char *msg, int (*read)(const dw_scpi_unit *, const dw_scpi_param *))
{
    dw_scpi_parser p;
    dw_scpi_unit u;
    dw_scpi_parser_init(&p, (const uint8_t *)msg, strlen(msg));
    cr_assert(eq(int, dw_scpi_parser_next(&p, &u), 1), "%s", msg);
    cr_assert(eq(sz, u.nparams, 1));
    int v = read(&u, &u.params[0]);
    dw_scpi_parser_free(&p);
    return v;
}

static int enum_trig(const dw_scpi_unit *u, const dw_scpi_param *p)
{
    return dw_scpi_param_choice(u, p, "IMMediate|BUS|EXTernal");
}

Test(scpi_parse, booleans_and_enumerations)
{
    cr_expect(eq(int, one_param("OUTP ON", dw_scpi_param_bool), 1));
    cr_expect(eq(int, one_param("OUTP off", dw_scpi_param_bool), 0));
    cr_expect(eq(int, one_param("OUTP 1", dw_scpi_param_bool), 1));
    cr_expect(eq(int, one_param("OUTP 0", dw_scpi_param_bool), 0));
    cr_expect(eq(int, one_param("OUTP 0.7", dw_scpi_param_bool), 1), "rounded");
    cr_expect(eq(int, one_param("OUTP MAYBE", dw_scpi_param_bool), -224));
    cr_expect(eq(int, one_param("OUTP 'ON'", dw_scpi_param_bool), -104));
    cr_expect(eq(int, one_param("TRIG:SOUR IMM", enum_trig), 0));
    cr_expect(eq(int, one_param("TRIG:SOUR immediate", enum_trig), 0));
    cr_expect(eq(int, one_param("TRIG:SOUR bus", enum_trig), 1));
    cr_expect(eq(int, one_param("TRIG:SOUR EXT", enum_trig), 2));
    cr_expect(eq(int, one_param("TRIG:SOUR EXTERN", enum_trig), -224));
    cr_expect(eq(int, one_param("TRIG:SOUR 1", enum_trig), -104));
}

Test(scpi_parse, strings_blocks_and_expressions)
{
    cr_expect(eq(str, parse_text("DISP:TEXT 'it''s'"), ":DISP:TEXT \"it's\""));
    cr_expect(eq(str, parse_text("DISP:TEXT \"say \"\"hi\"\"\""), ":DISP:TEXT \"say \"\"hi\"\"\""));
    cr_expect(eq(str, parse_text("DISP:TEXT 'a;b,c'"), ":DISP:TEXT \"a;b,c\""),
              "separators inside");
    cr_expect(eq(str, parse_text("DISP:TEXT 'open"), "!-151"));
    cr_expect(eq(str, parse_text("WAV #15ab;cd;*OPC"), ":WAV #15ab;cd | *OPC"));
    cr_expect(eq(str, parse_text("WAV #0xyz;q"), ":WAV #15xyz;q"), "indefinite: to the end");
    cr_expect(eq(str, parse_text("WAV #13ab "), ":WAV #13ab "), "a block's last byte is data");
    cr_expect(eq(str, parse_text("WAV #16abc"), "!-161"), "too short");
    cr_expect(eq(str, parse_text("WAV #2x1ab"), "!-161"));
    cr_expect(eq(str, parse_text("WAV #"), "!-161"));
    cr_expect(eq(str, parse_text("ROUT:CLOS (@1,2:4)"), ":ROUT:CLOS (@1,2:4)"));
    cr_expect(eq(str, parse_text("ROUT:CLOS (@1"), "!-102"));
}

Test(scpi_parse, syntax_errors_and_where_parsing_stops)
{
    cr_expect(eq(str, parse_text("FREQ 1;;POW 2"), ":FREQ 1 !-102"),
              "units before the error stand");
    cr_expect(eq(str, parse_text("FREQ,1"), "!-103"));
    cr_expect(eq(str, parse_text("FREQ 1,,2"), "!-102"));
    cr_expect(eq(str, parse_text("FR$Q"), "!-102"));
    cr_expect(eq(str, parse_text("*IDN:X?"), "!-102"));
    cr_expect(eq(str, parse_text("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG"), "!-112"));
    cr_expect(eq(str, parse_text("TRANSFORMATIO?"), "!-112"), "13 characters (IEEE 488.2: 12)");
    cr_expect(eq(str, parse_text("SENS:TRANSMISSIONS 1"), "!-112"));
    cr_expect(eq(str, parse_text("*ABCDEFGHIJKLM"), "!-112"));
    cr_expect(eq(str, parse_text("CALC:TRANSMISSION?"), ":CALC:TRANSMISSION?"), "12 fit");
    cr_expect(eq(str, parse_text("F ABCDEFGHIJKLMNOPQRST"), ":F ABCDEFGHIJKLMNOPQRST"),
              "character data is not a program mnemonic");
    cr_expect(eq(str, parse_text("F @"), "!-104"));
    cr_expect(eq(str, parse_text("F ON-X"), "!-141"));
    cr_expect(eq(str, parse_text(""), ""), "an empty message has no units");
}

/* ---- status ------------------------------------------------------------- */

typedef struct dev {
    dw_scpi_builtins *b;
    dw_scpi_status *st;
    unsigned events;
    char out[512];
} dev;

static void dev_open(dev *d, size_t depth)
{
    memset(d, 0, sizeof *d);
    d->b = dw_scpi_builtins_new();
    d->st = dw_scpi_status_new(depth);
    cr_assert(d->b && d->st);
}

static void dev_close(dev *d)
{
    dw_scpi_builtins_free(d->b);
    dw_scpi_status_free(d->st);
}

/* A message through the built-ins alone (errors queued as the engine
 * does): the responses joined with ';'. */
static const char *send(dev *d, const char *msg)
{
    dw_scpi_parser p;
    dw_scpi_unit u;
    dw_buf resp = DW_BUF_INIT;
    dw_scpi_context ctx = {"ACME,SG,1,1.0", 0, NULL, 0};
    dw_scpi_parser_init(&p, (const uint8_t *)msg, strlen(msg));
    int rc;
    while ((rc = dw_scpi_parser_next(&p, &u)) == 1) {
        size_t before = resp.len;
        if (resp.len)
            dw_buf_append_byte(&resp, ';');
        ctx.mav = resp.len > 0;
        int r = dw_scpi_builtin(d->b, d->st, &ctx, &u, &resp, &d->events);
        if (r == 0)
            r = DW_SCPI_E_UNDEFINED_HEADER;
        if (r < 0 || resp.len == before + (before != 0))
            dw_buf_truncate(&resp, before);
        if (r < 0)
            dw_scpi_status_error(d->st, r);
        if (r < 0 && r > -200)
            break;
    }
    if (rc < 0)
        dw_scpi_status_error(d->st, rc);
    snprintf(d->out, sizeof d->out, "%.*s", (int)resp.len, resp.data ? (char *)resp.data : "");
    dw_buf_free(&resp);
    dw_scpi_parser_free(&p);
    return d->out;
}

Test(scpi_status, error_queue_is_fifo_and_reports_no_error_when_empty)
{
    dev d;
    dev_open(&d, 0);
    cr_expect(eq(str, (char *)send(&d, "SYST:ERR?"), "0,\"No error\""));
    send(&d, "BOGUS");
    send(&d, "*ESE 300");
    send(&d, "FREQ 1.2.3");
    cr_expect(eq(str, (char *)send(&d, "SYST:ERR:COUN?"), "3"));
    cr_expect(eq(str, (char *)send(&d, "SYST:ERR?"), "-113,\"Undefined header\""));
    cr_expect(eq(str, (char *)send(&d, "system:error:next?"), "-222,\"Data out of range\""));
    cr_expect(eq(str, (char *)send(&d, ":SYST:ERR?;ERR?"),
                 "-121,\"Invalid character in number\";0,\"No error\""));
    dev_close(&d);
}

Test(scpi_status, a_full_queue_ends_with_queue_overflow)
{
    dev d;
    dev_open(&d, 3);
    for (int i = 0; i < 5; i++)
        send(&d, i == 0 ? "*ESE" : "NOPE");
    cr_expect(eq(str, (char *)send(&d, "SYST:ERR:COUN?"), "3"));
    cr_expect(eq(str, (char *)send(&d, "SYST:ERR?;ERR?;ERR?;ERR?"),
                 "-109,\"Missing parameter\";-113,\"Undefined header\";-350,\"Queue "
                 "overflow\";0,\"No error\""));
    dev_close(&d);
}

Test(scpi_status, esr_bits_by_error_class_and_read_clears)
{
    dev d;
    dev_open(&d, 0);
    cr_expect(eq(str, (char *)send(&d, "*ESR?"), "128"), "power on");
    cr_expect(eq(str, (char *)send(&d, "*ESR?"), "0"), "read and cleared");
    send(&d, "BOGUS");
    cr_expect(eq(str, (char *)send(&d, "*ESR?"), "32"), "-1xx: CME");
    send(&d, "*SRE 256");
    cr_expect(eq(str, (char *)send(&d, "*ESR?"), "16"), "-2xx: EXE");
    dw_scpi_status_error(d.st, -350);
    cr_expect(eq(int, dw_scpi_status_esr(d.st), 8), "-3xx: DDE");
    send(&d, "*ESR?");
    dw_scpi_status_error(d.st, -410);
    cr_expect(eq(int, dw_scpi_status_esr(d.st), 4), "-4xx: QYE");
    send(&d, "*OPC");
    cr_expect(eq(str, (char *)send(&d, "*ESR?"), "5"), "OPC and the earlier QYE");
    dev_close(&d);
}

Test(scpi_status, status_byte_and_enables)
{
    dev d;
    dev_open(&d, 0);
    send(&d, "*ESR?");
    cr_expect(eq(str, (char *)send(&d, "*STB?"), "0"));
    send(&d, "BOGUS");
    cr_expect(eq(str, (char *)send(&d, "*STB?"), "4"), "EAV");
    send(&d, "*ESE 32;*SRE 36");
    cr_expect(eq(str, (char *)send(&d, "*ESE?;*SRE?"), "32;36"));
    cr_expect(eq(str, (char *)send(&d, "*STB?"), "100"), "EAV, ESB and MSS");
    cr_expect(eq(str, (char *)send(&d, "*OPC?;*STB?"), "1;116"), "MAV: a response waits");
    send(&d, "*CLS");
    cr_expect(eq(str, (char *)send(&d, "*STB?;*ESR?;SYST:ERR:COUN?"), "0;0;0"), "*CLS clears");
    cr_expect(eq(str, (char *)send(&d, "*ESE?"), "32"), "*CLS keeps the enables");
    dev_close(&d);
}

Test(scpi_status, common_commands)
{
    dev d;
    dev_open(&d, 0);
    cr_expect(eq(str, (char *)send(&d, "*IDN?;*TST?;*OPC?"), "ACME,SG,1,1.0;0;1"));
    cr_expect(eq(uint, d.events, 0));
    cr_expect(eq(str, (char *)send(&d, "*RST;*WAI"), ""));
    cr_expect(eq(uint, d.events, DW_SCPI_EVENT_RST), "*RST raises its event");
    send(&d, "*ESR?");
    send(&d, "*IDN? 1");
    send(&d, "*ESE ON");
    cr_expect(eq(str, (char *)send(&d, "SYST:ERR?;ERR?"),
                 "-108,\"Parameter not allowed\";-104,\"Data type error\""));
    dev_close(&d);
}
