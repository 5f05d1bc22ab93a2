/* SCPI / IEEE 488.2 framing under arbitrary cuts.
 * Input: [sentinel choice: low 2 bits 0 "\n", 1 "\r\n", 2-3 custom of
 * (bits 2-3) + 1 bytes that follow] then the common layout of
 * fuzz_framing.h (max frame, split, stream).
 * The round trip builds responses from the stream's bytes as a little
 * program of tokens (text, quoted strings, definite blocks holding any bytes,
 * "#H" numbers, a final indefinite block) so that they are valid responses,
 * and also checks dw_scpi_block_parse on them. */
#include "fuzz_framing.h"

static uint8_t sentinel[4];
static size_t sentinel_len;

static int in_sentinel(uint8_t c)
{
    return memchr(sentinel, c, sentinel_len) != NULL;
}

/* A byte for text: `c` if it is allowed, else the first allowed letter. */
static uint8_t text_char(uint8_t c, const char *also_forbidden)
{
    if (!in_sentinel(c) && !strchr(also_forbidden, c) && c != 0)
        return c;
    for (uint8_t a = 'a'; a <= 'z'; a++)
        if (!in_sentinel(a))
            return a;
    return 0;
}

/* The reference reading of one response, byte by byte and with no limit:
 * rc DW_OK when a terminator in text ends it (need: the frame's bytes),
 * DW_EPROTO at a bad block length digit (need: bytes up to and including
 * it), DW_ETRUNCATED when the stream ends first (need: the fewest bytes the
 * frame can still have: one more byte, and a block's announced body and a
 * terminator after it). */
typedef struct ref_frame {
    int rc;
    size_t need;
} ref_frame;

static ref_frame reference(const uint8_t *d, size_t n)
{
    enum { TEXT, QUOTE, HASH, DIGITS, BODY, INDEF } st = TEXT;
    size_t text_start = 0, count = 0, value = 0, least = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = d[i];
        if (st == HASH) {
            if (c >= '0' && c <= '9') {
                st = c == '0' ? INDEF : DIGITS;
                count = (size_t)(c - '0');
                value = 0;
                continue;
            }
            st = TEXT; /* "#H1F": c is text */
        }
        if (st == DIGITS) {
            if (c < '0' || c > '9')
                return (ref_frame){DW_EPROTO, i + 1};
            value = value * 10 + (size_t)(c - '0');
            if (--count == 0) {
                text_start = i + 1;
                least = i + 1 + value + sentinel_len;
                count = value;
                st = value ? BODY : TEXT;
            }
            continue;
        }
        if (st == BODY) {
            if (--count == 0) {
                text_start = i + 1;
                st = TEXT;
            }
            continue;
        }
        size_t end = i + 1; /* a terminator in text (not in a block) */
        if (end >= sentinel_len && end - sentinel_len >= text_start &&
            memcmp(d + end - sentinel_len, sentinel, sentinel_len) == 0)
            return (ref_frame){DW_OK, end};
        if (st == TEXT && c == '#')
            st = HASH;
        else if (st == TEXT && c == '"')
            st = QUOTE;
        else if (st == QUOTE && c == '"')
            st = TEXT;
    }
    return (ref_frame){DW_ETRUNCATED, n + 1 > least ? n + 1 : least};
}

/* Each result is the reference's, but DW_ETOOBIG for a frame that cannot fit
 * the maximum (a frame of exactly the maximum fits). */
static const char *check(const dw_marshaller *m, const uint8_t *stream, size_t len, const fz_rec *r)
{
    static char why[128];
    ref_frame ref = reference(stream + r->start, len - r->start);
    int want = ref.need > dw_marshaller_max_frame(m) ? DW_ETOOBIG : ref.rc;
    if (r->rc != want) {
        snprintf(why, sizeof why, "%s where the bytes call for %s (a frame of %s%zu bytes)",
                 dw_err_name(r->rc), dw_err_name(want), ref.rc == DW_ETRUNCATED ? "at least " : "",
                 ref.need);
        return why;
    }
    if ((r->rc == DW_OK || r->rc == DW_EPROTO) && r->consumed - r->start != ref.need)
        return "frame does not end where the reference reading ends it";
    size_t n = r->payload.len;
    if (r->rc == DW_OK &&
        (n + sentinel_len != ref.need || (n && memcmp(stream + r->start, r->payload.data, n) != 0)))
        return "payload is not the frame's bytes before the terminator";
    return NULL;
}

/* Build responses from the program in p[0..n). Each response is added to
 * `cand`; `block_of[i]` (if >= 0) is the offset and length of the first
 * definite block of response i when no '#' comes before it. */
typedef struct block_ref {
    size_t off, len;
    int valid;
} block_ref;

static void build(fz_reader *prog, fz_payloads *cand, block_ref *blocks, size_t max_resp)
{
    int blocks_ok = !in_sentinel('#');
    for (uint8_t c = '0'; c <= '9'; c++)
        if (in_sentinel(c))
            blocks_ok = 0;
    int quotes_ok = !in_sentinel('"');
    dw_buf resp = DW_BUF_INIT;
    block_ref first = {0, 0, 0};
    int hash_seen = 0;
    while (prog->n && cand->n < max_resp) {
        uint8_t op = fz_byte(prog);
        size_t k = (size_t)(op >> 3);
        switch (op & 7u) {
        case 0: /* plain text */
        case 1:
            for (size_t i = 0; i < k + 1 && prog->n; i++) {
                uint8_t c = text_char(fz_byte(prog), "#\"");
                if (c)
                    dw_buf_append_byte(&resp, c);
            }
            break;
        case 2: /* quoted string, may hold '#' */
            if (!quotes_ok)
                break;
            dw_buf_append_byte(&resp, '"');
            for (size_t i = 0; i < k && prog->n; i++) {
                uint8_t c = text_char(fz_byte(prog), "\"");
                if (c == '#')
                    hash_seen = 1;
                if (c)
                    dw_buf_append_byte(&resp, c);
            }
            dw_buf_append_byte(&resp, '"');
            break;
        case 3: /* definite block of any bytes */
        case 4: {
            if (!blocks_ok)
                break;
            size_t blen = k * 4 + (op & 1u);
            if (blen > prog->n)
                blen = prog->n;
            dw_scpi_block_append(&resp, prog->p, blen);
            if (!hash_seen && !first.valid) {
                first.off = resp.len - blen;
                first.len = blen;
                first.valid = 1;
            }
            hash_seen = 1;
            prog->p += blen;
            prog->n -= blen;
            break;
        }
        case 5: /* non-decimal number "#H1F" */
            if (!blocks_ok || in_sentinel('H'))
                break;
            dw_buf_append_str(&resp, "#H");
            for (size_t j = 0; j < 16; j++) {
                uint8_t hex = (uint8_t) "0123456789ABCDEF"[(k + j) & 15u];
                if (!in_sentinel(hex)) {
                    dw_buf_append_byte(&resp, hex);
                    break;
                }
            }
            hash_seen = 1;
            break;
        case 6: /* an indefinite block ends the response */
            if (blocks_ok) {
                dw_buf_append_str(&resp, "#0");
                hash_seen = 1;
                for (size_t i = 0; i < k && prog->n; i++) {
                    uint8_t c = text_char(fz_byte(prog), "");
                    if (c)
                        dw_buf_append_byte(&resp, c);
                }
            }
            /* fall through */
        default: /* end of the response */
            blocks[cand->n] = first;
            fz_payloads_add(cand, resp.data, resp.len);
            dw_buf_clear(&resp);
            memset(&first, 0, sizeof first);
            hash_seen = 0;
            break;
        }
    }
    if (resp.len && cand->n < max_resp) {
        blocks[cand->n] = first;
        fz_payloads_add(cand, resp.data, resp.len);
    }
    dw_buf_free(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    uint8_t opt = fz_byte(&r);
    if ((opt & 3u) == 0) {
        sentinel[0] = '\n';
        sentinel_len = 1;
    } else if ((opt & 3u) == 1) {
        memcpy(sentinel, "\r\n", 2);
        sentinel_len = 2;
    } else {
        sentinel_len = (size_t)((opt >> 2) & 3u) + 1;
        for (size_t i = 0; i < sentinel_len; i++)
            sentinel[i] = fz_byte(&r);
    }
    size_t max = fz_max_frame(fz_byte(&r));
    fz_split s;
    fz_read_split(&r, &s);

    dw_marshaller *m = dw_scpi_marshaller_new(sentinel, sentinel_len);
    if (!m)
        abort();
    dw_marshaller_set_max_frame(m, max);
    fz_recs whole;
    fz_differential(m, r.p, r.n, &s, check, 0, &whole);

    /* Every accepted payload must carry its blocks whole: block_parse on it
     * never reads past it. */
    for (size_t i = 0; i < whole.n; i++) {
        if (whole.v[i].rc != DW_OK)
            continue;
        const uint8_t *bd = NULL;
        size_t bl = 0;
        const dw_buf *p = &whole.v[i].payload;
        if (dw_scpi_block_parse(p->data ? p->data : (const uint8_t *)"", p->len, &bd, &bl) ==
                DW_OK &&
            (bd < p->data || bd + bl > p->data + p->len))
            abort();
    }

    /* Round trip of well-formed responses built from the stream. */
    enum { MAXR = 64 };
    block_ref blocks[MAXR];
    fz_payloads cand = {0};
    fz_reader prog = r;
    build(&prog, &cand, blocks, MAXR);
    dw_marshaller_set_max_frame(m, DW_DEFAULT_MAX_FRAME);
    fz_round_trip(m, &cand, &s);
    /* The stream's own pieces: refused or not, a refusal leaves no bytes,
     * and block_parse stays inside them. */
    fz_payloads raw = {0};
    fz_candidates(&raw, r.p, r.n, &s, &whole);
    fz_round_trip(m, &raw, &s);
    for (size_t i = 0; i < raw.n; i++) {
        const uint8_t *bd = NULL;
        size_t bl = 0;
        const dw_buf *p = &raw.v[i];
        if (dw_scpi_block_parse(p->data ? p->data : (const uint8_t *)"", p->len, &bd, &bl) ==
                DW_OK &&
            (bd < p->data || bd + bl > p->data + p->len))
            abort();
    }
    fz_payloads_free(&raw);
    /* Well-formed responses are all accepted, unless the sentinel holds
     * bytes that change the scan state ("#3" would start a block header). */
    int plain_sentinel = !in_sentinel('#') && !in_sentinel('"');
    for (size_t i = 0; plain_sentinel && i < cand.n; i++) {
        dw_buf out = DW_BUF_INIT;
        dw_error err;
        dw_error_clear(&err);
        if (dw_marshall(m, cand.v[i].data, cand.v[i].len, &out, &err) != DW_OK) {
            fprintf(stderr, "fuzz oracle: scpi: well-formed response %zu refused: %s\n", i,
                    dw_error_message(&err));
            for (size_t j = 0; j < cand.v[i].len && j < 64; j++)
                fprintf(stderr, " %02x", cand.v[i].data[j]);
            fprintf(stderr, "\n");
            abort();
        }
        dw_buf_free(&out);
    }
    for (size_t i = 0; i < cand.n; i++) {
        const uint8_t *bd = NULL;
        size_t bl = 0;
        const dw_buf *p = &cand.v[i];
        int rc = dw_scpi_block_parse(p->data ? p->data : (const uint8_t *)"", p->len, &bd, &bl);
        if (blocks[i].valid &&
            (rc != DW_OK || (size_t)(bd - p->data) != blocks[i].off || bl != blocks[i].len)) {
            fprintf(stderr, "fuzz oracle: scpi: dw_scpi_block_parse of response %zu: %s\n", i,
                    dw_err_name(rc));
            abort();
        }
    }

    fz_payloads_free(&cand);
    fz_recs_free(&whole);
    dw_marshaller_free(m);
    return 0;
}
