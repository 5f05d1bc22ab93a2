/* devwire-sim --record: pipelined answers of several frames each, and
 * periodic frames that come while an answer is open (docs/record.md,
 * "What the recording holds" and "Limits").
 *
 * The recorder's own functions (record.h) get streams with chosen times,
 * so that what is decided and what is not can be asserted exactly; then a
 * device served by devwire-sim is recorded through devwire-sim --record
 * and played back. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "record/record.h"
#include "script/script.h"
#include "sim_fixture.h"
#include "support.h"

/* ---- the recorder's functions, with chosen times ---------------------------------- */

/* One thing that happened on connection 1: 'q' the client sent `bytes`,
 * 'r' the device did, at `ms`. */
typedef struct happened {
    char who;
    const char *bytes;
    unsigned ms;
} happened;

/* What the recorder made of it. */
typedef struct made {
    char *script;      /* the written script */
    size_t mismatches; /* of the replay check */
    dw_buf report;     /* its lines */
} made;

static const char line_base[] = "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"}}";

static void record_these(const happened *h, size_t n, made *m)
{
    dw_sim_script *base = NULL;
    dw_error err;
    dw_error_clear(&err);
    cr_assert(eq(int, dw_sim_script_load_buffer("base", line_base, strlen(line_base), &base, &err),
                 DW_OK),
              "%s", dw_error_message(&err));
    dw_sim_recorder *r = dw_sim_recorder_new(base);
    cr_assert(r != NULL);
    dw_sim_recorder_open(r, 1, 0);
    for (size_t i = 0; i < n; i++)
        dw_sim_recorder_bytes(r, 1, h[i].who == 'q' ? DW_SIM_DIR_REQUEST : DW_SIM_DIR_REPLY,
                              (const uint8_t *)h[i].bytes, strlen(h[i].bytes),
                              (uint64_t)h[i].ms * 1000);
    dw_sim_conversation cv;
    cr_assert(eq(int, dw_sim_recorder_conversation(r, &cv), DW_OK));
    dw_sim_record_options o = {0};
    dw_buf text = DW_BUF_INIT;
    cr_assert(eq(int, dw_sim_record_write(&cv, base, &o, &text), DW_OK));
    memset(m, 0, sizeof *m);
    cr_assert(
        eq(int,
           dw_sim_record_check(&cv, (const char *)text.data, text.len, &m->report, &m->mismatches),
           DW_OK));
    dw_buf_nul_terminate(&text);
    dw_buf_nul_terminate(&m->report);
    m->script = strdup((const char *)text.data);
    dw_buf_free(&text);
    dw_sim_conversation_free(&cv);
    dw_sim_recorder_free(r);
    dw_sim_script_free(base);
}

static void made_free(made *m)
{
    free(m->script);
    dw_buf_free(&m->report);
}

/* Recorded, h[0..n) makes a script that holds `rules` (and `periodic`,
 * unless NULL) and replays as recorded. */
static void makes(const happened *h, size_t n, const char *rules, const char *periodic)
{
    made m;
    record_these(h, n, &m);
    cr_assert(strstr(m.script, rules) != NULL, "wanted %s in:\n%s", rules, m.script);
    cr_assert(periodic == NULL || strstr(m.script, periodic) != NULL, "wanted %s in:\n%s", periodic,
              m.script);
    cr_assert(eq(sz, m.mismatches, 0), "%s\n%s", (const char *)m.report.data, m.script);
    made_free(&m);
}

static const char every_250[] = "\"periodic\": [\n    {\"every_ms\": 250, \"send\": \"HB\"}\n  ]";

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A and B alone got 2 and 3 frames; pipelined with C (alone later: 1
 * frame) they get theirs, in order. Before, all six went to C. */
Test(record_pipeline, counts_learned_alone_split_a_batch)
{
    static const happened h[] = {{'q', "A\n", 0},
                                 {'r', "a1\na2\n", 5},
                                 {'q', "B\n", 500},
                                 {'r', "b1\nb2\nb3\n", 505},
                                 {'q', "A\nB\nC\n", 1000},
                                 {'r', "a1\na2\nb1\n", 1005},
                                 {'r', "b2\nb3\nc\n", 1010},
                                 {'q', "C\n", 1500},
                                 {'r', "c\n", 1505},
                                 {'q', "B\nA\n", 2000},
                                 {'r', "b1\nb2\nb3\na1\na2\n", 2005}};
    makes(h, N(h),
          "{\"when\": \"A\", \"reply\": {\"frames\": [\"a1\", \"a2\"]}},\n"
          "    {\"when\": \"B\", \"reply\": {\"frames\": [\"b1\", \"b2\", \"b3\"]}},\n"
          "    {\"when\": \"C\", \"reply\": \"c\"}\n",
          NULL);
}

/* A count learned from an exchange after the batch counts too; the one
 * request of the batch never seen alone (Q) gets the rest. */
Test(record_pipeline, a_later_exchange_teaches_and_one_unknown_gets_the_rest)
{
    static const happened h[] = {{'q', "Q\nA\n", 0},
                                 {'r', "q1\nq2\nq3\na1\na2\n", 5},
                                 {'q', "A\n", 500},
                                 {'r', "a1\na2\n", 505}};
    makes(h, N(h),
          "{\"when\": \"Q\", \"reply\": {\"frames\": [\"q1\", \"q2\", \"q3\"]}},\n"
          "    {\"when\": \"A\", \"reply\": {\"frames\": [\"a1\", \"a2\"]}}\n",
          NULL);
}

/* A setting pipelined before a query (never alone: a silent request is
 * always followed by the next one) gets nothing, the query its frames. */
Test(record_pipeline, a_setting_before_a_query_gets_nothing)
{
    static const happened h[] = {
        {'q', "Q\n", 0}, {'r', "1\n2\n", 5}, {'q', "SET 3\nQ\n", 500}, {'r', "1\n3\n", 505}};
    makes(h, N(h),
          "{\"when\": \"Q\", \"reply\": [{\"frames\": [\"1\", \"2\"]}, {\"frames\": [\"1\", "
          "\"3\"]}]},\n    {\"when\": \"SET 3\", \"reply\": null}\n",
          NULL);
}

/* What cannot be decided stays with the batch's last request, as before:
 * A alone got 1 frame once and 2 another time, and B was never alone; or
 * the counts do not add up. */
Test(record_pipeline, undecided_batches_go_to_their_last_request)
{
    static const happened h[] = {
        {'q', "A\n", 0},       {'r', "a\n", 5},       {'q', "A\n", 500},
        {'r', "a\nA\n", 505},  {'q', "A\nB\n", 1000}, {'r', "a\nb\nb\n", 1005},
        {'q', "C\n", 1500},    {'r', "c\nc\n", 1505}, {'q', "D\n", 2000},
        {'r', "d\nd\n", 2005}, {'q', "C\nD\n", 2500}, {'r', "c\nc\nd\n", 2505}};
    makes(h, N(h),
          "{\"when\": \"A\", \"reply\": [\"a\", {\"frames\": [\"a\", \"A\"]}, null]},\n"
          "    {\"when\": \"B\", \"reply\": {\"frames\": [\"a\", \"b\", \"b\"]}},\n"
          "    {\"when\": \"C\", \"reply\": [{\"frames\": [\"c\", \"c\"]}, null]},\n"
          "    {\"when\": \"D\", \"reply\": [{\"frames\": [\"d\", \"d\"]}, {\"frames\": "
          "[\"c\", \"c\", \"d\"]}]}\n",
          NULL);
}

/* A heartbeat every 250 ms. The first answer comes 190 ms after its
 * request and 140 ms after a beat (which opened the answer: the real one
 * was taken for unsolicited), the second has a beat between its frames,
 * the third answers a pipelined batch after a beat. The beats are taken
 * out: the rules hold the real answers, the periodic entry every beat.
 * Before, the beats were the answers. */
Test(record_pipeline, beats_inside_answers_are_taken_out)
{
    static const happened h[] = {
        {'q', "S\n", 0},     {'r', "HB\n", 50},          {'r', "s1\ns2\n", 190},
        {'r', "HB\n", 302},  {'r', "HB\n", 550},         {'r', "HB\n", 800},
        {'q', "S\n", 820},   {'r', "HB\n", 1049},        {'r', "s1\n", 1280},
        {'r', "HB\n", 1300}, {'r', "s2\n", 1320},        {'q', "T\nS\n", 1400},
        {'r', "HB\n", 1550}, {'r', "t\ns1\ns2\n", 1700}, {'r', "HB\n", 1800},
        {'r', "HB\n", 2050}};
    makes(h, N(h),
          "{\"when\": \"S\", \"reply\": {\"frames\": [\"s1\", \"s2\"]}},\n"
          "    {\"when\": \"T\", \"reply\": \"t\"}\n",
          every_250);
}

/* A reading polled every second, answered 300 ms later, each time after a
 * beat: the readings (which the beats made look unsolicited, at a steady
 * rate) are answers, never a periodic message, since none came while the
 * client was quiet; the beats are. Before, each reading's answer was a
 * beat. */
Test(record_pipeline, a_polled_reading_is_not_a_heartbeat)
{
    happened h[40];
    size_t n = 0;
    for (unsigned s = 0; s < 4; s++) {
        h[n++] = (happened){'q', "V\n", s * 1000};
        h[n++] = (happened){'r', "HB\n", s * 1000 + 100};
        h[n++] = (happened){'r', "1.0\n", s * 1000 + 300};
        for (unsigned b = 350; s < 3 && b < 1000; b += 250)
            h[n++] = (happened){'r', "HB\n", s * 1000 + b};
    }
    makes(h, n, "{\"when\": \"V\", \"reply\": \"1.0\"}\n", every_250);
}

/* An answer with the heartbeat's bytes that comes off the beat's schedule
 * (120 ms after a beat of a 250 ms series) stays an answer. */
Test(record_pipeline, an_answer_off_the_schedule_stays_an_answer)
{
    static const happened h[] = {{'q', "X\n", 0},    {'r', "x\n", 5},     {'r', "HB\n", 250},
                                 {'r', "HB\n", 500}, {'r', "HB\n", 750},  {'q', "PING\n", 860},
                                 {'r', "HB\n", 870}, {'r', "HB\n", 1000}, {'r', "HB\n", 1250}};
    makes(h, N(h),
          "{\"when\": \"X\", \"reply\": \"x\"},\n    {\"when\": \"PING\", \"reply\": \"HB\"}\n",
          every_250);
}

/* A beat between a request and the client's next one (which it sent
 * without waiting for the first one's answer) does not part them: the two
 * are a batch, split by what A got alone, and the replay check compares
 * them together (unsolicited frames left out). */
Test(record_pipeline, a_beat_between_two_requests_does_not_part_them)
{
    static const happened h[] = {
        {'q', "A\n", 0},     {'r', "a1\na2\n", 10}, {'r', "HB\n", 250},
        {'r', "HB\n", 500},  {'r', "HB\n", 750},    {'q', "A\n", 900},
        {'r', "HB\n", 1000}, {'q', "B\n", 1050},    {'r', "a1\na2\nb\n", 1100},
        {'r', "HB\n", 1250}, {'r', "HB\n", 1500}};
    makes(h, N(h),
          "{\"when\": \"A\", \"reply\": {\"frames\": [\"a1\", \"a2\"]}},\n"
          "    {\"when\": \"B\", \"reply\": \"b\"}\n",
          NULL);
}

/* ---- devwire-sim --record in front of devwire-sim ------------------------------------ */

TestSuite(record_pipeline_live, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini,
          .timeout = 120);

/* Serve `script` as the device (the fixture's peer), the recorder in front
 * of it framed by the same script (the fixture's proc): the recorder. */
static dw_sim_proc *rig(const char *script, const char *out)
{
    const char *dev = dw_sim_fixture_file("device", script);
    const char *const dargs[] = {"--script", dev, "--listen", "127.0.0.1:0", NULL};
    dw_sim_proc *d = dw_sim_start(&dw_sim_fixture.peer, dargs, "the device");
    char up[96];
    snprintf(up, sizeof up, "%s:%u", d->host, (unsigned)d->port);
    const char *const rargs[] = {"--record", "--upstream", up,         "--script",    dev,
                                 "--out",    out,          "--listen", "127.0.0.1:0", NULL};
    return dw_sim_start(&dw_sim_fixture.proc, rargs, "the recorder");
}

/* The next line from fd (without its "\n") into `line`, lines starting
 * with `skip` (may be NULL) passed over; asserts one came within 10 s. */
static void next_line(int fd, dw_buf *pending, const char *skip, dw_buf *line)
{
    for (;;) {
        uint8_t *nl = pending->len ? memchr(pending->data, '\n', pending->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - pending->data);
            dw_buf_clear(line);
            dw_buf_append(line, pending->data, n);
            memmove(pending->data, nl + 1, pending->len - n - 1);
            pending->len -= n + 1;
            if (!skip || n < strlen(skip) || memcmp(line->data, skip, strlen(skip)) != 0)
                return;
            continue;
        }
        struct pollfd p = {fd, POLLIN, 0};
        uint8_t b[512];
        cr_assert(eq(int, poll(&p, 1, 10000), 1), "no line within 10 s");
        ssize_t got = recv(fd, b, sizeof b, 0);
        cr_assert(gt(sz, (size_t)(got > 0 ? got : 0), 0), "the connection ended");
        dw_buf_append(pending, b, (size_t)got);
    }
}

/* One turn of a client: send `req` whole, read `lines` lines (skipping
 * `skip`), all into log; then wait `pause_ms`. */
typedef struct turn {
    const char *req;
    size_t lines;
    unsigned pause_ms;
} turn;

static void play(uint16_t port, const turn *t, size_t n, const char *skip, dw_buf *log)
{
    int fd = dw_sim_raw_connect(port, 0);
    cr_assert(fd >= 0);
    dw_buf pending = DW_BUF_INIT, line = DW_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(t[i].req);
        cr_assert(eq(sz, (size_t)send(fd, t[i].req, len, MSG_NOSIGNAL), len));
        for (size_t k = 0; k < t[i].lines; k++) {
            next_line(fd, &pending, skip, &line);
            dw_buf_append(log, line.data, line.len);
            dw_buf_append_str(log, k + 1 < t[i].lines ? "," : "|");
        }
        usleep(t[i].pause_ms * 1000);
    }
    close(fd);
    dw_buf_free(&pending);
    dw_buf_free(&line);
    dw_buf_nul_terminate(log);
}

/* Stop the recorder: it passed its replay check; the script it wrote. */
static char *finish(dw_sim_proc *rec, const char *out)
{
    const char *said;
    int st = dw_sim_stop(rec, 20000, &said);
    char *text = dw_sim_read_file(out, NULL);
    cr_assert(eq(int, st, 0), "the recorder exited %d:\n%s\n%s", st, dw_sim_err_of(rec), text);
    cr_assert(strstr(said, "replay check passed") != NULL, "%s", said);
    return text;
}

/* Play the recording as the device: the client gets what it got. */
static void replays_as(const char *out, const turn *t, size_t n, const char *skip,
                       const dw_buf *recorded, const char *text)
{
    const char *const args[] = {"--script", out, "--listen", "127.0.0.1:0", NULL};
    dw_sim_proc *rep = dw_sim_start(&dw_sim_fixture.peer, args, "the replay");
    dw_buf replayed = DW_BUF_INIT;
    play(rep->port, t, n, skip, &replayed);
    cr_assert(eq(str, (char *)replayed.data, (char *)recorded->data), "%s", text);
    dw_buf_free(&replayed);
}

/* (a) A device answering with several frames each, asked alone and then
 * in pipelined batches: each request's answer is its own in the
 * recording, and the replay gives the client the same bytes. */
Test(record_pipeline_live, pipelined_multi_frame_answers)
{
    const char *out = dw_sim_fixture_file("recorded", "");
    dw_sim_proc *rec =
        rig("{\"rules\": [{\"when\": \"A\", \"reply\": {\"frames\": [\"a1\", \"a2\"]}},"
            " {\"when\": \"B\", \"reply\": {\"frames\": [\"b1\", \"b2\", \"b3\"]}},"
            " {\"when\": \"C\", \"reply\": \"c\"}]}",
            out);
    static const turn t[] = {
        {"A\n", 2, 0}, {"B\n", 3, 0}, {"A\nB\nC\n", 6, 0}, {"C\n", 1, 0}, {"B\nA\n", 5, 0}};
    dw_buf recorded = DW_BUF_INIT;
    play(rec->port, t, N(t), NULL, &recorded);
    char *text = finish(rec, out);
    cr_assert(strstr(text,
                     "{\"when\": \"A\", \"reply\": {\"frames\": [\"a1\", \"a2\"]}},\n"
                     "    {\"when\": \"B\", \"reply\": {\"frames\": [\"b1\", \"b2\", \"b3\"]}},\n"
                     "    {\"when\": \"C\", \"reply\": \"c\"}\n") != NULL,
              "%s", text);
    replays_as(out, t, N(t), NULL, &recorded, text);
    free(text);
    dw_buf_free(&recorded);
}

/* (b) A heartbeat every 500 ms from a device that takes 600 ms over some
 * answers: beats come while those answers are open. The recording has the
 * periodic entry and the answers without beats, and passes its check.
 * (The tolerance, 125 ms here, leaves room for a loaded machine: with
 * 300 ms a beat came 96 ms late once, and the series was rightly not
 * regular.) */
Test(record_pipeline_live, heartbeats_during_slow_answers)
{
    const char *out = dw_sim_fixture_file("recorded", "");
    dw_sim_proc *rec =
        rig("{\"rules\": [{\"when\": \"SLOW\", \"reply\": {\"frames\": [\"s1\", \"s2\"]},"
            " \"delay_ms\": 600}, {\"when\": \"FAST\", \"reply\": \"f\"}],"
            " \"periodic\": [{\"every_ms\": 500, \"send\": \"HB\"}]}",
            out);
    static const turn t[] = {{"SLOW\n", 2, 700}, {"FAST\n", 1, 700}, {"SLOW\n", 2, 700},
                             {"SLOW\n", 2, 700}, {"FAST\n", 1, 700}, {"SLOW\n", 2, 700}};
    dw_buf recorded = DW_BUF_INIT;
    play(rec->port, t, N(t), "HB", &recorded);
    char *text = finish(rec, out);
    cr_assert(strstr(text, "{\"when\": \"SLOW\", \"reply\": {\"frames\": [\"s1\", \"s2\"]}},\n"
                           "    {\"when\": \"FAST\", \"reply\": \"f\"}\n") != NULL,
              "%s", text);
    const char *per = strstr(text, "\"periodic\": [\n    {\"every_ms\": ");
    unsigned every = 0;
    cr_assert(per && sscanf(per, "\"periodic\": [\n    {\"every_ms\": %u", &every) == 1, "%s",
              text);
    cr_assert(every >= 450 && every <= 550, "every_ms %u:\n%s", every, text);
    cr_assert(strstr(per, "\"send\": \"HB\"}\n  ]") != NULL, "%s", text);
    replays_as(out, t, N(t), "HB", &recorded, text);
    free(text);
    dw_buf_free(&recorded);
}
