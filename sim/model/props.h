/* Typed properties of a simulated instrument: named values with a type, a
 * default, a range or a set of choices, a unit, an output format, an
 * access mode, the command that reads and writes them (a SCPI header in
 * the SCPI profile, "CMD value" / "CMD?" otherwise), and values that change
 * by themselves: a ramp toward another property at a rate per second, and
 * noise added on each read. Pure: no I/O and no clock (time comes in as
 * `now`, monotonic seconds); the noise comes from a PRNG whose state the
 * caller owns (the engine's, seedable).
 *
 *     dw_sim_props *p = dw_sim_props_new();         // the loader fills it
 *     ... dw_sim_props_add(p) ...                   // one definition each
 *     dw_sim_props_finish(p);                       // the header index
 *     dw_sim_props_state *st = dw_sim_props_state_new(p, &rng);
 *     dw_sim_props_scpi(st, unit, now, resp);       // FREQ 1e6 / FREQ?
 *     dw_sim_props_state_free(st);
 *     dw_sim_props_free(p);
 *
 * The definitions are immutable once finished (share them freely); a state
 * is used by one thread (the engine's owner, its device's loop thread), and
 * so is the noise generator it draws from. */
#ifndef DW_SIM_PROPS_H
#define DW_SIM_PROPS_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/buf.h>

#include "model/scpi_parse.h"

typedef enum dw_sim_prop_type {
    DW_SIM_PROP_FLOAT,
    DW_SIM_PROP_INT,
    DW_SIM_PROP_BOOL,
    DW_SIM_PROP_ENUM,
    DW_SIM_PROP_STRING,
} dw_sim_prop_type;

typedef enum dw_sim_prop_access {
    DW_SIM_PROP_RW,
    DW_SIM_PROP_RO, /* no set form: "FREQ 1" is an undefined header (-113) */
    DW_SIM_PROP_WO, /* no query form */
} dw_sim_prop_access;

typedef enum dw_sim_prop_noise {
    DW_SIM_NOISE_NONE,
    DW_SIM_NOISE_UNIFORM, /* uniform in [-amplitude, +amplitude] */
    DW_SIM_NOISE_NORMAL,  /* normal, standard deviation amplitude, clipped at 4 of them */
} dw_sim_prop_noise;

/* One property as the script defines it. The loader guarantees: min <= def
 * <= max (numeric types; an int's bounds and default are whole numbers),
 * an enum has 1..64 choices and 0 <= def < nchoices, a ramp's target is a
 * float or int property that does not ramp itself, rate > 0, noise only on
 * float and int, a format only on float and int (one conversion that fits
 * the type). */
typedef struct dw_sim_prop_def {
    char *name;
    dw_sim_prop_type type;
    double min, max; /* float, int: the range (+-inf / +-2^53 when not given) */
    double def;      /* float, int: the default; bool: 0 or 1; enum: the choice */
    char *def_str;   /* string: the default (NUL-terminated, owned) */
    char *choices;   /* enum: "IMMediate|BUS|EXTernal" (long forms, short in upper case) */
    size_t nchoices; /* enum */
    char unit[8];    /* float, int: the SCPI base unit a number may carry ("HZ"), or "" */
    char *format;    /* float, int: printf conversion for the value, or NULL */
    dw_sim_prop_access access;
    char **strs; /* string: the values it takes ("choices", matched ignoring ASCII
                  * case, kept as written here), or NULL: any */
    size_t nstrs;
    dw_scpi_pattern *scpi;     /* SCPI profile: the header, set and query forms; or NULL */
    dw_scpi_pattern **aliases; /* SCPI profile: other headers reaching the same value */
    size_t naliases;
    char *command;  /* other profiles: "SP" takes "SP <value>" and "SP?"; or NULL */
    char *ack;      /* other profiles: the reply to a good set, or NULL (none) */
    size_t ramp_to; /* the property this one ramps toward, or SIZE_MAX */
    double rate;    /* ramp: units per second */
    dw_sim_prop_noise noise;
    double amplitude; /* noise */
    unsigned busy_ms; /* SCPI profile: a set is an overlapped command, pending this long */
    unsigned channel; /* "channels": the channel (its header's suffix) this value is, named
                       * "freq[2]"; 0: a property without channels */
} dw_sim_prop_def;

typedef struct dw_sim_props dw_sim_props;

/* An empty set of definitions; NULL when out of memory. */
dw_sim_props *dw_sim_props_new(void);
/* Accepts NULL. */
void dw_sim_props_free(dw_sim_props *p);
/* Append a zeroed definition (ramp_to = SIZE_MAX) and return it (owned by
 * p; valid until the next add), or NULL when out of memory. */
dw_sim_prop_def *dw_sim_props_add(dw_sim_props *p);
/* Build the header index once every definition is in: DW_OK or DW_ENOMEM. */
int dw_sim_props_finish(dw_sim_props *p);
size_t dw_sim_props_count(const dw_sim_props *p);
const dw_sim_prop_def *dw_sim_props_def(const dw_sim_props *p, size_t i);
/* The property named name[0..len), or SIZE_MAX. */
size_t dw_sim_prop_find(const dw_sim_props *p, const char *name, size_t len);
/* 1 if some property ramps (its value depends on the time). */
int dw_sim_props_timed(const dw_sim_props *p);

/* ---- values ---------------------------------------------------------------- */

/* A property's value, typed. */
typedef struct dw_sim_prop_value {
    dw_sim_prop_type type;
    double num;      /* float; int (whole); bool (0 or 1); enum (the choice's index) */
    const char *str; /* string: the bytes (borrowed), len of them */
    size_t len;
} dw_sim_prop_value;

/* The values of one device (or one connection): every property at its
 * default. `rng` is the PRNG state the noise draws from (borrowed; it must
 * outlive the state; several states may share it, it is updated
 * atomically). NULL when out of memory. */
typedef struct dw_sim_props_state dw_sim_props_state;
dw_sim_props_state *dw_sim_props_state_new(const dw_sim_props *p, uint64_t *rng);
void dw_sim_props_state_free(dw_sim_props_state *st);
/* Every property back to its default, ramps restarted (*RST, a control
 * reset). DW_OK or DW_ENOMEM. */
int dw_sim_props_reset(dw_sim_props_state *st);

/* Property i's value at time `now`: a ramp moved on to `now`, noise added
 * (a new draw on each call). A string's bytes stay valid until the next
 * set of that property. DW_OK. */
int dw_sim_prop_get(dw_sim_props_state *st, size_t i, double now, dw_sim_prop_value *out);
/* Set property i to *v at time `now`, validated against its definition:
 * 0 (done), or a SCPI error code with the value unchanged: -104 (a value of
 * another type; an int takes a float, rounded, a float an int), -222 (out
 * of range), -224 (an enum index that is no choice, a string that is none
 * of its "choices"); DW_SCPI_NOMEM. The
 * access mode is not checked here (a script may set a read-only value). */
int dw_sim_prop_set(dw_sim_props_state *st, size_t i, const dw_sim_prop_value *v, double now);
/* Set property i from text as a "set" of a script writes it (a number,
 * ON/OFF/1/0/true/false, a choice's long or short form, any text for a
 * string): 0 or a SCPI error code as dw_sim_prop_set. */
int dw_sim_prop_set_text(dw_sim_props_state *st, size_t i, const uint8_t *text, size_t len,
                         double now);
/* The choice of string property d ("choices") that s[0..n) is, ignoring
 * ASCII case: the choice as written in d, or NULL. */
const char *dw_sim_prop_string_choice(const dw_sim_prop_def *d, const char *s, size_t n);
/* The choice of enum property d that name[0..len) names (its long or short
 * form, any case): its index, or -224. */
int dw_sim_prop_choice(const dw_sim_prop_def *d, const char *name, size_t len);
/* The short form of enum property d's choice k ("IMM" of "IMMediate"):
 * *name points into d, the length is returned. */
size_t dw_sim_prop_choice_name(const dw_sim_prop_def *d, size_t k, const char **name);
/* A property's stored value (no ramp moved on, no noise), kept so that a
 * change can be taken back: dw_sim_prop_save copies it (DW_OK or
 * DW_ENOMEM), dw_sim_prop_restore puts it back and takes saved->str
 * (dw_buf_free it instead when not restoring). */
typedef struct dw_sim_prop_saved {
    double num, t;
    dw_buf str;
} dw_sim_prop_saved;
int dw_sim_prop_save(const dw_sim_props_state *st, size_t i, dw_sim_prop_saved *out);
void dw_sim_prop_restore(dw_sim_props_state *st, size_t i, dw_sim_prop_saved *saved);
/* Append property i's value at `now` as a query answers it: its format, or
 * per type (scpi: float NR3 "1.0E+06", int NR1, bool 1/0, enum short form
 * upper case, string in double quotes; otherwise float shortest "%g"-like,
 * string as it is). DW_OK or DW_ENOMEM. */
int dw_sim_prop_print(dw_sim_props_state *st, size_t i, double now, int scpi, dw_buf *out);

/* ---- commands ---------------------------------------------------------------- */

/* dw_sim_props_scpi's flags: DW_SIM_PROPS_BARE_STRINGS (non-standard) lets
 * a string property take character data as written ("STR1 hello"). */
#define DW_SIM_PROPS_BARE_STRINGS 1u

/* SCPI unit u against the properties' headers: the set form ("FREQ 1MHZ",
 * MIN/MAX/DEF, units and multipliers) or the query form ("FREQ?", "FREQ?
 * MAX") of the first property (in script order) whose header fits and
 * that accepts the unit (`flags`: DW_SIM_PROPS_*). 1 (a query's answer appended to `resp`, the
 * property's index in *which unless which is NULL), 0 (no
 * property's header fits), else the most specific refusal of those whose
 * header fitted (dw_scpi_refusal_pick; every value left unchanged), or
 * DW_SCPI_NOMEM. */
int dw_sim_props_scpi(dw_sim_props_state *st, const dw_scpi_unit *u, double now, unsigned flags,
                      dw_buf *resp, size_t *which);

/* Request req[0..n) against the properties' commands (other profiles):
 * "SP?" appends the value to `resp` and returns 1; "SP 25" sets it and
 * returns 2 (the property's ack, if any, in `resp`); 0 when no command
 * fits; a negative SCPI error code when the value is refused (unchanged);
 * DW_SCPI_NOMEM. */
int dw_sim_props_command(dw_sim_props_state *st, const uint8_t *req, size_t n, double now,
                         dw_buf *resp);

/* The noise PRNG: splitmix64 on a counter (the state's owner, one thread, calls it). */
void dw_sim_noise_seed(uint64_t *rng, uint64_t seed);
/* A double uniform in [0, 1). */
double dw_sim_noise_uniform(uint64_t *rng);

#endif
