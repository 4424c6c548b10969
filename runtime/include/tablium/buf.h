/*
 * tablium: growable byte buffer, used by the serializers.
 */
#ifndef TABLIUM_BUF_H
#define TABLIUM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Caller's storage: TB_BUF_INIT, then tb_buf_deinit. `data` is always NUL-terminated once
 *  anything was appended (the NUL is not counted in len). A failed append sets `oom` and leaves
 *  the content as it was; later appends are no-ops, so check oom once at the end. */
typedef struct tb_buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} tb_buf;

#define TB_BUF_INIT {NULL, 0, 0, false}

void tb_buf_deinit(tb_buf *b);
/** Empties the buffer, keeps its storage, clears oom. */
void tb_buf_reset(tb_buf *b);
/** Makes room for n more bytes. Returns 0 or TB_ENOMEM. */
int tb_buf_reserve(tb_buf *b, size_t n);
void tb_buf_append(tb_buf *b, const void *p, size_t n);
void tb_buf_puts(tb_buf *b, const char *s);
void tb_buf_putc(tb_buf *b, char c);
void tb_buf_printf(tb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends s[0..n) as a JSON string literal, quotes included (UTF-8 passed through, control
 *  characters, '"' and '\\' escaped). */
void tb_buf_json_string(tb_buf *b, const char *s, size_t n);
/** Appends a JSON number: integers exactly, doubles with the shortest round-trip form. */
void tb_buf_json_int(tb_buf *b, int64_t v);
void tb_buf_json_double(tb_buf *b, double v);
/** Appends p[0..n) in base64 (RFC 4648 section 4, padded), or base64url (section 5) without
 *  padding when url (JWT segments, JWK members). */
void tb_buf_base64(tb_buf *b, const void *p, size_t n, bool url);
/** Takes the data out of the buffer: caller owns; free with free(). The buffer is emptied. */
char *tb_buf_steal(tb_buf *b, size_t *len);

#endif
