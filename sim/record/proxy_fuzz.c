/* devwire-sim's fault proxy, its frame fuzzer on a connection: see
 * proxy_fuzz.h. */
#include "record/proxy_fuzz.h"

#include <stdio.h>
#include <string.h>

#include "observe/journal.h"
#include "observe/transcript.h"

static const char *const fault_names[2] = {"request.fuzz", "reply.fuzz"};

/* The mutated payload fl->out framed again: by the framing when it takes
 * it (a length-prefixed header follows the new length), else spliced in
 * place of the old payload between the frame's own header and trailer
 * (a sentinel, a block that lies about its length: the framing broken on
 * purpose). The result in fl->release's companion buffer `framed`. */
static int reframe(const dw_marshaller *m, const uint8_t *raw, size_t rn, const uint8_t *payload,
                   size_t pn, const dw_buf *mutated, dw_buf *framed)
{
    dw_buf_clear(framed);
    if (m && dw_marshall(m, mutated->data, mutated->len, framed, NULL) == DW_OK)
        return DW_OK;
    size_t head = 0;
    if (pn <= rn && memcmp(raw, payload, pn) != 0 && memcmp(raw + rn - pn, payload, pn) == 0)
        head = rn - pn;
    else if (pn > rn || memcmp(raw, payload, pn) != 0)
        return dw_buf_append(framed, mutated->data, mutated->len);
    int rc = dw_buf_append(framed, raw, head);
    if (rc == DW_OK)
        rc = dw_buf_append(framed, mutated->data, mutated->len);
    if (rc == DW_OK)
        rc = dw_buf_append(framed, raw + head + pn, rn - head - pn);
    return rc;
}

/* The transcript's "fault" (the frame as sent), the journal's entry (the
 * frame as the device sent it, then as sent) and a log line. */
static void note(dw_sim_proxy *p, int dir, uint64_t conn, const dw_sim_mutation *m,
                 const uint8_t *raw, size_t rn, const uint8_t *sent, size_t sn)
{
    char what[sizeof m->what + 16];
    snprintf(what, sizeof what, "%s %s", fault_names[dir], m->what);
    dw_sim_transcript_event(p->transcript, NULL, conn, "fault", sent, sn, what, NULL);
    if (p->journal)
        dw_sim_journal_add(p->journal, conn, raw, rn, what, sent, sn, "fuzz");
    dw_log(p->logger, DW_LOG_INFO, "connection %llu: %s", (unsigned long long)conn, what);
}

/* The pieces of mutation m of frame raw. */
static size_t pieces(dw_sim_proxy *p, dw__sim_fuzz_leg *fl, const dw_sim_fuzz *f, int dir,
                     const dw_sim_mutation *m, const uint8_t *raw, size_t rn,
                     const uint8_t *payload, size_t pn, dw__sim_fuzz_piece *out)
{
    switch (m->kind) {
    case DW_SIM_MUT_TRUNCATE:
        out[0] = (dw__sim_fuzz_piece){raw, m->at, 0};
        return 1;
    case DW_SIM_MUT_SPLIT:
        out[0] = (dw__sim_fuzz_piece){raw, m->at, 0};
        out[1] = (dw__sim_fuzz_piece){raw + m->at, rn - m->at, f->split_delay_ms};
        return 2;
    case DW_SIM_MUT_DUPLICATE:
        out[0] = out[1] = (dw__sim_fuzz_piece){raw, rn, 0};
        return 2;
    case DW_SIM_MUT_SWAP:
        dw_buf_clear(&fl->held);
        if (dw_buf_append(&fl->held, raw, rn) != DW_OK) /* out of memory: it passes */
            break;
        fl->holding = 1;
        return 0;
    default: {
        dw_buf mutated;
        dw_buf_init(&mutated);
        int rc = dw_sim_fuzz_apply(m, payload, pn, &mutated);
        if (rc == DW_OK)
            rc = reframe(p->frame_m[dir], raw, rn, payload, pn, &mutated, &fl->out);
        dw_buf_free(&mutated);
        if (rc != DW_OK)
            break;
        out[0] = (dw__sim_fuzz_piece){fl->out.data, fl->out.len, 0};
        return 1;
    }
    }
    out[0] = (dw__sim_fuzz_piece){raw, rn, 0};
    return 1;
}

size_t dw__sim_fuzz_frame(dw_sim_proxy *p, dw__sim_fuzz_leg *fl, const dw_sim_fuzz *f, int dir,
                          uint64_t conn, const uint8_t *raw, size_t rn, const uint8_t *payload,
                          size_t pn, dw__sim_fuzz_piece out[DW__SIM_FUZZ_PIECES])
{
    dw_sim_mutation m;
    size_t n = 0;
    int held = fl->holding;
    fl->frames++;
    if (dw_sim_fuzz_decide(f, p->seed, dir, conn, fl->frames, payload, pn, rn, &m) &&
        !(held && m.kind == DW_SIM_MUT_SWAP)) { /* the frame after a swapped one stays */
        n = pieces(p, fl, f, dir, &m, raw, rn, payload, pn, out);
        const dw__sim_fuzz_piece *s = n ? &out[0] : NULL;
        note(p, dir, conn, &m, raw, rn, s ? s->p : NULL, s ? s->n : 0);
    } else {
        out[n++] = (dw__sim_fuzz_piece){raw, rn, 0};
    }
    if (held) { /* the swapped frame, after this one */
        dw_buf tmp = fl->release;
        fl->release = fl->held;
        fl->held = tmp;
        dw_buf_clear(&fl->held);
        fl->holding = 0;
        out[n++] = (dw__sim_fuzz_piece){fl->release.data, fl->release.len, 0};
    }
    return n;
}

int dw__sim_fuzz_flush(dw__sim_fuzz_leg *fl, dw__sim_fuzz_piece *out)
{
    if (!fl->holding)
        return 0;
    dw_buf tmp = fl->release;
    fl->release = fl->held;
    fl->held = tmp;
    fl->holding = 0;
    *out = (dw__sim_fuzz_piece){fl->release.data, fl->release.len, 0};
    return 1;
}

void dw__sim_fuzz_leg_free(dw__sim_fuzz_leg *fl)
{
    dw_buf_free(&fl->held);
    dw_buf_free(&fl->out);
    dw_buf_free(&fl->release);
}
