/*
 * The bracket form of a structured value in a query or form body, as qs (Express, Stripe's
 * clients) and Rails write and read it: name[key][0]=v. What OpenAPI's style deepObject
 * means for anything but a flat object (Stripe's expand[0]=..., created[gt]=..., nested
 * objects and arrays of objects); OpenAPI leaves those undefined, so the de facto rules hold:
 *
 *   an object's member     name[key]=...        an array's item  name[0]=... (or name[]=...)
 *   a scalar               name=text             null, empty arrays and objects: nothing
 *
 * Reading builds the tree of the names first (leaves are texts), then types it by the codec
 * descriptors of the value: a member's text becomes its kind (integer, boolean...), numbered
 * keys become an array's items in index order (gaps closed), and a union takes the branch the
 * shape and the branch's schema accept. What the descriptors do not know stays text, and the
 * schema's validator judges the whole, so nothing sent is silently dropped.
 */
#include "tablium/api.h"
#include "tablium/client.h"
#include "tablium/codec.h"
#include "tablium/json.h"

#include "../json/tb_vctx.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading: the tree of names ---- */

/* Adds one pair to the tree at *root when `name` (a whole decoded query name) is the parameter
 * pname[0..plen) or one of its bracketed members. Leaves are JSON strings, members JSON objects
 * (an empty key, name[]=, appends). 0; 1 when the pair is another's; 2 with *why when it is
 * malformed (a value and members at one place; too deep); TB_ENOMEM. */
int tb__brackets_add(json_t **root, const char *pname, size_t plen, const char *name,
                     const char *value, const char **why)
{
    size_t nl = strlen(name);
    if (nl < plen || memcmp(name, pname, plen) != 0 || (nl > plen && name[plen] != '['))
        return 1;
    /* the segments: [a][b]...; a key may hold balanced brackets of its own ([order[id]]) */
    const char *segs[TB_BRACKETS_DEPTH];
    size_t lens[TB_BRACKETS_DEPTH], nseg = 0;
    for (const char *s = name + plen; *s;) {
        const char *close = NULL;
        for (size_t depth = 0, i = 1; s[0] == '[' && s[i] && !close; i++) {
            if (s[i] == '[')
                depth++;
            else if (s[i] == ']' && depth-- == 0)
                close = s + i;
        }
        if (!close) {
            *why = "has a name whose brackets do not pair (name[key][0]=value)";
            return 2;
        }
        if (nseg == TB_BRACKETS_DEPTH) {
            *why = "is nested deeper than 16 brackets";
            return 2;
        }
        segs[nseg] = s + 1;
        lens[nseg++] = (size_t)(close - s - 1);
        s = close + 1;
    }
    /* texts and keys as they came: op.c refuses one that is not UTF-8 (rule encoding) */
    json_t *leaf = json_stringn_nocheck(value, strlen(value));
    if (!leaf)
        return TB_ENOMEM;
    if (nseg == 0) {
        if (*root && !json_is_string(*root)) {
            json_decref(leaf);
            *why = "has both a value (name=) and members (name[...]=)";
            return 2;
        }
        json_decref(*root); /* a repeated name: the last counts, as in a form */
        *root = leaf;
        return 0;
    }
    if (!*root && !(*root = json_object())) {
        json_decref(leaf);
        return TB_ENOMEM;
    }
    json_t *at = *root;
    for (size_t i = 0; i < nseg; i++) {
        if (!json_is_object(at)) {
            json_decref(leaf);
            *why = "has both a value (name=) and members (name[...]=)";
            return 2;
        }
        char idx[24];
        const char *k = segs[i];
        size_t kl = lens[i];
        if (kl == 0) { /* name[]: the next item, after any numbered one already there */
            size_t n = json_object_size(at);
            do
                kl = (size_t)snprintf(idx, sizeof idx, "%zu", n++);
            while (json_object_getn(at, idx, kl));
            k = idx;
        }
        json_t *next = json_object_getn(at, k, kl);
        if (i + 1 == nseg) {
            if (next && !json_is_string(next)) {
                json_decref(leaf);
                *why = "has both a value (name=) and members (name[...]=)";
                return 2;
            }
            return json_object_setn_new_nocheck(at, k, kl, leaf) ? TB_ENOMEM : 0;
        }
        if (!next) {
            next = json_object();
            if (!next || json_object_setn_new_nocheck(at, k, kl, next)) {
                json_decref(leaf);
                return TB_ENOMEM;
            }
        }
        at = next;
    }
    json_decref(leaf); /* not reached */
    return 0;
}

/* ---- reading: typing the tree ---- */

static json_t *typed(const json_t *node, int kind, unsigned flags, const void *sub, int depth);

/* The decimal index a key spells (at most 9 digits), or -1. */
static long index_of(const char *k, size_t kl)
{
    if (kl == 0 || kl > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < kl; i++) {
        if (k[i] < '0' || k[i] > '9')
            return -1;
        v = v * 10 + (k[i] - '0');
    }
    return v;
}

/* Whether every member of an object node is numbered (an array's items). */
static bool arrayish(const json_t *node)
{
    const char *k;
    size_t kl;
    json_t *v;
    if (!json_is_object(node) || json_object_size(node) == 0)
        return false;
    json_object_keylen_foreach((json_t *)node, k, kl, v) {
        (void)v;
        if (index_of(k, kl) < 0)
            return false;
    }
    return true;
}

typedef struct item {
    long idx;
    const json_t *v;
} item;

static int by_index(const void *a, const void *b)
{
    long x = ((const item *)a)->idx, y = ((const item *)b)->idx;
    return (x > y) - (x < y);
}

/* An array node's items in index order (gaps closed), each typed. */
static json_t *typed_items(const json_t *node, int kind, unsigned flags, const void *sub, int depth)
{
    size_t n = json_object_size(node);
    item *items = malloc(n * sizeof *items);
    json_t *out = json_array();
    if (!items || !out) {
        free(items);
        json_decref(out);
        return NULL;
    }
    size_t i = 0;
    const char *k;
    size_t kl;
    json_t *v;
    json_object_keylen_foreach((json_t *)node, k, kl, v) {
        items[i].idx = index_of(k, kl);
        items[i++].v = v;
    }
    qsort(items, n, sizeof *items, by_index);
    for (i = 0; i < n && out; i++) {
        json_t *x = typed(items[i].v, kind, flags, sub, depth);
        if (!x || json_array_append_new(out, x)) {
            json_decref(out);
            out = NULL;
        }
    }
    free(items);
    return out;
}

static json_t *members(const json_t *node, const tb_codec_type *t, const tb_codec_map *m,
                       int depth);

/* A node nothing describes: texts stay texts, numbered members an array. */
static json_t *untyped(const json_t *node)
{
    if (!json_is_object(node))
        return json_copy((json_t *)node);
    if (arrayish(node))
        return typed_items(node, TB_CK_JSON, 0, NULL, 0);
    return members(node, NULL, NULL, 0);
}

static bool scalar_kind(int kind)
{
    return kind == TB_CK_STRING || kind == TB_CK_INTEGER || kind == TB_CK_NUMBER ||
           kind == TB_CK_BOOLEAN || kind == TB_CK_ENUM;
}

/* A union: the first branch whose shape fits the node (a text a scalar, members an object or
 * array) and whose schema accepts the typed value; else the first that fits; else untyped. */
static json_t *typed_union(const json_t *node, const tb_codec_union *u, int depth)
{
    bool text = json_is_string(node), items = arrayish(node);
    json_t *fallback = NULL;
    for (size_t i = 0; i < u->nbranches; i++) {
        const tb_codec_branch *b = &u->branches[i];
        bool array = (b->flags & TB_CF_ARRAY) || b->kind == TB_CK_LIST;
        bool scalar = !array && scalar_kind(b->kind);
        if (text ? !scalar && b->kind != TB_CK_UNION : scalar || (array && !items))
            continue;
        json_t *x = typed(node, b->kind, b->flags & TB_CF_HOLDING, b->sub, depth + 1);
        if (!x) {
            json_decref(fallback);
            return NULL;
        }
        if ((b->jtypes & TB_J(json_typeof(x))) && tb__quietly_valid(b->validate, x)) {
            json_decref(fallback);
            return x;
        }
        if (!fallback)
            fallback = x;
        else
            json_decref(x);
    }
    return fallback ? fallback : untyped(node);
}

/* node typed as a member of `kind` (an array of them with TB_CF_ARRAY) described by sub;
 * depth counts the descriptors followed (a union may hold itself: past 64, untyped). */
static json_t *typed(const json_t *node, int kind, unsigned flags, const void *sub, int depth)
{
    bool text = json_is_string(node);
    if (depth > 64)
        return untyped(node);
    if (flags & TB_CF_ARRAY)
        return arrayish(node) ? typed_items(node, kind, 0, sub, depth + 1) : untyped(node);
    switch (kind) {
    case TB_CK_INTEGER:
    case TB_CK_NUMBER:
    case TB_CK_BOOLEAN:
        if (text)
            return tb_param_json(json_string_value(node), json_string_length(node),
                                 kind == TB_CK_INTEGER   ? TB_PARAM_INTEGER
                                 : kind == TB_CK_NUMBER ? TB_PARAM_NUMBER
                                                        : TB_PARAM_BOOLEAN);
        break;
    case TB_CK_LIST: {
        const tb_codec_list *l = sub;
        if (arrayish(node))
            return typed_items(node, l->kind, 0, l->sub, depth + 1);
        break;
    }
    case TB_CK_UNION:
        return typed_union(node, sub, depth);
    case TB_CK_STRUCT:
        if (!text)
            return members(node, sub, ((const tb_codec_type *)sub)->rest, depth);
        break;
    case TB_CK_MAP:
        if (!text)
            return members(node, NULL, sub, depth);
        break;
    default: /* strings, enums, free-form values: as they came */
        break;
    }
    return untyped(node);
}

/* An object node's members: each typed by its field of t, else by the map m (a struct's
 * additional members, or a map's values), else untyped. */
static json_t *members(const json_t *node, const tb_codec_type *t, const tb_codec_map *m,
                       int depth)
{
    json_t *out = json_object();
    const char *k;
    size_t kl;
    json_t *v;
    if (!out)
        return NULL;
    json_object_keylen_foreach((json_t *)node, k, kl, v) {
        const tb_codec_field *f = NULL;
        for (size_t i = 0; t && i < t->nfields && !f; i++)
            if (t->fields[i].name_len == kl && memcmp(t->fields[i].name, k, kl) == 0)
                f = &t->fields[i];
        json_t *x = f   ? typed(v, f->kind, f->flags & TB_CF_HOLDING, f->sub, depth + 1)
                    : m ? typed(v, m->kind, m->flags & TB_CF_HOLDING, m->sub, depth + 1)
                        : untyped(v);
        if (!x || json_object_setn_new_nocheck(out, k, kl, x)) { /* set_new takes x */
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *tb__brackets_typed(const json_t *tree, int kind, unsigned flags, const void *sub)
{
    return typed(tree, kind, flags & TB_CF_HOLDING, sub, 0);
}

/* ---- writing ---- */

/* name (already percent-encoded, in `name`) then '=' and the text of a scalar, or the members
 * and items below it. */
static void write_node(tb_buf *u, char *sep, tb_buf *name, const json_t *v)
{
    size_t at = name->len;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        size_t kl;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, kl, x) {
            tb_buf_puts(name, "%5B");
            tb_url_encode(name, k, kl, true);
            tb_buf_puts(name, "%5D");
            write_node(u, sep, name, x);
            name->len = at;
        }
        return;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++) {
            char idx[32];
            snprintf(idx, sizeof idx, "%%5B%zu%%5D", i);
            tb_buf_puts(name, idx);
            write_node(u, sep, name, json_array_get(v, i));
            name->len = at;
        }
        return;
    case JSON_NULL:
        return; /* a query has no null */
    default:
        break;
    }
    if (*sep)
        tb_buf_putc(u, *sep);
    *sep = '&';
    tb_buf_append(u, name->data, name->len);
    tb_buf_putc(u, '=');
    switch (json_typeof(v)) {
    case JSON_STRING:
        tb_url_encode(u, json_string_value(v), json_string_length(v), true);
        break;
    case JSON_INTEGER:
        tb_param_format_int(u, (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        tb_param_format_double(u, json_real_value(v));
        break;
    default:
        tb_buf_puts(u, json_is_true(v) ? "true" : "false");
        break;
    }
}

void tb__brackets_write(tb_buf *u, char *sep, const char *name, size_t nlen, const json_t *v)
{
    tb_buf nm = TB_BUF_INIT;
    tb_url_encode(&nm, name, nlen, true);
    write_node(u, sep, &nm, v);
    if (nm.oom)
        u->oom = true;
    tb_buf_deinit(&nm);
}

void tb__brackets_write_member(tb_buf *u, char *sep, const char *name, size_t nlen, int kind,
                               unsigned flags, const void *sub, const void *base, uint32_t off,
                               uint32_t n_off)
{
    json_t *j = tb_codec_member_to_json(kind, flags & TB_CF_HOLDING, sub, base, off, n_off);
    if (!j)
        u->oom = true;
    else
        tb__brackets_write(u, sep, name, nlen, j);
    json_decref(j);
}
