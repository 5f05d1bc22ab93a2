/* devwire-sim's engine in-process, no sockets: matching order, the
 * exact-match table, binary safety, templates, state scopes, reply turns,
 * faults on the Nth match, counters, regexes (PCRE2 syntax, bytes, the
 * limits that bound a match). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "script/script.h"

typedef struct fixture {
    dw_sim_script *script;
    dw_sim_engine *e;
    dw_sim_session *s;
    dw_sim_outcome o;
} fixture;

static void load(fixture *f, const char *json)
{
    dw_error err;
    dw_error_clear(&err);
    memset(f, 0, sizeof *f);
    int rc = dw_sim_script_load_buffer("test.json", json, strlen(json), &f->script, &err);
    cr_assert(eq(int, rc, DW_OK), "load: %s", dw_error_message(&err));
    rc = dw_sim_engine_new(f->script, &f->e, &err);
    cr_assert(eq(int, rc, DW_OK), "engine: %s", dw_error_message(&err));
    f->s = dw_sim_session_new(f->e);
    cr_assert(f->s != NULL);
    dw_sim_outcome_init(&f->o);
}

static void unload(fixture *f)
{
    dw_sim_outcome_free(&f->o);
    dw_sim_session_free(f->s);
    dw_sim_engine_free(f->e);
    dw_sim_script_free(f->script);
}

/* Handle `req` (n bytes, copied into a buffer of exactly that size so an
 * over-read is caught) and return the outcome. */
static dw_sim_outcome *handle_n(fixture *f, dw_sim_session *s, const void *req, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, req, n);
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_sim_engine_handle(f->e, s, copy, n, &f->o, &err);
    free(copy);
    cr_assert(eq(int, rc, DW_OK), "handle: %s", dw_error_message(&err));
    return &f->o;
}

static dw_sim_outcome *handle(fixture *f, const char *req)
{
    return handle_n(f, f->s, req, strlen(req));
}

/* The reply bytes as text (framing included). */
static char *text(const dw_sim_outcome *o)
{
    static char buf[256];
    size_t n = o->bytes.len < sizeof buf - 1 ? o->bytes.len : sizeof buf - 1;
    memcpy(buf, o->bytes.data ? (const char *)o->bytes.data : "", n);
    buf[n] = 0;
    return buf;
}

Test(sim_engine, first_matching_rule_wins_across_the_exact_table)
{
    fixture f;
    load(&f, "{\"rules\": [\n"
             " {\"when\": {\"prefix\": \"A\"}, \"reply\": \"prefix\"},\n"
             " {\"when\": \"AB\", \"reply\": \"exact AB\"},\n"
             " {\"when\": \"CD\", \"reply\": \"exact CD\"},\n"
             " {\"when\": {\"regex\": \"^C\"}, \"reply\": \"regex\"},\n"
             " {\"when\": \"CD\", \"reply\": \"second CD\"},\n"
             " {\"when\": \"EF\", \"reply\": \"exact EF\"}\n"
             "]}");
    cr_expect(eq(str, text(handle(&f, "AB")), "prefix\n"), "an earlier prefix rule beats exact");
    cr_expect(eq(sz, f.o.index, 0));
    cr_expect(eq(str, text(handle(&f, "CD")), "exact CD\n"), "exact beats a later regex");
    cr_expect(eq(sz, f.o.index, 2));
    cr_expect(eq(str, text(handle(&f, "CX")), "regex\n"));
    cr_expect(eq(str, text(handle(&f, "EF")), "exact EF\n"));
    cr_expect(eq(int, handle(&f, "ZZ")->source, DW_SIM_BY_UNMATCHED));
    cr_expect(eq(u64, dw_sim_engine_rule_hits(f.e, 4), 0), "the duplicate CD never answers");
    cr_expect(eq(u64, dw_sim_engine_unmatched(f.e), 1));
    unload(&f);
}

Test(sim_engine, hundred_thousand_exact_rules)
{
    enum { N = 100000 };
    size_t cap = (size_t)N * 48 + 128;
    char *json = malloc(cap);
    size_t len = (size_t)snprintf(json, cap, "{\"rules\": [\n");
    for (int i = 0; i < N; i++)
        len +=
            (size_t)snprintf(json + len, cap - len, "{\"when\": \"Q%d\", \"reply\": \"A%d\"}%s\n",
                             i, i, i + 1 < N ? "," : "");
    snprintf(json + len, cap - len, "]}");
    fixture f;
    load(&f, json);
    free(json);
    char q[32], a[32];
    for (int i = 0; i < N; i += 997) {
        snprintf(q, sizeof q, "Q%d", i);
        snprintf(a, sizeof a, "A%d\n", i);
        cr_assert(eq(str, text(handle(&f, q)), a), "%s", q);
        cr_assert(eq(sz, f.o.index, (size_t)i));
    }
    cr_expect(eq(int, handle(&f, "Q100000")->source, DW_SIM_BY_UNMATCHED));
    cr_expect(eq(int, handle(&f, "Q")->source, DW_SIM_BY_UNMATCHED));
    cr_expect(eq(int, handle(&f, "")->source, DW_SIM_BY_UNMATCHED));
    unload(&f);
}

Test(sim_engine, binary_requests_and_replies)
{
    fixture f;
    load(&f, "{\"framing\": {\"type\": \"length-prefixed\", \"header_size\": 1},\n"
             " \"rules\": [\n"
             "  {\"when\": {\"hex\": \"00ff00\"}, \"reply\": {\"hex\": \"ff00\"}},\n"
             "  {\"when\": {\"regex\": \"^X([^Y]*)Y$\"}, \"reply\": \"<$1>\"}\n"
             " ]}");
    static const uint8_t q1[] = {0x00, 0xff, 0x00};
    dw_sim_outcome *o = handle_n(&f, f.s, q1, sizeof q1);
    static const uint8_t a1[] = {2, 0xff, 0x00};
    cr_assert(eq(sz, o->bytes.len, 3));
    cr_expect(memcmp(o->bytes.data, a1, 3) == 0, "framed binary reply");
    /* A regex sees past a NUL byte: it matches the request's bytes. */
    static const uint8_t q2[] = {'X', 0x00, 0x01, 'Y'};
    o = handle_n(&f, f.s, q2, sizeof q2);
    static const uint8_t a2[] = {4, '<', 0x00, 0x01, '>'};
    cr_assert(eq(sz, o->bytes.len, 5), "capture with a NUL byte");
    cr_expect(memcmp(o->bytes.data, a2, 5) == 0);
    unload(&f);
}

Test(sim_engine, steps_then_rules_and_counters)
{
    fixture f;
    load(&f, "{\"steps\": [{\"expect\": \"A\", \"reply\": \"s0\"}, {\"expect\": {\"prefix\": "
             "\"B\"}, \"reply\": \"s1 $0\"}],\n"
             " \"rules\": [{\"when\": \"A\", \"reply\": \"r0\"}]}");
    cr_expect(eq(str, text(handle(&f, "A")), "s0\n"));
    cr_expect(eq(int, f.o.source, DW_SIM_BY_STEP));
    cr_expect(eq(str, text(handle(&f, "A")), "r0\n"), "step 1 expects B: rules answer");
    cr_expect(eq(sz, dw_sim_engine_steps_not_reached(f.e), 1));
    cr_expect(eq(str, text(handle(&f, "Bxy")), "s1 Bxy\n"));
    cr_expect(eq(sz, dw_sim_engine_steps_not_reached(f.e), 0));
    cr_expect(eq(u64, dw_sim_engine_requests(f.e), 3));
    cr_expect(eq(u64, dw_sim_engine_rule_hits(f.e, 0), 1));
    unload(&f);
}

Test(sim_engine, state_shared_or_per_connection)
{
    static const char shared[] =
        "{\"state\": {\"v\": \"0\"}, \"rules\": ["
        "{\"when\": {\"regex\": \"^SET (.*)$\"}, \"set\": {\"v\": \"$1\"}},"
        "{\"when\": \"GET\", \"reply\": \"${v}\"}]}";
    fixture f;
    load(&f, shared);
    dw_sim_session *other = dw_sim_session_new(f.e);
    handle(&f, "SET 5");
    cr_expect(eq(sz, f.o.bytes.len, 0), "no reply to a set without one");
    cr_expect(eq(str, text(handle_n(&f, other, "GET", 3)), "5\n"), "shared: seen by others");
    dw_sim_session_free(other);
    unload(&f);

    char per[512];
    snprintf(per, sizeof per, "{\"scope\": \"connection\", %s", shared + 1);
    load(&f, per);
    other = dw_sim_session_new(f.e);
    handle(&f, "SET 5");
    cr_expect(eq(str, text(handle(&f, "GET")), "5\n"));
    cr_expect(eq(str, text(handle_n(&f, other, "GET", 3)), "0\n"), "per connection: private");
    dw_sim_session_free(other);
    unload(&f);
}

Test(sim_engine, sets_see_the_old_state)
{
    fixture f;
    load(&f, "{\"state\": {\"a\": \"1\", \"b\": \"2\"}, \"rules\": ["
             "{\"when\": \"SWAP\", \"set\": {\"a\": \"${b}\", \"b\": \"${a}\"}, "
             "\"reply\": \"${a}${b}\"}]}");
    cr_expect(eq(str, text(handle(&f, "SWAP")), "21\n"), "sets apply together, before the reply");
    cr_expect(eq(str, text(handle(&f, "SWAP")), "12\n"));
    unload(&f);
}

Test(sim_engine, fault_on_nth_match_and_hang)
{
    fixture f;
    load(&f, "{\"rules\": [{\"when\": \"X\", \"reply\": \"x\", \"fault\": \"reset\", \"fault_on\": "
             "3},\n"
             " {\"when\": \"H\", \"fault\": \"hang\"},\n"
             " {\"when\": \"S\", \"reply\": \"abcdef\", \"delay_ms\": 7, \"split\": [1, 2], "
             "\"split_delay_ms\": 3}]}");
    for (int i = 1; i <= 4; i++) {
        dw_sim_outcome *o = handle(&f, "X");
        cr_expect(eq(int, o->fault, i == 3 ? DW_SIM_FAULT_RESET : DW_SIM_FAULT_NONE), "match %d",
                  i);
    }
    dw_sim_outcome *o = handle(&f, "S");
    cr_expect(eq(u32, o->delay_ms, 7));
    cr_expect(eq(sz, o->nsplit, 2));
    cr_expect(eq(u32, o->split_delay_ms, 3));
    cr_expect(eq(str, text(o), "abcdef\n"));
    cr_expect(eq(int, handle(&f, "H")->fault, DW_SIM_FAULT_HANG));
    cr_expect(dw_sim_session_hung(f.s));
    cr_expect(eq(int, handle(&f, "S")->source, DW_SIM_BY_HUNG), "a hung session answers nothing");
    cr_expect(eq(sz, f.o.bytes.len, 0));
    unload(&f);
}

Test(sim_engine, reply_turns)
{
    fixture f;
    load(&f, "{\"rules\": [{\"when\": \"C\", \"reply\": [\"1\", \"2\"], \"after_last\": \"cycle\"},"
             " {\"when\": \"S\", \"reply\": [\"1\"], \"after_last\": \"silent\"}]}");
    const char *want[] = {"1\n", "2\n", "1\n", "2\n"};
    for (int i = 0; i < 4; i++)
        cr_expect(eq(str, text(handle(&f, "C")), (char *)want[i]), "turn %d", i);
    cr_expect(eq(str, text(handle(&f, "S")), "1\n"));
    cr_expect(eq(str, text(handle(&f, "S")), ""));
    unload(&f);
}

Test(sim_engine, a_reply_the_framing_cannot_carry)
{
    fixture f;
    load(&f, "{\"rules\": [{\"when\": {\"prefix\": \"E \"}, \"reply\": \"$0\"}]}");
    dw_error err;
    dw_error_clear(&err);
    static const char req[] = "E a\nb";
    int rc = dw_sim_engine_handle(f.e, f.s, (const uint8_t *)req, sizeof req - 1, &f.o, &err);
    cr_expect(eq(int, rc, DW_EINVAL), "a reply holding the sentinel");
    cr_expect(strstr(dw_error_message(&err), "rules[0]") != NULL, "%s", dw_error_message(&err));
    unload(&f);
}

Test(sim_engine, banner_periodic_and_samples)
{
    fixture f;
    load(&f, "{\"state\": {\"n\": \"7\"}, \"banner\": \"hi ${n}\\n\", \"prompt\": \"> \","
             " \"rules\": [{\"when\": \"A\", \"reply\": \"a\"}],"
             " \"periodic\": [{\"every_ms\": 10, \"send\": \"tick ${n}\"}]}");
    dw_buf b = DW_BUF_INIT;
    cr_assert(eq(int, dw_sim_engine_banner(f.e, f.s, &b), DW_OK));
    cr_expect(eq(sz, b.len, 5));
    cr_expect(memcmp(b.data, "hi 7\n", 5) == 0);
    dw_buf_clear(&b);
    cr_assert(eq(int, dw_sim_engine_periodic(f.e, f.s, 0, &b, NULL), DW_OK));
    cr_expect(eq(sz, b.len, 7));
    cr_expect(memcmp(b.data, "tick 7\n", 7) == 0);
    cr_expect(eq(str, text(handle(&f, "A")), "a\n> "), "the prompt follows the reply");
    cr_expect(eq(str, text(handle(&f, "nope")), "> "), "and a request without one");
    cr_assert(eq(int, dw_sim_engine_unmatched_sample(f.e, 0, &b), DW_OK));
    cr_expect(eq(sz, b.len, 4));
    cr_expect(eq(int, dw_sim_engine_unmatched_sample(f.e, 1, &b), DW_ENOENT));
    dw_buf_free(&b);
    unload(&f);
}

Test(sim_engine, fault_on_in_unmatched)
{
    fixture f;
    load(&f, "{\"rules\": [], \"unmatched\": {\"reply\": \"?\", \"fault\": \"close\", "
             "\"fault_on\": 2}}");
    cr_expect(eq(int, handle(&f, "a")->fault, DW_SIM_FAULT_NONE));
    cr_expect(eq(str, text(&f.o), "?\n"));
    cr_expect(eq(int, handle(&f, "b")->fault, DW_SIM_FAULT_CLOSE), "the second unmatched request");
    cr_expect(eq(int, handle(&f, "c")->fault, DW_SIM_FAULT_NONE));
    cr_expect(eq(u64, dw_sim_engine_unmatched(f.e), 3));
    unload(&f);
}

/* ---- the SCPI profile ----------------------------------------------------- */

#define SCPI_SG                                                                                    \
    "{\"profile\": \"scpi\", \"idn\": \"ACME,SG-1000,0001,1.0\",\n"                                \
    " \"state\": {\"freq\": \"1000000\", \"output\": \"0\", \"trig\": \"IMM\"},\n"                 \
    " \"rules\": [\n"                                                                              \
    "  {\"when\": {\"scpi\": \"[SOURce:]FREQuency[:CW]\", \"params\": [\"numeric\"]},\n"           \
    "   \"set\": {\"freq\": \"$1\"}},\n"                                                           \
    "  {\"when\": {\"scpi\": \"[SOURce:]FREQuency[:CW]?\"}, \"reply\": \"${freq}\"},\n"            \
    "  {\"when\": {\"scpi\": \"OUTPut[1-2][:STATe]\", \"params\": [\"bool\"]},\n"                  \
    "   \"set\": {\"output\": \"$1\"}},\n"                                                         \
    "  {\"when\": {\"scpi\": \"OUTPut[1-2][:STATe]?\"}, \"reply\": \"${output}\"},\n"              \
    "  {\"when\": {\"scpi\": \"TRIGger:SOURce\", \"params\": [\"IMMediate|BUS|EXTernal\"]},\n"     \
    "   \"set\": {\"trig\": \"$1\"}},\n"                                                           \
    "  {\"when\": {\"scpi\": \"TRIGger:SOURce?\"}, \"reply\": \"${trig}\"},\n"                     \
    "  {\"when\": {\"scpi\": \"DISPlay:TEXT\", \"params\": [\"string\"]}, \"reply\": \"[$1]\"},\n" \
    "  {\"when\": {\"regex\": \"^ECHO (.*)$\"}, \"reply\": \"$1\"},\n"                             \
    "  {\"when\": {\"scpi\": \"SYSTem:KILL\"}, \"fault\": \"close\"}\n"                            \
    " ]}"

Test(sim_engine_scpi, compound_queries_answer_once_joined)
{
    fixture f;
    load(&f, SCPI_SG);
    cr_expect(eq(str, text(handle(&f, "FREQ?;*IDN?")), "1000000;ACME,SG-1000,0001,1.0\n"));
    cr_expect(eq(int, f.o.nframes, 1));
    cr_expect(eq(str, text(handle(&f, "SOUR:FREQ 2.5 MHZ;FREQ:CW?")), "2500000\n"),
              "the path rule: FREQ:CW? is SOUR:FREQ:CW?");
    cr_expect(eq(str, text(handle(&f, "source:frequency 10 kHz")), ""), "a command says nothing");
    cr_expect(eq(str, text(handle(&f, ":FREQ?;:OUTP?;*OPC?")), "10000;0;1\n"));
    unload(&f);
}

Test(sim_engine_scpi, an_unknown_command_is_queued_not_answered)
{
    fixture f;
    load(&f, SCPI_SG);
    dw_sim_outcome *o = handle(&f, "BOGUS");
    cr_expect(eq(sz, o->bytes.len, 0), "a real instrument says nothing");
    cr_expect(eq(int, o->source, DW_SIM_BY_UNMATCHED));
    cr_expect(eq(u64, dw_sim_engine_unmatched(f.e), 1));
    cr_expect(eq(str, text(handle(&f, "*ESR?")), "160\n"), "PON and CME");
    cr_expect(eq(str, text(handle(&f, "SYST:ERR?")), "-113,\"Undefined header\"\n"));
    cr_expect(eq(str, text(handle(&f, "SYST:ERR?")), "0,\"No error\"\n"));
    cr_expect(eq(str, text(handle(&f, "FREQ?;BOGUS;OUTP?")), "1000000\n"),
              "units before the error answer, the rest is dropped");
    cr_expect(eq(str, text(handle(&f, "FREQ 1.2.3;:SYST:ERR:COUN?")), ""),
              "a syntax error drops the rest of the message");
    cr_expect(eq(str, text(handle(&f, "SYST:ERR?;ERR?;ERR?")),
                 "-113,\"Undefined header\";-121,\"Invalid character in number\";0,\"No "
                 "error\"\n"));
    unload(&f);
}

Test(sim_engine_scpi, typed_parameters_reach_the_rules)
{
    fixture f;
    load(&f, SCPI_SG);
    cr_expect(eq(str, text(handle(&f, "OUTP ON;OUTP?")), "1\n"));
    cr_expect(eq(str, text(handle(&f, "OUTP2:STAT 0;STAT?")), "0\n"));
    cr_expect(eq(str, text(handle(&f, "TRIG:SOUR external;SOUR?")), "EXT\n"));
    cr_expect(eq(str, text(handle(&f, "DISP:TEXT 'it''s'")), "[it's]\n"));
    cr_expect(eq(str, text(handle(&f, "*OPC;ECHO 1, 'a' ")), "1, 'a'\n"),
              "a regex sees the unit as written");
    handle(&f, "OUTP MAYBE");
    handle(&f, "OUTP3 ON");
    handle(&f, "FREQ");
    handle(&f, "FREQ 1,2");
    handle(&f, "FREQ 'x'");
    handle(&f, "TRIG:SOUR NOW");
    cr_expect(eq(str, text(handle(&f, "SYST:ERR?;ERR?;ERR?;ERR?;ERR?;ERR?")),
                 "-224,\"Illegal parameter value\";-114,\"Header suffix out of range\";"
                 "-109,\"Missing parameter\";-108,\"Parameter not allowed\";"
                 "-104,\"Data type error\";-224,\"Illegal parameter value\"\n"));
    cr_expect(eq(str, text(handle(&f, "OUTP?;TRIG:SOUR?")), "0;EXT\n"), "nothing changed");
    unload(&f);
}

Test(sim_engine_scpi, rst_restores_the_initial_state_and_cls_the_status)
{
    fixture f;
    load(&f, SCPI_SG);
    handle(&f, "FREQ 5;OUTP ON;BOGUS");
    cr_expect(eq(str, text(handle(&f, "*RST;FREQ?;OUTP?;*STB?")), "1000000;0;20\n"),
              "*RST resets the state, not the status (EAV, MAV)");
    handle(&f, "*CLS");
    cr_expect(eq(str, text(handle(&f, "*STB?;SYST:ERR?")), "0;0,\"No error\"\n"));
    unload(&f);
}

Test(sim_engine_scpi, rules_override_built_ins_and_steps_come_first)
{
    fixture f;
    load(&f, "{\"profile\": \"scpi\", \"steps\": [\n"
             " {\"expect\": {\"scpi\": \"*IDN?\"}, \"reply\": \"FIRST\"}],\n"
             " \"rules\": [{\"when\": {\"scpi\": \"*IDN?\"}, \"reply\": \"RULE\"}]}");
    cr_expect(eq(str, text(handle(&f, "*IDN?")), "FIRST\n"));
    cr_expect(eq(int, f.o.source, DW_SIM_BY_STEP));
    cr_expect(eq(str, text(handle(&f, "*TST?;*idn?")), "0;RULE\n"));
    cr_expect(eq(u64, dw_sim_engine_rule_hits(f.e, 0), 1));
    cr_expect(eq(str, text(handle(&f, "*ESR?")), "128\n"));
    cr_expect(eq(int, f.o.source, DW_SIM_BY_PROFILE));
    unload(&f);
}

Test(sim_engine_scpi, a_fault_drops_the_rest_of_the_message)
{
    fixture f;
    load(&f, SCPI_SG);
    dw_sim_outcome *o = handle(&f, "FREQ?;SYST:KILL;OUTP?");
    cr_expect(eq(int, o->fault, DW_SIM_FAULT_CLOSE));
    cr_expect(eq(sz, o->bytes.len, 0));
    unload(&f);
}

Test(sim_engine_scpi, idn_defaults_to_the_name_and_the_queue_depth_is_set)
{
    fixture f;
    load(&f, "{\"name\": \"bench PSU\", \"profile\": {\"type\": \"scpi\", \"error_queue\": 2}}");
    cr_expect(eq(str, text(handle(&f, "*IDN?")), "bench PSU\n"));
    handle(&f, "A;");
    handle(&f, "B");
    handle(&f, "C");
    cr_expect(eq(str, text(handle(&f, "SYST:ERR?;ERR?;ERR?")),
                 "-113,\"Undefined header\";-350,\"Queue overflow\";0,\"No error\"\n"));
    unload(&f);
}

Test(sim_engine_scpi, the_first_rule_whose_parameters_fit_takes_the_unit)
{
    fixture f;
    load(&f, "{\"profile\": \"scpi\", \"state\": {\"f\": \"1\"}, \"rules\": [\n"
             " {\"when\": {\"scpi\": \"FREQuency\", \"params\": [\"MINimum\"]}, \"set\": {\"f\": "
             "\"9000\"}},\n"
             " {\"when\": {\"scpi\": \"FREQuency\", \"params\": [\"numeric\"]}, \"set\": {\"f\": "
             "\"$1\"}},\n"
             " {\"when\": {\"scpi\": \"FREQuency?\"}, \"reply\": \"${f}\"}]}");
    cr_expect(eq(str, text(handle(&f, "FREQ minimum;FREQ?")), "9000\n"));
    cr_expect(eq(str, text(handle(&f, "FREQ 2e3;FREQ?")), "2000\n"));
    cr_expect(eq(str, text(handle(&f, "FREQ 'x';FREQ?")), ""), "-104 drops the rest");
    cr_expect(eq(str, text(handle(&f, "SYST:ERR?;:FREQ?")), "-104,\"Data type error\";2000\n"),
              "no rule took it: the first rule's reason");
    unload(&f);
}

/* ---- regular expressions (PCRE2) ------------------------------------------ */

Test(sim_engine, regex_captures_icase_and_perl_syntax)
{
    fixture f;
    load(&f, "{\"rules\": [\n"
             "  {\"when\": {\"regex\": \"^set (\\\\w+)=(\\\\d+)(?: (unit))?$\", \"icase\": true},"
             "   \"reply\": \"$1:$2:[$3]\"},\n"
             "  {\"when\": {\"regex\": \"^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)$\"}, \"reply\": "
             "\"$9$1\"},\n"
             "  {\"when\": {\"regex\": \"^(x+)-\\\\1$\"}, \"reply\": \"twice $1\"},\n"
             "  {\"when\": {\"regex\": \"^(a|ab)\"}, \"reply\": \"first $1\"}\n"
             " ]}");
    cr_expect(eq(str, text(handle(&f, "SET Freq=12")), "Freq:12:[]\n"),
              "icase; a group that took no part is empty");
    cr_expect(eq(str, text(handle(&f, "set f=7 UNIT")), "f:7:[UNIT]\n"));
    cr_expect(eq(str, text(handle(&f, "abcdefghij")), "ia\n"),
              "a pattern with more groups than $9 still matches");
    cr_expect(eq(str, text(handle(&f, "xx-xx")), "twice xx\n"), "back-references work");
    cr_expect(eq(int, handle(&f, "xx-x")->source, DW_SIM_BY_UNMATCHED));
    cr_expect(eq(str, text(handle(&f, "ab")), "first a\n"),
              "the first alternative wins (Perl), not the longest (POSIX)");
    unload(&f);
}

Test(sim_engine, regex_matches_bytes_with_the_request_length)
{
    fixture f;
    load(&f, "{\"framing\": {\"type\": \"length-prefixed\", \"header_size\": 1},\n"
             " \"rules\": [{\"when\": {\"regex\": \"^A\\\\x00.B$\"}, \"reply\": \"hit\"}],\n"
             " \"unmatched\": {\"reply\": \"miss\"}}");
    static const uint8_t nul_ff[] = {'A', 0x00, 0xff, 'B'};
    cr_expect(eq(str, text(handle_n(&f, f.s, nul_ff, sizeof nul_ff)), "\3hit"),
              "NUL bytes and what follows them take part");
    static const uint8_t nul_lf[] = {'A', 0x00, '\n', 'B'};
    cr_expect(eq(str, text(handle_n(&f, f.s, nul_lf, sizeof nul_lf)), "\3hit"),
              "'.' matches a newline");
    static const uint8_t longer[] = {'A', 0x00, 'x', 'B', 0x00};
    cr_expect(eq(str, text(handle_n(&f, f.s, longer, sizeof longer)), "\4miss"),
              "'$' is the end of the request's bytes, a trailing NUL included");
    cr_expect(eq(str, text(handle_n(&f, f.s, nul_ff, 3)), "\4miss"), "only n bytes are read");
    unload(&f);
}

/* A request that makes "(a+)+$" backtrack without end: n 'a's and a '!'. */
static uint8_t *hostile(size_t n)
{
    uint8_t *p = malloc(n + 1);
    cr_assert(p != NULL);
    memset(p, 'a', n);
    p[n] = '!';
    return p;
}

Test(sim_engine, regex_limit_is_no_match_counted_and_flagged_once)
{
    fixture f;
    load(&f, "{\"rules\": [\n"
             "  {\"when\": {\"regex\": \"(a+)+$\"}, \"reply\": \"M\"},\n"
             "  {\"when\": {\"regex\": \"^(a+)+$\"}, \"reply\": \"A\"},\n"
             "  {\"when\": \"ping\", \"reply\": \"pong\"}\n"
             " ], \"unmatched\": {\"reply\": \"U\"}}");
    enum { N = 100000 };
    uint8_t *req = hostile(N);
    dw_sim_outcome *o = handle_n(&f, f.s, req, N + 1);
    cr_expect(eq(int, o->source, DW_SIM_BY_UNMATCHED), "a limit hit is no match");
    cr_expect(eq(str, text(o), "U\n"));
    cr_assert(eq(sz, o->nlimits, 2), "both regex rules gave up");
    cr_expect(eq(int, o->limits[0].source, DW_SIM_BY_RULE));
    cr_expect(eq(sz, o->limits[0].index, 0));
    cr_expect(eq(str, (char *)o->limits[0].name, "rules[0]"));
    cr_expect(eq(int, o->limits[0].first, 1), "the first hit of rules[0] is flagged");
    cr_expect(eq(sz, o->limits[1].index, 1), "the anchored pattern is bounded too");
    cr_expect(eq(int, o->limits[1].first, 1));

    o = handle_n(&f, f.s, req, N + 1);
    cr_assert(eq(sz, o->nlimits, 2));
    cr_expect(eq(int, o->limits[0].first, 0), "later hits are only counted");
    cr_expect(eq(int, o->limits[1].first, 0));
    cr_expect(eq(u64, dw_sim_engine_rule_limit_hits(f.e, 0), 2));
    cr_expect(eq(u64, dw_sim_engine_rule_limit_hits(f.e, 1), 2));
    cr_expect(eq(u64, dw_sim_engine_rule_limit_hits(f.e, 2), 0));
    cr_expect(eq(u64, dw_sim_engine_regex_limit_hits(f.e), 4));
    cr_expect(eq(u64, dw_sim_engine_rule_hits(f.e, 0), 0));
    cr_expect(eq(u64, dw_sim_engine_unmatched(f.e), 2));

    cr_expect(eq(str, text(handle(&f, "ping")), "pong\n"));
    cr_expect(eq(sz, f.o.nlimits, 0), "the list is per request");
    cr_expect(eq(str, text(handle(&f, "aaaa")), "M\n"), "a short request still matches");
    free(req);
    unload(&f);
}

Test(sim_engine, regex_limit_in_a_step)
{
    fixture f;
    load(&f, "{\"steps\": [{\"expect\": {\"regex\": \"^(a+)+$\"}, \"reply\": \"S\"}],\n"
             " \"rules\": [{\"when\": {\"prefix\": \"a\"}, \"reply\": \"R\"}]}");
    enum { N = 100000 };
    uint8_t *req = hostile(N);
    dw_sim_outcome *o = handle_n(&f, f.s, req, N + 1);
    cr_expect(eq(str, text(o), "R\n"), "the step did not match; the rules answer");
    cr_assert(eq(sz, o->nlimits, 1));
    cr_expect(eq(int, o->limits[0].source, DW_SIM_BY_STEP));
    cr_expect(eq(str, (char *)o->limits[0].name, "steps[0]"));
    cr_expect(eq(u64, dw_sim_engine_step_limit_hits(f.e, 0), 1));
    cr_expect(eq(sz, dw_sim_engine_steps_not_reached(f.e), 1));
    cr_expect(eq(str, text(handle(&f, "aa")), "S\n"));
    free(req);
    unload(&f);
}

Test(sim_engine, regex_memory_limit_is_a_limit_hit)
{
    /* Each turn of a repeated group keeps a backtracking point: 100,000 of
     * them are more than the JIT stack or, without JIT, the interpreter's
     * depth and heap limits allow. */
    fixture f;
    load(&f, "{\"rules\": [{\"when\": {\"regex\": \"^(ab)*$\"}, \"reply\": \"M\"},"
             " {\"when\": {\"regex\": \"(*NO_JIT)^(ab)*$\"}, \"reply\": \"I\"}],"
             " \"unmatched\": {\"reply\": \"U\"}}");
    enum { N = 200000 };
    uint8_t *req = malloc(N);
    cr_assert(req != NULL);
    for (size_t i = 0; i < N; i++)
        req[i] = i % 2 ? 'b' : 'a';
    dw_sim_outcome *o = handle_n(&f, f.s, req, N);
    cr_expect(eq(str, text(o), "U\n"));
    cr_expect(eq(sz, o->nlimits, 2), "both gave up, neither crashed");
    cr_expect(eq(str, text(handle_n(&f, f.s, req, 2000)), "M\n"), "a shorter run matches");
    free(req);
    unload(&f);
}
