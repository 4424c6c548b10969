#include "tablium/log.h"
#include "tablium/trace.h"

#include "../json/tb_utf8.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = TB_LOG_INFO;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void log_read_env(void)
{
    const char *v = getenv("TB_LOG_LEVEL");
    if (!v || !*v)
        return;
    static const struct {
        const char *name;
        tb_log_level level;
    } names[] = {
        {"debug", TB_LOG_DEBUG},  {"info", TB_LOG_INFO},   {"warn", TB_LOG_WARN},
        {"warning", TB_LOG_WARN}, {"error", TB_LOG_ERROR}, {"off", TB_LOG_OFF},
        {"none", TB_LOG_OFF},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(v, names[i].name) == 0) {
            atomic_store_explicit(&log_level, (int)names[i].level, memory_order_relaxed);
            return;
        }
    }
}

int tb_log_enabled(tb_log_level level)
{
    pthread_once(&log_once, log_read_env);
    return level < TB_LOG_OFF &&
           (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void tb_log_set_level(tb_log_level level)
{
    /* Run the env read first so it can never overwrite the explicit choice later. */
    pthread_once(&log_once, log_read_env);
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

/* A line builder on the caller's stack that moves to the heap only for unusually long lines, so
 * the access log costs no malloc. */
typedef struct line {
    char *p;
    size_t len, cap;
    bool heap, oom;
    char stack[1024];
} line;

static void line_reserve(line *l, size_t n)
{
    if (l->oom || l->cap - l->len >= n)
        return;
    size_t cap = l->cap * 2;
    while (cap - l->len < n)
        cap *= 2;
    char *np = l->heap ? realloc(l->p, cap) : malloc(cap);
    if (!np) {
        l->oom = true;
        return;
    }
    if (!l->heap)
        memcpy(np, l->p, l->len);
    l->p = np;
    l->cap = cap;
    l->heap = true;
}

static void line_put(line *l, const char *s, size_t n)
{
    line_reserve(l, n);
    if (l->oom)
        return;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void line_puts(line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

static void line_json_string(line *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    line_put(l, "\"", 1);
    size_t run = 0; /* bytes that need no escape, copied in one go */
    const unsigned char *end = (const unsigned char *)s + n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
            continue;
        if (c >= 0x80) {
            /* a log line is JSON text: invalid UTF-8 (a raw path, a peer's bytes) becomes U+FFFD */
            size_t k = tb__utf8_seq((const unsigned char *)s + i, end);
            if (k) {
                i += k - 1;
                continue;
            }
            line_put(l, s + run, i - run);
            run = i + 1;
            line_put(l, "\xEF\xBF\xBD", 3);
            continue;
        }
        line_put(l, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0';
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            k = 6;
        }
        line_put(l, esc, k);
    }
    line_put(l, s + run, n - run);
    line_put(l, "\"", 1);
}

static const char *level_name(tb_log_level level)
{
    switch (level) {
    case TB_LOG_DEBUG: return "debug";
    case TB_LOG_INFO: return "info";
    case TB_LOG_WARN: return "warn";
    case TB_LOG_ERROR: return "error";
    default: return "off";
    }
}

static void log_write(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void log_v(tb_log_level level, const tb_ctx *ctx, const char *fields, const char *fmt,
                  va_list ap)
{
    if (!tb_log_enabled(level))
        return;
    line l;
    l.p = l.stack;
    l.len = 0;
    l.cap = sizeof l.stack;
    l.heap = l.oom = false;

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char tsbuf[64];
    int tn = snprintf(tsbuf, sizeof tsbuf, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, ts.tv_nsec / 1000000);
    line_put(&l, tsbuf, (size_t)tn);
    line_puts(&l, ",\"level\":\"");
    line_puts(&l, level_name(level));
    line_puts(&l, "\"");
    if (ctx && ctx->service) {
        line_puts(&l, ",\"service\":");
        line_json_string(&l, ctx->service, strlen(ctx->service));
    }
    if (ctx && ctx->request_id) {
        line_puts(&l, ",\"requestId\":");
        line_json_string(&l, ctx->request_id, strlen(ctx->request_id));
    }
    /* the trace this line belongs to: the current span, else a traceparent the ctx carries */
    if (ctx && (ctx->span || ctx->traceparent)) {
        tb_span_context sc;
        bool ok = ctx->span ? tb_span_context_valid(&ctx->span->sc)
                            : tb_traceparent_decode(ctx->traceparent, strlen(ctx->traceparent), &sc);
        if (ok) {
            const tb_span_context *p = ctx->span ? &ctx->span->sc : &sc;
            char hex[33];
            tb_trace_hex(p->trace_id, 16, hex);
            line_puts(&l, ",\"traceId\":\"");
            line_put(&l, hex, 32);
            tb_trace_hex(p->span_id, 8, hex);
            line_puts(&l, "\",\"spanId\":\"");
            line_put(&l, hex, 16);
            line_puts(&l, "\"");
        }
    }
    if (fields && *fields) {
        line_puts(&l, ",");
        line_puts(&l, fields);
    }

    char small[512];
    va_list ap2;
    va_copy(ap2, ap);
    int mn = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    line_puts(&l, ",\"msg\":");
    if (mn < 0) {
        line_json_string(&l, "", 0);
    } else if ((size_t)mn < sizeof small) {
        line_json_string(&l, small, (size_t)mn);
    } else {
        char *big = malloc((size_t)mn + 1);
        if (big) {
            vsnprintf(big, (size_t)mn + 1, fmt, ap);
            line_json_string(&l, big, (size_t)mn);
            free(big);
        } else {
            line_json_string(&l, small, sizeof small - 1);
        }
    }
    line_puts(&l, "}\n");

    if (!l.oom)
        log_write(l.p, l.len);
    if (l.heap)
        free(l.p);
}

void tb_log(tb_log_level level, const tb_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(level, ctx, NULL, fmt, ap);
    va_end(ap);
}

void tb_log_fields(tb_log_level level, const tb_ctx *ctx, const char *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(level, ctx, fields, fmt, ap);
    va_end(ap);
}
