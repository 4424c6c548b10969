/* W3C Trace Context (level 2): traceparent and tracestate, and random trace and span ids. */
#include "tablium/trace.h"
#include "../core/tb_forkgen.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

static const char hexdig[] = "0123456789abcdef";

/* Lowercase hex digit value, -1 otherwise (uppercase is invalid in traceparent). */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* n bytes from 2n lowercase hex digits; false on any other character. */
static bool unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool tb_span_context_valid(const tb_span_context *sc)
{
    return sc && !all_zero(sc->trace_id, sizeof sc->trace_id) &&
           !all_zero(sc->span_id, sizeof sc->span_id);
}

bool tb_traceparent_decode(const char *s, size_t len, tb_span_context *out)
{
    tb_span_context sc;
    memset(out, 0, sizeof *out);
    if (!s)
        return false;
    while (len && is_ows(s[0]))
        s++, len--;
    while (len && is_ows(s[len - 1]))
        len--;
    if (len < TB_TRACEPARENT_LEN)
        return false;
    uint8_t version, flags;
    if (!unhex(s, &version, 1) || version == 0xff)
        return false;
    /* version 00 is exactly 55 characters; a later version may append "-..." that we skip */
    if (version == 0 ? len != TB_TRACEPARENT_LEN
                     : len > TB_TRACEPARENT_LEN && s[TB_TRACEPARENT_LEN] != '-')
        return false;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    if (!unhex(s + 3, sc.trace_id, 16) || !unhex(s + 36, sc.span_id, 8) ||
        !unhex(s + 53, &flags, 1))
        return false;
    if (!tb_span_context_valid(&sc))
        return false;
    sc.flags = flags & (TB_TRACE_FLAG_SAMPLED | TB_TRACE_FLAG_RANDOM);
    *out = sc;
    return true;
}

void tb_trace_hex(const uint8_t *id, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[id[i] >> 4];
        out[2 * i + 1] = hexdig[id[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t tb_traceparent_encode(const tb_span_context *sc, char out[TB_TRACEPARENT_LEN + 1])
{
    uint8_t flags = sc->flags & (TB_TRACE_FLAG_SAMPLED | TB_TRACE_FLAG_RANDOM);
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    tb_trace_hex(sc->trace_id, 16, out + 3);
    out[35] = '-';
    tb_trace_hex(sc->span_id, 8, out + 36);
    out[52] = '-';
    tb_trace_hex(&flags, 1, out + 53);
    return TB_TRACEPARENT_LEN;
}

/* ---- tracestate ---- */

#define TS_MAX_MEMBERS 32
#define TS_KEY_MAX 256
#define TS_VALUE_MAX 256
#define TS_TENANT_MAX 241
#define TS_SYSTEM_MAX 14

typedef struct ts_member {
    const char *p; /* "key=value", OWS already trimmed */
    size_t len;
    size_t key_len;
    bool keep;
} ts_member;

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/' || c == '@';
}

/* Key: [a-z0-9][a-z0-9_*\/@-]{0,255}. Level 2 folded the tenant@system form into the simple
 * key: '@' is one more key character (the harness keeps "foo@", "foo@@bar", "t@" + 15 'v'). */
static bool key_valid(const char *k, size_t n)
{
    if (n == 0 || n > TS_KEY_MAX || !((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!key_char(k[i]))
            return false;
    return true;
}

/* Value: 1..256 of 0x20-0x7e but ',' and '=', the last not a space. */
static bool value_valid(const char *v, size_t n)
{
    if (n == 0 || n > TS_VALUE_MAX || v[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return false;
    }
    return true;
}

/* Splits one header value into members[*n..]; false when the list is invalid (a bad member,
 * or more than 32). */
static bool split_members(const char *s, ts_member *m, size_t *n)
{
    if (!s)
        return true;
    for (;;) {
        const char *end = s;
        while (*end && *end != ',')
            end++;
        const char *b = s, *e = end;
        while (b < e && is_ows(*b))
            b++;
        while (e > b && is_ows(e[-1]))
            e--;
        if (b < e) {
            if (*n == TS_MAX_MEMBERS)
                return false;
            const char *eq = memchr(b, '=', (size_t)(e - b));
            if (!eq)
                return false;
            size_t klen = (size_t)(eq - b);
            if (!key_valid(b, klen) || !value_valid(eq + 1, (size_t)(e - eq - 1)))
                return false;
            m[*n] = (ts_member){b, (size_t)(e - b), klen, true};
            (*n)++;
        }
        if (!*end)
            return true;
        s = end + 1;
    }
}

size_t tb_tracestate_normalize(const char *const *vals, size_t n, char *out, size_t cap)
{
    ts_member m[TS_MAX_MEMBERS];
    size_t nm = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!split_members(vals ? vals[i] : NULL, m, &nm))
            return 0;
    if (nm == 0 || cap == 0)
        return 0;

    /* Duplicate keys: the first one stands (the spec lets us drop the others). */
    size_t total = 0, kept = 0;
    for (size_t i = 0; i < nm; i++) {
        for (size_t j = 0; j < i && m[i].keep; j++)
            if (m[j].keep && m[j].key_len == m[i].key_len && !memcmp(m[j].p, m[i].p, m[i].key_len))
                m[i].keep = false;
        if (m[i].keep)
            total += m[i].len + (kept++ ? 1 : 0);
    }

    /* Too long for out: drop members from the end, those over 128 characters first (the
     * spec's order), until it fits. */
    for (int pass = 0; pass < 2 && total > cap - 1; pass++) {
        for (size_t i = nm; i-- > 0 && total > cap - 1;) {
            if (!m[i].keep || (pass == 0 && m[i].len <= 128))
                continue;
            m[i].keep = false;
            total -= m[i].len + (--kept ? 1 : 0);
        }
    }

    size_t o = 0;
    for (size_t i = 0; i < nm; i++) {
        if (!m[i].keep)
            continue;
        if (o)
            out[o++] = ',';
        memcpy(out + o, m[i].p, m[i].len);
        o += m[i].len;
    }
    out[o] = '\0';
    return o;
}

/* ---- ids ---- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* All 16 bytes are random, so the level 2 random flag (right-most 7 bytes) always holds. */
void tb_trace_id_new(uint8_t id[16])
{
    do {
        put64(id, tb__rng_next());
        put64(id + 8, tb__rng_next());
    } while (all_zero(id, 16));
}

void tb_span_id_new(uint8_t id[8])
{
    do
        put64(id, tb__rng_next());
    while (all_zero(id, 8));
}
