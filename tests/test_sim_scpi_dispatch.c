/* The SCPI profile's dispatch of a program message unit among its
 * candidates (the next step, the rules, the properties, the built-ins):
 * the first that accepts the unit handles it and queues only its own
 * errors; when none accepts, the most specific refusal is queued. Then
 * the conformance items around it: indefinite responses (-440), the
 * mnemonic length (-112), optional suffixes, INF/NINF/NAN, string
 * choices, aliases and a rule's "error". */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "script/script.h"

#include "engine_fixture.h"

/* ---- a rule and a property on one header ----------------------------------- */

static const char *const azero =
    "{'profile': 'scpi', 'state': {'once': 0},"
    " 'properties': {'az': {'type': 'bool', 'scpi': 'SYSTem:AZERo[:STATe]'}},"
    " 'rules': [{'when': {'scpi': 'SYSTem:AZERo[:STATe]', 'params': ['ONCE']},"
    "            'set': {'once': '1'}}]}";

Test(dispatch, a_rule_sharing_a_header_leaves_the_property_alone)
{
    fix f;
    fix_open(&f, azero);
    ask(&f, "SYST:AZER 1");
    cr_expect(eq(str, (char *)ask(&f, "SYST:AZER?"), "1"));
    cr_expect(eq(str, (char *)errors(&f), ""), "the rule refused 1, the property took it");
    ask(&f, "SYST:AZER OFF");
    cr_expect(eq(str, (char *)ask(&f, "SYST:AZER?"), "0"));
    cr_expect(eq(str, (char *)errors(&f), ""), "OFF is the property's, not -224 of the rule");
    cr_expect(eq(str, (char *)ask(&f, "SYST:AZER 1;:SYST:AZER?"), "1"), "the message goes on");
    cr_expect(eq(str, (char *)errors(&f), ""));
    ask(&f, "SYST:AZER ONCE");
    cr_expect(eq(str, (char *)errors(&f), ""), "the rule took ONCE");
    cr_expect(eq(str, (char *)ask(&f, "SYST:AZER?"), "1"), "and the property kept its value");
    fix_close(&f);
}

Test(dispatch, when_none_accepts_the_most_specific_refusal_is_queued)
{
    fix f;
    fix_open(&f, azero);
    ask(&f, "SYST:AZER 'x'");
    cr_expect(eq(str, (char *)errors(&f), "-104,\"Data type error\""), "a type error of both");
    ask(&f, "SYST:AZER TWICE");
    cr_expect(eq(str, (char *)errors(&f), "-224,\"Illegal parameter value\""),
              "a value both refuse: one error, not one per candidate");
    ask(&f, "SYST:AZER");
    cr_expect(eq(str, (char *)errors(&f), "-109,\"Missing parameter\""));
    ask(&f, "SYST:AZER 1,2");
    cr_expect(eq(str, (char *)errors(&f), "-108,\"Parameter not allowed\""));
    fix_close(&f);
    /* The value error of a later candidate is more specific than the
     * first one's type error. */
    fix_open(&f, "{'profile': 'scpi', 'state': {'x': 0},"
                 " 'properties': {'freq': {'type': 'float', 'scpi': 'FREQuency', 'max': 10}},"
                 " 'rules': [{'when': {'scpi': 'FREQuency', 'params': ['string']},"
                 "            'set': {'x': '$1'}}]}");
    ask(&f, "FREQ 20");
    cr_expect(eq(str, (char *)errors(&f), "-222,\"Data out of range\""));
    ask(&f, "FREQ 'a'");
    cr_expect(eq(str, (char *)errors(&f), ""), "the rule took the string");
    ask(&f, "FREQ ON");
    cr_expect(eq(str, (char *)errors(&f), "-104,\"Data type error\""));
    fix_close(&f);
    /* ... and the value error of an earlier one beats a later type error. */
    fix_open(&f, "{'profile': 'scpi', 'state': {'x': 0},"
                 " 'properties': {'lvl': {'type': 'float', 'scpi': 'LEVel'}},"
                 " 'rules': [{'when': {'scpi': 'LEVel', 'params': ['ONCE']},"
                 "            'set': {'x': '1'}}]}");
    ask(&f, "LEV TWICE");
    cr_expect(eq(str, (char *)errors(&f), "-224,\"Illegal parameter value\""),
              "character data the rule refuses by value, the property by type");
    ask(&f, "LEV 2;LEV ONCE;LEV?");
    cr_expect(eq(str, (char *)errors(&f), ""));
    cr_expect(eq(str, (char *)ask(&f, "LEV?"), "2.0E+00"));
    fix_close(&f);
}

Test(dispatch, two_rules_overloading_a_header_still_work)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi', 'state': {'f': 0},"
                 " 'rules': [{'when': {'scpi': 'FREQuency', 'params': ['MINimum']},"
                 "            'set': {'f': 'min'}},"
                 "           {'when': {'scpi': 'FREQuency', 'params': ['numeric']},"
                 "            'set': {'f': '$1'}},"
                 "           {'when': {'scpi': 'FREQuency?'}, 'reply': '${f}'}]}");
    cr_expect(eq(str, (char *)ask(&f, "FREQ MIN;FREQ?"), "min"));
    cr_expect(eq(str, (char *)ask(&f, "FREQ 5;FREQ?"), "5"));
    cr_expect(eq(str, (char *)errors(&f), ""));
    ask(&f, "FREQ 'x'");
    cr_expect(eq(str, (char *)errors(&f), "-104,\"Data type error\""));
    fix_close(&f);
}

/* ---- numeric suffixes ------------------------------------------------------ */

Test(dispatch, a_rule_with_a_suffix_leaves_other_headers_alone)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi',"
                 " 'properties': {'f1': {'type': 'float', 'scpi': 'SOURce1:FREQuency',"
                 "                       'default': 1},"
                 "                'f2': {'type': 'float', 'scpi': 'SOURce2:FREQuency',"
                 "                       'default': 2}},"
                 " 'rules': [{'when': {'scpi': 'SOURce1:DATA?'}, 'reply': 'D'}]}");
    cr_expect(eq(str, (char *)ask(&f, "SOUR2:FREQ?"), "2.0E+00"));
    cr_expect(eq(str, (char *)errors(&f), ""), "SOURce1:DATA? is not SOUR2:FREQ?");
    cr_expect(eq(str, (char *)ask(&f, "SOUR1:DATA?;:SOUR:FREQ?"), "D;1.0E+00"));
    cr_expect(eq(str, (char *)errors(&f), ""));
    ask(&f, "SOUR3:DATA?");
    cr_expect(eq(str, (char *)errors(&f), "-114,\"Header suffix out of range\""),
              "a header that fits but for its suffix");
    ask(&f, "SOUR3:NONE?");
    cr_expect(eq(str, (char *)errors(&f), "-113,\"Undefined header\""));
    fix_close(&f);
}

/* ---- indefinite responses ---------------------------------------------------- */

Test(conformance, no_query_after_an_indefinite_response)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi', 'idn': 'ACME,X,1,1', 'state': {'n': 0},"
                 " 'rules': [{'when': {'scpi': 'TRACe?'}, 'reply': '#0abc'},"
                 "           {'when': {'scpi': 'DATA?'}, 'reply': '#13abc'},"
                 "           {'when': {'scpi': 'COUNt'}, 'set': {'n': '1'}},"
                 "           {'when': {'scpi': 'COUNt?'}, 'reply': '${n}'}]}");
    ask(&f, "*ESR?"); /* PON cleared */
    cr_expect(eq(str, (char *)ask(&f, "*IDN?;*OPC?"), "ACME,X,1,1"), "*IDN? ends the answers");
    cr_expect(eq(str, (char *)errors(&f), "-440,\"Query UNTERMINATED after indefinite response\""));
    cr_expect(eq(str, (char *)ask(&f, "*ESR?"), "4"), "QYE");
    cr_expect(eq(str, (char *)ask(&f, "*OPC?;*IDN?"), "1;ACME,X,1,1"), "last is fine");
    cr_expect(eq(str, (char *)ask(&f, "*IDN?;:COUNt;:COUNt?;:COUNt"), "ACME,X,1,1"),
              "a command after it runs, the query does not, nor the rest");
    cr_expect(eq(str, (char *)ask(&f, "COUN?"), "1"));
    cr_expect(eq(str, (char *)errors(&f), "-440,\"Query UNTERMINATED after indefinite response\""));
    cr_expect(eq(str, (char *)ask(&f, "TRAC?;*OPC?"), "#0abc"), "an indefinite block");
    cr_expect(eq(str, (char *)errors(&f), "-440,\"Query UNTERMINATED after indefinite response\""));
    cr_expect(eq(str, (char *)ask(&f, "DATA?;*OPC?"), "#13abc;1"), "a definite block is not");
    cr_expect(eq(str, (char *)errors(&f), ""));
    fix_close(&f);
}

/* ---- header notation --------------------------------------------------------- */

Test(conformance, the_manuals_optional_single_suffix_loads)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi', 'properties': {'f': {'type': 'float',"
                 " 'scpi': '[SOURce[1]:]FREQuency', 'default': 3}}}");
    cr_expect(
        eq(str, (char *)ask(&f, "SOUR1:FREQ?;:SOUR:FREQ?;:FREQ?"), "3.0E+00;3.0E+00;3.0E+00"));
    ask(&f, "SOUR2:FREQ?");
    cr_expect(eq(str, (char *)errors(&f), "-114,\"Header suffix out of range\""));
    fix_close(&f);
}

/* ---- INF, NINF, NAN ------------------------------------------------------------ */

Test(conformance, inf_ninf_and_nan_where_the_range_allows)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi', 'state': {'x': ''},"
                 " 'properties': {'lim': {'type': 'float', 'scpi': 'LIMit', 'default': 1},"
                 "                'pos': {'type': 'float', 'scpi': 'POSitive', 'min': 0},"
                 "                'rng': {'type': 'float', 'scpi': 'RANGe', 'min': 0, 'max': 10},"
                 "                'cnt': {'type': 'int', 'scpi': 'COUNt'}},"
                 " 'rules': [{'when': {'scpi': 'NUMber', 'params': ['numeric']},"
                 "            'set': {'x': '$1'}},"
                 "           {'when': {'scpi': 'NUMber?'}, 'reply': '${x}'}]}");
    cr_expect(eq(str, (char *)ask(&f, "LIM INF;LIM?"), "9.9E+37"));
    cr_expect(eq(str, (char *)ask(&f, "LIM ninf;LIM?"), "-9.9E+37"));
    cr_expect(eq(str, (char *)ask(&f, "LIM NAN;LIM?"), "9.91E+37"));
    cr_expect(eq(str, (char *)ask(&f, "POS INF;POS?"), "9.9E+37"), "no max: INF fits");
    cr_expect(eq(str, (char *)errors(&f), ""));
    ask(&f, "POS NINF");
    cr_expect(eq(str, (char *)errors(&f), "-222,\"Data out of range\""), "below its min");
    ask(&f, "RANG INF");
    cr_expect(eq(str, (char *)errors(&f), "-222,\"Data out of range\""), "beyond its max");
    cr_expect(eq(str, (char *)ask(&f, "RANG?"), "0.0E+00"), "unchanged");
    ask(&f, "COUN INF");
    cr_expect(eq(str, (char *)errors(&f), "-222,\"Data out of range\""), "an int's range");
    ask(&f, "LIM INFINITY");
    cr_expect(eq(str, (char *)errors(&f), "-104,\"Data type error\""), "no other word");
    cr_expect(eq(str, (char *)ask(&f, "NUM INF;NUM?"), "INF"), "a numeric parameter of a rule");
    fix_close(&f);
}

/* ---- string choices and aliases ------------------------------------------------ */

Test(conformance, a_string_with_choices_takes_only_those)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi', 'state': {'x': 0},"
                 " 'properties': {'src': {'type': 'string', 'scpi': 'ROUTe:SOURce',"
                 "                        'choices': ['Ch1', 'Ch2', 'EXT in']},"
                 "                'lab': {'type': 'string', 'scpi': 'LABel',"
                 "                        'choices': ['a', 'b'], 'default': 'B'}},"
                 " 'rules': [{'when': 'SETX', 'set': {'src': 'ch2'}}]}");
    cr_expect(eq(str, (char *)ask(&f, "ROUT:SOUR?;:LAB?"), "\"Ch1\";\"b\""),
              "the first choice, or the default as the choices write it");
    cr_expect(eq(str, (char *)ask(&f, "ROUT:SOUR 'ext IN';SOUR?"), "\"EXT in\""),
              "any case, kept as written in the script");
    ask(&f, "ROUT:SOUR 'ch3'");
    cr_expect(eq(str, (char *)errors(&f), "-224,\"Illegal parameter value\""));
    cr_expect(eq(str, (char *)ask(&f, "ROUT:SOUR?"), "\"EXT in\""), "unchanged");
    ask(&f, "ROUT:SOUR CH1");
    cr_expect(eq(str, (char *)errors(&f), "-104,\"Data type error\""), "still a string");
    ask(&f, "SETX");
    cr_expect(eq(str, (char *)ask(&f, "ROUT:SOUR?"), "\"Ch2\""), "a rule's set is checked too");
    fix_close(&f);
}

Test(conformance, aliases_reach_the_same_value)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi',"
                 " 'properties': {'volt': {'type': 'float', 'scpi': '[SOURce:]VOLTage[:LEVel]',"
                 "                         'aliases': ['APPLy:VOLTage', 'VSET<n>'], 'max': 30}}}");
    ask(&f, "APPL:VOLT 5");
    cr_expect(eq(str, (char *)ask(&f, "VOLT?;:VSET1?"), "5.0E+00;5.0E+00"));
    ask(&f, "VSET 7");
    cr_expect(eq(str, (char *)ask(&f, "SOUR:VOLT:LEV?"), "7.0E+00"));
    ask(&f, "APPL:VOLT 40");
    cr_expect(eq(str, (char *)errors(&f), "-222,\"Data out of range\""), "the same checks");
    fix_close(&f);
}

typedef struct bad {
    const char *script;
    const char *message;
} bad;

Test(conformance, choices_and_aliases_load_errors)
{
    static const bad cases[] = {
        {"{'properties': {'s': {'type': 'float', 'choices': ['a']}}}",
         "t.json:1:40: properties.s.choices: only for a \"string\" property (an \"enum\" has "
         "\"values\")"},
        {"{'properties': {'s': {'type': 'string', 'choices': ['a', 'A']}}}",
         "t.json:1:58: properties.s.choices[1]: a choice twice (choices are matched ignoring "
         "case)"},
        {"{'properties': {'s': {'type': 'string', 'choices': []}}}",
         "t.json:1:52: properties.s.choices: expected a list such as [\"CH1\", \"CH2\"]"},
        {"{'properties': {'s': {'type': 'string', 'choices': ['a'], 'default': 'c'}}}",
         "t.json:1:70: properties.s.default: expected one of the choices"},
        {"{'profile': 'scpi', 'properties': {'v': {'type': 'float', 'aliases': ['V']}}}",
         "t.json:1:59: properties.v.aliases: only with \"scpi\""},
        {"{'profile': 'scpi', 'properties': {'v': {'type': 'float', 'scpi': 'V',"
         " 'aliases': ['X[']}}}",
         "t.json:1:87: properties.v.aliases[0]: bad SCPI header: expected a mnemonic"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = dq(cases[i].script);
        dw_sim_script *s = NULL;
        dw_error err;
        int rc = dw_sim_script_load_buffer("t.json", t, strlen(t), &s, &err);
        free(t);
        cr_expect(eq(int, rc, DW_ESCRIPT), "%s", cases[i].script);
        cr_expect(eq(str, err.message, (char *)cases[i].message), "%s", cases[i].script);
        dw_sim_script_free(s);
    }
}

/* ---- a rule's "error" ------------------------------------------------------------ */

Test(conformance, a_rule_queues_its_error)
{
    fix f;
    fix_open(&f, "{'profile': 'scpi', 'state': {'load': 1},"
                 " 'rules': [{'when': {'regex': '^SIM:LOAD -'}, 'error': -222},"
                 "           {'when': {'scpi': 'SIMulate:LOAD', 'params': ['numeric']},"
                 "            'set': {'load': '$1'}},"
                 "           {'when': {'scpi': 'SIMulate:LOAD?'}, 'reply': '${load}'},"
                 "           {'when': {'scpi': 'SIMulate:BUSY?'}, 'reply': '1',"
                 "            'error': {'code': 201, 'message': 'Busy, say \\\"later\\\"'}},"
                 "           {'when': {'scpi': 'SIMulate:BAD'}, 'error': -100}]}");
    ask(&f, "*ESR?");
    ask(&f, "SIM:LOAD -5");
    cr_expect(eq(str, (char *)ask(&f, "SIM:LOAD?"), "1"), "refused, unchanged");
    cr_expect(eq(str, (char *)ask(&f, "*ESR?"), "16"), "EXE");
    cr_expect(eq(str, (char *)errors(&f), "-222,\"Data out of range\""));
    cr_expect(eq(str, (char *)ask(&f, "SIM:LOAD 5;LOAD?"), "5"));
    cr_expect(eq(str, (char *)ask(&f, "SIM:BUSY?;*OPC?"), "1;1"),
              "the reply, then the message goes on");
    cr_expect(eq(str, (char *)errors(&f), "201,\"Busy, say \"\"later\"\"\""), "its own text");
    cr_expect(eq(str, (char *)ask(&f, "SIM:BAD;*OPC?"), ""), "a command error drops the rest");
    cr_expect(eq(str, (char *)errors(&f), "-100,\"Command error\""));
    fix_close(&f);
}

Test(conformance, a_rules_error_load_errors)
{
    static const bad cases[] = {
        {"{'rules': [{'when': 'X', 'error': -222}]}",
         "t.json:1:26: rules[0].error: only with \"profile\": \"scpi\" (its error queue)"},
        {"{'profile': 'scpi', 'rules': [{'when': 'X', 'error': 0}]}",
         "t.json:1:54: rules[0].error: expected a SCPI error number (-32768 to 32767, not 0), or "
         "{\"code\": N, \"message\": \"text\"}"},
        {"{'profile': 'scpi', 'rules': [{'when': 'X', 'error': {'code': 1.5}}]}",
         "t.json:1:63: rules[0].error.code: expected a SCPI error number (-32768 to 32767, not "
         "0), or {\"code\": N, \"message\": \"text\"}"},
        {"{'profile': 'scpi', 'rules': [{'when': 'X', 'error': {'message': 'x'}}]}",
         "t.json:1:54: rules[0].error: missing \"code\""},
        {"{'profile': 'scpi', 'rules': [{'when': 'X', 'error': {'code': 1, 'message': 2}}]}",
         "t.json:1:77: rules[0].error.message: expected a string of at most 255 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = dq(cases[i].script);
        dw_sim_script *s = NULL;
        dw_error err;
        int rc = dw_sim_script_load_buffer("t.json", t, strlen(t), &s, &err);
        free(t);
        cr_expect(eq(int, rc, DW_ESCRIPT), "%s", cases[i].script);
        cr_expect(eq(str, err.message, (char *)cases[i].message), "%s", cases[i].script);
        dw_sim_script_free(s);
    }
}
