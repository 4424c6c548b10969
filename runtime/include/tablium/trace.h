/*
 * tablium: W3C Trace Context and spans (OpenTelemetry's data model, exported over OTLP/HTTP,
 * protobuf by default, JSON on request).
 *
 * Every hop carries a trace: the HTTP server continues the caller's `traceparent` (or starts a
 * trace), generated clients send theirs downstream, events carry it in the envelope and in the
 * AMQP headers. The runtime makes the spans (HTTP server and client, messaging publish and
 * process); a handler may add its own with tb_span_start(ctx, ...).
 *
 * Configuration, the OpenTelemetry SDK's own variables, read once at the first span:
 *   OTEL_SDK_DISABLED=true             no spans are recorded or exported (propagation still works)
 *   OTEL_SERVICE_NAME                  service.name; else service.name in
 *                                      OTEL_RESOURCE_ATTRIBUTES, else the service's name (the
 *                                      spec's x-tablium-service), else
 *                                      "unknown_service:<executable>"
 *   OTEL_RESOURCE_ATTRIBUTES           k=v,k2=v2 (percent-encoded values) added to the resource
 *   OTEL_TRACES_SAMPLER                always_on, always_off, traceidratio, parentbased_always_on
 *                                      (default), parentbased_always_off,
 *                                      parentbased_traceidratio
 *   OTEL_TRACES_SAMPLER_ARG            the ratio for the *traceidratio samplers (default 1.0)
 *   OTEL_TRACES_EXPORTER               otlp (default) or none
 *   OTEL_EXPORTER_OTLP_ENDPOINT        base URL; spans go to <it>/v1/traces
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT the full URL (wins over the above)
 *   OTEL_EXPORTER_OTLP_HEADERS / _TRACES_HEADERS   k=v,... extra request headers
 *   OTEL_EXPORTER_OTLP_TIMEOUT / _TRACES_TIMEOUT   per export request, ms (default 10000)
 *   OTEL_BSP_SCHEDULE_DELAY            ms between exports (default 5000; also when a batch fills)
 *   OTEL_BSP_MAX_QUEUE_SIZE            ended spans waiting for export, per thread that ends
 *                                      spans (default 2048; each thread has a queue of its
 *                                      own); a span ended while its thread's is full is
 *                                      dropped and counted
 *   OTEL_BSP_MAX_EXPORT_BATCH_SIZE     spans per request (default 512)
 *   OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY   TLS to the
 *                                      collector (PEM files)
 *   OTEL_EXPORTER_OTLP_PROTOCOL        http/protobuf (default, as the OTel spec says) or
 *                                      http/json (/ _TRACES_PROTOCOL; grpc: a warning, then
 *                                      http/protobuf); OTEL_EXPORTER_OTLP_COMPRESSION: none
 *                                      (default) or gzip (/ _TRACES_COMPRESSION)
 * With no endpoint set at all nothing is exported (spans still get ids and reach the logs).
 */
#ifndef TABLIUM_TRACE_H
#define TABLIUM_TRACE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_ctx;

/* ---- W3C Trace Context ---- */

#define TB_TRACE_FLAG_SAMPLED 0x01u
#define TB_TRACE_FLAG_RANDOM 0x02u /* Level 2: the trace id's right 7 bytes are random */
/** The most tracestate text kept and propagated (the spec's "at least 512"). */
#define TB_TRACESTATE_MAX 512
/** "00-" 32 hex "-" 16 hex "-" 2 hex: 55 characters. */
#define TB_TRACEPARENT_LEN 55

/** A span's identity, as it travels between processes. All zero = none (invalid). */
typedef struct tb_span_context {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags; /* TB_TRACE_FLAG_* */
} tb_span_context;

/** True when trace id and span id are both non-zero. */
bool tb_span_context_valid(const tb_span_context *sc);

/** Parses a traceparent header value (level 2 rules: lowercase hex only, version ff invalid,
 *  version 00 exactly 55 characters, higher versions may carry "-..." after the flags, all-zero
 *  ids invalid; surrounding spaces and tabs ignored). true and *out filled when valid; false
 *  (and *out zeroed) otherwise. */
bool tb_traceparent_decode(const char *s, size_t len, tb_span_context *out);

/** Writes "00-<trace>-<span>-<flags>" and a NUL into out[56] (only flags bits 0 and 1 are
 *  kept). Returns TB_TRACEPARENT_LEN. */
size_t tb_traceparent_encode(const tb_span_context *sc, char out[TB_TRACEPARENT_LEN + 1]);

/** Validates and normalizes tracestate: `vals[0..n)` are the header values in the order they
 *  came (several tracestate headers are one list, joined by ','). Empty members and spaces
 *  around them are dropped; the result is written to out (cap bytes, NUL-terminated) as
 *  "k=v,k2=v2". When any member breaks the grammar (key [a-z0-9][a-z0-9_*\/@-]{0,255}, as
 *  the W3C harness checks it: "foo@", "foo@@bar" are keys; value 1..256 printable characters
 *  but ',' and '=', not ending in a space) or there are more than 32 members, the
 *  whole tracestate is discarded. Returns the length written (0: none to propagate). When the
 *  list is longer than cap-1 it is cut at member boundaries (whole members, from the end: the
 *  spec's "at least 512 characters" is kept since cap >= TB_TRACESTATE_MAX+1). */
size_t tb_tracestate_normalize(const char *const *vals, size_t n, char *out, size_t cap);

/** A new, random, non-zero trace id (16 bytes) / span id (8 bytes). Thread-safe, fork-aware. */
void tb_trace_id_new(uint8_t id[16]);
void tb_span_id_new(uint8_t id[8]);
/** Lowercase hex of n bytes into out (2n+1 bytes with the NUL). */
void tb_trace_hex(const uint8_t *id, size_t n, char *out);

/* ---- spans ---- */

typedef enum tb_span_kind {
    TB_SPAN_INTERNAL = 1,
    TB_SPAN_SERVER = 2,
    TB_SPAN_CLIENT = 3,
    TB_SPAN_PRODUCER = 4,
    TB_SPAN_CONSUMER = 5,
} tb_span_kind;

typedef enum tb_span_status {
    TB_STATUS_UNSET = 0,
    TB_STATUS_OK = 1,
    TB_STATUS_ERROR = 2,
} tb_span_status;

typedef enum tb_attr_type {
    TB_ATTR_STRING = 0,
    TB_ATTR_INT = 1,
    TB_ATTR_DOUBLE = 2,
    TB_ATTR_BOOL = 3,
} tb_attr_type;

/** One attribute; keys are static strings (semantic convention names), string values are
 *  copied into the span. */
typedef struct tb_span_attr {
    const char *key;
    tb_attr_type type;
    uint32_t len; /* a string value's length in bytes (it may hold NULs: tb_span_set_strn) */
    union {
        const char *s;
        int64_t i;
        double d;
        bool b;
    } v;
} tb_span_attr;

#define TB_SPAN_MAX_ATTRS 24
#define TB_SPAN_MAX_EVENTS 4
#define TB_SPAN_MAX_LINKS 8

typedef struct tb_span_event {
    const char *name;             /* static, e.g. "exception" */
    uint64_t time_unix_nano;
    const char *message;          /* "exception.message" when not NULL (owned by the span) */
    const char *type;             /* "exception.type" when not NULL (owned by the span) */
} tb_span_event;

/** A span. Made by tb_span_start / the runtime, ended once by tb_span_end (which hands a
 *  sampled span to the exporter and frees it). The fields are readable by the exporter; code
 *  that records spans uses the functions below. Not shared between threads while recording. */
typedef struct tb_span {
    tb_span_context sc;
    uint8_t parent_span_id[8];    /* all zero for a root span */
    bool has_parent;
    bool sampled;                 /* recorded and exported (else only ids are kept) */
    tb_span_kind kind;
    char name[128];
    uint64_t start_unix_nano, end_unix_nano;
    tb_span_status status;
    const char *status_message;   /* owned by the span, NULL when none */
    tb_span_attr attrs[TB_SPAN_MAX_ATTRS];
    size_t n_attrs;
    size_t dropped_attrs;
    tb_span_event events[TB_SPAN_MAX_EVENTS];
    size_t n_events;
    tb_span_context links[TB_SPAN_MAX_LINKS];
    size_t n_links;
    char tracestate[TB_TRACESTATE_MAX + 1]; /* carried on; "" when none */
    /* owned strings (attribute values, messages) live here, then in `spill` */
    char strings[512];
    size_t strings_used;
    char *spill;                  /* malloc'd overflow, freed with the span */
    size_t spill_used, spill_cap;
} tb_span;

/** Starts a span. parent: the span context to continue (a remote one from a header, or the
 *  current span's), NULL or invalid to start a new trace. The sampler (OTEL_TRACES_SAMPLER)
 *  decides `sampled`; an unsampled span still has ids (so it propagates and logs) but records
 *  nothing. Never fails: without memory it returns a static no-op span (tb_span_end ignores
 *  it). */
tb_span *tb_span_start_with(const char *name, tb_span_kind kind, const tb_span_context *parent,
                            const char *tracestate);
/** A child of ctx's current span (ctx->span), or a new trace when ctx has none. */
tb_span *tb_span_start(const struct tb_ctx *ctx, const char *name, tb_span_kind kind);

void tb_span_set_str(tb_span *s, const char *key, const char *v);
void tb_span_set_strn(tb_span *s, const char *key, const char *v, size_t n);
void tb_span_set_int(tb_span *s, const char *key, int64_t v);
void tb_span_set_double(tb_span *s, const char *key, double v);
void tb_span_set_bool(tb_span *s, const char *key, bool v);
void tb_span_set_name(tb_span *s, const char *name);
/** Status; message kept only for TB_STATUS_ERROR (as OpenTelemetry says). */
void tb_span_set_status(tb_span *s, tb_span_status st, const char *message);
/** An "exception" event with exception.type and exception.message. */
void tb_span_record_error(tb_span *s, const char *type, const char *message);
void tb_span_add_link(tb_span *s, const tb_span_context *linked);
/** Ends the span now: a sampled one goes to the export queue (or is dropped and counted when
 *  the queue is full); then it is freed. NULL is ignored. */
void tb_span_end(tb_span *s);

/** Now, as Unix nanoseconds (CLOCK_REALTIME). */
uint64_t tb_unix_nano(void);

/* ---- the export pipeline (runtime/trace/otlp.c) ---- */

typedef struct tb_trace_stats {
    uint64_t spans_started;
    uint64_t spans_sampled;   /* ended and sampled */
    uint64_t spans_queued;    /* handed to the exporter */
    uint64_t spans_dropped;   /* queue full, or given up after retries */
    uint64_t spans_exported;  /* acknowledged by the collector (2xx) */
    uint64_t export_requests; /* POSTs made */
    uint64_t export_failures; /* POSTs that failed (each retry counts) */
    size_t queue_len;         /* spans waiting now */
} tb_trace_stats;

void tb_trace_stats_get(tb_trace_stats *out);

/** Sets the service name used when OTEL_SERVICE_NAME is unset (the server calls it with the
 *  api's name before its first span). The first call wins. */
void tb_trace_set_default_service(const char *name);

/** Exports what is queued now and waits until it is sent or timeout_ms passes. 0 when the queue
 *  emptied, TB_ETIMEDOUT otherwise. tb_server_stop and tb_bus_free call it (2 s at most);
 *  nothing does at exit: a program that makes spans with neither (a tool calling services)
 *  calls tb_trace_shutdown (or this) before it ends, or the spans still queued are lost. */
int tb_trace_flush(long timeout_ms);

/** Stops the exporter thread after a final flush (timeout_ms); later spans are dropped. */
void tb_trace_shutdown(long timeout_ms);

#endif
