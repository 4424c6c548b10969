/*
 * tablium (internal): a fast JSON reader that builds jansson values.
 *
 * tb_json_loadb tries it first. Any input it is not sure of gives NULL, and tb_json_loadb then
 * asks json_loadb, which decides and words the error. That covers malformed JSON, invalid UTF-8,
 * bad escapes, duplicate keys, real overflow, nesting deeper than 2000 and out of memory.
 *
 * So the result is always the one json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
 * JSON_ALLOW_NUL) gives, reached faster, with two exceptions:
 * - a number whose decimal text has a fraction but whose nearest double is whole
 *   (0.99999999999999999999 -> 1.0) is read as the double on the other side of it
 *   (0.9999999999999999), so that "type": "integer" refuses it as JSON Schema says (up to 2^53;
 *   beyond it every double is whole);
 * - an integer beyond long long (valid JSON, which jansson refuses as "too big integer") is read
 *   as its nearest double, as JavaScript reads it: a "type": "number" takes it, an integer
 *   member is refused by its range.
 * The differential tests in tests/unit/test_fastjson.c hold it to that.
 *
 * Where the time goes: jansson reads through a character stream with a callback per byte and
 * copies every string twice. This reader scans the buffer in place, and makes one copy per
 * string, none of it escaped.
 */
#ifndef TB_FASTJSON_H
#define TB_FASTJSON_H

#include "tablium/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

json_t *tb__json_fast_loadb(const char *buf, size_t len);
/* Reads buf into `old`, an object or array that nobody else holds, reusing its nodes: for a
 * stream of messages of one shape (an event type's envelopes) that saves building and freeing
 * the tree, which is most of the cost of reading one. True when buf has old's shape (the same
 * kinds of values, objects with the same keys in the same order, arrays of the same lengths,
 * every node unshared): old then equals what tb__json_fast_loadb(buf) would give. False
 * otherwise, old then being partly overwritten: the caller frees it and reads buf afresh. */
bool tb__json_fast_reload(json_t *old, const char *buf, size_t len);

/* Appends j as json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) writes it, byte for byte (keys in
 * insertion order, reals as %.17g with ".0" for integral ones, control characters as \u00XX),
 * without jansson's callback per fragment. 0 when written; otherwise b is left as it was and the
 * result says why: TB_EINVAL for what is not JSON text (a string or key that is not UTF-8, NaN
 * or infinity: jansson would refuse it too, or for a key write it garbled), TB_ENOMEM, or 1 when
 * jansson should decide (nesting deeper than 2000, or a cycle). */
int tb__json_fast_dump(tb_buf *b, const json_t *j);

#endif
