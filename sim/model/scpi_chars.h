/* Internal: the IEEE 488.2 character classes and the short/long form rule
 * of mnemonics, shared by the program message parser (scpi_parse.c) and the
 * header patterns (scpi_pattern.c). Inline, so neither file calls into the
 * other. */
#ifndef DW_SCPI_CHARS_H
#define DW_SCPI_CHARS_H

#include <stddef.h>
#include <string.h>

static inline int dw__scpi_upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

static inline int dw__scpi_is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static inline int dw__scpi_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Does `word` (upper-cased) name the mnemonic written m[0..n) (upper case
 * is the short form)? */
static inline int dw__scpi_names(const char *m, size_t n, const char *word)
{
    size_t short_len = 0;
    while (short_len < n && !(m[short_len] >= 'a' && m[short_len] <= 'z'))
        short_len++;
    size_t w = strlen(word);
    if (w != short_len && w != n)
        return 0;
    for (size_t i = 0; i < w; i++)
        if (dw__scpi_upper(m[i]) != word[i])
            return 0;
    return 1;
}

#endif
