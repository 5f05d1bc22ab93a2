/* devwire-sim's transcript: one JSON object per line per event, flushed as
 * it goes, so a crash loses nothing:
 *
 *   {"time":"2026-11-25T12:00:00.123456Z","conn":1,"dir":"in","text":"*IDN?","match":"rules[0]"}
 *
 * "dir" is "open", "in" (a request payload), "out" (bytes written), "fault",
 * "periodic", "note" (something about the request before it, such as
 * {"dir":"note","text":"regex match limit","match":"rules[0]"}) or "close". Bytes are "text" when
 * they are printable ASCII (and tab, CR, LF), otherwise "hex". "match" names the step or rule (or
 * "unmatched"); "open"/"close" carry the peer in "peer". */
#ifndef DW_SIM_TRANSCRIPT_H
#define DW_SIM_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

typedef struct dw_sim_transcript dw_sim_transcript;

/* Open (truncate) `path` ("-" is stdout). DW_OK and *out, or an error
 * naming the file in `err`. Close with dw_sim_transcript_close (accepts
 * NULL). */
int dw_sim_transcript_open(const char *path, dw_sim_transcript **out, dw_error *err);
void dw_sim_transcript_close(dw_sim_transcript *t);

/* Write one event line. `t` may be NULL (does nothing); `device` (the
 * device's name, when the process serves several: a "device" field after
 * "time") may be NULL; `p` may be NULL when n == 0 (no bytes field); `match`
 * and `peer` may be NULL. Thread-safe. */
void dw_sim_transcript_event(dw_sim_transcript *t, const char *device, uint64_t conn,
                             const char *dir, const uint8_t *p, size_t n, const char *match,
                             const char *peer);

/* Append `s` as a JSON string literal (quotes included) to `out`. */
int dw_sim_json_string(dw_buf *out, const char *s, size_t n);

#endif
