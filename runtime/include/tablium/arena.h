/*
 * tablium: arena allocator.
 *
 * An arena hands out memory that is released all at once: handlers, parsers and decoders
 * allocate from it and never free one by one. Not thread-safe: one arena per request/thread.
 */
#ifndef TABLIUM_ARENA_H
#define TABLIUM_ARENA_H

#include <stddef.h>

typedef struct tb_arena tb_arena;

/** New arena whose first block has room for `first_block` bytes (0: a default of 4 KiB).
 *  Caller owns; free with tb_arena_free. NULL when out of memory. */
tb_arena *tb_arena_new(size_t first_block);
/** Runs the cleanups (newest first), releases every block. NULL-safe. */
void tb_arena_free(tb_arena *a);
/** Runs the cleanups and forgets every allocation, keeping the first block for reuse. */
void tb_arena_reset(tb_arena *a);
/** `size` bytes aligned for any type; NULL when out of memory. Valid until reset/free. */
void *tb_arena_alloc(tb_arena *a, size_t size);
/** Like tb_arena_alloc, zero-filled, with overflow check on n * size. */
void *tb_arena_calloc(tb_arena *a, size_t n, size_t size);
/** NUL-terminated copy of s[0..len). NULL when out of memory. */
char *tb_arena_strndup(tb_arena *a, const char *s, size_t len);
/** NUL-terminated copy of s. NULL when s is NULL or out of memory. */
char *tb_arena_strdup(tb_arena *a, const char *s);
/** A string formatted as by printf, in the arena. NULL when out of memory. */
char *tb_arena_printf(tb_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Registers fn(p) to run when the arena is reset or freed (e.g. json_decref of a value the
 *  arena's objects borrow). Returns 0 or TB_ENOMEM (then fn is not called, caller cleans up). */
int tb_arena_on_free(tb_arena *a, void (*fn)(void *), void *p);
/** Bytes handed out since creation or the last reset. */
size_t tb_arena_used(const tb_arena *a);

#endif
