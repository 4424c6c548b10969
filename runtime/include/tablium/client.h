/*
 * tablium: the HTTP client (libcurl) behind generated service clients.
 *
 * One tb_client per upstream service. It keeps connections alive across calls and is safe to use
 * from many threads at once (a pool of curl handles). Process-wide libcurl initialisation is
 * explicit: call tb_global_init() once from main() before starting threads (tb_client_new calls
 * it too, but that is only safe while the process has one thread).
 *
 * Resilience is built in and on by default, per client (= per upstream): a total deadline per
 * call, retries with backoff under a retry budget, a circuit breaker, a bulkhead, and client-side
 * fault injection for drills. tb_client_opts sets them; the environment overrides (see "Client
 * policies from the environment" below).
 */
#ifndef TABLIUM_CLIENT_H
#define TABLIUM_CLIENT_H

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/ctx.h"
#include "tablium/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** curl_global_init once per process (pthread_once). 0 or TB_EIO. */
int tb_global_init(void);

/** Base URL of service `name`, the first of: $<NAME>_SERVICE_URL (name upper-cased, '-' and
 *  '.' -> '_'); http://$<NAME>_SERVICE_HOST:$<NAME>_SERVICE_PORT (the variables Kubernetes
 *  injects); in a Kubernetes pod (KUBERNETES_SERVICE_HOST set) http://<name>[.$TB_K8S_NAMESPACE
 *  .svc.cluster.local][:<the fallback's port>]; `fallback` (the spec's servers); else
 *  "http://127.0.0.1:8080". Trailing '/' removed. Logs which one it took. Caller owns; free(). */
char *tb_service_url(const char *name, const char *fallback);


typedef struct tb_client tb_client;
struct tb_client_call;
struct tb_client_res;

/**
 * A fallback: runs when a call failed and may produce the answer instead. "Failed" means rc
 * TB_EOPEN (breaker open), TB_EBUSY (bulkhead full), TB_ECONN, TB_ETIMEDOUT or TB_EIO after
 * all attempts, or a response with a 5xx status. It gets that rc and the response (status 0 and
 * no body when rc is nonzero) and returns the call's new result: 0 after filling *res (status,
 * body and headers allocated in ctx->arena; err is then cleared), or a TB_E... code (usually
 * rc). Not run when the ctx deadline had passed before the call, nor for TB_EINVAL/TB_ENOMEM.
 * Runs on the calling thread, before the hooks' `after`. fn NULL: no fallback.
 */
typedef struct tb_client_fallback {
    int (*fn)(void *self, tb_ctx *ctx, const struct tb_client_call *call, int rc,
              struct tb_client_res *res);
    void *self;
} tb_client_fallback;

/** One header line of a call, "Name: value". */
typedef struct tb_client_call {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* path and query, already percent-encoded, starting with '/' */
    const char *body;         /* JSON body or NULL */
    size_t body_len;
    const char *headers[16];  /* extra "Name: value" lines (borrowed) */
    size_t n_headers;
    /** This call's fallback; when fn is NULL the client's (tb_client_opts.fallback) applies. */
    tb_client_fallback fallback;
    /** The spec's operationId and path template ("/wallets/{walletId}"), static strings, set by
     *  generated clients (NULL for hand-made calls): they name the client span
     *  ("GET /wallets/{walletId}") and label the metrics, never the raw path. */
    const char *operation_id;
    const char *route;
    /** This call's retry policy (generated from the spec's x-tablium-retry), or NULL for the
     *  client's. The environment's TB_CLIENT_RETRY_* / TB_<NAME>_RETRY_* knobs still win, field
     *  by field. Borrowed. */
    const struct tb_retry_policy *retry;
} tb_client_call;

/** Adds a "Name: value" header line built in `a` (an empty value is sent as an empty header).
 *  0, TB_ENOMEM or TB_EINVAL (too many, name not an HTTP token, CR/LF in value, or a header
 *  that frames the message: Content-Length, Transfer-Encoding, Connection, Host, TE, Trailer,
 *  Upgrade, Keep-Alive, Proxy-Connection, which the HTTP stack writes itself). */
int tb_client_call_header(tb_client_call *call, tb_arena *a, const char *name, const char *value);

/** A response. Body and headers live in the arena of the ctx passed to tb_client_send. When the
 *  call fails (nonzero rc) status is 0, body "" and there are no headers. */
typedef struct tb_client_res {
    int status;
    char *body;       /* NUL-terminated; "" when empty */
    size_t body_len;
    const char *(*headers)[2]; /* name, value pairs (names as sent) */
    size_t n_headers;
    double elapsed_ms; /* time spent in the last attempt's transfer (not in hooks or backoff) */
    int attempts;      /* requests made for this call (0 when it failed fast, 2+ after retries) */
} tb_client_res;

/** Response header by case-insensitive name, or NULL. */
const char *tb_client_res_header(const tb_client_res *res, const char *name);

/**
 * Client middleware: runs around every call, in registration order (after in reverse). Auth
 * (service tokens) and tracing plug in here. Thread-safe `self`. Hooks run once per call, around
 * all its attempts: `after` sees the final result, fallback included, and the rc TB_EOPEN /
 * TB_EBUSY of a call refused by the breaker or the bulkhead.
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

/* ---- policies ----
 * Names and defaults follow gRPC (retry policy), Envoy (per-try timeout, retry_on, retry budget,
 * max_requests) and resilience4j (circuit breaker, bulkhead), so their documentation applies.
 * Every value 0 is meaningful (see each field); start from the _INIT macros.
 */

/** What a retry is made for (tb_retry_policy.retry_on, Envoy `retry_on` names). */
#define TB_RETRY_ON_CONNECT_FAILURE 0x01u /* could not connect: nothing was sent */
#define TB_RETRY_ON_RESET 0x02u           /* the connection broke or closed before an answer */
#define TB_RETRY_ON_TIMEOUT 0x04u         /* the attempt's own per_try_timeout_ms ran out */
#define TB_RETRY_ON_429 0x08u             /* 429 Too Many Requests */
#define TB_RETRY_ON_502 0x10u
#define TB_RETRY_ON_503 0x20u
#define TB_RETRY_ON_504 0x40u
#define TB_RETRY_ON_5XX 0x80u /* any 5xx status */
#define TB_RETRY_ON_GATEWAY_ERROR (TB_RETRY_ON_502 | TB_RETRY_ON_503 | TB_RETRY_ON_504)
#define TB_RETRY_ON_DEFAULT                                                                      \
    (TB_RETRY_ON_CONNECT_FAILURE | TB_RETRY_ON_RESET | TB_RETRY_ON_TIMEOUT | TB_RETRY_ON_429 |    \
     TB_RETRY_ON_GATEWAY_ERROR)

/**
 * Retries (gRPC retryPolicy). Only idempotent calls are retried: GET, HEAD, PUT, DELETE,
 * OPTIONS, TRACE, or any method when the call carries an Idempotency-Key header; never a POST or
 * PATCH without one. Other 4xx statuses are never retried. The wait before retry n (n = 1, 2...)
 * is full jitter: uniform in [0, min(max_backoff_ms, initial_backoff_ms * multiplier^(n-1))],
 * unless the response carries Retry-After (delta-seconds or HTTP-date), which is waited instead.
 * No retry is made when its wait would pass the call's deadline, when the breaker is open, or
 * when the retry budget is spent; the last attempt's result is then returned.
 */
typedef struct tb_retry_policy {
    int max_attempts;          /* attempts in all, the first included; default 3; 1 = no retries;
                                  1..10 (gRPC maxAttempts, capped at 5 there) */
    long initial_backoff_ms;   /* default 100 (gRPC initialBackoff); >= 0 */
    long max_backoff_ms;       /* default 1000 (gRPC maxBackoff); >= initial_backoff_ms */
    double backoff_multiplier; /* default 2.0 (gRPC backoffMultiplier); >= 1 */
    long per_try_timeout_ms;   /* bound of one attempt (Envoy per_try_timeout); default 0: an
                                  attempt may use all the time left of the call */
    unsigned retry_on;         /* TB_RETRY_ON_* bits; default TB_RETRY_ON_DEFAULT; 0: never */
} tb_retry_policy;

#define TB_RETRY_POLICY_INIT {3, 100, 1000, 2.0, 0, TB_RETRY_ON_DEFAULT}

/**
 * Retry budget (Envoy retry budgets, Finagle RetryBudget): over the last ttl_ms, retries may be
 * at most budget_percent % of the calls made plus min_retries_per_sec * ttl_ms / 1000, so that
 * during an outage retries add at most ~20% load instead of multiplying it by max_attempts. A
 * retry over budget is not made (counted in tb_client_stats.budget_refusals).
 */
typedef struct tb_retry_budget {
    int budget_percent;      /* default 20 (Envoy budget_percent); 0..100 */
    int min_retries_per_sec; /* default 3 (Envoy min_retry_concurrency is 3); 0..1000 */
    long ttl_ms;             /* the sliding window; default 10000 (Finagle ttl); 1000..60000 */
} tb_retry_budget;

#define TB_RETRY_BUDGET_INIT {20, 3, 10000}

/** What the breaker counts as a failed call (tb_breaker_policy.record). */
#define TB_BREAKER_RECORD_TRANSPORT 0x1u /* TB_ECONN, TB_EIO: refused, reset, unreachable */
#define TB_BREAKER_RECORD_TIMEOUT 0x2u   /* TB_ETIMEDOUT */
#define TB_BREAKER_RECORD_5XX 0x4u       /* any 5xx status */
#define TB_BREAKER_RECORD_429 0x8u       /* 429 Too Many Requests */
#define TB_BREAKER_RECORD_DEFAULT                                                                \
    (TB_BREAKER_RECORD_TRANSPORT | TB_BREAKER_RECORD_TIMEOUT | TB_BREAKER_RECORD_5XX)

typedef enum tb_breaker_state {
    TB_BREAKER_CLOSED = 0,    /* calls flow; outcomes fill the sliding window */
    TB_BREAKER_OPEN = 1,      /* calls fail fast with TB_EOPEN until the wait is over */
    TB_BREAKER_HALF_OPEN = 2, /* a few probe calls decide between CLOSED and OPEN */
} tb_breaker_state;

/** "closed", "open", "half-open"; "?" for other values. */
const char *tb_breaker_state_name(tb_breaker_state s);

/**
 * Circuit breaker (resilience4j CircuitBreakerConfig, count-based window). Every attempt is one
 * call of the breaker (retries included: resilience4j's Retry(CircuitBreaker(call)) order).
 * CLOSED -> OPEN when, over the last sliding_window_size calls and with at least
 * minimum_number_of_calls of them, the failure rate or the slow-call rate reaches its threshold.
 * OPEN -> HALF_OPEN after wait_duration_in_open_state_ms (on the next call). HALF_OPEN lets
 * permitted_number_of_calls_in_half_open_state calls through (others fail fast) and, when they
 * are done, goes to OPEN if their failure or slow rate reaches a threshold, else to CLOSED with
 * an empty window. Transitions are logged (tb_log_warn to OPEN, tb_log_info otherwise).
 */
typedef struct tb_breaker_policy {
    bool enabled;                      /* default true; false: never opens */
    int failure_rate_threshold;        /* percent, default 50; 1..100 */
    int slow_call_rate_threshold;      /* percent, default 100; 1..100 */
    long slow_call_duration_threshold_ms; /* a call this slow or slower is slow; default 2000;
                                             >= 1 (resilience4j: 60000) */
    int sliding_window_size;           /* calls, default 20 (resilience4j: 100); 1..1000 */
    int minimum_number_of_calls;       /* default 10 (resilience4j: 100); 1..1000, capped at
                                          sliding_window_size */
    long wait_duration_in_open_state_ms; /* default 5000 (resilience4j: 60000); >= 1 */
    int permitted_number_of_calls_in_half_open_state; /* default 3 (resilience4j: 10); 1..1000 */
    unsigned record;                   /* TB_BREAKER_RECORD_* bits; default
                                          TB_BREAKER_RECORD_DEFAULT */
} tb_breaker_policy;

#define TB_BREAKER_POLICY_INIT {true, 50, 100, 2000, 20, 10, 5000, 3, TB_BREAKER_RECORD_DEFAULT}

typedef struct tb_client_opts {
    long connect_timeout_ms; /* default 5000; 0: libcurl's 300 s; negative: TB_EINVAL */
    long timeout_ms;         /* total budget of a call: all attempts and the waits between them.
                                Default 5000; 0: none (then only a ctx deadline bounds it);
                                negative: TB_EINVAL. A ctx deadline that is sooner wins. */
    size_t max_response;     /* bytes; longer bodies fail with TB_ETOOBIG. Default 8 MiB */
    const tb_client_hook *hooks; /* borrowed array, may be NULL */
    size_t n_hooks;
    const char *user_agent;  /* default "tablium/<version>" */
    /** The upstream's name ("wallet"): picks the TB_<NAME>_* environment variables and names
     *  the client in logs. Copied. Default NULL: only TB_CLIENT_* apply; logs show the URL. */
    const char *name;
    tb_retry_policy retry;
    tb_retry_budget retry_budget;
    tb_breaker_policy breaker;
    /** Bulkhead (resilience4j maxConcurrentCalls, Envoy max_requests): calls in flight at
     *  once; one more fails fast with TB_EBUSY. Default 64; 0: no cap. */
    int max_concurrent_calls;
    /** Client-side fault injection, for tests and drills (see TB_CLIENT_FAULT below); parsed
     *  and copied by tb_client_new, TB_EINVAL when malformed. Default NULL: none. */
    const char *fault;
    /** Fallback of calls that bring none (tb_client_call.fallback). Default none. */
    tb_client_fallback fallback;
    /** TLS of an https:// base URL. The server's certificate is always verified, chain and
     *  host name (no option turns that off), TLS 1.2 at least. tls_ca_file: a PEM bundle
     *  trusted instead of the system's CAs; NULL: the system's. tls_cert_file and
     *  tls_key_file: the client's own PEM certificate (chain) and key for mutual TLS; NULL:
     *  none (a NULL key is looked for in the certificate file). Paths, copied; tb_client_new
     *  fails with TB_EINVAL naming a file it cannot read. */
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
} tb_client_opts;

#define TB_CLIENT_OPTS_INIT                                                                      \
    {                                                                                            \
        .connect_timeout_ms = 5000, .timeout_ms = 5000, .max_response = 8u << 20,                \
        .retry = TB_RETRY_POLICY_INIT, .retry_budget = TB_RETRY_BUDGET_INIT,                     \
        .breaker = TB_BREAKER_POLICY_INIT, .max_concurrent_calls = 64                            \
    }

/*
 * Client policies from the environment
 * ------------------------------------
 * tb_client_new reads, once, TB_CLIENT_<KNOB> (every client of the process) and then
 * TB_<NAME>_<KNOB> (the client whose opts.name is NAME, upper-cased, '-' -> '_', as in
 * <NAME>_SERVICE_URL), each overriding what came before it: built-in default < opts (the spec's
 * policies) < TB_CLIENT_<KNOB> < TB_<NAME>_<KNOB>. An empty variable counts as unset; a
 * malformed or out-of-range value makes tb_client_new fail with TB_EINVAL naming the variable.
 *
 *   KNOB                                                  opts field                   default
 *   TIMEOUT_MS                                            timeout_ms                   5000
 *   CONNECT_TIMEOUT_MS                                    connect_timeout_ms           5000
 *   RETRY_MAX_ATTEMPTS                                    retry.max_attempts           3
 *   RETRY_INITIAL_BACKOFF_MS                              retry.initial_backoff_ms     100
 *   RETRY_MAX_BACKOFF_MS                                  retry.max_backoff_ms         1000
 *   RETRY_BACKOFF_MULTIPLIER                              retry.backoff_multiplier     2.0
 *   RETRY_PER_TRY_TIMEOUT_MS                              retry.per_try_timeout_ms     0 (none)
 *   RETRY_ON     comma list of connect-failure, reset,    retry.retry_on
 *                timeout, 429, 502, 503, 504,             connect-failure,reset,timeout,
 *                gateway-error, 5xx; or none                  429,gateway-error
 *   RETRY_BUDGET_PERCENT                                  retry_budget.budget_percent  20
 *   RETRY_BUDGET_MIN_RETRIES_PER_SEC                      .min_retries_per_sec         3
 *   RETRY_BUDGET_TTL_MS                                   retry_budget.ttl_ms          10000
 *   BREAKER_ENABLED                  0/1, false/true      breaker.enabled              1
 *   BREAKER_FAILURE_RATE_THRESHOLD   percent              breaker.failure_rate_...     50
 *   BREAKER_SLOW_CALL_RATE_THRESHOLD percent              breaker.slow_call_rate_...   100
 *   BREAKER_SLOW_CALL_DURATION_THRESHOLD_MS               breaker.slow_call_dur...     2000
 *   BREAKER_SLIDING_WINDOW_SIZE      calls                breaker.sliding_window_size  20
 *   BREAKER_MINIMUM_NUMBER_OF_CALLS                       breaker.minimum_number_...   10
 *   BREAKER_WAIT_DURATION_IN_OPEN_STATE_MS                breaker.wait_duration_...    5000
 *   BREAKER_PERMITTED_NUMBER_OF_CALLS_IN_HALF_OPEN_STATE  breaker.permitted_...        3
 *   BREAKER_RECORD   comma list of transport, timeout,    breaker.record
 *                    5xx, 429; or none                        transport,timeout,5xx
 *   MAX_CONCURRENT_CALLS             0: no cap            max_concurrent_calls         64
 *   FAULT            fault injection, see below           fault                        none
 *   TLS_CA_FILE      PEM bundle trusted for https://      tls_ca_file                  system CAs
 *   TLS_CERT_FILE    PEM client certificate (mTLS)        tls_cert_file                none
 *   TLS_KEY_FILE     its PEM private key                  tls_key_file                 none
 *
 * Fault injection (client side, per attempt, nothing reaches the upstream when it aborts or
 * drops): a comma list of
 *   delay=<ms>[ms][@<pct>%]   wait that long first (bounded by the attempt's time left)
 *   abort=<status>[@<pct>%]   answer <status> (100..599) with body
 *                             {"error":{"code":"fault_injected",...}} without sending
 *   drop[@<pct>%]             fail as a dropped connection (TB_ECONN, retried as `reset`)
 * <pct> is 0..100 (decimals allowed), 100 when omitted; abort and drop share one draw (abort
 * first), delay has its own. "none" or "" disables. Injected faults are counted
 * (faults_injected), seen by retries and the breaker like real ones, and logged at debug.
 *   TB_WALLET_FAULT='delay=300ms@10%,abort=503@25%,drop@5%'
 *   TB_CLIENT_RETRY_MAX_ATTEMPTS=1   TB_WALLET_BREAKER_WAIT_DURATION_IN_OPEN_STATE_MS=10000
 *
 * Deadlines: a call's deadline is the sooner of now + timeout_ms and ctx->deadline_ms. Each
 * attempt is bounded by the time left (and per_try_timeout_ms) and sends that bound, in ms, in
 * the X-Request-Timeout-Ms header (TB_DEADLINE_HEADER; Envoy sends the same thing as
 * x-envoy-expected-rq-timeout-ms) unless the call sets the header itself. A call whose ctx
 * deadline has already passed fails with TB_ETIMEDOUT without sending (deadline_exceeded).
 */

/** A client for base_url ("http://host:port", copied; http:// or https:// only; trailing '/'
 *  removed). opts may be NULL for defaults; opts is copied, opts->hooks stays borrowed.
 *  Caller owns; free with tb_client_free. NULL on failure (err says why). */
tb_client *tb_client_new(const char *base_url, const tb_client_opts *opts, tb_error *err);
/** Closes connections, frees. NULL-safe. No call may be running. */
void tb_client_free(tb_client *c);
const char *tb_client_base_url(const tb_client *c);
/** The effective options (opts merged with the environment; strings and hooks borrowed from the
 *  client, valid until tb_client_free). */
const tb_client_opts *tb_client_options(const tb_client *c);

/** Counters of a client since tb_client_new; for metrics. Each counter is exact; the set is not
 *  one atomic snapshot. */
typedef struct tb_client_stats {
    uint64_t calls;               /* tb_client_send calls that passed argument checks */
    uint64_t attempts;            /* requests made, fault-injected ones included */
    uint64_t retries;             /* attempts after the first */
    uint64_t budget_refusals;     /* retries not made because the retry budget was spent */
    uint64_t fast_fails;          /* calls refused by the open breaker (TB_EOPEN) */
    uint64_t bulkhead_rejections; /* calls refused over max_concurrent_calls (TB_EBUSY) */
    uint64_t deadline_exceeded;   /* calls refused because the ctx deadline had passed */
    uint64_t faults_injected;     /* attempts delayed, aborted or dropped by the fault knob */
    uint64_t fallbacks;           /* failed calls answered by a fallback (it returned 0) */
    uint64_t breaker_opens;       /* transitions to OPEN */
    tb_breaker_state breaker_state;
    int window_calls;             /* calls in the breaker's sliding window */
    double failure_rate;          /* percent over the window; -1 below minimum_number_of_calls */
    double slow_call_rate;        /* likewise */
    int in_flight;                /* calls running now (the bulkhead's count) */
    int retry_budget_left;        /* retries the budget allows right now */
} tb_client_stats;

/** Fills *out. NULL-safe (zeroes *out when c is NULL). Thread-safe. */
void tb_client_stats_get(tb_client *c, tb_client_stats *out);

/**
 * Sends one call, retrying it under the client's policies, and waits for the response. Adds
 * Accept: application/json, Content-Type:
 * application/json when there is a body, and X-Request-ID: ctx->request_id (a fresh id when
 * ctx->request_id is NULL; it is then stored in ctx->request_id, in ctx->arena, so the caller can
 * log it). A line in call->headers with the same name replaces the default. Redirects are not
 * followed. Adds X-Request-Timeout-Ms when the attempt has a bound (see "Deadlines" above).
 * Thread-safe; backoff waits sleep the calling thread.
 * Returns 0 when a response arrived (whatever its status: after retries, the last one), or
 * TB_ECONN (could not connect or the connection broke; also every TLS failure, the message
 * then starting "TLS: certificate verify failed: ..." (untrusted CA, expired, wrong host name:
 * never retried) or "TLS: handshake failed: ..." (no common protocol, a refused client
 * certificate, plain HTTP on the other end)), TB_ETIMEDOUT (the deadline passed,
 * before or during the call), TB_EOPEN (circuit breaker open: nothing sent), TB_EBUSY (bulkhead
 * full: nothing sent), TB_ETOOBIG (response over max_response), TB_ENOMEM, TB_EINVAL (bad call:
 * method not a token, path not starting with '/', CR/LF in a header line or in
 * ctx->request_id), TB_EIO (any other transport failure), or a hook's refusal; err (may be NULL)
 * says what happened, naming the method and URL (and the attempts, after retries). A fallback
 * may turn a failure into 0 (see tb_client_fallback).
 */
int tb_client_send(tb_client *c, tb_ctx *ctx, tb_client_call *call, tb_client_res *res,
                   tb_error *err);

/** Appends s[0..len) percent-encoded for a path segment (unreserved kept) or, with query=true,
 *  for a query component. Both keep only RFC 3986 unreserved characters and write %XX
 *  (uppercase) for every other byte, so '/', '&', '=', '+' and '#' never pass. 0 or TB_ENOMEM. */
int tb_url_encode(tb_buf *b, const char *s, size_t len, bool query);

#endif
