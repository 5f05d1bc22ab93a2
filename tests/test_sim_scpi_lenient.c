/* The SCPI profile's non-standard, opt-in leniency for a client that
 * writes strings unquoted and chains headers loosely: "strings": "bare"
 * (character data taken as a string's text, as written) and "path":
 * "lenient" (a header that fits nothing under the current path tried
 * again from the root before -113). Each is off by default, and then the
 * standard refusal stands. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "script/script.h"

#include "engine_fixture.h"

/* A script of `body` with the profile `profile` (an object's members, ""
 * for the standard one). */
static void open_profile(fix *f, const char *profile, const char *body)
{
    char text[2048];
    snprintf(text, sizeof text, "{'profile': {'type': 'scpi'%s%s}, %s}", *profile ? ", " : "",
             profile, body);
    fix_open(f, text);
}

/* ---- "strings": "bare" ------------------------------------------------------- */

static const char *const strs =
    "'state': {'name': ''},"
    " 'properties': {'s1': {'type': 'string', 'scpi': 'STRing1', 'default': 'x'},"
    "                'mode': {'type': 'enum', 'scpi': 'MODE', 'values': ['FAST', 'SLOW']}},"
    " 'rules': [{'when': {'scpi': 'NAME', 'params': ['string']}, 'set': {'name': '$1'}},"
    "           {'when': {'scpi': 'NAME?'}, 'reply': '${name}'}]";

Test(lenient, bare_strings_take_character_data_as_written)
{
    fix f;
    open_profile(&f, "'strings': 'bare'", strs);
    ask(&f, "STR1 hello");
    cr_expect(eq(str, (char *)ask(&f, "STR1?"), "\"hello\""), "the text as written, not HELLO");
    cr_expect(eq(str, (char *)errors(&f), ""));
    ask(&f, "STR1 'Quoted text'");
    cr_expect(eq(str, (char *)ask(&f, "STR1?"), "\"Quoted text\""), "quoted strings still work");
    ask(&f, "NAME Probe_2");
    cr_expect(eq(str, (char *)ask(&f, "NAME?"), "Probe_2"), "a rule's string parameter too");
    ask(&f, "NAME \"two words\"");
    cr_expect(eq(str, (char *)ask(&f, "NAME?"), "two words"));
    ask(&f, "MODE slow");
    cr_expect(eq(str, (char *)ask(&f, "MODE?"), "SLOW"), "other types are as before");
    cr_expect(eq(str, (char *)errors(&f), ""));
    ask(&f, "STR1 42");
    cr_expect(eq(str, (char *)errors(&f), "-104,\"Data type error\""), "a number is no string");
    cr_expect(eq(str, (char *)ask(&f, "STR1?"), "\"Quoted text\""));
    fix_close(&f);
}

Test(lenient, quoted_strings_are_the_standard)
{
    static const char *const profiles[] = {"", "'strings': 'quoted'"};
    for (size_t i = 0; i < 2; i++) {
        fix f;
        open_profile(&f, profiles[i], strs);
        ask(&f, "STR1 hello");
        cr_expect(eq(str, (char *)errors(&f), "-104,\"Data type error\""), "%s", profiles[i]);
        cr_expect(eq(str, (char *)ask(&f, "STR1?"), "\"x\""), "unchanged");
        ask(&f, "NAME hello");
        cr_expect(eq(str, (char *)errors(&f), "-104,\"Data type error\""), "%s", profiles[i]);
        ask(&f, "STR1 'hello'");
        cr_expect(eq(str, (char *)ask(&f, "STR1?"), "\"hello\""));
        cr_expect(eq(str, (char *)errors(&f), ""));
        fix_close(&f);
    }
}

/* ---- "path": "lenient" -------------------------------------------------------- */

static const char *const tree = "'properties': {'c': {'type': 'int', 'scpi': 'AA:BB:CC'},"
                                "               'cd': {'type': 'int', 'scpi': 'AA:BB:DD'},"
                                "               'd': {'type': 'int', 'scpi': 'DD'},"
                                "               'e': {'type': 'int', 'scpi': 'EE'}}";

Test(lenient, a_lenient_path_tries_the_root)
{
    fix f;
    open_profile(&f, "'path': 'lenient'", tree);
    ask(&f, "AA:BB:CC 1;EE 2");
    cr_expect(eq(str, (char *)errors(&f), ""), "EE is not under AA:BB: the root's");
    cr_expect(eq(str, (char *)ask(&f, "AA:BB:CC?;EE?"), "1;2"));
    ask(&f, "AA:BB:CC 3;DD 4");
    cr_expect(eq(str, (char *)ask(&f, ":AA:BB:DD?;:DD?"), "4;0"),
              "a header that fits under the path stays there");
    ask(&f, "AA:BB:CC 5;EE 6;DD 7");
    cr_expect(eq(str, (char *)ask(&f, "EE?;:DD?;:AA:BB:DD?"), "6;7;4"),
              "after a unit taken from the root, the path is the root's");
    cr_expect(eq(str, (char *)errors(&f), ""));
    ask(&f, "AA:BB:CC 8;FF 9;EE 10");
    cr_expect(eq(str, (char *)errors(&f), "-113,\"Undefined header\""), "nowhere: still -113");
    cr_expect(eq(str, (char *)ask(&f, "EE?"), "6"), "and the rest dropped");
    fix_close(&f);
}

Test(lenient, a_header_whose_lua_failed_is_not_tried_from_the_root)
{
    fix f;
    open_profile(&f, "'path': 'lenient'",
                 "'properties': {'c': {'type': 'int', 'scpi': 'AA:BB:CC'},"
                 "               'e': {'type': 'int', 'scpi': 'EE'}},"
                 " 'rules': [{'when': {'scpi': 'AA:BB:EE?'}, 'reply': {'lua': 'nil'}}]");
    cr_expect(eq(str, (char *)ask(&f, "AA:BB:CC 1;EE?"), ""), "AA:BB:EE? fitted: not the root's");
    cr_expect(eq(str, (char *)errors(&f), "-113,\"Undefined header\""));
    cr_expect(eq(str, (char *)ask(&f, "AA:BB:CC 1;:EE?"), "0"));
    fix_close(&f);
}

Test(lenient, the_standard_path_refuses)
{
    static const char *const profiles[] = {"", "'path': 'standard'"};
    for (size_t i = 0; i < 2; i++) {
        fix f;
        open_profile(&f, profiles[i], tree);
        ask(&f, "AA:BB:CC 1;EE 2");
        cr_expect(eq(str, (char *)errors(&f), "-113,\"Undefined header\""), "%s", profiles[i]);
        cr_expect(eq(str, (char *)ask(&f, "AA:BB:CC?;:EE?"), "1;0"), "EE unchanged");
        ask(&f, "AA:BB:CC 1;:EE 2");
        cr_expect(eq(str, (char *)ask(&f, "EE?"), "2"), "the standard way");
        cr_expect(eq(str, (char *)errors(&f), ""));
        fix_close(&f);
    }
}

/* ---- loading ------------------------------------------------------------------- */

Test(lenient, the_options_are_checked)
{
    static const char *const bad[][2] = {
        {"{'profile': {'type': 'scpi', 'strings': 'loose'}}", "profile.strings"},
        {"{'profile': {'type': 'scpi', 'path': 'root'}}", "profile.path"},
        {"{'profile': {'type': 'none', 'strings': 'bare'}}", "only with"},
        {"{'profile': {'type': 'none', 'path': 'lenient'}}", "only with"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = dq(bad[i][0]);
        dw_sim_script *s = NULL;
        dw_error err;
        cr_expect(eq(int, dw_sim_script_load_buffer("t.json", t, strlen(t), &s, &err), DW_ESCRIPT),
                  "%s", bad[i][0]);
        cr_expect(strstr(err.message, bad[i][1]) != NULL, "%s: %s", bad[i][0], err.message);
        dw_sim_script_free(s);
        free(t);
    }
}
