/*
 * tablium: the HTTP server (libmicrohttpd) that runs generated services.
 *
 * A service is a tb_http_api (generated from its OpenAPI spec: operations, a path matcher and
 * one invoke function per operation) served by a tb_server. The runtime owns transport and
 * envelope; the generated invoke functions own parameter parsing, body validation, the call to
 * the handler and response serialization.
 *
 * Every response is JSON in the standard envelope:
 *   success  {"data": ...}
 *   failure  {"error": {"code", "message", "requestId", "details": [{"path", "rule", "message"}]}}
 * and carries X-Request-ID (taken from the request, or generated).
 *
 * Errors the runtime answers by itself: unknown path 404 (code "not_found"), wrong method 405
 * with Allow ("method_not_allowed"), body over the limit 413 ("payload_too_large", decided from
 * Content-Length or while reading, never buffering past the limit), wrong content type 415
 * ("unsupported_media_type"), malformed JSON 400 ("malformed_json", message with line/column/
 * position), handler failure 500 ("internal", no internals in the message).
 */
#ifndef TABLIUM_HTTP_H
#define TABLIUM_HTTP_H

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/ctx.h"
#include "tablium/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- methods ---- */

typedef enum tb_http_method {
    TB_HTTP_GET = 0,
    TB_HTTP_PUT,
    TB_HTTP_POST,
    TB_HTTP_DELETE,
    TB_HTTP_OPTIONS,
    TB_HTTP_HEAD,
    TB_HTTP_PATCH,
    TB_HTTP_TRACE,
    TB_HTTP_N_METHODS
} tb_http_method;

/** "GET" ... ; NULL outside the enum. */
const char *tb_http_method_name(int m);
/** The method of s[0..len), or -1 when unknown. */
int tb_http_method_parse(const char *s, size_t len);
/** Reason phrase of a status ("Not Found"); "Unknown" when it does not know it. */
const char *tb_http_reason(int status);

/** A borrowed byte range. */
typedef struct tb_str {
    const char *p;
    size_t n;
} tb_str;

#define TB_HTTP_MAX_PATH_PARAMS 16

/** One piece of a path segment template that mixes literals and parameters
 *  (`{stem}.{ext}`, `{name}:cancel`): a literal (lit, n) or, with lit NULL, a parameter. */
typedef struct tb_http_seg_piece {
    const char *lit;
    size_t n;
} tb_http_seg_piece;

/**
 * Matches one raw path segment against such a template (what the generated matchers call).
 * Each parameter takes at least one byte and ends at the first occurrence of the literal after
 * it (path-to-regexp's lazy rule); when the template ends with a literal, the segment must end
 * with it and the last parameter runs up to it. Two parameters never stand side by side (the
 * generator refuses that template). Linear in the segment: no backtracking.
 * Writes the parameters, in order, to out[0..max_out) and returns how many; -1 when the segment
 * does not match or has more parameters than max_out.
 */
int tb_http_segment_match(tb_str seg, const tb_http_seg_piece *pieces, size_t n_pieces,
                          tb_str *out, size_t max_out);

/* ---- the request as the generated code sees it ---- */

/** One incoming request. Everything is borrowed and valid during the request. */
typedef struct tb_http_req {
    int method;               /* tb_http_method; -1 for another method (tb_http_xop) */
    const char *path;         /* the raw (still percent-encoded) path, without the query */
    size_t path_len;
    tb_str params[TB_HTTP_MAX_PATH_PARAMS]; /* raw path parameters, in template order */
    size_t n_params;
    const char *body;         /* request body, NULL when none */
    size_t body_len;
    const char *content_type; /* Content-Type header or NULL */
    void *impl;               /* runtime internals (the connection) */
    const char *method_name;  /* the method as sent ("GET", "QUERY", "LINK"...) */
} tb_http_req;

/** First value of a request header (case-insensitive name), or NULL. */
const char *tb_http_req_header(const tb_http_req *r, const char *name);
/** First value of a header of the request ctx serves (case-insensitive name), or NULL (no such
 *  header, or ctx serves no HTTP request): for a handler that reads a header its spec cannot
 *  declare (Authorization, which OpenAPI ignores as a parameter). Borrowed: valid during the
 *  request. */
const char *tb_ctx_header(const tb_ctx *ctx, const char *name);
/** Decodes the credentials of "Authorization: Basic <b64>" (RFC 7617; pass what follows the
 *  scheme) into user[ucap] and pass[pcap], NUL-terminated, split at the first ':'. false when
 *  b64 is not base64, has no ':', holds a NUL byte or does not fit. Neither part is
 *  percent-decoded (RFC 6749 2.3.1 clients encode theirs: the caller decodes). */
bool tb_http_basic_decode(const char *b64, char *user, size_t ucap, char *pass, size_t pcap);
/** The credentials after "<scheme> " in the request's Authorization (the scheme without regard
 *  to case, then spaces or tabs), "" when there are none; NULL when the header names another
 *  scheme or is absent. */
const char *tb_http_auth_credentials(const tb_http_req *req, const char *scheme);
/** First value of a query parameter (percent-decoded), or NULL. `*present` (may be NULL) tells
 *  a parameter given without value ("?flag") from an absent one. */
const char *tb_http_req_query(const tb_http_req *r, const char *name, bool *present);
/** First value of a query parameter as sent, still percent-encoded, or NULL (also for "?flag"):
 *  for a list split on its literal separators before decoding ("a%2Cb,c" is two items). */
const char *tb_http_req_query_raw(const tb_http_req *r, const char *name);
/** Calls fn(arg, name, value) for every query parameter (percent-decoded), in order. */
void tb_http_req_query_each(const tb_http_req *r,
                            void (*fn)(void *arg, const char *name, const char *value), void *arg);
/** Every value of a repeated query parameter (?id=1&id=2), in order, into vals[0..max).
 *  Returns how many there are (may be more than max). */
size_t tb_http_req_query_all(const tb_http_req *r, const char *name, const char **vals,
                             size_t max);
/** Value of a cookie, or NULL. */
const char *tb_http_req_cookie(const tb_http_req *r, const char *name);

/** Percent-decodes s[0..len) into the arena ('+' is kept as '+'). NULL on OOM or when the
 *  result would contain a NUL byte or a malformed escape (then *bad is set when not NULL). */
char *tb_http_pct_decode(tb_arena *a, const char *s, size_t len, bool *bad);

/* ---- the response the generated code fills ---- */

#define TB_HTTP_MAX_RES_HEADERS 16

/** Response under construction. `body` is the JSON text sent as application/json. */
/**
 * The shape of the runtime's own errors (400 validation, 401, 404, 405, 413, 415, 429, 500...)
 * for a status whose error schema in the spec is not tablium's envelope ({"error": {...}}):
 * RFC 9457 problem details, or a spec's own flat object ({code, message}), either one maybe
 * under a member of its own (`wrap`). tablium-gen derives the rows from the declared schemas;
 * the members the schema does not declare are not written.
 */
#define TB_ERR_ENVELOPE 0 /* tablium's {"error": {...}} (a row that overrides a class/default) */
#define TB_ERR_PROBLEM 1 /* RFC 9457: details as {"pointer": "#/body/x", "detail", "rule"} */
#define TB_ERR_FLAT 2    /* details as {"path", "rule", "message"} */
/* RFC 6749 5.2 ({"error", "error_description"}): the code member holds OAuth's code for the
 * status (invalid_client for 401, server_error for 5xx, temporarily_unavailable for 503 and
 * 429, invalid_request otherwise), the message member tablium's code, its message and violations */
#define TB_ERR_OAUTH 3

typedef struct tb_err_shape {
    int16_t status;           /* an exact status; 1..5 a class (4XX); 0 the spec's default */
    uint8_t style;            /* TB_ERR_* */
    uint8_t code_is_status;   /* the code member holds the HTTP status (an integer) */
    const char *content_type; /* "application/problem+json"; NULL: application/json */
    /* member names; NULL: not written */
    const char *type;       /* "about:blank" (RFC 9457) */
    const char *title;      /* the status's reason phrase */
    const char *status_m;   /* the HTTP status */
    const char *code;       /* tablium's code ("validation_failed"), or the status */
    const char *message;    /* the message */
    const char *details;    /* the violations */
    const char *request_id; /* X-Request-ID */
    /* the object above sits under this member of the body ({"error": {"code": 400, ...}}:
       Google's and Stripe's), or NULL: it is the body */
    const char *wrap;
} tb_err_shape;

/** The shape of errors with `status` among rows[0..n) (exact, then class, then default), or
 *  NULL for tablium's envelope. */
const tb_err_shape *tb_err_shape_for(const tb_err_shape *rows, size_t n, int status);

typedef struct tb_http_res {
    int status;
    tb_buf body;
    const char *headers[TB_HTTP_MAX_RES_HEADERS][2]; /* name, value: arena or static strings */
    size_t n_headers;
    /* the shape of the runtime's own errors in this response (the operation's, else the
     * API's); NULL: tablium's envelope */
    const tb_err_shape *err_shapes;
    size_t n_err_shapes;
} tb_http_res;

/** Adds a response header (strings must outlive the request: static or ctx->arena).
 *  0, or TB_EINVAL when there are too many. */
int tb_http_res_header(tb_http_res *res, const char *name, const char *value);

/** An error response as a handler (or a client, decoding one) sees it. All strings are borrowed
 *  from the request arena or static storage. */
typedef struct tb_api_error {
    const char *code;       /* machine-readable, snake_case: "not_found", "insufficient_funds" */
    const char *message;    /* human-readable, safe to show to the caller */
    const char *request_id; /* filled by the runtime on the server; decoded on the client */
    const tb_error_detail *details; /* optional: violations, each {path, rule, message} */
    size_t n_details;
} tb_api_error;

/** An error body lists at most TB_ERROR_MAX_DETAILS details, and stops adding details once the
 *  body holds this many bytes; the rest are counted in "detailsOmitted". */
#define TB_HTTP_ERROR_DETAILS_MAX_BYTES 32768

/** Fills e with code and a printf-style message allocated in ctx->arena. */
void tb_api_error_set(tb_api_error *e, tb_ctx *ctx, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Writes the error envelope for `status`:
 *  {"error":{"code","message","requestId","details","detailsOmitted"}}. requestId comes from
 *  ctx. details holds at most TB_ERROR_MAX_DETAILS entries and stops at
 *  TB_HTTP_ERROR_DETAILS_MAX_BYTES; detailsOmitted (present only when not 0) counts the
 *  details not listed. Resets whatever the body held. 0 or TB_ENOMEM. */
int tb_http_res_error(tb_http_res *res, const tb_ctx *ctx, int status, const tb_api_error *e);
/** Same from a tb_error: code "validation_failed" (TB_EVALIDATION, with each detail;
 *  err->n_omitted adds to detailsOmitted),
 *  "malformed_json" (TB_EPARSE, message with line/column/position) or the given fallback
 *  code; `status` is normally 400. */
int tb_http_res_error_from(tb_http_res *res, const tb_ctx *ctx, int status, const char *code,
                           const tb_error *err);

/* ---- the service description the generator emits ---- */

#define TB_OP_BODY 0x1u          /* the operation takes an application/json body */
#define TB_OP_BODY_REQUIRED 0x2u /* ... and it is required */
#define TB_OP_SECURED 0x4u       /* its invoke calls tb_http_authorize: rate limits by the
                                    verified `sub` are checked there, after the credentials */
#define TB_OP_NEEDS_AUTHORIZATION 0x8u /* every security alternative needs the Authorization
                                          header: a request without one is answered (401) as
                                          its head arrives, its body never read */

typedef struct tb_http_op {
    const char *operation_id; /* "getUserWallets" */
    int method;               /* tb_http_method; -1 for another method (tb_http_xop) */
    const char *path;         /* template, "/users/{userId}/wallets" */
    unsigned flags;           /* TB_OP_* */
    /** Parses and validates the request, calls the handler, serializes the response into res.
     *  Returns 0 when res holds the response to send (any status), or a TB_E... code for an
     *  internal failure (the runtime then answers 500 and logs it). */
    int (*invoke)(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res);
    /** The generated operation (tablium/op.h), or NULL: the runtime's answers before invoke
     *  (415, 429, 504...) take its error shapes. */
    const struct tb_op *op;
} tb_http_op;

/** An operation whose method is not one of the TB_HTTP_N_METHODS (OpenAPI 3.2's `query` and
 *  `additionalOperations`: QUERY, LINK, ...): route index, method name (case-sensitive), op. */
typedef struct tb_http_xop {
    int16_t route;
    int16_t op;
    const char *method;
} tb_http_xop;

/** An operation sharing its route and method with others, told apart by what it needs of a
 *  request (path keys no request path tells apart: a query string, /rest?method=x beside
 *  /rest?method=y, or a fragment, AWS's /#X-Amz-Target=Svc.Op, Azure's /detect#overload=stream):
 *  it takes the request when each names[i] is in the query and each hnames[i] (lower case) is a
 *  header, with exactly values[i] / hvalues[i] unless that is NULL, and, when n_media is not 0,
 *  the request's Content-Type is one of media[] ("type/subtype", "type/ *", "application/json"
 *  for any JSON type, "" for a request without Content-Type). Entries of one route and method
 *  are tried in order, the first that fits wins; when none fits, the routes table's operation
 *  takes the request. The generator sorts them by route, then method: the server then finds a
 *  request's entries by binary search (else it reads them all). */
typedef struct tb_http_qop {
    int16_t route;
    int16_t method; /* tb_http_method */
    int16_t op;
    uint16_t n;
    const char *const *names;
    const char *const *values;
    uint16_t n_headers;
    const char *const *hnames;
    const char *const *hvalues;
    uint16_t n_media;
    const char *const *media;
} tb_http_qop;

typedef struct tb_http_api {
    const char *name;    /* service name, "wallet" */
    const char *title;   /* info.title */
    const char *version; /* info.version */
    const tb_http_op *ops;
    size_t n_ops;
    /** The generated matcher: route index of path[0..len) (raw) with its parameters in
     *  params[0..*n_params), or -1 when no path template matches. No linear scan of compares.
     *  Of the templates that match, the first with an operation for `method` (TB_HTTP_*; -1:
     *  any), else the first: a concrete path without the method gives way to a templated one
     *  with it, as Express routes. */
    int (*match)(const char *path, size_t len, int method, tb_str *params, size_t *n_params);
    /** routes[i][method]: index into ops, or -1 when route i has no such method (405). */
    const int16_t (*routes)[TB_HTTP_N_METHODS];
    size_t n_routes;
    /** The path of the spec's servers[0] ("/v2"), under which every route is mounted; NULL or
     *  "" for none. A path outside it is 404. (/metrics and /health/... stay at the root.) */
    const char *base_path;
    /** The shapes of the runtime's errors outside an operation (404, 405, 413...): the spec's
     *  most common error schema, when it is not tablium's envelope. NULL: the envelope. */
    const tb_err_shape *err_shapes;
    size_t n_err_shapes;
    /** Operations of other methods (OpenAPI 3.2), or NULL. */
    const tb_http_xop *xops;
    size_t n_xops;
    /** Operations told apart by their query on a shared route and method, or NULL. */
    const tb_http_qop *qops;
    size_t n_qops;
} tb_http_api;

/* ---- middleware ---- */

/**
 * A middleware sees each request before routing to the operation and each response before it is
 * sent. Hooks run in registration order (on_response in reverse). Called on the server's worker
 * threads, concurrently: `self` must be thread-safe. Auth, rate limiting and tracing plug in here.
 */
typedef struct tb_middleware {
    const char *name;
    /** 0 to continue; nonzero to answer now with what it put in res (e.g. tb_http_res_error
     *  with 401 or 429). May set ctx->claims. NULL: skipped. */
    int (*on_request)(void *self, tb_ctx *ctx, const tb_http_req *req, const tb_http_op *op,
                      tb_http_res *res);
    /** After the response is built (also for runtime errors); may add headers. Every
     *  middleware's hook runs, whichever on_request answered. `op` is NULL when the request was
     *  not routed to an operation (404, 405, 413). NULL: skipped. */
    void (*on_response)(void *self, tb_ctx *ctx, const tb_http_req *req, const tb_http_op *op,
                        tb_http_res *res);
    void *self;
} tb_middleware;

/* ---- OpenAPI security (the generated server passes each operation's) ---- */

typedef enum tb_security_kind {
    TB_SEC_HTTP_BEARER,    /* type: http, scheme: bearer (a JWT) */
    TB_SEC_API_KEY_HEADER, /* type: apiKey, in: header */
    TB_SEC_API_KEY_QUERY,  /* type: apiKey, in: query */
    TB_SEC_API_KEY_COOKIE, /* type: apiKey, in: cookie */
    TB_SEC_OAUTH2,         /* type: oauth2: a bearer JWT whose scope/scp carries the scopes */
    TB_SEC_OPENID,         /* type: openIdConnect: the same */
    TB_SEC_HTTP_BASIC,     /* type: http, scheme: basic: user and password (RFC 7617) */
    TB_SEC_HTTP_DIGEST,    /* type: http, scheme: digest (RFC 7616: SHA-256, qop=auth) */
    TB_SEC_HTTP_OTHER,     /* type: http, any other scheme (negotiate, token, AWS4-HMAC-SHA256):
                              "Authorization: <param> <credentials>", see tb_server_set_http_auth */
    TB_SEC_MUTUAL_TLS,     /* type: mutualTLS (OpenAPI 3.1): the connection's client certificate,
                              verified against tls_client_ca_file; its subject's CN is `sub` */
} tb_security_kind;

typedef struct tb_security_scheme {
    const char *name;  /* the components.securitySchemes key */
    tb_security_kind kind;
    const char *param; /* apiKey: the header, query or cookie name; TB_SEC_HTTP_OTHER: the
                          scheme as the spec writes it (matched without regard to case) */
} tb_security_scheme;

/** One requirement: the scheme, and the scopes the token must all carry. */
typedef struct tb_security_req {
    const tb_security_scheme *scheme;
    const char *const *scopes;
    size_t n_scopes;
} tb_security_req;

/** One alternative of an operation's `security`: all its requirements must pass (none: the
 *  operation is open to anyone, as `{}` in the spec). */
typedef struct tb_security_alt {
    const tb_security_req *reqs;
    size_t n;
} tb_security_alt;

struct tb_jwt_verifier;

/**
 * Checks a request against an operation's security alternatives (any one may pass). 0 when it
 * passes (ctx->claims then holds a verified token's claims, valid until the response is
 * sent); 1 when it answered in res: 401 `unauthorized` (or the token's fault: token_expired,
 * bad_signature...) with WWW-Authenticate, or 403 `insufficient_scope`; or a TB_E... error.
 * Bearer tokens are verified with the server's verifier (tb_server_set_jwt_verifier, or one
 * from TB_JWT_* at tb_server_new); API keys against TB_API_KEYS_<SCHEME> (comma-separated).
 */
int tb_http_authorize(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res,
                      const tb_security_alt *alts, size_t n);

/* ---- the server ---- */

typedef struct tb_server tb_server;

/** A rate limit: `limit` requests per `period_ms`, bursts of `burst` (0: limit). */
typedef struct tb_rate_limit {
    unsigned limit;
    unsigned long long period_ms;
    unsigned burst;
} tb_rate_limit;

/** "N/PERIOD" (100/s, 600/1m, 10/30s, 5000/1h) into out; false when it is not that. */
bool tb_rate_limit_parse(const char *spec, tb_rate_limit *out);

/** One rate-limit decision (what the RateLimit headers say). */
typedef struct tb_rate_result {
    bool allowed;
    unsigned limit;
    unsigned long long period_ms;
    unsigned remaining;     /* requests left in the current burst */
    int64_t retry_after_ms; /* refused: when the next one would pass */
    int64_t reset_ms;       /* until the quota is whole again */
} tb_rate_result;

/** Policies applied before a handler runs. Strings are borrowed until tb_server_new returns. */
typedef struct tb_policy_opts {
    const char *allow;           /* IPs/CIDRs allowed ("10.0.0.0/8,::1"); NULL: everyone (403) */
    const char *trusted_proxies; /* peers whose X-Forwarded-For names the client */
    const char *rate_limit;      /* default per identity and operation, "100/s"; NULL: none */
    unsigned rate_burst;         /* 0: the limit */
    const char *rate_redis;      /* redis://HOST:PORT: one limit shared by every replica */
    unsigned fault_delay_ms;     /* fault injection: delay before the handler */
    int fault_status;            /* fault injection: answer this status instead (400..599) */
    unsigned fault_percent;      /* of requests (0: 100) */
    const char *fault_ops;       /* comma-separated operationIds; NULL or "*": all */
} tb_policy_opts;

typedef struct tb_server_opts {
    const char *host;          /* address to bind, default "127.0.0.1" */
    uint16_t port;             /* 0: an ephemeral port (see tb_server_port) */
    unsigned threads;          /* worker threads; 0: one per CPU */
    size_t max_body;           /* bytes; larger bodies get 413. Default 1 MiB */
    unsigned conn_timeout_s;   /* idle keep-alive connections closed after this; default 60 */
    unsigned shutdown_grace_ms; /* in-flight requests get this long on stop; default 10000 */
    /** Validate every response against its spec before sending (500 when it does not match):
     *  1 on, 0 off; else TB_VALIDATE_RESPONSES (1 or 0) decides, and without it -2 is on and -1
     *  off. TB_SERVER_OPTS_INIT sets TB_VALIDATE_RESPONSES_DEFAULT: on in debug builds, that is
     *  unless NDEBUG is defined where the macro is expanded (your build's, not libtablium's). */
    int validate_responses;
    bool access_log;           /* one info line per request; default true */
    /* Slow and greedy clients. A request's head must be complete this long after the
     * connection opened (a kept-alive connection: after its previous response, within
     * conn_timeout_s instead); its body this long after the head. Past either the connection
     * is cut. Defaults 10000 and 30000. */
    unsigned header_timeout_ms;
    unsigned body_timeout_ms;
    /* Open connections at most: past it a new one gets 503 + Retry-After and is closed.
     * 0: 10000, lowered to fit the open-file limit (raised to its hard limit at start). */
    unsigned max_connections;
    /* Open connections per client address at most: past it 429 + Retry-After. 0: 1000. */
    unsigned max_connections_per_addr;
    /* Requests in flight at most: past it 503 + Retry-After. 0: no cap. Default 1024. */
    unsigned max_in_flight;
    /* A request's budget when its caller sent none (TB_DEADLINE_HEADER); 0: none. A request
     * already past its deadline answers 504 without running its handler. */
    unsigned request_timeout_ms;
    tb_policy_opts policy;
    /* HTTPS. tls_cert_file and tls_key_file (PEM; the certificate file may hold the chain)
     * both set: the port speaks only TLS 1.2 and 1.3, and plain HTTP sent to it gets a plain
     * 400. tls_client_ca_file (PEM) also set: mutual TLS, the handshake fails for a client
     * whose certificate that CA did not sign, or that sends none. tls_priorities: a GnuTLS
     * priority string; NULL: TB_TLS_DEFAULT_PRIORITIES. The files are read and checked by
     * tb_server_new (TB_EINVAL naming the file); the strings are borrowed until it returns. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
    const char *tls_priorities;
    /* Where the runtime serves the Prometheus metrics (GET, text format 0.0.4; not in the spec,
     * no auth, the allowlist applies). NULL: "/metrics"; "" or "off": not served. */
    const char *metrics_path;
    /* On SIGTERM / tb_server_shutdown, /health/ready answers 503 at once and the server keeps
     * serving this long before it stops accepting, so load balancers see it leave first. The
     * grace period for in-flight requests follows. Default 0. */
    unsigned drain_delay_ms;
    /* With tls_client_ca_file: false (the default) every connection must present a client
     * certificate of that CA (the handshake fails otherwise); true (TB_TLS_VERIFY_CLIENT=
     * optional, nginx's word) one is asked for, not required, and operations whose security
     * names a mutualTLS scheme answer 401 to a connection without a valid one. */
    bool tls_client_optional;
} tb_server_opts;

/* TLS 1.3 and 1.2 only, and in 1.2 only forward-secret (ECDHE) AEAD suites: Mozilla's
 * "intermediate" profile in GnuTLS terms, on top of GnuTLS's NORMAL (which keeps following
 * the system's crypto policy for signatures, groups and key sizes). */
#define TB_TLS_DEFAULT_PRIORITIES                                                              \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305:+AES-256-GCM:"   \
    "+AES-128-GCM:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"

/** tb_server_opts.validate_responses by default: -2 (on) in a debug build of the code that
 *  expands it, -1 (off) under NDEBUG; TB_VALIDATE_RESPONSES=1 or 0 wins over either. */
#ifdef NDEBUG
#define TB_VALIDATE_RESPONSES_DEFAULT (-1)
#else
#define TB_VALIDATE_RESPONSES_DEFAULT (-2)
#endif

#define TB_SERVER_OPTS_INIT                                                                     \
    {"127.0.0.1", 0, 0, 1u << 20, 60, 10000, TB_VALIDATE_RESPONSES_DEFAULT, true, 10000, 30000,  \
     0, 0, 1024, 0, {NULL, NULL, NULL, 0, NULL, 0, 0, 0, NULL}, NULL, NULL, NULL, NULL, NULL, 0,  \
     false}

/** What the front door refused or cut since start (tb_server_stats). */
typedef struct tb_server_stats {
    unsigned long long accepted;         /* connections accepted */
    unsigned long long open;             /* connections open now */
    unsigned long long refused_framing;  /* 400/501/505/431 before the request reached a route */
    unsigned long long refused_overload; /* 503: at max_connections */
    unsigned long long refused_per_addr; /* 429: at max_connections_per_addr */
    unsigned long long header_timeouts;  /* cut: the head was not complete in time */
    unsigned long long body_timeouts;    /* cut: the body was not complete in time */
    unsigned long long cut_at_stop;      /* cut: still reading when the stop's grace ran out */
    unsigned long long refused_in_flight; /* 503: at max_in_flight */
    unsigned long long refused_addr;     /* 403: not on the allowlist */
    unsigned long long rate_limited;     /* 429: over a rate limit */
    unsigned long long deadline_expired; /* 504: past the deadline before the handler */
} tb_server_stats;

/** Options from the environment on top of defaults: <NAME>_HOST / HOST, <NAME>_PORT / PORT,
 *  TB_THREADS, TB_MAX_BODY, TB_VALIDATE_RESPONSES, TB_ACCESS_LOG (0/1), TB_HEADER_TIMEOUT_MS,
 *  TB_BODY_TIMEOUT_MS, TB_MAX_CONNECTIONS, TB_MAX_CONNECTIONS_PER_ADDR, TB_SHUTDOWN_GRACE_MS,
 *  TB_MAX_IN_FLIGHT, TB_REQUEST_TIMEOUT_MS, TB_ALLOWLIST, TB_TRUSTED_PROXIES, TB_RATE_LIMIT,
 *  TB_RATE_LIMIT_BURST, TB_RATE_LIMIT_REDIS, TB_FAULT_DELAY_MS, TB_FAULT_STATUS,
 *  TB_FAULT_PERCENT, TB_FAULT_OPS, TB_TLS_CERT_FILE, TB_TLS_KEY_FILE, TB_TLS_CLIENT_CA_FILE,
 *  TB_TLS_PRIORITIES, TB_METRICS_PATH, TB_DRAIN_DELAY_MS. The strings stay the environment's. tb_server_new also
 *  reads TB_JWT_JWKS_URL, TB_JWT_JWKS_FILE, TB_JWT_JWKS (a JWK Set), TB_JWT_SECRET with
 *  TB_JWT_ALG (HS256), TB_JWT_ISSUER, TB_JWT_AUDIENCE, TB_JWT_LEEWAY_S and TB_JWT_REFETCH_S (an
 *  unknown kid refetches the JWKS at most this often; 10) for its verifier. */
void tb_server_opts_from_env(tb_server_opts *o, const char *service_name);

/** A server for `api` (borrowed: must outlive the server). Not started. Caller owns; free with
 *  tb_server_free. NULL on failure (err says why). */
tb_server *tb_server_new(const tb_http_api *api, const tb_server_opts *opts, tb_error *err);
/** State and dependencies every request's ctx carries (ctx->state, ctx->deps). Before start. */
void tb_server_set_state(tb_server *s, void *state, void *deps);
/** Appends a middleware (copied; `self` borrowed). Before start. 0 or TB_EINVAL when full. */
int tb_server_use(tb_server *s, const tb_middleware *mw);
/** Binds and starts serving on worker threads. 0, or TB_EIO with err filled. */
int tb_server_start(tb_server *s, tb_error *err);
/** The bound port (after start). */
uint16_t tb_server_port(const tb_server *s);
/** Whether response validation is on (resolved from the options). */
bool tb_server_validates_responses(const tb_server *s);
/** Graceful stop: stops accepting, lets in-flight requests finish (up to the grace period),
 *  then cuts what is left (a client still sending its request, counted in cut_at_stop) and
 *  closes everything. Idempotent. Returns 0. */
int tb_server_stop(tb_server *s);
/** Stops (if running) and frees. NULL-safe. */
void tb_server_free(tb_server *s);
/** Starts, blocks until SIGTERM or SIGINT (or tb_server_shutdown), then stops gracefully.
 *  Prints "listening on HOST:PORT" to the log. Returns 0 on a clean stop. Call from the main
 *  thread; it blocks SIGTERM/SIGINT in the calling thread (inherited by the workers). */
int tb_server_run(tb_server *s, tb_error *err);
/** Makes tb_server_run return (async-signal-safe). */
void tb_server_shutdown(tb_server *s);

/* ---- health ----
 * Every server answers, outside its spec and without auth (the allowlist applies):
 *   GET /health/live   200 {"status":"live"} while the process serves requests
 *   GET /health/ready  200 {"status":"ready","checks":{...}} when every readiness check passes,
 *                      else 503 {"status":"not_ready","checks":{"database":{"status":"down",
 *                      "reason":"..."},...}}; 503 {"status":"draining"} from SIGTERM on
 * (a route of the spec at the same path wins). */

/** A readiness check: 0 when `name` is usable; otherwise nonzero with a short reason written to
 *  why (cap bytes). Called on the worker thread that serves /health/ready: keep it quick (a
 *  cached state, a ping with a small timeout). */
typedef int (*tb_ready_check_fn)(void *user, char *why, size_t cap);
/** Adds a readiness check (name copied, user borrowed). Before start. 0, TB_EINVAL when full
 *  (16), TB_ENOMEM. */
int tb_server_add_ready_check(tb_server *s, const char *name, tb_ready_check_fn fn, void *user);
/** A process-wide readiness check, consulted by every server of the process after its own:
 *  what a service's init registers (its database) and what the runtime registers for the event
 *  bus. Any thread, any time. 0, TB_EINVAL when full (32) or TB_ENOMEM. */
int tb_ready_check_add(const char *name, tb_ready_check_fn fn, void *user);
/** Removes the process-wide checks registered with `user` (NULL: none); once it returns none
 *  of them runs (so user may be freed). */
void tb_ready_check_remove(void *user);

/** Requests currently being handled (for tests and health). */
unsigned tb_server_in_flight(const tb_server *s);
/** Counters of the front door (connections refused, cut, open) and of the policies. */
void tb_server_stats_get(const tb_server *s, tb_server_stats *out);
/** The verifier of bearer tokens (borrowed: must outlive the server), replacing one made from
 *  the environment. Before start. */
void tb_server_set_jwt_verifier(tb_server *s, struct tb_jwt_verifier *v);

/** Checks the credentials of an HTTP authentication scheme tablium does not know itself
 *  (TB_SEC_HTTP_OTHER: Kerberos' Negotiate, OAuth 1's OAuth, a vendor's Token): `credentials`
 *  is what follows "<scheme> " in Authorization (len bytes, NUL-terminated). Return 0 to
 *  accept (it may set ctx->claims to a JSON object held by ctx->arena, which the handler then
 *  sees), a positive value to refuse (401), a negative one to leave the scheme to
 *  TB_HTTP_AUTH_<SCHEME> (below). Runs on the request's thread. */
typedef int (*tb_http_auth_fn)(void *ud, tb_ctx *ctx, const tb_security_scheme *scheme,
                               const char *credentials, size_t len);
/** Sets that check (NULL: none). Without one (or when it passes), a scheme's credentials are
 *  checked against
 *  TB_HTTP_AUTH_<SCHEME> (its components.securitySchemes name upper-cased, other characters
 *  '_'): comma-separated accepted values, compared in constant time; without that either,
 *  every request is refused (401), never let through. Before start. */
void tb_server_set_http_auth(tb_server *s, tb_http_auth_fn fn, void *ud);
/** The budget of one operation (by operationId), in ms, over request_timeout_ms (0: that
 *  again); the caller's X-Request-Timeout-Ms still shortens it. Before start. 0 or TB_EINVAL. */
int tb_server_set_op_timeout(tb_server *s, const char *operation_id, unsigned ms);
/** The rate limit of one operation (by operationId), over the default; NULL removes it.
 *  Before start. 0, or TB_EINVAL (no such operation, or a limit without a period). */
int tb_server_set_rate_limit(tb_server *s, const char *operation_id, const tb_rate_limit *l);

#endif
