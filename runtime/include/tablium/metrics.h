/*
 * tablium: Prometheus metrics, ours, small and fast (no Prometheus C client).
 *
 * A registry of counter, gauge and histogram families. A family has a fixed list of label names
 * given at registration; one series (tb_metric) per set of label values, created on first use
 * and then kept until the registry is reset or freed, so a tb_metric pointer may be cached by
 * the caller. Updating a series is one relaxed atomic add (a CAS loop for double gauges and the
 * histogram sum): no lock, no malloc. Looking a series up by label values takes no lock either
 * (an open-addressed table read with acquire loads); only creating a new series takes the
 * family's mutex and mallocs.
 *
 * Cardinality is bounded by construction: a family holds at most max_series series (default
 * TB_METRICS_MAX_SERIES). Label sets beyond it all land in one overflow series whose every label
 * value is "other", and each such lookup adds 1 to
 * tablium_metrics_overflow_total{family="<name>"}. Label values are cut to
 * TB_METRICS_MAX_LABEL_VALUE bytes (at a UTF-8 boundary); invalid UTF-8 bytes become '?'.
 *
 * tb_metrics_render writes the exposition in the text format 0.0.4 (serve it with
 * TB_METRICS_CONTENT_TYPE): families sorted by name, each contiguous with one HELP and one TYPE,
 * series sorted by label values, escaping of HELP and label values, cumulative histogram buckets
 * in ascending `le` with +Inf equal to _count, a final newline. Families with no series are left
 * out. `promtool check metrics` passes on it (tests/metrics).
 *
 * Threads: every function may be called from any thread, except tb_metrics_reset and
 * tb_metrics_registry_free, which need that no other thread uses the registry during the call.
 *
 * ---------------------------------------------------------------------------------------------
 * The families the runtime exports (default registry; created on first use). Names follow the
 * Prometheus conventions (base units, _total on counters) and, where one exists, the
 * OpenTelemetry semantic convention as the OTel Prometheus exporter names it.
 *
 *   HTTP server (tb_metrics_http_server, tb_metrics_http_server_active, tb_metrics_refused)
 *   http_server_request_duration_seconds   histogram  service, operation, http_request_method,
 *                                                     http_response_status_class
 *       Time from request received to response sent; _count is the request count. OTel
 *       http.server.request.duration buckets (TB_METRICS_BUCKETS_HTTP).
 *   http_server_requests_total             counter    service, operation, http_request_method,
 *                                                     http_response_status_code
 *       The same requests by exact status code (100..599, else "other").
 *   http_server_active_requests            gauge      service
 *   tablium_server_refused_total           counter    service, reason
 *       Requests refused before their handler: reason rate_limited, unauthorized, forbidden,
 *       overloaded, deadline_exceeded, too_large, invalid, other. (They are also counted in the
 *       two families above when they are answered.)
 *
 *   HTTP client, per upstream (tb_metrics_http_client, tb_metrics_breaker_state)
 *   http_client_request_duration_seconds   histogram  upstream, operation, http_request_method,
 *                                                     http_response_status_class, outcome
 *       One observation per call (all attempts and backoff included); _count is the call count.
 *       status class "none" when no response. outcome: ok, error, timeout, open, busy, other.
 *   tablium_client_retries_total           counter    upstream, operation
 *   tablium_client_fail_fast_total         counter    upstream, reason (open, busy)
 *       Calls refused by the breaker or the bulkhead without being sent.
 *   tablium_client_breaker_state           gauge      upstream, state (closed, open, half_open)
 *       1 for the breaker's current state, 0 for the two others (resilience4j's convention).
 *   The client families carry no service label: a process calls as one service, which the
 *   scrape's job label names.
 *
 *   Events (tb_metrics_event_*, tb_metrics_consumer_lag*)
 *   tablium_events_published_total         counter    service, event_type, transport
 *   tablium_events_publish_failed_total    counter    service, event_type, transport
 *   tablium_events_consumed_total          counter    service, event_type, transport, result
 *       result: ack, retry, dead (the handler's answer), invalid, duplicate, skipped, other.
 *   tablium_events_retried_total           counter    service, event_type, transport
 *   tablium_events_dead_lettered_total     counter    service, event_type, transport
 *   tablium_events_consumer_lag_seconds    gauge      service, transport
 *       Age of the last consumed event (now - its time) when its handling began.
 *   tablium_events_consumer_lag_messages   gauge      service, transport, queue
 *       Messages waiting in a queue (<service>, <service>.dlq, ...), set or read at scrape.
 *   transport: rabbitmq, redis.
 *
 *   Trace exporter (registered by runtime/trace with tb_metrics_fn, reading tb_trace_stats)
 *   tablium_trace_spans_exported_total     counter
 *   tablium_trace_spans_dropped_total      counter    (queue full, or given up after retries)
 *   tablium_trace_export_failures_total    counter
 *   tablium_trace_queue_spans              gauge
 *
 *   Process (read from /proc/self at render, by tb_metrics_render only)
 *   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
 *   process_open_fds, process_max_fds, process_start_time_seconds, process_threads
 *   (the names of the Go, Python and Rust clients' process collectors).
 *
 *   The registry itself
 *   tablium_metrics_overflow_total         counter    family
 *
 * TB_METRICS=off (or 0, false) turns the runtime's instruments below off (each call is then one
 * load); /metrics keeps the process metrics and collect functions.
 *
 * Inputs of the tb_metrics_http_* and tb_metrics_event_* helpers must already be bounded
 * (operationIds, upstream names from configuration, event types from schemas), never a raw path
 * or a user-supplied string. method is mapped to the OTel set (GET, HEAD, POST, PUT, DELETE,
 * CONNECT, OPTIONS, TRACE, PATCH, else "_OTHER"); reason, outcome and result to their listed
 * sets (else "other"). NULL strings count as "".
 */
#ifndef TABLIUM_METRICS_H
#define TABLIUM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tablium/buf.h"

#define TB_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** Default and hard limits. */
#define TB_METRICS_MAX_SERIES 1000     /* per family, when tb_metric_opts.max_series is 0 */
#define TB_METRICS_MAX_LABELS 8        /* label names per family */
#define TB_METRICS_MAX_BUCKETS 32      /* finite bucket bounds per histogram */
#define TB_METRICS_MAX_LABEL_VALUE 128 /* bytes kept of a label value */

/** OTel's advice for http.server.request.duration: 5 ms .. 10 s. */
#define TB_METRICS_BUCKETS_HTTP                                                                    \
    {                                                                                              \
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10                  \
    }

typedef enum tb_metric_type {
    TB_METRIC_COUNTER = 0,
    TB_METRIC_GAUGE = 1,
    TB_METRIC_HISTOGRAM = 2,
} tb_metric_type;

typedef struct tb_metrics_registry tb_metrics_registry;
typedef struct tb_metric_family tb_metric_family;
/** One series of a family. Valid until tb_metrics_reset / tb_metrics_registry_free. */
typedef struct tb_metric tb_metric;

/** A registry of its own (tests, tools). Caller owns; free with tb_metrics_registry_free.
 *  NULL on ENOMEM. Every function taking a registry uses the process's default one for NULL. */
tb_metrics_registry *tb_metrics_registry_new(void);
/** Frees the registry, its families and series. NULL-safe. Not for the default registry. */
void tb_metrics_registry_free(tb_metrics_registry *reg);

/** Registration. Strings are copied. */
typedef struct tb_metric_opts {
    const char *name;          /* [a-zA-Z_:][a-zA-Z0-9_:]* ; counters should end in _total */
    const char *help;          /* any text; escaped at render */
    const char *const *labels; /* NULL-terminated label names, NULL for none; not "le",
                                  not starting with "__" */
    const double *buckets;     /* histograms: ascending finite upper bounds, +Inf implied;
                                  NULL for TB_METRICS_BUCKETS_HTTP */
    size_t n_buckets;
    size_t max_series; /* 0: TB_METRICS_MAX_SERIES */
} tb_metric_opts;

/**
 * Registers a family, or returns the one already registered under that name when its type and
 * label names are the same (buckets and limits are then those of the first registration).
 * NULL, with a TB_EINVAL in *rc (if rc is not NULL), for an invalid name, label name or bucket
 * list, or a name taken with another type or other labels; TB_ENOMEM in *rc on ENOMEM.
 * The family lives as long as its registry.
 */
tb_metric_family *tb_metrics_register(tb_metrics_registry *reg, tb_metric_type type,
                                      const tb_metric_opts *opts, int *rc);

/** Shorthands of tb_metrics_register (default buckets and limit). labels: NULL-terminated. */
tb_metric_family *tb_metrics_counter(tb_metrics_registry *reg, const char *name, const char *help,
                                     const char *const *labels);
tb_metric_family *tb_metrics_gauge(tb_metrics_registry *reg, const char *name, const char *help,
                                   const char *const *labels);
tb_metric_family *tb_metrics_histogram(tb_metrics_registry *reg, const char *name, const char *help,
                                       const char *const *labels, const double *buckets,
                                       size_t n_buckets);

/**
 * The series of `values` (one per label name, in order; NULL for a family without labels; a
 * NULL value counts as ""), created on first use. Returns the overflow series when the family
 * is full, NULL only when f is NULL or on ENOMEM. Cache the pointer when the label values are
 * fixed. Example:
 *     tb_metric *m = tb_metric_get(f, (const char *[]){"wallet", "getBalance"});
 *     tb_metric_inc(m);
 */
tb_metric *tb_metric_get(tb_metric_family *f, const char *const *values);

/* Updates. All are NULL-safe no-ops on NULL and on a series of the wrong type. */

/** Counter: adds n. */
void tb_metric_add(tb_metric *m, uint64_t n);
static inline void tb_metric_inc(tb_metric *m)
{
    tb_metric_add(m, 1);
}
/** Gauge: sets to v / adds d (d may be negative). */
void tb_metric_set(tb_metric *m, double v);
void tb_metric_gauge_add(tb_metric *m, double d);
/** Histogram: counts one observation of v (seconds, bytes: base units). NaN is ignored. */
void tb_metric_observe(tb_metric *m, double v);

/** Reads a series back (tests): counter value, gauge value, histogram sum and count. */
double tb_metric_value(const tb_metric *m);
uint64_t tb_metric_count(const tb_metric *m);

/**
 * Values computed at scrape time. fn(user) is called during render (under the registry's render
 * lock, from the scraping thread) for the series `values` of counter or gauge family f, whose
 * stored value it replaces. fn must be fast and must not call into the metrics API. Registering
 * again for the same series replaces fn and user. 0, TB_EINVAL (histogram family, NULL f or fn)
 * or TB_ENOMEM.
 */
typedef double (*tb_metric_fn)(void *user);
int tb_metric_on_collect(tb_metric_family *f, const char *const *values, tb_metric_fn fn,
                         void *user);
/** Registers (or finds) family `name` without labels in reg and makes fn its value at scrape:
 *  tb_metrics_fn(NULL, TB_METRIC_COUNTER, "tablium_trace_spans_dropped_total", "...", f, u). */
int tb_metrics_fn(tb_metrics_registry *reg, tb_metric_type type, const char *name, const char *help,
                  tb_metric_fn fn, void *user);
/** Removes every collect function registered with `user` in reg (their series are removed from
 *  the output too). Once it returns none of them runs, so user may be freed. */
void tb_metrics_fn_remove(tb_metrics_registry *reg, void *user);

/** Appends the exposition of reg's families (no process metrics) to out. 0 or TB_ENOMEM. */
int tb_metrics_registry_render(tb_metrics_registry *reg, tb_buf *out);
/** Appends the whole exposition of the process to out: the default registry and the process
 *  metrics. 0 or TB_ENOMEM. This is what GET /metrics serves. */
int tb_metrics_render(tb_buf *out);

/** Frees every family of the default registry (tests; the process's exit). No other thread may
 *  use metrics during the call, and cached tb_metric pointers become invalid. */
void tb_metrics_reset(void);

/* ---- the runtime's instruments (families listed above, default registry) ---- */

/** One answered request. status: the response's code. seconds: request received to response
 *  sent. */
void tb_metrics_http_server(const char *service, const char *operation, const char *method,
                            int status, double seconds);
/** +1 when a request starts, -1 when it ends. */
void tb_metrics_http_server_active(const char *service, int delta);
/** A request refused before its handler (reason: rate_limited, unauthorized, forbidden,
 *  overloaded, deadline_exceeded, too_large, invalid; others count as "other"). */
void tb_metrics_refused(const char *service, const char *reason);

/** One client call. status: the final response's code, 0 when there was none. outcome: ok,
 *  error, timeout, open, busy (open and busy also count in tablium_client_fail_fast_total).
 *  retries: attempts after the first (0 for none). */
void tb_metrics_http_client(const char *upstream, const char *operation, const char *method,
                            int status, const char *outcome, double seconds, int retries);
/** The breaker of upstream is now in state (0 closed, 1 open, 2 half-open: tb_breaker_state).
 *  Call it when the breaker is made (closed) and on every transition. */
void tb_metrics_breaker_state(const char *upstream, int state);

/** Event bus. transport: "rabbitmq" or "redis". */
void tb_metrics_event_published(const char *service, const char *event_type, const char *transport,
                                bool ok);
/** Creates the event counters of event_type at 0 (the producer's published and publish_failed
 *  when `publishes`, the consumer's consumed{result="ack"}, retried and dead_lettered when
 *  `consumes`), so that rate() and increase() see their first increment; call it once per
 *  event type when the bus starts. Counters made on first use start at 1 and lose it. */
void tb_metrics_event_declare(const char *service, const char *event_type, const char *transport,
                              bool publishes, bool consumes);
/** A delivery was handled or set aside. result: ack, retry, dead, invalid, duplicate,
 *  skipped. */
void tb_metrics_event_consumed(const char *service, const char *event_type, const char *transport,
                               const char *result);
/** A delivery was sent to a retry queue / to the dead-letter queue (or dropped without one). */
void tb_metrics_event_retried(const char *service, const char *event_type, const char *transport);
void tb_metrics_event_dead_lettered(const char *service, const char *event_type,
                                    const char *transport);
/** Sets tablium_events_consumer_lag_seconds (call per consumed delivery: now - event time). */
void tb_metrics_consumer_lag_seconds(const char *service, const char *transport, double seconds);
/** tablium_events_consumer_lag_messages: set now, or read by fn(user) at every scrape (remove
 *  with tb_metrics_fn_remove(NULL, user) before user is freed). */
void tb_metrics_consumer_lag_messages(const char *service, const char *transport, const char *queue,
                                      double messages);
int tb_metrics_consumer_lag_messages_fn(const char *service, const char *transport,
                                        const char *queue, tb_metric_fn fn, void *user);

#endif
