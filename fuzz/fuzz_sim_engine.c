/* The simulator's engine: fixed scripts, a fuzzed request stream.
 * Input: one byte (script index + number of scripts * the time between
 * requests in tenths of a second, for the properties' ramps), then the
 * common split byte(s) of fuzz_framing.h, then the byte stream a client
 * sends.
 *
 * The stream is cut into requests with the script's request framing (read
 * through the cuts), each request is handled, and the outcome checked:
 * reply bytes are the announced number of well-formed frames of the
 * response framing followed by the prompt; replies stay bounded by the
 * request size (no unbounded growth); a hung session answers nothing; a
 * regex that a limit cut short did not answer, and the limit counters add
 * up (each rule or step flagged first exactly once); a request whose Lua
 * failed (an error, the instruction budget, the memory cap: tight here) was
 * handled as unmatched, and the failure counters add up likewise; a
 * property without noise stays within its range or its choices, whatever
 * Lua assigned to it. Differential: the outcomes of the stream cut and
 * whole are identical. */
#include "devwire/devwire.h"
#include "engine/engine.h"
#include "script/script.h"

#include "fuzz_framing.h"

static const char *const scripts[] = {
    /* 0: SCPI signal generator: regexes, captures, lists, split writes. */
    "{\"name\": \"sg\", \"framing\": {\"request\": {\"type\": \"sentinel\", \"sentinel\": "
    "\"\\n\"}, \"response\": {\"type\": \"scpi\", \"sentinel\": \"\\n\"}},"
    " \"state\": {\"freq\": \"1000\", \"output\": \"OFF\"},"
    " \"rules\": ["
    "  {\"when\": \"*IDN?\", \"reply\": \"ACME,SG-1000,0001,1.0.3\"},"
    "  {\"when\": \"*RST\", \"set\": {\"freq\": \"1000\", \"output\": \"OFF\"}},"
    "  {\"when\": {\"regex\": \"^FREQ(UENCY)? ([0-9]{1,12})$\", \"icase\": true},"
    "   \"set\": {\"freq\": \"$2\"}},"
    "  {\"when\": {\"regex\": \"^FREQ(UENCY)?\\\\?$\", \"icase\": true}, \"reply\": \"${freq}\"},"
    "  {\"when\": {\"regex\": \"^OUTP (ON|OFF)$\"}, \"set\": {\"output\": \"$1\"}},"
    "  {\"when\": {\"prefix\": \"ECHO \"}, \"reply\": \"$0\"},"
    "  {\"when\": \"ERR?\", \"reply\": [\"-222,\\\"range\\\"\", \"0,\\\"No error\\\"\"],"
    "   \"after_last\": \"cycle\"},"
    "  {\"when\": \"WAVE?\", \"reply\": {\"hex\": \"23 32 31 36 00 01 0a 7f 80 ff 0a 10 20 30 "
    "40 50 60 70 0a 00\"}, \"split\": [3, 5]}"
    " ],"
    " \"unmatched\": {\"reply\": \"-113,\\\"Undefined header\\\"\"}}",
    /* 1: JSON lines PDU: json templates with captures and state. */
    "{\"name\": \"pdu\", \"framing\": {\"type\": \"json-lines\", \"max_frame\": 4096},"
    " \"state\": {\"out1\": false, \"load\": 1.25},"
    " \"rules\": ["
    "  {\"when\": {\"regex\": \"\\\"cmd\\\": *\\\"id\\\"\"}, \"reply\": {\"json\": {\"ok\": true, "
    "\"model\": \"PD-4\"}}},"
    "  {\"when\": {\"regex\": \"^\\\\{\\\"cmd\\\": *\\\"set\\\", *\\\"on\\\": "
    "*(true|false)\\\\}$\"},"
    "   \"set\": {\"out1\": \"$1\"}, \"reply\": {\"json\": {\"ok\": true, \"on\": \"$1\"}}},"
    "  {\"when\": {\"regex\": \"status\"}, \"reply\": {\"json\": {\"on\": \"${out1}\", "
    "\"amps\": \"${load}\"}}}"
    " ],"
    " \"unmatched\": {\"reply\": {\"json\": {\"ok\": false}}},"
    " \"periodic\": [{\"every_ms\": 1000, \"send\": {\"json\": {\"beat\": \"${out1}\"}}}]}",
    /* 2: fixed 4-byte relay board: binary, steps, faults; the maximum frame
     * is the frame itself, the tightest a script may set. */
    "{\"name\": \"relay\", \"framing\": {\"type\": \"fixed\", \"length\": 4, "
    "\"max_frame\": 4},"
    " \"state\": {\"r1\": {\"hex\": \"00\"}},"
    " \"steps\": [{\"expect\": {\"hex\": \"aa 00 00 55\"}, \"reply\": {\"hex\": \"aa 80 00 00\"}}],"
    " \"rules\": ["
    "  {\"when\": {\"hex\": \"aa 01 01 55\"}, \"reply\": {\"hex\": \"aa 81 01 ${r1}\"}},"
    "  {\"when\": {\"hex\": \"aa 10 01 55\"}, \"set\": {\"r1\": {\"hex\": \"01\"}}, "
    "\"reply\": {\"hex\": \"aa 90 01 01\"}},"
    "  {\"when\": {\"hex\": \"aa 11 01 55\"}, \"set\": {\"r1\": {\"hex\": \"00\"}}, "
    "\"reply\": {\"hex\": \"aa 91 01 00\"}},"
    "  {\"when\": {\"hex\": \"aa ee ee 55\"}, \"fault\": \"garbage\", \"garbage\": {\"hex\": "
    "\"ff\"}},"
    "  {\"when\": {\"hex\": \"aa dd dd 55\"}, \"fault\": \"hang\", \"fault_on\": 2},"
    "  {\"when\": {\"prefix\": {\"hex\": \"bb\"}}, \"reply\": \"$0\"},"
    "  {\"when\": {\"base64\": \"qv8AVQ==\"}, \"reply\": {\"hex\": \"aa ff 01 03\"}}"
    " ],"
    " \"unmatched\": {\"reply\": {\"hex\": \"aa ee 00 00\"}}}",
    /* 3: Telnet console: CRLF sentinel, prompt, frames, connection scope. */
    "{\"name\": \"console\", \"transport\": \"telnet\","
    " \"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"},"
    " \"banner\": \"SC-200\\r\\n${host}> \", \"prompt\": \"sc> \","
    " \"state\": {\"host\": \"lab\"}, \"scope\": \"connection\","
    " \"steps\": [{\"expect\": \"login\", \"reply\": \"welcome\"},"
    "            {\"expect\": {\"regex\": \"^pw (.*)$\"}, \"reply\": \"ok $1\"}],"
    " \"rules\": ["
    "  {\"when\": \"help\", \"reply\": {\"frames\": [\"show\", \"set hostname NAME\", \"exit\"]}},"
    "  {\"when\": {\"regex\": \"^set hostname ([A-Za-z0-9.-]{1,32})$\"}, \"set\": {\"host\": "
    "\"$1\"}, \"reply\": \"hostname set to $1\"},"
    "  {\"when\": \"show\", \"reply\": [\"${host}\", \"again ${host}\"], \"after_last\": "
    "\"silent\"},"
    "  {\"when\": \"exit\", \"reply\": null, \"fault\": \"close\"}"
    " ],"
    " \"unmatched\": {\"reply\": \"% Unknown command: ${request}\"}}",
    /* 4: length-prefixed (2 bytes, little-endian) request, SCPI-ish
     * response with blocks; echo of any bytes. */
    "{\"name\": \"lp\", \"framing\": {\"request\": {\"type\": \"length-prefixed\", "
    "\"header_size\": 2, \"endian\": \"little\"}, \"response\": {\"type\": "
    "\"length-prefixed\", \"header_size\": 1}},"
    " \"rules\": ["
    "  {\"when\": {\"prefix\": \"E\"}, \"reply\": \"$0\"},"
    "  {\"when\": {\"regex\": \"^R([0-9])\"}, \"reply\": {\"frames\": [\"$1\", \"$0\", \"\"]}},"
    "  {\"when\": \"\", \"fault\": \"reset\"}"
    " ],"
    " \"unmatched\": {\"reply\": {\"hex\": \"00 ff\"}}}",
    /* 5: regexes that backtrack without end on some requests (the limits
     * cut them short), a back-reference, a regex step. */
    "{\"name\": \"hostile\","
    " \"steps\": [{\"expect\": {\"regex\": \"^(x+x+)+y$\"}, \"reply\": \"step\"}],"
    " \"rules\": ["
    "  {\"when\": {\"regex\": \"(a+)+$\"}, \"reply\": \"M $1\"},"
    "  {\"when\": {\"regex\": \"^(a|aa)+b$\", \"icase\": true}, \"reply\": \"B\"},"
    "  {\"when\": {\"regex\": \"^(\\\\w+)=\\\\1$\"}, \"reply\": \"same $1\"},"
    "  {\"when\": \"ping\", \"reply\": \"pong\"}"
    " ],"
    " \"unmatched\": {\"reply\": \"?\"}}",
    /* 6: SCPI profile: header patterns, typed parameters, overloads, the
     * status model and the built-ins, a block reply, a fault. */
    "{\"name\": \"scpi\", \"profile\": {\"type\": \"scpi\", \"error_queue\": 4},"
    " \"framing\": {\"request\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},"
    " \"response\": {\"type\": \"scpi\", \"sentinel\": \"\\n\"}},"
    " \"state\": {\"f\": \"1\", \"o\": \"0\", \"t\": \"IMM\"},"
    " \"steps\": [{\"expect\": {\"scpi\": \"*IDN?\"}, \"reply\": \"first\"}],"
    " \"rules\": ["
    "  {\"when\": {\"scpi\": \"[SOURce:]FREQuency[:CW]\", \"params\": [\"MINimum\"]},"
    "   \"set\": {\"f\": \"9\"}},"
    "  {\"when\": {\"scpi\": \"[SOURce:]FREQuency[:CW]\", \"params\": [\"numeric\"]},"
    "   \"set\": {\"f\": \"$1\"}},"
    "  {\"when\": {\"scpi\": \"[SOURce:]FREQuency[:CW]?\"}, \"reply\": \"${f}\"},"
    "  {\"when\": {\"scpi\": \"OUTPut[1-2][:STATe]\", \"params\": [\"bool\"]},"
    "   \"set\": {\"o\": \"$1\"}},"
    "  {\"when\": {\"scpi\": \"OUTPut<n>?\"}, \"reply\": [\"${o}\", \"$0\"],"
    "   \"after_last\": \"cycle\"},"
    "  {\"when\": {\"scpi\": \"TRIGger:SOURce\", \"params\": [\"IMMediate|BUS\", \"any\"]},"
    "   \"set\": {\"t\": \"$1$2\"}},"
    "  {\"when\": {\"scpi\": \"TRIGger:SOURce?\"}, \"reply\": \"${t}\"},"
    "  {\"when\": {\"scpi\": \"DATA\", \"params\": [\"string\", \"block\"]},"
    "   \"reply\": \"$1,$2\"},"
    "  {\"when\": {\"regex\": \"^ECHO (.*)$\"}, \"reply\": \"$1\"},"
    "  {\"when\": {\"scpi\": \"TRACe?\"}, \"reply\": {\"hex\": \"23 31 33 0a 0a 0a\"},"
    "   \"split\": [2]},"
    "  {\"when\": {\"scpi\": \"SYSTem:KILL\"}, \"fault\": \"close\", \"fault_on\": 2}"
    " ]}",
    /* 7: SCPI properties of every type: ranges, units, MIN/MAX/DEF,
     * formats, access modes, a ramp and noise; a rule over a header. */
    "{\"name\": \"props\", \"profile\": \"scpi\", \"state\": {\"v\": \"x\"},"
    " \"properties\": {"
    "  \"freq\": {\"type\": \"float\", \"scpi\": \"[SOURce:]FREQuency[:CW]\", \"unit\": \"Hz\","
    "   \"min\": 9e3, \"max\": 6e9, \"default\": 1e6},"
    "  \"pow\": {\"type\": \"float\", \"scpi\": \"POWer\", \"min\": -130, \"max\": 20,"
    "   \"format\": \"%+.3e dBm\"},"
    "  \"n\": {\"type\": \"int\", \"scpi\": \"SWEep:POINts\", \"min\": 2, \"max\": 1001,"
    "   \"default\": 11, \"format\": \"%05x\"},"
    "  \"out\": {\"type\": \"bool\", \"scpi\": \"OUTPut[1-2][:STATe]\"},"
    "  \"trig\": {\"type\": \"enum\", \"scpi\": \"TRIGger:SOURce\","
    "   \"values\": [\"IMMediate\", \"BUS\", \"EXTernal\"]},"
    "  \"text\": {\"type\": \"string\", \"scpi\": \"DISPlay:TEXT\", \"default\": \"a\\\"b\"},"
    "  \"volt\": {\"type\": \"float\", \"scpi\": \"VOLTage\", \"unit\": \"V\", \"min\": 0,"
    "   \"max\": 30},"
    "  \"vout\": {\"type\": \"float\", \"scpi\": \"MEASure:VOLTage\", \"access\": \"ro\","
    "   \"min\": 0, \"max\": 30, \"ramp\": {\"to\": \"volt\", \"rate\": 2},"
    "   \"noise\": {\"amplitude\": 0.01, \"distribution\": \"normal\"}},"
    "  \"key\": {\"type\": \"int\", \"scpi\": \"SYSTem:KEY\", \"access\": \"wo\"}"
    " },"
    " \"rules\": ["
    "  {\"when\": {\"scpi\": \"POWer?\"}, \"reply\": \"P ${pow} ${v}\"},"
    "  {\"when\": {\"scpi\": \"HALF\", \"params\": [\"any\"]}, \"set\": {\"freq\": \"$1\"}}"
    " ]}",
    /* 8: properties of a line protocol: commands, acks, on_error, a ramp. */
    "{\"name\": \"tc\", \"properties\": {"
    "  \"sp\": {\"type\": \"float\", \"command\": \"SP\", \"min\": -40, \"max\": 180,"
    "   \"default\": 22, \"ack\": \"OK\"},"
    "  \"t\": {\"type\": \"float\", \"command\": \"T\", \"access\": \"ro\", \"default\": 22,"
    "   \"format\": \"%.2f\", \"ramp\": {\"to\": \"sp\", \"rate\": 0.5},"
    "   \"noise\": {\"amplitude\": 0.1}},"
    "  \"m\": {\"type\": \"enum\", \"command\": \"MODE\", \"values\": [\"AUTO\", \"MANual\"]},"
    "  \"on\": {\"type\": \"bool\", \"command\": \"ON\"},"
    "  \"s\": {\"type\": \"string\", \"command\": \"NAME\", \"access\": \"wo\"}"
    " },"
    " \"rules\": [{\"when\": \"ST?\", \"reply\": \"${sp} ${t} ${m} ${on} ${s}\"},"
    "  {\"when\": {\"prefix\": \"SET \"}, \"set\": {\"sp\": \"$0\", \"m\": \"man\"}}],"
    " \"on_error\": {\"reply\": \"ERR $0\"},"
    " \"unmatched\": {\"reply\": \"?\"}}",
    /* 9: Lua: conditions on a step and on rules (exact rules with the same
     * bytes), computed replies and set values, "lua" actions, failures (an
     * error, the instruction budget, the memory cap) undone and handled as
     * unmatched; tight limits (see serve). */
    "{\"name\": \"lua\", \"state\": {\"n\": 0, \"mode\": \"OK\", \"on\": false, \"v\": 1.5},"
    " \"steps\": [{\"expect\": {\"regex\": \"^ARM ([0-9]{1,3})$\"},"
    "   \"if\": \"tonumber(captures[1]) > 2\", \"reply\": \"armed\"}],"
    " \"rules\": ["
    "  {\"when\": \"N?\", \"reply\": {\"lua\": \"n\"}},"
    "  {\"when\": {\"regex\": \"^ADD (-?[0-9]{1,6})$\"},"
    "   \"set\": {\"n\": {\"lua\": \"n + tonumber(captures[1])\"}}, \"reply\": \"${n}\"},"
    "  {\"when\": \"ON\", \"if\": \"not on\", \"set\": {\"on\": true}, \"reply\": \"on\"},"
    "  {\"when\": \"ON\", \"if\": \"n > 5\", \"set\": {\"on\": false}, \"reply\": \"off\"},"
    "  {\"when\": \"ON\", \"reply\": \"already\"},"
    "  {\"when\": {\"prefix\": \"LOOP\"}, \"lua\": \"local i = 0 while true do i = i + 1 end\"},"
    "  {\"when\": {\"prefix\": \"MEM\"}, \"reply\": {\"lua\": \"string.rep(request, 1e7)\"}},"
    "  {\"when\": {\"prefix\": \"GROW\"},"
    "   \"lua\": \"local t = {} for i = 1, 1e6 do t[i] = request .. i end\"},"
    "  {\"when\": {\"prefix\": \"ERR\"}, \"set\": {\"mode\": \"changed\"}, \"lua\": "
    "\"error(request)\"},"
    "  {\"when\": {\"prefix\": \"RND\"}, \"reply\": {\"lua\": \"math.random(1, 100)\"}},"
    "  {\"when\": {\"prefix\": \"HIT\"},"
    "   \"lua\": \"n = n + 1 if n % 3 == 0 then mode = 'E' .. n end\","
    "   \"reply\": [\"${mode}\", {\"lua\": \"mode .. ':' .. #request\"}], \"after_last\": "
    "\"cycle\"},"
    "  {\"when\": {\"regex\": \"^IF (.{0,40})$\"}, \"if\": \"#captures[1] % 2 == 0\","
    "   \"reply\": \"even $1\"},"
    "  {\"when\": {\"prefix\": \"STR\"},"
    "   \"reply\": {\"lua\": \"(request:upper():gsub('%d', '#'))\"}},"
    "  {\"when\": \"NOW\", \"reply\": {\"lua\": \"now\"}},"
    "  {\"when\": {\"prefix\": \"NIL\"}, \"reply\": {\"lua\": \"nosuch\"}}"
    " ],"
    " \"unmatched\": {\"reply\": \"? ${mode} ${n}\"}}",
    /* 10: Lua in the SCPI profile; status bits bound to conditions (one
     * that fails), an overlapped command; rules with channels, scpi.error
     * with codes and messages from the request. */
    "{\"name\": \"scpi-lua\", \"profile\": \"scpi\", \"state\": {\"v\": 0, \"lim\": 10},"
    " \"rules\": ["
    "  {\"when\": {\"scpi\": \"VOLTage\", \"params\": [\"numeric\"]},"
    "   \"if\": \"(tonumber(captures[1]) or 0) <= lim\", \"set\": {\"v\": \"$1\"}},"
    "  {\"when\": {\"scpi\": \"VOLTage?\"}, \"reply\": {\"lua\": \"string.format('%.3f', v)\"}},"
    "  {\"when\": {\"scpi\": \"LIMit\", \"params\": [\"numeric\"]},"
    "   \"lua\": \"lim = tonumber(captures[1]) or error('not a number')\"},"
    "  {\"when\": {\"scpi\": \"SPIN\"}, \"lua\": \"while true do end\"},"
    "  {\"when\": {\"scpi\": \"INITiate\"}, \"busy_ms\": 250},"
    "  {\"when\": {\"scpi\": \"[CHANnel#:]ERRor\", \"params\": [\"any\", \"any\"],"
    "   \"channels\": [1, 2, 3]},"
    "   \"lua\": \"scpi.error(tonumber(captures[1]) or -222, captures[2] ~= '0' and captures[2]"
    " or nil) v = channel\"},"
    "  {\"when\": {\"scpi\": \"CHANnel#:NAME?\", \"channels\": [2, 4]},"
    "   \"reply\": \"CH${channel} ${v}\"}"
    " ],"
    " \"status\": {\"questionable\": [{\"bit\": 0, \"when\": {\"lua\": \"v > lim / 2\"}},"
    "  {\"bit\": 3, \"when\": {\"state\": \"v\", \"above\": 7}}],"
    "  \"operation\": [{\"bit\": 4, \"when\": {\"busy\": true}}],"
    "  \"stb\": [{\"bit\": 1, \"when\": {\"lua\": \"v < 0 or error('negative')\"}}]}}",
    /* 11: properties and Lua together: a bench supply whose current is
     * computed from its properties and a variable, Lua that sets
     * properties (a refused value fails the request and undoes what it
     * set), an "if" over properties, an enum set from Lua. */
    "{\"name\": \"mixed\", \"state\": {\"ohms\": 10, \"trips\": 0},"
    " \"properties\": {"
    "  \"volt\": {\"type\": \"float\", \"command\": \"VOLT\", \"min\": 0, \"max\": 30,"
    "   \"default\": 5},"
    "  \"lim\": {\"type\": \"float\", \"command\": \"CURR\", \"min\": 0, \"max\": 3, \"default\": "
    "1},"
    "  \"out\": {\"type\": \"bool\", \"command\": \"OUTP\"},"
    "  \"vout\": {\"type\": \"float\", \"command\": \"VOUT\", \"access\": \"ro\", \"min\": 0,"
    "   \"max\": 30, \"ramp\": {\"to\": \"volt\", \"rate\": 2}, \"noise\": {\"amplitude\": 0.01}},"
    "  \"mode\": {\"type\": \"enum\", \"command\": \"MODE\", \"values\": [\"CV\", \"CC\"]},"
    "  \"tag\": {\"type\": \"string\", \"command\": \"TAG\"}"
    " },"
    " \"rules\": ["
    "  {\"when\": \"I?\", \"reply\": {\"lua\": \"out and math.min(vout / ohms, lim) or 0\"}},"
    "  {\"when\": {\"regex\": \"^SET (.{0,12})$\"},"
    "   \"lua\": \"volt = tonumber(captures[1]) or captures[1]\", \"reply\": \"${volt}\"},"
    "  {\"when\": {\"regex\": \"^OHMS (.{0,12})$\"},"
    "   \"lua\": \"ohms = tonumber(captures[1]) or error('not a number')\"},"
    "  {\"when\": \"TRIP?\", \"if\": \"out and vout / ohms > lim\","
    "   \"lua\": \"trips = trips + 1 mode = 'CC'\", \"reply\": \"1 ${mode} ${trips}\"},"
    "  {\"when\": \"TRIP?\", \"reply\": \"0 ${mode}\"},"
    "  {\"when\": {\"prefix\": \"M \"}, \"set\": {\"mode\": {\"lua\": \"request:sub(3)\"}},"
    "   \"reply\": \"${mode}\"},"
    "  {\"when\": {\"prefix\": \"T \"}, \"lua\": \"tag = request:sub(3) out = not out\","
    "   \"reply\": \"${tag} ${out}\"},"
    "  {\"when\": {\"prefix\": \"BAD\"}, \"lua\": \"volt = 1 state.lim = 99\"}"
    " ],"
    " \"unmatched\": {\"reply\": \"? ${volt} ${lim} ${ohms}\"}}",
};
enum { NSCRIPTS = sizeof scripts / sizeof *scripts };

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz oracle: sim engine: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

/* Check one outcome; append a digest of it to `log`. */
static void check(dw_sim_engine *e, const dw_sim_session *ses, const uint8_t *req, size_t n,
                  const dw_sim_outcome *o, int rc, dw_buf *log)
{
    const dw_sim_script *s = dw_sim_engine_script(e);
    if (rc != DW_OK && rc != DW_EINVAL)
        fail("dw_sim_engine_handle failed", dw_err_name(rc));
    if (o->source == DW_SIM_BY_HUNG && (o->bytes.len || !dw_sim_session_hung(ses)))
        fail("a hung session answered", NULL);
    /* No unbounded growth: a reply is made of the script's literals and at
     * most a few copies of the request and of variables, themselves made of
     * literals and requests. */
    if (o->bytes.len > 64 * (n + 64) + 4096)
        fail("reply out of proportion to the request", NULL);
    if (rc == DW_OK && o->fault == DW_SIM_FAULT_NONE) {
        /* Frames, then the prompt. */
        size_t plen = s->prompt.len;
        if (o->bytes.len < plen ||
            (plen && memcmp(o->bytes.data + o->bytes.len - plen, s->prompt.data, plen) != 0))
            fail("reply does not end with the prompt", NULL);
        dw_mem_iter it;
        dw_mem_iter_init(&it, o->bytes.data, o->bytes.len - plen, NULL, 0);
        dw_buf p = DW_BUF_INIT;
        size_t frames = 0;
        int urc;
        const dw_marshaller *m = dw_sim_engine_response_marshaller(e);
        while ((urc = dw_unmarshall(m, &it.base, &p, NULL)) == DW_OK)
            frames++;
        dw_buf_free(&p);
        if (urc != DW_EOF || frames != o->nframes)
            fail("reply bytes are not the announced well-formed frames", dw_err_name(urc));
    }
    for (size_t i = 0; i < o->nlimits; i++) {
        const dw_sim_limit_hit *h = &o->limits[i];
        size_t count = h->source == DW_SIM_BY_STEP ? s->nsteps : s->nrules;
        if ((h->source != DW_SIM_BY_STEP && h->source != DW_SIM_BY_RULE) || h->index >= count)
            fail("a limit hit names no step or rule", NULL);
        if (h->source == o->source && h->index == o->index)
            fail("a regex that gave up answered", h->name);
        dw_buf_printf(log, "L%d:%zu ", (int)h->source, h->index);
    }
    if (o->lua.name) {
        size_t count = o->lua.source == DW_SIM_BY_STEP ? s->nsteps : s->nrules;
        if ((o->lua.source != DW_SIM_BY_STEP && o->lua.source != DW_SIM_BY_RULE) ||
            o->lua.index >= count || !o->lua.message || !*o->lua.message)
            fail("a Lua failure names no step or rule, or says nothing", NULL);
        if (o->source != DW_SIM_BY_UNMATCHED)
            fail("a request whose Lua failed was not handled as unmatched", o->lua.name);
        dw_buf_printf(log, "F%d:%zu:%s ", (int)o->lua.source, o->lua.index, o->lua.message);
    }
    dw_buf_printf(log, "%d %d %zu %d %d %u %zu|", rc, (int)o->source, o->index, (int)o->fault,
                  o->close, o->delay_ms, o->nframes);
    dw_buf_append(log, o->bytes.data, o->bytes.len);
    (void)req;
}

/* Per-rule and per-step counters add up to their total (and to `events`,
 * what the outcomes reported, unless SIZE_MAX), and every rule or step
 * counted was flagged first exactly once. */
typedef uint64_t (*counter)(const dw_sim_engine *, size_t);
static void check_counters(const dw_sim_engine *e, counter rule, counter step, uint64_t total,
                           size_t events, size_t firsts, const char *what)
{
    const dw_sim_script *s = dw_sim_engine_script(e);
    uint64_t sum = 0;
    size_t counted = 0;
    for (size_t i = 0; i < s->nrules; i++) {
        sum += rule(e, i);
        counted += rule(e, i) != 0;
    }
    for (size_t i = 0; i < s->nsteps; i++) {
        sum += step(e, i);
        counted += step(e, i) != 0;
    }
    if (sum != total || (events != SIZE_MAX && sum != events))
        fail("counters do not add up", what);
    if (counted != firsts)
        fail("a rule's first event was not flagged exactly once", what);
}

static double fixed_clock(void *arg)
{
    (void)arg;
    return 1.5;
}

/* Every property without noise is within its range (or one of its
 * choices), whatever the requests did. */
static void check_props(dw_sim_session *ses, const dw_sim_script *s, double now)
{
    dw_sim_props_state *st = dw_sim_session_props(ses);
    for (size_t i = 0; st && i < dw_sim_props_count(s->props); i++) {
        const dw_sim_prop_def *d = dw_sim_props_def(s->props, i);
        dw_sim_prop_value v;
        dw_sim_prop_get(st, i, now, &v);
        if (d->noise != DW_SIM_NOISE_NONE || d->type == DW_SIM_PROP_STRING)
            continue;
        double lo = d->type == DW_SIM_PROP_ENUM ? 0 : d->min;
        double hi = d->type == DW_SIM_PROP_ENUM ? (double)d->nchoices - 1 : d->max;
        if (!(v.num >= lo && v.num <= hi))
            fail("a property left its range", d->name);
    }
}

/* Serve the stream cut at `cuts`, request k at time k * step seconds; the
 * log digests every outcome. */
static void serve(const dw_sim_script *s, const uint8_t *stream, size_t len, const size_t *cuts,
                  size_t ncuts, double step, dw_buf *log)
{
    dw_sim_engine *e = NULL;
    dw_error err;
    if (dw_sim_engine_new(s, &e, &err) != DW_OK)
        fail("engine", dw_error_message(&err));
    /* Tight Lua limits; the same seed and time for the whole and the cut
     * stream. The wall-clock deadline is far beyond what 2000 instructions
     * and 512 KiB take, so that only the budget and the cap, which count
     * the same in both runs, decide: a deadline of 10 ms could end a chunk
     * in one run and not in the other on a loaded machine. */
    dw_sim_engine_lua_limits(e, 2000, (size_t)512 << 10);
    dw_sim_engine_lua_deadline(e, (uint64_t)10 * 1000000000u);
    dw_sim_engine_seed(e, 7);
    dw_sim_engine_set_clock(e, fixed_clock, NULL);
    dw_sim_session *ses = dw_sim_session_new(e);
    if (!ses)
        abort();
    dw_buf banner = DW_BUF_INIT;
    if (dw_sim_engine_banner(e, ses, &banner) != DW_OK)
        fail("banner", NULL);
    dw_buf_append(log, banner.data, banner.len);
    dw_buf_free(&banner);
    dw_mem_iter it;
    dw_mem_iter_init(&it, stream, len, cuts, ncuts);
    const dw_marshaller *req_m = dw_sim_engine_request_marshaller(e);
    dw_buf req = DW_BUF_INIT;
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    int rc;
    size_t count = 0, firsts = 0, lua_failures = 0, lua_firsts = 0;
    while ((rc = dw_unmarshall(req_m, &it.base, &req, NULL)) == DW_OK) {
        if (++count > len + 1)
            fail("more requests than bytes", NULL);
        dw_error_clear(&err);
        double now = 1000 + (double)count * step;
        int hrc = dw_sim_engine_handle_at(e, ses, req.data, req.len, now, &o, &err);
        check(e, ses, req.data, req.len, &o, hrc, log);
        check_props(ses, s, now);
        for (size_t i = 0; i < o.nlimits; i++)
            firsts += (size_t)o.limits[i].first;
        lua_failures += o.lua.name != NULL;
        lua_firsts += o.lua.name && o.lua.first;
        if (o.fault == DW_SIM_FAULT_CLOSE || o.fault == DW_SIM_FAULT_RESET || o.close)
            break; /* the connection ends */
    }
    for (size_t i = 0; i < s->nperiodic; i++) {
        dw_buf out = DW_BUF_INIT;
        rc = dw_sim_engine_periodic(e, ses, i, &out, &err);
        if (rc != DW_OK && rc != DW_EINVAL)
            fail("periodic", dw_err_name(rc));
        dw_buf_append(log, out.data, out.len);
        dw_buf_free(&out);
    }
    if (dw_sim_engine_requests(e) != count)
        fail("request counter", NULL);
    check_counters(e, dw_sim_engine_rule_limit_hits, dw_sim_engine_step_limit_hits,
                   dw_sim_engine_regex_limit_hits(e), SIZE_MAX, firsts, "regex limits");
    check_counters(e, dw_sim_engine_rule_lua_errors, dw_sim_engine_step_lua_errors,
                   dw_sim_engine_lua_errors(e), lua_failures, lua_firsts, "Lua failures");
    dw_sim_outcome_free(&o);
    dw_buf_free(&req);
    dw_sim_session_free(ses);
    dw_sim_engine_free(e);
}

static dw_sim_script *loaded[NSCRIPTS];

static void free_scripts(void)
{
    for (size_t i = 0; i < NSCRIPTS; i++)
        dw_sim_script_free(loaded[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loaded[0]) {
        for (size_t i = 0; i < NSCRIPTS; i++) {
            dw_error err;
            if (dw_sim_script_load_buffer("fixed.json", scripts[i], strlen(scripts[i]), &loaded[i],
                                          &err) != DW_OK)
                fail("a fixed script does not load", dw_error_message(&err));
        }
        atexit(free_scripts);
    }
    fz_reader r = {data, size};
    /* The first byte: the script, and the time between requests (tenths
     * of a second). */
    int first = fz_byte(&r);
    const dw_sim_script *s = loaded[first % NSCRIPTS];
    double step = (double)(first / NSCRIPTS) / 10;
    fz_split sp;
    fz_read_split(&r, &sp);
    if (r.n > 8192)
        r.n = 8192;
    size_t ncuts;
    size_t *cuts = fz_cuts(&sp, r.n, &ncuts);
    dw_buf whole = DW_BUF_INIT, cut = DW_BUF_INIT;
    serve(s, r.p, r.n, NULL, 0, step, &whole);
    serve(s, r.p, r.n, cuts, ncuts, step, &cut);
    if (whole.len != cut.len || (whole.len && memcmp(whole.data, cut.data, whole.len) != 0))
        fail("the cut stream is served differently from the whole stream", NULL);
    dw_buf_free(&whole);
    dw_buf_free(&cut);
    free(cuts);
    return 0;
}
