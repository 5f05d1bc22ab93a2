/* The SCPI-99 status system of the SCPI profile, declared by a script:
 * SYSTem:VERSion?, the OPERation and QUEStionable registers (condition,
 * transition filters, event, enable) and their summaries in the status
 * byte, STATus:PRESet, the "status" bindings (Lua, busy, a variable or
 * property) re-evaluated after each unit and each change from the control
 * API; and overlapped commands ("busy_ms"): *OPC?, *OPC and *WAI wait for
 * them. Every request is handled at a given time, so the tests are exact. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "script/script.h"

#include "engine_fixture.h"

static double fixed_clock(void *arg)
{
    return *(const double *)arg;
}

static double clock_now;

/* fix_open on the fixed clock, at 0. */
static void open_clocked(fix *f, const char *text)
{
    clock_now = 0;
    fix_open_clock(f, text, fixed_clock, &clock_now);
}

#define PSU                                                                                        \
    "{'profile': 'scpi', 'state': {'overtemp': false},"                                            \
    " 'properties': {'volt': {'type': 'float', 'scpi': 'VOLTage', 'min': 0, 'max': 30},"           \
    "                'vlim': {'type': 'float', 'scpi': 'VOLTage:LIMit', 'min': 0, 'max': 30,"      \
    "                         'default': 10}},"                                                    \
    " 'status': {'questionable': [{'bit': 0, 'name': 'voltage', 'when': {'lua': 'volt > vlim'}},"  \
    "                             {'bit': 4, 'when': {'state': 'overtemp'}}],"                     \
    "            'stb': [{'bit': 0, 'when': {'state': 'volt', 'above': 20}},"                      \
    "                    {'bit': 1, 'when': {'state': 'overtemp', 'equals': 'true'}}]}"

Test(sim_status, version_is_the_scripts_or_1999)
{
    fix f;
    open_clocked(&f, "{'profile': 'scpi'}");
    cr_expect(eq(str, (char *)ask(&f, "SYST:VERS?"), "1999.0"));
    cr_expect(eq(str, (char *)ask(&f, "system:version?"), "1999.0"));
    fix_close(&f);
    open_clocked(&f, "{'profile': {'type': 'scpi', 'version': '1995.0'}}");
    cr_expect(eq(str, (char *)ask(&f, "SYST:VERS?;:SYST:ERR?"), "1995.0;0,\"No error\""));
    fix_close(&f);
    load_fails("{'profile': {'type': 'scpi', 'version': '99'}}",
               "t.json:1:41: profile.version: expected a SCPI version YYYY.V");
}

Test(sim_status, a_condition_rises_through_ptr_into_the_event_register)
{
    fix f;
    open_clocked(&f, PSU "}");
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES:COND?;EVEN?;ENAB?;PTR?;NTR?"), "0;0;0;32767;0"));
    cr_expect(eq(str, (char *)ask(&f, "VOLT 12;:STAT:QUES:COND?"), "1"),
              "re-evaluated after the unit that changed volt");
    cr_expect(eq(str, (char *)ask(&f, "*STB?"), "0"), "not enabled: no summary");
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES:ENAB 1;*SRE 8;*STB?"), "72"),
              "QUES summary (bit 3) and MSS (bit 6)");
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES?"), "1"));
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES:EVEN?;*STB?"), "0;16"),
              "read clears the event: no summary, MAV only");
    cr_expect(eq(str, (char *)ask(&f, "VOLT 5;:STAT:QUES?"), "0"), "a fall without NTR: nothing");
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES:NTR 1;PTR 0;:VOLT 12;:STAT:QUES?"), "0"),
              "a rise without PTR: nothing");
    cr_expect(eq(str, (char *)ask(&f, "VOLT 5;:STAT:QUES?"), "1"), "a fall through NTR");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "0,\"No error\""));
    fix_close(&f);
}

Test(sim_status, preset_cls_and_register_values)
{
    fix f;
    open_clocked(&f, PSU "}");
    ask(&f, "STAT:OPER:ENAB 255;PTR 7;NTR 9;:STAT:QUES:ENAB 65535;:VOLT 12");
    cr_expect(
        eq(str, (char *)ask(&f, "STAT:OPER:ENAB?;PTR?;NTR?;:STAT:QUES:ENAB?"), "255;7;9;32767"),
        "bit 15 is always 0");
    cr_expect(eq(str, (char *)ask(&f, "STAT:PRES;:STAT:OPER:ENAB?;PTR?;NTR?;:STAT:QUES:ENAB?"),
                 "0;32767;0;0"));
    ask(&f, "*CLS");
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES?"), "0"), "*CLS clears the event registers");
    ask(&f, "STAT:QUES:ENAB 65536");
    ask(&f, "STAT:QUES:ENAB");
    ask(&f, "STAT:QUES:COND? 1");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?;ERR?;ERR?"),
                 "-222,\"Data out of range\";-109,\"Missing parameter\";-108,\"Parameter not "
                 "allowed\""));
    fix_close(&f);
}

Test(sim_status, device_status_byte_bits_and_the_operation_summary)
{
    fix f;
    open_clocked(&f, PSU ", 'rules': [{'when': {'scpi': 'INITiate'}, 'busy_ms': 100}]}");
    cr_expect(eq(str, (char *)ask(&f, "VOLT 25;*STB?"), "1"), "bit 0: volt above 20");
    cr_expect(eq(int, dw_sim_engine_var_set(f.e, NULL, 0, (const uint8_t *)"true", 4), DW_OK));
    cr_expect(eq(str, (char *)ask(&f, "*STB?"), "3"), "bit 1: overtemp");
    cr_expect(eq(str, (char *)ask(&f, "*SRE 2;*STB?"), "67"), "MSS from a device bit");
    fix_close(&f);
    open_clocked(&f,
                 "{'profile': 'scpi', 'rules': [{'when': {'scpi': 'INITiate'}, 'busy_ms': 100}],"
                 " 'status': {'operation': [{'bit': 4, 'name': 'measuring',"
                 "                           'when': {'busy': true}}]}}");
    cr_expect(eq(str, (char *)ask_at(&f, "STAT:OPER:ENAB 16;:INIT;*STB?", 1.0), "128"),
              "OPER summary: bit 7");
    cr_expect(eq(str, (char *)ask_at(&f, "STAT:OPER:COND?", 1.05), "16"));
    cr_expect(eq(str, (char *)ask_at(&f, "STAT:OPER:COND?;:STAT:OPER?;*STB?", 1.2), "0;16;16"),
              "the fall, then the event read: MAV alone");
    fix_close(&f);
}

Test(sim_status, a_change_from_the_control_api_is_caught_between_messages)
{
    fix f;
    open_clocked(&f, PSU "}");
    cr_expect(eq(int, dw_sim_engine_var_set(f.e, NULL, 0, (const uint8_t *)"true", 4), DW_OK));
    cr_expect(eq(int, dw_sim_engine_var_set(f.e, NULL, 0, (const uint8_t *)"false", 5), DW_OK));
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES:COND?;EVEN?"), "0;16"),
              "the rise was seen when the variable was set, not at the next message");
    fix_close(&f);
}

#define BUSY                                                                                       \
    "{'profile': 'scpi', 'state': {'n': 0},"                                                       \
    " 'properties': {'trig': {'type': 'enum', 'scpi': 'TRIGger:SOURce',"                           \
    "                         'values': ['IMMediate', 'BUS'], 'busy_ms': 50}},"                    \
    " 'rules': [{'when': {'scpi': 'INITiate'}, 'busy_ms': 300, 'set': {'n': 1}},"                  \
    "           {'when': {'scpi': 'FETCh?'}, 'reply': '${n}'}],"                                   \
    " 'status': {'operation': [{'bit': 4, 'when': {'busy': true}}]}}"

Test(sim_status, opc_query_answers_when_the_operations_complete)
{
    fix f;
    open_clocked(&f, BUSY);
    cr_expect(eq(str, (char *)ask_at(&f, "*OPC?", 10.0), "1"));
    cr_expect(eq(int, f.o.delay_ms, 0), "nothing pending: at once");
    cr_expect(eq(str, (char *)ask_at(&f, "INIT", 10.0), ""));
    cr_expect(eq(str, (char *)ask_at(&f, "*OPC?", 10.1), "1"));
    cr_expect(eq(int, f.o.delay_ms, 202), "answered at completion (200 ms, 2 for the timer)");
    cr_expect(eq(str, (char *)ask_at(&f, "*OPC?", 10.4), "1"));
    cr_expect(eq(int, f.o.delay_ms, 0));
    cr_expect(eq(str, (char *)ask_at(&f, "TRIG:SOUR BUS;*OPC?;:STAT:OPER:COND?", 20.0), "1;0"),
              "a property's busy_ms; what follows *OPC? sees it complete");
    cr_expect(eq(int, f.o.delay_ms, 52));
    fix_close(&f);
}

Test(sim_status, opc_sets_esr_bit_0_at_completion_and_wai_holds_what_follows)
{
    fix f;
    open_clocked(&f, BUSY);
    ask_at(&f, "*ESR?", 1.0);
    cr_expect(eq(str, (char *)ask_at(&f, "INIT;*OPC;*ESR?", 1.0), "0"), "pending: not yet");
    cr_expect(eq(str, (char *)ask_at(&f, "*ESR?;:STAT:OPER:COND?", 1.2), "0;16"));
    cr_expect(eq(str, (char *)ask_at(&f, "*ESR?;:STAT:OPER:COND?", 1.31), "1;0"), "complete");
    cr_expect(eq(str, (char *)ask_at(&f, "INIT;*WAI;:STAT:OPER:COND?;:FETC?;*ESR?", 2.0), "0;1;0"));
    cr_expect(eq(int, f.o.delay_ms, 302), "the whole answer waits for the operation");
    cr_expect(eq(str, (char *)ask_at(&f, "*WAI;*OPC?", 3.0), "1"));
    cr_expect(eq(int, f.o.delay_ms, 0), "*WAI with nothing pending waits for nothing");
    cr_expect(eq(str, (char *)ask_at(&f, "INIT;*OPC;*RST;*OPC?;*ESR?", 4.0), "1;0"),
              "*RST ends what is pending and forgets the *OPC");
    cr_expect(eq(int, f.o.delay_ms, 0));
    fix_close(&f);
}

Test(sim_status, bad_status_bindings_are_refused_at_load)
{
    load_fails(
        "{'profile': 'scpi', 'status': {'operation': [{'bit': 15, 'when': {'busy': true}}]}}",
        "status.operation[0].bit: bit 15 of a SCPI register is always 0");
    load_fails("{'profile': 'scpi', 'status': {'stb': [{'bit': 2, 'when': {'busy': true}}]}}",
               "status.stb[0].bit: the device's own status byte bits are 0, 1 and 7");
    load_fails("{'profile': 'scpi', 'status': {'operation': [{'bit': 1, 'when': {'busy': true}},"
               " {'bit': 1, 'when': {'busy': true}}]}}",
               "status.operation[1].bit: bit 1 is bound twice");
    load_fails("{'profile': 'scpi', 'state': {'volt': 0},"
               " 'status': {'questionable': [{'bit': 0, 'when': {'state': 'vlot'}}]}}",
               "status.questionable[0].when.state: unknown variable \"vlot\" (did you mean");
    load_fails("{'profile': 'scpi', 'status': {'questionable': [{'bit': 0, 'when': {'busy': true,"
               " 'above': 3}}]}}",
               "status.questionable[0].when.above: only with \"state\"");
    load_fails("{'profile': 'scpi', 'status': {'questionable': [{'bit': 0}]}}",
               "status.questionable[0]: missing \"when\"");
    load_fails("{'status': {}}", "status: only with \"profile\": \"scpi\"");
    load_fails("{'rules': [{'when': 'INIT', 'busy_ms': 5}]}",
               "rules[0].busy_ms: only with \"profile\": \"scpi\"");
    load_fails("{'profile': 'scpi', 'properties': {'v': {'type': 'float', 'scpi': 'V',"
               " 'access': 'ro', 'busy_ms': 5}}}",
               "properties.v.busy_ms: a read-only property is never set");
}

Test(sim_status, a_rule_still_overrides_a_status_builtin)
{
    fix f;
    open_clocked(
        &f, "{'profile': 'scpi', 'rules': [{'when': {'scpi': 'STATus:QUEStionable:CONDition?'},"
            " 'reply': '2'}]}");
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES:COND?;EVEN?"), "2;0"));
    fix_close(&f);
}

Test(sim_status, a_failing_lua_condition_is_false_and_counted)
{
    fix f;
    open_clocked(&f, "{'profile': 'scpi', 'state': {'v': 1},"
                     " 'status': {'questionable': [{'bit': 2, 'when': {'lua': 'v > nope'}},"
                     "                             {'bit': 3, 'when': {'lua': 'v > 0'}}]}}");
    cr_expect(eq(str, (char *)ask(&f, "STAT:QUES:COND?"), "8"));
    cr_expect(dw_sim_engine_status_lua_errors(f.e) >= 1);
    cr_expect(eq(u64, dw_sim_engine_lua_errors(f.e), 0), "not a rule's failure");
    fix_close(&f);
}

/* scpi.error from a "lua" action: queued as the engine's own errors are
 * (the ESR bit of its class, EAV), only when the action runs through. */
#define LUAERR                                                                                     \
    "{'profile': 'scpi', 'state': {'n': 0},"                                                       \
    " 'rules': [{'when': {'scpi': 'LOAD', 'params': ['numeric']},"                                 \
    "            'lua': 'if tonumber(captures[1]) < 0 then scpi.error(-222) end'},"                \
    "           {'when': {'scpi': 'BUSY'}, 'lua': 'scpi.error(201, \\'Relay \\\\x22K1\\\\x22 "     \
    "busy\\')'},"                                                                                  \
    "           {'when': {'scpi': 'BAD'}, 'lua': 'n = n + 1 scpi.error(-221) error(\\'no\\')'},"   \
    "           {'when': {'scpi': 'SLOW'}, 'lua': 'scpi.error(-221) while true do end'},"          \
    "           {'when': {'scpi': 'LATE?'}, 'lua': 'scpi.error(-221)',"                            \
    "            'reply': {'lua': 'nil'}},"                                                        \
    "           {'when': {'scpi': 'CMD'}, 'lua': 'scpi.error(-102)'},"                             \
    "           {'when': {'scpi': 'N?'}, 'reply': '${n}'},"                                        \
    "           {'when': {'scpi': 'CODE', 'params': ['any', 'any']},"                              \
    "            'lua': 'scpi.error(math.tointeger(tonumber(captures[1])) or captures[1],"         \
    "                              captures[2] ~= \\'NONE\\' and captures[2] or nil)'},"           \
    "           {'when': {'scpi': 'RO'}, 'lua': 'scpi.error = nil'},"                              \
    "           {'when': {'scpi': 'IF?'}, 'if': 'scpi.error(-222)', 'reply': 'x'}]}"

Test(sim_status, lua_queues_an_error_with_its_esr_bit)
{
    fix f;
    open_clocked(&f, LUAERR);
    cr_expect(eq(str, (char *)ask(&f, "*ESR?"), "128"), "PON only");
    cr_expect(eq(str, (char *)ask(&f, "LOAD 5;*STB?"), "0"), "no error queued");
    cr_expect(eq(str, (char *)ask(&f, "LOAD -5;*STB?"), "4"), "EAV: the queue holds one");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?;:SYST:ERR?"),
                 "-222,\"Data out of range\";0,\"No error\""));
    cr_expect(eq(str, (char *)ask(&f, "*ESR?"), "16"), "EXE (bit 4), as the engine's -222 sets");
    cr_expect(eq(str, (char *)ask(&f, "BUSY;*ESR?;:SYST:ERR?"), "0;201,\"Relay \"\"K1\"\" busy\""),
              "a device-specific error, with its own message, sets no ESR bit");
    cr_expect(eq(str, (char *)ask(&f, "CMD;*ESR?"), ""), "a command error drops the rest");
    cr_expect(eq(str, (char *)ask(&f, "*ESR?;:SYST:ERR?"), "32;-102,\"Syntax error\""));
    fix_close(&f);
}

Test(sim_status, a_failed_lua_chunk_queues_nothing_it_asked_for)
{
    fix f;
    open_clocked(&f, LUAERR);
    ask(&f, "*ESR?");
    ask(&f, "BAD");
    ask(&f, "SLOW");
    ask(&f, "LATE?");
    cr_expect(eq(str, (char *)errors(&f),
                 "-113,\"Undefined header\"|-113,\"Undefined header\"|-113,\"Undefined header\""),
              "an error, the deadline, a computed reply that fails after: no -221");
    cr_expect(eq(str, (char *)ask(&f, "N?;*ESR?"), "0;32"), "n as it was; CME of the -113s only");
    fix_close(&f);
}

Test(sim_status, lua_refuses_a_bad_error_code)
{
    static const struct {
        const char *req, *why;
    } bad[] = {
        {"CODE -999,NONE", "scpi.error(-999): not a standard SCPI-99 error"},
        {"CODE 0,NONE", "scpi.error(0): not an error code"},
        {"CODE 40000,'x'", "scpi.error(40000): not an error code"},
        {"CODE 201,NONE",
         "rules[7].lua:1: scpi.error(201): a device-specific error needs a message"},
        {"CODE -222,'a\tb'", "scpi.error(-222): the message holds a control character"},
        {"CODE 1.5,NONE", "bad argument #1 to 'error' (number has no integer representation)"},
        {"CODE abc,NONE", "bad argument #1 to 'error' (number expected, got string)"},
        {"IF?", "scpi.error: only in a \"lua\" action"},
        {"RO", "cannot set 'error' (the libraries are read-only)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fix f;
        open_clocked(&f, LUAERR);
        ask(&f, bad[i].req);
        cr_expect(f.o.lua.message && strstr(f.o.lua.message, bad[i].why), "%s: %s", bad[i].req,
                  f.o.lua.message ? f.o.lua.message : "(no Lua error)");
        cr_expect(eq(str, (char *)errors(&f), "-113,\"Undefined header\""), "%s", bad[i].req);
        fix_close(&f);
    }
}
