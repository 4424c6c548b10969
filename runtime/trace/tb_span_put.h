/* tablium runtime internals: the runtime's own span attributes in one call (not installed). */
#ifndef TB_SPAN_PUT_H
#define TB_SPAN_PUT_H
#include "tablium/trace.h"

#include <stddef.h>

/** Puts attrs[0..n) on a sampled span (nothing on another), string values by reference: each
 *  must stay valid until tb_span_end, which encodes the span. The keys must differ from one
 *  another; a key the span already has (a handler set it) takes the new value; past
 *  TB_SPAN_MAX_ATTRS attributes are dropped and counted. For the attributes the runtime sets as
 *  a span ends (an HTTP server span's nine or so): no copy, and no search among themselves. */
void tb__span_put(tb_span *s, const tb_span_attr *attrs, size_t n);

#endif
