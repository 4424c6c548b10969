/*
 * tablium: the table-driven codec of generated types (tablium/codec.h).
 */
#include "tablium/codec.h"

#include "tablium/api.h"
#include "tablium/http.h"
#include "tablium/json.h"
#include "tablium/validate.h"

#include "tb_vctx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t tb_codec_value_size(int kind, const void *sub)
{
    switch (kind) {
    case TB_CK_STRING:
        return sizeof(char *);
    case TB_CK_INTEGER:
        return sizeof(int64_t);
    case TB_CK_NUMBER:
        return sizeof(double);
    case TB_CK_BOOLEAN:
        return sizeof(bool);
    case TB_CK_ENUM:
        return sizeof(int);
    case TB_CK_STRUCT:
        return ((const tb_codec_type *)sub)->size;
    case TB_CK_API_ERROR:
        return sizeof(tb_api_error);
    case TB_CK_BYTES:
        return sizeof(tb_bytes);
    case TB_CK_UNION:
        return ((const tb_codec_union *)sub)->size;
    case TB_CK_MAP:
        return sizeof(tb_map);
    case TB_CK_LIST:
        return sizeof(tb_list);
    default:
        return sizeof(json_t *);
    }
}

/* The bytes of one item of an array: with TB_CF_ITEM_NULL a pointer (a string's own char *). */
static size_t item_size(int kind, unsigned flags, const void *sub)
{
    return (flags & TB_CF_ITEM_NULL) ? sizeof(void *) : tb_codec_value_size(kind, sub);
}

/* The value an item's slot holds, NULL for a null item. */
static inline const void *item_value(int kind, unsigned flags, const char *slot)
{
    if (!(flags & TB_CF_ITEM_NULL))
        return slot;
    const void *v = *(const void *const *)slot;
    return !v ? NULL : kind == TB_CK_STRING ? slot : v;
}

const void *tb_codec_item(int kind, unsigned flags, const void *sub, const void *items, size_t k)
{
    return item_value(kind, flags, (const char *)items + k * item_size(kind, flags, sub));
}

/* ---- unions ---- */

bool tb__quietly_valid(tb_vfn fn, const json_t *x)
{
    if (!fn)
        return true;
    tb_vctx c;
    tb__vctx_init_nested(&c, NULL, 0); /* part of the parse's validation: its regex budget */
    c.quiet = 1;
    return fn(x, &c, NULL);
}

/* Whether writing branch br must add the discriminator: a struct branch without a member of
 * that name (the discriminator lives only in the union's schema), whose tag is known. */
static bool union_adds_tag(const tb_codec_union *u, const tb_codec_branch *br)
{
    if (!u->discriminator || br->kind != TB_CK_STRUCT || br->ntags == 0 ||
        (br->flags & TB_CF_ARRAY))
        return false;
    const tb_codec_type *t = br->sub;
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].name_len == u->disc_len &&
            memcmp(t->fields[i].name, u->discriminator, u->disc_len) == 0)
            return false;
    return true;
}

/* A branch's struct whose own discriminator member the caller left unset (a NULL string, an
 * optional member without has_), filled with the tag `kind` names: a copy the caller frees, so
 * that setting `kind` is enough (the tag is one of the branch's; its first, as union_adds_tag
 * writes). NULL when the member is set (its value is written as it is), or there is none. */
static void *with_tag(const tb_codec_union *u, const tb_codec_branch *br, const void *v)
{
    if (!u->discriminator || br->kind != TB_CK_STRUCT || br->ntags == 0 ||
        (br->flags & TB_CF_HOLDING))
        return NULL;
    const tb_codec_type *t = br->sub;
    const char *base = (const char *)v + br->off;
    for (size_t i = 0; i < t->nfields; i++) {
        const tb_codec_field *f = &t->fields[i];
        if (f->name_len != u->disc_len || memcmp(f->name, u->discriminator, u->disc_len) != 0)
            continue;
        if ((f->flags & TB_CF_HOLDING) || (f->kind != TB_CK_STRING && f->kind != TB_CK_ENUM))
            return NULL;
        bool has = (f->flags & TB_CF_REQUIRED) || *(const bool *)(base + f->has_off);
        if (has && (f->kind != TB_CK_STRING || *(char *const *)(base + f->off)))
            return NULL;
        int e = -1;
        if (f->kind == TB_CK_ENUM) {
            const tb_codec_enum *en = f->sub;
            for (size_t k = 0; e < 0 && k < en->count; k++)
                if (en->values[k].n == br->tags[0].n &&
                    memcmp(en->values[k].s, br->tags[0].s, br->tags[0].n) == 0)
                    e = (int)k;
            if (e < 0)
                return NULL;
        }
        char *copy = malloc(t->size);
        if (!copy)
            return NULL;
        memcpy(copy, base, t->size);
        if (f->kind == TB_CK_STRING)
            *(const char **)(copy + f->off) = br->tags[0].s;
        else
            *(int *)(copy + f->off) = e;
        if (!(f->flags & TB_CF_REQUIRED))
            *(bool *)(copy + f->has_off) = true;
        if (f->flags & TB_CF_NULLABLE)
            *(bool *)(copy + f->null_off) = false;
        return copy;
    }
    return NULL;
}

/* Of object x's members, how many a value of branch br keeps: a struct its fields' (all of them
 * when it keeps the rest in a map), a map or any value all. */
static size_t kept_members(const tb_codec_branch *br, const json_t *x)
{
    size_t n = json_object_size(x);
    if (br->kind != TB_CK_STRUCT || (br->flags & TB_CF_ARRAY))
        return n;
    const tb_codec_type *t = br->sub;
    if (t->rest)
        return n;
    size_t k = 0;
    for (size_t i = 0; i < t->nfields; i++)
        if (json_object_getn(x, t->fields[i].name, t->fields[i].name_len))
            k++;
    return k;
}

int tb_codec_union_choose(const tb_codec_union *u, const json_t *x)
{
    if (u->discriminator && json_is_object(x)) {
        const json_t *d = json_object_getn(x, u->discriminator, u->disc_len);
        if (json_is_string(d)) {
            const char *s = json_string_value(d);
            size_t n = json_string_length(d);
            for (size_t i = 0; i < u->nbranches; i++)
                for (size_t k = 0; k < u->branches[i].ntags; k++)
                    if (u->branches[i].tags[k].n == n && memcmp(u->branches[i].tags[k].s, s, n) == 0)
                        return (int)i;
        }
    }
    unsigned t = TB_J(json_typeof(x));
    /* an object several branches match (open objects of anyOf without a discriminator: GitHub's
       protection rules share id, node_id and type): the first that keeps all of its members,
       else the one that keeps the most, not merely the first; anything else (and a tag no branch
       has: an allOf hierarchy's base) the first */
    bool fit = json_is_object(x) && !u->discriminator;
    size_t all = fit ? json_object_size(x) : 0;
    int best = -1;
    size_t best_kept = 0;
    for (size_t i = 0; i < u->nbranches; i++) {
        if (!(u->branches[i].jtypes & t) || !tb__quietly_valid(u->branches[i].validate, x))
            continue;
        if (!fit)
            return (int)i;
        size_t k = kept_members(&u->branches[i], x);
        if (k == all)
            return (int)i;
        if (best < 0 || k > best_kept) {
            best = (int)i;
            best_kept = k;
        }
    }
    return best;
}

int tb_codec_enum_find(const tb_codec_enum *e, const char *s, size_t len)
{
    for (size_t i = 0; i < e->count; i++)
        if (e->values[i].n == len && memcmp(e->values[i].s, s, len) == 0)
            return (int)i;
    return -1;
}

/* ---- decode ---- */

int tb_codec_value_decode(int kind, const void *sub, const json_t *x, tb_arena *a, void *dst)
{
    switch (kind) {
    case TB_CK_STRING: {
        if (!json_is_string(x))
            return TB_EVALIDATION;
        char *s = tb_arena_strndup(a, json_string_value(x), json_string_length(x));
        if (!s)
            return TB_ENOMEM;
        *(char **)dst = s;
        return 0;
    }
    case TB_CK_INTEGER:
        if (json_is_integer(x)) {
            *(int64_t *)dst = (int64_t)json_integer_value(x);
        } else if (json_is_real(x)) {
            /* 1.0 and 1e3 are integers to JSON Schema; 1e19 is one too, and beyond int64_t:
             * converting it would be undefined (x86 gives INT64_MIN, a negative amount). What
             * the type cannot hold is refused (the server answers 400), never wrapped. */
            double v = json_real_value(x);
            if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || floor(v) != v)
                return TB_EVALIDATION;
            *(int64_t *)dst = (int64_t)v;
        } else {
            return TB_EVALIDATION;
        }
        return 0;
    case TB_CK_NUMBER:
        if (!json_is_number(x))
            return TB_EVALIDATION;
        *(double *)dst = json_number_value(x);
        return 0;
    case TB_CK_BOOLEAN:
        if (!json_is_boolean(x))
            return TB_EVALIDATION;
        *(bool *)dst = json_is_true(x);
        return 0;
    case TB_CK_ENUM: {
        if (!json_is_string(x))
            return TB_EVALIDATION;
        int v = tb_codec_enum_find(sub, json_string_value(x), json_string_length(x));
        if (v < 0)
            return TB_EVALIDATION;
        *(int *)dst = v;
        return 0;
    }
    case TB_CK_STRUCT:
        return tb_codec_decode(sub, x, a, dst);
    case TB_CK_API_ERROR:
        return tb_api_error_decode(x, a, dst);
    case TB_CK_BYTES: { /* in JSON: a string */
        if (!json_is_string(x))
            return TB_EVALIDATION;
        tb_bytes *b = dst;
        b->len = json_string_length(x);
        b->data = tb_arena_strndup(a, json_string_value(x), b->len);
        b->type = NULL;
        return b->data ? 0 : TB_ENOMEM;
    }
    case TB_CK_UNION: {
        const tb_codec_union *u = sub;
        memset(dst, 0, u->size);
        int i = tb_codec_union_choose(u, x);
        if (i < 0)
            return TB_EVALIDATION;
        const tb_codec_branch *br = &u->branches[i];
        *(int *)dst = i + 1;
        return tb_codec_member_decode(br->kind, br->flags, br->sub, x, a, dst, br->off, br->n_off);
    }
    case TB_CK_MAP: {
        const tb_codec_map *m = sub;
        tb_map *out = dst;
        out->items = NULL;
        out->n = 0;
        if (!json_is_object(x))
            return TB_EVALIDATION;
        size_t n = json_object_size(x);
        char *items = tb_arena_calloc(a, n ? n : 1, m->entry_size);
        if (!items)
            return TB_ENOMEM;
        size_t i = 0;
        for (void *it = json_object_iter((json_t *)x); it && i < n;
             it = json_object_iter_next((json_t *)x, it), i++) {
            char *e = items + i * m->entry_size;
            const char *k = json_object_iter_key(it);
            size_t kl = json_object_iter_key_len(it);
            if (memchr(k, '\0', kl))
                return TB_EVALIDATION; /* a key with U+0000 cannot be a C string */
            char *key = tb_arena_strndup(a, k, kl);
            if (!key)
                return TB_ENOMEM;
            *(char **)e = key;
            const json_t *v = json_object_iter_value(it);
            if ((m->flags & TB_CF_NULLABLE) && json_is_null(v)) {
                *(bool *)(e + m->null_off) = true;
                continue;
            }
            int rc = tb_codec_member_decode(m->kind, m->flags & TB_CF_HOLDING, m->sub, v, a, e,
                                            m->off, m->n_off);
            if (rc)
                return rc;
        }
        out->items = items;
        out->n = i;
        return 0;
    }
    case TB_CK_LIST: {
        const tb_codec_list *l = sub;
        return tb_codec_member_decode(l->kind, TB_CF_ARRAY | l->flags, l->sub, x, a, dst,
                                      offsetof(tb_list, items), offsetof(tb_list, n));
    }
    case TB_CK_JSON:
        /* the struct keeps a reference (json_t's refcount changes behind const) */
        if (tb_arena_hold_json(a, (json_t *)x))
            return TB_ENOMEM;
        *(json_t **)dst = (json_t *)x;
        return 0;
    default:
        return TB_EINVAL;
    }
}

int tb_codec_member_decode(int kind, unsigned flags, const void *sub, const json_t *x,
                           tb_arena *a, void *base, uint32_t off, uint32_t n_off)
{
    char *p = base;
    if (flags & TB_CF_POINTER) {
        void *v = NULL;
        if (!json_is_null(x) || kind == TB_CK_JSON) {
            v = tb_arena_calloc(a, 1, tb_codec_value_size(kind, sub));
            if (!v)
                return TB_ENOMEM;
            int rc = tb_codec_value_decode(kind, sub, x, a, v);
            if (rc)
                return rc;
        }
        *(void **)(p + off) = v;
        return 0;
    }
    if (!(flags & TB_CF_ARRAY))
        return tb_codec_value_decode(kind, sub, x, a, p + off);
    if (!json_is_array(x))
        return TB_EVALIDATION;
    size_t n = json_array_size(x), sz = item_size(kind, flags, sub);
    char *items = tb_arena_calloc(a, n ? n : 1, sz);
    if (!items)
        return TB_ENOMEM;
    *(void **)(p + off) = items;
    *(size_t *)(p + n_off) = n;
    for (size_t i = 0; i < n; i++) {
        const json_t *y = json_array_get(x, i);
        char *slot = items + i * sz;
        if ((flags & TB_CF_ITEM_NULL) && json_is_null(y))
            continue; /* NULL */
        if ((flags & TB_CF_ITEM_NULL) && kind != TB_CK_STRING) {
            void *v = tb_arena_calloc(a, 1, tb_codec_value_size(kind, sub));
            if (!v)
                return TB_ENOMEM;
            *(void **)slot = v;
            slot = v;
        }
        int rc = tb_codec_value_decode(kind, sub, y, a, slot);
        if (rc)
            return rc;
    }
    return 0;
}

/* True when key[0..len) is one of t's properties. */
static bool is_property(const tb_codec_type *t, const char *key, size_t len)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].name_len == len && memcmp(t->fields[i].name, key, len) == 0)
            return true;
    return false;
}

/* The members of j that are not t's properties, into t's rest map. */
static int decode_rest(const tb_codec_type *t, const json_t *j, tb_arena *a, char *base,
                       size_t nprops)
{
    if (json_object_size(j) == nprops) /* only properties: the map stays empty */
        return 0;
    json_t *rest = json_object();
    if (!rest)
        return TB_ENOMEM;
    int rc = 0;
    for (void *it = json_object_iter((json_t *)j); it && rc == 0;
         it = json_object_iter_next((json_t *)j, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        /* a key with U+0000 cannot be a C string: left out, as it was before rest maps */
        if (!is_property(t, k, kl) && !memchr(k, '\0', kl) &&
            json_object_setn_nocheck(rest, k, kl, json_object_iter_value(it)))
            rc = TB_ENOMEM;
    }
    if (rc == 0) /* values are shared with j (the arena holds what it keeps), keys copied */
        rc = tb_codec_value_decode(TB_CK_MAP, t->rest, rest, a, base + t->rest_off);
    json_decref(rest);
    return rc;
}

int tb_codec_decode(const tb_codec_type *t, const json_t *j, tb_arena *a, void *out)
{
    char *base = out;
    memset(out, 0, t->size);
    if (!json_is_object(j))
        return TB_EVALIDATION;
    size_t nprops = 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const tb_codec_field *f = &t->fields[i];
        const json_t *x = json_object_getn(j, f->name, f->name_len);
        if (!x) {
            if (f->flags & TB_CF_REQUIRED)
                return TB_EVALIDATION;
            if (f->dflt && !(f->flags & TB_CF_ARRAY)) /* what the spec says absent means */
                memcpy(base + f->off, f->dflt, tb_codec_value_size(f->kind, f->sub));
            continue;
        }
        nprops++;
        if (!(f->flags & TB_CF_REQUIRED))
            *(bool *)(base + f->has_off) = true;
        if ((f->flags & TB_CF_NULLABLE) && json_is_null(x)) {
            *(bool *)(base + f->null_off) = true;
            continue;
        }
        int rc = tb_codec_member_decode(f->kind, f->flags, f->sub, x, a, base, f->off, f->n_off);
        if (rc)
            return rc;
    }
    return t->rest ? decode_rest(t, j, a, base, nprops) : 0;
}

/* ---- write ---- */

/* A map's entries as members of an object being written: each after *sep (then ','); a key
 * that is one of `skip`'s properties is left out (an object's rest map cannot repeat them). */
static void write_entries(const tb_codec_map *m, const tb_map *x, const tb_codec_type *skip,
                          char *sep, tb_buf *b)
{
    const char *items = x->items;
    for (size_t i = 0; i < x->n; i++) {
        const char *e = items + i * m->entry_size;
        const char *key = *(char *const *)e;
        size_t kl = key ? strlen(key) : 0;
        if (skip && is_property(skip, key ? key : "", kl))
            continue;
        tb_buf_putc(b, *sep);
        *sep = ',';
        tb_buf_json_string(b, key ? key : "", kl);
        tb_buf_putc(b, ':');
        if ((m->flags & TB_CF_NULLABLE) && *(const bool *)(e + m->null_off))
            tb_buf_append(b, "null", 4);
        else
            tb_codec_member_write(m->kind, m->flags & TB_CF_HOLDING, m->sub, e, m->off, m->n_off,
                                  b);
    }
}

void tb_codec_value_write(int kind, const void *sub, const void *v, tb_buf *b)
{
    switch (kind) {
    case TB_CK_STRING: {
        const char *s = *(char *const *)v;
        if (s)
            tb_buf_json_string(b, s, strlen(s));
        else
            tb_buf_append(b, "null", 4);
        return;
    }
    case TB_CK_INTEGER:
        tb_buf_json_int(b, *(const int64_t *)v);
        return;
    case TB_CK_NUMBER:
        tb_buf_json_double(b, *(const double *)v);
        return;
    case TB_CK_BOOLEAN:
        if (*(const bool *)v)
            tb_buf_append(b, "true", 4);
        else
            tb_buf_append(b, "false", 5);
        return;
    case TB_CK_ENUM: {
        const tb_codec_enum *e = sub;
        int x = *(const int *)v;
        if ((unsigned)x < e->count)
            tb_buf_json_string(b, e->values[x].s, e->values[x].n);
        else
            tb_buf_append(b, "null", 4);
        return;
    }
    case TB_CK_STRUCT:
        tb_codec_write(sub, v, b);
        return;
    case TB_CK_API_ERROR:
        tb_api_error_write(b, v);
        return;
    case TB_CK_BYTES: {
        const tb_bytes *x = v;
        tb_buf_json_string(b, x->data ? x->data : "", x->data ? x->len : 0);
        return;
    }
    case TB_CK_UNION: {
        const tb_codec_union *u = sub;
        int k = *(const int *)v;
        if (k < 1 || (size_t)k > u->nbranches) {
            tb_buf_append(b, "null", 4);
            return;
        }
        const tb_codec_branch *br = &u->branches[k - 1];
        if (union_adds_tag(u, br)) {
            /* the branch's struct has no member for the discriminator: the tag goes first */
            size_t at = b->len;
            tb_codec_member_write(br->kind, br->flags, br->sub, v, br->off, br->n_off, b);
            if (b->oom || b->len <= at || b->data[at] != '{')
                return;
            tb_buf t = TB_BUF_INIT;
            tb_buf_putc(&t, '{');
            tb_buf_json_string(&t, u->discriminator, u->disc_len);
            tb_buf_putc(&t, ':');
            tb_buf_json_string(&t, br->tags[0].s, br->tags[0].n);
            if (b->len - at > 2)
                tb_buf_putc(&t, ',');
            tb_buf_append(&t, b->data + at + 1, b->len - at - 1);
            b->len = at;
            tb_buf_append(b, t.data, t.len);
            if (t.oom)
                b->oom = true;
            tb_buf_deinit(&t);
            return;
        }
        void *tagged = with_tag(u, br, v);
        if (tagged) {
            tb_codec_write(br->sub, tagged, b);
            free(tagged);
            return;
        }
        tb_codec_member_write(br->kind, br->flags, br->sub, v, br->off, br->n_off, b);
        return;
    }
    case TB_CK_LIST: {
        const tb_codec_list *l = sub;
        tb_codec_member_write(l->kind, TB_CF_ARRAY | l->flags, l->sub, v, offsetof(tb_list, items),
                              offsetof(tb_list, n), b);
        return;
    }
    case TB_CK_MAP: {
        char sep = '{';
        write_entries(sub, v, NULL, &sep, b);
        if (sep == '{')
            tb_buf_putc(b, '{');
        tb_buf_putc(b, '}');
        return;
    }
    default: {
        const json_t *j = *(json_t *const *)v;
        if (j)
            tb_buf_json_value(b, j);
        else
            tb_buf_append(b, "null", 4);
        return;
    }
    }
}

void tb_codec_member_write(int kind, unsigned flags, const void *sub, const void *base,
                           uint32_t off, uint32_t n_off, tb_buf *b)
{
    const char *p = base;
    if (flags & TB_CF_POINTER) {
        const void *x = *(const void *const *)(p + off);
        if (x)
            tb_codec_value_write(kind, sub, x, b);
        else
            tb_buf_append(b, "null", 4);
        return;
    }
    if (!(flags & TB_CF_ARRAY)) {
        tb_codec_value_write(kind, sub, p + off, b);
        return;
    }
    const char *items = *(char *const *)(p + off);
    size_t n = *(const size_t *)(p + n_off), sz = item_size(kind, flags, sub);
    tb_buf_putc(b, '[');
    for (size_t k = 0; k < n; k++) {
        if (k)
            tb_buf_putc(b, ',');
        const void *x = item_value(kind, flags, items + k * sz);
        if (x)
            tb_codec_value_write(kind, sub, x, b);
        else
            tb_buf_append(b, "null", 4);
    }
    tb_buf_putc(b, ']');
}

void tb_codec_write(const tb_codec_type *t, const void *v, tb_buf *b)
{
    const char *base = v;
    char sep = '{';
    for (size_t i = 0; i < t->nfields; i++) {
        const tb_codec_field *f = &t->fields[i];
        if (!(f->flags & TB_CF_REQUIRED) && !*(const bool *)(base + f->has_off))
            continue;
        tb_buf_putc(b, sep);
        sep = ',';
        tb_buf_append(b, f->key, f->key_len);
        if ((f->flags & TB_CF_NULLABLE) && *(const bool *)(base + f->null_off)) {
            tb_buf_append(b, "null", 4);
        } else {
            tb_codec_member_write(f->kind, f->flags, f->sub, base, f->off, f->n_off, b);
        }
    }
    if (t->rest)
        write_entries(t->rest, (const tb_map *)(base + t->rest_off), t, &sep, b);
    if (sep == '{')
        tb_buf_putc(b, '{');
    tb_buf_putc(b, '}');
}

int tb_codec_serialize(const tb_codec_type *t, const void *v, tb_buf *out)
{
    tb_codec_write(t, v, out);
    return out->oom ? TB_ENOMEM : 0;
}

/* ---- to_json ---- */

json_t *tb_codec_value_to_json(int kind, const void *sub, const void *v)
{
    switch (kind) {
    case TB_CK_STRING: {
        const char *s = *(char *const *)v;
        return s ? json_string(s) : json_null();
    }
    case TB_CK_INTEGER:
        return json_integer((json_int_t) * (const int64_t *)v);
    case TB_CK_NUMBER:
        return json_real(*(const double *)v);
    case TB_CK_BOOLEAN:
        return json_boolean(*(const bool *)v);
    case TB_CK_ENUM: {
        const char *s = tb_codec_enum_name(sub, *(const int *)v);
        return s ? json_string(s) : json_null();
    }
    case TB_CK_STRUCT:
        return tb_codec_to_json(sub, v);
    case TB_CK_BYTES: {
        const tb_bytes *x = v;
        return json_stringn(x->data ? x->data : "", x->data ? x->len : 0);
    }
    case TB_CK_API_ERROR:
    case TB_CK_MAP: { /* through the writer: one code path for the text */
        tb_buf b = TB_BUF_INIT;
        tb_codec_value_write(kind, sub, v, &b);
        json_t *j = b.oom ? NULL : json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        tb_buf_deinit(&b);
        return j;
    }
    case TB_CK_LIST: {
        const tb_codec_list *l = sub;
        return tb_codec_member_to_json(l->kind, TB_CF_ARRAY | l->flags, l->sub, v,
                                       offsetof(tb_list, items), offsetof(tb_list, n));
    }
    case TB_CK_UNION: {
        const tb_codec_union *u = sub;
        int k = *(const int *)v;
        if (k < 1 || (size_t)k > u->nbranches)
            return json_null();
        const tb_codec_branch *br = &u->branches[k - 1];
        void *tagged = with_tag(u, br, v);
        if (tagged) {
            json_t *j = tb_codec_to_json(br->sub, tagged);
            free(tagged);
            return j;
        }
        json_t *j = tb_codec_member_to_json(br->kind, br->flags, br->sub, v, br->off, br->n_off);
        if (j && json_is_object(j) && union_adds_tag(u, br) &&
            json_object_setn_new_nocheck(j, u->discriminator, u->disc_len,
                                         json_stringn(br->tags[0].s, br->tags[0].n))) {
            json_decref(j);
            return NULL;
        }
        return j;
    }
    default: {
        json_t *j = *(json_t *const *)v;
        return j ? json_incref(j) : json_null();
    }
    }
}

json_t *tb_codec_member_to_json(int kind, unsigned flags, const void *sub, const void *base,
                                uint32_t off, uint32_t n_off)
{
    const char *p = base;
    if (flags & TB_CF_POINTER) {
        const void *x = *(const void *const *)(p + off);
        return x ? tb_codec_value_to_json(kind, sub, x) : json_null();
    }
    if (!(flags & TB_CF_ARRAY))
        return tb_codec_value_to_json(kind, sub, p + off);
    const char *items = *(char *const *)(p + off);
    size_t n = *(const size_t *)(p + n_off), sz = item_size(kind, flags, sub);
    json_t *x = json_array();
    for (size_t k = 0; x && k < n; k++) {
        const void *y = item_value(kind, flags, items + k * sz);
        if (json_array_append_new(x, y ? tb_codec_value_to_json(kind, sub, y) : json_null())) {
            json_decref(x);
            x = NULL;
        }
    }
    return x;
}

json_t *tb_codec_to_json(const tb_codec_type *t, const void *v)
{
    const char *base = v;
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < t->nfields; i++) {
        const tb_codec_field *f = &t->fields[i];
        if (!(f->flags & TB_CF_REQUIRED) && !*(const bool *)(base + f->has_off))
            continue;
        json_t *x;
        if ((f->flags & TB_CF_NULLABLE) && *(const bool *)(base + f->null_off))
            x = json_null();
        else
            x = tb_codec_member_to_json(f->kind, f->flags, f->sub, base, f->off, f->n_off);
        if (!x || json_object_setn_new_nocheck(o, f->name, f->name_len, x)) {
            json_decref(o);
            return NULL;
        }
    }
    if (t->rest) { /* the members that are not properties, after them */
        json_t *r = tb_codec_value_to_json(TB_CK_MAP, t->rest, base + t->rest_off);
        if (!r || json_object_update_missing(o, r)) {
            json_decref(r);
            json_decref(o);
            return NULL;
        }
        json_decref(r);
    }
    return o;
}

/* ---- validation ---- */

bool tb_v_never(const json_t *j, tb_vctx *c, tb_eval *ev)
{
    (void)j;
    (void)ev;
    tb_v_fail(c, "false", "no value is allowed here");
    return false;
}

int tb_validate_with(tb_vfn fn, const json_t *j, unsigned flags, tb_error *err)
{
    tb_vctx c;
    tb_vctx_init(&c, err, flags);
    bool ok = fn ? fn(j, &c, NULL) : true;
    return tb_vctx_finish(&c, ok);
}

int tb_codec_validate(const tb_codec_type *t, const json_t *j, unsigned flags, tb_error *err)
{
    return tb_validate_with(t->validate, j, flags, err);
}

int tb_codec_from_json(const tb_codec_type *t, const json_t *j, tb_arena *a, void *out,
                       tb_error *err)
{
    int rc = tb_codec_validate(t, j, TB_VALIDATE_ALL_ERRORS, err);
    if (rc)
        return rc;
    rc = tb_codec_decode(t, j, a, out);
    if (rc)
        return tb_error_set(err, rc, "%s: %s", t->name, tb_strerror(rc));
    return 0;
}

int tb_codec_parse(const tb_codec_type *t, const char *buf, size_t len, tb_arena *a, void *out,
                   tb_error *err)
{
    json_t *j = tb_json_loadb(buf, len, err);
    if (!j)
        return TB_EPARSE;
    int rc = tb_codec_from_json(t, j, a, out, err);
    json_decref(j);
    return rc;
}

static tb_vfn value_validator(int kind, const void *sub)
{
    switch (kind) {
    case TB_CK_STRUCT:
        return ((const tb_codec_type *)sub)->validate;
    case TB_CK_UNION:
        return ((const tb_codec_union *)sub)->validate;
    case TB_CK_MAP:
        return ((const tb_codec_map *)sub)->validate;
    default:
        return NULL;
    }
}

static const char *value_name(int kind, const void *sub)
{
    switch (kind) {
    case TB_CK_STRUCT:
        return ((const tb_codec_type *)sub)->name;
    case TB_CK_UNION:
        return ((const tb_codec_union *)sub)->name;
    case TB_CK_MAP:
        return ((const tb_codec_map *)sub)->name;
    default:
        return "value";
    }
}

int tb_codec_value_from_json(int kind, const void *sub, const json_t *j, tb_arena *a, void *out,
                             tb_error *err)
{
    int rc = tb_validate_with(value_validator(kind, sub), j, TB_VALIDATE_ALL_ERRORS, err);
    if (rc)
        return rc;
    rc = tb_codec_value_decode(kind, sub, j, a, out);
    if (rc)
        return tb_error_set(err, rc, "%s: %s", value_name(kind, sub), tb_strerror(rc));
    return 0;
}

int tb_codec_value_parse(int kind, const void *sub, const char *buf, size_t len, tb_arena *a,
                         void *out, tb_error *err)
{
    json_t *j = tb_json_loadb(buf, len, err);
    if (!j)
        return TB_EPARSE;
    int rc = tb_codec_value_from_json(kind, sub, j, a, out, err);
    json_decref(j);
    return rc;
}
