#include "tablium/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tb_strerror(int code)
{
    switch (code) {
#define TB__ERRNO_TEXT(name, value, text) \
    case value:                           \
        return text;
        TB_ERRNO_MAP(TB__ERRNO_TEXT)
#undef TB__ERRNO_TEXT
    }
    return "unknown error";
}

const char *tb_err_name(int code)
{
    switch (code) {
#define TB__ERRNO_NAME(name, value, text) \
    case value:                           \
        return "TB_" #name;
        TB_ERRNO_MAP(TB__ERRNO_NAME)
#undef TB__ERRNO_NAME
    }
    return "TB_UNKNOWN";
}

void tb_error_init(tb_error *e)
{
    tb_error z = TB_ERROR_INIT;
    *e = z;
}

void tb_error_reset(tb_error *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_details; i++) {
        free(e->details[i].path);
        free(e->details[i].rule);
        free(e->details[i].message);
    }
    e->n_details = 0;
    e->n_omitted = 0;
    e->code = 0;
    e->message[0] = '\0';
    e->line = e->column = 0;
    e->position = -1;
}

void tb_error_deinit(tb_error *e)
{
    if (!e)
        return;
    tb_error_reset(e);
    free(e->details);
    e->details = NULL;
    e->cap_details = 0;
}

int tb_error_set(tb_error *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return code;
}

/* A copy of s cut to TB_ERROR_MAX_DETAIL_TEXT bytes: at a character boundary (never inside a
 * UTF-8 sequence), ending with "...". */
static char *text_copy(const char *s)
{
    size_t n = strlen(s);
    if (n <= TB_ERROR_MAX_DETAIL_TEXT)
        return strdup(s);
    size_t cut = TB_ERROR_MAX_DETAIL_TEXT - 3;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    char *out = malloc(cut + 4);
    if (out) {
        memcpy(out, s, cut);
        memcpy(out + cut, "...", 4);
    }
    return out;
}

int tb_error_add_detail(tb_error *e, const char *path, const char *rule, const char *message)
{
    if (!e)
        return 0;
    if (e->n_details >= TB_ERROR_MAX_DETAILS) {
        e->n_omitted++;
        return 0;
    }
    if (e->n_details == e->cap_details) {
        size_t cap = e->cap_details ? e->cap_details * 2 : 4;
        if (cap > TB_ERROR_MAX_DETAILS)
            cap = TB_ERROR_MAX_DETAILS;
        tb_error_detail *d = realloc(e->details, cap * sizeof *d);
        if (!d)
            return TB_ENOMEM;
        e->details = d;
        e->cap_details = cap;
    }
    tb_error_detail *d = &e->details[e->n_details];
    d->path = text_copy(path ? path : "");
    d->rule = text_copy(rule ? rule : "");
    d->message = text_copy(message ? message : "");
    if (!d->path || !d->rule || !d->message) {
        free(d->path);
        free(d->rule);
        free(d->message);
        return TB_ENOMEM;
    }
    e->n_details++;
    return 0;
}

int tb_error_add_details(tb_error *dst, const tb_error *src)
{
    if (!dst || !src)
        return 0;
    for (size_t i = 0; i < src->n_details; i++) {
        int rc = tb_error_add_detail(dst, src->details[i].path, src->details[i].rule,
                                     src->details[i].message);
        if (rc)
            return rc;
    }
    dst->n_omitted += src->n_omitted;
    return 0;
}
