/* Typed properties (sim/model/props.[ch], sim/script_props.c) through the
 * engine: SCPI set and query forms (long and short, units and
 * multipliers, MIN/MAX/DEF), refused values (the value unchanged, the
 * error queued with its ESR bit), access modes, *RST, commands and
 * "on_error" outside SCPI, ramps over given times, noise bounds, templates
 * and "set" on properties, load errors with their positions. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "script/script.h"

#include "engine_fixture.h"

static const char *const sg =
    "{'profile': 'scpi', 'idn': 'ACME,SG,1,1',"
    " 'properties': {"
    "  'freq': {'type': 'float', 'scpi': '[SOURce:]FREQuency[:CW]', 'unit': 'Hz',"
    "           'min': 9e3, 'max': 6e9, 'default': 1e6},"
    "  'pow': {'type': 'float', 'scpi': '[SOURce:]POWer[:LEVel]', 'unit': 'dBm',"
    "          'min': -130, 'max': 20, 'default': -10, 'format': '%.2f'},"
    "  'outp': {'type': 'bool', 'scpi': 'OUTPut[:STATe]'},"
    "  'trig': {'type': 'enum', 'scpi': 'TRIGger:SOURce', 'values': ['IMMediate', 'BUS', "
    "'EXTernal'], 'default': 'BUS'},"
    "  'count': {'type': 'int', 'scpi': 'SWEep:POINts', 'min': 2, 'max': 1001, 'default': 101},"
    "  'label': {'type': 'string', 'scpi': 'DISPlay:TEXT', 'default': 'hi'},"
    "  'temp': {'type': 'float', 'scpi': 'MEASure:TEMPerature', 'access': 'ro', 'default': 25},"
    "  'key': {'type': 'string', 'scpi': 'SYSTem:KEY', 'access': 'wo'},"
    "  'lev': {'type': 'float', 'scpi': 'LEVel', 'unit': 'V', 'min': 0, 'max': 10, 'default': 1}"
    " }}";

Test(props_scpi, long_and_short_forms_and_default_formats)
{
    fix f;
    fix_open(&f, sg);
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "1.0E+06"), "NR3, the default");
    cr_expect(eq(str, (char *)ask(&f, "SOURCE:FREQUENCY:CW 2.5E6"), ""));
    cr_expect(eq(str, (char *)ask(&f, "sour:freq?"), "2.5E+06"));
    cr_expect(eq(str, (char *)ask(&f, "POW?"), "-10.00"), "the property's format");
    cr_expect(eq(str, (char *)ask(&f, "OUTP ON;:OUTP:STAT?"), "1"));
    cr_expect(eq(str, (char *)ask(&f, "OUTPUT:STATE OFF;STATE?"), "0"), "the path rule");
    cr_expect(eq(str, (char *)ask(&f, "TRIG:SOUR?"), "BUS"));
    cr_expect(eq(str, (char *)ask(&f, "trigger:source immediate;source?"), "IMM"));
    cr_expect(eq(str, (char *)ask(&f, "TRIG:SOUR ext;SOUR?"), "EXT"));
    cr_expect(eq(str, (char *)ask(&f, "SWE:POIN?"), "101"), "NR1");
    cr_expect(eq(str, (char *)ask(&f, "SWE:POIN 200.4;POIN?"), "200"), "an int rounds");
    cr_expect(eq(str, (char *)ask(&f, "DISP:TEXT?"), "\"hi\""), "a string is quoted");
    cr_expect(eq(str, (char *)ask(&f, "DISP:TEXT 'say \"x\"';TEXT?"), "\"say \"\"x\"\"\""));
    cr_expect(eq(str, (char *)ask(&f, "FREQ?;POW?;*IDN?"), "2.5E+06;-10.00;ACME,SG,1,1"),
              "chained with the built-ins");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "0,\"No error\""));
    fix_close(&f);
}

Test(props_scpi, units_multipliers_min_max_def)
{
    fix f;
    fix_open(&f, sg);
    ask(&f, "FREQ 1.5 kHz");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "1.0E+06"), "1.5 kHz is below 9 kHz: refused");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-222,\"Data out of range\""));
    ask(&f, "FREQ 12.5kHz");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "1.25E+04"));
    ask(&f, "FREQ 2.4 GHZ");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "2.4E+09"));
    ask(&f, "FREQ 3 MHZ");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "3.0E+06"), "MHZ is mega");
    ask(&f, "FREQ MIN");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "9.0E+03"));
    ask(&f, "FREQ maximum");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "6.0E+09"));
    ask(&f, "FREQ DEF");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "1.0E+06"));
    cr_expect(eq(str, (char *)ask(&f, "FREQ? MIN;FREQ? MAX;FREQ? DEF"), "9.0E+03;6.0E+09;1.0E+06"));
    ask(&f, "LEV 250mV");
    cr_expect(eq(str, (char *)ask(&f, "LEV?"), "2.5E-01"), "milli");
    ask(&f, "LEV 20us");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-131,\"Invalid suffix\""), "seconds");
    ask(&f, "POW -3.5 dBm");
    cr_expect(eq(str, (char *)ask(&f, "POW?"), "-3.50"));
    ask(&f, "FREQ 5 V");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-131,\"Invalid suffix\""), "not its unit");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "1.0E+06"), "unchanged");
    fix_close(&f);
}

Test(props_scpi, out_of_range_leaves_the_value_and_queues_minus_222_with_exe)
{
    fix f;
    fix_open(&f, sg);
    ask(&f, "*ESR?"); /* PON cleared */
    ask(&f, "FREQ 2e6");
    ask(&f, "FREQ 7e9");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "2.0E+06"), "unchanged");
    cr_expect(eq(str, (char *)ask(&f, "*ESR?"), "16"), "EXE");
    cr_expect(eq(str, (char *)ask(&f, "*STB?"), "4"), "EAV");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-222,\"Data out of range\""));
    ask(&f, "SWE:POIN 1");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-222,\"Data out of range\""));
    cr_expect(eq(str, (char *)ask(&f, "SWE:POIN?"), "101"));
    fix_close(&f);
}

Test(props_scpi, wrong_types_bad_enums_and_parameter_counts)
{
    fix f;
    fix_open(&f, sg);
    ask(&f, "*ESR?");
    ask(&f, "TRIG:SOUR NEVER");
    cr_expect(eq(str, (char *)ask(&f, "TRIG:SOUR?"), "BUS"), "unchanged");
    cr_expect(eq(str, (char *)ask(&f, "*ESR?"), "16"), "EXE");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-224,\"Illegal parameter value\""));
    ask(&f, "FREQ 'fast'");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-104,\"Data type error\""));
    ask(&f, "DISP:TEXT 12");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-104,\"Data type error\""));
    cr_expect(eq(str, (char *)ask(&f, "*ESR?"), "32"), "CME for -104");
    ask(&f, "FREQ");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-109,\"Missing parameter\""));
    ask(&f, "FREQ 1e6,2e6");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-108,\"Parameter not allowed\""));
    ask(&f, "OUTP MAYBE");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-224,\"Illegal parameter value\""));
    ask(&f, "OUTP? 1");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-108,\"Parameter not allowed\""));
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "0,\"No error\""));
    fix_close(&f);
}

Test(props_scpi, read_only_and_write_only)
{
    fix f;
    fix_open(&f, sg);
    cr_expect(eq(str, (char *)ask(&f, "MEAS:TEMP?"), "2.5E+01"));
    ask(&f, "MEAS:TEMP 30");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-113,\"Undefined header\""),
              "a read-only property has no set form");
    cr_expect(eq(str, (char *)ask(&f, "MEAS:TEMP?"), "2.5E+01"));
    ask(&f, "SYST:KEY 'secret'");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "0,\"No error\""));
    cr_expect(eq(str, (char *)ask(&f, "SYST:KEY?"), ""), "a write-only property has no query");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-113,\"Undefined header\""));
    fix_close(&f);
}

Test(props_scpi, rst_restores_defaults_and_engine_reset_too)
{
    fix f;
    fix_open(&f, sg);
    ask(&f, "FREQ 2e6;:POW 5;:OUTP ON;:TRIG:SOUR EXT;:DISP:TEXT 'x'");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?;:POW?;:OUTP?;:TRIG:SOUR?;:DISP:TEXT?"),
                 "2.0E+06;5.00;1;EXT;\"x\""));
    cr_expect(eq(str, (char *)ask(&f, "*RST;FREQ?;:POW?;:OUTP?;:TRIG:SOUR?;:DISP:TEXT?"),
                 "1.0E+06;-10.00;0;BUS;\"hi\""));
    ask(&f, "FREQ 3e6");
    cr_expect(eq(int, dw_sim_engine_reset(f.e, 1), DW_OK));
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "1.0E+06"), "a control reset");
    fix_close(&f);
}

Test(props_scpi, a_rule_overrides_a_property_header)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi', 'properties': {'freq': {'type': 'float', 'scpi': 'FREQuency',"
                 " 'default': 5}},"
                 " 'rules': [{'when': {'scpi': 'FREQuency?'}, 'reply': 'F=${freq}'},"
                 "           {'when': {'scpi': 'HALF', 'params': ['numeric']},"
                 "            'set': {'freq': '$1'}}]}");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "F=5"), "the rule answers; ${freq} prints it");
    ask(&f, "FREQ 7");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "F=7"), "the property still takes the set form");
    ask(&f, "HALF 3.5");
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "F=3.5"), "a rule's set reaches the property");
    fix_close(&f);
}

Test(props_scpi, connection_scope_gives_each_connection_its_own_values)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi', 'scope': 'connection', 'properties': {'v': {'type': 'int',"
                 " 'scpi': 'VALue', 'default': 1}}}");
    dw_sim_session *other = dw_sim_session_new(f.e);
    cr_assert(other != NULL);
    ask(&f, "VAL 5");
    dw_sim_session *mine = f.s;
    f.s = other;
    cr_expect(eq(str, (char *)ask(&f, "VAL?"), "1"), "the other connection keeps its own");
    f.s = mine;
    cr_expect(eq(str, (char *)ask(&f, "VAL?"), "5"));
    dw_sim_session_free(other);
    fix_close(&f);
}

/* 64 aliases of distinct words, each with a short and a long form: the
 * header index once had a fixed size that these filled, and the load never
 * ended. */
Test(props_scpi, sixty_four_aliases_load_and_answer, .timeout = 20)
{
    char text[4096] = "{'profile': 'scpi', 'properties': {'v': {'type': 'int', 'scpi': 'VALue',"
                      " 'default': 1, 'aliases': [";
    for (int i = 0; i < 64; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s'Q%c%cabc'", i ? ", " : "",
                 'A' + i / 26, 'A' + i % 26);
    strcat(text, "]}}}");
    fix f;
    fix_open(&f, text);
    ask(&f, "QCLABC 7");
    cr_expect(eq(str, (char *)ask(&f, "QAA?;:QCL?;:VAL?"), "7;7;7"), "the first, the last");
    cr_expect(eq(str, (char *)errors(&f), ""));
    fix_close(&f);
}

/* ---- other profiles ------------------------------------------------------- */

static const char *const tc =
    "{'properties': {"
    "  'sp': {'type': 'float', 'command': 'SP', 'min': 0, 'max': 200, 'default': 20,"
    "         'ack': 'OK'},"
    "  'mode': {'type': 'enum', 'command': 'MODE', 'values': ['AUTO', 'MANual']},"
    "  'temp': {'type': 'float', 'command': 'TEMP', 'access': 'ro', 'default': 20,"
    "           'format': '%.1f', 'ramp': {'to': 'sp', 'rate': 0.5}}"
    " },"
    " 'rules': [{'when': 'STATUS?', 'reply': 'sp=${sp} temp=${temp} mode=${mode}'}],"
    " 'on_error': {'reply': 'ERR $0'},"
    " 'unmatched': {'reply': '?'}}";

Test(props_text, commands_and_on_error)
{
    fix f;
    fix_open(&f, tc);
    cr_expect(eq(str, (char *)ask(&f, "SP?"), "20"));
    cr_expect(eq(str, (char *)ask(&f, "SP 55.5"), "OK"));
    cr_expect(eq(str, (char *)ask(&f, "SP?"), "55.5"));
    cr_expect(eq(str, (char *)ask(&f, "SP 500"), "ERR SP 500"), "out of range: on_error");
    cr_expect(eq(str, (char *)ask(&f, "SP abc"), "ERR SP abc"), "not a number: on_error");
    cr_expect(eq(str, (char *)ask(&f, "SP?"), "55.5"), "unchanged");
    cr_expect(eq(str, (char *)ask(&f, "MODE man"), ""), "no ack: no reply");
    cr_expect(eq(str, (char *)ask(&f, "MODE?"), "MAN"));
    cr_expect(eq(str, (char *)ask(&f, "MODE OFF"), "ERR MODE OFF"));
    cr_expect(eq(str, (char *)ask(&f, "TEMP 30"), "?"), "read-only: no set form");
    cr_expect(eq(str, (char *)ask(&f, "STATUS?"), "sp=55.5 temp=20.0 mode=MAN"));
    cr_expect(eq(int, f.o.source, DW_SIM_BY_RULE));
    fix_close(&f);
}

Test(props_text, without_on_error_a_refused_value_is_unmatched)
{
    fix f;
    fix_open(&f, "{'properties': {'n': {'type': 'int', 'command': 'N', 'max': 9}},"
                 " 'unmatched': {'reply': 'what?'}}");
    cr_expect(eq(str, (char *)ask(&f, "N 10"), "what?"));
    cr_expect(eq(int, f.o.source, DW_SIM_BY_UNMATCHED));
    cr_expect(eq(str, (char *)ask(&f, "N 4"), ""));
    cr_expect(eq(str, (char *)ask(&f, "N?"), "4"));
    fix_close(&f);
}

/* ---- ramps and noise ----------------------------------------------------------- */

Test(props_time, a_ramp_moves_at_its_rate_over_given_times)
{
    fix f;
    fix_open(&f, tc);
    cr_expect(eq(str, (char *)ask_at(&f, "TEMP?", 100), "20.0"));
    ask_at(&f, "SP 30", 100);
    cr_expect(eq(str, (char *)ask_at(&f, "TEMP?", 100), "20.0"));
    cr_expect(eq(str, (char *)ask_at(&f, "TEMP?", 104), "22.0"), "0.5 per second");
    cr_expect(eq(str, (char *)ask_at(&f, "TEMP?", 110), "25.0"));
    ask_at(&f, "SP 24", 110); /* turn around */
    cr_expect(eq(str, (char *)ask_at(&f, "TEMP?", 111), "24.5"));
    cr_expect(eq(str, (char *)ask_at(&f, "TEMP?", 200), "24.0"), "stops at the set point");
    ask_at(&f, "SP 40", 200);
    ask_at(&f, "SP 24", 210); /* 5 degrees up by now, then down again */
    cr_expect(eq(str, (char *)ask_at(&f, "TEMP?", 210), "29.0"), "the old target until the set");
    cr_expect(eq(str, (char *)ask_at(&f, "TEMP?", 190), "29.0"), "time going back: no move");
    fix_close(&f);
}

static double now_value;
static double test_clock(void *arg)
{
    (void)arg;
    return now_value;
}

Test(props_time, the_engine_clock_feeds_handle)
{
    fix f;
    fix_open(&f, tc);
    dw_sim_engine_set_clock(f.e, test_clock, NULL);
    dw_error err;
    now_value = 50;
    cr_assert(
        eq(int, dw_sim_engine_handle(f.e, f.s, (const uint8_t *)"SP 30", 5, &f.o, &err), DW_OK));
    now_value = 52;
    cr_assert(
        eq(int, dw_sim_engine_handle(f.e, f.s, (const uint8_t *)"TEMP?", 5, &f.o, &err), DW_OK));
    cr_expect(eq(int, strncmp((char *)f.o.bytes.data, "21.0\n", 5), 0), "%.*s", (int)f.o.bytes.len,
              (char *)f.o.bytes.data);
    fix_close(&f);
}

static void noise_bounds(const char *dist, double amp, double *lo, double *hi, double *mean)
{
    char text[512];
    snprintf(text, sizeof text,
             "{'profile': 'scpi', 'properties': {'v': {'type': 'float', 'scpi': 'MEAS:VOLT',"
             " 'access': 'ro', 'default': 5, 'format': '%%.9f',"
             " 'noise': {'amplitude': %g, 'distribution': '%s'}}}}",
             amp, dist);
    fix f;
    fix_open(&f, text);
    dw_sim_engine_seed(f.e, 42);
    *lo = INFINITY, *hi = -INFINITY, *mean = 0;
    for (int i = 0; i < 2000; i++) {
        double x = strtod(ask(&f, "MEAS:VOLT?"), NULL);
        *lo = x < *lo ? x : *lo;
        *hi = x > *hi ? x : *hi;
        *mean += x / 2000;
    }
    fix_close(&f);
}

Test(props_time, noise_stays_in_its_bounds_and_varies)
{
    double lo, hi, mean;
    noise_bounds("uniform", 0.01, &lo, &hi, &mean);
    cr_expect(lo >= 4.99 && hi <= 5.01, "uniform within +-amplitude: [%g, %g]", lo, hi);
    cr_expect(hi - lo > 0.015, "it varies: [%g, %g]", lo, hi);
    cr_expect(fabs(mean - 5) < 0.002, "around the value: %g", mean);
    noise_bounds("normal", 0.01, &lo, &hi, &mean);
    cr_expect(lo >= 4.96 && hi <= 5.04, "normal clipped at 4 sigma: [%g, %g]", lo, hi);
    cr_expect(hi - lo > 0.03, "it varies: [%g, %g]", lo, hi);
    cr_expect(fabs(mean - 5) < 0.002, "around the value: %g", mean);
}

Test(props_time, the_seed_repeats_the_noise)
{
    const char *text = "{'profile': 'scpi', 'properties': {'v': {'type': 'float', 'scpi': 'V',"
                       " 'noise': {'amplitude': 1}}}}";
    char a[512], b[512]; /* as large as an answer (the fixture's buffer) */
    fix f;
    fix_open(&f, text);
    dw_sim_engine_seed(f.e, 7);
    snprintf(a, sizeof a, "%s", ask(&f, "V?;V?"));
    dw_sim_engine_seed(f.e, 7);
    snprintf(b, sizeof b, "%s", ask(&f, "V?;V?"));
    cr_expect(eq(str, a, b));
    dw_sim_engine_seed(f.e, 8);
    cr_expect(ne(str, a, (char *)ask(&f, "V?;V?")));
    fix_close(&f);
}

/* ---- the typed API ------------------------------------------------------------ */

Test(props_api, find_get_set_by_name)
{
    fix f;
    fix_open(&f, sg);
    dw_sim_props_state *st = dw_sim_session_props(f.s);
    size_t i = dw_sim_prop_find(f.script->props, "freq", 4);
    cr_assert(ne(sz, i, SIZE_MAX));
    cr_expect(eq(sz, dw_sim_prop_find(f.script->props, "nope", 4), SIZE_MAX));
    dw_sim_prop_value v;
    dw_sim_prop_get(st, i, 0, &v);
    cr_expect(eq(int, v.type, DW_SIM_PROP_FLOAT));
    cr_expect(eq(dbl, v.num, 1e6));
    dw_sim_prop_value nv = {DW_SIM_PROP_FLOAT, 7e9, NULL, 0};
    cr_expect(eq(int, dw_sim_prop_set(st, i, &nv, 0), DW_SCPI_E_OUT_OF_RANGE));
    nv.num = 3e6;
    cr_expect(eq(int, dw_sim_prop_set(st, i, &nv, 0), 0));
    cr_expect(eq(str, (char *)ask(&f, "FREQ?"), "3.0E+06"));
    size_t t = dw_sim_prop_find(f.script->props, "trig", 4);
    dw_sim_prop_value ev = {DW_SIM_PROP_ENUM, 3, NULL, 0};
    cr_expect(eq(int, dw_sim_prop_set(st, t, &ev, 0), DW_SCPI_E_ILLEGAL_VALUE));
    ev.num = 2;
    cr_expect(eq(int, dw_sim_prop_set(st, t, &ev, 0), 0));
    cr_expect(eq(int, dw_sim_prop_set(st, t, &nv, 0), DW_SCPI_E_DATA_TYPE));
    cr_expect(eq(str, (char *)ask(&f, "TRIG:SOUR?"), "EXT"));
    fix_close(&f);
}

/* ---- load errors ------------------------------------------------------------------ */

typedef struct bad {
    const char *script;
    const char *message;
} bad;

static void expect_refused(const bad *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *t = dq(cases[i].script);
        dw_sim_script *s = NULL;
        dw_error err;
        int rc = dw_sim_script_load_buffer("t.json", t, strlen(t), &s, &err);
        free(t);
        cr_expect(eq(int, rc, DW_ESCRIPT), "%s", cases[i].script);
        cr_expect(s == NULL);
        cr_expect(eq(str, err.message, (char *)cases[i].message), "%s", cases[i].script);
        dw_sim_script_free(s);
    }
}

Test(props_load, errors_name_the_place)
{
    static const bad cases[] = {
        {"{'properties': {'freq': {'type': 'float', 'min': 'low'}}}",
         "t.json:1:50: properties.freq.min: expected a number"},
        {"{'properties': {'freq': {'type': 'float',\n 'min': 10, 'max': 1}}}",
         "t.json:2:20: properties.freq.max: max (1) is less than min (10)"},
        {"{'properties': {'freq': {'type': 'float', 'min': 0, 'max': 1, 'default': 2}}}",
         "t.json:1:74: properties.freq.default: 2 is out of range [0, 1]"},
        {"{'properties': {'freq': {'type': 'double'}}}",
         "t.json:1:34: properties.freq.type: unknown value \"double\" (expected \"float\", "
         "\"int\", \"bool\", \"enum\" or \"string\")"},
        {"{'properties': {'freq': {'type': 'float', 'mni': 0}}}",
         "t.json:1:43: properties.freq.mni: unknown key (did you mean \"min\"?)"},
        {"{'properties': {'n': {'type': 'int', 'default': 1.5}}}",
         "t.json:1:49: properties.n.default: expected a whole number (the property is an "
         "\"int\")"},
        {"{'properties': {'m': {'type': 'enum'}}}",
         "t.json:1:22: properties.m: an \"enum\" needs \"values\""},
        {"{'properties': {'m': {'type': 'enum', 'values': ['AUTO', 'manUAL']}}}",
         "t.json:1:59: properties.m.values[1]: a choice starts with its short form in upper case"},
        {"{'properties': {'m': {'type': 'enum', 'values': ['AUTO'], 'default': 'MAN'}}}",
         "t.json:1:70: properties.m.default: expected one of the choices (\"AUTO\")"},
        {"{'properties': {'b': {'type': 'bool', 'min': 0}}}",
         "t.json:1:39: properties.b.min: only for a \"float\" or \"int\" property"},
        {"{'state': {'freq': 1}, 'properties': {'freq': {'type': 'float'}}}",
         "t.json:1:39: properties.freq: \"freq\" is also a variable in \"state\" (properties and "
         "variables share one namespace)"},
        {"{'properties': {'f': {'type': 'float', 'scpi': 'FREQ'}}}",
         "t.json:1:40: properties.f.scpi: a SCPI header needs \"profile\": \"scpi\""},
        {"{'profile': 'scpi', 'properties': {'f': {'type': 'float', 'scpi': 'FREQ?'}}}",
         "t.json:1:72: properties.f.scpi: write the header without '?': it gives both the set "
         "and the query form"},
        {"{'profile': 'scpi', 'properties': {'f': {'type': 'float', 'scpi': 'FREQ[:CW'}}}",
         "t.json:1:76: properties.f.scpi: bad SCPI header: unclosed '['"},
        {"{'properties': {'f': {'type': 'float', 'format': '%d'}}}",
         "t.json:1:51: properties.f.format: expected one conversion of e, f, g or a for a "
         "\"float\""},
        {"{'properties': {'v': {'type': 'float', 'ramp': {'to': 'volt', 'rate': 1}}}}",
         "t.json:1:55: properties.v.ramp.to: no property \"volt\""},
        {"{'properties': {'volt': {'type': 'float'}, 'v': {'type': 'float', 'ramp': {'to': "
         "'vlot', 'rate': 1}}}}",
         "t.json:1:82: properties.v.ramp.to: no property \"vlot\" (did you mean \"volt\"?)"},
        {"{'properties': {'volt': {'type': 'float'}, 'v': {'type': 'float', 'ramp': {'to': "
         "'volt', 'rate': 0}}}}",
         "t.json:1:98: properties.v.ramp.rate: expected a positive number (units per second)"},
        {"{'properties': {'v': {'type': 'float', 'noise': {'amplitude': 1, 'distribution': "
         "'gauss'}}}}",
         "t.json:1:82: properties.v.noise.distribution: unknown value \"gauss\" (expected "
         "\"none\", \"uniform\" or \"normal\")"},
        {"{'rules': [{'when': 'X', 'reply': '${fre}'}], 'properties': {'freq': {'type': "
         "'float'}}}",
         "t.json:1:36: rules[0].reply: unknown variable \"${fre}\" (did you mean \"${freq}\"?)"},
        {"{'profile': 'scpi', 'on_error': {'reply': 'E'}}",
         "t.json:1:21: on_error: not with the SCPI profile (a refused value queues its error)"},
    };
    expect_refused(cases, sizeof cases / sizeof cases[0]);
}
