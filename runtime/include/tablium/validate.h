/*
 * tablium: the small runtime behind generated JSON Schema validators.
 *
 * Generated code (gen/) calls these; service code normally calls the generated
 * <type>_validate / <type>_parse functions instead. Everything here is thread-safe: a tb_vctx
 * lives on the caller's stack, shared tables (regexes, constants) are initialised once.
 */
#ifndef TABLIUM_VALIDATE_H
#define TABLIUM_VALIDATE_H

#include "tablium/error.h"
#include "tablium/format.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** Marks a parameter of a generated function that its schema does not need. */
#define TB_UNUSED __attribute__((unused))

/* Flags of the generated <type>_validate functions. */
#define TB_VALIDATE_ALL_ERRORS 0x1u /* report every violation (default: stop at the first) */
#define TB_VALIDATE_FORMATS 0x2u    /* assert "format" (default: annotation only) */
/* OpenAPI's direction (neither: every `required` applies, as JSON Schema says): in a request a
 * readOnly member's `required` does not apply, in a response a writeOnly one's (3.0.3, Schema
 * Object). The server passes REQUEST for what it receives and RESPONSE for what it answers, the
 * client RESPONSE for what it receives. */
#define TB_VALIDATE_REQUEST 0x4u
#define TB_VALIDATE_RESPONSE 0x8u

/** Nesting deeper than this (instance depth or schema recursion) fails with rule "depth". */
#define TB_VALIDATE_MAX_DEPTH 256

typedef struct tb_vpath_seg {
    const char *key; /* object member name, or NULL for an array index */
    size_t len;      /* length of key */
    size_t index;    /* array index when key is NULL */
} tb_vpath_seg;

/** Validation state; one per top-level validate call, on the caller's stack. */
typedef struct tb_vctx {
    tb_error *err;   /* may be NULL: then only the verdict is computed */
    unsigned flags;  /* TB_VALIDATE_* */
    int quiet;       /* >0 while trying alternatives (anyOf, oneOf, not, if, contains) */
    size_t nerrors;  /* violations recorded */
    int depth;       /* current recursion depth */
    int npath;       /* instance path depth */
    int ndyn;        /* dynamic scope depth ($dynamicRef) */
    tb_vpath_seg path[TB_VALIDATE_MAX_DEPTH + 2];
    int dyn[TB_VALIDATE_MAX_DEPTH + 2];
} tb_vctx;

void tb_vctx_init(tb_vctx *c, tb_error *err, unsigned flags);
/** Ends a validation: sets err's code and summary when violations were recorded.
 *  Returns 0 when `valid`, else TB_EVALIDATION. */
int tb_vctx_finish(tb_vctx *c, bool valid);

/** Internal flag: the branches of an anyOf/oneOf that matched none are being run again to say
 *  why (tb_v_why_none); a nested anyOf/oneOf does not explain itself. */
#define TB_VALIDATE__EXPLAINING 0x40000000u

/** Records a violation at the current instance path (unless quiet). Returns true when the
 *  caller should keep checking (all-errors mode and not quiet), false to return at once. */
bool tb_v_fail(tb_vctx *c, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Same, at the current path plus one member name (used by "required"). */
bool tb_v_fail_member(tb_vctx *c, const char *member, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline void tb_v_push_key(tb_vctx *c, const char *key, size_t len)
{
    tb_vpath_seg *s = &c->path[c->npath++];
    s->key = key;
    s->len = len;
}
static inline void tb_v_push_index(tb_vctx *c, size_t i)
{
    tb_vpath_seg *s = &c->path[c->npath++];
    s->key = NULL;
    s->index = i;
}
static inline void tb_v_pop(tb_vctx *c)
{
    c->npath--;
}
/** Depth guard for every generated function: false (and a "depth" violation) when too deep. */
static inline bool tb_v_enter(tb_vctx *c)
{
    if (c->depth >= TB_VALIDATE_MAX_DEPTH || c->npath >= TB_VALIDATE_MAX_DEPTH) {
        tb_v_fail(c, "depth", "nesting deeper than %d levels", TB_VALIDATE_MAX_DEPTH);
        return false;
    }
    c->depth++;
    return true;
}
static inline void tb_v_leave(tb_vctx *c)
{
    c->depth--;
}

/* ---- annotations for unevaluatedProperties / unevaluatedItems ---- */

/** What the subschemas that passed have evaluated at one instance location. */
typedef struct tb_eval {
    const char **keys; /* evaluated member names (borrowed from the instance or the schema) */
    size_t nkeys, capkeys;
    bool all_props;     /* every member evaluated */
    size_t items_upto;  /* items [0, items_upto) evaluated */
    bool all_items;     /* every item evaluated */
    unsigned char *bits; /* items evaluated one by one (contains), nbits long */
    size_t nbits;
    const char *small[8];
} tb_eval;

/** Why j matched none of an anyOf/oneOf's branches (fns[i] NULL: a `false` branch), for its
 *  violation: appends "; #i: PATH: MESSAGE (RULE)" per branch (its first violation; three
 *  branches at most) to out[cap] (NUL-terminated; "" when c records nothing). Run only on the
 *  failure path: each branch is checked once more, recording into a scratch error. */
void tb_v_why_none(tb_vctx *c, const json_t *j,
                   bool (*const *fns)(const json_t *, struct tb_vctx *, struct tb_eval *),
                   size_t n, char *out, size_t cap);


void tb_eval_init(tb_eval *e);
void tb_eval_deinit(tb_eval *e);
void tb_eval_mark_prop(tb_eval *e, const char *key);
bool tb_eval_has_prop(const tb_eval *e, const char *key);
void tb_eval_mark_items_upto(tb_eval *e, size_t n);
void tb_eval_mark_all_items(tb_eval *e);
void tb_eval_mark_item(tb_eval *e, size_t i);
bool tb_eval_has_item(const tb_eval *e, size_t i);
/** Adds what `from` evaluated to `into`. NULL `into` is a no-op. */
void tb_eval_merge(tb_eval *into, const tb_eval *from);

/* ---- value helpers with JSON Schema semantics ---- */

/** True for integers and for reals with no fractional part (1.0 is an integer). */
bool tb_json_is_integer(const json_t *j);
/** The number as long double (exact for every int64). */
static inline long double tb_json_num(const json_t *j)
{
    return json_is_integer(j) ? (long double)json_integer_value(j)
                              : (long double)json_real_value(j);
}
/** JSON Schema equality: numbers by value (1 == 1.0), objects regardless of member order. */
bool tb_json_equal(const json_t *a, const json_t *b);
/** True when no two items of the array are equal (tb_json_equal). */
bool tb_json_unique(const json_t *arr);
/** True when the number is a multiple of m (m > 0). */
bool tb_json_multiple_of(const json_t *j, double m);
/** Number of Unicode code points in UTF-8 s[0..n). */
size_t tb_utf8_len(const char *s, size_t n);
/** Is s[0..n) well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF),
 *  as jansson requires of a string? */
bool tb_utf8_valid(const char *s, size_t n);
/** Is j a string equal to s[0..n)? */
/** For generated struct checks: s with its length in *n when s is a writable string (not NULL,
 *  valid UTF-8), else NULL. */
static inline const char *tb_sc_string(const char *s, size_t *n)
{
    if (s == NULL)
        return NULL;
    *n = strlen(s);
    return tb_utf8_valid(s, *n) ? s : NULL;
}

static inline bool tb_json_str_eq(const json_t *j, const char *s, size_t n)
{
    return json_is_string(j) && json_string_length(j) == n &&
           __builtin_memcmp(json_string_value(j), s, n) == 0;
}

/* ---- shared tables, initialised once on first use ---- */

/** A regular expression with ECMA-262 semantics (translated to PCRE2 by the generator),
 *  compiled on first use. */
typedef struct tb_regex {
    const char *pattern; /* PCRE2 syntax; may contain NUL */
    size_t len;
    _Atomic(void *) code;
} tb_regex;
/** From a string literal (its length is taken with sizeof, so NUL characters survive). */
#define TB_REGEX(lit) {lit, sizeof(lit) - 1, NULL}
/** Backtracking steps one match may take (PCRE2's match limit; its default is 10,000,000). A
 *  spec's pattern that backtracks without end on a hostile subject (`([\w .-]*)*` in a URL
 *  pattern) then costs about 1 ms of CPU per string with the JIT instead of 25 ms, and the
 *  check fails closed; ordinary patterns need a few steps per character. */
#define TB_REGEX_MATCH_LIMIT 1000000
/** Matches that may run out of that limit in one validation (from tb_vctx_init, which every
 *  request, response and T_validate / T_parse starts with); after them every further `pattern`
 *  of that validation counts as no match at once. A 1 MB body of 40,000 hostile strings then
 *  costs a few milliseconds, not 40 s.
 *  A validation in which any pattern went undecided fails (tb_vctx_finish, rule "pattern" at
 *  the first such value), even where the forced "no match" would have let it pass: under
 *  `not`, in a oneOf or anyOf branch, an `if`, or as a patternProperties key. */
#define TB_REGEX_EXHAUSTED_MAX 4
/** 1 when s[0..n) contains a match, 0 when not, TB_ETOOBIG when the match limit ran out before
 *  an answer (a validator counts it as no match), TB_EINVAL when the pattern does not compile.
 *  A subject too long for the JIT's stack is matched again by the interpreter.
 *  s must be valid UTF-8 (strings and keys from jansson always are). */
int tb_regex_search(tb_regex *re, const char *s, size_t n);
/** tb_regex_search inside a validation (what generated validators call): the first subject the
 *  limit cannot decide also names its instance path in the failure tb_vctx_finish reports. */
int tb_v_regex(tb_vctx *c, tb_regex *re, const char *s, size_t n);

/** A JSON constant (enum, const), parsed on first use. */
typedef struct tb_vconst {
    const char *json;
    _Atomic(json_t *) value;
} tb_vconst;
#define TB_VCONST(s) {s, NULL}
/** The parsed constant (borrowed, lives until exit); NULL only when out of memory. */
const json_t *tb_vconst_get(tb_vconst *k);

/** Is j equal (tb_json_equal) to the constant? */
static inline bool tb_vconst_eq(const json_t *j, tb_vconst *k)
{
    const json_t *v = tb_vconst_get(k);
    return v && tb_json_equal(j, v);
}

/* ---- macros for generated validators: locals `ok` and `c` and a label `out` in scope ---- */

/** Records a violation (rule, printf format, args) and leaves unless collecting all errors. */
#define TB_V_FAIL(...)                   \
    do {                                 \
        ok = false;                      \
        if (!tb_v_fail(c, __VA_ARGS__))  \
            goto out;                    \
    } while (0)
/** Same, at the current path plus one member name. */
#define TB_V_FAIL_MEMBER(...)                   \
    do {                                        \
        ok = false;                             \
        if (!tb_v_fail_member(c, __VA_ARGS__))  \
            goto out;                           \
    } while (0)
/** A subschema failed (it recorded its own violations): leave unless collecting all errors. */
#define TB_V_FAILED()                                                     \
    do {                                                                  \
        ok = false;                                                       \
        if (c->quiet || !(c->flags & TB_VALIDATE_ALL_ERRORS))             \
            goto out;                                                     \
    } while (0)
/** Applies subschema fn to a child instance: `push` puts the child's key or index on the path
 *  (e.g. tb_v_push_key(c, k, kl)); a failure is TB_V_FAILED(). */
#define TB_V_CHILD(push, fn, inst)       \
    do {                                 \
        push;                            \
        bool r_ = fn(inst, c, NULL);     \
        tb_v_pop(c);                     \
        if (!r_)                         \
            TB_V_FAILED();               \
    } while (0)
/** A child instance where the schema is false: a violation of `rule` at its path. */
#define TB_V_CHILD_REFUSED(push, rule)                   \
    do {                                                 \
        push;                                            \
        ok = false;                                      \
        bool go_ = tb_v_fail(c, rule, "is not allowed"); \
        tb_v_pop(c);                                     \
        if (!go_)                                        \
            goto out;                                    \
    } while (0)

/** Releases the process-wide state of this module for the calling thread (regex match data).
 *  Optional; threads release it on exit anyway. */
void tb_validate_thread_cleanup(void);

#endif
