/* tablium runtime internals shared by the files of runtime/trace (not installed). */
#ifndef TB_TRACE_INTERNAL_H
#define TB_TRACE_INTERNAL_H
#include "tablium/trace.h"

#include "tablium/buf.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

/** CLOCK_MONOTONIC in nanoseconds (the exporter's deadlines and waits). */
static inline uint64_t tb__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** Spans started and ended sampled so far, for tb_trace_stats (trace.c; the exporter keeps the
 *  rest). Exact once the threads making spans are quiet; while they run, a sum of per-thread
 *  counts read one after another. */
void tb__trace_counts(uint64_t *started, uint64_t *sampled);

/** Hands an ended, sampled span to the exporter (otlp.c): encoded at once, so the caller frees
 *  the span either way. true: queued; false: not (the queue is full or no memory, both counted
 *  as dropped, or export is off or shut down). Never blocks. */
bool tb__otlp_enqueue(const tb_span *s);

/** True when spans are exported (an endpoint is configured, the exporter is otlp, the SDK is
 *  not disabled). Without it spans are not recorded, only propagated (otlp.c). */
bool tb__otlp_enabled(void);

/** Frees a span made by tb_span_start* (trace.c). */
void tb__span_free(tb_span *s);

/** True when OTEL_SDK_DISABLED is true (read once). */
bool tb__trace_disabled(void);

/** The service.name of this process: OTEL_SERVICE_NAME, else service.name in
 *  OTEL_RESOURCE_ATTRIBUTES, else tb_trace_set_default_service's name, else
 *  "unknown_service:<executable>" (otlp.c). */
const char *tb__trace_service_name(void);

/** The exporter's HTTP/1.1 client for http:// collectors (h1.c): one kept-alive connection. */
typedef struct tb__h1 {
    int fd; /* -1: not connected */
    char host[256], port[8];
    char authority[300]; /* the Host header */
    char target[2048];   /* path and query */
    long retry_after_ms; /* the last answer's Retry-After, -1: none */
    bool location;       /* the last answer had a Location (a redirect: libcurl's job) */
    bool aborted;        /* the last post gave up because *abort was set */
    char err[256];       /* why the last post has no status */
    void *lookup;        /* a name lookup that outlived its wait (h1.c), or NULL */
} tb__h1;

/** Takes url when this client can serve it: http://, no userinfo, no proxy variable set
 *  (http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY). false: use libcurl. */
bool tb__h1_init(tb__h1 *c, const char *url);

/** POSTs head (request line and headers, ending with the blank line) and the body pieces; the
 *  answer's body goes to resp (up to resp_max bytes). The status, or 0 with c->err set (no
 *  connection, a write or read error, deadline (monotonic ns) passed, *abort set). */
long tb__h1_post(tb__h1 *c, const char *head, size_t head_len, const struct iovec *body, int n_body,
                 tb_buf *resp, size_t resp_max, uint64_t deadline, atomic_bool *abort);

/** Closes the connection (the client stays usable). */
void tb__h1_close(tb__h1 *c);

/** Closes the connection and gives up a name lookup still running (its memory stays with
 *  glibc's lookup thread when that cannot be cancelled). The client is done with. */
void tb__h1_free(tb__h1 *c);

/** A Retry-After value (delay-seconds or an HTTP-date) in ms, at most an hour; -1: neither. */
long tb__h1_retry_after(const char *v);

#endif
