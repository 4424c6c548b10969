/*
 * tablium: the per-request context a handler (and a client call) works in.
 *
 * The server fills one tb_ctx per request and hands it to the handler; its arena is reset when
 * the response has been sent. Code that calls services outside a request (tests, tools, the
 * demo) makes its own with tb_ctx_init.
 */
#ifndef TABLIUM_CTX_H
#define TABLIUM_CTX_H

#include "tablium/arena.h"

#include <jansson.h>
#include <stdint.h>

/** Header that carries a call's remaining budget downstream, in whole milliseconds (decimal).
 *  A server that reads it sets ctx->deadline_ms = tb_clock_ms() + value. */
#define TB_DEADLINE_HEADER "X-Request-Timeout-Ms"

typedef struct tb_ctx {
    /** X-Request-ID of the request (taken from the caller or generated). Borrowed: valid
     *  during the request. Propagated on every outgoing client call. */
    const char *request_id;
    /** Per-request memory; everything a handler allocates here is released after the response
     *  has been sent. */
    tb_arena *arena;
    /** Verified JWT claims of the caller; NULL when the operation needs no auth (filled by the
     *  auth middleware). Borrowed. */
    const json_t *claims;
    /** The W3C traceparent of the work this context does (on a server: of its server span, so
     *  events published from the handler continue it), or NULL. Borrowed. */
    const char *traceparent;
    /** Name of the service serving the request ("wallet"), for logs. */
    const char *service;
    /** The service's state, as returned by its <service>_service_init. */
    void *state;
    /** The generated <service>_deps struct: one client per upstream service. */
    void *deps;
    /** TB_CTX_* flags set by the runtime. */
    unsigned flags;
    /** When the work on this request must be done: CLOCK_MONOTONIC milliseconds (tb_clock_ms(),
     *  below), 0 for none. Outgoing client calls get at most the time left and
     *  send it on in TB_DEADLINE_HEADER; a call made after it has passed fails fast with
     *  TB_ETIMEDOUT. Monotonic, so a wall-clock step never moves it. */
    int64_t deadline_ms;
    /** The current span (tablium/trace.h): the server span of a request, the consumer span of
     *  an event; NULL outside them. Spans started with tb_span_start(ctx, ...) and outgoing
     *  calls and events are its children. Borrowed. */
    struct tb_span *span;
    /** The HTTP request being served (tablium/http.h: tb_ctx_header reads its headers), NULL
     *  outside a request. Borrowed. */
    const struct tb_http_req *http;
} tb_ctx;

/** Generated code validates each response against its spec before sending it. */
#define TB_CTX_VALIDATE_RESPONSES 0x1u

/** A context for calls made outside a request: `a` is used for response memory (borrowed, must
 *  outlive the calls), request_id may be NULL (each call then gets a fresh one). */
void tb_ctx_init(tb_ctx *ctx, tb_arena *a, const char *request_id);

/** Now on CLOCK_MONOTONIC, in milliseconds: the clock of tb_ctx.deadline_ms. */
int64_t tb_clock_ms(void);
/** The deadline `ms` milliseconds from now (tb_clock_ms() + ms), for tb_ctx.deadline_ms. */
int64_t tb_deadline_in(long ms);
/** Milliseconds left before ctx->deadline_ms (0 once it has passed), or -1 when ctx has none. */
long tb_deadline_left_ms(const tb_ctx *ctx);

/** The process's generated <service>_deps (its clients of other services): the generated main
 *  sets it before <service>_service_init, so event handlers (whose ctx the bus makes) find it
 *  in ctx->deps as request handlers do. Borrowed; NULL when the service has no upstreams. */
void tb_service_set_deps(void *deps);
void *tb_service_deps(void);

/** A new request id (32 lowercase hex digits, NUL-terminated) into out[33]. Thread-safe. */
void tb_request_id_new(char out[33]);

#endif
