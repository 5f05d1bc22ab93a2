/* devwire-sim --record's script writer: a conversation built from the
 * input is written as a script, which must load (every key, every frame
 * valid) and play the conversation back through the engine: each request,
 * in order, gets exactly the recorded reply frames (framed, then the
 * prompt), the banner is the recorded one, and each periodic message is one
 * of the unsolicited frames, framed.
 *
 * Input: [framing] [flags: bit 0 steps, bit 1 timing, bit 2 banner,
 * bit 3 prompt] then records: [kind] [length] [bytes...], where kind's low
 * bits say request, reply frame or unsolicited frame. Bytes the framing
 * could not carry are changed into ones it can (a request holding the
 * sentinel could never have been read as one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devwire/devwire.h"
#include "engine/engine.h"
#include "record/record.h"
#include "script/script.h"

#define MAX_EXCHANGES 48
#define MAX_FRAME     64

static const char *const bases[] = {
    "{}",
    "{\"transport\": \"telnet\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"}}",
    "{\"framing\": {\"type\": \"fixed\", \"length\": 3}}",
    "{\"framing\": {\"type\": \"length-prefixed\", \"header_size\": 2, \"endian\": \"little\"}}",
    ("{\"framing\": {\"request\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},"
     " \"response\": {\"type\": \"scpi\", \"sentinel\": \"\\n\"}}}"),
    "{\"framing\": {\"type\": \"json-lines\"}}",
};
#define NBASES (sizeof bases / sizeof bases[0])

static void fail(const char *what, const dw_buf *script)
{
    fprintf(stderr, "fuzz_record: %s\nscript:\n%.*s\n", what, (int)script->len,
            script->data ? (const char *)script->data : "");
    abort();
}

/* Make p[0..*n) something `f` carries as a payload. */
static void carriable(const dw_sim_framing *f, uint8_t *p, size_t *n)
{
    switch (f->type) {
    case DW_SIM_FRAMING_FIXED:
        for (size_t i = *n; i < f->length; i++)
            p[i] = 'x';
        *n = f->length;
        break;
    case DW_SIM_FRAMING_JSON_LINES: /* a JSON number */
        for (size_t i = 0; i < *n; i++)
            p[i] = (uint8_t)('0' + p[i] % 10);
        if (*n == 0 || (p[0] == '0' && *n > 1))
            p[0] = '7';
        if (*n == 0)
            *n = 1;
        break;
    case DW_SIM_FRAMING_SENTINEL:
    case DW_SIM_FRAMING_SCPI:
        for (size_t i = 0; i < *n; i++)
            if (p[i] == '\n' || p[i] == '\r' ||
                (f->type == DW_SIM_FRAMING_SCPI && (p[i] == '#' || p[i] == '"' || p[i] == '\'')))
                p[i] = 'z';
        break;
    default:
        break;
    }
}

static void bytes_set(dw_sim_bytes *b, const uint8_t *p, size_t n)
{
    b->data = malloc(n ? n : 1);
    if (!b->data)
        abort();
    memcpy(b->data, p, n);
    b->len = n;
}

/* The conversation the input describes. */
static void build(const uint8_t *data, size_t size, const dw_sim_script *base, int flags,
                  dw_sim_conversation *cv)
{
    memset(cv, 0, sizeof *cv);
    cv->connections = 1;
    cv->ex = calloc(MAX_EXCHANGES, sizeof *cv->ex);
    cv->un = calloc(MAX_EXCHANGES, sizeof *cv->un);
    if (!cv->ex || !cv->un)
        abort();
    if (flags & 4)
        bytes_set(&cv->banner, (const uint8_t *)"HELLO $x \xff\r\n", 12);
    if ((flags & 8) && base->response_framing.type == DW_SIM_FRAMING_SENTINEL &&
        base->response_framing.sentinel.len == 2)
        bytes_set(&cv->prompt, (const uint8_t *)"> ", 2);
    uint64_t t = 1000;
    size_t at = 0;
    while (at + 2 <= size && cv->nex < MAX_EXCHANGES && cv->nun < MAX_EXCHANGES) {
        uint8_t kind = data[at], len = data[at + 1] % MAX_FRAME;
        at += 2;
        uint8_t frame[MAX_FRAME + 8];
        size_t n = len <= size - at ? len : size - at;
        memcpy(frame, data + at, n);
        at += n;
        t += (uint64_t)(kind >> 2) * 1000;
        int req = (kind & 3) == 0 || cv->nex == 0;
        const dw_sim_framing *f = req ? &base->request_framing : &base->response_framing;
        carriable(f, frame, &n);
        if (req) {
            dw_sim_exchange *x = &cv->ex[cv->nex];
            x->conn = 1;
            x->t_us = t;
            x->seq = cv->nex++;
            x->delay_us = -1;
            bytes_set(&x->request, frame, n);
        } else if ((kind & 3) == 3) {
            dw_sim_unsolicited *u = &cv->un[cv->nun++];
            u->conn = 1;
            u->t_us = t;
            bytes_set(&u->frame, frame, n);
        } else {
            dw_sim_exchange *x = &cv->ex[cv->nex - 1];
            if (x->nreplies == 4)
                continue;
            dw_sim_bytes *grown = realloc(x->replies, (x->nreplies + 1) * sizeof *grown);
            if (!grown)
                abort();
            x->replies = grown;
            if (x->delay_us < 0)
                x->delay_us = (int64_t)(kind >> 2) * 1000;
            bytes_set(&x->replies[x->nreplies++], frame, n);
        }
    }
}

/* The reply bytes the engine must give for exchange x: framed, prompt. */
static void expected(const dw_sim_exchange *x, const dw_marshaller *m, const dw_sim_bytes *prompt,
                     dw_buf *out, const dw_buf *script)
{
    dw_buf_clear(out);
    for (size_t i = 0; i < x->nreplies; i++)
        if (dw_marshall(m, x->replies[i].data, x->replies[i].len, out, NULL) != DW_OK)
            fail("a recorded reply frame cannot be framed", script);
    if (prompt->len)
        dw_buf_append(out, prompt->data, prompt->len);
}

static void replay(const dw_sim_conversation *cv, const dw_sim_script *s, const dw_buf *text)
{
    dw_sim_engine *e = NULL;
    dw_error err;
    if (dw_sim_engine_new(s, &e, &err) != DW_OK)
        fail(dw_error_message(&err), text);
    dw_sim_session *ss = dw_sim_session_new(e);
    dw_buf want = DW_BUF_INIT, banner = DW_BUF_INIT;
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    if (!ss || dw_sim_engine_banner(e, ss, &banner) != DW_OK)
        abort();
    if (banner.len != cv->banner.len ||
        (banner.len && memcmp(banner.data, cv->banner.data, banner.len) != 0))
        fail("the banner differs", text);
    for (size_t i = 0; i < cv->nex; i++) {
        const dw_sim_exchange *x = &cv->ex[i];
        if (dw_sim_engine_handle(e, ss, x->request.data, x->request.len, &o, &err) != DW_OK)
            fail(dw_error_message(&err), text);
        expected(x, dw_sim_engine_response_marshaller(e), &cv->prompt, &want, text);
        if (o.bytes.len != want.len || (want.len && memcmp(o.bytes.data, want.data, want.len)))
            fail("a replayed answer differs from the recorded one", text);
    }
    for (size_t i = 0; i < s->nperiodic; i++) {
        dw_buf_clear(&want);
        if (dw_sim_engine_periodic(e, ss, i, &want, &err) != DW_OK)
            fail(dw_error_message(&err), text);
        int found = 0;
        dw_buf framed = DW_BUF_INIT;
        for (size_t k = 0; k < cv->nun && !found; k++) {
            dw_buf_clear(&framed);
            dw_marshall(dw_sim_engine_response_marshaller(e), cv->un[k].frame.data,
                        cv->un[k].frame.len, &framed, NULL);
            found = framed.len == want.len && memcmp(framed.data, want.data, want.len) == 0;
        }
        dw_buf_free(&framed);
        if (!found)
            fail("a periodic message that was never seen", text);
    }
    dw_sim_outcome_free(&o);
    dw_buf_free(&want);
    dw_buf_free(&banner);
    dw_sim_session_free(ss);
    dw_sim_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    dw_sim_script *base = NULL;
    const char *b = bases[data[0] % NBASES];
    if (dw_sim_script_load_buffer("base.json", b, strlen(b), &base, NULL) != DW_OK)
        abort();
    int flags = data[1];
    dw_sim_conversation cv;
    build(data + 2, size - 2, base, flags, &cv);
    dw_sim_record_options o = {flags & 1, flags & 2, "127.0.0.1:5025"};
    dw_buf text = DW_BUF_INIT;
    if (dw_sim_record_write(&cv, base, &o, &text) != DW_OK)
        abort();
    dw_sim_script *s = NULL;
    dw_error err;
    if (dw_sim_script_load_buffer("recorded.json", (const char *)text.data, text.len, &s, &err) !=
        DW_OK)
        fail(dw_error_message(&err), &text);
    replay(&cv, s, &text);
    dw_sim_script_free(s);
    dw_buf_free(&text);
    dw_sim_conversation_free(&cv);
    dw_sim_script_free(base);
    return 0;
}
