/* Telnet: the filter at every split, 0xFF both ways, option negotiation,
 * garbage; the client against devwire's own Telnet server (banner modes);
 * interop with inetutils-telnetd. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "support.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

enum { IAC = 255, DONT = 254, DO = 253, WONT = 252, WILL = 251, SB = 250, GA = 249, SE = 240 };
enum { O_BINARY = 0, O_ECHO = 1, O_SGA = 3, O_TM = 6, O_TTYPE = 24, O_NAWS = 31, O_COMPRESS2 = 86 };

/* Bytes for an assertion message: printable ASCII as is, the rest \xNN. */
static const char *show(const void *p, size_t n, char *out, size_t size)
{
    const uint8_t *b = p;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < size; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
            out[o++] = (char)b[i];
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", b[i]);
    }
    out[o] = 0;
    return out;
}

/* ---- the filter over an in-memory stream ------------------------------ */

/* What the filter wrote: every write call's bytes, and how many calls. */
typedef struct sink {
    dw_buf bytes;
    size_t writes;
    int fail_with; /* nonzero: every write fails with it */
} sink;

static int sink_write(void *user, const uint8_t *p, size_t n)
{
    sink *k = user;
    if (k->fail_with)
        return k->fail_with;
    k->writes++;
    return dw_buf_append(&k->bytes, p, n);
}

/* The outcome of reading a whole stream through a filter. */
typedef struct run {
    dw_buf data;    /* data bytes, in order */
    dw_buf written; /* negotiation answers */
    int end;        /* DW_EOF or the error that ended it */
    char message[256];
    int empty_chunk; /* the contract was broken: DW_OK with 0 bytes */
} run;

static void run_free(run *r)
{
    dw_buf_free(&r->data);
    dw_buf_free(&r->written);
}

/* Nonzero: the filters of run_filter write into a sink that fails so. */
static int run_fail_writes;

static void run_filter(const dw_telnet_options *o, const uint8_t *data, size_t len,
                       const size_t *cuts, size_t ncuts, run *r)
{
    memset(r, 0, sizeof *r);
    /* The input sits in a buffer of exactly its size: an over-read shows. */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, copy, len, cuts, ncuts);
    sink k = {.fail_with = run_fail_writes};
    dw_telnet *t = dw_telnet_new(o, &mem.base, sink_write, &k);
    cr_assert(not(eq(ptr, t, NULL)));
    dw_iter *it = dw_telnet_iter(t);
    const uint8_t *p;
    size_t n;
    int rc;
    size_t guard = 0;
    while ((rc = dw_iter_next(it, &p, &n)) == DW_OK) {
        if (n == 0)
            r->empty_chunk = 1;
        dw_buf_append(&r->data, p, n);
        cr_assert(lt(sz, ++guard, len + 2), "more chunks than input bytes: the filter loops");
    }
    r->end = rc;
    snprintf(r->message, sizeof r->message, "%s", dw_telnet_error_message(t));
    r->written = k.bytes;
    dw_telnet_free(t);
    free(copy);
}

static int run_eq(const run *a, const run *b)
{
    return a->end == b->end && a->data.len == b->data.len && a->written.len == b->written.len &&
           (a->data.len == 0 || memcmp(a->data.data, b->data.data, a->data.len) == 0) &&
           (a->written.len == 0 || memcmp(a->written.data, b->written.data, a->written.len) == 0) &&
           !a->empty_chunk && !b->empty_chunk;
}

/* Read `data` whole, one byte at a time, and cut at every pair of points;
 * return how many splits disagreed with the whole read, and the whole read
 * in *whole. Data, answers and the ending must not depend on the cuts. */
static size_t every_split(const dw_telnet_options *o, const uint8_t *data, size_t len, run *whole)
{
    size_t bad = 0;
    run_filter(o, data, len, NULL, 0, whole);
    bad += whole->empty_chunk;
    size_t *ones = malloc((len ? len : 1) * sizeof *ones);
    for (size_t i = 0; i < len; i++)
        ones[i] = i + 1;
    run r;
    run_filter(o, data, len, ones, len, &r);
    bad += !run_eq(whole, &r);
    run_free(&r);
    free(ones);
    for (size_t i = 1; i < len; i++) {
        for (size_t j = i; j < len; j++) {
            size_t cuts[2] = {i, j};
            run_filter(o, data, len, cuts, 2, &r);
            bad += !run_eq(whole, &r);
            run_free(&r);
        }
    }
    return bad;
}

static const char *esc(const dw_buf *b, char *out, size_t n)
{
    return show(b->data, b->len, out, n);
}

/* Check the data and the answers of a stream at every split. */
static void expect_filter(const dw_telnet_options *o, const uint8_t *in, size_t len,
                          const uint8_t *want, size_t wlen, const uint8_t *answers, size_t alen,
                          int end)
{
    run whole;
    size_t bad = every_split(o, in, len, &whole);
    char g[512];
    cr_expect(eq(sz, bad, 0), "%zu split(s) gave other data, answers or ending than whole", bad);
    cr_expect(whole.data.len == wlen && (wlen == 0 || memcmp(whole.data.data, want, wlen) == 0),
              "data: got \"%s\"", esc(&whole.data, g, sizeof g));
    cr_expect(whole.written.len == alen &&
                  (alen == 0 || memcmp(whole.written.data, answers, alen) == 0),
              "answers: got \"%s\"", esc(&whole.written, g, sizeof g));
    cr_expect(eq(int, whole.end, end), "ended with %s (%s), expected %s", dw_err_name(whole.end),
              whole.message, dw_err_name(end));
    run_free(&whole);
}

static dw_telnet_options client_opts(void)
{
    dw_telnet_options o;
    dw_telnet_options_init(&o);
    return o;
}

static dw_telnet_options server_opts(int echo)
{
    dw_telnet_options o;
    dw_telnet_options_init(&o);
    o.server = 1;
    o.echo = echo;
    return o;
}

Test(telnet_filter, plain_data_passes_unchanged)
{
    dw_telnet_options o = client_opts();
    expect_filter(&o, S("hello\r\nworld\n"), S("hello\r\nworld\n"), NULL, 0, DW_EOF);
}

Test(telnet_filter, iac_iac_is_one_0xff)
{
    dw_telnet_options o = client_opts();
    expect_filter(&o,
                  S("a\xff\xff"
                    "b\xff\xff\xff\xff"
                    "c"),
                  S("a\xff"
                    "b\xff\xff"
                    "c"),
                  NULL, 0, DW_EOF);
}

Test(telnet_filter, commands_are_stripped)
{
    /* NOP, GA, AYT, DM, EOR and an unknown command between data bytes. */
    dw_telnet_options o = client_opts();
    expect_filter(&o,
                  S("a\xff\xf1"
                    "b\xff\xf9"
                    "c\xff\xf6"
                    "d\xff\xf2"
                    "e\xff\xef"
                    "f\xff\x05"
                    "g"),
                  S("abcdefg"), NULL, 0, DW_EOF);
}

Test(telnet_filter, client_option_table)
{
    /* Accepted: remote ECHO, SGA and BINARY both ways. Refused: our ECHO,
     * TTYPE, NAWS, TIMING-MARK, COMPRESS2 and an unknown option. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {IAC, WILL, O_ECHO,      IAC, DO,   O_ECHO,   IAC, WILL, O_SGA,
                          IAC, DO,   O_SGA,       IAC, DO,   O_BINARY, IAC, WILL, O_BINARY,
                          IAC, DO,   O_TTYPE,     IAC, DO,   O_NAWS,   IAC, DO,   O_TM,
                          IAC, WILL, O_COMPRESS2, IAC, WILL, 200,      'x'};
    const uint8_t answers[] = {IAC, DO,   O_ECHO,      IAC, WONT, O_ECHO,   IAC, DO,   O_SGA,
                               IAC, WILL, O_SGA,       IAC, WILL, O_BINARY, IAC, DO,   O_BINARY,
                               IAC, WONT, O_TTYPE,     IAC, WONT, O_NAWS,   IAC, WONT, O_TM,
                               IAC, DONT, O_COMPRESS2, IAC, DONT, 200};
    expect_filter(&o, in, sizeof in, S("x"), answers, sizeof answers, DW_EOF);
}

Test(telnet_filter, client_option_state)
{
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {IAC, WILL, O_ECHO, IAC, DO, O_SGA, IAC, DO, O_TTYPE, 'x'};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, in, sizeof in, NULL, 0);
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_ECHO), 1), "the server may echo");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_ECHO), 0), "we never echo");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_SGA), 1));
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_TTYPE), 0), "TTYPE is refused");
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, switched_off_options_are_refused)
{
    dw_telnet_options o = client_opts();
    o.echo = 0;
    o.sga = 0;
    o.binary = 0;
    const uint8_t in[] = {IAC, WILL, O_ECHO, IAC, WILL, O_SGA, IAC, DO, O_BINARY};
    const uint8_t answers[] = {IAC, DONT, O_ECHO, IAC, DONT, O_SGA, IAC, WONT, O_BINARY};
    expect_filter(&o, in, sizeof in, NULL, 0, answers, sizeof answers, DW_EOF);
}

Test(telnet_filter, negotiation_does_not_loop)
{
    /* RFC 1143: a repeated WILL of an option in effect gets no answer; WONT
     * turns it off once; a refused option asked again is refused again, one
     * answer per request (the answers never outgrow the input). */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {IAC, WILL, O_ECHO, IAC, WILL, O_ECHO,  IAC, WONT, O_ECHO,
                          IAC, WONT, O_ECHO, IAC, DO,   O_TTYPE, IAC, DO,   O_TTYPE};
    const uint8_t answers[] = {IAC, DO,   O_ECHO,  IAC, DONT, O_ECHO,
                               IAC, WONT, O_TTYPE, IAC, WONT, O_TTYPE};
    expect_filter(&o, in, sizeof in, NULL, 0, answers, sizeof answers, DW_EOF);
}

Test(telnet_filter, server_offers_and_confirmations)
{
    sink k = {0};
    dw_telnet_options o = server_opts(1);
    dw_mem_iter mem;
    /* The client confirms our offers (no answer due), asks us for BINARY
     * (accepted), offers TTYPE and NAWS (refused) and to echo (refused). */
    const uint8_t in[] = {IAC,  DO,      O_SGA, IAC,  DO,     O_ECHO, IAC,  DO,     O_BINARY, IAC,
                          WILL, O_TTYPE, IAC,   WILL, O_NAWS, IAC,    WILL, O_ECHO, 'h',      'i'};
    dw_mem_iter_init(&mem, in, sizeof in, NULL, 0);
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    cr_assert(eq(int, dw_telnet_start(t), DW_OK));
    const uint8_t offers[] = {IAC, WILL, O_SGA, IAC, WILL, O_ECHO};
    cr_assert(eq(sz, k.bytes.len, sizeof offers));
    cr_assert(eq(int, memcmp(k.bytes.data, offers, sizeof offers), 0), "WILL SGA, WILL ECHO");
    dw_buf_clear(&k.bytes);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_assert(eq(sz, n, 2));
    cr_assert(eq(int, memcmp(p, "hi", 2), 0));
    const uint8_t answers[] = {IAC, WILL, O_BINARY, IAC, DONT, O_TTYPE,
                               IAC, DONT, O_NAWS,   IAC, DONT, O_ECHO};
    char g[256];
    cr_expect(k.bytes.len == sizeof answers && memcmp(k.bytes.data, answers, sizeof answers) == 0,
              "answers: %s", esc(&k.bytes, g, sizeof g));
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_ECHO), 1), "we echo: the client agreed");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_SGA), 1));
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_ECHO), 0));
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, server_without_echo_offers_sga_only)
{
    sink k = {0};
    dw_telnet_options o = server_opts(0);
    dw_telnet *t = dw_telnet_new(&o, NULL, sink_write, &k);
    cr_assert(eq(int, dw_telnet_start(t), DW_OK));
    const uint8_t offers[] = {IAC, WILL, O_SGA};
    cr_assert(k.bytes.len == sizeof offers && memcmp(k.bytes.data, offers, sizeof offers) == 0);
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);

    dw_telnet_options c = client_opts();
    sink k2 = {0};
    t = dw_telnet_new(&c, NULL, sink_write, &k2);
    cr_assert(eq(int, dw_telnet_start(t), DW_OK));
    cr_expect(eq(sz, k2.bytes.len, 0), "a client offers nothing");
    dw_telnet_free(t);
}

/* A table of the caller's: offered and asked for at start in the order of
 * the options' numbers, agreed to as listed, everything else refused. */
Test(telnet_filter, server_option_table)
{
    sink k = {0};
    dw_telnet_options o = server_opts(0);
    o.table = 1;
    dw_telnet_option_set(o.will, O_ECHO);
    dw_telnet_option_set(o.will, O_SGA);
    dw_telnet_option_set(o.ask, O_BINARY);
    dw_telnet_option_set(o.ask, O_NAWS);
    dw_mem_iter mem;
    /* The client confirms ECHO and BINARY, refuses SGA and NAWS, asks us
     * for TTYPE and BINARY (not ours to send: refused) and offers TM. */
    const uint8_t in[] = {IAC,   DO,       O_ECHO, IAC,    WILL, O_BINARY, IAC,     DONT,
                          O_SGA, IAC,      WONT,   O_NAWS, IAC,  DO,       O_TTYPE, IAC,
                          DO,    O_BINARY, IAC,    WILL,   O_TM, 'o',      'k'};
    dw_mem_iter_init(&mem, in, sizeof in, NULL, 0);
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    cr_assert(eq(int, dw_telnet_start(t), DW_OK));
    const uint8_t offers[] = {IAC, DO,   O_BINARY, IAC, WILL, O_ECHO,
                              IAC, WILL, O_SGA,    IAC, DO,   O_NAWS};
    char g[256];
    cr_assert(k.bytes.len == sizeof offers && memcmp(k.bytes.data, offers, sizeof offers) == 0,
              "offers: %s", esc(&k.bytes, g, sizeof g));
    dw_buf_clear(&k.bytes);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_assert(n == 2 && memcmp(p, "ok", 2) == 0);
    const uint8_t answers[] = {IAC, WONT, O_TTYPE, IAC, WONT, O_BINARY, IAC, DONT, O_TM};
    cr_expect(k.bytes.len == sizeof answers && memcmp(k.bytes.data, answers, sizeof answers) == 0,
              "answers: %s", esc(&k.bytes, g, sizeof g));
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_ECHO), 1));
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_SGA), 0), "refused by the client");
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_BINARY), 1));
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_NAWS), 0));
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, option_names)
{
    cr_expect(eq(str, (char *)dw_telnet_option_name(O_SGA), "sga"));
    cr_expect(eq(str, (char *)dw_telnet_option_name(39), "new_environ"));
    cr_expect(eq(ptr, (void *)dw_telnet_option_name(200), NULL));
    cr_expect(eq(int, dw_telnet_option_by_name("linemode"), 34));
    cr_expect(eq(int, dw_telnet_option_by_name("LINEMODE"), -1));
    cr_expect(eq(int, dw_telnet_option_by_name(NULL), -1));
}

/* RFC 854: CR NUL is a bare CR; a NUL elsewhere and CR LF are data. With
 * the peer sending in BINARY every byte is data. At every split, so a CR
 * and its NUL in different chunks count too. */
Test(telnet_filter, cr_nul_is_cr_outside_binary)
{
    dw_telnet_options o = server_opts(0);
    o.cr_nul = 1;
    const uint8_t in[] = {'a', '\r', 0, 0, 'b', '\r', '\n', '\r', '\r', 0, 'c', '\r', 0};
    const uint8_t want[] = {'a', '\r', 0, 'b', '\r', '\n', '\r', '\r', 'c', '\r'};
    expect_filter(&o, in, sizeof in, want, sizeof want, NULL, 0, DW_EOF);
    const uint8_t bin[] = {'a', '\r', 0, IAC, WILL, O_BINARY, 'b', '\r', 0};
    const uint8_t bwant[] = {'a', '\r', 'b', '\r', 0};
    const uint8_t agree[] = {IAC, DO, O_BINARY};
    expect_filter(&o, bin, sizeof bin, bwant, sizeof bwant, agree, sizeof agree, DW_EOF);
    o.cr_nul = 0;
    expect_filter(&o, in, sizeof in, in, sizeof in, NULL, 0, DW_EOF);
}

/* An observer answers nothing and keeps what the sender said last. */
Test(telnet_filter, observer_answers_nothing)
{
    dw_telnet_options o = client_opts();
    o.observe = 1;
    const uint8_t in[] = {IAC, WILL, O_ECHO, IAC, DO, O_TTYPE, IAC, WILL, O_SGA,
                          IAC, WONT, O_SGA,  IAC, DO, O_NAWS,  'h', 'i'};
    expect_filter(&o, in, sizeof in, S("hi"), NULL, 0, DW_EOF);
    sink k = {0};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, in, sizeof in, NULL, 0);
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_expect(dw_telnet_remote_enabled(t, O_ECHO) && !dw_telnet_remote_enabled(t, O_SGA));
    cr_expect(dw_telnet_local_enabled(t, O_TTYPE) && dw_telnet_local_enabled(t, O_NAWS));
    cr_expect(eq(int, dw_telnet_start(t), DW_OK));
    cr_expect(eq(sz, k.bytes.len, 0), "nothing written");
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, subnegotiations_are_stripped)
{
    /* TTYPE SEND, NAWS with an escaped 0xFF inside, ENVIRON: none answered
     * (the options were refused), none reaches the data. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {'a', IAC, SB,  O_TTYPE, 1,   IAC, SE,  'b', IAC, SB,  O_NAWS,
                          0,   80,  IAC, IAC,     0,   24,  IAC, SE,  'c', IAC, SB,
                          39,  1,   0,   'U',     'S', 'E', 'R', IAC, SE,  'd'};
    expect_filter(&o, in, sizeof in, S("abcd"), NULL, 0, DW_EOF);
}

Test(telnet_filter, all_negotiation_chunks_are_not_returned_empty)
{
    /* The first chunk is all negotiation: the first DW_OK holds "x". */
    dw_telnet_options o = client_opts();
    const uint8_t s[] = {IAC, WILL, O_ECHO, IAC, 241, 'x'};
    size_t cuts[] = {3, 5};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, s, sizeof s, cuts, 2);
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_assert(eq(sz, n, 1));
    cr_assert(eq(u8, p[0], 'x'));
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_EOF));
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
    /* A stream of negotiation only ends without any data. */
    expect_filter(&o, s, 5, NULL, 0, (const uint8_t[]){IAC, DO, O_ECHO}, 3, DW_EOF);
}

Test(telnet_filter, unread_stays_in_the_filter)
{
    dw_telnet_options o = client_opts();
    const uint8_t s[] = {'h', 'e', IAC, IAC, 'l', 'o', IAC, 241, 'w'};
    size_t cuts[] = {7};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, s, sizeof s, cuts, 1);
    sink k = {0};
    dw_iter *inner = &mem.base;
    dw_telnet *t = dw_telnet_new(&o, NULL, sink_write, &k);
    dw_iter *it = dw_telnet_wrap(t, inner);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK));
    cr_assert(eq(sz, n, 5), "\"he\\xfflo\"");
    dw_iter_unread(it, 3);
    /* Re-wrapping (a server's next request) keeps the unread bytes. */
    it = dw_telnet_wrap(t, inner);
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK));
    cr_assert(eq(sz, n, 3));
    cr_assert(eq(int, memcmp(p, "\xfflo", 3), 0));
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK));
    cr_assert(eq(sz, n, 1));
    cr_assert(eq(u8, p[0], 'w'));
    dw_telnet_free(t);
}

Test(telnet_filter, truncated_commands_at_the_end)
{
    dw_telnet_options o = client_opts();
    expect_filter(&o, S("ab\xff"), S("ab"), NULL, 0, DW_EOF);
    expect_filter(&o, S("ab\xff\xfb"), S("ab"), NULL, 0, DW_EOF);
    expect_filter(&o, S("ab\xff\xfa\x18\x01"), S("ab"), NULL, 0, DW_EOF);
    expect_filter(&o, S("ab\xff\xfa\x18\x01\xff"), S("ab"), NULL, 0, DW_EOF);
}

Test(telnet_filter, malformed_subnegotiation_recovers)
{
    /* IAC inside SB followed by neither SE nor IAC: libtelnet ends the
     * subnegotiation and takes the byte as a command (here NOP). Data on
     * both sides survives. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {'a', IAC, SB, O_TTYPE, 1, IAC, 241, 'b', 'c'};
    expect_filter(&o, in, sizeof in, S("abc"), NULL, 0, DW_EOF);
    /* SB whose terminating command is a negotiation: it is answered. */
    const uint8_t in2[] = {'a', IAC, SB, O_NAWS, 1, IAC, DO, O_TTYPE, 'b'};
    const uint8_t ans2[] = {IAC, WONT, O_TTYPE};
    expect_filter(&o, in2, sizeof in2, S("ab"), ans2, sizeof ans2, DW_EOF);
}

Test(telnet_filter, inner_errors_pass_through)
{
    dw_telnet_options o = client_opts();
    const uint8_t s[] = {'a', IAC, WILL, O_ECHO};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, s, sizeof s, NULL, 0);
    mem.end_code = DW_ETIMEDOUT;
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_ETIMEDOUT));
    cr_expect(eq(str, (char *)dw_telnet_error_message(t), ""), "not a filter failure");
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, unnegotiated_compression_is_a_protocol_error)
{
    /* A peer that starts MCCP2 although we refused it: the data before it
     * is delivered, then DW_EPROTO, and it stays failed. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {'o', 'k', IAC, SB, O_COMPRESS2, IAC, SE, 'x', 'y', 'z'};
    expect_filter(&o, in, sizeof in, S("ok"), NULL, 0, DW_EPROTO);

    dw_mem_iter mem;
    dw_mem_iter_init(&mem, in, sizeof in, NULL, 0);
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    dw_iter *it = dw_telnet_iter(t);
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK));
    cr_assert(eq(sz, n, 2));
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_EPROTO));
    cr_expect(not(eq(ptr, strstr(dw_telnet_error_message(t), "MCCP2"), NULL)), "message: %s",
              dw_telnet_error_message(t));
    cr_expect(eq(int, dw_iter_next(it, &p, &n), DW_EPROTO), "the failure is sticky");
    cr_expect(eq(int, dw_telnet_send(t, "a", 1), DW_EPROTO), "sending after it fails too");
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, answers_before_a_failure_still_go_out)
{
    /* An answer due before the failure in the same chunk is written, so
     * what goes out does not depend on the cuts. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {'a', IAC, DO, 99, IAC, SB, O_COMPRESS2, IAC, SE, IAC, DO, 98};
    const uint8_t answers[] = {IAC, WONT, 99};
    expect_filter(&o, in, sizeof in, S("a"), answers, sizeof answers, DW_EPROTO);
}

Test(telnet_filter, failed_answer_fails_the_read)
{
    dw_telnet_options o = client_opts();
    const uint8_t s[] = {'a', IAC, WILL, O_ECHO, 'b'};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, s, sizeof s, NULL, 0);
    sink k = {.fail_with = DW_EPIPE};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    dw_iter *it = dw_telnet_iter(t);
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK), "data before the failure first");
    cr_assert(eq(sz, n, 1), "the data ends where the answer was due");
    cr_assert(eq(u8, p[0], 'a'));
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_EPIPE));
    cr_expect(not(eq(ptr, strstr(dw_telnet_error_message(t), "broken pipe"), NULL)), "message: %s",
              dw_telnet_error_message(t));
    dw_telnet_free(t);

    /* The same at every split, also when a protocol failure follows in the
     * same chunk: the failed answer came first. */
    run_fail_writes = DW_EPIPE;
    expect_filter(&o, s, sizeof s, S("a"), NULL, 0, DW_EPIPE);
    const uint8_t s2[] = {'a', IAC, DO, 99, 'b', IAC, SB, O_COMPRESS2, IAC, SE, 'c'};
    expect_filter(&o, s2, sizeof s2, S("a"), NULL, 0, DW_EPIPE);
    run_fail_writes = 0;
}

Test(telnet_filter, send_escapes_0xff_in_one_write)
{
    dw_telnet_options o = client_opts();
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, NULL, sink_write, &k);
    cr_assert(eq(int,
                 dw_telnet_send(t,
                                "a\xff"
                                "b\xff\xff",
                                5),
                 DW_OK));
    cr_expect(eq(sz, k.writes, 1), "one write, got %zu", k.writes);
    cr_assert(eq(sz, k.bytes.len, 8));
    cr_assert(eq(int,
                 memcmp(k.bytes.data,
                        "a\xff\xff"
                        "b\xff\xff\xff\xff",
                        8),
                 0));
    cr_assert(eq(int, dw_telnet_send(t, "plain", 5), DW_OK));
    cr_expect(eq(sz, k.writes, 2));
    cr_assert(eq(int, dw_telnet_send(t, "", 0), DW_OK));
    cr_expect(eq(sz, k.writes, 2), "nothing to send: no write");
    k.fail_with = DW_ECONNRESET;
    cr_expect(eq(int, dw_telnet_send(t, "x", 1), DW_ECONNRESET));
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, every_byte_value_round_trips)
{
    uint8_t all[512];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)(i * 7 + (i >> 8));
    dw_buf wire = DW_BUF_INIT;
    cr_assert(eq(int, dw_telnet_escape("", 0, &wire), DW_OK), "nothing into an empty buffer");
    cr_assert(eq(sz, wire.len, 0));
    cr_assert(eq(int, dw_telnet_escape(all, sizeof all, &wire), DW_OK));
    size_t ff = 0;
    for (size_t i = 0; i < sizeof all; i++)
        ff += all[i] == 0xff;
    cr_assert(eq(sz, wire.len, sizeof all + ff));
    dw_telnet_options o = server_opts(0);
    run r;
    size_t cuts[64];
    for (size_t i = 0; i < 64; i++)
        cuts[i] = i * (wire.len / 64) + (i % 3);
    run_filter(&o, wire.data, wire.len, cuts, 64, &r);
    cr_assert(eq(int, r.end, DW_EOF));
    cr_assert(eq(sz, r.data.len, sizeof all));
    cr_assert(eq(int, memcmp(r.data.data, all, sizeof all), 0));
    run_free(&r);
    dw_buf_free(&wire);
}

/* A small deterministic generator for garbage streams. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

Test(telnet_filter, garbage_at_every_split)
{
    /* Streams dense in IAC, negotiation and SB bytes. Whatever they hold,
     * the filter ends, answers a bounded amount and gives the same result
     * at every split. */
    static const uint8_t alphabet[] = {IAC,     IAC,  IAC, SB,   SE,     WILL,  WONT,
                                       DO,      DONT, 241, 249,  O_ECHO, O_SGA, O_BINARY,
                                       O_TTYPE, 39,   'a', '\r', 0};
    uint32_t seed = 0x1234567u;
    dw_telnet_options opts[2] = {client_opts(), server_opts(1)};
    for (int k = 0; k < 40; k++) {
        uint8_t s[40];
        size_t len = 8 + rnd(&seed) % (sizeof s - 8);
        for (size_t i = 0; i < len; i++)
            s[i] = alphabet[rnd(&seed) % sizeof alphabet];
        /* Never let MCCP2 in by accident: 86 is not in the alphabet. */
        run whole;
        size_t bad = every_split(&opts[k % 2], s, len, &whole);
        char g[256];
        cr_assert(eq(sz, bad, 0), "stream %d \"%s\": %zu split(s) disagree", k,
                  show(s, len, g, sizeof g), bad);
        cr_assert(eq(int, whole.end, DW_EOF), "stream %d: %s", k, whole.message);
        cr_assert(le(sz, whole.written.len, 3 * len), "answers outgrow the input");
        run_free(&whole);
    }
}

/* Push mode (dw_telnet_feed, what an event loop calls): the same stream fed
 * in the pieces between `cuts` gives the data, answers and ending of the
 * pull iterator (which ends with DW_EOF where push mode stays DW_OK). */
static void push_filter(const dw_telnet_options *o, const uint8_t *data, size_t len,
                        const size_t *cuts, size_t ncuts, run *r)
{
    memset(r, 0, sizeof *r);
    sink k = {0};
    dw_telnet *t = dw_telnet_new(o, NULL, sink_write, &k);
    cr_assert(not(eq(ptr, t, NULL)));
    size_t at = 0;
    int rc = DW_OK;
    for (size_t i = 0; i <= ncuts && rc == DW_OK; i++) {
        size_t end = i < ncuts && cuts[i] < len ? cuts[i] : len;
        if (end < at)
            end = at;
        /* Each piece sits in a buffer of exactly its size. */
        uint8_t *piece = malloc(end - at ? end - at : 1);
        memcpy(piece, data + at, end - at);
        rc = dw_telnet_feed(t, piece, end - at, &r->data);
        free(piece);
        at = end;
    }
    r->end = rc == DW_OK ? DW_EOF : rc;
    snprintf(r->message, sizeof r->message, "%s", dw_telnet_error_message(t));
    r->written = k.bytes;
    dw_telnet_free(t);
}

Test(telnet_filter, random_bytes_at_random_cuts)
{
    /* Any byte, MCCP2 included: the same data, answers and ending whatever
     * the cuts, never an empty chunk, never more chunks than bytes; and the
     * same in push mode. */
    static const uint8_t alphabet[] = {IAC,      IAC,     IAC,         SB,  SE,     WILL,
                                       WONT,     DO,      DONT,        241, O_ECHO, O_SGA,
                                       O_BINARY, O_TTYPE, O_COMPRESS2, 'a'};
    uint32_t seed = 0x9e3779b9u;
    for (int k = 0; k < 3000; k++) {
        uint8_t s[64];
        size_t len = 1 + rnd(&seed) % sizeof s;
        for (size_t i = 0; i < len; i++)
            s[i] = rnd(&seed) % 4 ? alphabet[rnd(&seed) % sizeof alphabet] : (uint8_t)rnd(&seed);
        size_t cuts[6];
        size_t ncuts = rnd(&seed) % 6;
        for (size_t i = 0; i < ncuts; i++)
            cuts[i] = (i ? cuts[i - 1] : 0) + rnd(&seed) % (len / 4 + 1);
        dw_telnet_options o = k % 2 ? server_opts(1) : client_opts();
        run whole, r, pushed;
        run_filter(&o, s, len, NULL, 0, &whole);
        run_filter(&o, s, len, cuts, ncuts, &r);
        push_filter(&o, s, len, cuts, ncuts, &pushed);
        char g[512];
        cr_assert(run_eq(&whole, &r), "stream %d \"%s\": cut reading differs (%s vs %s)", k,
                  show(s, len, g, sizeof g), dw_err_name(r.end), dw_err_name(whole.end));
        cr_assert(run_eq(&whole, &pushed), "stream %d \"%s\": push mode differs (%s vs %s)", k,
                  show(s, len, g, sizeof g), dw_err_name(pushed.end), dw_err_name(whole.end));
        run_free(&whole);
        run_free(&r);
        run_free(&pushed);
    }
}

Test(telnet_filter, oversized_subnegotiation)
{
    /* libtelnet keeps at most 16 KiB of a subnegotiation; past that it
     * would pass the rest on as data. The filter fails the stream instead,
     * the same way at every chunking, after the data that came before. */
    size_t len = 20000;
    uint8_t *s = malloc(len);
    s[0] = 'o';
    s[1] = 'k';
    s[2] = IAC;
    s[3] = SB;
    s[4] = O_TTYPE;
    memset(s + 5, 'z', len - 5);
    dw_telnet_options o = client_opts();
    run whole, r;
    run_filter(&o, s, len, NULL, 0, &whole);
    cr_assert(eq(int, whole.end, DW_EPROTO), "ended with %s", dw_err_name(whole.end));
    cr_assert(eq(sz, whole.data.len, 2), "only the data before it: got %zu bytes", whole.data.len);
    cr_expect(not(eq(ptr, strstr(whole.message, "subnegotiation"), NULL)), "%s", whole.message);
    size_t chunks[] = {1, 7, 4096};
    for (size_t c = 0; c < 3; c++) {
        size_t ncuts = len / chunks[c];
        size_t *cuts = malloc(ncuts * sizeof *cuts);
        for (size_t i = 0; i < ncuts; i++)
            cuts[i] = (i + 1) * chunks[c];
        run_filter(&o, s, len, cuts, ncuts, &r);
        cr_expect(run_eq(&whole, &r), "chunks of %zu differ from whole", chunks[c]);
        run_free(&r);
        free(cuts);
    }
    run_free(&whole);
    free(s);
}

/* ---- the client against devwire's own Telnet server ------------------- */

/* A Telnet line server: on connect it sends the banner (in up to two pieces
 * with a pause between), then answers each "\n"-terminated request with
 * "echo:<request>\n" and the prompt. */
typedef struct tserver {
    dw_tcp_server *srv;
    dw_marshaller *lines;
    const char *banner;
    size_t banner_len;
    const char *banner2; /* sent banner_pause_ms after the first piece */
    int banner_pause_ms;
    const char *prompt; /* after each reply */
    int echo;           /* offer WILL ECHO */
    int chatty_ms;      /* nonzero: after the banner, a byte this often for 5 s */
    pthread_mutex_t lock;
    dw_buf last_request; /* what the server read last (data bytes) */
    int local_echo;      /* its filter's ECHO state at the last request */
} tserver;

static tserver ts;

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
}

static int ts_open(void *user, dw_conn *c)
{
    tserver *s = user;
    dw_telnet_options o;
    dw_telnet_options_init(&o);
    o.server = 1;
    o.echo = s->echo;
    dw_telnet *t = dw_telnet_conn_new(c, &o);
    if (!t)
        return DW_ENOMEM;
    dw_conn_set_user(c, t);
    int rc = dw_telnet_start(t);
    if (rc == DW_OK && s->banner)
        rc = dw_telnet_send(t, s->banner, s->banner_len);
    if (rc == DW_OK && s->banner2) {
        sleep_ms(s->banner_pause_ms);
        rc = dw_telnet_send(t, s->banner2, strlen(s->banner2));
    }
    for (int i = 0; rc == DW_OK && s->chatty_ms && i < 5000 / s->chatty_ms; i++) {
        sleep_ms(s->chatty_ms);
        rc = dw_telnet_send(t, ".", 1);
    }
    return rc;
}

static int ts_request(void *user, dw_conn *c, dw_iter *in, dw_buf *out)
{
    tserver *s = user;
    dw_telnet *t = dw_conn_user(c);
    dw_buf req = DW_BUF_INIT;
    int rc = dw_unmarshall(s->lines, dw_telnet_wrap(t, in), &req, NULL);
    if (rc == DW_OK) {
        pthread_mutex_lock(&s->lock);
        dw_buf_clear(&s->last_request);
        dw_buf_append(&s->last_request, req.data, req.len);
        s->local_echo = dw_telnet_local_enabled(t, O_ECHO);
        pthread_mutex_unlock(&s->lock);
        dw_telnet_escape("echo:", 5, out);
        dw_telnet_escape(req.data, req.len, out);
        dw_telnet_escape("\n", 1, out);
        if (s->prompt)
            dw_telnet_escape(s->prompt, strlen(s->prompt), out);
    }
    dw_buf_free(&req);
    return rc;
}

static void ts_close(void *user, dw_conn *c)
{
    (void)user;
    dw_telnet_free(dw_conn_user(c));
}

static void ts_start(void)
{
    ts.lines = dw_sentinel_marshaller_new("\n", 1);
    pthread_mutex_init(&ts.lock, NULL);
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    dw_server_handler h = {ts_open, ts_request, ts_close, &ts};
    dw_error err;
    int rc = dw_tcp_server_new(&o, &h, &ts.srv, &err);
    cr_assert(eq(int, rc, DW_OK), "%s", dw_error_message(&err));
    rc = dw_tcp_server_start(ts.srv, &err);
    cr_assert(eq(int, rc, DW_OK), "%s", dw_error_message(&err));
}

static void ts_fini(void)
{
    dw_tcp_server_free(ts.srv);
    ts.srv = NULL;
    dw_marshaller_free(ts.lines);
    ts.lines = NULL;
    dw_buf_free(&ts.last_request);
}

static dw_telnet_client_options client_options(uint16_t port)
{
    dw_telnet_client_options o;
    dw_telnet_client_options_init(&o);
    o.tcp.host = "127.0.0.1";
    o.tcp.port = port;
    o.tcp.timeout_ms = 10000;
    return o;
}

/* Read one "\n"-terminated line (without the "\n") from the session. */
static int read_line(dw_session *s, dw_buf *line)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_buf_clear(line);
    dw_error err;
    int rc = dw_unmarshall(m, dw_session_iter(s), line, &err);
    dw_marshaller_free(m);
    return rc;
}

static void expect_bytes(const dw_buf *got, const void *want, size_t n, const char *what)
{
    char g[512], w[512];
    cr_expect(got->len == n && (n == 0 || memcmp(got->data, want, n) == 0),
              "%s: got \"%s\", expected \"%s\"", what, show(got->data, got->len, g, sizeof g),
              show(want, n, w, sizeof w));
}

static void round_trip(dw_session *s, const void *req, size_t n, const void *want, size_t wn)
{
    dw_error err;
    dw_iter *it;
    int rc = dw_session_request(s, req, n, &it, &err);
    cr_assert(eq(int, rc, DW_OK), "request: %s", dw_error_message(&err));
    dw_buf line = DW_BUF_INIT;
    rc = read_line(s, &line);
    cr_assert(eq(int, rc, DW_OK), "response: %s", dw_strerror(rc));
    expect_bytes(&line, want, wn, "response");
    dw_buf_free(&line);
}

TestSuite(telnet_net, .init = ts_start, .fini = ts_fini, .timeout = 30);

Test(telnet_net, round_trips_two_sessions)
{
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    dw_client *c = dw_telnet_client_new(&o);
    cr_assert(not(eq(ptr, c, NULL)));
    for (int k = 0; k < 2; k++) {
        dw_session *s;
        dw_error err;
        int rc = dw_client_connect(c, &s, &err);
        cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&err));
        const dw_buf *b = dw_telnet_session_banner(s);
        cr_assert(not(eq(ptr, (void *)b, NULL)));
        cr_expect(eq(sz, b->len, 0), "no banner mode keeps no banner");
        round_trip(s, S("hello\n"), S("echo:hello"));
        round_trip(s, S("second\n"), S("echo:second"));
        dw_session_close(s);
    }
    dw_client_free(c);
}

Test(telnet_net, pipelined_requests_in_order)
{
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s;
    dw_error err;
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "%s", dw_error_message(&err));
    cr_assert(eq(int, dw_session_send(s, S("one\ntwo\nthree\n"), &err), DW_OK));
    const char *want[] = {"echo:one", "echo:two", "echo:three"};
    dw_buf line = DW_BUF_INIT;
    for (int i = 0; i < 3; i++) {
        cr_assert(eq(int, read_line(s, &line), DW_OK));
        expect_bytes(&line, want[i], strlen(want[i]), "pipelined response");
    }
    dw_buf_free(&line);
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnet_net, byte_0xff_both_ways)
{
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s;
    dw_error err;
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "%s", dw_error_message(&err));
    round_trip(s,
               S("a\xff"
                 "b\xff\xff\x00z\n"),
               S("echo:a\xff"
                 "b\xff\xff\x00z"));
    pthread_mutex_lock(&ts.lock);
    expect_bytes(&ts.last_request,
                 S("a\xff"
                   "b\xff\xff\x00z"),
                 "what the server read");
    pthread_mutex_unlock(&ts.lock);
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnet_net, negotiation_between_devwire_ends)
{
    ts.echo = 1;
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s;
    dw_error err;
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "%s", dw_error_message(&err));
    round_trip(s, S("x\n"), S("echo:x"));
    /* The client answered the offers while reading the first response, so
     * the answers precede the second request in the stream. */
    round_trip(s, S("y\n"), S("echo:y"));
    dw_telnet *t = dw_telnet_session_filter(s);
    cr_assert(not(eq(ptr, t, NULL)));
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_ECHO), 1), "the server's WILL ECHO accepted");
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_SGA), 1), "the server's WILL SGA accepted");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_ECHO), 0));
    pthread_mutex_lock(&ts.lock);
    cr_expect(eq(int, ts.local_echo, 1), "the server sees its ECHO agreed");
    pthread_mutex_unlock(&ts.lock);
    cr_expect(eq(ptr, dw_telnet_session_filter(NULL), NULL));
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnet_net, banner_none_leaves_it_in_the_stream)
{
    ts.banner = "Hello \xff device\n";
    ts.banner_len = strlen(ts.banner);
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s;
    dw_error err;
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "%s", dw_error_message(&err));
    dw_buf line = DW_BUF_INIT;
    cr_assert(eq(int, read_line(s, &line), DW_OK));
    expect_bytes(&line, S("Hello \xff device"), "first line");
    dw_buf_free(&line);
    round_trip(s, S("x\n"), S("echo:x"));
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnet_net, banner_quiet)
{
    ts.banner = "Welcome to the \xff-device\r\n";
    ts.banner_len = strlen(ts.banner);
    ts.banner2 = "> ";
    ts.banner_pause_ms = 20;
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    o.banner = DW_TELNET_BANNER_QUIET;
    o.banner_quiet_ms = 500;
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s;
    dw_error err;
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "%s", dw_error_message(&err));
    const dw_buf *b = dw_telnet_session_banner(s);
    expect_bytes(b, S("Welcome to the \xff-device\r\n> "), "banner (both pieces)");
    cr_expect(eq(u8, b->data[b->len], 0), "NUL-terminated");
    round_trip(s, S("hello\n"), S("echo:hello"));
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnet_net, banner_quiet_that_never_comes)
{
    /* A byte every 10 ms: never quiet for 1 s within the 2.5 s timeout. */
    ts.banner = "Welcome\r\n";
    ts.banner_len = strlen(ts.banner);
    ts.chatty_ms = 10;
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    o.tcp.timeout_ms = 2500;
    o.banner = DW_TELNET_BANNER_QUIET;
    o.banner_quiet_ms = 1000;
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    int rc = dw_client_connect(c, &s, &err);
    cr_assert(eq(int, rc, DW_ETIMEDOUT), "got %s: %s", dw_err_name(rc), dw_error_message(&err));
    cr_expect(not(eq(ptr, strstr(err.message, "never quiet within 2500 ms"), NULL)), "%s",
              err.message);
    dw_client_free(c);
}

Test(telnet_net, banner_prompt_keeps_what_follows)
{
    /* The prompt and an early line in one write: the line stays for the
     * application. */
    static const char banner[] = "Welcome\r\nlogin ok\r\n> early\n";
    ts.banner = banner;
    ts.banner_len = sizeof banner - 1;
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = "> ";
    o.banner_prompt_len = 2;
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s;
    dw_error err;
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "%s", dw_error_message(&err));
    expect_bytes(dw_telnet_session_banner(s), S("Welcome\r\nlogin ok\r\n> "), "banner");
    dw_buf line = DW_BUF_INIT;
    cr_assert(eq(int, read_line(s, &line), DW_OK));
    expect_bytes(&line, S("early"), "the bytes after the prompt");
    dw_buf_free(&line);
    round_trip(s, S("hello\n"), S("echo:hello"));
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnet_net, banner_prompt_split_across_writes)
{
    ts.banner = "Welcome\r\n#";
    ts.banner_len = strlen(ts.banner);
    ts.banner2 = "> ";
    ts.banner_pause_ms = 30;
    ts.prompt = "#> ";
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = "#> ";
    o.banner_prompt_len = 3;
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s;
    dw_error err;
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "%s", dw_error_message(&err));
    expect_bytes(dw_telnet_session_banner(s), S("Welcome\r\n#> "), "banner");
    /* Each reply is followed by the prompt: read the line, then the prompt. */
    round_trip(s, S("a\n"), S("echo:a"));
    const uint8_t *p;
    size_t n;
    dw_iter *it = dw_session_iter(s);
    dw_buf got = DW_BUF_INIT;
    while (got.len < 3 && dw_iter_next(it, &p, &n) == DW_OK)
        dw_buf_append(&got, p, n);
    expect_bytes(&got, S("#> "), "prompt after the reply");
    dw_buf_free(&got);
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnet_net, banner_prompt_that_never_comes)
{
    ts.banner = "Welcome\r\n";
    ts.banner_len = strlen(ts.banner);
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    o.tcp.timeout_ms = 300;
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = "login: ";
    o.banner_prompt_len = 7;
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    int rc = dw_client_connect(c, &s, &err);
    cr_assert(eq(int, rc, DW_ETIMEDOUT), "got %s: %s", dw_err_name(rc), dw_error_message(&err));
    cr_expect(eq(ptr, s, NULL));
    cr_expect(not(eq(ptr, strstr(err.message, "no prompt within 300 ms"), NULL)), "%s",
              err.message);
    cr_expect(not(eq(ptr, strstr(err.message, "127.0.0.1:"), NULL)), "names the address: %s",
              err.message);
    dw_client_free(c);
}

Test(telnet_net, banner_too_long)
{
    static char big[3000];
    memset(big, 'b', sizeof big);
    ts.banner = big;
    ts.banner_len = sizeof big;
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = "> ";
    o.banner_prompt_len = 2;
    o.banner_max = 1000;
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    int rc = dw_client_connect(c, &s, &err);
    cr_assert(eq(int, rc, DW_ETOOBIG), "got %s: %s", dw_err_name(rc), dw_error_message(&err));
    dw_client_free(c);
}

Test(telnet_net, bad_options_give_no_client)
{
    dw_telnet_client_options o = client_options(1);
    o.banner = DW_TELNET_BANNER_PROMPT;
    cr_expect(eq(ptr, dw_telnet_client_new(&o), NULL), "PROMPT without a prompt");
    o.banner = DW_TELNET_BANNER_QUIET;
    o.banner_quiet_ms = 0;
    cr_expect(eq(ptr, dw_telnet_client_new(&o), NULL), "QUIET without a quiet period");
    o.tcp.host = NULL;
    o.banner = DW_TELNET_BANNER_NONE;
    cr_expect(eq(ptr, dw_telnet_client_new(&o), NULL), "no host");
}

Test(telnet_net, refused_connection_names_the_address)
{
    /* A port nobody listens on: bind one, read it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(eq(int, bind(fd, (struct sockaddr *)&a, sizeof a), 0));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    dw_telnet_client_options o = client_options(ntohs(a.sin_port));
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    int rc = dw_client_connect(c, &s, &err);
    cr_assert(eq(int, rc, DW_ECONNREFUSED), "got %s", dw_err_name(rc));
    cr_expect(not(eq(ptr, strstr(err.message, "127.0.0.1:"), NULL)), "%s", err.message);
    dw_client_free(c);
}

Test(telnet_net, through_the_application_layer)
{
    ts.banner = "Device ready\r\n> ";
    ts.banner_len = strlen(ts.banner);
    dw_telnet_client_options o = client_options(dw_tcp_server_port(ts.srv));
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = "> ";
    o.banner_prompt_len = 2;
    dw_client *c = dw_telnet_client_new(&o);
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_app_client *app = dw_app_client_new(c, m, m);
    dw_app_session *s;
    dw_error err;
    cr_assert(eq(int, dw_app_client_connect(app, &s, &err), DW_OK), "%s", dw_error_message(&err));
    dw_buf r = DW_BUF_INIT;
    for (int i = 0; i < 3; i++) {
        int rc = dw_app_session_send_receive_bytes(s, S("\xffping"), &r, &err);
        cr_assert(eq(int, rc, DW_OK), "%s", dw_error_message(&err));
        expect_bytes(&r, S("echo:\xffping"), "application response");
    }
    dw_buf_free(&r);
    dw_app_session_close(s);
    dw_app_client_free(app);
    dw_marshaller_free(m);
    dw_client_free(c);
}

/* ---- interop with inetutils-telnetd ----------------------------------- */

/* socat forks a telnetd per connection, running /bin/cat on a pty: it
 * negotiates (DO TTYPE, DO NEW-ENVIRON, WILL ECHO, ...), then echoes each
 * line (the pty's echo and cat's copy). */
#define TELNETD "/usr/sbin/telnetd"

static pid_t socat_pid = -1;
static uint16_t socat_port;
static char skip_reason[256];

static int find_program(const char *name, char *path, size_t n)
{
    if (strchr(name, '/')) {
        snprintf(path, n, "%s", name);
        return access(path, X_OK) == 0;
    }
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", env ? env : "/usr/bin:/bin");
    for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, n, "%s/%s", d, name);
        if (access(path, X_OK) == 0)
            return 1;
    }
    return 0;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int port_accepts(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void socat_start(void)
{
    char socat[512], telnetd[512];
    if (!find_program("socat", socat, sizeof socat)) {
        snprintf(skip_reason, sizeof skip_reason,
                 "socat is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    if (!find_program(TELNETD, telnetd, sizeof telnetd)) {
        snprintf(skip_reason, sizeof skip_reason,
                 TELNETD " is missing (package inetutils-telnetd, see scripts/install-deps.sh)");
        return;
    }
    socat_port = free_port();
    cr_assert(not(eq(u16, socat_port, 0)), "no free port");
    char listen[128];
    snprintf(listen, sizeof listen, "TCP-LISTEN:%u,bind=127.0.0.1,reuseaddr,fork",
             (unsigned)socat_port);
    const char *exec = "EXEC:\"" TELNETD " -h -E /bin/cat\",nofork";
    /* Its own process group, so that .fini ends socat and whatever it
     * forked; and it dies with the test process even if .fini never runs (a
     * test that times out is killed). */
    socat_pid = dw_test_child_fork();
    cr_assert(ge(int, socat_pid, 0), "fork: %s", strerror(errno));
    if (socat_pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        execl(socat, "socat", listen, exec, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        if (port_accepts(socat_port))
            return;
        int status;
        if (dw_test_child_reap(socat_pid, 0, &status) == 1) {
            socat_pid = -1;
            cr_fatal("socat exited at start (status %d)", status);
        }
        sleep_ms(50);
    }
    cr_fatal("socat is not listening on 127.0.0.1:%u after 5 s", (unsigned)socat_port);
}

static void socat_stop(void)
{
    if (socat_pid > 0) {
        dw_test_child_kill(socat_pid, SIGTERM);
        dw_test_child_reap(socat_pid, 1, NULL);
        socat_pid = -1;
    }
}

/* Read from the session until `needle` has arrived; everything read is in
 * `acc`. DW_OK or the iterator's code. */
static int read_until(dw_session *s, const void *needle, size_t n, dw_buf *acc)
{
    dw_iter *it = dw_session_iter(s);
    for (;;) {
        if (acc->len >= n && memmem(acc->data, acc->len, needle, n))
            return DW_OK;
        const uint8_t *p;
        size_t len;
        int rc = dw_iter_next(it, &p, &len);
        if (rc != DW_OK)
            return rc;
        dw_buf_append(acc, p, len);
    }
}

static dw_session *telnetd_connect(dw_client **c, dw_telnet_banner_mode mode)
{
    if (skip_reason[0])
        cr_skip_test("%s", skip_reason);
    dw_telnet_client_options o = client_options(socat_port);
    o.banner = mode;
    o.banner_quiet_ms = 300;
    *c = dw_telnet_client_new(&o);
    cr_assert(not(eq(ptr, *c, NULL)));
    dw_session *s;
    dw_error err;
    int rc = dw_client_connect(*c, &s, &err);
    cr_assert(eq(int, rc, DW_OK), "connect to telnetd: %s", dw_error_message(&err));
    return s;
}

TestSuite(telnetd, .init = socat_start, .fini = socat_stop, .timeout = 30);

Test(telnetd, echoes_lines_after_negotiation)
{
    dw_client *c;
    dw_session *s = telnetd_connect(&c, DW_TELNET_BANNER_NONE);
    dw_error err;
    cr_assert(eq(int, dw_session_send(s, S("hello devwire\n"), &err), DW_OK), "%s",
              dw_error_message(&err));
    dw_buf acc = DW_BUF_INIT;
    int rc = read_until(s, S("hello devwire"), &acc);
    char g[512];
    cr_assert(eq(int, rc, DW_OK), "%s; read so far: \"%s\"", dw_strerror(rc),
              show(acc.data, acc.len, g, sizeof g));
    cr_expect(eq(ptr, memchr(acc.data, 0xff, acc.len), NULL),
              "no IAC byte reaches the data: \"%s\"", show(acc.data, acc.len, g, sizeof g));
    dw_telnet *t = dw_telnet_session_filter(s);
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_ECHO), 1), "telnetd's WILL ECHO accepted");
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_SGA), 1), "telnetd's WILL SGA accepted");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_TTYPE), 0), "DO TTYPE refused");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_NAWS), 0), "DO NAWS refused");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_ECHO), 0), "DO ECHO refused");
    dw_buf_free(&acc);
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnetd, byte_0xff_survives_the_round_trip)
{
    dw_client *c;
    dw_session *s = telnetd_connect(&c, DW_TELNET_BANNER_QUIET);
    const dw_buf *b = dw_telnet_session_banner(s);
    char g[512];
    cr_expect(eq(ptr, memchr(b->data, 0xff, b->len), NULL), "banner holds no IAC: \"%s\"",
              show(b->data, b->len, g, sizeof g));
    dw_error err;
    cr_assert(eq(int, dw_session_send(s, S("x\xffy\n"), &err), DW_OK), "%s",
              dw_error_message(&err));
    dw_buf acc = DW_BUF_INIT;
    int rc = read_until(s, S("x\xffy"), &acc);
    cr_assert(eq(int, rc, DW_OK), "%s; read so far: \"%s\"", dw_strerror(rc),
              show(acc.data, acc.len, g, sizeof g));
    dw_buf_free(&acc);
    dw_session_close(s);
    dw_client_free(c);
}

Test(telnetd, several_round_trips_through_the_application_layer)
{
    /* cat's copy of a line comes after the pty's echo of it; a request
     * marshalled with "\n" and a response read up to "\n" see the echo
     * first, then the copy: both are the request. */
    if (skip_reason[0])
        cr_skip_test("%s", skip_reason);
    dw_telnet_client_options o = client_options(socat_port);
    o.banner = DW_TELNET_BANNER_QUIET;
    o.banner_quiet_ms = 300;
    dw_client *c = dw_telnet_client_new(&o);
    dw_marshaller *req = dw_sentinel_marshaller_new("\n", 1);
    dw_marshaller *resp = dw_sentinel_marshaller_new("\r\n", 2);
    dw_app_client *app = dw_app_client_new(c, req, resp);
    dw_app_session *s;
    dw_error err;
    cr_assert(eq(int, dw_app_client_connect(app, &s, &err), DW_OK), "%s", dw_error_message(&err));
    dw_buf r = DW_BUF_INIT;
    for (int i = 0; i < 3; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d", i);
        int rc = dw_app_session_send_receive_bytes(s, line, (size_t)n, &r, &err);
        cr_assert(eq(int, rc, DW_OK), "%s", dw_error_message(&err));
        expect_bytes(&r, line, (size_t)n, "the pty's echo");
        rc = dw_unmarshall(resp, dw_session_iter(dw_app_session_transport(s)), &r, &err);
        cr_assert(eq(int, rc, DW_OK), "%s", dw_error_message(&err));
        expect_bytes(&r, line, (size_t)n, "cat's copy");
    }
    dw_buf_free(&r);
    dw_app_session_close(s);
    dw_app_client_free(app);
    dw_marshaller_free(req);
    dw_marshaller_free(resp);
    dw_client_free(c);
}
