/* devwire-sim's frame fuzzer: see fuzz.h. */
#include "model/fuzz.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[DW_SIM_MUT_NKINDS] = {
    "truncate", "flip", "number", "split", "duplicate", "swap", "block_length"};

/* What a number becomes: the edges a parser trips on. LONG_DIGITS stands
 * for a string of 400 nines. */
#define LONG_DIGITS 400
static const char *const boundary[] = {
    "0",   "-0",   "1e308",      "-1e308",      "NaN",
    "INF", "-INF", "2147483648", "-2147483649", "9223372036854775808",
    "",    NULL /* LONG_DIGITS nines */};
#define NBOUNDARY (sizeof boundary / sizeof boundary[0])

const char *dw_sim_mutation_name(dw_sim_mutation_kind k)
{
    return (unsigned)k < DW_SIM_MUT_NKINDS ? kind_names[k] : NULL;
}

int dw_sim_mutation_kind_of(const char *name, size_t n)
{
    for (int k = 0; k < DW_SIM_MUT_NKINDS; k++)
        if (strlen(kind_names[k]) == n && memcmp(kind_names[k], name, n) == 0)
            return k;
    return -1;
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int is_word(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.';
}

/* The length of the number at p[i..n) (0: none there). */
static size_t number_at(const uint8_t *p, size_t n, size_t i)
{
    size_t j = i, digits = 0;
    if (j < n && (p[j] == '+' || p[j] == '-'))
        j++;
    for (; j < n && is_digit(p[j]); j++)
        digits++;
    if (j < n && p[j] == '.') {
        size_t k = j + 1, frac = 0;
        for (; k < n && is_digit(p[k]); k++)
            frac++;
        if (digits || frac) {
            digits += frac;
            j = k;
        }
    }
    if (!digits)
        return 0;
    if (j < n && (p[j] == 'e' || p[j] == 'E')) {
        size_t k = j + 1, exp = 0;
        if (k < n && (p[k] == '+' || p[k] == '-'))
            k++;
        for (; k < n && is_digit(p[k]); k++)
            exp++;
        if (exp)
            j = k;
    }
    return j - i;
}

size_t dw_sim_fuzz_numbers(const uint8_t *p, size_t n, size_t *starts, size_t *lens, size_t max)
{
    size_t found = 0;
    for (size_t i = 0; i < n && found < max;) {
        size_t len = (i == 0 || !is_word(p[i - 1])) ? number_at(p, n, i) : 0;
        if (!len) {
            i++;
            continue;
        }
        starts[found] = i;
        lens[found++] = len;
        i += len;
    }
    return found;
}

int dw_sim_fuzz_block(const uint8_t *p, size_t n, size_t *at, size_t *len)
{
    int quoted = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '"')
            quoted = !quoted;
        if (quoted || p[i] != '#' || p[i + 1] < '1' || p[i + 1] > '9')
            continue;
        size_t d = (size_t)(p[i + 1] - '0');
        if (n - (i + 2) < d)
            return 0;
        size_t k = 0;
        while (k < d && is_digit(p[i + 2 + k]))
            k++;
        if (k < d)
            continue;
        *at = i + 2;
        *len = d;
        return 1;
    }
    return 0;
}

/* Up to 24 bytes of p as printable text for a description. */
static void excerpt(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap && i < 24; i++)
        o += (size_t)snprintf(out + o, cap - o,
                              p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? "%c" : "\\x%02x", p[i]);
    if (n > 24 && o + 4 < cap)
        o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = 0;
}

/* The wrong length of a block whose length digits are p[at, at + d). */
static void block_value(dw_sim_mutation *m, const uint8_t *p, dw_sim_rng *r)
{
    unsigned long long len = 0, nines = 0;
    for (size_t i = 0; i < m->len; i++) {
        len = len * 10 + (unsigned long long)(p[m->at + i] - '0');
        nines = nines * 10 + 9;
    }
    unsigned long long choices[4] = {len + 1, len ? len - 1 : len + 2, len ? 0 : len + 3,
                                     nines == len ? len + 10 : nines};
    unsigned long long v = choices[dw_sim_rng_next(r) % 4];
    snprintf(m->value, sizeof m->value, "%0*llu", (int)m->len, v);
    snprintf(m->what, sizeof m->what, "frame %llu: block_length %llu -> %s at %zu",
             (unsigned long long)m->frame, len, m->value, m->at);
}

static void number_value(dw_sim_mutation *m, const uint8_t *p, size_t n, dw_sim_rng *r)
{
    size_t starts[64], lens[64];
    size_t count = dw_sim_fuzz_numbers(p, n, starts, lens, 64);
    size_t which = (size_t)(dw_sim_rng_next(r) % count);
    size_t choice = (size_t)(dw_sim_rng_next(r) % NBOUNDARY);
    m->at = starts[which];
    m->len = lens[which];
    char was[128];
    excerpt(p + m->at, m->len, was, sizeof was);
    if (boundary[choice])
        snprintf(m->value, sizeof m->value, "%s", boundary[choice]);
    else
        snprintf(m->value, sizeof m->value, "9x%d", LONG_DIGITS);
    snprintf(m->what, sizeof m->what, "frame %llu: number \"%s\" at %zu -> \"%s\"",
             (unsigned long long)m->frame, was, m->at,
             boundary[choice] ? m->value : "999...9 (400 digits)");
}

static void flip_value(dw_sim_mutation *m, size_t n, dw_sim_rng *r)
{
    size_t max = n < DW_SIM_FUZZ_MAX_FLIPS ? n : DW_SIM_FUZZ_MAX_FLIPS;
    m->nflip = 1 + (size_t)(dw_sim_rng_next(r) % max);
    size_t o =
        (size_t)snprintf(m->what, sizeof m->what, "frame %llu: flip", (unsigned long long)m->frame);
    for (size_t i = 0; i < m->nflip; i++) {
        m->flip_at[i] = (size_t)(dw_sim_rng_next(r) % n);
        m->flip_xor[i] = (uint8_t)(1 + dw_sim_rng_next(r) % 255);
        if (o < sizeof m->what)
            o += (size_t)snprintf(m->what + o, sizeof m->what - o, " byte %zu ^0x%02x",
                                  m->flip_at[i], m->flip_xor[i]);
    }
}

/* Whether kind k can change this frame. */
static int applicable(int k, const uint8_t *p, size_t n, size_t raw_len)
{
    size_t s, l;
    switch (k) {
    case DW_SIM_MUT_TRUNCATE:
        return raw_len >= 1;
    case DW_SIM_MUT_FLIP:
        return n >= 1;
    case DW_SIM_MUT_NUMBER:
        return dw_sim_fuzz_numbers(p, n, &s, &l, 1) == 1;
    case DW_SIM_MUT_SPLIT:
        return raw_len >= 2;
    case DW_SIM_MUT_BLOCK_LENGTH:
        return dw_sim_fuzz_block(p, n, &s, &l);
    default:
        return 1;
    }
}

/* Whether frame `frame` is one to mutate; u is its draw in [0, 1). */
static int chosen(const dw_sim_fuzz *f, uint64_t conn, uint64_t frame, double u)
{
    if (f->connection && conn != f->connection)
        return 0;
    if (f->nframes) {
        for (size_t i = 0; i < f->nframes; i++)
            if (f->frames[i] == frame)
                return 1;
        return 0;
    }
    if (frame <= f->after_frames)
        return 0;
    if (f->every)
        return (frame - f->after_frames) % f->every == 0;
    return u < f->frame_probability;
}

int dw_sim_fuzz_decide(const dw_sim_fuzz *f, uint64_t seed, int dir, uint64_t conn, uint64_t frame,
                       const uint8_t *p, size_t n, size_t raw_len, dw_sim_mutation *m)
{
    dw_sim_rng r;
    /* One generator per frame: its fate depends on no other frame. */
    dw_sim_rng_seed(
        &r, seed ^ (0x66757a7aULL << 32) ^ ((uint64_t)dir << 31) ^ (conn * 0x9e3779b97f4a7c15ULL),
        frame);
    if (!chosen(f, conn, frame, dw_sim_rng_unit(&r)))
        return 0;
    int kinds[DW_SIM_MUT_NKINDS], nk = 0;
    for (int k = 0; k < DW_SIM_MUT_NKINDS; k++)
        if ((!f->mutations || (f->mutations & (1u << k))) && applicable(k, p, n, raw_len))
            kinds[nk++] = k;
    if (!nk)
        return 0;
    memset(m, 0, sizeof *m);
    m->frame = frame;
    m->kind = (dw_sim_mutation_kind)kinds[dw_sim_rng_next(&r) % (uint64_t)nk];
    unsigned long long fr = (unsigned long long)frame;
    switch (m->kind) {
    case DW_SIM_MUT_TRUNCATE:
        m->at = (size_t)(dw_sim_rng_next(&r) % raw_len);
        snprintf(m->what, sizeof m->what, "frame %llu: truncate to %zu of %zu bytes", fr, m->at,
                 raw_len);
        break;
    case DW_SIM_MUT_FLIP:
        flip_value(m, n, &r);
        break;
    case DW_SIM_MUT_NUMBER:
        number_value(m, p, n, &r);
        break;
    case DW_SIM_MUT_SPLIT:
        m->at = 1 + (size_t)(dw_sim_rng_next(&r) % (raw_len - 1));
        snprintf(m->what, sizeof m->what, "frame %llu: split at byte %zu of %zu, %u ms", fr, m->at,
                 raw_len, f->split_delay_ms);
        break;
    case DW_SIM_MUT_DUPLICATE:
        snprintf(m->what, sizeof m->what, "frame %llu: duplicate", fr);
        break;
    case DW_SIM_MUT_SWAP:
        snprintf(m->what, sizeof m->what, "frame %llu: swap with the next frame", fr);
        break;
    case DW_SIM_MUT_BLOCK_LENGTH:
        dw_sim_fuzz_block(p, n, &m->at, &m->len);
        block_value(m, p, &r);
        break;
    default:
        return 0;
    }
    return 1;
}

int dw_sim_fuzz_apply(const dw_sim_mutation *m, const uint8_t *p, size_t n, dw_buf *out)
{
    dw_buf_clear(out);
    if (m->kind == DW_SIM_MUT_NUMBER || m->kind == DW_SIM_MUT_BLOCK_LENGTH) {
        int rc = dw_buf_append(out, p, m->at);
        if (rc == DW_OK && m->kind == DW_SIM_MUT_NUMBER && strcmp(m->value, "9x400") == 0) {
            for (int i = 0; i < LONG_DIGITS && rc == DW_OK; i++)
                rc = dw_buf_append(out, (const uint8_t *)"9", 1);
        } else if (rc == DW_OK) {
            rc = dw_buf_append(out, (const uint8_t *)m->value, strlen(m->value));
        }
        if (rc == DW_OK)
            rc = dw_buf_append(out, p + m->at + m->len, n - m->at - m->len);
        return rc;
    }
    int rc = dw_buf_append(out, p, n);
    if (rc == DW_OK && m->kind == DW_SIM_MUT_FLIP)
        for (size_t i = 0; i < m->nflip; i++)
            if (m->flip_at[i] < out->len)
                out->data[m->flip_at[i]] ^= m->flip_xor[i];
    return rc;
}
