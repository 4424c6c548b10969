#include "tablium/api.h"
#include "tablium/http.h"

#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const method_names[TB_HTTP_N_METHODS] = {
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
};

const char *tb_http_method_name(int m)
{
    return m >= 0 && m < TB_HTTP_N_METHODS ? method_names[m] : NULL;
}

int tb_http_method_parse(const char *s, size_t len)
{
    /* Method names are case-sensitive (RFC 9110 9.1). */
    for (int m = 0; m < TB_HTTP_N_METHODS; m++) {
        if (strlen(method_names[m]) == len && memcmp(method_names[m], s, len) == 0)
            return m;
    }
    return -1;
}

const char *tb_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    }
    return "Unknown";
}

int tb_http_segment_match(tb_str seg, const tb_http_seg_piece *pc, size_t npc, tb_str *out,
                          size_t max_out)
{
    const char *p = seg.p, *end = seg.p + seg.n;
    size_t k = 0;
    /* a literal at the end is anchored there: take it off first */
    if (npc > 0 && pc[npc - 1].lit) {
        size_t ln = pc[npc - 1].n;
        if (ln > seg.n || memcmp(end - ln, pc[npc - 1].lit, ln) != 0)
            return -1;
        end -= ln;
        npc--;
    }
    for (size_t i = 0; i < npc; i++) {
        if (pc[i].lit) {
            size_t ln = pc[i].n;
            if (ln > (size_t)(end - p) || memcmp(p, pc[i].lit, ln) != 0)
                return -1;
            p += ln;
            continue;
        }
        if (p >= end || k == max_out)
            return -1;
        const char *stop = end;
        if (i + 1 < npc) { /* the next piece is a literal: its first occurrence a byte on */
            if (!pc[i + 1].lit)
                return -1;
            stop = memmem(p + 1, (size_t)(end - p - 1), pc[i + 1].lit, pc[i + 1].n);
            if (!stop)
                return -1;
        }
        out[k].p = p;
        out[k].n = (size_t)(stop - p);
        k++;
        p = stop;
    }
    return p == end ? (int)k : -1;
}

char *tb_http_pct_decode(tb_arena *a, const char *s, size_t len, bool *bad)
{
    if (bad)
        *bad = false;
    char *out = tb_arena_alloc(a, len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (len - i < 3)
                goto malformed;
            int h = tb__hexval(s[i + 1]), l = tb__hexval(s[i + 2]);
            if (h < 0 || l < 0)
                goto malformed;
            c = (char)(h << 4 | l);
            i += 2;
        }
        if (c == '\0')
            goto malformed;
        out[o++] = c;
    }
    out[o] = '\0';
    return out;

malformed:
    if (bad)
        *bad = true;
    return NULL;
}

void tb_api_error_set(tb_api_error *e, tb_ctx *ctx, const char *code, const char *fmt, ...)
{
    e->code = code;
    e->request_id = ctx ? ctx->request_id : NULL;
    e->details = NULL;
    e->n_details = 0;
    e->message = "out of memory";

    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n >= 0 && ctx && ctx->arena) {
        char *m = tb_arena_alloc(ctx->arena, (size_t)n + 1);
        if (m) {
            vsnprintf(m, (size_t)n + 1, fmt, ap);
            e->message = m;
        }
    }
    va_end(ap);
}

int tb_http_res_header(tb_http_res *res, const char *name, const char *value)
{
    if (!name || !value || res->n_headers >= TB_HTTP_MAX_RES_HEADERS)
        return TB_EINVAL;
    res->headers[res->n_headers][0] = name;
    res->headers[res->n_headers][1] = value;
    res->n_headers++;
    return 0;
}

static void put_string(tb_buf *b, const char *s)
{
    if (!s)
        s = "";
    tb_buf_json_string(b, s, strlen(s));
}

/* The error object {code, message, requestId, details, detailsOmitted}; `omitted` details were
 * dropped before e was made (tb_error's cap). */
static void write_error_object(tb_buf *b, size_t base, const tb_api_error *e, const char *code,
                               const char *message, const char *rid, size_t omitted)
{
    tb_buf_puts(b, "{\"code\":");
    put_string(b, e && e->code ? e->code : code);
    tb_buf_puts(b, ",\"message\":");
    put_string(b, e && e->message ? e->message : message);
    if (rid) {
        tb_buf_puts(b, ",\"requestId\":");
        put_string(b, rid);
    }
    if (e && e->n_details > 0 && e->details) {
        tb_buf_puts(b, ",\"details\":[");
        size_t i = 0;
        for (; i < e->n_details && i < TB_ERROR_MAX_DETAILS; i++) {
            if (b->len - base >= TB_HTTP_ERROR_DETAILS_MAX_BYTES)
                break;
            const tb_error_detail *d = &e->details[i];
            tb_buf_puts(b, i ? ",{\"path\":" : "{\"path\":");
            put_string(b, d->path);
            tb_buf_puts(b, ",\"rule\":");
            put_string(b, d->rule);
            tb_buf_puts(b, ",\"message\":");
            put_string(b, d->message);
            tb_buf_putc(b, '}');
        }
        tb_buf_putc(b, ']');
        omitted += e->n_details - i;
    }
    if (omitted) {
        tb_buf_puts(b, ",\"detailsOmitted\":");
        tb_buf_json_int(b, (int64_t)omitted);
    }
    tb_buf_putc(b, '}');
}

void tb_api_error_write(tb_buf *b, const tb_api_error *e)
{
    write_error_object(b, b->len, e, "error", "", e ? e->request_id : NULL, 0);
}

const tb_err_shape *tb_err_shape_for(const tb_err_shape *rows, size_t n, int status)
{
    const tb_err_shape *range = NULL, *dflt = NULL;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].status == status)
            return &rows[i];
        if (rows[i].status >= 1 && rows[i].status <= 5 && rows[i].status == status / 100)
            range = &rows[i];
        else if (rows[i].status == 0)
            dflt = &rows[i];
    }
    return range ? range : dflt;
}

static void member(tb_buf *b, char *sep, const char *name)
{
    tb_buf_putc(b, *sep);
    *sep = ',';
    put_string(b, name);
    tb_buf_putc(b, ':');
}

/* An error in a shape the spec declares (tb_err_shape). */
static void write_shaped(tb_buf *b, const tb_err_shape *sh, int status, const tb_api_error *e,
                         const char *rid, size_t omitted)
{
    char sep = '{';
    const char *code = e && e->code ? e->code : "error";
    const char *message = e && e->message ? e->message : tb_http_reason(status);
    bool oauth = sh->style == TB_ERR_OAUTH;
    char said[1024];
    if (oauth || (!sh->details && e && e->n_details > 0 && e->details)) {
        /* no member for the violations (or OAuth's code in the code member): the message
         * says them, and tablium's code, so that the field and the rule are not lost */
        int n = snprintf(said, sizeof said, "%s%s%s", oauth ? code : "", oauth ? ": " : "",
                         message);
        for (size_t i = 0; e && e->details && i < e->n_details && i < 3 && n > 0 &&
                           (size_t)n < sizeof said;
             i++) {
            const tb_error_detail *d = &e->details[i];
            n += snprintf(said + n, sizeof said - (size_t)n, "%s%s: %s (%s)", i ? "; " : ": ",
                          d->path ? d->path : "", d->message ? d->message : "",
                          d->rule ? d->rule : "");
        }
        if (e && e->n_details > 3 && n > 0 && (size_t)n < sizeof said)
            snprintf(said + n, sizeof said - (size_t)n, "; and %zu more", e->n_details - 3);
        message = said;
    }
    if (oauth)
        code = status == 401                   ? "invalid_client"
               : status == 503 || status == 429 ? "temporarily_unavailable"
               : status >= 500                  ? "server_error"
                                                : "invalid_request";
    if (sh->wrap) {
        tb_buf_putc(b, '{');
        put_string(b, sh->wrap);
        tb_buf_putc(b, ':');
    }
    if (sh->type) {
        member(b, &sep, sh->type);
        tb_buf_puts(b, "\"about:blank\"");
    }
    if (sh->title) {
        member(b, &sep, sh->title);
        put_string(b, tb_http_reason(status));
    }
    if (sh->status_m) {
        member(b, &sep, sh->status_m);
        tb_buf_json_int(b, status);
    }
    if (sh->code) {
        member(b, &sep, sh->code);
        if (sh->code_is_status)
            tb_buf_json_int(b, status);
        else
            put_string(b, code);
    }
    if (sh->message) {
        member(b, &sep, sh->message);
        put_string(b, message);
    }
    if (sh->request_id && rid) {
        member(b, &sep, sh->request_id);
        put_string(b, rid);
    }
    if (sh->details && e && e->n_details > 0 && e->details) {
        member(b, &sep, sh->details);
        size_t base = b->len;
        tb_buf_putc(b, '[');
        for (size_t i = 0; i < e->n_details && i < TB_ERROR_MAX_DETAILS; i++) {
            if (b->len - base >= TB_HTTP_ERROR_DETAILS_MAX_BYTES)
                break;
            const tb_error_detail *d = &e->details[i];
            if (i)
                tb_buf_putc(b, ',');
            if (sh->style == TB_ERR_PROBLEM) {
                /* RFC 9457 section 3's example: a JSON pointer as a URI fragment */
                tb_buf_puts(b, "{\"pointer\":");
                size_t n = strlen(d->path ? d->path : "");
                char small[600];
                if (n + 2 <= sizeof small) {
                    small[0] = '#';
                    memcpy(small + 1, d->path ? d->path : "", n + 1);
                    put_string(b, small);
                } else {
                    put_string(b, d->path);
                }
                tb_buf_puts(b, ",\"detail\":");
                put_string(b, d->message);
            } else {
                tb_buf_puts(b, "{\"path\":");
                put_string(b, d->path);
                tb_buf_puts(b, ",\"message\":");
                put_string(b, d->message);
            }
            tb_buf_puts(b, ",\"rule\":");
            put_string(b, d->rule);
            tb_buf_putc(b, '}');
        }
        tb_buf_putc(b, ']');
    }
    (void)omitted;
    if (sep == '{')
        tb_buf_putc(b, '{');
    tb_buf_putc(b, '}');
    if (sh->wrap)
        tb_buf_putc(b, '}');
}

/* The error envelope, or the shape the spec declares for this status. */
static int write_error(tb_http_res *res, const tb_ctx *ctx, int status, const tb_api_error *e,
                       size_t omitted)
{
    tb_buf *b = &res->body;
    tb_buf_reset(b);
    res->status = status;
    const tb_err_shape *sh = res->err_shapes
                                 ? tb_err_shape_for(res->err_shapes, res->n_err_shapes, status)
                                 : NULL;
    if (sh && sh->style != TB_ERR_ENVELOPE) {
        const char *rid = ctx && ctx->request_id ? ctx->request_id : e ? e->request_id : NULL;
        write_shaped(b, sh, status, e, rid, omitted);
        if (sh->content_type)
            tb_http_res_header(res, "Content-Type", sh->content_type);
        return b->oom ? TB_ENOMEM : 0;
    }
    tb_buf_puts(b, "{\"error\":");
    const char *rid = ctx && ctx->request_id ? ctx->request_id : e ? e->request_id : NULL;
    write_error_object(b, 0, e, "error", tb_http_reason(status), rid, omitted);
    tb_buf_putc(b, '}');
    return b->oom ? TB_ENOMEM : 0;
}

int tb_http_res_error(tb_http_res *res, const tb_ctx *ctx, int status, const tb_api_error *e)
{
    return write_error(res, ctx, status, e, 0);
}

int tb_http_res_error_from(tb_http_res *res, const tb_ctx *ctx, int status, const char *code,
                           const tb_error *err)
{
    /* The envelope is written before this returns, so the message can live on the stack. */
    char msg[384];
    tb_api_error e = {code, NULL, NULL, NULL, 0};
    size_t omitted = 0;
    if (!err) {
        e.message = tb_http_reason(status);
    } else if (err->code == TB_EVALIDATION) {
        e.code = "validation_failed";
        e.message = "the request does not match its schema";
        e.details = err->details;
        e.n_details = err->n_details;
        omitted = err->n_omitted;
    } else if (err->code == TB_EPARSE) {
        e.code = "malformed_json";
        /* tb_json_loadb's message already starts with the line and column; keep only the
         * parser's reason after them so the location is said once. */
        const char *why = err->message;
        const char *colon = strstr(why, ": ");
        if (colon && strstr(why, "line"))
            why = colon + 2;
        snprintf(msg, sizeof msg, "malformed JSON at line %d, column %d, position %ld%s%s",
                 err->line, err->column, err->position, *why ? ": " : "", why);
        e.message = msg;
    } else {
        e.message = err->message[0] ? err->message : tb_http_reason(status);
    }
    return write_error(res, ctx, status, &e, omitted);
}
