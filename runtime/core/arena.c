#include "tablium/arena.h"

#include "tablium/error.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct tb__block {
    struct tb__block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char data[];
} tb__block;

typedef struct tb__cleanup {
    struct tb__cleanup *next;
    void (*fn)(void *);
    void *p;
} tb__cleanup;

struct tb_arena {
    tb__block *head;  /* current block, newest first */
    tb__block *first; /* kept across resets */
    tb__cleanup *cleanups;
    size_t total;
};

#define TB__ALIGN (alignof(max_align_t))

static tb__block *block_new(size_t size)
{
    tb__block *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

tb_arena *tb_arena_new(size_t first_block)
{
    tb_arena *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    a->first = block_new(first_block ? first_block : 4096);
    if (!a->first) {
        free(a);
        return NULL;
    }
    a->head = a->first;
    a->cleanups = NULL;
    a->total = 0;
    return a;
}

static void run_cleanups(tb_arena *a)
{
    tb__cleanup *c = a->cleanups;
    a->cleanups = NULL;
    while (c) {
        tb__cleanup *next = c->next;
        c->fn(c->p); /* the record itself lives in the arena */
        c = next;
    }
}

void tb_arena_reset(tb_arena *a)
{
    if (!a)
        return;
    run_cleanups(a);
    tb__block *b = a->head;
    while (b && b != a->first) {
        tb__block *next = b->next;
        free(b);
        b = next;
    }
    a->head = a->first;
    a->first->used = 0;
    a->first->next = NULL;
    a->total = 0;
}

void tb_arena_free(tb_arena *a)
{
    if (!a)
        return;
    tb_arena_reset(a);
    free(a->first);
    free(a);
}

void *tb_arena_alloc(tb_arena *a, size_t size)
{
    size_t need = (size + TB__ALIGN - 1) & ~(TB__ALIGN - 1);
    if (need < size)
        return NULL;
    tb__block *b = a->head;
    if (b->size - b->used < need) {
        size_t bs = b->size * 2;
        if (bs < need)
            bs = need;
        tb__block *nb = block_new(bs);
        if (!nb)
            return NULL;
        nb->next = a->head;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->total += need;
    return p;
}

void *tb_arena_calloc(tb_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = tb_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

char *tb_arena_strndup(tb_arena *a, const char *s, size_t len)
{
    char *p = tb_arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *tb_arena_strdup(tb_arena *a, const char *s)
{
    return s ? tb_arena_strndup(a, s, strlen(s)) : NULL;
}

char *tb_arena_printf(tb_arena *a, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    if ((size_t)n < sizeof small)
        return tb_arena_strndup(a, small, (size_t)n);
    char *s = tb_arena_alloc(a, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int tb_arena_on_free(tb_arena *a, void (*fn)(void *), void *p)
{
    tb__cleanup *c = tb_arena_alloc(a, sizeof *c);
    if (!c)
        return TB_ENOMEM;
    c->fn = fn;
    c->p = p;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

size_t tb_arena_used(const tb_arena *a)
{
    return a->total;
}
