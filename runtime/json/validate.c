#include "tablium/validate.h"

#include "tb_utf8.h"
#include "tb_vctx.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Matches of this thread's current validation that ran out of the match limit (see
 * TB_REGEX_EXHAUSTED_MAX): reset by each tb_vctx_init, not by the quiet checks a decode makes of
 * a union's branches (tb__vctx_init_nested). While it is not 0 a pattern went undecided, and the
 * validation fails in tb_vctx_finish whatever not/anyOf/oneOf/if made of the "no match", at the
 * path of the first such value (tb_v_regex records it; "" when unknown). */
static __thread unsigned tl_regex_exhausted;
static __thread char tl_undecided_path[256];

void tb__vctx_init_nested(tb_vctx *c, tb_error *err, unsigned flags)
{
    c->err = err;
    c->flags = flags;
    c->quiet = 0;
    c->nerrors = 0;
    c->depth = 0;
    c->npath = 0;
    c->ndyn = 0;
    if (err)
        tb_error_reset(err);
}

void tb_vctx_init(tb_vctx *c, tb_error *err, unsigned flags)
{
    tl_regex_exhausted = 0;
    tl_undecided_path[0] = '\0';
    tb__vctx_init_nested(c, err, flags);
}

int tb_vctx_finish(tb_vctx *c, bool valid)
{
    if (valid && tl_regex_exhausted) {
        /* Passing may have hung on a "no match" the limit forced (not: {pattern}, a oneOf
           branch, a patternProperties key): fail closed. */
        valid = false;
        c->nerrors++;
        if (c->err)
            tb_error_add_detail(c->err, tl_undecided_path, "pattern",
                                "too costly to match: the pattern ran out of its match limit "
                                "(TB_REGEX_MATCH_LIMIT) on this value");
    }
    if (valid)
        return 0;
    if (c->err) {
        if (c->nerrors == 0) /* cannot happen with generated code; keep the error meaningful */
            tb_error_add_detail(c->err, "", "schema", "does not match the schema");
        const tb_error_detail *d = &c->err->details[0];
        tb_error_set(c->err, TB_EVALIDATION, "%s: %s (%s)%s", d->path[0] ? d->path : "/",
                     d->message, d->rule,
                     c->err->n_details > 1 || c->err->n_omitted ? " and more" : "");
    }
    return TB_EVALIDATION;
}

/* Renders the instance path as a JSON pointer (RFC 6901: '~' -> "~0", '/' -> "~1"). */
static void render_path(const tb_vctx *c, const char *member, char *out, size_t cap)
{
    size_t o = 0;
#define PUT(ch)               \
    do {                      \
        if (o + 1 < cap)      \
            out[o++] = (ch);  \
    } while (0)
    for (int i = 0; i <= c->npath; i++) {
        const char *k;
        size_t n;
        char num[24];
        if (i == c->npath) {
            if (!member)
                break;
            k = member;
            n = strlen(member);
        } else if (c->path[i].key) {
            k = c->path[i].key;
            n = c->path[i].len;
        } else {
            n = (size_t)snprintf(num, sizeof num, "%zu", c->path[i].index);
            k = num;
        }
        PUT('/');
        for (size_t j = 0; j < n; j++) {
            if (k[j] == '~') {
                PUT('~');
                PUT('0');
            } else if (k[j] == '/') {
                PUT('~');
                PUT('1');
            } else {
                PUT(k[j]);
            }
        }
    }
#undef PUT
    out[o] = '\0';
}

static bool vfail(tb_vctx *c, const char *member, const char *rule, const char *fmt, va_list ap)
{
    if (c->quiet)
        return false;
    c->nerrors++;
    if (c->err && tb_error_details_full(c->err)) {
        /* Past the cap a violation is only counted: no path, no message, no allocation, so
         * a body with 100,000 violations costs a counter, not 100,000 details. */
        c->err->n_omitted++;
    } else if (c->err) {
        char path[1024], msg[1024]; /* cut to TB_ERROR_MAX_DETAIL_TEXT by the copy */
        render_path(c, member, path, sizeof path);
        vsnprintf(msg, sizeof msg, fmt, ap);
        tb_error_add_detail(c->err, path, rule, msg);
    }
    return (c->flags & TB_VALIDATE_ALL_ERRORS) != 0;
}

void tb_v_why_none(tb_vctx *c, const json_t *j,
                   bool (*const *fns)(const json_t *, struct tb_vctx *, struct tb_eval *),
                   size_t n, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (!c->err || c->quiet || (c->flags & TB_VALIDATE__EXPLAINING))
        return;
    size_t o = 0;
    tb_error *saved = c->err;
    size_t nerrors = c->nerrors;
    unsigned flags = c->flags;
    int npath = c->npath, depth = c->depth;
    for (size_t i = 0; i < n && i < 3 && o + 1 < cap; i++) {
        tb_error scratch = TB_ERROR_INIT;
        if (fns[i]) {
            c->err = &scratch;
            c->flags = (flags & ~TB_VALIDATE_ALL_ERRORS) | TB_VALIDATE__EXPLAINING;
            tb_eval t;
            tb_eval_init(&t);
            (void)fns[i](j, c, &t);
            tb_eval_deinit(&t);
            c->err = saved;
            c->flags = flags;
            c->nerrors = nerrors;
            c->npath = npath;
            c->depth = depth;
        }
        const tb_error_detail *d = scratch.n_details ? &scratch.details[0] : NULL;
        int w = snprintf(out + o, cap - o, "; #%zu: %s%s%s (%s)", i, d ? d->path : "",
                         d ? ": " : "", d ? d->message : "no value is allowed",
                         d ? d->rule : "false");
        o = w < 0 ? o : (size_t)w >= cap - o ? cap - 1 : o + (size_t)w;
        tb_error_deinit(&scratch);
    }
    if (n > 3 && o + 1 < cap)
        snprintf(out + o, cap - o, "; and %zu more", n - 3);
}

bool tb_v_fail(tb_vctx *c, const char *rule, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool r = vfail(c, NULL, rule, fmt, ap);
    va_end(ap);
    return r;
}

bool tb_v_fail_member(tb_vctx *c, const char *member, const char *rule, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool r = vfail(c, member, rule, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- annotations ---- */

void tb_eval_init(tb_eval *e)
{
    e->keys = e->small;
    e->nkeys = 0;
    e->capkeys = sizeof e->small / sizeof e->small[0];
    e->all_props = false;
    e->items_upto = 0;
    e->all_items = false;
    e->bits = NULL;
    e->nbits = 0;
}

void tb_eval_deinit(tb_eval *e)
{
    if (e->keys != e->small)
        free((void *)e->keys);
    free(e->bits);
    e->keys = e->small;
    e->bits = NULL;
}

void tb_eval_mark_prop(tb_eval *e, const char *key)
{
    if (!e || e->all_props || tb_eval_has_prop(e, key))
        return;
    if (e->nkeys == e->capkeys) {
        size_t cap = e->capkeys * 2;
        const char **k = malloc(cap * sizeof *k);
        if (!k) {
            return; /* the key stays unevaluated: stricter, never looser */
        }
        memcpy(k, e->keys, e->nkeys * sizeof *k);
        if (e->keys != e->small)
            free((void *)e->keys);
        e->keys = k;
        e->capkeys = cap;
    }
    e->keys[e->nkeys++] = key;
}

bool tb_eval_has_prop(const tb_eval *e, const char *key)
{
    if (e->all_props)
        return true;
    for (size_t i = 0; i < e->nkeys; i++)
        if (e->keys[i] == key || strcmp(e->keys[i], key) == 0)
            return true;
    return false;
}

void tb_eval_mark_items_upto(tb_eval *e, size_t n)
{
    if (e && n > e->items_upto)
        e->items_upto = n;
}

void tb_eval_mark_all_items(tb_eval *e)
{
    if (e)
        e->all_items = true;
}

void tb_eval_mark_item(tb_eval *e, size_t i)
{
    if (!e || e->all_items || i < e->items_upto)
        return;
    if (i >= e->nbits) {
        size_t n = i + 16;
        unsigned char *b = realloc(e->bits, n);
        if (!b)
            return;
        memset(b + e->nbits, 0, n - e->nbits);
        e->bits = b;
        e->nbits = n;
    }
    e->bits[i] = 1;
}

bool tb_eval_has_item(const tb_eval *e, size_t i)
{
    return e->all_items || i < e->items_upto || (i < e->nbits && e->bits[i]);
}

void tb_eval_merge(tb_eval *into, const tb_eval *from)
{
    if (!into)
        return;
    if (from->all_props)
        into->all_props = true;
    else
        for (size_t i = 0; i < from->nkeys; i++)
            tb_eval_mark_prop(into, from->keys[i]);
    if (from->all_items)
        into->all_items = true;
    tb_eval_mark_items_upto(into, from->items_upto);
    for (size_t i = 0; i < from->nbits; i++)
        if (from->bits[i])
            tb_eval_mark_item(into, i);
}

/* ---- values ---- */

bool tb_json_is_integer(const json_t *j)
{
    if (json_is_integer(j))
        return true;
    if (!json_is_real(j))
        return false;
    double v = json_real_value(j);
    return isfinite(v) && floor(v) == v;
}

bool tb_json_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return tb_json_num(a) == tb_json_num(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!tb_json_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            json_t *w = json_object_get(b, k);
            if (!w || !tb_json_equal(v, w))
                return false;
        }
        return true;
    }
    default: /* true, false, null */
        return true;
    }
}

bool tb_json_unique(const json_t *arr)
{
    size_t n = json_array_size(arr);
    for (size_t i = 1; i < n; i++) {
        const json_t *x = json_array_get(arr, i);
        for (size_t k = 0; k < i; k++)
            if (tb_json_equal(x, json_array_get(arr, k)))
                return false;
    }
    return true;
}

bool tb_json_multiple_of(const json_t *j, double m)
{
    if (json_is_integer(j) && floor(m) == m && m <= 9007199254740992.0) {
        long long d = (long long)m;
        return json_integer_value(j) % d == 0;
    }
    double x = (double)tb_json_num(j);
    double q = x / m;
    if (!isfinite(q))
        return false;
    double r = nearbyint(q);
    /* Decimal divisors (0.01) are not exact in binary: accept a quotient within rounding
     * noise of an integer. */
    return fabs(q - r) <= 1e-9 * fmax(1.0, fabs(q));
}

size_t tb_utf8_len(const char *s, size_t n)
{
    size_t cp = 0;
    for (size_t i = 0; i < n; i++)
        cp += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cp;
}

bool tb_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str, *e = s + n;
    while (s < e) {
        /* ASCII eight bytes at a time */
        while (e - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            if (w & 0x8080808080808080ull)
                break;
            s += 8;
        }
        if (s >= e)
            break;
        size_t len = tb__utf8_seq(s, e);
        if (len == 0)
            return false;
        s += len;
    }
    return true;
}

/* ---- shared tables ---- */

/* Each thread's match data and match context (the limits), made on first use. */
typedef struct regex_tls {
    pcre2_match_data *md;
    pcre2_match_context *mc;
} regex_tls;

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *p)
{
    regex_tls *t = p;
    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mc);
    free(t);
}

static void md_init(void)
{
    pthread_key_create(&md_key, md_free);
}

static regex_tls *thread_regex(void)
{
    pthread_once(&md_once, md_init);
    regex_tls *t = pthread_getspecific(md_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
        t->md = pcre2_match_data_create(1, NULL);
        t->mc = pcre2_match_context_create(NULL);
        if (!t->md || !t->mc) {
            md_free(t);
            return NULL;
        }
        pcre2_set_match_limit(t->mc, TB_REGEX_MATCH_LIMIT);
        pthread_setspecific(md_key, t);
    }
    return t;
}

void tb_validate_thread_cleanup(void)
{
    pthread_once(&md_once, md_init);
    regex_tls *t = pthread_getspecific(md_key);
    if (t) {
        md_free(t);
        pthread_setspecific(md_key, NULL);
    }
}

int tb_regex_search(tb_regex *re, const char *s, size_t n)
{
    pcre2_code *code = atomic_load_explicit(&re->code, memory_order_acquire);
    if (!code) {
        int errcode;
        PCRE2_SIZE erroff;
        code = pcre2_compile((PCRE2_SPTR)re->pattern, re->len, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY,
                             &errcode, &erroff, NULL);
        if (!code)
            return TB_EINVAL;
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* best effort: falls back to the interpreter */
        void *expected = NULL;
        if (!atomic_compare_exchange_strong(&re->code, &expected, code)) {
            pcre2_code_free(code); /* another thread won */
            code = expected;
        }
    }
    if (tl_regex_exhausted >= TB_REGEX_EXHAUSTED_MAX)
        return TB_ETOOBIG; /* this validation spent its budget on hostile subjects */
    regex_tls *t = thread_regex();
    if (!t)
        return TB_ENOMEM;
    /* Subjects come from jansson, which only holds valid UTF-8. */
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, t->md, t->mc);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* a long subject ((\w+\s?)* on 20 KB): the
                                            interpreter keeps its backtracking on the heap */
        rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, t->md,
                         t->mc);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    /* the match limit (a pattern that backtracks without end on this subject), or another
       failure: no match was found, and the check fails closed */
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) {
        tl_regex_exhausted++;
        return TB_ETOOBIG;
    }
    return TB_EINVAL;
}

int tb_v_regex(tb_vctx *c, tb_regex *re, const char *s, size_t n)
{
    bool first = tl_regex_exhausted == 0;
    int rc = tb_regex_search(re, s, n);
    if (rc == TB_ETOOBIG && first)
        render_path(c, NULL, tl_undecided_path, sizeof tl_undecided_path);
    return rc;
}

const json_t *tb_vconst_get(tb_vconst *k)
{
    json_t *v = atomic_load_explicit(&k->value, memory_order_acquire);
    if (v)
        return v;
    v = json_loads(k->json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!v)
        return NULL;
    json_t *expected = NULL;
    if (!atomic_compare_exchange_strong(&k->value, &expected, v)) {
        json_decref(v);
        v = expected;
    }
    return v;
}
