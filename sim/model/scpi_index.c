/* The header patterns' index by last word: see scpi_index.h. */
#include "model/scpi_index.h"

#include "common/memory.h"

#include <devwire/error.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The patterns a header ending in one word may fit. */
typedef struct word_slot {
    char word[DW_SCPI_MAX_MNEMONIC + 1]; /* "": an empty slot */
    size_t *ids;                         /* ascending */
    size_t n, cap;
} word_slot;

struct dw_scpi_index {
    word_slot *slots; /* open addressing, at most half full */
    size_t mask, used;
};

#define FIRST_SLOTS 16

dw_scpi_index *dw_scpi_index_new(void)
{
    dw_scpi_index *x = calloc(1, sizeof *x);
    if (x && !(x->slots = calloc(FIRST_SLOTS, sizeof *x->slots))) {
        free(x);
        return NULL;
    }
    if (x)
        x->mask = FIRST_SLOTS - 1;
    return x;
}

void dw_scpi_index_free(dw_scpi_index *x)
{
    if (!x)
        return;
    for (size_t i = 0; i <= x->mask; i++)
        free(x->slots[i].ids);
    free(x->slots);
    free(x);
}

static uint64_t word_hash(const char *w)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *w; w++)
        h = (h ^ (uint8_t)*w) * 1099511628211ULL;
    return h ^ (h >> 29);
}

/* Word w's slot in slots[0..mask], or the empty slot where it would go. */
static word_slot *slot_of(word_slot *slots, size_t mask, const char *w)
{
    for (size_t j = (size_t)word_hash(w) & mask;; j = (j + 1) & mask)
        if (!slots[j].word[0] || strcmp(slots[j].word, w) == 0)
            return &slots[j];
}

/* Twice the slots, every word moved to its new place. */
static int grow(dw_scpi_index *x)
{
    size_t mask = 2 * x->mask + 1;
    word_slot *slots = calloc(mask + 1, sizeof *slots);
    if (!slots)
        return DW_ENOMEM;
    for (size_t i = 0; i <= x->mask; i++)
        if (x->slots[i].word[0])
            *slot_of(slots, mask, x->slots[i].word) = x->slots[i];
    free(x->slots);
    x->slots = slots;
    x->mask = mask;
    return DW_OK;
}

typedef struct index_add {
    dw_scpi_index *x;
    size_t id;
} index_add;

static int add_word(void *arg, const char *w)
{
    index_add *a = arg;
    dw_scpi_index *x = a->x;
    if (!w[0]) /* an all-lower-case mnemonic's short form: no unit's word is empty */
        return 0;
    word_slot *s = slot_of(x->slots, x->mask, w);
    if (!s->word[0] && 2 * (x->used + 1) > x->mask + 1) {
        if (grow(x) != DW_OK)
            return DW_ENOMEM;
        s = slot_of(x->slots, x->mask, w);
    }
    if (s->n && s->ids[s->n - 1] == a->id)
        return 0; /* SOURce[:SOURce], or an alias ending in the same word: once is enough */
    size_t *ids = dw_sim_grow(s->ids, s->n, &s->cap, sizeof *ids, 2);
    if (!ids)
        return DW_ENOMEM;
    if (!s->word[0]) {
        strcpy(s->word, w);
        x->used++;
    }
    s->ids = ids;
    s->ids[s->n++] = a->id;
    return 0;
}

int dw_scpi_index_add(dw_scpi_index *x, const dw_scpi_pattern *p, size_t id)
{
    index_add a = {x, id};
    return dw_scpi_pattern_last_words(p, add_word, &a) ? DW_ENOMEM : DW_OK;
}

const size_t *dw_scpi_index_find(const dw_scpi_index *x, const dw_scpi_unit *u, size_t *n)
{
    char w[DW_SCPI_MAX_MNEMONIC + 1];
    dw_scpi_unit_last_word(u, w);
    const word_slot *s = slot_of(x->slots, x->mask, w);
    *n = s->n;
    return s->ids;
}
