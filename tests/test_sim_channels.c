/* Properties declared once for several channels ("channels": [1, 2], the
 * suffix marked '#' in the header): one value per channel, validated and
 * reset per channel, SOUR:FREQ meaning channel 1, an unknown channel -114;
 * named freq[2] in templates, sets, status conditions, the control API and
 * Lua (freq[2] read and set); a ramp toward the same channel. Rules and
 * steps declared once for several channels: the unit's channel as
 * ${channel}, ${freq[channel]}, "set": {"freq[channel]": ...} and Lua's
 * channel, -114 for a channel not listed, and their load errors. */
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

#define GEN                                                                                        \
    "{'profile': 'scpi',"                                                                          \
    " 'properties': {'freq': {'type': 'float', 'scpi': '[SOURce#:]FREQuency[:CW]', 'unit': 'HZ',"  \
    "                         'channels': [1, 2], 'min': 1, 'max': 2e7, 'default': 1000},"         \
    "                'outp': {'type': 'bool', 'scpi': 'OUTPut#[:STATe]', 'channels': [1, 2]},"     \
    "                'volt': {'type': 'float', 'scpi': 'SOURce#:VOLTage', 'channels': [1, 2],"     \
    "                         'min': 0, 'max': 10},"                                               \
    "                'vmon': {'type': 'float', 'scpi': 'MEASure#:VOLTage', 'access': 'ro',"        \
    "                         'channels': [1, 2], 'min': 0, 'max': 10,"                            \
    "                         'ramp': {'to': 'volt', 'rate': 1}}},"                                \
    " 'rules': [{'when': {'scpi': 'SUMMary?'}, 'reply': '${freq[1]},${freq[2]}'},"                 \
    "           {'when': {'scpi': 'RATio?'}, 'reply': {'lua': 'freq[2] / freq[1]'}},"              \
    "           {'when': {'scpi': 'SWAP'}, 'lua': 'local a = freq[1] freq[1] = freq[2] freq[2] = " \
    "a'},"                                                                                         \
    "           {'when': {'scpi': 'COPY'}, 'set': {'freq[2]': '${freq[1]}'}}],"                    \
    " 'status': {'questionable': [{'bit': 0, 'when': {'state': 'freq[2]', 'above': 1e6}}]}}"

Test(sim_channels, one_value_per_channel_and_no_suffix_is_channel_1)
{
    fix f;
    open_clocked(&f, GEN);
    cr_expect(eq(str,
                 (char *)ask(&f, "FREQ 2 MHz;:SOUR2:FREQ 5e6;:FREQ?;:SOUR1:FREQ?;:SOUR2:FREQ?"),
                 "2.0E+06;2.0E+06;5.0E+06"));
    cr_expect(
        eq(str, (char *)ask(&f, "source2:frequency:cw?;:OUTP2 ON;:OUTP?;OUTP2?"), "5.0E+06;0;1"));
    ask(&f, "SOUR3:FREQ 1");
    ask(&f, "SOUR2:FREQ 3e7");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?;ERR?;:SOUR2:FREQ?"),
                 "-114,\"Header suffix out of range\";-222,\"Data out of range\";5.0E+06"),
              "an unknown channel; a value out of range leaves that channel as it was");
    cr_expect(eq(str, (char *)ask(&f, "*RST;SUMM?"), "1000,1000"), "reset per channel");
    fix_close(&f);
}

Test(sim_channels, templates_sets_lua_status_and_ramps_see_each_channel)
{
    fix f;
    open_clocked(&f, GEN);
    cr_expect(eq(str, (char *)ask(&f, "SOUR2:FREQ 2e6;:SUMM?;:RAT?;:STAT:QUES:COND?"),
                 "1000,2000000;2000.0;1"));
    cr_expect(eq(str, (char *)ask(&f, "SWAP;:SUMM?;:STAT:QUES:COND?"), "2000000,1000;0"));
    cr_expect(eq(str, (char *)ask(&f, "COPY;:SUMM?"), "2000000,2000000"));
    cr_expect(eq(str, (char *)ask_at(&f, "SOUR2:VOLT 5;:MEAS2:VOLT?;:MEAS1:VOLT?", 100),
                 "0.0E+00;0.0E+00"));
    cr_expect(eq(str, (char *)ask_at(&f, "MEAS2:VOLT?;:MEAS1:VOLT?", 102), "2.0E+00;0.0E+00"),
              "vmon[2] ramps toward volt[2], vmon[1] toward volt[1]");
    fix_close(&f);
}

Test(sim_channels, bad_channels_are_refused_at_load)
{
    load_fails(
        "{'profile': 'scpi', 'properties': {'f': {'type': 'float', 'scpi': 'FREQ',"
        " 'channels': [1, 2]}}}",
        "properties.f.scpi: a property with \"channels\" marks its channel's suffix with '#'");
    load_fails(
        "{'profile': 'scpi', 'properties': {'f': {'type': 'float', 'scpi': 'SOUR#:FREQ'}}}",
        "t.json:1:72: properties.f.scpi: '#' marks a channel's suffix: only with \"channels\"");
    load_fails("{'profile': 'scpi', 'properties': {'f': {'type': 'float', 'scpi': 'SOUR#:FREQ',"
               " 'channels': [1, 1]}}}",
               "properties.f.channels[1]: channel 1 is listed twice");
    load_fails("{'profile': 'scpi', 'properties': {'f': {'type': 'float', 'scpi': 'SOUR#:FREQ',"
               " 'channels': []}}}",
               "properties.f.channels: expected a list of 1 to 64 channel numbers");
    load_fails("{'profile': 'scpi', 'properties': {'f': {'type': 'float', 'scpi': 'SOUR#:FREQ',"
               " 'channels': [1, 2]}}, 'rules': [{'when': {'scpi': 'X?'}, 'reply': '${f[3]}'}]}",
               "unknown variable \"${f[3]}\"");
}

/* One rule for both channels of GEN's properties: its channel in
 * templates, in a property's name (template and set), in Lua and in "if". */
#define RULES                                                                                      \
    "{'profile': 'scpi',"                                                                          \
    " 'properties': {'freq': {'type': 'float', 'scpi': 'SOURce#:FREQuency', 'unit': 'HZ',"         \
    "                         'channels': [1, 2], 'min': 1, 'max': 2e7, 'default': 1000}},"        \
    " 'rules': [{'when': {'scpi': '[SOURce#:]NAME?', 'channels': [1, 2]},"                         \
    "            'reply': 'CH${channel}'},"                                                        \
    "           {'when': {'scpi': 'SOURce#:STEP', 'params': ['numeric'], 'channels': [1, 2]},"     \
    "            'set': {'freq[channel]': '$1'}},"                                                 \
    "           {'when': {'scpi': 'SOURce#:HALF?', 'channels': [2, 1]},"                           \
    "            'reply': {'lua': 'string.format(\\'%d:%.0f\\', channel, freq[channel] / 2)'}},"   \
    "           {'when': {'scpi': 'OUTPut#:SHOW?', 'channels': [1, 2]},"                           \
    "            'reply': {'json': {'ch': '${channel}', 'f': '${freq[channel]}'}}},"               \
    "           {'when': {'scpi': 'OUTPut#:ODD?', 'channels': [1, 2]}, 'if': 'channel % 2 == 1',"  \
    "            'reply': 'odd'},"                                                                 \
    "           {'when': {'scpi': '[OUTPut#:]FIRSt?', 'channels': [2, 1]},"                        \
    "            'reply': '${channel}'},"                                                          \
    "           {'when': {'scpi': 'SOURce#:ADD', 'params': ['numeric'], 'channels': [1, 2]},"      \
    "            'set': {'freq[channel]': {'lua': 'freq[channel] + tonumber(captures[1])'}}}]}"

Test(sim_channels, a_rule_with_channels_answers_each_channel)
{
    fix f;
    open_clocked(&f, RULES);
    cr_expect(
        eq(str, (char *)ask(&f, "SOUR1:NAME?;:SOUR2:NAME?;:SOUR:NAME?;:NAME?"), "CH1;CH2;CH1;CH1"),
        "no suffix, or the node left out, is channel 1");
    cr_expect(
        eq(str, (char *)ask(&f, "SOUR2:STEP 5e6;:SOUR2:FREQ?;:SOUR1:FREQ?"), "5.0E+06;1.0E+03"),
        "\"set\": {\"freq[channel]\": ...} sets the unit's channel");
    cr_expect(eq(str, (char *)ask(&f, "SOUR2:HALF?;:SOUR1:HALF?"), "2:2500000;1:500"));
    cr_expect(eq(str, (char *)ask(&f, "OUTP2:SHOW?"), "{\"ch\":2,\"f\":5000000}"));
    cr_expect(eq(str, (char *)ask(&f, "OUTP1:ODD?"), "odd"));
    cr_expect(eq(str, (char *)ask(&f, "FIRS?;:OUTP:FIRS?;:OUTP2:FIRS?"), "2;1;2"),
              "the node left out is the first channel listed, no suffix channel 1");
    cr_expect(
        eq(str, (char *)ask(&f, "SOUR1:ADD 5;:SOUR1:FREQ?;:SOUR2:FREQ?"), "1.005E+03;5.0E+06"),
        "a Lua set value sees the channel too");
    cr_expect(eq(str, (char *)errors(&f), ""));
    fix_close(&f);
}

Test(sim_channels, a_channel_a_rule_does_not_list_is_suffix_out_of_range)
{
    fix f;
    open_clocked(&f, RULES);
    cr_expect(eq(str, (char *)ask(&f, "SOUR3:NAME?"), ""));
    cr_expect(eq(str, (char *)ask(&f, "OUTP2:ODD?"), ""), "its \"if\" is false: -113");
    cr_expect(eq(str, (char *)errors(&f),
                 "-114,\"Header suffix out of range\"|-113,\"Undefined header\""));
    fix_close(&f);
    /* -114 only when no other candidate takes the unit: here a later rule
     * does. */
    open_clocked(&f, "{'profile': 'scpi',"
                     " 'rules': [{'when': {'scpi': 'SOURce#:NAME?', 'channels': [1, 2]},"
                     "            'reply': 'CH${channel}'},"
                     "           {'when': {'scpi': 'SOURce<n>:NAME?'}, 'reply': 'other'}]}");
    cr_expect(eq(str, (char *)ask(&f, "SOUR3:NAME?;:SOUR2:NAME?"), "other;CH2"));
    cr_expect(eq(str, (char *)errors(&f), ""));
    fix_close(&f);
}

Test(sim_channels, a_rule_with_bad_channels_is_refused_at_load)
{
    load_fails("{'profile': 'scpi', 'rules': [{'when': {'scpi': 'SOUR:NAME?',"
               " 'channels': [1, 2]}}]}",
               "t.json:1:49: rules[0].when.scpi: a rule or step with \"channels\" marks its "
               "channel's suffix with '#'");
    load_fails("{'profile': 'scpi', 'rules': [{'when': {'scpi': 'SOUR#:NAME?'}}]}",
               "t.json:1:54: rules[0].when.scpi: '#' marks a channel's suffix: only with "
               "\"channels\"");
    load_fails("{'profile': 'scpi', 'rules': [{'when': {'scpi': 'SOUR#:NAME#?',"
               " 'channels': [1]}}]}",
               "rules[0].when.scpi: one '#' only");
    load_fails("{'profile': 'scpi', 'rules': [{'when': {'scpi': 'SOUR#:NAME?',"
               " 'channels': [0]}}]}",
               "t.json:1:77: rules[0].when.channels[0]: ");
    load_fails("{'profile': 'scpi', 'rules': [{'when': {'scpi': 'NAME?'}, 'reply': '${channel}'}]}",
               "t.json:1:69: rules[0].reply: \"${channel}\": only in a rule or step with "
               "\"channels\"");
    load_fails("{'profile': 'scpi', 'properties': {'f': {'type': 'float', 'scpi': 'SOUR#:FREQ',"
               " 'channels': [1, 2]}}, 'rules': [{'when': {'scpi': 'OUTP#?', 'channels': [2, 3]},"
               " 'set': {'f[channel]': '1'}}]}",
               "rules[0].set[\"f[channel]\"]: \"f[channel]\": no property \"f\" with channel 3");
    load_fails("{'profile': 'scpi', 'state': {'channel': 1}, 'rules': [{'when': {'scpi':"
               " 'OUTP#?', 'channels': [1, 2]}}]}",
               "rules[0].when.channels: \"channel\" is a variable or property here");
}

Test(sim_channels, a_variable_named_channel_keeps_its_name)
{
    fix f;
    open_clocked(&f, "{'profile': 'scpi', 'state': {'channel': 7},"
                     " 'rules': [{'when': {'scpi': 'CHANnel?'},"
                     "            'reply': {'lua': 'channel * 2'}},"
                     "           {'when': {'scpi': 'NAME?'}, 'reply': '${channel}'}]}");
    cr_expect(eq(str, (char *)ask(&f, "CHAN?;NAME?"), "14;7"));
    fix_close(&f);
    open_clocked(&f,
                 "{'profile': 'scpi',"
                 " 'rules': [{'when': {'scpi': 'NONE?'}, 'reply': {'lua': 'tostring(channel)'}}]}");
    cr_expect(eq(str, (char *)ask(&f, "NONE?"), "nil"), "no channels: channel is nil");
    fix_close(&f);
}

Test(sim_channels, a_step_with_channels_sees_its_channel)
{
    fix f;
    open_clocked(&f, "{'profile': 'scpi',"
                     " 'steps': [{'expect': {'scpi': 'SOURce#:INIT?', 'channels': [1, 2]},"
                     "            'reply': 'init ${channel}'}],"
                     " 'rules': [{'when': {'scpi': 'SOURce<n>:INIT?'}, 'reply': 'rule'}]}");
    cr_expect(eq(str, (char *)ask(&f, "SOUR3:INIT?"), "rule"), "channel 3: not the step's");
    cr_expect(eq(str, (char *)ask(&f, "SOUR2:INIT?"), "init 2"));
    cr_expect(eq(str, (char *)ask(&f, "SOUR2:INIT?"), "rule"), "the step is done");
    fix_close(&f);
}
