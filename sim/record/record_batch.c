/* devwire-sim --record: the answers to a pipelined batch, attributed by
 * arrival order where the number of frames of each answer can be decided
 * (record_int.h).
 *
 * Without a prompt nothing on the wire says where one answer of a batch
 * ends and the next begins. What the recording does say is how many
 * frames a request got when the client sent it alone (a batch of one
 * request whose answer had at least one frame, on any connection, before
 * or after the batch): when every such answer of a request had K frames,
 * its count is K; when they differ, or it was never alone, its count is
 * unknown. A batch of n requests that got m frames is then split, in
 * order, when
 *
 *  - the known counts add up to at most m and at most one request is
 *    unknown: that one gets the rest (a setting pipelined before a query
 *    gets nothing, the query its K frames); with two or more unknown, only
 *    when the known counts are all m, and the unknown get nothing;
 *  - or else m == n and no known count says anything but 1: one frame
 *    each;
 *
 * and otherwise every frame stays with the batch's last request, which
 * the replay check accepts as long as the bytes are the same. Timing is
 * not used: a device's answers to a batch often leave in one write, and
 * one answer may leave in several. */
#include "record/record_int.h"

#include "common/memory.h"

#include <stdlib.h>
#include <string.h>

int dw__rec_batch_add(rec_batches *bs, size_t first, size_t n, const uint64_t *t, size_t m)
{
    rec_batch *grown = dw_sim_grow(bs->b, bs->n, &bs->cap, sizeof *grown, 16);
    if (!grown)
        return DW_ENOMEM;
    bs->b = grown;
    rec_batch *b = &bs->b[bs->n];
    *b = (rec_batch){first, n, m, NULL};
    if (n >= 2) {
        b->t_us = malloc(m * sizeof *b->t_us);
        if (!b->t_us)
            return DW_ENOMEM;
        memcpy(b->t_us, t, m * sizeof *t);
    }
    bs->n++;
    return DW_OK;
}

void dw__rec_batches_free(rec_batches *bs)
{
    for (size_t i = 0; i < bs->n; i++)
        free(bs->b[i].t_us);
    free(bs->b);
    memset(bs, 0, sizeof *bs);
}

/* ---- what a request got when alone -------------------------------------------- */

#define UNKNOWN SIZE_MAX

typedef struct learned {
    const dw_sim_bytes *req;
    size_t frames; /* UNKNOWN: not always the same */
} learned;

static int cmp_learned(const void *a, const void *b)
{
    return dw__rec_cmp_bytes(((const learned *)a)->req, ((const learned *)b)->req);
}

/* The requests answered alone, sorted, one entry each: *nl gets their
 * number. NULL when out of memory. */
static learned *learn(const rec_batches *bs, const dw_sim_conversation *cv, size_t *nl)
{
    learned *l = malloc((bs->n ? bs->n : 1) * sizeof *l);
    size_t n = 0, out = 0;
    for (size_t i = 0; l && i < bs->n; i++)
        if (bs->b[i].n == 1)
            l[n++] = (learned){&cv->ex[bs->b[i].first].request, bs->b[i].m};
    if (l && n)
        qsort(l, n, sizeof *l, cmp_learned);
    for (size_t i = 0; l && i < n; i++) {
        if (out && dw__rec_cmp_bytes(l[out - 1].req, l[i].req) == 0) {
            if (l[out - 1].frames != l[i].frames)
                l[out - 1].frames = UNKNOWN;
            continue;
        }
        l[out++] = l[i];
    }
    *nl = out;
    return l;
}

static size_t count_of(const learned *l, size_t nl, const dw_sim_bytes *req)
{
    learned key = {req, 0};
    const learned *hit = nl ? bsearch(&key, l, nl, sizeof *l, cmp_learned) : NULL;
    return hit ? hit->frames : UNKNOWN;
}

/* ---- splitting a batch -------------------------------------------------------- */

/* The frames of each request of batch b into c[0..b->n): 1 when the batch
 * is split, 0 when it stays with its last request. */
static int decide(const rec_batch *b, const dw_sim_conversation *cv, const learned *l, size_t nl,
                  size_t *c)
{
    size_t known = 0, unknown = 0, last_unknown = 0, not_one = 0;
    for (size_t j = 0; j < b->n; j++) {
        c[j] = count_of(l, nl, &cv->ex[b->first + j].request);
        if (c[j] == UNKNOWN) {
            unknown++;
            last_unknown = j;
            c[j] = 0;
        } else {
            known += c[j];
            not_one += c[j] != 1;
        }
    }
    if (known <= b->m && (unknown == 1 || known == b->m)) {
        if (unknown == 1)
            c[last_unknown] = b->m - known;
        return 1;
    }
    if (b->m != b->n || not_one)
        return 0;
    for (size_t j = 0; j < b->n; j++)
        c[j] = 1;
    return 1;
}

/* Move the batch's frames from its last exchange to its requests, c[j]
 * each, in order. */
static int split(const rec_batch *b, dw_sim_conversation *cv, const size_t *c)
{
    dw_sim_exchange *last = &cv->ex[b->first + b->n - 1];
    dw_sim_bytes **parts = calloc(b->n, sizeof *parts);
    int rc = parts ? DW_OK : DW_ENOMEM;
    for (size_t j = 0; j + 1 < b->n && rc == DW_OK; j++)
        if (c[j] && !(parts[j] = malloc(c[j] * sizeof **parts)))
            rc = DW_ENOMEM;
    size_t at = 0;
    for (size_t j = 0; j < b->n && rc == DW_OK; j++) {
        dw_sim_exchange *x = &cv->ex[b->first + j];
        x->delay_us = c[j] ? (int64_t)(b->t_us[at] - x->t_us) : -1;
        if (x != last && c[j]) {
            memcpy(parts[j], last->replies + at, c[j] * sizeof **parts);
            x->replies = parts[j];
            x->nreplies = c[j];
            parts[j] = NULL;
        } else if (x == last) {
            if (c[j] && at)
                memmove(last->replies, last->replies + at, c[j] * sizeof *last->replies);
            last->nreplies = c[j];
        }
        at += c[j];
    }
    for (size_t j = 0; parts && j < b->n; j++)
        free(parts[j]);
    free(parts);
    return rc;
}

/* Batch b as pairing left it: all its frames with its last request. */
static int as_paired(const rec_batch *b, const dw_sim_conversation *cv)
{
    for (size_t j = 0; j + 1 < b->n; j++)
        if (cv->ex[b->first + j].nreplies)
            return 0;
    return b->n >= 2 && b->m && cv->ex[b->first + b->n - 1].nreplies == b->m;
}

int dw__rec_batches_settle(const rec_batches *bs, dw_sim_conversation *cv)
{
    size_t nl = 0, most = 1;
    learned *l = learn(bs, cv, &nl);
    for (size_t i = 0; i < bs->n; i++)
        most = bs->b[i].n > most ? bs->b[i].n : most;
    size_t *c = malloc(most * sizeof *c);
    int rc = l && c ? DW_OK : DW_ENOMEM;
    for (size_t i = 0; i < bs->n && rc == DW_OK; i++) {
        const rec_batch *b = &bs->b[i];
        if (as_paired(b, cv) && decide(b, cv, l, nl, c))
            rc = split(b, cv, c);
    }
    free(c);
    free(l);
    return rc;
}
