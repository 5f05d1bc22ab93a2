/* The fault proxy's transcript tap (record/proxy_tap.h): a direction's
 * bytes, cut at every pair of points, give the same frames, prompts and
 * notes in the transcript. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "observe/transcript.h"
#include "record/proxy_tap.h"

/* The transcript's events, "dir text" a line, the time left out. */
static void events_of(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL);
    char line[512];
    out[0] = 0;
    while (fgets(line, sizeof line, f)) {
        const char *dir = strstr(line, "\"dir\":\"");
        const char *text = strstr(line, "\"text\":\"");
        cr_assert(dir != NULL, "%s", line);
        dir += 7;
        size_t dn = strcspn(dir, "\""), tn = 0;
        if (text) {
            text += 8;
            tn = strcspn(text, "\"");
        }
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%.*s %.*s|", (int)dn, dir, (int)tn, text ? text : "");
    }
    fclose(f);
}

/* `in` (exactly its size, so that an over-read shows under the sanitizers)
 * through a tap, cut at a and b, then the end: the events. */
static void tap_run(const dw_marshaller *m, const dw_sim_bytes *prompt, const char *in, size_t a,
                    size_t b, char *out, size_t cap)
{
    size_t n = strlen(in);
    uint8_t *copy = malloc(n);
    cr_assert(copy != NULL);
    memcpy(copy, in, n);
    char path[] = "/tmp/dw_tap_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    dw_sim_transcript *tr = NULL;
    dw_error err;
    cr_assert(eq(int, dw_sim_transcript_open(path, &tr, &err), DW_OK));
    dw__sim_tap t;
    cr_assert(eq(int, dw__sim_tap_init(&t, m, tr, prompt, 1, "out"), DW_OK));
    dw__sim_tap_feed(&t, copy, a);
    dw__sim_tap_feed(&t, copy + a, b - a);
    dw__sim_tap_feed(&t, copy + b, n - b);
    dw__sim_tap_finish(&t);
    dw__sim_tap_free(&t);
    dw_sim_transcript_close(tr);
    events_of(path, out, cap);
    unlink(path);
    free(copy);
}

Test(sim_proxy_tap, frames_prompts_and_a_truncated_tail_at_every_split)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    cr_assert(m != NULL);
    static const char prompt_text[] = "s> ";
    dw_sim_bytes prompt = {(uint8_t *)prompt_text, 3};
    const char *in = "PONG\ns> 1.000\ns> s>x\ntail";
    const char *want = "out PONG|out s> |out 1.000|out s> |out s>x|out tail|note ";
    char got[1024];
    size_t n = strlen(in), runs = 0;
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++, runs++) {
            tap_run(m, &prompt, in, a, b, got, sizeof got);
            cr_assert(strncmp(got, want, strlen(want)) == 0, "cut at %zu and %zu:\n%s\nwanted\n%s",
                      a, b, got, want);
        }
    cr_assert(eq(sz, runs, (n + 1) * (n + 2) / 2));
    dw_marshaller_free(m);
}

Test(sim_proxy_tap, no_transcript_no_work)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw__sim_tap t;
    cr_assert(eq(int, dw__sim_tap_init(&t, m, NULL, NULL, 1, "in"), DW_OK));
    cr_assert(t.dec == NULL);
    dw__sim_tap_feed(&t, (const uint8_t *)"x\n", 2);
    dw__sim_tap_finish(&t);
    dw__sim_tap_free(&t);
    dw_marshaller_free(m);
}

Test(sim_proxy_tap, a_frame_too_large_is_noted_and_framing_goes_on)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_marshaller_set_max_frame(m, 8);
    char got[1024];
    tap_run(m, NULL, "ok\n0123456789\nok2\n", 3, 9, got, sizeof got);
    cr_assert(strstr(got, "out ok|out 01234567|note ") == got, "%s", got);
    cr_assert(strstr(got, "out ok2|") != NULL, "%s", got);
    dw_marshaller_free(m);
}
