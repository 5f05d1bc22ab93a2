/* Unmarshalling throughput of every framing, for small and large frames
 * delivered in small and large chunks, next to a baseline measured in the
 * same run (memchr + memcpy over the same bytes in the same chunks: the least
 * work any sentinel unmarshaller must do).
 *
 * MB/s are 10^6 bytes of stream (framing included) per second of process
 * CPU time. Each cell is the best of several passes over a ~16 MiB stream
 * (one 16 MiB frame for the largest size). DW_BENCH_QUICK=1 shortens the
 * run. */
#include <ctype.h>
#include <devwire/devwire.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

static const size_t frame_sizes[] = {KIB, 64 * KIB, 16 * MIB};
static const char *const frame_names[] = {"1 KiB", "64 KiB", "16 MiB"};
static const size_t chunk_sizes[] = {1, 64, 4096, 65536};
#define NF (sizeof frame_sizes / sizeof frame_sizes[0])
#define NC (sizeof chunk_sizes / sizeof chunk_sizes[0])

enum { SENT_LF, SENT_CRLF, FIXED, LP4, SCPI_TEXT, SCPI_BLOCK, JSON, NKINDS };
static const char *const kind_names[NKINDS] = {
    "sentinel \\n", "sentinel \\r\\n", "fixed",      "length-prefixed 4 BE",
    "scpi text",    "scpi #block",     "json-lines",
};

static int quick;
static double min_time = 0.2; /* CPU seconds per cell, at least */
static int min_passes = 3;
static double long_pass = 0.3; /* a pass this long is measured once */

/* CPU time of this process: the machine may be shared, and time spent
 * waiting for a core is not the unmarshaller's cost. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static dw_marshaller *make(int kind, size_t payload)
{
    dw_marshaller *m = NULL;
    switch (kind) {
    case SENT_LF:
        m = dw_sentinel_marshaller_new("\n", 1);
        break;
    case SENT_CRLF:
        m = dw_sentinel_marshaller_new("\r\n", 2);
        break;
    case FIXED:
        m = dw_fixed_marshaller_new(payload);
        break;
    case LP4:
        m = dw_length_prefixed_marshaller_new(4, DW_BIG_ENDIAN);
        break;
    case SCPI_TEXT:
    case SCPI_BLOCK:
        m = dw_scpi_marshaller_new("\n", 1);
        break;
    default:
        m = dw_json_marshaller_new();
        break;
    }
    if (m)
        dw_marshaller_set_max_frame(m, 64 * MIB);
    return m;
}

/* One payload of `size` bytes for `kind`: letters (no sentinel, quote, '#'),
 * wrapped as a JSON string or an arbitrary block where the framing wants. */
static void make_payload(int kind, size_t size, dw_buf *p)
{
    dw_buf_clear(p);
    size_t body = size;
    if (kind == JSON)
        body = size - 2;
    if (kind == SCPI_BLOCK)
        body = size - 10;
    if (kind == JSON)
        dw_buf_append_byte(p, '"');
    if (kind == SCPI_BLOCK)
        dw_buf_printf(p, "#8%08zu", body);
    dw_buf_reserve(p, body + 1);
    for (size_t i = 0; i < body; i++)
        p->data[p->len + i] = (uint8_t)('a' + (i * 7 + i / 26) % 26);
    p->len += body;
    if (kind == JSON)
        dw_buf_append_byte(p, '"');
}

/* A stream of frames of `size` payload bytes, about `total` bytes long. */
static size_t make_stream(const dw_marshaller *m, int kind, size_t size, size_t total,
                          dw_buf *stream)
{
    dw_buf p = DW_BUF_INIT;
    make_payload(kind, size, &p);
    size_t frames = total / size ? total / size : 1;
    dw_buf_clear(stream);
    for (size_t i = 0; i < frames; i++) {
        dw_error err;
        if (dw_marshall(m, p.data, p.len, stream, &err) != DW_OK) {
            fprintf(stderr, "bench_framing: %s: %s\n", kind_names[kind], err.message);
            exit(1);
        }
    }
    dw_buf_free(&p);
    return frames;
}

/* One pass: unmarshall every frame. Returns the number of frames. */
static size_t unmarshal_pass(const dw_marshaller *m, const dw_buf *stream, size_t chunk,
                             dw_buf *payload)
{
    dw_mem_iter it;
    dw_mem_iter_init_chunked(&it, stream->data, stream->len, chunk);
    size_t frames = 0;
    int rc;
    dw_error err;
    while ((rc = dw_unmarshall(m, &it.base, payload, &err)) == DW_OK)
        frames++;
    if (rc != DW_EOF) {
        fprintf(stderr, "bench_framing: %s: %s\n", dw_marshaller_name(m), err.message);
        exit(1);
    }
    return frames;
}

/* The baseline: the same chunks, memchr for the terminator and memcpy of the
 * payload bytes into a buffer that already has room. */
static size_t baseline_pass(const dw_buf *stream, size_t chunk, uint8_t *out)
{
    size_t frames = 0, have = 0;
    for (size_t pos = 0; pos < stream->len;) {
        size_t n = stream->len - pos < chunk ? stream->len - pos : chunk;
        const uint8_t *c = stream->data + pos;
        size_t left = n;
        while (left) {
            const uint8_t *hit = memchr(c, '\n', left);
            size_t take = hit ? (size_t)(hit - c) : left;
            memcpy(out + have, c, take);
            have += take;
            if (hit) {
                frames++;
                have = 0;
                take++;
            }
            c += take;
            left -= take;
        }
        pos += n;
    }
    return frames;
}

/* Best MB/s over passes lasting at least min_time in all. */
static double measure(const dw_marshaller *m, const dw_buf *stream, size_t chunk, dw_buf *payload,
                      uint8_t *base_out, size_t want_frames)
{
    double best = 0, spent = 0;
    for (int pass = 0; pass < min_passes || spent < min_time; pass++) {
        double t0 = now();
        size_t f =
            m ? unmarshal_pass(m, stream, chunk, payload) : baseline_pass(stream, chunk, base_out);
        double dt = now() - t0;
        if (f != want_frames) {
            fprintf(stderr, "bench_framing: %zu frames read, %zu expected\n", f, want_frames);
            exit(1);
        }
        spent += dt;
        double mbs = (double)stream->len / dt / 1e6;
        if (mbs > best)
            best = mbs;
        if (dt > long_pass) /* one-byte chunks: a long pass averages itself */
            break;
    }
    return best;
}

static void print_header(const char *first)
{
    printf("%-22s %-7s", first, "frame");
    for (size_t c = 0; c < NC; c++)
        printf(" %10zu B", chunk_sizes[c]);
    printf("\n");
}

int main(void)
{
    const char *q = getenv("DW_BENCH_QUICK");
    quick = q && *q && strcmp(q, "0") != 0;
    size_t total = 16 * MIB;
    if (quick) {
        total = 4 * MIB;
        min_time = 0.02;
        min_passes = 2;
        long_pass = 0.05;
    }

    static double mbs[NKINDS + 1][NF][NC]; /* last row: baseline */
    dw_buf stream = DW_BUF_INIT, payload = DW_BUF_INIT;
    uint8_t *base_out = malloc(16 * MIB + 64);
    if (!base_out)
        return 1;
    double t_start = now();

    printf("bench_framing: unmarshal throughput, MB/s (10^6 bytes of stream per CPU second)%s\n",
           quick ? " [quick]" : "");
    printf("columns: chunk size delivered by the in-memory iterator\n\n");
    print_header("framing");
    for (int k = -1; k < NKINDS; k++) {
        int row = k < 0 ? NKINDS : k;
        for (size_t f = 0; f < NF; f++) {
            size_t size = frame_sizes[f];
            /* The baseline runs over the sentinel "\n" stream. */
            int kind = k < 0 ? SENT_LF : k;
            dw_marshaller *m = make(kind, size);
            size_t frames = make_stream(m, kind, size, total, &stream);
            /* Steady state: the payload buffer has its size and its pages. */
            dw_buf_reserve(&payload, size + 64);
            memset(payload.data, 0, payload.cap);
            printf("%-22s %-7s", k < 0 ? "baseline memchr+memcpy" : kind_names[k], frame_names[f]);
            fflush(stdout);
            for (size_t c = 0; c < NC; c++) {
                mbs[row][f][c] =
                    measure(k < 0 ? NULL : m, &stream, chunk_sizes[c], &payload, base_out, frames);
                printf(" %12.0f", mbs[row][f][c]);
                fflush(stdout);
            }
            printf("\n");
            dw_marshaller_free(m);
        }
    }

    printf("\ncost per byte, 16 MiB frames / 1 KiB frames, same chunk size (target <= 2.00)\n");
    print_header("framing");
    int ratio_ok = 1;
    for (int k = 0; k <= NKINDS; k++) {
        /* The baseline's own ratio shows what the memory hierarchy costs: a
         * 16 MiB payload does not stay in cache, a 1 KiB one does. */
        printf("%-22s %-7s", k == NKINDS ? "(baseline)" : kind_names[k], "");
        for (size_t c = 0; c < NC; c++) {
            double r = mbs[k][0][c] / mbs[k][NF - 1][c];
            if (r > 2.0 && k < NKINDS)
                ratio_ok = 0;
            printf(" %12.2f", r);
        }
        printf("\n");
    }

    printf("\ncost per byte relative to the baseline (same frame and chunk size; 1.00 = "
           "baseline)\n");
    print_header("framing");
    for (int k = 0; k < NKINDS; k++) {
        for (size_t f = 0; f < NF; f++) {
            printf("%-22s %-7s", kind_names[k], frame_names[f]);
            for (size_t c = 0; c < NC; c++)
                printf(" %12.2f", mbs[NKINDS][f][c] / mbs[k][f][c]);
            printf("\n");
        }
    }

    /* For scripts/bench.sh: BENCH name value unit baseline ratio, 64 KiB
     * chunks, 1 KiB and 16 MiB frames, next to the baseline. */
    for (int k = 0; k < NKINDS; k++) {
        for (size_t f = 0; f < NF; f += NF - 1) {
            char name[64];
            int len = snprintf(name, sizeof name, "framing_%s_%s", kind_names[k], frame_names[f]);
            for (int i = 0; i < len && i < (int)sizeof name; i++)
                if (!isalnum((unsigned char)name[i]) && name[i] != '-')
                    name[i] = '_';
            double b = mbs[NKINDS][f][NC - 1], v = mbs[k][f][NC - 1];
            printf("BENCH %s %.0f MB/s %.0f %.2f\n", name, v, b, b > 0 ? v / b : 0);
        }
    }

    double big = mbs[SENT_LF][NF - 1][NC - 1];
    printf("\ntarget: sentinel \\n, 16 MiB frames in 64 KiB chunks >= 1000 MB/s: %.0f MB/s %s\n",
           big, big >= 1000 ? "MET" : "MISSED");
    printf("target: cost per byte of 16 MiB frames within 2x of 1 KiB, every framing and chunk "
           "size: %s\n",
           ratio_ok ? "MET" : "MISSED");
    printf("CPU time %.1f s\n", now() - t_start);

    dw_buf_free(&stream);
    dw_buf_free(&payload);
    free(base_out);
    return 0;
}
