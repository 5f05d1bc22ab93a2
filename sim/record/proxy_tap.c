/* devwire-sim's fault proxy, the frames of its transcript: see proxy_tap.h. */
#include "record/proxy_tap.h"

#include <string.h>

/* A frame's storage above this goes back after the frame. */
#define TAP_KEEP (64 * 1024)

int dw__sim_tap_init(dw__sim_tap *t, const dw_marshaller *m, dw_sim_transcript *tr,
                     const dw_sim_bytes *prompt, uint64_t conn, const char *dir)
{
    memset(t, 0, sizeof *t);
    if (!tr)
        return DW_OK;
    t->tr = tr;
    t->prompt = prompt && prompt->len ? prompt : NULL;
    t->conn = conn;
    t->dir = dir;
    t->dec = dw_decoder_new(m);
    return t->dec ? DW_OK : DW_ENOMEM;
}

static void tap_write(dw__sim_tap *t, const uint8_t *p, size_t n)
{
    dw_sim_transcript_event(t->tr, NULL, t->conn, t->dir, p, n, NULL, NULL);
}

/* The frame in t->frame broke the framing (or the stream ended in it). */
static void tap_broken(dw__sim_tap *t, const dw_error *err)
{
    const char *why = dw_error_message(err);
    tap_write(t, t->frame.data, t->frame.len);
    dw_sim_transcript_event(t->tr, NULL, t->conn, "note", (const uint8_t *)why, strlen(why), NULL,
                            NULL);
}

static void tap_done(dw__sim_tap *t)
{
    if (t->frame.cap > TAP_KEEP)
        dw_buf_free(&t->frame);
    dw_decoder_shrink(t->dec, TAP_KEEP);
}

/* One step of the decoder over p[0..n): an event when a frame completes;
 * the bytes consumed. */
static size_t tap_step(dw__sim_tap *t, const uint8_t *p, size_t n)
{
    size_t used = 0;
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_decoder_feed(t->dec, p, n, &used, &t->frame, &err);
    if (rc == DW_MORE)
        return n;
    if (rc == DW_OK)
        tap_write(t, t->frame.data, t->frame.len);
    else
        tap_broken(t, &err);
    tap_done(t);
    return used ? used : n;
}

static void tap_frames(dw__sim_tap *t, const uint8_t *p, size_t n)
{
    for (size_t at = 0; at < n;)
        at += tap_step(t, p + at, n - at);
}

void dw__sim_tap_feed(dw__sim_tap *t, const uint8_t *p, size_t n)
{
    if (!t->dec)
        return;
    const dw_sim_bytes *pr = t->prompt;
    for (size_t at = 0; at < n;) {
        if (pr && !dw_decoder_buffered(t->dec)) { /* between frames: the prompt? */
            while (t->pmatch < pr->len && at < n && p[at] == pr->data[t->pmatch]) {
                t->pmatch++;
                at++;
            }
            if (t->pmatch == pr->len) {
                tap_write(t, pr->data, pr->len);
                t->pmatch = 0;
                continue;
            }
            if (at == n)
                return;      /* perhaps the prompt, in pieces */
            if (t->pmatch) { /* not the prompt: a frame that starts like it */
                size_t held = t->pmatch;
                t->pmatch = 0;
                tap_frames(t, pr->data, held);
                continue;
            }
        }
        at += tap_step(t, p + at, n - at);
    }
}

void dw__sim_tap_finish(dw__sim_tap *t)
{
    if (!t->dec)
        return;
    if (t->pmatch) {
        size_t held = t->pmatch;
        t->pmatch = 0;
        tap_frames(t, t->prompt->data, held);
    }
    dw_error err;
    dw_error_clear(&err);
    if (dw_decoder_finish(t->dec, &t->frame, &err) == DW_ETRUNCATED)
        tap_broken(t, &err);
    tap_done(t);
}

void dw__sim_tap_free(dw__sim_tap *t)
{
    dw_decoder_free(t->dec);
    dw_buf_free(&t->frame);
    t->dec = NULL;
}
