#include "devwire/iter.h"
#include "devwire/error.h"

void dw_iter_init(dw_iter *it, dw_iter_pull_fn pull)
{
    it->pull = pull;
    it->last = NULL;
    it->last_len = 0;
    it->pending = 0;
}

int dw_iter_next(dw_iter *it, const uint8_t **data, size_t *len)
{
    if (it->pending) {
        /* The pending bytes are the tail of the last chunk, which the
         * implementation has not touched since (pull was not called). */
        it->last += it->last_len - it->pending;
        it->last_len = it->pending;
        it->pending = 0;
    } else {
        /* An implementation may find nothing to hand out in what it read
         * (a Telnet chunk of only commands): the contract still holds here,
         * DW_OK always comes with at least one byte. */
        int rc;
        do
            rc = it->pull(it, &it->last, &it->last_len);
        while (rc == DW_OK && it->last_len == 0);
        if (rc != DW_OK) {
            it->last = NULL;
            it->last_len = 0;
            return rc;
        }
    }
    *data = it->last;
    *len = it->last_len;
    return DW_OK;
}

void dw_iter_unread(dw_iter *it, size_t n)
{
    it->pending = n < it->last_len ? n : it->last_len;
}

size_t dw_iter_pending(const dw_iter *it)
{
    return it->pending;
}

static int mem_pull(dw_iter *base, const uint8_t **data, size_t *len)
{
    dw_mem_iter *it = (dw_mem_iter *)base;
    if (it->pos >= it->len)
        return it->end_code;
    size_t end = it->len;
    if (it->cuts) {
        while (it->next_cut < it->ncuts && it->cuts[it->next_cut] <= it->pos)
            it->next_cut++;
        if (it->next_cut < it->ncuts && it->cuts[it->next_cut] < end)
            end = it->cuts[it->next_cut++];
    } else if (it->chunk && it->len - it->pos > it->chunk) {
        end = it->pos + it->chunk;
    }
    *data = it->data + it->pos;
    *len = end - it->pos;
    it->pos = end;
    return DW_OK;
}

void dw_mem_iter_init(dw_mem_iter *it, const uint8_t *data, size_t len, const size_t *cuts,
                      size_t ncuts)
{
    dw_iter_init(&it->base, mem_pull);
    it->data = data;
    it->len = len;
    it->pos = 0;
    it->cuts = cuts;
    it->ncuts = ncuts;
    it->next_cut = 0;
    it->chunk = 0;
    it->end_code = DW_EOF;
}

void dw_mem_iter_init_chunked(dw_mem_iter *it, const uint8_t *data, size_t len, size_t chunk)
{
    dw_mem_iter_init(it, data, len, NULL, 0);
    it->chunk = chunk;
}
