/* devwire-sim --record: periodic frames, also when they come while an
 * answer is open (record_int.h).
 *
 * A device that sends a heartbeat every P ms and also answers requests
 * sends some beats while an answer is open, and the pairing takes them for
 * part of that answer (a beat that comes before a slow answer even opens
 * it, and the answer that comes more than the reply gap later is then
 * taken for unsolicited). After a first pairing, the unsolicited frames of
 * the same bytes on a connection make a series when
 *
 *  - there are two or more, and every interval between them is a whole
 *    number of periods within the tolerance (tolerance());
 *  - one of them came while the client was quiet: more than a period (and
 *    the tolerance) after its last request. Answers to a request polled at
 *    a steady rate never do (the request that asked is never a period
 *    before its answer), nor do the frames of an answer that the reply gap
 *    cut from the rest of it;
 *
 * and the frames of those bytes inside answers that came on the series'
 * schedule (a whole number of periods from the nearest unsolicited one,
 * within the tolerance, and not in a slot another one took) are beats
 * too. When the series with those beats put back is regular as the
 * script writer wants a periodic message (dw__rec_regular: every interval
 * within a quarter of the median, or 20 ms), all its frames are periodic
 * and the final pairing leaves them out of the answers; otherwise nothing
 * changes. */
#include "record/record_int.h"

#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t slack_of(uint64_t period)
{
    uint64_t min = DW__REC_REGULAR_MIN_MS * 1000;
    return period / 4 > min ? period / 4 : min;
}

int dw__rec_regular(uint64_t *iv, size_t n, uint64_t *period)
{
    *period = 0;
    if (!n)
        return 0;
    qsort(iv, n, sizeof *iv, cmp_u64);
    uint64_t med = n % 2 ? iv[n / 2] : (iv[n / 2 - 1] + iv[n / 2]) / 2, slack = slack_of(med);
    *period = med;
    for (size_t i = 0; i < n; i++)
        if (iv[i] + slack < med || iv[i] > med + slack)
            return 0;
    return med >= 1000;
}

/* How far from its slot a beat may come: a quarter of the period or
 * 20 ms, whichever is more, but at most a third of the period (so that
 * two slots never overlap). */
static uint64_t tolerance(uint64_t period)
{
    uint64_t t = slack_of(period);
    return t < period / 3 ? t : period / 3;
}

/* |d - k * period| for the whole k >= 1 nearest d / period; *k gets k. */
static uint64_t off_slot(uint64_t d, uint64_t period, uint64_t *k)
{
    *k = (d + period / 2) / period;
    if (*k == 0)
        *k = 1;
    uint64_t at = *k * period;
    return d > at ? d - at : at - d;
}

/* The period of a series from the intervals iv[0..n) between its
 * unsolicited frames (sorted here): taken shortest first, each a whole
 * number of the period so far within the tolerance, the period refined
 * with each. 0 when they are not. */
static uint64_t period_of(uint64_t *iv, size_t n)
{
    if (!n)
        return 0;
    qsort(iv, n, sizeof *iv, cmp_u64);
    uint64_t period = iv[0], sum = 0, periods = 0, k;
    if (period < 1000)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (off_slot(iv[i], period, &k) > tolerance(period))
            return 0;
        sum += iv[i];
        periods += k;
        period = sum / periods;
    }
    return period;
}

/* One series being looked for: the frames g[0..ng) of connection c (in
 * time order), all with the same bytes. */
typedef struct series {
    const rec_conn *c;
    const rframes *rq;
    const rframes *rp;
    unsigned char *kind;
    const size_t *g;
    size_t ng;
    uint64_t *u;   /* the unsolicited frames' times (room for rp->n) */
    uint64_t *iv;  /* intervals (room for rp->n) */
    size_t *taken; /* the answer frames taken (room for rp->n) */
    size_t nu, ntaken;
} series;

static uint64_t time_of(const series *s, size_t i)
{
    return s->c->ev[s->rp->f[i].ev].t_us;
}

/* Answer frame i on the schedule of period p: a whole number of periods
 * from the nearest unsolicited frame, in a slot nobody took. */
static int on_schedule(const series *s, size_t i, uint64_t p)
{
    uint64_t t = time_of(s, i), nearest = UINT64_MAX, k;
    size_t lo = 0, hi = s->nu; /* u is in time order: the first after t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->u[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->nu)
        nearest = s->u[lo] - t;
    if (lo > 0 && t - s->u[lo - 1] < nearest)
        nearest = t - s->u[lo - 1];
    if (nearest < p / 2 || off_slot(nearest, p, &k) > tolerance(p))
        return 0;
    return s->ntaken == 0 || t - time_of(s, s->taken[s->ntaken - 1]) > tolerance(p);
}

/* One of the series' unsolicited frames came while the client was quiet:
 * more than a period (and the tolerance) after its last request. */
static int proven(const series *s, uint64_t p)
{
    size_t k = 0;
    for (size_t j = 0; j < s->ng; j++) {
        size_t i = s->g[j];
        if (s->kind[i] != DW__REC_UNSOLICITED)
            continue;
        while (k < s->rq->n && s->rq->f[k].ev < s->rp->f[i].ev)
            k++;
        if (k == 0 || time_of(s, i) - s->c->ev[s->rq->f[k - 1].ev].t_us > p + tolerance(p))
            return 1;
    }
    return 0;
}

/* The series' intervals with the taken frames put back: regular? */
static int still_regular(series *s)
{
    size_t n = 0, t = 0;
    uint64_t last = 0, period;
    int any = 0;
    for (size_t j = 0; j < s->ng; j++) {
        size_t i = s->g[j];
        int member = s->kind[i] == DW__REC_UNSOLICITED;
        if (t < s->ntaken && s->taken[t] == i)
            member = 1, t++;
        if (!member)
            continue;
        if (any)
            s->iv[n++] = time_of(s, i) - last;
        last = time_of(s, i);
        any = 1;
    }
    return dw__rec_regular(s->iv, n, &period);
}

/* The series of the frames g[0..ng): all periodic, or nothing changed. */
static void look_for(series *s)
{
    s->nu = s->ntaken = 0;
    for (size_t j = 0; j < s->ng; j++)
        if (s->kind[s->g[j]] == DW__REC_UNSOLICITED)
            s->u[s->nu++] = time_of(s, s->g[j]);
    if (s->nu < 2)
        return;
    for (size_t j = 1; j < s->nu; j++)
        s->iv[j - 1] = s->u[j] - s->u[j - 1];
    uint64_t p = period_of(s->iv, s->nu - 1);
    if (!p || !proven(s, p))
        return;
    for (size_t j = 0; j < s->ng; j++)
        if (s->kind[s->g[j]] == DW__REC_ANSWER && on_schedule(s, s->g[j], p))
            s->taken[s->ntaken++] = s->g[j];
    if (!still_regular(s))
        return;
    for (size_t j = 0; j < s->ng; j++)
        if (s->kind[s->g[j]] == DW__REC_UNSOLICITED)
            s->kind[s->g[j]] = DW__REC_PERIODIC;
    for (size_t j = 0; j < s->ntaken; j++)
        s->kind[s->taken[j]] = DW__REC_PERIODIC;
}

/* A frame's bytes and place, to sort the frames into groups of the same
 * bytes, each in time order. */
typedef struct keyed {
    const dw_sim_bytes *b;
    size_t i;
} keyed;

int dw__rec_cmp_bytes(const dw_sim_bytes *a, const dw_sim_bytes *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->data, b->data, n) : 0;
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int by_bytes(const void *pa, const void *pb)
{
    const keyed *a = pa, *b = pb;
    int c = dw__rec_cmp_bytes(a->b, b->b);
    return c ? c : (a->i > b->i) - (a->i < b->i);
}

int dw__rec_periodic_in_answers(const rec_conn *c, const rframes *rq, const rframes *rp,
                                unsigned char *kind)
{
    size_t room = rp->n ? rp->n : 1, n = 0;
    keyed *k = malloc(room * sizeof *k);
    size_t *g = malloc(room * sizeof *g);
    series s = {c,
                rq,
                rp,
                kind,
                g,
                0,
                malloc(room * sizeof *s.u),
                malloc(room * sizeof *s.iv),
                malloc(room * sizeof *s.taken),
                0,
                0};
    int rc = k && g && s.u && s.iv && s.taken ? DW_OK : DW_ENOMEM;
    for (size_t i = 0; i < rp->n && rc == DW_OK; i++)
        if (!rp->f[i].is_prompt)
            k[n++] = (keyed){&rp->f[i].payload, i};
    if (rc == DW_OK && n)
        qsort(k, n, sizeof *k, by_bytes);
    for (size_t a = 0, b; rc == DW_OK && a < n; a = b) {
        s.ng = 0;
        for (b = a; b < n && dw__rec_cmp_bytes(k[a].b, k[b].b) == 0; b++)
            g[s.ng++] = k[b].i;
        look_for(&s);
    }
    free(k);
    free(g);
    free(s.u);
    free(s.iv);
    free(s.taken);
    return rc;
}
