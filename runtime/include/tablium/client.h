/*
 * tablium: the HTTP client (libcurl) behind generated service clients.
 *
 * One tb_client per upstream service. It keeps connections alive across calls and is safe to use
 * from many threads at once (a pool of curl handles). Process-wide libcurl initialisation is
 * explicit: call tb_global_init() once from main() before starting threads (tb_client_new calls
 * it too, but that is only safe while the process has one thread).
 */
#ifndef TABLIUM_CLIENT_H
#define TABLIUM_CLIENT_H

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/ctx.h"
#include "tablium/error.h"

#include <stdbool.h>
#include <stddef.h>

/** curl_global_init once per process (pthread_once). 0 or TB_EIO. */
int tb_global_init(void);

/** Base URL of service `name`: $<NAME>_SERVICE_URL (name upper-cased, '-' -> '_'), else
 *  `fallback`, else "http://127.0.0.1:8080". Trailing '/' removed. Caller owns; free(). */
char *tb_service_url(const char *name, const char *fallback);

typedef struct tb_client tb_client;

/** One header line of a call, "Name: value". */
typedef struct tb_client_call {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* path and query, already percent-encoded, starting with '/' */
    const char *body;         /* JSON body or NULL */
    size_t body_len;
    const char *headers[16];  /* extra "Name: value" lines (borrowed) */
    size_t n_headers;
} tb_client_call;

/** Adds a "Name: value" header line built in `a` (an empty value is sent as an empty header).
 *  0, TB_ENOMEM or TB_EINVAL (too many, name not an HTTP token, CR/LF in value). */
int tb_client_call_header(tb_client_call *call, tb_arena *a, const char *name, const char *value);

/** A response. Body and headers live in the arena of the ctx passed to tb_client_send. When the
 *  call fails (nonzero rc) status is 0, body "" and there are no headers. */
typedef struct tb_client_res {
    int status;
    char *body;       /* NUL-terminated; "" when empty */
    size_t body_len;
    const char *(*headers)[2]; /* name, value pairs (names as sent) */
    size_t n_headers;
    double elapsed_ms; /* time spent in the transfer itself (not in hooks) */
} tb_client_res;

/** Response header by case-insensitive name, or NULL. */
const char *tb_client_res_header(const tb_client_res *res, const char *name);

/**
 * Client middleware: runs around every call, in registration order (after in reverse). Auth
 * (service tokens), tracing, retries and circuit breaking plug in here. Thread-safe `self`.
 * `after` runs for exactly the hooks whose `before` ran and returned 0 (or is NULL): when a
 * hook refuses, the hooks before it see the refusal as rc, the refuser and later hooks do not.
 */
typedef struct tb_client_hook {
    const char *name;
    /** Before sending: may add headers; nonzero refuses the call with that TB_E... code. */
    int (*before)(void *self, tb_ctx *ctx, tb_client_call *call);
    /** After: rc is the transport result (0 when a response arrived). */
    void (*after)(void *self, tb_ctx *ctx, const tb_client_call *call, int rc,
                  const tb_client_res *res);
    void *self;
} tb_client_hook;

typedef struct tb_client_opts {
    long connect_timeout_ms; /* default 5000; 0: libcurl's 300 s; negative: TB_EINVAL */
    long timeout_ms;         /* whole call, default 5000; 0: none; negative: TB_EINVAL */
    size_t max_response;     /* bytes; longer bodies fail with TB_ETOOBIG. Default 8 MiB */
    const tb_client_hook *hooks; /* borrowed array, may be NULL */
    size_t n_hooks;
    const char *user_agent;  /* default "tablium/<version>" */
} tb_client_opts;

#define TB_CLIENT_OPTS_INIT {5000, 5000, 8u << 20, NULL, 0, NULL}

/** A client for base_url ("http://host:port", copied; http:// or https:// only; trailing '/'
 *  removed). opts may be NULL for defaults; opts is copied, opts->hooks stays borrowed.
 *  Caller owns; free with tb_client_free. NULL on failure (err says why). */
tb_client *tb_client_new(const char *base_url, const tb_client_opts *opts, tb_error *err);
/** Closes connections, frees. NULL-safe. No call may be running. */
void tb_client_free(tb_client *c);
const char *tb_client_base_url(const tb_client *c);

/**
 * Sends one call and waits for the response. Adds Accept: application/json, Content-Type:
 * application/json when there is a body, and X-Request-ID: ctx->request_id (a fresh id when
 * ctx->request_id is NULL; it is then stored in ctx->request_id, in ctx->arena, so the caller can
 * log it). A line in call->headers with the same name replaces the default. Redirects are not
 * followed. Thread-safe.
 * Returns 0 when a response arrived (whatever its status), or TB_ECONN (could not connect or the
 * connection broke), TB_ETIMEDOUT, TB_ETOOBIG (response over max_response), TB_ENOMEM, TB_EINVAL
 * (bad call: method not a token, path not starting with '/', CR/LF in a header line or in
 * ctx->request_id), TB_EIO (any other transport failure), or a hook's refusal; err (may be NULL)
 * says what happened, naming the method and URL.
 */
int tb_client_send(tb_client *c, tb_ctx *ctx, tb_client_call *call, tb_client_res *res,
                   tb_error *err);

/** Appends s[0..len) percent-encoded for a path segment (unreserved kept) or, with query=true,
 *  for a query component. Both keep only RFC 3986 unreserved characters and write %XX
 *  (uppercase) for every other byte, so '/', '&', '=', '+' and '#' never pass. 0 or TB_ENOMEM. */
int tb_url_encode(tb_buf *b, const char *s, size_t len, bool query);

#endif
