/*
 * tablium: JSON helpers shared by generated codecs (parse with positions, arena-held values).
 */
#ifndef TABLIUM_JSON_H
#define TABLIUM_JSON_H

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/error.h"

#include <jansson.h>
#include <stddef.h>

/**
 * Parses JSON text buf[0..len). Any JSON value is accepted at the top; duplicate object keys
 * and invalid UTF-8 are rejected; "\u0000" inside strings is allowed.
 * Returns a new reference (caller owns; json_decref), or NULL with err set to TB_EPARSE and the
 * line, column (1-based) and byte position of the problem.
 */
json_t *tb_json_loadb(const char *buf, size_t len, tb_error *err);

/** Keeps a reference to j until the arena is reset or freed. Returns 0 or TB_ENOMEM (then no
 *  reference is taken). */
int tb_arena_hold_json(tb_arena *a, json_t *j);
/** Hands j (a new reference: json_pack, json_object...) to the arena, which releases it when
 *  reset or freed; returns j, or NULL when j is NULL or on out of memory (j released). For a
 *  json_t * member of a response a handler builds:
 *  `resp->s200.extra = tb_arena_json(ctx->arena, json_pack("{s:i}", "n", 1));` */
json_t *tb_arena_json(tb_arena *a, json_t *j);

/** Appends j as compact JSON text (what json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes).
 *  Returns 0, TB_ENOMEM, or TB_EINVAL when j is not JSON text (a string or key that is not
 *  UTF-8, NaN or infinity, a cycle); on error b is left as it was. */
int tb_buf_json_value(tb_buf *b, const json_t *j);

#endif
