/*
 * tablium: structured logs, one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-24T10:00:00.123Z","level":"info","service":"wallet","requestId":"...",
 *    "traceId":"<32 hex>","spanId":"<16 hex>","msg":"..."}
 *
 * traceId and spanId are those of ctx->span (the request's server span, an event's consumer
 * span), else of ctx->traceparent, so every line of one request or event joins its trace.
 *
 * The level comes from TB_LOG_LEVEL (debug|info|warn|error|off, default info), read once.
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef TABLIUM_LOG_H
#define TABLIUM_LOG_H

#include "tablium/ctx.h"

typedef enum tb_log_level {
    TB_LOG_DEBUG = 0,
    TB_LOG_INFO = 1,
    TB_LOG_WARN = 2,
    TB_LOG_ERROR = 3,
    TB_LOG_OFF = 4,
} tb_log_level;

/** True when lines of `level` are written (cheap; check before building costly messages). */
int tb_log_enabled(tb_log_level level);
/** Overrides TB_LOG_LEVEL for the process. */
void tb_log_set_level(tb_log_level level);
/** Logs a message; ctx may be NULL (then no service/requestId fields). */
void tb_log(tb_log_level level, const tb_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Same, with extra fields: `fields` is a JSON object text without braces, e.g.
 *  "\"status\":200,\"ms\":0.4" (already escaped by the caller), or NULL. */
void tb_log_fields(tb_log_level level, const tb_ctx *ctx, const char *fields, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

#define tb_log_debug(ctx, ...) tb_log(TB_LOG_DEBUG, ctx, __VA_ARGS__)
#define tb_log_info(ctx, ...) tb_log(TB_LOG_INFO, ctx, __VA_ARGS__)
#define tb_log_warn(ctx, ...) tb_log(TB_LOG_WARN, ctx, __VA_ARGS__)
#define tb_log_error(ctx, ...) tb_log(TB_LOG_ERROR, ctx, __VA_ARGS__)

#endif
