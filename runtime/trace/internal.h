/* tablium runtime internals shared by the files of runtime/trace (not installed). */
#ifndef TB_TRACE_INTERNAL_H
#define TB_TRACE_INTERNAL_H
#include "tablium/trace.h"

#include <stdatomic.h>

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

#endif
