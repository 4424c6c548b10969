/*
 * multipart/form-data (RFC 7578 over RFC 2046's multipart syntax): the parts of a request body,
 * and the writer the generated clients use.
 *
 * Parsing is strict where ambiguity would let two readers disagree: the boundary must be
 * declared (1..70 characters), every part needs a Content-Disposition of form-data with a name,
 * the body must end with the close delimiter, and part headers are bounded. Part data is
 * borrowed from the request body (no copy); names, file names and types are copied into the
 * arena.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define MAX_PARTS 1024
#define MAX_PART_HEADERS 8192

/* The value of parameter `name` in a header value (`form-data; name="x"; filename="y"`), quoted
 * or not, unescaped (\" and \\ in a quoted string); NULL when absent. */
static char *param_of(tb_arena *a, const char *v, size_t n, const char *name)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i < n) {
        /* to the next ';' outside quotes */
        bool q = false;
        while (i < n && (q || v[i] != ';')) {
            if (v[i] == '"')
                q = !q;
            else if (q && v[i] == '\\')
                i++;
            i++;
        }
        if (i >= n)
            break;
        i++; /* past ';' */
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (i + nl < n && strncasecmp(v + i, name, nl) == 0 && v[i + nl] == '=') {
            i += nl + 1;
            if (i < n && v[i] == '"') {
                i++;
                char *out = tb_arena_alloc(a, n - i + 1);
                if (!out)
                    return NULL;
                size_t o = 0;
                while (i < n && v[i] != '"') {
                    if (v[i] == '\\' && i + 1 < n)
                        i++;
                    out[o++] = v[i++];
                }
                out[o] = '\0';
                return out;
            }
            size_t s = i;
            while (i < n && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
                i++;
            return tb_arena_strndup(a, v + s, i - s);
        }
    }
    return NULL;
}

/* the boundary of a multipart Content-Type, or NULL */
static char *boundary_of(tb_arena *a, const char *ct)
{
    if (!ct)
        return NULL;
    char *b = param_of(a, ct, strlen(ct), "boundary");
    if (!b || !*b || strlen(b) > 70)
        return NULL;
    return b;
}

static const char *find(const char *h, size_t hn, const char *needle, size_t nn)
{
    return nn <= hn ? memmem(h, hn, needle, nn) : NULL;
}

int tb__multipart_parse(const char *content_type, const char *body, size_t len, tb_arena *a,
                        tb__part **out, size_t *n_out, const char **why)
{
    *out = NULL;
    *n_out = 0;
    char *b = boundary_of(a, content_type);
    if (!b) {
        *why = "the Content-Type has no boundary (1 to 70 characters)";
        return -1;
    }
    size_t bl = strlen(b);
    char *delim = tb_arena_alloc(a, bl + 5); /* CRLF "--" boundary */
    if (!delim)
        return TB_ENOMEM;
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, b, bl + 1);
    size_t dl = bl + 4;
    /* the first delimiter: at the very start, or after a preamble and CRLF */
    const char *p;
    if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0)
        p = body + dl - 2;
    else if ((p = find(body, len, delim, dl)) != NULL)
        p += dl;
    else {
        *why = "the body has no part (no delimiter line)";
        return -1;
    }
    const char *end = body + len;
    size_t cap = 8, n = 0;
    tb__part *parts = tb_arena_alloc(a, cap * sizeof *parts);
    if (!parts)
        return TB_ENOMEM;
    for (;;) {
        /* after a delimiter: "--" closes; else optional whitespace then CRLF */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            *why = "a delimiter line is not followed by CRLF";
            return -1;
        }
        p += 2;
        const char *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *h = p;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p; /* a part without headers */
        } else if (!hend || hend - p > MAX_PART_HEADERS) {
            *why = "a part's headers do not end (or pass 8 KiB)";
            return -1;
        }
        const char *data = hend == p ? p + 2 : hend + 4;
        const char *next = find(data, (size_t)(end - data), delim, dl);
        if (!next) {
            *why = "the body does not end with the close delimiter";
            return -1;
        }
        if (n == MAX_PARTS) {
            *why = "more than 1024 parts";
            return -1;
        }
        if (n == cap) {
            tb__part *np = tb_arena_alloc(a, 2 * cap * sizeof *np);
            if (!np)
                return TB_ENOMEM;
            memcpy(np, parts, n * sizeof *np);
            parts = np;
            cap *= 2;
        }
        tb__part *pt = &parts[n];
        memset(pt, 0, sizeof *pt);
        /* the part's header lines */
        for (const char *l = h; l < hend;) {
            const char *le = find(l, (size_t)(hend - l), "\r\n", 2);
            if (!le)
                le = hend;
            const char *colon = memchr(l, ':', (size_t)(le - l));
            if (colon) {
                size_t kl = (size_t)(colon - l);
                const char *v = colon + 1;
                while (v < le && (*v == ' ' || *v == '\t'))
                    v++;
                size_t vl = (size_t)(le - v);
                if (kl == 19 && strncasecmp(l, "Content-Disposition", 19) == 0) {
                    if (vl < 9 || strncasecmp(v, "form-data", 9) != 0) {
                        *why = "a part's Content-Disposition is not form-data";
                        return -1;
                    }
                    pt->name = param_of(a, v, vl, "name");
                    pt->filename = param_of(a, v, vl, "filename");
                } else if (kl == 12 && strncasecmp(l, "Content-Type", 12) == 0) {
                    pt->type = tb_arena_strndup(a, v, vl);
                }
            }
            l = le + 2;
        }
        if (!pt->name) {
            *why = "a part has no Content-Disposition: form-data; name=...";
            return -1;
        }
        pt->data = data;
        pt->len = (size_t)(next - data);
        n++;
        p = next + dl;
    }
    *out = parts;
    *n_out = n;
    return 0;
}

void tb__multipart_boundary(char out[TB__BOUNDARY_LEN + 1])
{
    unsigned char r[12];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        static unsigned long long k;
        unsigned long long x = __atomic_add_fetch(&k, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
        memcpy(r, &x, sizeof x);
        memset(r + 8, 0x5a, 4);
    }
    memcpy(out, "tablium-", 8);
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(out + 8 + 2 * i, 3, "%02x", r[i]);
}

void tb__multipart_part(tb_buf *b, const char *boundary, const char *name, const char *filename,
                        const char *type, const char *data, size_t len)
{
    tb_buf_puts(b, "--");
    tb_buf_puts(b, boundary);
    tb_buf_puts(b, "\r\nContent-Disposition: form-data; name=\"");
    /* RFC 7578 section 4.2 / WHATWG: '"' and line breaks percent-encoded in the quoted name */
    for (const char *s = name; *s; s++) {
        if (*s == '"')
            tb_buf_puts(b, "%22");
        else if (*s == '\r')
            tb_buf_puts(b, "%0D");
        else if (*s == '\n')
            tb_buf_puts(b, "%0A");
        else
            tb_buf_putc(b, *s);
    }
    tb_buf_putc(b, '"');
    if (filename) {
        tb_buf_puts(b, "; filename=\"");
        for (const char *s = filename; *s; s++) {
            if (*s == '"')
                tb_buf_puts(b, "%22");
            else if (*s == '\r' || *s == '\n')
                tb_buf_putc(b, ' ');
            else
                tb_buf_putc(b, *s);
        }
        tb_buf_putc(b, '"');
    }
    if (type) {
        tb_buf_puts(b, "\r\nContent-Type: ");
        tb_buf_puts(b, type);
    }
    tb_buf_puts(b, "\r\n\r\n");
    tb_buf_append(b, data, len);
    tb_buf_puts(b, "\r\n");
}

void tb__multipart_close(tb_buf *b, const char *boundary)
{
    tb_buf_puts(b, "--");
    tb_buf_puts(b, boundary);
    tb_buf_puts(b, "--\r\n");
}
