/* devwire-sim's bounds on one regex match, shared by the rules' regexes
 * (engine/) and the control API's patterns (observe/pattern.h): a pattern
 * from a script and a pattern from an API caller run under the same limits,
 * so neither can hold a thread for long (see docs/sim.md "Limits").
 *
 * DW_SIM_REGEX_MATCH_BUDGET backtracking steps per regex per subject: an
 * anchored pattern ("^...", which can start only at byte 0) gets it all;
 * PCRE2 restarts the count at each start position, so an unanchored one
 * gets it shared out over the subject's n + 1 positions, at least
 * DW_SIM_REGEX_START_MIN each (dw_sim_regex_match_limit). The depth and
 * heap limits bound the interpreter's backtracking memory (when JIT is not
 * available); the JIT stack bounds the JIT's. */
#ifndef DW_SIM_COMMON_REGEX_LIMITS_H
#define DW_SIM_COMMON_REGEX_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#define DW_SIM_REGEX_MATCH_BUDGET   200000u
#define DW_SIM_REGEX_START_MIN      4u
#define DW_SIM_REGEX_DEPTH_LIMIT    20000u
#define DW_SIM_REGEX_HEAP_LIMIT_KIB 2048u
#define DW_SIM_REGEX_JIT_STACK_KIB  1024u

/* The match limit of one pcre2_match call on n bytes: the whole call then
 * costs at most about max(budget, floor * (n + 1)) steps. */
static inline uint32_t dw_sim_regex_match_limit(int anchored, size_t n)
{
    if (anchored)
        return DW_SIM_REGEX_MATCH_BUDGET;
    size_t per = DW_SIM_REGEX_MATCH_BUDGET / (n + 1);
    return per < DW_SIM_REGEX_START_MIN ? DW_SIM_REGEX_START_MIN : (uint32_t)per;
}

#endif
