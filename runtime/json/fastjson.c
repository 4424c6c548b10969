/*
 * tablium: a fast JSON reader building jansson values; see tb_fastjson.h. Every path that is
 * not plainly valid returns NULL so that json_loadb decides.
 */
#include "tb_fastjson.h"
#include "tb_utf8.h"

#include "tablium/error.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2000 /* below jansson's 2048: anything deeper is left to it */

typedef struct {
    const unsigned char *p, *end;
    int depth;
    char *scratch; /* unescaped strings */
    size_t scratch_cap;
} reader;

static json_t *value(reader *r);

static inline void ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* After an opening bracket (consumed): true when the container closes at once (consumed). */
static inline bool closes_at_once(reader *r, char close)
{
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    return false;
}

/* After a member or item: 1 when another follows (the comma consumed), 0 when the container
 * closes (consumed), -1 on anything else. */
static inline int next_member(reader *r, char close)
{
    ws(r);
    if (r->p >= r->end)
        return -1;
    if (*r->p == ',') {
        r->p++;
        ws(r);
        return 1;
    }
    if (*r->p == close) {
        r->p++;
        return 0;
    }
    return -1;
}

static int hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
    if (end - p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

static bool scratch_room(reader *r, size_t need)
{
    if (need <= r->scratch_cap)
        return true;
    size_t cap = r->scratch_cap ? r->scratch_cap : 256;
    while (cap < need)
        cap *= 2;
    char *s = realloc(r->scratch, cap);
    if (!s)
        return false;
    r->scratch = s;
    r->scratch_cap = cap;
    return true;
}

/* Reads a string at r->p (on its opening quote). Sets *s and *n to its UTF-8 bytes: in the
 * input when it has no escapes, else in r->scratch. false when invalid. */
static bool string(reader *r, const char **s, size_t *n)
{
    const unsigned char *start = ++r->p, *p = start, *end = r->end;
    /* the common case: no escapes. Eight bytes at a time while none is a quote, a backslash, a
     * control character or non-ASCII (SWAR: a byte's high bit marks a hit). */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t quote = x ^ (ones * '"'), bslash = x ^ (ones * '\\');
        uint64_t hit = ((x - ones * 0x20) | (quote - ones) | (bslash - ones)) & ~x & highs;
        hit |= x & highs; /* non-ASCII */
        /* (quote - ones) & ~quote flags a zero byte of quote; ~x stands in for ~quote here
         * because x and quote agree on the high bit, which is all the mask keeps) */
        if (hit)
            break;
        p += 8;
    }
    while (p < end) {
        unsigned c = *p;
        if (c == '"') {
            *s = (const char *)start;
            *n = (size_t)(p - start);
            r->p = p + 1;
            return true;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return false;
        if (c < 0x80) {
            p++;
        } else {
            size_t k = tb__utf8_seq(p, end);
            if (k == 0)
                return false;
            p += k;
        }
    }
    if (p >= end)
        return false;
    /* with escapes: the plain prefix, then decode into the scratch buffer */
    size_t len = (size_t)(p - start);
    if (!scratch_room(r, len + 64))
        return false;
    memcpy(r->scratch, start, len);
    while (p < end) {
        unsigned c = *p;
        if (!scratch_room(r, len + 8))
            return false;
        if (c == '"') {
            *s = r->scratch;
            *n = len;
            r->p = p + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\') {
            size_t k = c < 0x80 ? 1 : tb__utf8_seq(p, end);
            if (k == 0)
                return false;
            memcpy(r->scratch + len, p, k);
            len += k;
            p += k;
            continue;
        }
        if (++p >= end)
            return false;
        char *o = r->scratch + len;
        switch (*p++) {
        case '"': *o = '"'; len++; break;
        case '\\': *o = '\\'; len++; break;
        case '/': *o = '/'; len++; break;
        case 'b': *o = '\b'; len++; break;
        case 'f': *o = '\f'; len++; break;
        case 'n': *o = '\n'; len++; break;
        case 'r': *o = '\r'; len++; break;
        case 't': *o = '\t'; len++; break;
        case 'u': {
            uint32_t v, lo;
            if (hex4(p, end, &v) != 0)
                return false;
            p += 4;
            if (v >= 0xDC00 && v <= 0xDFFF)
                return false; /* a lone low surrogate */
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) != 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                p += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            }
            unsigned char *u = (unsigned char *)o;
            if (v < 0x80) {
                u[0] = (unsigned char)v;
                len += 1;
            } else if (v < 0x800) {
                u[0] = (unsigned char)(0xC0 | (v >> 6));
                u[1] = (unsigned char)(0x80 | (v & 0x3F));
                len += 2;
            } else if (v < 0x10000) {
                u[0] = (unsigned char)(0xE0 | (v >> 12));
                u[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
                u[2] = (unsigned char)(0x80 | (v & 0x3F));
                len += 3;
            } else {
                u[0] = (unsigned char)(0xF0 | (v >> 18));
                u[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
                u[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
                u[3] = (unsigned char)(0x80 | (v & 0x3F));
                len += 4;
            }
            break;
        }
        default:
            return false;
        }
    }
    return false;
}

static locale_t g_c_locale;
static pthread_once_t g_c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { g_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* JSON Schema counts a number as an integer when it has no fractional part. The double nearest
 * to a decimal with a fraction can be whole (0.99999999999999999999 -> 1.0), and "type":
 * "integer" would then accept it. So such a number is read as the other double bracketing it,
 * the one on the fraction's side (0.9999999999999999): still a faithful reading, never whole.
 * From 2^53 on every double is whole and nothing changes: there the text's fraction is lost (a
 * documented limit). s[0..n) is the number's text, d its nearest double. */
static double keep_fraction(const unsigned char *s, size_t n, double d)
{
    if (!isfinite(d) || floor(d) != d || fabs(d) >= 9007199254740992.0)
        return d;
    size_t i = 0;
    bool neg = s[0] == '-';
    if (neg)
        i++;
    const unsigned char *ip = s + i; /* integer digits */
    size_t ni = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, ni++;
    const unsigned char *fp = s + i + (i < n && s[i] == '.'); /* fraction digits */
    size_t nf = 0;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            nf++;
    long e = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = i < n && s[i] == '-';
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n; i++)
            if (e < 100000000)
                e = e * 10 + (s[i] - '0');
        if (eneg)
            e = -e;
    }
    /* digit k of integer then fraction digits has weight 10^(point - 1 - k) */
    long nd = (long)(ni + nf), point = (long)ni + e;
#define DIGIT(k) ((size_t)(k) < ni ? ip[(k)] : fp[(size_t)(k) - ni])
    bool whole = true;
    for (long k = point < 0 ? 0 : point; k < nd; k++)
        if (DIGIT(k) != '0') {
            whole = false;
            break;
        }
    if (whole)
        return d;
    /* |v| = t + f with t its whole part and 0 < f < 1: it lies above the whole double |d|
     * when |d| <= t, below it otherwise. t saturates: past 2^60 it is above |d| anyway. */
    uint64_t t = 0;
    for (long k = 0; k < point && k < nd; k++) {
        t = t * 10 + (uint64_t)(DIGIT(k) - '0');
        if (t > (UINT64_C(1) << 60))
            break;
    }
#undef DIGIT
    bool above = (uint64_t)fabs(d) <= t;
    double away = neg ? -INFINITY : INFINITY;
    return nextafter(d, above ? away : -away);
}

static json_t *number(reader *r)
{
    const unsigned char *start = r->p, *p = r->p, *end = r->end;
    bool real = false;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        real = true;
        p++;
        if (p >= end || !(*p >= '0' && *p <= '9'))
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !(*p >= '0' && *p <= '9'))
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - start);
    char small[64];
    /* long numbers are read here too, so that keep_fraction sees every number's text */
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return NULL;
    memcpy(buf, start, n);
    buf[n] = '\0';
    errno = 0;
    if (!real) {
        long long v = strtoll(buf, NULL, 10);
        if (errno != ERANGE) {
            if (buf != small)
                free(buf);
            r->p = p;
            return json_integer((json_int_t)v);
        }
        /* an integer past int64 is valid JSON (jansson refuses it, "too big integer"): its
         * nearest double, as JavaScript reads it; a `type: number` takes it, an integer member
         * is refused by its range, naming the field */
        errno = 0;
    }
    pthread_once(&g_c_locale_once, make_c_locale);
    double d = g_c_locale == (locale_t)0 ? NAN : strtod_l(buf, NULL, g_c_locale);
    bool overflow = errno == ERANGE && isinf(d);
    if (buf != small)
        free(buf);
    if (isnan(d) || overflow)
        return NULL;
    r->p = p;
    return json_real(keep_fraction(start, n, d));
}

static json_t *object(reader *r)
{
    r->p++; /* { */
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (closes_at_once(r, '}'))
        return o;
    for (;;) {
        if (r->p >= r->end || *r->p != '"')
            goto fail;
        const char *k;
        size_t kn;
        if (!string(r, &k, &kn))
            goto fail;
        if (memchr(k, '\0', kn) != NULL || json_object_getn(o, k, kn) != NULL)
            goto fail; /* a NUL in a key (jansson refuses it) or a duplicate key */
        /* the key may live in the scratch buffer, which the value's strings reuse */
        char kbuf[128], *key = kbuf;
        if (kn >= sizeof kbuf && !(key = malloc(kn + 1)))
            goto fail;
        memcpy(key, k, kn);
        ws(r);
        if (r->p >= r->end || *r->p != ':') {
            if (key != kbuf)
                free(key);
            goto fail;
        }
        r->p++;
        ws(r);
        json_t *v = value(r);
        int rc = v ? json_object_setn_new_nocheck(o, key, kn, v) : -1;
        if (key != kbuf)
            free(key);
        if (rc != 0)
            goto fail;
        int more = next_member(r, '}');
        if (more == 0)
            return o;
        if (more < 0)
            goto fail;
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *array(reader *r)
{
    r->p++; /* [ */
    json_t *a = json_array();
    if (!a)
        return NULL;
    if (closes_at_once(r, ']'))
        return a;
    for (;;) {
        json_t *v = value(r);
        if (!v || json_array_append_new(a, v) != 0)
            goto fail;
        int more = next_member(r, ']');
        if (more == 0)
            return a;
        if (more < 0)
            goto fail;
    }
fail:
    json_decref(a);
    return NULL;
}

static bool literal(reader *r, const char *word, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return false;
    r->p += n;
    return true;
}

static json_t *value(reader *r)
{
    if (r->p >= r->end)
        return NULL;
    switch (*r->p) {
    case '{':
    case '[': {
        if (++r->depth > MAX_DEPTH)
            return NULL;
        json_t *v = *r->p == '{' ? object(r) : array(r);
        r->depth--;
        return v;
    }
    case '"': {
        const char *s;
        size_t n;
        return string(r, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
    }
    case 't': return literal(r, "true", 4) ? json_true() : NULL;
    case 'f': return literal(r, "false", 5) ? json_false() : NULL;
    case 'n': return literal(r, "null", 4) ? json_null() : NULL;
    default: return number(r);
    }
}

json_t *tb__json_fast_loadb(const char *buf, size_t len)
{
    if (buf == NULL)
        return NULL;
    reader r = {.p = (const unsigned char *)buf, .end = (const unsigned char *)buf + len};
    ws(&r);
    json_t *v = value(&r);
    if (v) {
        ws(&r);
        if (r.p != r.end) { /* something after the value */
            json_decref(v);
            v = NULL;
        }
    }
    free(r.scratch);
    return v;
}

/* ---------------------------------------------------------------- reloading ---- */

static bool revalue(reader *r, json_t *old);

/* A node the reload may change: nobody else holds it. */
static inline bool unshared(const json_t *j)
{
    return j->refcount == 1;
}

static bool reobject(reader *r, json_t *o)
{
    r->p++; /* { */
    void *it = json_object_iter(o);
    if (closes_at_once(r, '}'))
        return it == NULL;
    for (;;) {
        if (it == NULL || r->p >= r->end || *r->p != '"')
            return false;
        const char *k;
        size_t kn;
        if (!string(r, &k, &kn))
            return false;
        /* the same key in the same place: old has no duplicates, so neither has the text */
        if (json_object_iter_key_len(it) != kn || memcmp(json_object_iter_key(it), k, kn) != 0)
            return false;
        ws(r);
        if (r->p >= r->end || *r->p != ':')
            return false;
        r->p++;
        ws(r);
        if (!revalue(r, json_object_iter_value(it)))
            return false;
        it = json_object_iter_next(o, it);
        int more = next_member(r, '}');
        if (more <= 0)
            return more == 0 && it == NULL;
    }
}

static bool rearray(reader *r, json_t *a)
{
    r->p++; /* [ */
    size_t n = json_array_size(a), i = 0;
    if (closes_at_once(r, ']'))
        return n == 0;
    for (;;) {
        if (i >= n || !revalue(r, json_array_get(a, i)))
            return false;
        i++;
        int more = next_member(r, ']');
        if (more <= 0)
            return more == 0 && i == n;
    }
}

/* The value at r written into old, which must have its shape. */
static bool revalue(reader *r, json_t *old)
{
    if (r->p >= r->end)
        return false;
    switch (*r->p) {
    case '{':
    case '[': {
        bool obj = *r->p == '{';
        if (!unshared(old) || (obj ? !json_is_object(old) : !json_is_array(old)) ||
            ++r->depth > MAX_DEPTH)
            return false;
        bool ok = obj ? reobject(r, old) : rearray(r, old);
        r->depth--;
        return ok;
    }
    case '"': {
        const char *s;
        size_t n;
        return json_is_string(old) && unshared(old) && string(r, &s, &n) &&
               json_string_setn_nocheck(old, s, n) == 0;
    }
    /* jansson's true, false and null are shared constants: only the same one fits */
    case 't': return json_is_true(old) && literal(r, "true", 4);
    case 'f': return json_is_false(old) && literal(r, "false", 5);
    case 'n': return json_is_null(old) && literal(r, "null", 4);
    default: {
        if (!unshared(old) || !json_is_number(old))
            return false;
        json_t *v = number(r);
        bool ok = false;
        if (v && json_is_integer(v) && json_is_integer(old))
            ok = json_integer_set(old, json_integer_value(v)) == 0;
        else if (v && json_is_real(v) && json_is_real(old))
            ok = json_real_set(old, json_real_value(v)) == 0;
        json_decref(v);
        return ok;
    }
    }
}

bool tb__json_fast_reload(json_t *old, const char *buf, size_t len)
{
    if (old == NULL || buf == NULL)
        return false;
    reader r = {.p = (const unsigned char *)buf, .end = (const unsigned char *)buf + len};
    ws(&r);
    bool ok = (json_is_object(old) || json_is_array(old)) && revalue(&r, old);
    if (ok) {
        ws(&r);
        ok = r.p == r.end;
    }
    free(r.scratch);
    return ok;
}

/* ---------------------------------------------------------------- writing ---- */

enum { DUMP_INVALID = 1, DUMP_DEEP = 2 };

static bool put_string(tb_buf *b, const char *s, size_t n, int *why)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    if (tb_buf_reserve(b, n + 2) != 0)
        return false;
    tb_buf_putc(b, '"');
    const unsigned char *run = p;
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = tb__utf8_seq(p, end);
            if (k == 0) {
                *why = DUMP_INVALID; /* not JSON text (jansson would refuse it too) */
                return false;
            }
            p += k;
            continue;
        }
        tb_buf_append(b, run, (size_t)(p - run));
        char esc[7] = {'\\', 0};
        size_t en = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            en = 6;
        }
        tb_buf_append(b, esc, en);
        run = ++p;
    }
    tb_buf_append(b, run, (size_t)(p - run));
    tb_buf_putc(b, '"');
    return true;
}

/* jansson's jsonp_dtostr with precision 17: %.17g, a ".0" when it would read as an integer, no
 * '+' and no leading zeros in the exponent. */
static bool put_real(tb_buf *b, double d, int *why)
{
    if (!isfinite(d)) {
        *why = DUMP_INVALID;
        return false;
    }
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, "%.17g", d);
    if (n < 0 || (size_t)n + 3 >= sizeof tmp) {
        *why = DUMP_DEEP; /* (cannot happen with %.17g: jansson decides) */
        return false;
    }
    size_t len = (size_t)n;
    for (size_t i = 0; i < len; i++)
        if (tmp[i] == ',')
            tmp[i] = '.'; /* a locale's decimal comma */
    if (!memchr(tmp, '.', len) && !memchr(tmp, 'e', len)) {
        tmp[len++] = '.';
        tmp[len++] = '0';
        tmp[len] = '\0';
    }
    char *e = memchr(tmp, 'e', len);
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - tmp) + 1);
            len -= (size_t)(end - start);
        }
    }
    tb_buf_append(b, tmp, len);
    return true;
}

static bool put_value(tb_buf *b, const json_t *j, int depth, int *why)
{
    if (depth > MAX_DEPTH) {
        *why = DUMP_DEEP; /* deep, or a cycle: jansson detects those */
        return false;
    }
    switch (json_typeof(j)) {
    case JSON_NULL: tb_buf_append(b, "null", 4); return true;
    case JSON_TRUE: tb_buf_append(b, "true", 4); return true;
    case JSON_FALSE: tb_buf_append(b, "false", 5); return true;
    case JSON_INTEGER: tb_buf_json_int(b, (int64_t)json_integer_value(j)); return true;
    case JSON_REAL: return put_real(b, json_real_value(j), why);
    case JSON_STRING: return put_string(b, json_string_value(j), json_string_length(j), why);
    case JSON_ARRAY: {
        tb_buf_putc(b, '[');
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n; i++) {
            if (i)
                tb_buf_putc(b, ',');
            if (!put_value(b, json_array_get(j, i), depth + 1, why))
                return false;
        }
        tb_buf_putc(b, ']');
        return true;
    }
    case JSON_OBJECT: {
        tb_buf_putc(b, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            if (!first)
                tb_buf_putc(b, ',');
            first = false;
            if (!put_string(b, json_object_iter_key(it), json_object_iter_key_len(it), why))
                return false;
            tb_buf_putc(b, ':');
            if (!put_value(b, json_object_iter_value(it), depth + 1, why))
                return false;
        }
        tb_buf_putc(b, '}');
        return true;
    }
    }
    return false;
}

int tb__json_fast_dump(tb_buf *b, const json_t *j)
{
    size_t mark = b->len;
    int why = 0;
    if (j && put_value(b, j, 0, &why) && !b->oom)
        return 0;
    if (b->len > mark)
        b->len = mark;
    return b->oom ? TB_ENOMEM : why == DUMP_INVALID || !j ? TB_EINVAL : 1;
}
