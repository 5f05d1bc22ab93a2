/* devwire-sim's transcript: see transcript.h. */
#include "observe/transcript.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_bytes.h"

struct dw_sim_transcript {
    pthread_mutex_t lock;
    FILE *f;
    int own; /* fclose at the end (not stdout) */
    dw_buf line;
};

int dw_sim_transcript_open(const char *path, dw_sim_transcript **out, dw_error *err)
{
    *out = NULL;
    dw_sim_transcript *t = calloc(1, sizeof *t);
    if (!t)
        return dw_error_set(err, DW_ENOMEM, "transcript: out of memory");
    if (strcmp(path, "-") == 0) {
        t->f = stdout;
    } else {
        t->f = fopen(path, "we");
        if (!t->f) {
            int e = errno;
            free(t);
            return dw_error_set(err, -e, "transcript %s: %s", path, strerror(e));
        }
        t->own = 1;
    }
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return DW_OK;
}

void dw_sim_transcript_close(dw_sim_transcript *t)
{
    if (!t)
        return;
    if (t->own)
        fclose(t->f);
    else
        fflush(t->f);
    dw_buf_free(&t->line);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int dw_sim_json_string(dw_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = dw_buf_append_byte(out, '"');
    for (size_t i = 0; i < n && rc == DW_OK; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            rc = dw_buf_append_str(out, "\\\"");
            break;
        case '\\':
            rc = dw_buf_append_str(out, "\\\\");
            break;
        case '\n':
            rc = dw_buf_append_str(out, "\\n");
            break;
        case '\r':
            rc = dw_buf_append_str(out, "\\r");
            break;
        case '\t':
            rc = dw_buf_append_str(out, "\\t");
            break;
        default:
            if (ch < 0x20 || ch >= 0x7f) {
                char u[7] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15], 0};
                rc = dw_buf_append(out, u, 6);
            } else {
                rc = dw_buf_append_byte(out, ch);
            }
        }
    }
    if (rc == DW_OK)
        rc = dw_buf_append_byte(out, '"');
    return rc;
}

void dw_sim_transcript_event(dw_sim_transcript *t, const char *device, uint64_t conn,
                             const char *dir, const uint8_t *p, size_t n, const char *match,
                             const char *peer)
{
    static const char hex[] = "0123456789abcdef";
    if (!t)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&t->lock);
    dw_buf *b = &t->line;
    dw_buf_clear(b);
    dw_buf_printf(b, "{\"time\":\"%s.%06ldZ\",", when, ts.tv_nsec / 1000);
    if (device) {
        dw_buf_append_str(b, "\"device\":");
        dw_sim_json_string(b, device, strlen(device));
        dw_buf_append_byte(b, ',');
    }
    dw_buf_printf(b, "\"conn\":%llu,\"dir\":", (unsigned long long)conn);
    dw_sim_json_string(b, dir, strlen(dir));
    if (p && n) {
        if (dw_sim_bytes_are_text(p, n, 1)) {
            dw_buf_append_str(b, ",\"text\":");
            dw_sim_json_string(b, (const char *)p, n);
        } else {
            dw_buf_append_str(b, ",\"hex\":\"");
            for (size_t i = 0; i < n; i++) {
                dw_buf_append_byte(b, (uint8_t)hex[p[i] >> 4]);
                dw_buf_append_byte(b, (uint8_t)hex[p[i] & 15]);
            }
            dw_buf_append_byte(b, '"');
        }
    } else if (strcmp(dir, "in") == 0 || strcmp(dir, "out") == 0) {
        dw_buf_append_str(b, ",\"text\":\"\"");
    }
    if (match) {
        dw_buf_append_str(b, ",\"match\":");
        dw_sim_json_string(b, match, strlen(match));
    }
    if (peer) {
        dw_buf_append_str(b, ",\"peer\":");
        dw_sim_json_string(b, peer, strlen(peer));
    }
    dw_buf_append_str(b, "}\n");
    fwrite(b->data, 1, b->len, t->f);
    fflush(t->f);
    pthread_mutex_unlock(&t->lock);
}
