/* devwire-sim script loader: every feature loads into the expected model,
 * every kind of bad script is refused with its exact FILE:LINE:COL: PATH:
 * message, the examples and fixtures load, the JSON Schema agrees. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script/script.h"
#include "sim_proc.h"

#define EXAMPLES DW_SOURCE_DIR "/sim/examples"
#define FIXTURES DW_SOURCE_DIR "/tests/fixtures/scripts"
#define SCHEMA   DW_SOURCE_DIR "/sim/schema/devwire-sim.schema.json"

/* Test scripts are written with single quotes for readability: J() turns
 * them into double quotes (no test script needs a literal '). */
static char *J(const char *s)
{
    char *d = strdup(s);
    cr_assert(d != NULL);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

/* Load text from a buffer of exactly its size (no NUL after it), so that
 * an over-read is caught by the sanitizers. */
static int load_exact(const char *name, const char *text, size_t len, dw_sim_script **s,
                      dw_error *err)
{
    char *buf = malloc(len ? len : 1);
    cr_assert(buf != NULL);
    memcpy(buf, text, len);
    int rc = dw_sim_script_load_buffer(name, buf, len, s, err);
    free(buf);
    return rc;
}

static dw_sim_script *load_ok(const char *script)
{
    char *text = J(script);
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = load_exact("t.json", text, strlen(text), &s, &err);
    cr_assert(eq(int, rc, DW_OK), "script %s was refused: %s", text, err.message);
    cr_assert(s != NULL);
    free(text);
    return s;
}

/* The script is refused with exactly `message`. */
static void refused(const char *script, const char *message)
{
    char *text = J(script);
    dw_sim_script *s = (dw_sim_script *)1;
    dw_error err;
    int rc = load_exact("t.json", text, strlen(text), &s, &err);
    cr_expect(eq(int, rc, DW_ESCRIPT), "script %s: expected DW_ESCRIPT, got %s", text,
              dw_err_name(rc));
    cr_expect(s == NULL, "a refused script must leave *out NULL");
    cr_expect(eq(str, err.message, (char *)message), "script %s", text);
    if (rc == DW_OK)
        dw_sim_script_free(s);
    free(text);
}

static int bytes_eq(const dw_sim_bytes *b, const void *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}
#define BYTES_EQ(b, lit) bytes_eq(&(b), (lit), sizeof(lit) - 1)

/* The template as text: literals as they are, ${name} for variables, $N for
 * captures. */
static const char *show(const dw_sim_script *s, const dw_sim_template *t)
{
    static char out[4][512];
    static int k;
    k = (k + 1) % 4;
    char *o = out[k];
    size_t len = 0;
    o[0] = '\0';
    for (size_t i = 0; i < t->nsegs; i++) {
        const dw_sim_seg *g = &t->segs[i];
        if (g->kind == DW_SIM_SEG_LITERAL) {
            for (size_t j = 0; j < g->literal.len && len + 5 < 512; j++) {
                uint8_t c = g->literal.data[j];
                len += (size_t)(c >= 0x20 && c < 0x7f ? snprintf(o + len, 512 - len, "%c", c)
                                                      : snprintf(o + len, 512 - len, "\\x%02x", c));
            }
        } else if (g->kind == DW_SIM_SEG_VAR) {
            len += (size_t)snprintf(o + len, 512 - len, "${%s}", s->vars[g->var].name);
        } else {
            len += (size_t)snprintf(o + len, 512 - len, "$%u", g->capture);
        }
    }
    return o;
}

/* ---- defaults and top level ---------------------------------------------- */

Test(script, empty_object_has_defaults)
{
    dw_sim_script *s = load_ok("{}");
    cr_expect(eq(str, s->name, "t.json"), "the name defaults to the file's base name");
    cr_expect(eq(str, s->path, "t.json"));
    cr_expect(eq(int, s->transport, DW_SIM_TCP));
    cr_expect(eq(int, s->scope, DW_SIM_SCOPE_SHARED));
    cr_expect(eq(int, s->request_framing.type, DW_SIM_FRAMING_SENTINEL));
    cr_expect(eq(int, s->response_framing.type, DW_SIM_FRAMING_SENTINEL));
    cr_expect(BYTES_EQ(s->request_framing.sentinel, "\n"));
    cr_expect(BYTES_EQ(s->response_framing.sentinel, "\n"));
    cr_expect(eq(sz, s->request_framing.max_frame, DW_DEFAULT_MAX_FRAME));
    cr_expect(eq(sz, s->banner.nsegs, 0));
    cr_expect(eq(sz, s->prompt.len, 0));
    cr_expect(eq(sz, s->nvars + s->nsteps + s->nrules + s->nperiodic, 0));
    cr_expect(eq(sz, s->unmatched.nreplies, 0), "unmatched defaults to no reply");
    cr_expect(eq(int, s->unmatched.then, DW_SIM_THEN_NONE));
    dw_sim_script_free(s);
}

Test(script, top_level_fields)
{
    dw_sim_script *s = load_ok("{'$schema': 'x', 'name': 'Box', 'description': 'd',"
                               " 'transport': 'telnet', 'scope': 'connection',"
                               " 'state': {'sn': 'A1'}, 'banner': 'Box ${sn}\\r\\n> ',"
                               " 'prompt': '> '}");
    cr_expect(eq(str, s->name, "Box"));
    cr_expect(eq(int, s->transport, DW_SIM_TELNET));
    cr_expect(eq(int, s->scope, DW_SIM_SCOPE_CONNECTION));
    cr_expect(eq(str, (char *)show(s, &s->banner), "Box ${sn}\\x0d\\x0a> "));
    cr_expect(BYTES_EQ(s->prompt, "> "));
    dw_sim_script_free(s);

    s = load_ok("{'banner': {'hex': '00 ff'}, 'prompt': {'base64': 'AP8='}}");
    cr_expect(eq(str, (char *)show(s, &s->banner), "\\x00\\xff"));
    cr_expect(BYTES_EQ(s->prompt, "\0\xff"));
    dw_sim_script_free(s);
}

Test(script, tcp_quickack)
{
    dw_sim_script *s = load_ok("{}");
    cr_expect(eq(int, s->tcp_ack, DW_SIM_TCP_ACK_DEFAULT), "the command line decides");
    dw_sim_script_free(s);
    s = load_ok("{'tcp': {'quickack': false, 'description': 'as the real one'}}");
    cr_expect(eq(int, s->tcp_ack, DW_SIM_TCP_ACK_DELAYED));
    dw_sim_script_free(s);
    s = load_ok("{'tcp': {'quickack': true}}");
    cr_expect(eq(int, s->tcp_ack, DW_SIM_TCP_ACK_QUICK));
    dw_sim_script_free(s);
    s = load_ok("{'tcp': {}}");
    cr_expect(eq(int, s->tcp_ack, DW_SIM_TCP_ACK_DEFAULT));
    dw_sim_script_free(s);
    refused("{'tcp': {'quickack': 0}}", "t.json:1:22: tcp.quickack: expected true or false");
    refused("{'tcp': {'quikack': true}}",
            "t.json:1:10: tcp.quikack: unknown key (did you mean \"quickack\"?)");
    refused("{'tcp': true}", "t.json:1:9: tcp: expected object");
}

/* "telnet": the options a Telnet device offers and agrees to. */
Test(script, telnet_options)
{
    dw_sim_script *s = load_ok("{'transport': 'telnet'}");
    cr_expect(eq(int, s->telnet.set, 0), "the default table: WILL SGA");
    dw_sim_script_free(s);
    s = load_ok("{'transport': 'telnet', 'telnet': {'will': ['echo', 'sga', 200], "
                "'do': ['binary', 'new_environ'], 'description': 'as telnetd'}}");
    cr_expect(eq(int, s->telnet.set, 1));
    cr_expect(
        dw_telnet_option_isset(s->telnet.will, 1) && dw_telnet_option_isset(s->telnet.will, 3) &&
        dw_telnet_option_isset(s->telnet.will, 200) && !dw_telnet_option_isset(s->telnet.will, 0));
    cr_expect(dw_telnet_option_isset(s->telnet.ask, 0) &&
              dw_telnet_option_isset(s->telnet.ask, 39) &&
              !dw_telnet_option_isset(s->telnet.ask, 1));
    dw_sim_script_free(s);
    s = load_ok("{'transport': 'telnet', 'telnet': {}}");
    cr_expect(eq(int, s->telnet.set, 1), "an empty table refuses everything");
    dw_sim_script_free(s);
    refused("{'telnet': {'will': ['echo']}}",
            "t.json:1:12: telnet: only for \"transport\": \"telnet\"");
    refused("{'transport': 'serial', 'telnet': {}}",
            "t.json:1:35: telnet: only for \"transport\": \"telnet\"");
    refused("{'transport': 'telnet', 'telnet': {'will': ['ecco']}}",
            "t.json:1:45: telnet.will[0]: unknown Telnet option \"ecco\" (did you mean \"echo\"?)");
    refused("{'transport': 'telnet', 'telnet': {'do': ['sga', 'terminal']}}",
            "t.json:1:50: telnet.do[1]: unknown Telnet option \"terminal\" (expected a name such "
            "as \"echo\", \"sga\", \"binary\", \"ttype\", \"naws\" or \"linemode\", or a "
            "number 0 to 255)");
    refused("{'transport': 'telnet', 'telnet': {'do': [256]}}",
            "t.json:1:43: telnet.do[0]: must be at most 255 (got 256)");
    refused("{'transport': 'telnet', 'telnet': {'will': ['sga', 3]}}",
            "t.json:1:52: telnet.will[1]: option 3 is listed twice");
    refused("{'transport': 'telnet', 'telnet': {'will': ['compress2']}}",
            "t.json:1:45: telnet.will[0]: MCCP2 compression (compress2) is not supported");
    refused("{'transport': 'telnet', 'telnet': {'will': 'echo'}}",
            "t.json:1:44: telnet.will: expected an array of Telnet options");
    refused("{'transport': 'telnet', 'telnet': {'wont': []}}",
            "t.json:1:36: telnet.wont: unknown key");
    refused("{'transport': 'telnet', 'telnet': ['echo']}", "t.json:1:35: telnet: expected object");
}

/* ---- framing ------------------------------------------------------------- */

Test(script, framing_types_and_options)
{
    dw_sim_script *s = load_ok("{'framing': {'type': 'sentinel', 'sentinel': '\\r\\n',"
                               " 'max_frame': 1024}}");
    cr_expect(BYTES_EQ(s->request_framing.sentinel, "\r\n"));
    cr_expect(BYTES_EQ(s->response_framing.sentinel, "\r\n"));
    cr_expect(eq(sz, s->response_framing.max_frame, 1024));
    cr_expect(s->request_framing.sentinel.data != s->response_framing.sentinel.data,
              "each direction owns its sentinel");
    dw_sim_script_free(s);

    s = load_ok("{'framing': {'type': 'sentinel', 'sentinel': {'hex': '00'}}}");
    cr_expect(BYTES_EQ(s->request_framing.sentinel, "\0"));
    dw_sim_script_free(s);

    s = load_ok("{'framing': {'type': 'fixed', 'length': 4}}");
    cr_expect(eq(int, s->request_framing.type, DW_SIM_FRAMING_FIXED));
    cr_expect(eq(sz, s->request_framing.length, 4));
    cr_expect(eq(sz, s->request_framing.sentinel.len, 0));
    dw_sim_script_free(s);

    /* A frame length equal to max_frame fits (one more is refused: see
     * script_errors.framing). */
    s = load_ok("{'framing': {'type': 'fixed', 'length': 8, 'max_frame': 8}}");
    cr_expect(eq(sz, s->request_framing.length, 8));
    cr_expect(eq(sz, s->request_framing.max_frame, 8));
    dw_sim_script_free(s);

    s = load_ok("{'framing': {'type': 'length-prefixed', 'header_size': 2, 'endian': 'little'}}");
    cr_expect(eq(int, s->request_framing.type, DW_SIM_FRAMING_LENGTH_PREFIXED));
    cr_expect(eq(u32, s->request_framing.header_size, 2));
    cr_expect(eq(int, s->request_framing.endian, DW_LITTLE_ENDIAN));
    dw_sim_script_free(s);

    s = load_ok("{'framing': {'type': 'length-prefixed', 'header_size': 4}}");
    cr_expect(eq(int, s->request_framing.endian, DW_BIG_ENDIAN), "endian defaults to big");
    dw_sim_script_free(s);

    s = load_ok("{'framing': {'type': 'scpi'}}");
    cr_expect(eq(int, s->request_framing.type, DW_SIM_FRAMING_SCPI));
    cr_expect(BYTES_EQ(s->request_framing.sentinel, "\n"), "scpi's sentinel defaults to \\n");
    dw_sim_script_free(s);

    s = load_ok("{'framing': {'request': {'type': 'sentinel', 'sentinel': '\\r'},"
                " 'response': {'type': 'json-lines', 'max_frame': 99}}}");
    cr_expect(eq(int, s->request_framing.type, DW_SIM_FRAMING_SENTINEL));
    cr_expect(BYTES_EQ(s->request_framing.sentinel, "\r"));
    cr_expect(eq(int, s->response_framing.type, DW_SIM_FRAMING_JSON_LINES));
    cr_expect(eq(sz, s->response_framing.max_frame, 99));
    cr_expect(eq(sz, s->request_framing.max_frame, DW_DEFAULT_MAX_FRAME));
    dw_sim_script_free(s);
}

Test(script, framing_marshaller)
{
    static const struct {
        const char *framing;
        const char *name;
    } cases[] = {
        {"{'type': 'sentinel', 'sentinel': '\\r\\n', 'max_frame': 77}", "sentinel"},
        {"{'type': 'fixed', 'length': 3, 'max_frame': 77}", "fixed"},
        {"{'type': 'length-prefixed', 'header_size': 1, 'max_frame': 77}", "length-prefixed"},
        {"{'type': 'scpi', 'max_frame': 77}", "scpi"},
        {"{'type': 'json-lines', 'max_frame': 77}", "json-lines"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char script[256];
        snprintf(script, sizeof script, "{'framing': %s}", cases[i].framing);
        dw_sim_script *s = load_ok(script);
        dw_marshaller *m = dw_sim_framing_marshaller(&s->request_framing);
        cr_assert(m != NULL, "%s", cases[i].name);
        cr_expect(eq(str, (char *)dw_marshaller_name(m), (char *)cases[i].name));
        cr_expect(eq(sz, dw_marshaller_max_frame(m), 77));
        dw_buf out = DW_BUF_INIT;
        if (i == 0) {
            cr_expect(eq(int, dw_marshall(m, (const uint8_t *)"ab", 2, &out, NULL), DW_OK));
            cr_expect(eq(sz, out.len, 4), "sentinel \\r\\n appended");
        }
        if (i == 1)
            cr_expect(eq(int, dw_marshall(m, (const uint8_t *)"ab", 2, &out, NULL), DW_EINVAL),
                      "fixed length 3 refuses 2 bytes");
        dw_buf_free(&out);
        dw_marshaller_free(m);
        dw_sim_script_free(s);
    }
}

/* ---- state --------------------------------------------------------------- */

Test(script, state_values)
{
    dw_sim_script *s = load_ok("{'state': {'freq': '1000', 'n': 42, 'x': 1.5, 'on': true,"
                               " 'off': false, 'raw': {'hex': '00ff'}, 'b': {'base64': 'AP8='},"
                               " 'e': '', '_a.b-c': 'ok'}}");
    cr_assert(eq(sz, s->nvars, 9));
    static const char *names[] = {"freq", "n", "x", "on", "off", "raw", "b", "e", "_a.b-c"};
    for (size_t i = 0; i < 9; i++)
        cr_expect(eq(str, s->vars[i].name, (char *)names[i]), "variables stay in document order");
    cr_expect(BYTES_EQ(s->vars[0].initial, "1000"));
    cr_expect(BYTES_EQ(s->vars[1].initial, "42"), "a number keeps its JSON text");
    cr_expect(BYTES_EQ(s->vars[2].initial, "1.5"));
    cr_expect(BYTES_EQ(s->vars[3].initial, "true"));
    cr_expect(BYTES_EQ(s->vars[4].initial, "false"));
    cr_expect(BYTES_EQ(s->vars[5].initial, "\0\xff"), "binary initial values keep NUL and 0xFF");
    cr_expect(BYTES_EQ(s->vars[6].initial, "\0\xff"));
    cr_expect(BYTES_EQ(s->vars[7].initial, ""));
    dw_sim_script_free(s);
}

/* ---- matching ------------------------------------------------------------ */

Test(script, match_forms)
{
    dw_sim_script *s = load_ok("{'rules': ["
                               "{'when': '*IDN?'},"
                               "{'when': {'exact': 'A B'}},"
                               "{'when': {'exact': {'hex': '00ff'}}},"
                               "{'when': {'prefix': 'MEAS:'}},"
                               "{'when': {'prefix': {'base64': 'AP8='}}},"
                               "{'when': {'hex': 'de ad 00 be ef'}},"
                               "{'when': {'base64': 'AAEC'}},"
                               "{'when': {'regex': '^FREQ ([0-9]+)$'}},"
                               "{'when': {'regex': '^outp (on|off)$', 'icase': true}},"
                               "{'when': ''}]}");
    cr_assert(eq(sz, s->nrules, 10));
    const dw_sim_rule *r = s->rules;
    cr_expect(eq(int, r[0].when.kind, DW_SIM_MATCH_EXACT));
    cr_expect(BYTES_EQ(r[0].when.bytes, "*IDN?"));
    cr_expect(eq(str, r[0].when.source, "*IDN?"));
    cr_expect(eq(str, r[0].name, "rules[0]"), "rules are named after their place by default");
    cr_expect(eq(int, r[1].when.kind, DW_SIM_MATCH_EXACT));
    cr_expect(BYTES_EQ(r[1].when.bytes, "A B"));
    cr_expect(BYTES_EQ(r[2].when.bytes, "\0\xff"));
    cr_expect(eq(str, r[2].when.source, "{\"exact\":{\"hex\":\"00ff\"}}"));
    cr_expect(eq(int, r[3].when.kind, DW_SIM_MATCH_PREFIX));
    cr_expect(BYTES_EQ(r[3].when.bytes, "MEAS:"));
    cr_expect(eq(int, r[4].when.kind, DW_SIM_MATCH_PREFIX));
    cr_expect(BYTES_EQ(r[4].when.bytes, "\0\xff"));
    cr_expect(eq(int, r[5].when.kind, DW_SIM_MATCH_EXACT));
    cr_expect(BYTES_EQ(r[5].when.bytes, "\xde\xad\0\xbe\xef"));
    cr_expect(BYTES_EQ(r[6].when.bytes, "\0\1\2"));
    cr_expect(eq(int, r[7].when.kind, DW_SIM_MATCH_REGEX));
    cr_expect(eq(str, r[7].when.source, "^FREQ ([0-9]+)$"));
    cr_expect(eq(u32, r[7].when.groups, 1));
    cr_expect(r[7].when.anchored, "^ anchors the pattern");
    pcre2_match_data *md = pcre2_match_data_create(2, NULL);
    cr_assert(md != NULL);
    cr_expect(eq(int, pcre2_match(r[7].when.re, (PCRE2_SPTR) "FREQ 123", 8, 0, 0, md, NULL), 2),
              "compiled at load");
    cr_expect(eq(sz, pcre2_get_ovector_pointer(md)[2], 5));
    cr_expect(eq(int, pcre2_match(r[8].when.re, (PCRE2_SPTR) "OUTP ON", 7, 0, 0, md, NULL), 2),
              "icase");
    pcre2_match_data_free(md);
    cr_expect(BYTES_EQ(r[9].when.bytes, ""), "an empty request can be matched");
    dw_sim_script_free(s);
}

Test(script, regex_matches_binary_requests)
{
    dw_sim_script *s = load_ok("{'rules': [{'when': {'regex': '^A[^x]B$'}},"
                               " {'when': {'regex': '^A.B\\\\x00$'}}]}");
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    cr_assert(md != NULL);
    cr_expect(eq(int, pcre2_match(s->rules[0].when.re, (PCRE2_SPTR) "A\0B", 3, 0, 0, md, NULL), 1),
              "a NUL inside the request is matched by a bracket expression");
    cr_expect(eq(int, pcre2_match(s->rules[1].when.re, (PCRE2_SPTR) "A\0B", 4, 0, 0, md, NULL), 1),
              "'.' matches NUL and \\x00 is a NUL byte (the subject is 4 bytes, NUL last)");
    dw_sim_script_free(s);
    pcre2_match_data_free(md);
}

Test(script, regex_shape_is_not_refused)
{
    /* Back-references and nested quantifiers load: the engine's limits bound
     * every match, so no pattern needs refusing for its shape. */
    dw_sim_script *s = load_ok("{'rules': [{'when': {'regex': '^(a)\\\\1$'}},"
                               " {'when': {'regex': '(a+)+$'}},"
                               " {'when': {'regex': '((a{100}){100}){2}'}},"
                               " {'when': {'regex': '^(?i)(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)$'}}]}");
    cr_expect(eq(int, s->rules[0].when.kind, DW_SIM_MATCH_REGEX));
    cr_expect(eq(int, s->rules[1].when.anchored, 0));
    cr_expect(eq(u32, s->rules[3].when.groups, 11), "all groups are known, $1..$9 usable");
    dw_sim_script_free(s);
}

/* ---- replies and templates ----------------------------------------------- */

Test(script, reply_forms)
{
    dw_sim_script *s =
        load_ok("{'state': {'freq': '1'}, 'rules': ["
                "{'when': 'a', 'reply': 'plain'},"
                "{'when': 'b', 'reply': {'hex': '00 0d ff'}},"
                "{'when': 'c', 'reply': {'base64': 'AA3/'}},"
                "{'when': {'regex': '^F ([0-9]+) ([a-z]+)$'}, 'reply': 'f=${freq} $1/$2 [$0] "
                "${request} $$5'},"
                "{'when': 'd', 'reply': ['1', '2', null], 'after_last': 'cycle'},"
                "{'when': 'e', 'reply': {'frames': ['one', {'hex': '7477 6f'}]}},"
                "{'when': 'f', 'reply': null},"
                "{'when': 'g'},"
                "{'when': 'h', 'reply': ['x', {'frames': ['y', 'z']}], 'after_last': 'silent'},"
                "{'when': 'i', 'reply': ''}]}");
    const dw_sim_rule *r = s->rules;
    cr_assert(eq(sz, r[0].action.nreplies, 1));
    cr_assert(eq(sz, r[0].action.nframes[0], 1));
    cr_expect(eq(str, (char *)show(s, &r[0].action.replies[0][0]), "plain"));
    cr_expect(eq(int, r[0].action.after_last, DW_SIM_REPEAT_LAST), "repeat_last by default");
    cr_expect(eq(str, (char *)show(s, &r[1].action.replies[0][0]), "\\x00\\x0d\\xff"));
    cr_expect(eq(str, (char *)show(s, &r[2].action.replies[0][0]), "\\x00\\x0d\\xff"));
    const dw_sim_template *t = &r[3].action.replies[0][0];
    cr_expect(eq(str, (char *)show(s, t), "f=${freq} $1/$2 [$0] $0 $5"));
    cr_assert(eq(sz, t->nsegs, 11), "f= ${freq} ' ' $1 / $2 ' [' $0 '] ' ${request} ' $5'");
    cr_expect(eq(int, t->segs[1].kind, DW_SIM_SEG_VAR));
    cr_expect(eq(sz, t->segs[1].var, 0));
    cr_expect(eq(int, t->segs[3].kind, DW_SIM_SEG_CAPTURE));
    cr_expect(eq(u32, t->segs[3].capture, 1));
    cr_expect(eq(int, t->segs[9].kind, DW_SIM_SEG_CAPTURE));
    cr_expect(eq(u32, t->segs[9].capture, 0), "${request} is capture 0");
    cr_expect(eq(int, t->segs[10].kind, DW_SIM_SEG_LITERAL), "$$ is a literal '$'");

    cr_assert(eq(sz, r[4].action.nreplies, 3));
    cr_expect(eq(int, r[4].action.after_last, DW_SIM_CYCLE));
    cr_expect(eq(sz, r[4].action.nframes[2], 0), "null in a list: no reply that turn");
    cr_assert(eq(sz, r[5].action.nreplies, 1));
    cr_assert(eq(sz, r[5].action.nframes[0], 2));
    cr_expect(eq(str, (char *)show(s, &r[5].action.replies[0][1]), "two"));
    cr_expect(eq(sz, r[6].action.nreplies, 0), "null: no reply");
    cr_expect(eq(sz, r[7].action.nreplies, 0), "no \"reply\": no reply");
    cr_expect(eq(int, r[8].action.after_last, DW_SIM_SILENT));
    cr_expect(eq(sz, r[8].action.nframes[1], 2));
    cr_assert(eq(sz, r[9].action.nframes[0], 1), "an empty reply is one empty frame");
    cr_expect(eq(sz, r[9].action.replies[0][0].nsegs, 0));
    dw_sim_script_free(s);
}

Test(script, json_and_hex_templates)
{
    dw_sim_script *s =
        load_ok("{'framing': {'type': 'json-lines'}, 'state': {'on': false, 'name': 'pd'},"
                " 'rules': [{'when': {'regex': '\\'x\\': *([0-9]+)'},"
                "  'reply': {'json': {'ok': true, 'on': '${on}', 'x': '$1', 'who': 'dev ${name}',"
                "                     'list': [1, '${on}']}}}]}");
    cr_expect(eq(str, (char *)show(s, &s->rules[0].action.replies[0][0]),
                 "{\"ok\":true,\"on\":${on},\"x\":$1,\"who\":\"dev ${name}\",\"list\":[1,${on}]}"),
              "a string that is one placeholder alone is printed unquoted");
    dw_sim_script_free(s);

    s = load_ok("{'framing': {'type': 'fixed', 'length': 4}, 'state': {'r1': {'hex': '01'}},"
                " 'rules': [{'when': {'regex': '^(..)..$'},"
                "            'reply': {'hex': 'aa81 ${r1}$1'},"
                "            'set': {'r1': {'hex': '00'}}}]}");
    cr_expect(eq(str, (char *)show(s, &s->rules[0].action.replies[0][0]), "\\xaa\\x81${r1}$1"),
              "hex templates hold placeholders between byte pairs");
    dw_sim_script_free(s);
}

Test(script, set_and_timing_and_faults)
{
    dw_sim_script *s =
        load_ok("{'state': {'freq': '0', 'out': 'OFF', 'raw': ''}, 'rules': ["
                "{'when': {'regex': '^FREQ (.*)$'}, 'set': {'freq': '$1', 'out': 7, 'raw': {'hex': "
                "'00${freq}ff'}}},"
                "{'when': 'SLOW?', 'reply': 'done', 'delay_ms': 200},"
                "{'when': 'WAVE?', 'reply': 'x', 'split': [1, 2, 64], 'split_delay_ms': 5},"
                "{'when': 'BYE', 'fault': 'close'},"
                "{'when': 'RST', 'fault': 'reset', 'fault_on': 3, 'reply': 'ok'},"
                "{'when': 'HANG', 'fault': 'hang'},"
                "{'when': 'JUNK', 'fault': 'garbage', 'garbage': {'hex': '00ff00'}}]}");
    const dw_sim_rule *r = s->rules;
    cr_assert(eq(sz, r[0].action.nsets, 3));
    cr_expect(eq(sz, r[0].action.sets[0].var, 0));
    cr_expect(eq(str, (char *)show(s, &r[0].action.sets[0].value), "$1"));
    cr_expect(eq(sz, r[0].action.sets[1].var, 1));
    cr_expect(eq(str, (char *)show(s, &r[0].action.sets[1].value), "7"));
    cr_expect(eq(sz, r[0].action.sets[2].var, 2));
    cr_expect(eq(str, (char *)show(s, &r[0].action.sets[2].value), "\\x00${freq}\\xff"));
    cr_expect(eq(u32, r[1].action.delay_ms, 200));
    cr_assert(eq(sz, r[2].action.nsplit, 3));
    cr_expect(eq(sz, r[2].action.split[2], 64));
    cr_expect(eq(u32, r[2].action.split_delay_ms, 5));
    cr_expect(eq(int, r[3].action.fault, DW_SIM_FAULT_CLOSE));
    cr_expect(eq(u32, r[3].action.fault_on, 0), "every match by default");
    cr_expect(eq(int, r[4].action.fault, DW_SIM_FAULT_RESET));
    cr_expect(eq(u32, r[4].action.fault_on, 3));
    cr_expect(eq(sz, r[4].action.nreplies, 1));
    cr_expect(eq(int, r[5].action.fault, DW_SIM_FAULT_HANG));
    cr_expect(eq(int, r[6].action.fault, DW_SIM_FAULT_GARBAGE));
    cr_expect(BYTES_EQ(r[6].action.garbage, "\0\xff\0"));
    cr_expect(eq(int, r[0].action.fault, DW_SIM_FAULT_NONE));
    dw_sim_script_free(s);
}

Test(script, steps_unmatched_periodic)
{
    dw_sim_script *s = load_ok(
        "{'state': {'output': 'OFF'},"
        " 'steps': [{'expect': '*IDN?', 'reply': 'ACME'},"
        "           {'name': 'enable', 'expect': {'prefix': 'OUTP'}, 'set': {'output': 'ON'}}],"
        " 'unmatched': {'reply': 'bad: $0', 'close': true},"
        " 'periodic': [{'every_ms': 1000, 'send': 'STATUS ${output}'},"
        "              {'every_ms': 5, 'send': {'hex': '00'}, 'description': 'tick'}]}");
    cr_assert(eq(sz, s->nsteps, 2));
    cr_expect(eq(str, s->steps[0].name, "steps[0]"));
    cr_expect(eq(str, s->steps[1].name, "enable"));
    cr_expect(BYTES_EQ(s->steps[0].expect.bytes, "*IDN?"));
    cr_expect(eq(int, s->steps[1].expect.kind, DW_SIM_MATCH_PREFIX));
    cr_expect(eq(sz, s->steps[1].action.nsets, 1));
    cr_expect(eq(int, s->unmatched.then, DW_SIM_THEN_CLOSE));
    cr_expect(eq(str, (char *)show(s, &s->unmatched.replies[0][0]), "bad: $0"));
    cr_assert(eq(sz, s->nperiodic, 2));
    cr_expect(eq(u32, s->periodic[0].every_ms, 1000));
    cr_expect(eq(str, (char *)show(s, &s->periodic[0].send), "STATUS ${output}"));
    cr_expect(eq(str, (char *)show(s, &s->periodic[1].send), "\\x00"));
    dw_sim_script_free(s);

    s = load_ok("{'rules': [{'when': 'Q', 'reply': 'bye', 'then': 'close'},"
                " {'when': 'K', 'fault': 'duplicate', 'then': 'reset'}],"
                " 'steps': [{'expect': 'S', 'then': 'reset'}]}");
    cr_expect(eq(int, s->rules[0].action.then, DW_SIM_THEN_CLOSE));
    cr_expect(eq(int, s->rules[1].action.then, DW_SIM_THEN_RESET));
    cr_expect(eq(int, s->steps[0].action.then, DW_SIM_THEN_RESET));
    dw_sim_script_free(s);

    s = load_ok("{'unmatched': {'close': true}}");
    cr_expect(eq(int, s->unmatched.then, DW_SIM_THEN_CLOSE));
    cr_expect(eq(sz, s->unmatched.nreplies, 0));
    dw_sim_script_free(s);
}

Test(script, many_rules_and_variables)
{
    /* Lookups are not linear scans: 20000 variables and rules load fast. */
    size_t n = 20000;
    dw_buf b = DW_BUF_INIT;
    dw_buf_append_str(&b, "{\"state\": {");
    for (size_t i = 0; i < n; i++)
        dw_buf_printf(&b, "%s\"v%zu\": \"%zu\"", i ? "," : "", i, i);
    dw_buf_append_str(&b, "}, \"rules\": [");
    for (size_t i = 0; i < n; i++)
        dw_buf_printf(&b,
                      "%s{\"when\": \"Q%zu?\", \"reply\": \"${v%zu}\", \"set\": {\"v%zu\": \"x\"}}",
                      i ? "," : "", i, n - 1 - i, i);
    dw_buf_append_str(&b, "]}");
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = load_exact("big.json", (const char *)b.data, b.len, &s, &err);
    cr_assert(eq(int, rc, DW_OK), "%s", err.message);
    cr_expect(eq(sz, s->nrules, n));
    cr_expect(eq(sz, s->rules[5].action.replies[0][0].segs[0].var, n - 6));
    dw_sim_script_free(s);
    dw_buf_free(&b);
}

/* ---- errors: every kind, exact messages ---------------------------------- */

typedef struct bad {
    const char *script;
    const char *message;
} bad;

static void refuse_all(const bad *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        refused(cases[i].script, cases[i].message);
}
#define REFUSE_ALL(cases) refuse_all(cases, sizeof cases / sizeof cases[0])

Test(script_errors, document_and_top_level)
{
    static const bad cases[] = {
        {"[]", "t.json:1:1: expected object (a script is one JSON object)"},
        {"{'nmae': 'x'}", "t.json:1:2: nmae: unknown key (did you mean \"name\"?)"},
        {"{'Rules': []}", "t.json:1:2: Rules: unknown key (did you mean \"rules\"?)"},
        {"{'colour': 1}", "t.json:1:2: colour: unknown key"},
        {"{'name': 'a', 'name': 'b'}", "t.json:1:15: name: duplicate key"},
        {"{'name': 5}", "t.json:1:10: name: expected string"},
        {"{'description': []}", "t.json:1:17: description: expected string"},
        {"{'transport': 'rs232'}",
         "t.json:1:15: transport: unknown value \"rs232\" (expected \"tcp\", \"telnet\", "
         "\"udp\", \"serial\" or \"vxi11\")"},
        {"{'vxi11': {}}", "t.json:1:11: vxi11: only for \"transport\": \"vxi11\""},
        {"{'transport': 'vxi11', 'vxi11': {'devices': []}}",
         "t.json:1:45: vxi11.devices: expected a non-empty list of device names"},
        {"{'transport': 'vxi11', 'vxi11': {'devices': ['inst0', 'inst0']}}",
         "t.json:1:55: vxi11.devices[1]: \"inst0\" is listed twice"},
        {"{'transport': 'vxi11', 'vxi11': {'max_recv_size': 8}}",
         "t.json:1:51: vxi11.max_recv_size: must be at least 64 (got 8)"},
        {"{'transport': 'telent'}",
         "t.json:1:15: transport: unknown value \"telent\" (did you mean \"telnet\"?)"},
        {"{'scope': 'global'}",
         "t.json:1:11: scope: unknown value \"global\" (expected \"shared\" or \"connection\")"},
        {"{'prompt': 5}", "t.json:1:12: prompt: expected string or object"},
        {"{'banner': ['x']}", "t.json:1:12: banner: expected string or object"},
        {"{'steps': {}}", "t.json:1:11: steps: expected array"},
        {"{'rules': 'x'}", "t.json:1:11: rules: expected array"},
        {"{'periodic': {}}", "t.json:1:14: periodic: expected array"},
        {"{'unmatched': 'x'}", "t.json:1:15: unmatched: expected object"},
        {"{'state': []}", "t.json:1:11: state: expected object"},
    };
    REFUSE_ALL(cases);
}

Test(script_errors, framing)
{
    static const bad cases[] = {
        {"{'framing': 'scpi'}", "t.json:1:13: framing: expected object"},
        {"{'framing': {'sentinel': 'x'}}", "t.json:1:13: framing: missing \"type\""},
        {"{'framing': {'type': 'line'}}",
         "t.json:1:22: framing.type: unknown value \"line\" (expected \"sentinel\", \"fixed\", "
         "\"length-prefixed\", \"scpi\" or \"json-lines\")"},
        {"{'framing': {'type': 'json_lines'}}",
         "t.json:1:22: framing.type: unknown value \"json_lines\" (did you mean \"json-lines\"?)"},
        {"{'framing': {'type': 'sentinel', 'length': 4}}",
         "t.json:1:34: framing.length: not an option of sentinel framing"},
        {"{'framing': {'type': 'json-lines', 'sentinel': 'x'}}",
         "t.json:1:36: framing.sentinel: not an option of json-lines framing"},
        {"{'framing': {'type': 'fixed', 'endian': 'big', 'length': 2}}",
         "t.json:1:31: framing.endian: not an option of fixed framing"},
        {"{'framing': {'type': 'scpi', 'header_size': 2}}",
         "t.json:1:30: framing.header_size: not an option of scpi framing"},
        {"{'framing': {'type': 'fixed'}}", "t.json:1:13: framing: fixed framing needs \"length\""},
        {"{'framing': {'type': 'fixed', 'length': 0}}",
         "t.json:1:41: framing.length: must be at least 1 (got 0)"},
        {"{'framing': {'type': 'fixed', 'length': -4}}",
         "t.json:1:41: framing.length: must not be negative (got -4)"},
        {"{'framing': {'type': 'fixed', 'length': 2.5}}",
         "t.json:1:41: framing.length: expected an integer (got 2.5)"},
        {"{'framing': {'type': 'fixed', 'length': '4'}}",
         "t.json:1:41: framing.length: expected positive integer"},
        {"{'framing': {'type': 'fixed', 'length': 9, 'max_frame': 8}}",
         "t.json:1:41: framing.length: larger than max_frame (8)"},
        {"{'framing': {'type': 'sentinel', 'max_frame': 1e12}}",
         "t.json:1:47: framing.max_frame: must be at most 1073741824 (got 1000000000000)"},
        {"{'framing': {'type': 'length-prefixed'}}",
         "t.json:1:13: framing: length-prefixed framing needs \"header_size\""},
        {"{'framing': {'type': 'length-prefixed', 'header_size': 3}}",
         "t.json:1:56: framing.header_size: expected 1, 2 or 4"},
        {"{'framing': {'type': 'length-prefixed', 'header_size': 8}}",
         "t.json:1:56: framing.header_size: must be at most 4 (got 8)"},
        {"{'framing': {'type': 'length-prefixed', 'header_size': 2, 'endian': 'middle'}}",
         "t.json:1:69: framing.endian: unknown value \"middle\" (expected \"big\" or \"little\")"},
        {"{'framing': {'type': 'sentinel', 'sentinel': ''}}",
         "t.json:1:46: framing.sentinel: must not be empty"},
        {"{'framing': {'type': 'sentinel', 'sentinel': {'hex': ''}}}",
         "t.json:1:46: framing.sentinel: must not be empty"},
        {"{'framing': {'type': 'sentinel', 'sentinel': 10}}",
         "t.json:1:46: framing.sentinel: expected string or object"},
        {"{'framing': {'request': {'type': 'sentinel'}}}",
         "t.json:1:13: framing: missing \"response\""},
        {"{'framing': {'response': {'type': 'sentinel'}}}",
         "t.json:1:13: framing: missing \"request\""},
        {"{'framing': {'request': {'type': 'scpi'}, 'response': {'type': 'scpi'}, 'type': 'x'}}",
         "t.json:1:73: framing.type: unknown key"},
        {"{'framing': {'request': {'type': 'scpi'}, 'response': {'type': 'fixed'}}}",
         "t.json:1:55: framing.response: fixed framing needs \"length\""},
        {"{'framing': {'type': 'sentinel', 'sentinal': 'x'}}",
         "t.json:1:34: framing.sentinal: unknown key (did you mean \"sentinel\"?)"},
    };
    REFUSE_ALL(cases);
}

Test(script_errors, state)
{
    static const bad cases[] = {
        {"{'state': {'9x': '1'}}",
         "t.json:1:12: state.9x: invalid variable name (use letters, digits, '_', '-' and '.', "
         "starting with a letter or '_')"},
        {"{'state': {'a b': '1'}}",
         "t.json:1:12: state[\"a b\"]: invalid variable name (use letters, digits, '_', '-' and "
         "'.', starting with a letter or '_')"},
        {"{'state': {'request': '1'}}",
         "t.json:1:12: state.request: \"request\" is reserved: \"${request}\" is the whole "
         "request"},
        {"{'state': {'a': null}}",
         "t.json:1:17: state.a: expected string, number, boolean or object"},
        {"{'state': {'a': [1]}}",
         "t.json:1:17: state.a: expected string, number, boolean or object"},
        {"{'state': {'b': '1', 'a': '1', 'b': '2', 'a': '3'}}",
         "t.json:1:32: state.b: duplicate variable"},
        {"{'state': {'a': {'hex': '0g'}}}", "t.json:1:27: state.a.hex: invalid hex digit 'g'"},
        {"{'state': {'a': {'hex': '00', 'base64': 'AA=='}}}",
         "t.json:1:31: state.a.base64: give \"hex\" or \"base64\", not both"},
        {"{'state': {'a': {}}}", "t.json:1:17: state.a: expected \"hex\" or \"base64\""},
        {"{'state': {'a': {'hx': '00'}}}",
         "t.json:1:18: state.a.hx: unknown key (did you mean \"hex\"?)"},
        {"{'state': {'a': {'hex': 0}}}", "t.json:1:25: state.a.hex: expected string"},
    };
    REFUSE_ALL(cases);
}

Test(script_errors, binary)
{
    static const bad cases[] = {
        {"{'prompt': {'hex': 'a0 1'}}", "t.json:1:20: prompt.hex: odd number of hex digits"},
        {"{'prompt': {'hex': 'a 01'}}",
         "t.json:1:22: prompt.hex: hex digits come in pairs (one byte each)"},
        {"{'prompt': {'hex': '00 0x10'}}", "t.json:1:25: prompt.hex: invalid hex digit 'x'"},
        {"{'prompt': {'base64': 'AAA'}}",
         "t.json:1:23: prompt.base64: base64 length is not a multiple of 4 (missing '=' "
         "padding?)"},
        {"{'prompt': {'base64': 'AA!A'}}",
         "t.json:1:26: prompt.base64: invalid base64 character '!'"},
        {"{'prompt': {'base64': 'A=AA'}}", "t.json:1:25: prompt.base64: misplaced '=' in base64"},
        {"{'prompt': {'base64': 'AA===='}}", "t.json:1:28: prompt.base64: misplaced '=' in base64"},
        {"{'prompt': {'base64': 'AA==AAAA'}}",
         "t.json:1:28: prompt.base64: base64 data after the '=' padding"},
        /* Positions inside strings count escapes as written. */
        {"{'prompt': {'hex': '\\u0030\\t0z'}}",
         "t.json:1:27: prompt.hex: hex digits come in pairs (one byte each)"},
        {"{'prompt': {'hex': '\\u0030\\u0030\\t0z'}}",
         "t.json:1:36: prompt.hex: invalid hex digit 'z'"},
    };
    REFUSE_ALL(cases);
}

Test(script_errors, matches)
{
    static const bad cases[] = {
        {"{'rules': [{'when': 5}]}", "t.json:1:21: rules[0].when: expected string or object"},
        {"{'rules': [{'reply': 'x'}]}", "t.json:1:12: rules[0]: missing \"when\""},
        {"{'rules': ['x']}", "t.json:1:12: rules[0]: expected object"},
        {"{'rules': [{'when': {}}]}",
         "t.json:1:21: rules[0].when: expected \"exact\", \"prefix\", \"regex\", \"hex\" or "
         "\"base64\""},
        {"{'rules': [{'when': {'exact': 'a', 'prefix': 'b'}}]}",
         "t.json:1:36: rules[0].when.prefix: give one of \"exact\", \"prefix\", \"regex\", "
         "\"hex\" or \"base64\""},
        {"{'rules': [{'when': {'regexp': 'a'}}]}",
         "t.json:1:22: rules[0].when.regexp: unknown key (did you mean \"regex\"?)"},
        {"{'rules': [{'when': {'prefix': 'a', 'icase': true}}]}",
         "t.json:1:37: rules[0].when.icase: only with \"regex\""},
        {"{'rules': [{'when': {'regex': 'a', 'icase': 1}}]}",
         "t.json:1:45: rules[0].when.icase: expected boolean"},
        {"{'rules': [{'when': {'regex': 5}}]}",
         "t.json:1:31: rules[0].when.regex: expected string"},
        {"{'rules': [{'when': {'exact': 5}}]}",
         "t.json:1:31: rules[0].when.exact: expected string or object"},
        {"{'rules': [{'when': {'hex': 'zz'}}]}",
         "t.json:1:30: rules[0].when.hex: invalid hex digit 'z'"},
        /* A literal request that the request framing can never deliver. */
        {"{'rules': [{'when': 'A\\nB'}]}",
         "t.json:1:21: rules[0].when: never matches: sentinel: payload contains the sentinel (at "
         "byte 1); it cannot be framed"},
        {"{'rules': [{'when': {'prefix': 'A\\n'}}]}",
         "t.json:1:32: rules[0].when.prefix: never matches: sentinel: payload contains the "
         "sentinel (at byte 1); it cannot be framed"},
        {"{'framing': {'type': 'fixed', 'length': 4}, 'rules': [{'when': 'ABC'}]}",
         "t.json:1:64: rules[0].when: never matches: fixed: payload is 3 bytes, expected 4"},
        {"{'framing': {'type': 'fixed', 'length': 2}, 'rules': [{'when': {'prefix': 'ABC'}}]}",
         "t.json:1:75: rules[0].when.prefix: never matches: the prefix is 3 bytes, requests are "
         "fixed-length frames of 2"},
        {"{'framing': {'type': 'fixed', 'length': 2}, 'steps': [{'expect': {'hex': '00'}}]}",
         "t.json:1:74: steps[0].expect.hex: never matches: fixed: payload is 1 bytes, expected 2"},
        {"{'steps': [{'when': 'a'}]}",
         "t.json:1:13: steps[0].when: unknown key (steps match with \"expect\")"},
        {"{'rules': [{'expect': 'a', 'reply': 'b'}]}",
         "t.json:1:13: rules[0].expect: unknown key (rules match with \"when\")"},
        {"{'rules': [{'when': {'regex': '(a'}}]}",
         "t.json:1:31: rules[0].when.regex: missing closing parenthesis at offset 2"},
        {"{'rules': [{'when': {'regex': 'a{2,1}'}}]}",
         "t.json:1:31: rules[0].when.regex: numbers out of order in {} quantifier at offset 5"},
        {"{'rules': [{'when': {'regex': '(*UTF)a'}}]}",
         "t.json:1:31: rules[0].when.regex: using UTF is disabled by the application at offset 6"},
        {"{'rules': [{'when': {'regex': '((a{65535}){65535}){65535}'}}]}",
         "t.json:1:31: rules[0].when.regex: regular expression is too large at offset 26"},
        {"{'steps': [{'expect': 'a', 'nmae': 'x'}]}",
         "t.json:1:28: steps[0].nmae: unknown key (did you mean \"name\"?)"},
        {"{'steps': [{'expect': 'a', 'name': 1}]}", "t.json:1:36: steps[0].name: expected string"},
    };
    REFUSE_ALL(cases);
}

Test(script_errors, regex_compile_error_has_location)
{
    char *text = J("{'rules': [\n  {'when': {'regex': '^(FREQ'}}\n]}");
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = load_exact("sg.json", text, strlen(text), &s, &err);
    cr_expect(eq(int, rc, DW_ESCRIPT));
    cr_expect(eq(str, err.message,
                 "sg.json:2:22: rules[0].when.regex: missing closing parenthesis at offset 6"));
    free(text);
}

Test(script_errors, replies_and_templates)
{
    static const bad cases[] = {
        {"{'rules': [{'when': 'a', 'reply': 5}]}",
         "t.json:1:35: rules[0].reply: expected string, object, array or null"},
        {"{'rules': [{'when': 'a', 'reply': []}]}",
         "t.json:1:35: rules[0].reply: expected at least one reply (write null for no reply)"},
        {"{'rules': [{'when': 'a', 'reply': [true]}]}",
         "t.json:1:36: rules[0].reply[0]: expected string, object or null"},
        {"{'rules': [{'when': 'a', 'rpely': 'x'}]}",
         "t.json:1:26: rules[0].rpely: unknown key (did you mean \"reply\"?)"},
        {"{'rules': [{'when': 'a', 'reply': 'f=${frq}'}]}",
         "t.json:1:38: rules[0].reply: unknown variable \"${frq}\" (declare it in \"state\" or "
         "\"properties\")"},
        {"{'state': {'freq': '1'}, 'rules': [{'when': 'a', 'reply': 'f=${frq}'}]}",
         "t.json:1:62: rules[0].reply: unknown variable \"${frq}\" (did you mean \"${freq}\"?)"},
        {"{'rules': [{'when': 'a', 'reply': 'v=$1'}]}",
         "t.json:1:38: rules[0].reply: \"$1\": captures need a regex match"},
        {"{'rules': [{'when': {'regex': '^F (a)$'}, 'reply': '$1 $2'}]}",
         "t.json:1:56: rules[0].reply: \"$2\": the regex has only 1 group"},
        {"{'rules': [{'when': 'a', 'reply': 'cost: $ 5'}]}",
         "t.json:1:42: rules[0].reply: '$' starts no placeholder (write \"${name}\" for a "
         "variable, \"$1\" for a capture or \"$$\" for a literal '$')"},
        {"{'rules': [{'when': 'a', 'reply': 'x$'}]}",
         "t.json:1:37: rules[0].reply: '$' starts no placeholder (write \"${name}\" for a "
         "variable, \"$1\" for a capture or \"$$\" for a literal '$')"},
        {"{'rules': [{'when': 'a', 'reply': '${abc'}]}",
         "t.json:1:36: rules[0].reply: unterminated \"${\" (write \"$$\" for a literal '$')"},
        {"{'rules': [{'when': 'a', 'reply': '${}'}]}",
         "t.json:1:36: rules[0].reply: empty variable name in \"${}\""},
        {"{'rules': [{'when': 'a', 'reply': 'a\\tb ${x}'}]}",
         "t.json:1:41: rules[0].reply: unknown variable \"${x}\" (declare it in \"state\" or "
         "\"properties\")"},
        {"{'rules': [{'when': 'a', 'reply': ['ok', '${x}']}]}",
         "t.json:1:43: rules[0].reply[1]: unknown variable \"${x}\" (declare it in \"state\" or "
         "\"properties\")"},
        {"{'periodic': [{'every_ms': 10, 'send': '$0'}]}",
         "t.json:1:41: periodic[0].send: \"$0\": there is no request here"},
        {"{'banner': 'hi ${request}'}",
         "t.json:1:16: banner: \"${request}\": there is no request here"},
        {"{'unmatched': {'reply': '$1'}}",
         "t.json:1:26: unmatched.reply: \"$1\": captures need a regex match"},
        {"{'rules': [{'when': 'a', 'reply': {'frames': []}}]}",
         "t.json:1:46: rules[0].reply.frames: expected at least one frame"},
        {"{'rules': [{'when': 'a', 'reply': {'frames': 'x'}}]}",
         "t.json:1:46: rules[0].reply.frames: expected array"},
        {"{'rules': [{'when': 'a', 'reply': {'frames': ['a', null]}}]}",
         "t.json:1:52: rules[0].reply.frames[1]: expected string or object"},
        {"{'rules': [{'when': 'a', 'reply': {'frames': ['a'], 'hex': '00'}}]}",
         "t.json:1:53: rules[0].reply.hex: unknown key"},
        {"{'rules': [{'when': 'a', 'reply': {'hx': '00'}}]}",
         "t.json:1:36: rules[0].reply.hx: unknown key (did you mean \"hex\"?)"},
        {"{'rules': [{'when': 'a', 'reply': {'hex': '00', 'json': 1}}]}",
         "t.json:1:49: rules[0].reply.json: give one of \"hex\", \"base64\", \"json\" or \"lua\""},
        {"{'rules': [{'when': 'a', 'reply': {'json': {'a': '${nope}'}}}]}",
         "t.json:1:44: rules[0].reply.json: unknown variable \"${nope}\" (declare it in "
         "\"state\" or \"properties\")"},
        {"{'rules': [{'when': 'a', 'reply': {'hex': 'aa ${v'}}]}",
         "t.json:1:47: rules[0].reply.hex: unterminated \"${\" (write \"$$\" for a literal '$')"},
        {"{'state': {'v': ''}, 'rules': [{'when': 'a', 'reply': {'hex': 'a${v}a'}}]}",
         "t.json:1:65: rules[0].reply.hex: hex digits come in pairs (one byte each)"},
        {"{'rules': [{'when': 'a', 'reply': 'x', 'after_last': 'cycle'}]}",
         "t.json:1:40: rules[0].after_last: only with a list of replies"},
        {"{'rules': [{'when': 'a', 'reply': ['x'], 'after_last': 'loop'}]}",
         "t.json:1:56: rules[0].after_last: unknown value \"loop\" (expected \"repeat_last\", "
         "\"cycle\" or \"silent\")"},
        /* Literal replies that the response framing cannot carry. */
        {"{'framing': {'type': 'fixed', 'length': 4}, 'rules': [{'when': 'abcd', 'reply': "
         "'abc'}]}",
         "t.json:1:81: rules[0].reply: cannot be framed: fixed: payload is 3 bytes, expected 4"},
        {"{'rules': [{'when': 'a', 'reply': {'frames': ['ok', 'two\\nlines']}}]}",
         "t.json:1:53: rules[0].reply.frames[1]: cannot be framed: sentinel: payload contains "
         "the sentinel (at byte 3); it cannot be framed"},
        {"{'framing': {'type': 'json-lines'}, 'rules': [{'when': '{}', 'reply': 'ok'}]}",
         "t.json:1:71: rules[0].reply: cannot be framed: json-lines: invalid JSON at byte 0 of "
         "a 2-byte line"},
        {"{'framing': {'type': 'json-lines'}, 'periodic': [{'every_ms': 1, 'send': 'tick'}]}",
         "t.json:1:74: periodic[0].send: cannot be framed: json-lines: invalid JSON at byte 0 of "
         "a 4-byte line"},
        {"{'framing': {'type': 'json-lines'}, 'rules': [{'when': 'status'}]}",
         "t.json:1:56: rules[0].when: never matches: json-lines: invalid JSON at byte 0 of a "
         "6-byte line"},
    };
    REFUSE_ALL(cases);
}

Test(script_errors, actions)
{
    static const bad cases[] = {
        {"{'rules': [{'when': 'a', 'delay_ms': -5}]}",
         "t.json:1:38: rules[0].delay_ms: must not be negative (got -5)"},
        {"{'rules': [{'when': 'a', 'delay_ms': '5'}]}",
         "t.json:1:38: rules[0].delay_ms: expected non-negative integer"},
        {"{'rules': [{'when': 'a', 'delay_ms': 4000000}]}",
         "t.json:1:38: rules[0].delay_ms: must be at most 3600000 (got 4000000)"},
        {"{'rules': [{'when': 'a', 'split': []}]}",
         "t.json:1:35: rules[0].split: expected at least one size"},
        {"{'rules': [{'when': 'a', 'split': 3}]}", "t.json:1:35: rules[0].split: expected array"},
        {"{'rules': [{'when': 'a', 'split': [1, 0]}]}",
         "t.json:1:39: rules[0].split[1]: must be at least 1 (got 0)"},
        {"{'rules': [{'when': 'a', 'split_delay_ms': 5}]}",
         "t.json:1:26: rules[0].split_delay_ms: only with \"split\""},
        {"{'rules': [{'when': 'a', 'fault': 'explode'}]}",
         "t.json:1:35: rules[0].fault: unknown value \"explode\" (expected \"close\", \"reset\", "
         "\"hang\", \"garbage\", \"drop\" or \"duplicate\")"},
        {"{'rules': [{'when': 'a', 'fault': 'rest'}]}",
         "t.json:1:35: rules[0].fault: unknown value \"rest\" (did you mean \"reset\"?)"},
        {"{'rules': [{'when': 'a', 'fault': 'garbage'}]}",
         "t.json:1:35: rules[0].fault: fault \"garbage\" needs \"garbage\": the bytes to send"},
        {"{'rules': [{'when': 'a', 'fault': 'close', 'garbage': 'x'}]}",
         "t.json:1:44: rules[0].garbage: only with \"fault\": \"garbage\""},
        {"{'rules': [{'when': 'a', 'fault': 'garbage', 'garbage': ''}]}",
         "t.json:1:57: rules[0].garbage: must not be empty"},
        {"{'rules': [{'when': 'a', 'fault_on': 2}]}",
         "t.json:1:26: rules[0].fault_on: only with \"fault\""},
        {"{'rules': [{'when': 'a', 'then': 'shut'}]}",
         "t.json:1:34: rules[0].then: unknown value \"shut\" (expected \"close\" or \"reset\")"},
        {"{'rules': [{'when': 'a', 'fault': 'drop', 'then': 'close'}]}",
         "t.json:1:43: rules[0].then: not with fault \"drop\" (it sends no reply to end after)"},
        {"{'unmatched': {'close': true, 'then': 'reset'}}",
         "t.json:1:16: unmatched.close: give \"then\" or \"close\", not both"},
        {"{'rules': [{'when': 'a', 'fault': 'hang', 'fault_on': 0}]}",
         "t.json:1:55: rules[0].fault_on: must be at least 1 (got 0)"},
        {"{'rules': [{'when': 'a', 'set': []}]}", "t.json:1:33: rules[0].set: expected object"},
        {"{'rules': [{'when': 'a', 'set': {'y': '1'}}]}",
         "t.json:1:34: rules[0].set.y: unknown variable \"y\" (declare it in \"state\" or "
         "\"properties\")"},
        {"{'state': {'freq': '1'}, 'rules': [{'when': 'a', 'set': {'frq': '1'}}]}",
         "t.json:1:58: rules[0].set.frq: unknown variable \"frq\" (did you mean \"freq\"?)"},
        {"{'state': {'freq': '1'}, 'rules': [{'when': 'a', 'set': {'freq': '1', 'freq': '2'}}]}",
         "t.json:1:71: rules[0].set.freq: duplicate key"},
        {"{'state': {'freq': '1'}, 'rules': [{'when': 'a', 'set': {'freq': null}}]}",
         "t.json:1:66: rules[0].set.freq: expected string, number, boolean or object"},
        {"{'state': {'freq': '1'}, 'rules': [{'when': 'a', 'set': {'freq': '$1'}}]}",
         "t.json:1:67: rules[0].set.freq: \"$1\": captures need a regex match"},
        {"{'unmatched': {'close': 'yes'}}", "t.json:1:25: unmatched.close: expected boolean"},
        {"{'unmatched': {'clsoe': true}}",
         "t.json:1:16: unmatched.clsoe: unknown key (did you mean \"close\"?)"},
        {"{'periodic': [{'send': 'x'}]}", "t.json:1:15: periodic[0]: missing \"every_ms\""},
        {"{'periodic': [{'every_ms': 5}]}", "t.json:1:15: periodic[0]: missing \"send\""},
        {"{'periodic': [{'every_ms': 0, 'send': 'x'}]}",
         "t.json:1:28: periodic[0].every_ms: must be at least 1 (got 0)"},
        {"{'periodic': [{'every_ms': 5, 'send': 'x', 'every': 1}]}",
         "t.json:1:44: periodic[0].every: unknown key"},
        {"{'periodic': ['x']}", "t.json:1:15: periodic[0]: expected object"},
    };
    REFUSE_ALL(cases);
}

Test(script_errors, json_syntax)
{
    static const bad cases[] = {
        {"", "t.json:1:1: JSON syntax error: empty document, expected a JSON value"},
        {"  \n ", "t.json:2:2: JSON syntax error: empty document, expected a JSON value"},
        {"{'a': 1,}", "t.json:1:9: JSON syntax error: unexpected '}', expected a key in double "
                      "quotes"},
        {"{'rules': [{'when': 'a' 'reply': 'b'}]}",
         "t.json:1:25: rules[0].when: JSON syntax error: unexpected '\"', expected ',' or '}' "
         "after an object member"},
        {"{'rules': [1 2]}", "t.json:1:14: rules[0]: JSON syntax error: unexpected '2', "
                             "expected ',' or ']' after an array element"},
        {"{'name': 'x'", "t.json:1:13: name: JSON syntax error: unexpected end of text, "
                         "expected ',' or '}' after an object member"},
        {"{'name': 'x", "t.json:1:10: name: JSON syntax error: unterminated string"},
        {"{'name' 'x'}",
         "t.json:1:9: name: JSON syntax error: unexpected '\"', expected ':' after the key"},
        {"{} x", "t.json:1:4: JSON syntax error: unexpected text after the JSON document"},
        {"{'a': 01}",
         "t.json:1:7: a: JSON syntax error: invalid number: leading zeros are not allowed"},
        {"{'a': 1.}",
         "t.json:1:7: a: JSON syntax error: invalid number: expected a digit after '.'"},
        {"{'a': -}", "t.json:1:7: a: JSON syntax error: invalid number"},
        {"{'a': tru}",
         "t.json:1:7: a: JSON syntax error: invalid literal (expected true, false or null)"},
        {"{'a': 'x\\qy'}", "t.json:1:9: a: JSON syntax error: invalid escape '\\q' in a string"},
        {"{'a': 'x\\u00G0'}", "t.json:1:9: a: JSON syntax error: invalid \\u escape (expected "
                              "four hex digits)"},
        {"{'a': 'x\\u0000y'}",
         "t.json:1:9: a: JSON syntax error: \\u0000 in a string: write bytes that include NUL "
         "as {\"hex\": ...} or {\"base64\": ...}"},
        {"{'a': '\\ud800'}",
         "t.json:1:8: a: JSON syntax error: unpaired surrogate \\uD800 in a string"},
        {"{'state': {'a b': 01}}",
         "t.json:1:19: state[\"a b\"]: JSON syntax error: invalid number: leading zeros are not "
         "allowed"},
        {"{'a': [1, {'b': [true, @]}]}",
         "t.json:1:24: a[1].b[1]: JSON syntax error: unexpected '@', expected a value"},
        {"{\n  'name': 'line\nbreak'\n}",
         "t.json:2:16: name: JSON syntax error: control character 0x0A in a string (write it as "
         "\\n, \\t or \\u00XX)"},
        {"{'a': 'caf\xc3\xa9', 'b': '\xff'}",
         "t.json:1:21: b: JSON syntax error: invalid UTF-8 byte 0xFF in a string"},
        {"{'a': 'x'}\xef\xbb\xbf", "t.json:1:11: JSON syntax error: unexpected text after the "
                                   "JSON document"},
    };
    REFUSE_ALL(cases);
}

Test(script_errors, json_syntax_nul_byte_and_nesting)
{
    /* A NUL byte in the text: the buffer is binary, the message says where. */
    static const char text[] = "{\"a\": \"x\0\"}";
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = load_exact("t.json", text, sizeof text - 1, &s, &err);
    cr_expect(eq(int, rc, DW_ESCRIPT));
    cr_expect(eq(str, err.message,
                 "t.json:1:9: a: JSON syntax error: control character 0x00 in a string (write it "
                 "as \\n, \\t or \\u00XX)"));

    dw_buf b = DW_BUF_INIT;
    for (int i = 0; i < 300; i++)
        dw_buf_append_byte(&b, '[');
    rc = load_exact("t.json", (const char *)b.data, b.len, &s, &err);
    cr_expect(eq(int, rc, DW_ESCRIPT));
    /* The path shows whole segments and ends in "..." when it is too long. */
    char want[512];
    size_t n = (size_t)snprintf(want, sizeof want, "t.json:1:129: ");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(want + n, sizeof want - n, "[0]");
    snprintf(want + n, sizeof want - n, "...: JSON syntax error: nested deeper than 128 levels");
    cr_expect(eq(str, err.message, want), "deep nesting is refused before cJSON sees it");
    dw_buf_free(&b);
}

Test(script_errors, lines_and_columns)
{
    /* The example of the documentation, line 14 column 9. Columns count
     * characters, not bytes. */
    refused("{\n"
            "  'name': 'Gen\xc3\xa9rateur',\n"
            "  'rules': [\n"
            "    {'when': '*IDN?',\n"
            "     'reply': 'ACME'},\n"
            "    {'when': 'FREQ?',\n"
            "     'reply': 'x'},\n"
            "    {\n"
            "     'reply': 'x',\n"
            "\t'when': '\xc3\xa9t\xc3\xa9', 'nope': 1}\n"
            "  ]\n"
            "}\n",
            "t.json:10:17: rules[2].nope: unknown key");
}

Test(script_errors, files)
{
    dw_sim_script *s = (dw_sim_script *)1;
    dw_error err;
    int rc = dw_sim_script_load_file(FIXTURES "/no-such-file.json", &s, &err);
    cr_expect(eq(int, rc, DW_ENOENT));
    cr_expect(s == NULL);
    cr_expect(eq(str, err.message, FIXTURES "/no-such-file.json: No such file or directory"));

    rc = dw_sim_script_load_file(FIXTURES "/bad/sg.json", &s, &err);
    cr_expect(eq(int, rc, DW_ESCRIPT));
    cr_expect(eq(str, err.message,
                 FIXTURES "/bad/sg.json:14:9: rules[2].when: expected string or object"),
              "messages from a file start with its path as given");

    rc = dw_sim_script_load_buffer(NULL, "[", 1, &s, NULL);
    cr_expect(eq(int, rc, DW_ESCRIPT), "a NULL dw_error is accepted");
    dw_sim_script_free(NULL);
}

/* ---- examples, fixtures, schema ------------------------------------------ */

static dw_sim_script *load_example(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES, name);
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = dw_sim_script_load_file(path, &s, &err);
    cr_assert(eq(int, rc, DW_OK), "example %s: %s", name, err.message);
    return s;
}

Test(examples, sg)
{
    dw_sim_script *s = load_example("sg.json");
    cr_expect(eq(int, s->request_framing.type, DW_SIM_FRAMING_SENTINEL));
    cr_expect(eq(int, s->response_framing.type, DW_SIM_FRAMING_SCPI));
    cr_expect(eq(int, s->profile, DW_SIM_PROFILE_SCPI));
    cr_expect(eq(sz, s->error_queue, 10));
    cr_expect(eq(str, s->idn, "ACME,SG-1000,0001,1.0.3"));
    const dw_sim_rule *trace = NULL;
    for (size_t i = 0; i < s->nrules; i++)
        if (strcmp(s->rules[i].name, "trace") == 0)
            trace = &s->rules[i];
    cr_assert(trace != NULL);
    cr_expect(eq(int, trace->when.kind, DW_SIM_MATCH_SCPI));
    const dw_sim_template *t = &trace->action.replies[0][0];
    cr_assert(eq(sz, t->nsegs, 1));
    const dw_sim_bytes *b = &t->segs[0].literal;
    cr_expect(eq(sz, b->len, 20));
    cr_expect(memchr(b->data, '\n', b->len) != NULL, "the block holds the sentinel");
    const uint8_t *data;
    size_t len;
    cr_expect(eq(int, dw_scpi_block_parse(b->data, b->len, &data, &len), DW_OK));
    cr_expect(eq(sz, len, 16));
    dw_sim_script_free(s);
}

Test(examples, relay)
{
    dw_sim_script *s = load_example("relay.json");
    cr_expect(eq(int, s->request_framing.type, DW_SIM_FRAMING_FIXED));
    cr_expect(eq(sz, s->request_framing.length, 4));
    cr_expect(BYTES_EQ(s->rules[0].when.bytes, "\xaa\x01\x01\x55"));
    cr_expect(eq(str, (char *)show(s, &s->rules[0].action.replies[0][0]), "\\xaa\\x81\\x01${r1}"));
    dw_sim_script_free(s);
}

Test(examples, pdu)
{
    dw_sim_script *s = load_example("pdu.json");
    cr_expect(eq(int, s->request_framing.type, DW_SIM_FRAMING_JSON_LINES));
    cr_expect(eq(sz, s->nperiodic, 1));
    int uses_state = 0;
    for (size_t i = 0; i < s->nrules; i++)
        for (size_t k = 0; k < s->rules[i].action.nreplies; k++)
            for (size_t g = 0; g < s->rules[i].action.replies[k][0].nsegs; g++)
                uses_state |= s->rules[i].action.replies[k][0].segs[g].kind == DW_SIM_SEG_VAR;
    cr_expect(uses_state, "replies use state");
    dw_sim_script_free(s);
}

Test(examples, console)
{
    dw_sim_script *s = load_example("console.json");
    cr_expect(eq(int, s->transport, DW_SIM_TELNET));
    cr_expect(s->banner.nsegs > 0);
    cr_expect(BYTES_EQ(s->prompt, "sc200> "));
    cr_expect(BYTES_EQ(s->request_framing.sentinel, "\r\n"));
    dw_sim_script_free(s);
}

static char *read_all(const char *path, size_t *len)
{
    char *text = dw_sim_read_file(path, len);
    cr_assert(text != NULL, "cannot read %s", path);
    return text;
}

/* Calls fn(dir, name) for each *.json file of dir, sorted; returns how many. */
static size_t each_json(const char *dir, void (*fn)(const char *dir, const char *name))
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    cr_assert(n >= 0, "cannot read %s", dir);
    size_t count = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(list[i]->d_name);
        if (l > 5 && strcmp(list[i]->d_name + l - 5, ".json") == 0) {
            fn(dir, list[i]->d_name);
            count++;
        }
        free(list[i]);
    }
    free(list);
    return count;
}

static void good_fixture(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = dw_sim_script_load_file(path, &s, &err);
    cr_expect(eq(int, rc, DW_OK), "%s: %s", name, err.message);
    dw_sim_script_free(s);
}

/* bad/X.json is refused with the message in bad/X.err (its first line),
 * the file named by its base name. */
static void bad_fixture(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len, elen;
    char *text = read_all(path, &len);
    snprintf(path, sizeof path, "%s/%.*s.err", dir, (int)strlen(name) - 5, name);
    char *want = read_all(path, &elen);
    char *nl = strchr(want, '\n');
    if (nl)
        *nl = '\0';
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = load_exact(name, text, len, &s, &err);
    cr_expect(eq(int, rc, DW_ESCRIPT), "%s", name);
    cr_expect(eq(str, err.message, want), "%s", name);
    dw_sim_script_free(s);
    free(text);
    free(want);
}

Test(examples, fixtures)
{
    cr_expect(each_json(EXAMPLES, good_fixture) >= 4, "four examples at least");
    cr_expect(each_json(FIXTURES "/good", good_fixture) >= 1);
    cr_expect(each_json(FIXTURES "/bad", bad_fixture) >= 5);
}

/* Every prefix of every example is refused cleanly (no crash, no leak, no
 * read past the end): a small, deterministic fuzz. */
static void prefixes(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *text = read_all(path, &len);
    for (size_t n = 0; n < len; n++) {
        dw_sim_script *s = NULL;
        dw_error err;
        int rc = load_exact(name, text, n, &s, &err);
        /* Only trailing white space may be cut from a valid script. */
        if (rc == DW_OK) {
            for (size_t k = n; k < len; k++)
                cr_assert(strchr(" \t\r\n", text[k]) != NULL, "%s cut at %zu loaded", name, n);
            dw_sim_script_free(s);
        } else {
            cr_assert(eq(int, rc, DW_ESCRIPT), "%s cut at %zu: %s", name, n, err.message);
            cr_assert(strncmp(err.message, name, strlen(name)) == 0, "%s", err.message);
        }
    }
    free(text);
}

Test(examples, every_prefix_is_refused_cleanly)
{
    each_json(EXAMPLES, prefixes);
}

Test(schema, parses_and_examples_validate)
{
    size_t len;
    char *text = read_all(SCHEMA, &len);
    const char *end = NULL;
    cJSON *schema = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    cr_assert(schema != NULL, "the schema is not JSON (near byte %zu)",
              end ? (size_t)(end - text) : 0);
    const cJSON *draft = cJSON_GetObjectItemCaseSensitive(schema, "$schema");
    cr_expect(cJSON_IsString(draft) && strstr(draft->valuestring, "2020-12"));
    /* The schema's top-level keys are the loader's: each one alone loads or is
     * refused for its value, never as an unknown key. */
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    cr_assert(cJSON_IsObject(props));
    size_t nprops = 0;
    for (const cJSON *p = props->child; p; p = p->next, nprops++) {
        char script[128];
        snprintf(script, sizeof script, "{\"%s\": 12345}", p->string);
        dw_sim_script *s = NULL;
        dw_error err;
        dw_sim_script_load_buffer("t.json", script, strlen(script), &s, &err);
        cr_expect(strstr(err.message, "unknown key") == NULL, "%s", err.message);
        dw_sim_script_free(s);
    }
    cr_expect(eq(sz, nprops, 23));
    cJSON_Delete(schema);
    free(text);

    /* With Python's jsonschema installed, the examples and good fixtures must
     * validate against the schema, and the bad fixtures that a schema can see
     * (all but bad JSON, unknown variables, impossible captures, regex and
     * Lua syntax, which only the loader finds) must not. */
    if (system("python3 -c 'import jsonschema' >/dev/null 2>&1") != 0)
        cr_skip_test("python3 jsonschema is not installed: only the loader checked them");
    int rc =
        system("python3 -c '"
               "import json, sys, glob, os, jsonschema\n"
               "s = json.load(open(sys.argv[1]))\n"
               "jsonschema.Draft202012Validator.check_schema(s)\n"
               "v = jsonschema.Draft202012Validator(s)\n"
               "bad = 0\n"
               "for f in sorted(glob.glob(sys.argv[2] + \"/*.json\") + glob.glob(sys.argv[3] + "
               "\"/good/*.json\")):\n"
               "    for e in v.iter_errors(json.load(open(f))):\n"
               "        print(f, list(e.path), e.message[:300]); bad = 1\n"
               "loader_only = {\"trailing-comma.json\", \"capture.json\", \"regex.json\", "
               "\"unknown-variable.json\", \"lua.json\"}\n"
               "for f in sorted(glob.glob(sys.argv[3] + \"/bad/*.json\")):\n"
               "    if os.path.basename(f) not in loader_only and v.is_valid(json.load(open(f))):\n"
               "        print(f, \"passes the schema\"); bad = 1\n"
               "sys.exit(bad)' " SCHEMA " " EXAMPLES " " FIXTURES);
    cr_expect(eq(int, rc, 0), "the schema agrees with the loader on the examples and fixtures");
}

Test(script_errors, scpi_profile)
{
    static const bad cases[] = {
        {"{'rules': [{'when': {'scpi': 'FREQ?'}}]}",
         "t.json:1:22: rules[0].when.scpi: a SCPI header needs \"profile\": \"scpi\""},
        {"{'profile': 'scpi', 'rules': [{'when': {'scpi': 'FREQ[:CW?'}}]}",
         "t.json:1:59: rules[0].when.scpi: bad SCPI header: unclosed '['"},
        {"{'profile': 'scpi', 'rules': [{'when': {'scpi': '[SOURce:FREQ'}}]}",
         "t.json:1:62: rules[0].when.scpi: bad SCPI header: unclosed '['"},
        {"{'profile': 'scpi', 'rules': [{'when': {'scpi': 'FREquEncy'}}]}",
         "t.json:1:55: rules[0].when.scpi: bad SCPI header: upper case marks the short form: it "
         "must come first"},
        {"{'profile': 'scpi', 'rules': [{'when': {'scpi': 'F', 'params': ['float']}}]}",
         "t.json:1:66: rules[0].when.params[0]: a choice starts with its short form in upper "
         "case"},
        {"{'profile': 'scpi', 'rules': [{'when': {'scpi': 'F', 'params': ['ON|OfF']}}]}",
         "t.json:1:71: rules[0].when.params[0]: upper case marks the short form: it must come "
         "first"},
        {"{'profile': 'scpi', 'rules': [{'when': {'scpi': 'F', 'params': ['ON||OFF']}}]}",
         "t.json:1:69: rules[0].when.params[0]: expected \"any\", \"numeric\", \"bool\", "
         "\"string\", \"block\" or choices such as \"IMMediate|BUS\""},
        {"{'profile': 'scpi', 'rules': [{'when': {'scpi': 'F', 'params': ['bool']}, "
         "'reply': '$2'}]}",
         "t.json:1:85: rules[0].reply: \"$2\": the regex has only 1 group"},
        {"{'profile': 'scpi', 'unmatched': {'reply': 'x'}}",
         "t.json:1:21: unmatched: not with the SCPI profile (an undefined header queues -113)"},
        {"{'idn': 'A,B,C,D'}", "t.json:1:2: idn: only with \"profile\": \"scpi\""},
        {"{'profile': 'gpib'}",
         "t.json:1:13: profile: unknown value \"gpib\" (expected \"none\" or \"scpi\")"},
        {"{'profile': {'type': 'scpi', 'error_queue': 1}}",
         "t.json:1:45: profile.error_queue: must be at least 2 (got 1)"},
    };
    REFUSE_ALL(cases);
}

Test(script, scpi_profile_keys)
{
    dw_sim_script *s = load_ok("{'profile': {'type': 'scpi', 'error_queue': 5}, 'idn': 'A,B,C,D',"
                               " 'rules': [{'when': {'scpi': 'OUTPut[1-2]:STATe?', "
                               "'params': ['bool', 'IMMediate|BUS']}, 'reply': '$1 $2'}]}");
    cr_expect(eq(int, s->profile, DW_SIM_PROFILE_SCPI));
    cr_expect(eq(sz, s->error_queue, 5));
    cr_expect(eq(str, s->idn, "A,B,C,D"));
    cr_expect(eq(int, s->rules[0].when.kind, DW_SIM_MATCH_SCPI));
    cr_expect(eq(sz, s->rules[0].when.nparams, 2));
    cr_expect(eq(int, s->rules[0].when.params[1].type, DW_SIM_SCPI_CHOICE));
    cr_expect(eq(str, s->rules[0].when.source, "OUTPut[1-2]:STATe?"));
    dw_sim_script_free(s);
}
