/* devwire-sim --record on a Telnet console, in process: the recorder is fed
 * the bytes of a session as GNU telnetd gives them (its negotiation first,
 * the pty's echo of each character as it is typed, CR NUL from a client in
 * character mode), and the conversation, the written script and its replay
 * check are looked at directly. tests/test_sim_record_telnetd.py records
 * the real telnetd. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "record/record.h"
#include "support.h"

#define Q         DW_SIM_DIR_REQUEST
#define R         DW_SIM_DIR_REPLY
#define TEXT(lit) lit, sizeof lit - 1

static const char base_crlf[] =
    "{\"transport\": \"telnet\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"}}";
static const char base_cr[] =
    "{\"transport\": \"telnet\", \"framing\": {\"request\": {\"type\": \"sentinel\", "
    "\"sentinel\": \"\\r\"}, \"response\": {\"type\": \"sentinel\", \"sentinel\": "
    "\"\\r\\n\"}}}";
static const char base_crnul[] =
    "{\"transport\": \"telnet\", \"framing\": {\"request\": {\"type\": \"sentinel\", "
    "\"sentinel\": {\"hex\": \"0d00\"}}, \"response\": {\"type\": \"sentinel\", "
    "\"sentinel\": \"\\r\\n\"}}}";

/* telnetd's opening offers (WILL SGA, WILL ECHO, DO TTYPE) and the
 * client's answers: commands, which leave the recording's data. */
static const uint8_t offers[] = {0xff, 0xfb, 0x03, 0xff, 0xfb, 0x01, 0xff, 0xfd, 0x18};
static const uint8_t answers[] = {0xff, 0xfd, 0x03, 0xff, 0xfd, 0x01, 0xff, 0xfc, 0x18};

typedef struct session {
    dw_sim_script *base;
    dw_sim_recorder *rec;
    uint64_t t_us;
    dw_sim_conversation cv;
    dw_buf text;       /* the written script */
    dw_buf report;     /* its replay check's */
    size_t mismatches; /* and their number */
} session;

/* A session after telnetd's negotiation and `banner`. */
static void start(session *s, const char *base, const char *banner, size_t banner_len)
{
    *s = (session){.text = DW_BUF_INIT, .report = DW_BUF_INIT};
    dw_error err;
    dw_error_clear(&err);
    cr_assert(eq(int, dw_sim_script_load_buffer("base", base, strlen(base), &s->base, &err), DW_OK),
              "%s", dw_error_message(&err));
    s->rec = dw_sim_recorder_new(s->base);
    cr_assert(not(eq(ptr, s->rec, NULL)));
    s->t_us = 1000000;
    dw_sim_recorder_open(s->rec, 1, s->t_us);
    dw_sim_recorder_bytes(s->rec, 1, R, offers, sizeof offers, s->t_us += 1000);
    dw_sim_recorder_bytes(s->rec, 1, Q, answers, sizeof answers, s->t_us += 1000);
    dw_sim_recorder_bytes(s->rec, 1, R, (const uint8_t *)banner, banner_len, s->t_us += 1000);
}

static void put(session *s, int dir, const char *p, size_t n)
{
    dw_sim_recorder_bytes(s->rec, 1, dir, (const uint8_t *)p, n, s->t_us += 20000);
}

/* A user types `line` (each character echoed by the device as it comes),
 * then `eol`; the device echoes the line end as CR LF and answers. */
static void typed(session *s, const char *line, const char *eol, size_t eol_len, const char *answer)
{
    for (const char *c = line; *c; c++) {
        put(s, Q, c, 1);
        put(s, R, c, 1);
    }
    put(s, Q, eol, eol_len);
    put(s, R, "\r\n", 2);
    put(s, R, answer, strlen(answer));
}

/* The device closes after the last answer; the conversation, the script
 * and its replay check. */
static void finish(session *s)
{
    dw_sim_recorder_end(s->rec, 1, R, 0, s->t_us += 1000);
    dw_sim_recorder_close(s->rec, 1, s->t_us);
    cr_assert(eq(int, dw_sim_recorder_conversation(s->rec, &s->cv), DW_OK));
    dw_sim_record_options o = {0, 0, "127.0.0.1:23"};
    cr_assert(eq(int, dw_sim_record_write(&s->cv, s->base, &o, &s->text), DW_OK));
    s->mismatches = 0;
    int rc = dw_sim_record_check(&s->cv, (const char *)s->text.data, s->text.len, &s->report,
                                 &s->mismatches);
    cr_assert(eq(int, rc, DW_OK), "%s", dw_test_esc(s->report.data, s->report.len));
}

static void expect_replays(const session *s)
{
    cr_expect(eq(sz, s->mismatches, 0), "%.*s\n%.*s", (int)s->report.len,
              (const char *)s->report.data, (int)s->text.len, (const char *)s->text.data);
}

static void stop(session *s)
{
    dw_sim_conversation_free(&s->cv);
    dw_sim_recorder_free(s->rec);
    dw_sim_script_free(s->base);
    dw_buf_free(&s->text);
    dw_buf_free(&s->report);
}

/* "count" and "exit" typed after `banner`, each line ended by "\r" (eol_len
 * 1: a bare CR) or "\r\0" (2: CR NUL); then finish(). */
static void count_then_exit(session *s, const char *base, const char *banner, size_t banner_len,
                            size_t eol_len)
{
    start(s, base, banner, banner_len);
    typed(s, "count", "\r", eol_len, "count=1\r\ndev> ");
    typed(s, "exit", "\r", eol_len, "bye\r\n");
    finish(s);
}

/* The written script holds `needle`. */
static void expect_holds(const session *s, const char *needle)
{
    const dw_buf *t = &s->text;
    cr_expect(memmem(t->data, t->len, needle, strlen(needle)) != NULL, "%s not in\n%.*s", needle,
              (int)t->len, (const char *)t->data);
}

/* The pty echoes each character while the line is typed, before the
 * request is complete: the echo is part of that request's answer (its
 * first frame), the prompt is still inferred, and the replay check passes.
 * Before, the echo went to the previous answer and every exchange failed
 * the check. */
Test(sim_record_telnet, echo_typed_character_by_character_replays)
{
    session s;
    start(&s, base_crlf, TEXT("dev> "));
    typed(&s, "count", "\r\n", 2, "count=1\r\ndev> ");
    typed(&s, "count", "\r\n", 2, "count=2\r\ndev> ");
    typed(&s, "exit", "\r\n", 2, "bye\r\n");
    finish(&s);
    expect_replays(&s);
    cr_expect(eq(sz, s.cv.nex, 3));
    expect_holds(&s, "\"prompt\": \"dev> \"");
    expect_holds(&s, "{\"when\": \"count\", \"reply\": [{\"frames\": [\"count\", \"count=1\"]}, "
                     "{\"frames\": [\"count\", \"count=2\"]}]}");
    expect_holds(&s, "{\"when\": \"exit\", \"reply\": {\"frames\": [\"exit\", \"bye\"]}, "
                     "\"then\": \"close\"}");
    stop(&s);
}

/* What the device sent while a line was typed is not an echo (a late
 * line of the previous answer): it stays with the previous answer, as
 * before. */
Test(sim_record_telnet, no_echo_keeps_the_answer_where_it_was)
{
    session s;
    start(&s, base_crlf, TEXT("dev> "));
    put(&s, Q, "a\r\n", 3);
    put(&s, R, "A1\r\n", 4);
    put(&s, Q, "b", 1);
    put(&s, R, "A2\r\n", 4);
    put(&s, Q, "\r\n", 2);
    put(&s, R, "B\r\n", 3);
    finish(&s);
    expect_replays(&s);
    cr_assert(eq(sz, s.cv.nex, 2));
    cr_expect(eq(sz, s.cv.ex[1].out_at, 5 + 8), "b's answer starts after A2");
    stop(&s);
}

/* A client in character mode ends its lines with CR NUL, which the
 * recorder reads as CR (RFC 854), as the replay does: with a base request
 * sentinel of CR LF (or of CR NUL) no request is ever complete, and the
 * recorder says why and what to write instead; with CR as the sentinel the
 * session records and replays, and no NUL starts the next request. */
Test(sim_record_telnet, cr_nul_line_ends_are_named)
{
    static const char note[] =
        "the client ended its lines with CR (connection 1), as a Telnet client does in binary "
        "mode (a bare CR) or in character mode (CR NUL, read as CR), and the base script's "
        "request sentinel %s does not end them; give the base script the request framing "
        "{\"type\": \"sentinel\", \"sentinel\": \"\\r\"}";
    char want[512];
    session s;
    count_then_exit(&s, base_crlf, TEXT("dev> "), 2);
    cr_expect(eq(sz, s.cv.nex, 0));
    cr_expect(gt(sz, s.mismatches, 0));
    snprintf(want, sizeof want, note, "\"\\r\\n\"");
    cr_expect(eq(str, s.cv.eol_note, want));
    stop(&s);

    count_then_exit(&s, base_crnul, TEXT("dev> "), 2);
    cr_expect(eq(sz, s.cv.nex, 0));
    snprintf(want, sizeof want, note, "\"\\r\\x00\"");
    cr_expect(eq(str, s.cv.eol_note, want));
    stop(&s);

    count_then_exit(&s, base_cr, TEXT("dev> "), 2);
    expect_replays(&s);
    cr_expect(eq(sz, s.cv.nex, 2));
    cr_expect(eq(str, s.cv.eol_note, ""));
    expect_holds(&s, "{\"when\": \"exit\", \"reply\": {\"frames\": [\"exit\", \"bye\"]}");
    stop(&s);
}

/* The options the device said WILL and DO to go into the script, which
 * replays: the replay offers them as telnetd did. A base script's own
 * "telnet" wins. */
Test(sim_record_telnet, device_options_are_written)
{
    session s;
    count_then_exit(&s, base_cr, TEXT("dev> "), 1);
    expect_replays(&s);
    expect_holds(&s, "\"transport\": \"telnet\",\n  \"telnet\": {\"will\": [\"echo\", \"sga\"], "
                     "\"do\": [\"ttype\"]},");
    stop(&s);

    static const char base_own[] =
        "{\"transport\": \"telnet\", \"telnet\": {\"will\": [\"echo\", 200]}, \"framing\": "
        "{\"type\": \"sentinel\", \"sentinel\": \"\\r\"}}";
    count_then_exit(&s, base_own, TEXT("dev> "), 1);
    expect_holds(&s, "\"telnet\": {\"will\": [\"echo\", 200], \"do\": []},");
    stop(&s);
}

/* The telnet program, once GNU telnetd asked DO BINARY, ends its lines with
 * a bare CR; telnetd sent NUL bytes with its negotiation, before the
 * prompt. With a CR LF sentinel the recorder names the line end; with CR
 * the prompt is inferred (the banner's tail ends with it) and the session
 * replays. Before, the banner's "\0\0dev> " and the waits' "dev> " differed
 * and no prompt was inferred. */
Test(sim_record_telnet, binary_mode_bare_cr_and_nul_bytes)
{
    session s;
    count_then_exit(&s, base_crlf, TEXT("\0\0dev> "), 1);
    cr_expect(eq(sz, s.cv.nex, 0));
    cr_expect(eq(str, s.cv.eol_note,
                 "the client ended its lines with CR (connection 1), as a Telnet client does in "
                 "binary mode (a bare CR) or in character mode (CR NUL, read as CR), and the base "
                 "script's request sentinel \"\\r\\n\" does not end them; give the base script "
                 "the request framing {\"type\": \"sentinel\", \"sentinel\": \"\\r\"}"));
    stop(&s);

    count_then_exit(&s, base_cr, TEXT("\0\0dev> "), 1);
    expect_replays(&s);
    cr_expect(eq(str, s.cv.prompt_note, ""));
    cr_expect(eq(str, s.cv.eol_note, ""));
    expect_holds(&s, "\"banner\": {\"hex\": \"00 00 64 65 76 3e 20\"},\n  \"prompt\": \"dev> \"");
    stop(&s);
}
