/* devwire-sim --record: the recorded streams and what they say. See
 * record.h; the script writer is record_write.c. */
#include "record/record_int.h"

#include "common/memory.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dw_sim_recorder {
    const dw_sim_script *base;
    rec_conn **conns;
    size_t n, cap;
    int oom;
    dw_buf tmp;
};

static int drop_output(void *user, const uint8_t *p, size_t n)
{
    (void)user, (void)p, (void)n; /* the proxy passes the peers' own answers */
    return DW_OK;
}

dw_sim_recorder *dw_sim_recorder_new(const dw_sim_script *base)
{
    dw_sim_recorder *r = calloc(1, sizeof *r);
    if (r)
        r->base = base;
    return r;
}

static void conn_free(rec_conn *c)
{
    for (int d = 0; d < 2; d++) {
        dw_telnet_free(c->tn[d]);
        dw_buf_free(&c->stream[d]);
    }
    free(c->ev);
    free(c);
}

void dw_sim_recorder_free(dw_sim_recorder *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        conn_free(r->conns[i]);
    free(r->conns);
    dw_buf_free(&r->tmp);
    free(r);
}

static rec_conn *find(dw_sim_recorder *r, uint64_t id)
{
    for (size_t i = r->n; i-- > 0;)
        if (r->conns[i]->id == id)
            return r->conns[i];
    return NULL;
}

void dw_sim_recorder_open(dw_sim_recorder *r, uint64_t conn, uint64_t now_us)
{
    (void)now_us;
    if (r->oom)
        return;
    rec_conn *c = calloc(1, sizeof *c);
    if (c && r->base->transport == DW_SIM_TELNET) {
        for (int d = 0; d < 2; d++) {
            dw_telnet_options o;
            dw_telnet_options_init(&o);
            o.server = d == DW_SIM_DIR_REQUEST; /* it reads what a client sends */
            o.observe = 1;                      /* the options each peer said last */
            o.cr_nul = o.server;                /* as the replay reads the client's lines */
            c->tn[d] = dw_telnet_new(&o, NULL, drop_output, NULL);
            if (!c->tn[d])
                r->oom = 1;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        rec_conn **grown = realloc(r->conns, cap * sizeof *grown);
        if (grown) {
            r->conns = grown;
            r->cap = cap;
        }
    }
    if (!c || r->oom || r->n == r->cap) {
        r->oom = 1;
        if (c)
            conn_free(c);
        return;
    }
    c->id = conn;
    c->first_end = -1;
    r->conns[r->n++] = c;
}

void dw_sim_recorder_bytes(dw_sim_recorder *r, uint64_t conn, int dir, const uint8_t *p, size_t n,
                           uint64_t now_us)
{
    rec_conn *c = r->oom ? NULL : find(r, conn);
    if (!c)
        return;
    if (c->tn[dir]) {
        dw_buf_clear(&r->tmp);
        if (dw_telnet_feed(c->tn[dir], p, n, &r->tmp) != DW_OK && r->tmp.len == 0)
            return; /* a stream Telnet cannot follow: its data ends here */
        p = r->tmp.data;
        n = r->tmp.len;
    }
    if (n == 0)
        return;
    if (c->nev == c->evcap) {
        size_t cap = c->evcap ? 2 * c->evcap : 64;
        rec_event *grown = realloc(c->ev, cap * sizeof *grown);
        if (!grown) {
            r->oom = 1;
            return;
        }
        c->ev = grown;
        c->evcap = cap;
    }
    if (dw_buf_append(&c->stream[dir], p, n) != DW_OK) {
        r->oom = 1;
        return;
    }
    c->ev[c->nev++] = (rec_event){now_us, c->stream[dir].len, dir};
}

void dw_sim_recorder_close(dw_sim_recorder *r, uint64_t conn, uint64_t now_us)
{
    (void)r, (void)conn, (void)now_us; /* the streams end where they end */
}

void dw_sim_recorder_end(dw_sim_recorder *r, uint64_t conn, int dir, int reset, uint64_t now_us)
{
    rec_conn *c = r->oom ? NULL : find(r, conn);
    if (!c || c->ended[dir])
        return;
    c->ended[dir] = reset ? 2 : 1;
    c->end_us[dir] = now_us;
    if (c->first_end < 0)
        c->first_end = dir;
}

/* ---- reading the streams ---------------------------------------------------------- */

static void frames_free(rframes *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        free(fs->f[i].payload.data);
    free(fs->f);
    memset(fs, 0, sizeof *fs);
}

static int bytes_dup(dw_sim_bytes *b, const uint8_t *p, size_t n)
{
    b->data = malloc(n ? n : 1);
    if (!b->data)
        return DW_ENOMEM;
    if (n)
        memcpy(b->data, p, n);
    b->len = n;
    return DW_OK;
}

static int frames_add(rframes *fs, const uint8_t *p, size_t n, size_t ev, int is_prompt)
{
    rframe *grown = dw_sim_grow(fs->f, fs->n, &fs->cap, sizeof *grown, 16);
    if (!grown)
        return DW_ENOMEM;
    fs->f = grown;
    rframe *f = &fs->f[fs->n];
    memset(f, 0, sizeof *f);
    f->ev = ev;
    f->is_prompt = is_prompt;
    if (bytes_dup(&f->payload, p, n) != DW_OK)
        return DW_ENOMEM;
    fs->n++;
    return DW_OK;
}

static void note(dw_sim_conversation *cv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(dw_sim_conversation *cv, const char *fmt, ...)
{
    size_t used = strlen(cv->notes);
    if (used + 2 >= sizeof cv->notes)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cv->notes + used, sizeof cv->notes - used, fmt, ap);
    va_end(ap);
}

/* Frame stream[dir] of c from byte `from`, skipping a prompt wherever a
 * frame would start with it (replies only). */
static int read_frames(const rec_conn *c, int dir, size_t from, const dw_marshaller *m,
                       const dw_sim_bytes *prompt, rframes *fs, dw_sim_conversation *cv)
{
    const dw_buf *s = &c->stream[dir];
    dw_decoder *dec = dw_decoder_new(m);
    dw_buf payload = DW_BUF_INIT;
    int rc = dec ? DW_OK : DW_ENOMEM, in_frame = 0;
    size_t pos = from, ev = 0, start = from;
    while (rc == DW_OK && pos < s->len) {
        while (ev < c->nev && (c->ev[ev].dir != dir || c->ev[ev].end <= pos))
            ev++;
        if (!in_frame && prompt->len && s->len - pos >= prompt->len &&
            memcmp(s->data + pos, prompt->data, prompt->len) == 0) {
            pos += prompt->len;
            while (ev < c->nev && (c->ev[ev].dir != dir || c->ev[ev].end < pos))
                ev++;
            fs->prompts++;
            rc = frames_add(fs, NULL, 0, ev, 1);
            if (rc == DW_OK)
                fs->f[fs->n - 1].start = pos - prompt->len, fs->f[fs->n - 1].end = pos;
            continue;
        }
        size_t limit = ev < c->nev ? c->ev[ev].end : s->len, used = 0;
        if (!in_frame && prompt->len) { /* stop where a prompt may start */
            const uint8_t *hit = memchr(s->data + pos, prompt->data[0], limit - pos);
            if (hit && hit > s->data + pos)
                limit = (size_t)(hit - s->data);
            else if (hit)
                limit = pos + 1;
        }
        if (!in_frame)
            start = pos;
        dw_error err;
        dw_error_clear(&err);
        int fr = dw_decoder_feed(dec, s->data + pos, limit - pos, &used, &payload, &err);
        pos += used;
        in_frame = fr == DW_MORE;
        if (fr == DW_OK) {
            rc = frames_add(fs, payload.data, payload.len, ev, 0);
            if (rc == DW_OK)
                fs->f[fs->n - 1].start = start, fs->f[fs->n - 1].end = pos;
        } else if (fr != DW_MORE) {
            note(cv,
                 " Connection %llu: %s at byte %zu of what the %s sent; the rest is not in "
                 "this script.",
                 (unsigned long long)c->id, dw_error_message(&err), pos, dir ? "device" : "client");
            break;
        }
    }
    if (rc == DW_OK && in_frame)
        note(cv, " Connection %llu: the %s's last %zu bytes are not a whole frame.",
             (unsigned long long)c->id, dir ? "device" : "client", dw_decoder_buffered(dec));
    dw_decoder_free(dec);
    dw_buf_free(&payload);
    return rc;
}

/* Bytes of the device's stream before the client's first byte. */
static size_t banner_len(const rec_conn *c)
{
    size_t len = 0;
    for (size_t i = 0; i < c->nev && c->ev[i].dir == DW_SIM_DIR_REPLY; i++)
        len = c->ev[i].end;
    return len;
}

/* ---- pairing requests and answers ------------------------------------------------- */

/* One connection being paired. */
typedef struct pairing {
    dw_sim_conversation *cv;
    const rec_conn *c;
    size_t stream; /* index in cv->streams */
    size_t first;  /* its first exchange in cv->ex */
    size_t head;   /* the oldest exchange whose answer is open */
    size_t *batch; /* no prompt: the frames (indices in rp) of the open answer */
    size_t nbatch;
    uint64_t *t;         /* room for the batch's frame times */
    uint64_t last_us;    /* the open answer's last frame */
    const rframes *rp;   /* the device's frames */
    unsigned char *kind; /* per frame of rp: DW__REC_ANSWER, ... (record_int.h) */
    rec_batches *bs;     /* where batches are noted; NULL: a first pairing */
} pairing;

/* The device's bytes d[0..n) that came while request f was being sent are
 * its echo: the start of what the client sent for it, or its payload and
 * the line end echoed another way (a pty echoes a Telnet CR NUL as CR LF). */
static int is_echo(const uint8_t *d, size_t n, const rec_conn *c, const rframe *f)
{
    const dw_buf *q = &c->stream[DW_SIM_DIR_REQUEST];
    size_t body = f->payload.len;
    if (n <= f->end - f->start && memcmp(d, q->data + f->start, n) == 0)
        return 1;
    return n > body && n <= body + 2 && memcmp(d, f->payload.data, body) == 0;
}

/* Where request f's answer starts in the device's stream: where it stood
 * when the request was complete; or, when the client waited for the
 * previous answer and the device echoed the request as it came (a Telnet
 * console, character by character), where it stood at its first byte. */
static size_t answer_at(const rec_conn *c, const rframe *f, int waited)
{
    size_t done = dw__rec_reply_at(c, f->ev), first = f->ev;
    for (size_t e = f->ev; waited && e-- > 0;) {
        if (c->ev[e].dir != DW_SIM_DIR_REQUEST)
            continue;
        if (c->ev[e].end <= f->start)
            break;
        first = e;
    }
    size_t began = dw__rec_reply_at(c, first);
    const uint8_t *d = c->stream[DW_SIM_DIR_REPLY].data;
    return began < done && is_echo(d + began, done - began, c, f) ? began : done;
}

static int push_exchange(pairing *pg, const rframes *rq, size_t k)
{
    const rframe *req = &rq->f[k];
    dw_sim_conversation *cv = pg->cv;
    dw_sim_exchange *grown = dw_sim_grow(cv->ex, cv->nex, &cv->excap, sizeof *grown, 64);
    if (!grown)
        return DW_ENOMEM;
    cv->ex = grown;
    dw_sim_exchange *x = &cv->ex[cv->nex++];
    memset(x, 0, sizeof *x);
    x->conn = pg->c->id;
    x->t_us = pg->c->ev[req->ev].t_us;
    x->seq = cv->nex;
    x->delay_us = -1;
    x->stream = pg->stream;
    /* it began in a later read than the one that completed the request before */
    x->waited = k == 0 || pg->c->ev[rq->f[k - 1].ev].end <= rq->f[k - 1].end;
    x->out_at = answer_at(pg->c, req, x->waited);
    return bytes_dup(&x->request, req->payload.data, req->payload.len);
}

static int push_reply(dw_sim_exchange *x, const rec_conn *c, const rframe *f)
{
    dw_sim_bytes *grown = realloc(x->replies, (x->nreplies + 1) * sizeof *grown);
    if (!grown)
        return DW_ENOMEM;
    x->replies = grown;
    if (x->nreplies == 0)
        x->delay_us = (int64_t)(c->ev[f->ev].t_us - x->t_us);
    return bytes_dup(&x->replies[x->nreplies++], f->payload.data, f->payload.len);
}

static int push_unsolicited(pairing *pg, size_t i)
{
    const rframe *f = &pg->rp->f[i];
    if (pg->kind[i] == DW__REC_ANSWER)
        pg->kind[i] = DW__REC_UNSOLICITED;
    dw_sim_conversation *cv = pg->cv;
    dw_sim_unsolicited *grown = dw_sim_grow(cv->un, cv->nun, &cv->uncap, sizeof *grown, 16);
    if (!grown)
        return DW_ENOMEM;
    cv->un = grown;
    dw_sim_rec_stream *st = &cv->streams[pg->stream];
    size_t *skip = dw_sim_grow(st->skip, 2 * st->nskip, &st->skipcap, sizeof *skip, 16);
    if (!skip)
        return DW_ENOMEM;
    st->skip = skip;
    skip[2 * st->nskip] = f->start;
    skip[2 * st->nskip + 1] = f->end;
    st->nskip++;
    dw_sim_unsolicited *u = &cv->un[cv->nun];
    u->conn = pg->c->id;
    u->t_us = pg->c->ev[f->ev].t_us;
    int rc = bytes_dup(&u->frame, f->payload.data, f->payload.len);
    cv->nun += rc == DW_OK;
    return rc;
}

/* No prompt: the open answer's frames go to the last of the exchanges
 * waiting for it, and the batch is noted: once every connection is paired,
 * dw__rec_batches_settle gives each request of a pipelined batch its own
 * frames where it can tell them. */
static int close_batch(pairing *pg)
{
    dw_sim_conversation *cv = pg->cv;
    size_t nx = cv->nex - pg->head;
    int rc = DW_OK;
    for (size_t i = 0; i < pg->nbatch && rc == DW_OK && nx; i++) {
        const rframe *f = &pg->rp->f[pg->batch[i]];
        pg->t[i] = pg->c->ev[f->ev].t_us;
        rc = push_reply(&cv->ex[cv->nex - 1], pg->c, f);
    }
    if (rc == DW_OK && nx && pg->nbatch && pg->bs)
        rc = dw__rec_batch_add(pg->bs, pg->head, nx, pg->t, pg->nbatch);
    pg->nbatch = 0;
    pg->head = cv->nex;
    return rc;
}

/* One frame (or prompt) of the device: whose answer it is part of. With a
 * prompt, answers end at prompts and follow the requests in order; without
 * one, an answer is open from its requests until the next request or, after
 * its first frame, a silence of the reply gap. A frame of a periodic series
 * (record_periodic.c) is unsolicited and leaves the answers as they would
 * be without it: it neither opens one nor keeps one open. */
static int on_frame(pairing *pg, size_t i)
{
    dw_sim_conversation *cv = pg->cv;
    const rframe *f = &pg->rp->f[i];
    uint64_t t = pg->c->ev[f->ev].t_us;
    if (pg->kind[i] == DW__REC_PERIODIC)
        return push_unsolicited(pg, i);
    if (cv->prompt.len) {
        if (f->is_prompt) {
            pg->head += pg->head < cv->nex;
            return DW_OK;
        }
        return pg->head < cv->nex ? push_reply(&cv->ex[pg->head], pg->c, f)
                                  : push_unsolicited(pg, i);
    }
    int rc = DW_OK;
    if (pg->nbatch && t - pg->last_us > DW_SIM_RECORD_REPLY_GAP_MS * 1000)
        rc = close_batch(pg);
    if (rc != DW_OK || pg->head == cv->nex)
        return rc == DW_OK ? push_unsolicited(pg, i) : rc;
    pg->batch[pg->nbatch++] = i;
    pg->last_us = t;
    return DW_OK;
}

/* The device ended the connection first, soon after the last answer: that
 * answer ends with it. */
static void end_of(pairing *pg)
{
    dw_sim_conversation *cv = pg->cv;
    const rec_conn *c = pg->c;
    if (c->first_end != DW_SIM_DIR_REPLY)
        return;
    if (cv->nex == pg->first) {
        note(cv, " Connection %llu: the device %s it before any request.",
             (unsigned long long)c->id, c->ended[1] == 2 ? "reset" : "closed");
        return;
    }
    dw_sim_exchange *x = &cv->ex[cv->nex - 1];
    uint64_t last = x->t_us;
    for (size_t i = 0; i < c->nev; i++)
        if (c->ev[i].dir == DW_SIM_DIR_REPLY && c->ev[i].t_us > last)
            last = c->ev[i].t_us;
    uint64_t after = c->end_us[1] > last ? c->end_us[1] - last : 0;
    if (after > DW_SIM_RECORD_CLOSE_GAP_MS * 1000) {
        note(cv,
             " Connection %llu: the device %s it %llu ms after its last answer (not part "
             "of an answer).",
             (unsigned long long)c->id, c->ended[1] == 2 ? "reset" : "closed",
             (unsigned long long)(after / 1000));
        return;
    }
    x->then = c->ended[1] == 2 ? DW_SIM_THEN_RESET : DW_SIM_THEN_CLOSE;
}

static int pair(pairing *pg, const rframes *rq)
{
    dw_sim_conversation *cv = pg->cv;
    const rframes *rp = pg->rp;
    pg->batch = malloc((rp->n ? rp->n : 1) * sizeof *pg->batch);
    pg->t = malloc((rp->n ? rp->n : 1) * sizeof *pg->t);
    int rc = pg->batch && pg->t ? DW_OK : DW_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < rp->n && rc == DW_OK; i++) {
        int more = k < rq->n && rq->f[k].ev < rp->f[i].ev;
        if (more && pg->nbatch) /* new requests: the open answer is over */
            rc = close_batch(pg);
        while (rc == DW_OK && k < rq->n && rq->f[k].ev < rp->f[i].ev)
            rc = push_exchange(pg, rq, k++);
        if (rc == DW_OK)
            rc = on_frame(pg, i);
    }
    if (rc == DW_OK && !cv->prompt.len)
        rc = close_batch(pg);
    while (rc == DW_OK && k < rq->n)
        rc = push_exchange(pg, rq, k++);
    const dw_buf *dev = &pg->c->stream[DW_SIM_DIR_REPLY];
    for (size_t i = pg->first; i < cv->nex && rc == DW_OK; i++)
        cv->ex[i].out_end = i + 1 < cv->nex ? cv->ex[i + 1].out_at : dev->len;
    if (rc == DW_OK)
        end_of(pg);
    free(pg->batch);
    free(pg->t);
    return rc;
}

static void exchange_free(dw_sim_exchange *x)
{
    free(x->request.data);
    for (size_t k = 0; k < x->nreplies; k++)
        free(x->replies[k].data);
    free(x->replies);
}

/* What a first pairing of stream `stream` added to cv, taken back. */
typedef struct mark {
    size_t nex, nun, nskip, notes;
} mark;

static void rollback(dw_sim_conversation *cv, size_t stream, const mark *m)
{
    for (size_t i = m->nex; i < cv->nex; i++)
        exchange_free(&cv->ex[i]);
    for (size_t i = m->nun; i < cv->nun; i++)
        free(cv->un[i].frame.data);
    cv->nex = m->nex;
    cv->nun = m->nun;
    cv->streams[stream].nskip = m->nskip;
    cv->notes[m->notes] = '\0';
}

/* Connection `stream`'s frames rp, paired with its requests rq twice: a
 * first time (taken back) to see which frames came with no answer open,
 * then for good, with the frames of periodic series taken out of the
 * answers (record_periodic.c). */
static int pair_connection(dw_sim_conversation *cv, const rec_conn *c, size_t stream,
                           const rframes *rp, const rframes *rq, rec_batches *bs)
{
    mark m = {cv->nex, cv->nun, cv->streams[stream].nskip, strlen(cv->notes)};
    unsigned char *kind = calloc(rp->n ? rp->n : 1, 1);
    pairing first = {cv, c, stream, cv->nex, cv->nex, NULL, 0, NULL, 0, rp, kind, NULL};
    int rc = kind ? pair(&first, rq) : DW_ENOMEM;
    rollback(cv, stream, &m);
    if (rc == DW_OK)
        rc = dw__rec_periodic_in_answers(c, rq, rp, kind);
    pairing pg = {cv, c, stream, cv->nex, cv->nex, NULL, 0, NULL, 0, rp, kind, bs};
    if (rc == DW_OK)
        rc = pair(&pg, rq);
    free(kind);
    return rc;
}

/* ---- the conversation ----------------------------------------------------------- */

static int by_time(const void *a, const void *b)
{
    const dw_sim_exchange *x = a, *y = b;
    if (x->t_us != y->t_us)
        return x->t_us < y->t_us ? -1 : 1;
    if (x->conn != y->conn)
        return x->conn < y->conn ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int un_by_time(const void *a, const void *b)
{
    const dw_sim_unsolicited *x = a, *y = b;
    if (x->t_us != y->t_us)
        return x->t_us < y->t_us ? -1 : 1;
    return x->conn < y->conn ? -1 : x->conn > y->conn;
}

/* Every connection's request frames into rq[i]. */
static int read_requests(dw_sim_recorder *r, rframes *rq, dw_sim_conversation *cv)
{
    dw_marshaller *mq = dw_sim_framing_marshaller(&r->base->request_framing);
    int rc = mq ? DW_OK : DW_ENOMEM;
    for (size_t i = 0; i < r->n && rc == DW_OK; i++)
        rc = read_frames(r->conns[i], DW_SIM_DIR_REQUEST, 0, mq, &(dw_sim_bytes){NULL, 0}, &rq[i],
                         cv);
    dw_marshaller_free(mq);
    return rc;
}

/* Whether a Telnet client ends its lines with a CR alone, by its first CR
 * that is not the last byte: a client in binary mode sends a bare CR, one
 * in character mode CR NUL, which arrives as CR (RFC 854, as the replay
 * reads it); else CR LF, or no CR at all. */
static int bare_cr(const dw_buf *q)
{
    const uint8_t *cr = q->len ? memchr(q->data, '\r', q->len - 1) : NULL;
    return cr && cr[1] != '\n';
}

/* A Telnet client whose line end is not the base's request sentinel (the
 * telnet program sends CR NUL in character mode, a bare CR in binary
 * mode): say so, and what to give the base script instead. */
static void eol_check(const dw_sim_recorder *r, dw_sim_conversation *cv)
{
    const dw_sim_framing *f = &r->base->request_framing;
    if (r->base->transport != DW_SIM_TELNET || f->type != DW_SIM_FRAMING_SENTINEL ||
        (f->sentinel.len == 1 && f->sentinel.data[0] == '\r'))
        return;
    for (size_t i = 0; i < r->n; i++) {
        if (!bare_cr(&r->conns[i]->stream[DW_SIM_DIR_REQUEST]))
            continue;
        char sen[64];
        dw__rec_escape(f->sentinel.data, f->sentinel.len, 16, sen, sizeof sen);
        snprintf(cv->eol_note, sizeof cv->eol_note,
                 "the client ended its lines with CR (connection %llu), as a Telnet client does "
                 "in binary mode (a bare CR) or in character mode (CR NUL, read as CR), and the "
                 "base script's request sentinel %s does not end them; give the base script the "
                 "request framing {\"type\": \"sentinel\", \"sentinel\": \"\\r\"}",
                 (unsigned long long)r->conns[i]->id, sen);
        return;
    }
}

/* The options the device said WILL and DO to last, on any connection:
 * what it offered or agreed to, for the replay to offer. */
static void device_options(const dw_sim_recorder *r, dw_sim_conversation *cv)
{
    for (size_t i = 0; i < r->n; i++) {
        const dw_telnet *tn = r->conns[i]->tn[DW_SIM_DIR_REPLY];
        for (int k = 0; tn && k < 256; k++) {
            cv->telnet.set = 1;
            if (dw_telnet_remote_enabled(tn, (uint8_t)k))
                dw_telnet_option_set(cv->telnet.will, (uint8_t)k);
            if (dw_telnet_local_enabled(tn, (uint8_t)k))
                dw_telnet_option_set(cv->telnet.ask, (uint8_t)k);
        }
    }
}

/* Every connection's answers, paired with its requests. */
static int read_replies(dw_sim_recorder *r, const rframes *rq, dw_sim_conversation *cv,
                        rec_batches *bs)
{
    dw_marshaller *mr = dw_sim_framing_marshaller(&r->base->response_framing);
    int rc = mr ? DW_OK : DW_ENOMEM;
    for (size_t i = 0; i < r->n && rc == DW_OK; i++) {
        const rec_conn *c = r->conns[i];
        rframes rp = {0};
        dw_sim_rec_stream *st = &cv->streams[i];
        st->conn = c->id;
        st->data = c->stream[DW_SIM_DIR_REPLY].data;
        st->len = c->stream[DW_SIM_DIR_REPLY].len;
        st->banner_len = banner_len(c);
        rc = read_frames(c, DW_SIM_DIR_REPLY, st->banner_len, mr, &cv->prompt, &rp, cv);
        if (rc == DW_OK)
            rc = pair_connection(cv, c, i, &rp, &rq[i], bs);
        frames_free(&rp);
    }
    dw_marshaller_free(mr);
    return rc;
}

/* The banner (the first connection's that had one) and the prompt: the
 * base script's, else inferred. */
static int banner_and_prompt(dw_sim_recorder *r, const rframes *rq, dw_sim_conversation *cv)
{
    int rc = DW_OK;
    for (size_t i = 0; i < r->n && rc == DW_OK && !cv->banner.len; i++) {
        const rec_conn *c = r->conns[i];
        size_t b = banner_len(c);
        if (b)
            rc = bytes_dup(&cv->banner, c->stream[DW_SIM_DIR_REPLY].data, b);
    }
    const dw_sim_bytes *base_prompt = &r->base->prompt;
    if (rc != DW_OK)
        return rc;
    if (base_prompt->len)
        return bytes_dup(&cv->prompt, base_prompt->data, base_prompt->len);
    if (r->base->response_framing.type != DW_SIM_FRAMING_SENTINEL)
        return DW_OK;
    return dw__rec_infer_prompt(r->conns, r->n, rq, &r->base->response_framing, &cv->prompt,
                                cv->prompt_note, sizeof cv->prompt_note);
}

int dw_sim_recorder_conversation(dw_sim_recorder *r, dw_sim_conversation *cv)
{
    memset(cv, 0, sizeof *cv);
    cv->connections = r->n;
    rframes *rq = calloc(r->n ? r->n : 1, sizeof *rq);
    cv->streams = calloc(r->n ? r->n : 1, sizeof *cv->streams);
    int rc = rq && cv->streams ? DW_OK : DW_ENOMEM;
    cv->nstreams = cv->streams ? r->n : 0;
    if (rc == DW_OK)
        rc = read_requests(r, rq, cv);
    if (rc == DW_OK)
        eol_check(r, cv);
    if (rc == DW_OK)
        device_options(r, cv);
    if (rc == DW_OK)
        rc = banner_and_prompt(r, rq, cv);
    rec_batches bs = {0};
    if (rc == DW_OK)
        rc = read_replies(r, rq, cv, &bs);
    if (rc == DW_OK)
        rc = dw__rec_batches_settle(&bs, cv);
    dw__rec_batches_free(&bs);
    for (size_t i = 0; rq && i < r->n; i++)
        frames_free(&rq[i]);
    free(rq);
    if (r->oom)
        note(cv, " Out of memory while recording: the recording stops early.");
    if (rc == DW_OK && cv->nex)
        qsort(cv->ex, cv->nex, sizeof *cv->ex, by_time);
    if (rc == DW_OK && cv->nun)
        qsort(cv->un, cv->nun, sizeof *cv->un, un_by_time);
    if (rc != DW_OK)
        dw_sim_conversation_free(cv);
    return rc;
}

void dw_sim_conversation_free(dw_sim_conversation *cv)
{
    for (size_t i = 0; i < cv->nex; i++)
        exchange_free(&cv->ex[i]);
    for (size_t i = 0; i < cv->nun; i++)
        free(cv->un[i].frame.data);
    for (size_t i = 0; i < cv->nstreams; i++)
        free(cv->streams[i].skip);
    free(cv->streams);
    free(cv->ex);
    free(cv->un);
    free(cv->banner.data);
    free(cv->prompt.data);
    size_t conns = cv->connections;
    memset(cv, 0, sizeof *cv);
    cv->connections = conns;
}
