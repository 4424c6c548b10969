#include "tablium/buf.h"

#include "tablium/error.h"

#include "../json/tb_utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tb_buf_deinit(tb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void tb_buf_reset(tb_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data)
        b->data[0] = '\0';
}

int tb_buf_reserve(tb_buf *b, size_t n)
{
    if (b->oom)
        return TB_ENOMEM;
    if (b->cap - b->len > n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return TB_ENOMEM;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return TB_ENOMEM;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void tb_buf_append(tb_buf *b, const void *p, size_t n)
{
    if (tb_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tb_buf_puts(tb_buf *b, const char *s)
{
    tb_buf_append(b, s, strlen(s));
}

void tb_buf_putc(tb_buf *b, char c)
{
    if (tb_buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void tb_buf_printf(tb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[128];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        tb_buf_append(b, small, (size_t)n);
        return;
    }
    if (tb_buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* True when none of the 8 bytes in x needs escaping or a UTF-8 check: no byte below 0x20,
 * none from 0x80, no '"', no '\\'. (The usual SWAR tests: a false "no" only costs the byte
 * loop, and there is no false "yes".) */
static inline bool plain8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
    uint64_t bad = x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs);
    return (bad & highs) == 0;
}

void tb_buf_json_string(tb_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX. */
    if (n > (SIZE_MAX - 2) / 6 || tb_buf_reserve(b, n * 6 + 2))
        return;
    char *o = b->data + b->len;
    *o++ = '"';
    const unsigned char *end = (const unsigned char *)s + n;
    for (size_t i = 0; i < n; i++) {
        /* Eight bytes at a time while none needs a look (the output has room: 6 per byte). */
        while (n - i >= 8) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            if (!plain8(x))
                break;
            memcpy(o, &x, 8);
            o += 8;
            i += 8;
        }
        if (i == n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (c >= 0x80) {
            /* JSON text is UTF-8: a byte that starts no valid sequence becomes U+FFFD, so a
             * response, error or log line stays valid JSON whatever bytes it quotes. */
            size_t k = tb__utf8_seq((const unsigned char *)s + i, end);
            if (k) {
                memcpy(o, s + i, k);
                o += k;
                i += k - 1;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void tb_buf_json_int(tb_buf *b, int64_t v)
{
    /* digits from the end, no printf: every generated writer and event passes here */
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    tb_buf_append(b, p, (size_t)(e - p));
}

void tb_buf_json_double(tb_buf *b, double v)
{
    char tmp[32];
    if (!isfinite(v)) { /* JSON has no NaN/Infinity */
        tb_buf_puts(b, "null");
        return;
    }
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',')
            tmp[i] = '.'; /* a locale's decimal comma (printf and strtod both follow it) */
    /* Keep it a JSON real so it reads back as a number of the same kind. */
    if (!strpbrk(tmp, ".eEn"))
        tmp[n++] = '.', tmp[n++] = '0', tmp[n] = '\0';
    tb_buf_append(b, tmp, (size_t)n);
}

char *tb_buf_steal(tb_buf *b, size_t *len)
{
    char *d = b->data;
    if (len)
        *len = b->len;
    if (!d)
        d = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void tb_buf_base64(tb_buf *b, const void *data, size_t n, bool url)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                      safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *A = url ? safe : std;
    const unsigned char *p = data;
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3 || tb_buf_reserve(b, (n + 2) / 3 * 4 + 1) != 0) {
        b->oom = true;
        return;
    }
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = A[(v >> 6) & 63];
        *o++ = A[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        if (i + 1 < n)
            *o++ = A[(v >> 6) & 63];
        else if (!url)
            *o++ = '=';
        if (!url)
            *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}
