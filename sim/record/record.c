/* devwire-sim --record: the recorded streams and what they say. See
 * record.h; the script writer is record_write.c. */
#include "record/record.h"

#include "common/memory.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/telnet.h>

/* A piece of bytes as it arrived: after it, stream[dir] is `end` long. */
typedef struct rec_event {
    uint64_t t_us;
    size_t end;
    int dir;
} rec_event;

typedef struct rec_conn {
    uint64_t id;
    dw_telnet *tn[2]; /* Telnet scripts: commands leave, data stays */
    dw_buf stream[2]; /* data bytes of each direction */
    rec_event *ev;
    size_t nev, evcap;
} rec_conn;

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

/* ---- reading the streams ---------------------------------------------------------- */

/* One frame of a stream: its payload, the event that completed it. */
typedef struct rframe {
    dw_sim_bytes payload;
    size_t ev;     /* index of the event that completed it */
    int is_prompt; /* not a frame: the prompt, which ends an answer */
} rframe;

typedef struct rframes {
    rframe *f;
    size_t n, cap;
    int prompts; /* prompts skipped */
} rframes;

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
    size_t pos = from, ev = 0;
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
        dw_error err;
        dw_error_clear(&err);
        int fr = dw_decoder_feed(dec, s->data + pos, limit - pos, &used, &payload, &err);
        pos += used;
        in_frame = fr == DW_MORE;
        if (fr == DW_OK) {
            rc = frames_add(fs, payload.data, payload.len, ev, 0);
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

/* The banner's text after its last whole frame: a console's prompt. */
static int prompt_guess(const dw_sim_script *base, const dw_sim_bytes *banner, dw_sim_bytes *out)
{
    const dw_sim_framing *f = &base->response_framing;
    if (f->type != DW_SIM_FRAMING_SENTINEL || !banner->len || !f->sentinel.len)
        return DW_OK;
    const uint8_t *p = banner->data, *end = p + banner->len, *last = p;
    for (const uint8_t *q = p; (size_t)(end - q) >= f->sentinel.len; q++)
        if (memcmp(q, f->sentinel.data, f->sentinel.len) == 0)
            last = q + f->sentinel.len;
    if (last == end)
        return DW_OK;
    return bytes_dup(out, last, (size_t)(end - last));
}

static int push_exchange(dw_sim_conversation *cv, const rec_conn *c, const rframe *req)
{
    dw_sim_exchange *grown = dw_sim_grow(cv->ex, cv->nex, &cv->excap, sizeof *grown, 64);
    if (!grown)
        return DW_ENOMEM;
    cv->ex = grown;
    dw_sim_exchange *x = &cv->ex[cv->nex++];
    memset(x, 0, sizeof *x);
    x->conn = c->id;
    x->t_us = c->ev[req->ev].t_us;
    x->seq = cv->nex;
    x->delay_us = -1;
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

static int push_unsolicited(dw_sim_conversation *cv, const rec_conn *c, const rframe *f)
{
    dw_sim_unsolicited *grown = dw_sim_grow(cv->un, cv->nun, &cv->uncap, sizeof *grown, 16);
    if (!grown)
        return DW_ENOMEM;
    cv->un = grown;
    dw_sim_unsolicited *u = &cv->un[cv->nun++];
    u->conn = c->id;
    u->t_us = c->ev[f->ev].t_us;
    return bytes_dup(&u->frame, f->payload.data, f->payload.len);
}

/* Pair one connection's requests with the reply frames after each. A reply
 * frame answers the last request completed before it (event order), unless
 * the answer already ended: a prompt came, or (with no prompt) the frame
 * came more than the reply gap after the answer's previous frame. */
static int pair(dw_sim_conversation *cv, const rec_conn *c, const rframes *rq, const rframes *rp)
{
    size_t k = 0;
    int rc = DW_OK, open = 0;
    uint64_t last_us = 0;
    dw_sim_exchange *x = NULL;
    for (size_t i = 0; i < rp->n && rc == DW_OK; i++) {
        const rframe *f = &rp->f[i];
        while (rc == DW_OK && k < rq->n && rq->f[k].ev < f->ev) {
            rc = push_exchange(cv, c, &rq->f[k++]);
            x = &cv->ex[cv->nex - 1];
            open = 1;
            last_us = x->t_us;
        }
        if (rc != DW_OK)
            break;
        if (f->is_prompt) {
            open = 0;
            continue;
        }
        uint64_t t = c->ev[f->ev].t_us;
        if (open && !cv->prompt.len && x->nreplies &&
            t - last_us > DW_SIM_RECORD_REPLY_GAP_MS * 1000)
            open = 0;
        if (open) {
            rc = push_reply(x, c, f);
            last_us = t;
        } else {
            rc = push_unsolicited(cv, c, f);
        }
    }
    while (rc == DW_OK && k < rq->n)
        rc = push_exchange(cv, c, &rq->f[k++]);
    return rc;
}

static int conn_read(dw_sim_recorder *r, const rec_conn *c, const dw_marshaller *mq,
                     const dw_marshaller *mr, dw_sim_conversation *cv, int *prompt_ok)
{

    rframes rq = {0}, rp = {0};
    int rc = read_frames(c, DW_SIM_DIR_REQUEST, 0, mq, &(dw_sim_bytes){NULL, 0}, &rq, cv);
    if (rc == DW_OK)
        rc = read_frames(c, DW_SIM_DIR_REPLY, banner_len(c), mr, &cv->prompt, &rp, cv);
    /* A prompt answers every request: else it was not one. */
    if (rc == DW_OK && cv->prompt.len && !r->base->prompt.len && (size_t)rp.prompts < rq.n)
        *prompt_ok = 0;
    if (rc == DW_OK)
        rc = pair(cv, c, &rq, &rp);
    frames_free(&rq);
    frames_free(&rp);
    return rc;
}

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

static void conversation_reset(dw_sim_conversation *cv)
{
    dw_sim_bytes banner = cv->banner, prompt = cv->prompt;
    cv->banner = cv->prompt = (dw_sim_bytes){NULL, 0};
    dw_sim_conversation_free(cv);
    cv->banner = banner;
    cv->prompt = prompt;
}

/* Every connection's exchanges, with the prompt in cv (if any). */
static int read_all(dw_sim_recorder *r, dw_sim_conversation *cv, int *prompt_ok)
{
    dw_marshaller *mq = dw_sim_framing_marshaller(&r->base->request_framing);
    dw_marshaller *mr = dw_sim_framing_marshaller(&r->base->response_framing);
    int rc = mq && mr ? DW_OK : DW_ENOMEM;
    for (size_t i = 0; i < r->n && rc == DW_OK; i++)
        rc = conn_read(r, r->conns[i], mq, mr, cv, prompt_ok);
    dw_marshaller_free(mq);
    dw_marshaller_free(mr);
    return rc;
}

int dw_sim_recorder_conversation(dw_sim_recorder *r, dw_sim_conversation *cv)
{
    memset(cv, 0, sizeof *cv);
    cv->connections = r->n;
    int rc = DW_OK;
    for (size_t i = 0; i < r->n && rc == DW_OK && !cv->banner.len; i++) {
        const rec_conn *c = r->conns[i];
        size_t b = banner_len(c);
        if (b)
            rc = bytes_dup(&cv->banner, c->stream[DW_SIM_DIR_REPLY].data, b);
    }
    const dw_sim_bytes *base_prompt = &r->base->prompt;
    if (rc == DW_OK)
        rc = base_prompt->len ? bytes_dup(&cv->prompt, base_prompt->data, base_prompt->len)
                              : prompt_guess(r->base, &cv->banner, &cv->prompt);
    int prompt_ok = 1;
    if (rc == DW_OK)
        rc = read_all(r, cv, &prompt_ok);
    if (rc == DW_OK && !prompt_ok) { /* the banner's tail was no prompt: read again */
        conversation_reset(cv);
        free(cv->prompt.data);
        cv->prompt = (dw_sim_bytes){NULL, 0};
        cv->notes[0] = '\0';
        rc = read_all(r, cv, &prompt_ok);
    }
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
    for (size_t i = 0; i < cv->nex; i++) {
        free(cv->ex[i].request.data);
        for (size_t k = 0; k < cv->ex[i].nreplies; k++)
            free(cv->ex[i].replies[k].data);
        free(cv->ex[i].replies);
    }
    for (size_t i = 0; i < cv->nun; i++)
        free(cv->un[i].frame.data);
    free(cv->ex);
    free(cv->un);
    free(cv->banner.data);
    free(cv->prompt.data);
    size_t conns = cv->connections;
    memset(cv, 0, sizeof *cv);
    cv->connections = conns;
}
