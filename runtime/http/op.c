/*
 * tablium: the table-driven operation layer (tablium/op.h): request parsing and response
 * writing of generated servers, the calls of generated clients.
 */
#include "tablium/op.h"

#include "tablium/api.h"
#include "tablium/client.h"
#include "tablium/json.h"
#include "tablium/log.h"
#include "tablium/validate.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define AT(base, off, T) ((T *)((char *)(base) + (off)))
#define CAT(base, off, T) ((const T *)((const char *)(base) + (off)))

static const char *const IN_NAMES[] = {"path", "query", "header", "cookie"};

static bool run_validator(tb_vfn fn, const json_t *j, tb_vctx *c)
{
    return fn ? fn(j, c, NULL) : true;
}

/* A request's Content-Type (parameters allowed) against a media type or range of the spec
 * (type/sub, type/ followed by *, or the full wildcard). */
bool tb__media_matches(const char *ct, const char *range)
{
    if (!range || strcmp(range, "*/*") == 0)
        return true;
    if (!ct)
        return false;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    size_t rn = strlen(range);
    if (rn >= 2 && range[rn - 1] == '*' && range[rn - 2] == '/')
        return n >= rn - 1 && strncasecmp(ct, range, rn - 1) == 0;
    return n == rn && strncasecmp(ct, range, n) == 0;
}

/* Whether a Content-Type is what a body of `media` (declared type `range`) takes: JSON takes
 * application/json and the +json types (tb__is_json_media_type, as the server's own check). */
static bool body_media_matches(int media, const char *ct, const char *range)
{
    return media == TB_MEDIA_JSON ? tb__is_json_media_type(ct) : tb__media_matches(ct, range);
}

/* What to send as Content-Type for bytes of declared type `range`. */
static const char *concrete_type(const tb_bytes *b, const char *range)
{
    if (b->type && *b->type)
        return b->type;
    if (!range || strchr(range, '*'))
        return "application/octet-stream";
    return range;
}

/* a value that travels as JSON text in a form field or a part */
static bool structured(int kind)
{
    return kind == TB_CK_STRUCT || kind == TB_CK_JSON || kind == TB_CK_UNION || kind == TB_CK_MAP ||
           kind == TB_CK_LIST;
}

static int text_kind(int kind)
{
    switch (kind) {
    case TB_CK_INTEGER:
        return TB_PARAM_INTEGER;
    case TB_CK_NUMBER:
        return TB_PARAM_NUMBER;
    case TB_CK_BOOLEAN:
        return TB_PARAM_BOOLEAN;
    default:
        return TB_PARAM_STRING;
    }
}

/* The field of struct type t (may be NULL) named name, or NULL. */
static const tb_codec_field *field_named(const tb_codec_type *t, const char *name)
{
    for (size_t i = 0; t && i < t->nfields; i++)
        if (strcmp(t->fields[i].name, name) == 0)
            return &t->fields[i];
    return NULL;
}

/* Whether every text in j (strings and member names) is UTF-8. Parameters and form members
 * are JSON Schema strings once decoded, which are Unicode text: a handler that answers one
 * must be able to write it as JSON. */
static bool texts_utf8(const json_t *j)
{
    if (json_is_string(j))
        return tb_utf8_valid(json_string_value(j), json_string_length(j));
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if (!texts_utf8(json_array_get(j, i)))
                return false;
    } else if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
            if (!tb_utf8_valid(k, strlen(k)) || !texts_utf8(v))
                return false;
    }
    return true;
}

/* The first member of a form or multipart body object whose text is not UTF-8 (a tb_bytes
 * field, a file, holds bytes and is not text), or NULL. */
static const char *member_not_utf8(const tb_codec_type *t, const json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        const tb_codec_field *f = field_named(t, k);
        if (!(f && f->kind == TB_CK_BYTES) && !texts_utf8(v))
            return k;
    }
    return NULL;
}

/* A decode that failed for another reason than memory: the validator let through a value the
 * C types cannot hold (an integer beyond int64_t, 1e19; a schema without `type` whose
 * properties made it a struct, given a string; a union none of whose branches takes it). As
 * far as the service can tell it is the request's to mend: a violation named at /<in>/<name>
 * (400), never a 500. Returns rc, or 0 once it is recorded (*r false). */
static int unheld(tb_vctx *c, const char *name, int rc, bool *r)
{
    if (rc == 0 || rc == TB_ENOMEM)
        return rc;
    *r = false;
    tb_v_fail_member(c, name, "type", "holds a value its schema allows but the service's types "
                                      "cannot (an integer beyond 64 bits, an object where the "
                                      "schema names no type...)");
    return 0;
}

/* Sets member `key` of a form-like body object to v (owned): appended to an array for an array
 * field, else replacing (the last of repeated names counts). false on out of memory. */
static bool put_field(json_t *o, const tb_codec_field *f, const char *key, json_t *v)
{
    if (!(f && (f->flags & TB_CF_ARRAY)))
        return json_object_set_new(o, key, v) == 0;
    json_t *arr = json_object_get(o, key);
    if (!arr) {
        arr = json_array();
        if (!arr || json_object_set_new(o, key, arr)) {
            json_decref(v);
            return false;
        }
    }
    return json_array_append_new(arr, v) == 0;
}

/* A form pair that belongs to a member in the bracket form (bd->deep: its encoding says
 * deepObject): added to that member's tree. 1 when no such member takes it, else as
 * tb__brackets_add (2: *why and *where say what is malformed). */
static int form_bracket(const tb_op_body *bd, json_t **trees, const char *key, const char *val,
                        const char **why, const char **where)
{
    const tb_codec_type *t = bd->sub;
    int r = 1;
    for (size_t i = 0; i < t->nfields && r == 1; i++) {
        if (!bd->deep[i])
            continue;
        r = tb__brackets_add(&trees[i], t->fields[i].name, t->fields[i].name_len, key, val, why);
        if (r == 2)
            *where = t->fields[i].name;
    }
    return r;
}

/* An application/x-www-form-urlencoded body as a JSON object: each member typed by its field in
 * the body's struct (repeated names make an array for an array field; members in the bracket
 * form, bd->deep, from all their name[key][0]=value pairs), unknown names kept as strings so
 * that the schema judges them. NULL on out of memory; *bad when an escape is malformed, or a
 * bracket name (then *why, and *where the member). */
static json_t *form_json(const tb_op_body *bd, const char *p, size_t n, tb_arena *a, bool *bad,
                         const char **why, const char **where)
{
    const tb_codec_type *t = bd->sub;
    json_t *o = json_object();
    json_t **trees = bd->deep && t && t->nfields ? tb_arena_calloc(a, t->nfields, sizeof *trees)
                                                 : NULL;
    if (bd->deep && t && t->nfields && !trees) {
        json_decref(o);
        return NULL;
    }
    const char *end = p + n;
    while (o && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        char *raw = tb_arena_strndup(a, p, (size_t)(stop - p));
        if (!raw) {
            json_decref(o);
            return NULL;
        }
        for (char *x = raw; *x; x++)
            if (*x == '+')
                *x = ' ';
        size_t kl = (size_t)(kend - p);
        /* each its own flag: tb_http_pct_decode clears the one it is given, so one shared flag
         * forgot a malformed name when its value decoded (a 500: the name NULL read as out of
         * memory), and a malformed pair when a later pair decoded (the member silently lost) */
        bool kbad = false, vbad = false;
        char *key = tb_http_pct_decode(a, raw, kl, &kbad);
        char *val = eq ? tb_http_pct_decode(a, raw + kl + 1, strlen(raw + kl + 1), &vbad)
                       : tb_arena_strdup(a, "");
        p = amp ? amp + 1 : end;
        if (kbad || vbad)
            *bad = true;
        if (*bad)
            continue;
        if (!key || !val) {
            json_decref(o);
            o = NULL;
            break;
        }
        if (!tb_utf8_valid(key, strlen(key))) { /* a member name is text: else 400, not lost */
            *bad = true;
            *why = "has a member name that is not UTF-8";
            continue;
        }
        int br = trees ? form_bracket(bd, trees, key, val, why, where) : 1;
        if (br == 2)
            *bad = true;
        if (br != 1) {
            if (br == TB_ENOMEM) {
                json_decref(o);
                o = NULL;
            }
            continue;
        }
        const tb_codec_field *f = field_named(t, key);
        json_t *v = NULL;
        if (f && structured(f->kind)) /* an object member: its JSON text (as the client sends) */
            v = json_loads(val, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (!v)
            v = tb_param_json(val, strlen(val), f ? text_kind(f->kind) : TB_PARAM_STRING);
        if (!v || !put_field(o, f, key, v)) {
            json_decref(o);
            o = NULL;
        }
    }
    for (size_t i = 0; trees && i < t->nfields; i++) {
        if (!trees[i])
            continue;
        const tb_codec_field *f = &t->fields[i];
        json_t *v = o ? tb__brackets_typed(trees[i], f->kind, f->flags, f->sub) : NULL;
        if (o && (!v || json_object_set_new(o, f->name, v))) {
            json_decref(o);
            o = NULL;
        }
        json_decref(trees[i]);
    }
    return o;
}

/* A multipart/form-data body as a JSON object, like form_json: scalar parts typed by their
 * field, files (tb_bytes fields) as strings holding their bytes, structured fields parsed as
 * JSON. NULL on out of memory; *bad (with *why) when a part does not parse. */
static json_t *multipart_json(const tb_codec_type *t, const tb__part *parts, size_t n,
                              bool *bad, const char **why, const char **where)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n && !*bad; i++) {
        const tb__part *pt = &parts[i];
        if (!tb_utf8_valid(pt->name, strlen(pt->name))) { /* a member name is text */
            *bad = true;
            *why = "has a part whose name is not UTF-8";
            break;
        }
        const tb_codec_field *f = field_named(t, pt->name);
        json_t *v;
        int kind = f ? f->kind : TB_CK_STRING;
        if (kind == TB_CK_BYTES) {
            v = json_stringn_nocheck(pt->data, pt->len);
        } else if (structured(kind)) {
            v = json_loadb(pt->data, pt->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            if (!v) {
                *bad = true;
                *why = "is not JSON (a part holding an object or a free-form value)";
                *where = pt->name;
                break;
            }
        } else {
            v = tb_param_json(pt->data, pt->len, text_kind(kind));
        }
        if (!v || !put_field(o, f, pt->name, v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* The files of a decoded multipart body take their part's Content-Type. */
static void multipart_types(const tb_codec_type *t, const tb__part *parts, size_t n, char *obj)
{
    for (size_t k = 0; k < t->nfields; k++) {
        const tb_codec_field *f = &t->fields[k];
        if (f->kind != TB_CK_BYTES || (f->flags & (TB_CF_POINTER | TB_CF_ITEM_NULL)))
            continue; /* (a file of a nullable-items array keeps the declared type) */
        size_t seen = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(parts[i].name, f->name) != 0)
                continue;
            if (f->flags & TB_CF_ARRAY) {
                if (seen < *(size_t *)(obj + f->n_off))
                    (*(tb_bytes **)(obj + f->off))[seen].type = parts[i].type;
            } else {
                ((tb_bytes *)(obj + f->off))->type = parts[i].type; /* the last one counts */
            }
            seen++;
        }
    }
}

/* ---- server: parse ---- */

/* The separator of an array parameter's items in one text. */
static char item_sep(const tb_op_param *p)
{
    return p->style == TB_STYLE_SPACE_DELIMITED ? ' ' : p->style == TB_STYLE_PIPE_DELIMITED ? '|' : ',';
}

/* The members k of a query name "<param>[k]" (NULL for another name), and the object a
 * query_each pass builds of them. */
static const char *member_key(const tb_op_param *p, const char *name, size_t *kl)
{
    size_t nl = strlen(name), pl = (size_t)p->name_len;
    if (nl < pl + 2 || memcmp(name, p->name, pl) != 0 || name[pl] != '[' || name[nl - 1] != ']')
        return NULL;
    *kl = nl - pl - 2;
    return name + pl + 1;
}

typedef struct query_members {
    const tb_op_param *p;
    json_t *o;
    bool oom;
} query_members;

/* The members obj[k]=v of a deepObject parameter whose k is no field of its struct, as
 * strings: additionalProperties (false, or a schema) then judges them at /query/obj/k; they
 * were dropped unseen, so a misspelt filter (created[gtee]) passed as no filter at all. */
static void deep_extra_one(void *arg, const char *name, const char *value)
{
    query_members *x = arg;
    size_t kl;
    const char *k = x->oom ? NULL : member_key(x->p, name, &kl);
    if (!k || kl == 0 || memchr(k, '[', kl) || memchr(k, ']', kl))
        return; /* another name, or nested brackets: not this struct's members */
    const tb_codec_type *t = x->p->sub;
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].name_len == kl && memcmp(t->fields[i].name, k, kl) == 0)
            return;
    if (!x->o && !(x->o = json_object())) {
        x->oom = true;
        return;
    }
    json_t *v = json_string(value);
    if (!v)
        v = json_stringn_nocheck(value, strlen(value)); /* not UTF-8: texts_utf8 reports it */
    if (!v || json_object_setn_new_nocheck(x->o, k, kl, v))
        x->oom = true;
}

/* An object query parameter spread over the query (deepObject obj[k]=v, or form with explode:
 * k=v): a JSON object of the members present, each typed by its field; NULL when none is
 * there (*oom on out of memory). */
static json_t *object_from_query(const tb_op_param *p, const tb_http_req *hr, bool *oom)
{
    const tb_codec_type *t = p->sub;
    json_t *o = NULL;
    char name[256];
    for (size_t i = 0; i < t->nfields; i++) {
        const tb_codec_field *f = &t->fields[i];
        if (p->style == TB_STYLE_DEEP_OBJECT)
            snprintf(name, sizeof name, "%s[%s]", p->name, f->name);
        else
            snprintf(name, sizeof name, "%s", f->name);
        const char *v = tb_http_req_query(hr, name, NULL);
        if (!v)
            continue;
        if (!o && !(o = json_object())) {
            *oom = true;
            return NULL;
        }
        json_t *x = tb_param_json(v, strlen(v), text_kind(f->kind));
        if (!x || json_object_set_new(o, f->name, x)) {
            *oom = true;
            json_decref(o);
            return NULL;
        }
    }
    if (p->style == TB_STYLE_DEEP_OBJECT) { /* obj[k] of no field: the schema judges it */
        query_members x = {p, o, false};
        tb_http_req_query_each(hr, deep_extra_one, &x);
        o = x.o;
        *oom = x.oom;
        if (x.oom) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static void map_query_one(void *arg, const char *name, const char *value)
{
    query_members *m = arg;
    size_t kl;
    const char *k = m->oom ? NULL : member_key(m->p, name, &kl);
    if (!k)
        return;
    const tb_codec_map *mp = m->p->sub;
    json_t *x = tb_param_json(value, strlen(value), text_kind(mp->kind));
    if (!m->o)
        m->o = json_object();
    if (!x || !m->o) {
        json_decref(x);
        m->oom = true;
    } else if (json_object_setn_new_nocheck(m->o, k, kl, x)) {
        m->oom = true;
    }
}

/* A map parameter in deepObject style (obj[k]=v for any k): a JSON object of the values, each
 * typed by the map's value kind; NULL when none is there. */
static json_t *map_from_query(const tb_op_param *p, const tb_http_req *hr, bool *oom)
{
    query_members m = {p, NULL, false};
    tb_http_req_query_each(hr, map_query_one, &m);
    if (m.oom) {
        json_decref(m.o);
        *oom = true;
        return NULL;
    }
    return m.o;
}

typedef struct bracket_query {
    const tb_op_param *p;
    json_t *tree;
    int rc; /* 0, 2 (malformed: why) or TB_ENOMEM: the first that is not 0 */
    const char *why;
} bracket_query;

static void bracket_one(void *arg, const char *name, const char *value)
{
    bracket_query *q = arg;
    if (q->rc == 0) {
        int r = tb__brackets_add(&q->tree, q->p->name, q->p->name_len, name, value, &q->why);
        q->rc = r == 1 ? 0 : r;
    }
}

/* A parameter in the bracket form (deepObject beyond a flat object: name[k][0]=v), typed by
 * its descriptors; NULL when none of its names is there, or with *rc set (TB_ENOMEM, or 2 and
 * *why when malformed). */
static json_t *brackets_from_query(const tb_op_param *p, const tb_http_req *hr, int *rc,
                                   const char **why)
{
    bracket_query q = {p, NULL, 0, NULL};
    tb_http_req_query_each(hr, bracket_one, &q);
    json_t *j = NULL;
    if (q.rc == 0 && q.tree && !(j = tb__brackets_typed(q.tree, p->kind, p->flags, p->sub)))
        q.rc = TB_ENOMEM;
    json_decref(q.tree);
    *rc = q.rc;
    *why = q.why;
    return j;
}

/*
 * A list or an object in one text ("a,b,c", "k,v,k,v", "k=v,k=v") is split on its literal
 * separators before it is percent-decoded, piece by piece, so that an escaped separator
 * ("a%2Cb,c") stays in its item, as RFC 6570 (which OpenAPI's styles follow) and our client
 * write it. It was decoded first, and "a%2Cb" became two items.
 */
typedef enum { DEC_NONE, DEC_LENIENT, DEC_STRICT } dec_mode;

/* s[0..n) percent-decoded: DEC_STRICT (a path) fails on a malformed escape or %00 (*bad);
 * DEC_LENIENT (a query, a cookie) keeps those as written, as the query's own decoding does.
 * NULL on out of memory or when bad. */
static const char *piece(tb_arena *a, const char *s, size_t n, dec_mode m, size_t *out_n,
                         bool *bad)
{
    if (m == DEC_NONE || !memchr(s, '%', n)) {
        *out_n = n;
        return s;
    }
    if (m == DEC_STRICT) {
        char *d = tb_http_pct_decode(a, s, n, bad);
        *out_n = d ? strlen(d) : 0;
        return d;
    }
    char *d = tb_arena_alloc(a, n + 1), *o = d;
    if (!d)
        return NULL;
    for (size_t i = 0; i < n;) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = tb__hexval(s[i + 1])) >= 0 &&
            (l = tb__hexval(s[i + 2])) >= 0 && (h | l) != 0) {
            *o++ = (char)(h << 4 | l);
            i += 3;
        } else {
            *o++ = s[i++];
        }
    }
    *o = '\0';
    *out_n = (size_t)(o - d);
    return d;
}

/* An array from a still-encoded text split on sep (a literal comma), each item decoded (m).
 * NULL on out of memory, or when an item is malformed in a path (*bad). */
static json_t *split_encoded(tb_arena *a, const char *s, size_t n, char sep, tb_param_kind kind,
                             dec_mode m, bool *bad)
{
    json_t *arr = json_array();
    if (!arr || n == 0)
        return arr;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != sep)
            continue;
        size_t dn;
        const char *d = piece(a, s + start, i - start, m, &dn, bad);
        if (!d || json_array_append_new(arr, tb_param_json(d, dn, kind))) {
            json_decref(arr);
            return NULL;
        }
        start = i + 1;
    }
    return arr;
}

/* An object parameter in one text s[0..n): "k,v,k,v" (form and simple), or "k=v,k=v" (simple
 * with explode), keys and values decoded (m) once split. Members typed by their fields; NULL
 * on out of memory, or when a piece is malformed in a path (*bad). */
static json_t *object_from_text(const tb_op_param *p, tb_arena *a, const char *raw, size_t n,
                                dec_mode m, bool *bad)
{
    const tb_codec_type *t = p->sub;
    bool pairs = p->style == TB_STYLE_SIMPLE && (p->flags & TB_PF_EXPLODE);
    json_t *o = json_object();
    const char *s = raw, *stop = raw + n;
    while (o && s < stop) {
        const char *end = memchr(s, ',', (size_t)(stop - s));
        end = end ? end : stop;
        const char *k = s, *v;
        size_t kl, vl;
        if (pairs) {
            const char *eq = memchr(s, '=', (size_t)(end - s));
            kl = eq ? (size_t)(eq - s) : (size_t)(end - s);
            v = eq ? eq + 1 : end;
            vl = (size_t)(end - v);
            s = end < stop ? end + 1 : end;
        } else {
            kl = (size_t)(end - s);
            s = end < stop ? end + 1 : end;
            const char *vend = memchr(s, ',', (size_t)(stop - s));
            vend = vend ? vend : stop;
            v = s;
            vl = (size_t)(vend - s);
            s = vend < stop ? vend + 1 : vend;
        }
        if (!(k = piece(a, k, kl, m, &kl, bad)) || !(v = piece(a, v, vl, m, &vl, bad))) {
            json_decref(o);
            return NULL;
        }
        const tb_codec_field *f = NULL;
        for (size_t i = 0; i < t->nfields && !f; i++)
            if (t->fields[i].name_len == kl && memcmp(t->fields[i].name, k, kl) == 0)
                f = &t->fields[i];
        json_t *x = tb_param_json(v, vl, f ? text_kind(f->kind) : TB_PARAM_STRING);
        if (!x || json_object_setn_new_nocheck(o, k, kl, x)) { /* keys judged by texts_utf8 */
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* A parameter's value as JSON (j, released here): validated at /<in>/<name>, and decoded into
 * req (with these codec flags) while every parameter so far was valid. false when parsing must
 * stop, as parse_param. */
static bool judge_param(const tb_op_param *p, unsigned flags, json_t *j, tb_arena *a, void *req,
                        tb_vctx *c, bool *ok, int *rc)
{
    tb_v_push_key(c, p->name, p->name_len);
    bool r = run_validator(p->validate, j, c);
    tb_v_pop(c);
    if (r && *ok) {
        *rc = tb_codec_member_decode(p->kind, flags, p->sub, j, a, req, p->off, p->n_off);
        *rc = unheld(c, p->name, *rc, &r);
        if (!(p->flags & TB_CF_REQUIRED))
            *AT(req, p->has_off, bool) = true;
    }
    json_decref(j);
    if (*rc)
        return false;
    if (!r) {
        *ok = false;
        if (!(c->flags & TB_VALIDATE_ALL_ERRORS))
            return false;
    }
    return true;
}

/* One parameter: its raw text to JSON, validated and decoded. false when parsing must stop
 * (then *rc is set: an internal failure, or 0 to answer the violations so far). */
static bool parse_param(const tb_op_param *p, tb_ctx *ctx, const tb_http_req *hr, void *req,
                        tb_vctx *c, bool *ok, int *rc)
{
    tb_arena *a = ctx->arena;
    const char *vals[64];
    size_t nv = 0;
    bool bad = false, repeated = false;
    const char *raw = NULL, *why = NULL;
    json_t *spread = NULL; /* an object parameter read from several query names */
    bool list = (p->flags & TB_CF_ARRAY) && (p->flags & TB_PF_EXPLODE) && p->in == TB_IN_QUERY &&
                !(p->flags & TB_PF_CONTENT);
    /* a list or an object in one text, split before it is decoded (see piece): enc is that
     * text, still encoded; raw then points at it too */
    bool in_one = !(p->flags & TB_PF_CONTENT) && p->in != TB_IN_HEADER &&
                  ((p->kind == TB_CK_STRUCT && p->style != TB_STYLE_DEEP_OBJECT &&
                    !(p->in == TB_IN_QUERY && (p->flags & TB_PF_EXPLODE))) ||
                   ((p->flags & TB_CF_ARRAY) && !list && item_sep(p) == ','));
    const char *enc = NULL;
    size_t enc_n = 0;
    dec_mode dm = p->in == TB_IN_PATH ? DEC_STRICT : DEC_LENIENT;
    switch (p->in) {
    case TB_IN_PATH:
        if (in_one) {
            raw = enc = hr->params[p->index].p;
            enc_n = hr->params[p->index].n;
            break;
        }
        raw = tb_http_pct_decode(a, hr->params[p->index].p, hr->params[p->index].n, &bad);
        if (!raw && !bad) {
            *rc = TB_ENOMEM;
            return false;
        }
        break;
    case TB_IN_QUERY:
        if (p->flags & TB_PF_BRACKETS) {
            int brc;
            spread = brackets_from_query(p, hr, &brc, &why);
            if (brc == TB_ENOMEM) {
                *rc = TB_ENOMEM;
                return false;
            }
            bad = brc != 0;
            raw = spread ? "" : NULL;
        } else if (p->kind == TB_CK_STRUCT && !(p->flags & TB_PF_CONTENT) &&
            (p->style == TB_STYLE_DEEP_OBJECT || (p->flags & TB_PF_EXPLODE))) {
            bool oom = false;
            spread = object_from_query(p, hr, &oom);
            if (oom) {
                *rc = TB_ENOMEM;
                return false;
            }
            raw = spread ? "" : NULL;
        } else if (p->kind == TB_CK_MAP && p->style == TB_STYLE_DEEP_OBJECT) {
            bool oom = false;
            spread = map_from_query(p, hr, &oom);
            if (oom) {
                *rc = TB_ENOMEM;
                return false;
            }
            raw = spread ? "" : NULL;
        } else if (list) {
            nv = tb_http_req_query_all(hr, p->name, vals, 64);
            bad = nv > 64;
            raw = nv ? vals[0] : NULL;
        } else if (in_one) {
            if ((raw = enc = tb_http_req_query_raw(hr, p->name)))
                enc_n = strlen(enc);
        } else {
            /* one value: given twice, which one counts is what HTTP parameter pollution plays
             * on (proxies take the first, others the last): refused, not guessed */
            const char *two[2];
            size_t n = tb_http_req_query_all(hr, p->name, two, 2);
            raw = n ? two[0] : NULL;
            if (n > 1) {
                bad = repeated = true;
                why = "is given more than once (a parameter of one value is given once)";
            }
        }
        break;
    case TB_IN_HEADER:
        raw = tb_http_req_header(hr, p->name);
        break;
    default:
        raw = tb_http_req_cookie(hr, p->name);
        if (raw && in_one) {
            enc = raw;
            enc_n = strlen(enc);
        } else if (raw && strchr(raw, '%')) { /* clients percent-encode what a cookie cannot hold */
            bool malformed = false;
            const char *d = tb_http_pct_decode(a, raw, strlen(raw), &malformed);
            if (d && !malformed)
                raw = d;
        }
        break;
    }
    tb_v_push_key(c, IN_NAMES[p->in], strlen(IN_NAMES[p->in]));
    if (bad) {
        *ok = false;
        bool go = p->in == TB_IN_PATH ? tb_v_fail_member(c, p->name, "encoding",
                                                         "has a malformed percent-encoding")
                  : why ? tb_v_fail_member(c, p->name, repeated ? "repeated" : "style", why)
                        : tb_v_fail_member(c, p->name, "maxItems", "has more than 64 values");
        if (!go)
            return false;
    } else if (raw && (p->flags & TB_PF_CONTENT)) {
        /* content: application/json: the whole value is JSON text of the schema */
        json_t *j = json_loadb(raw, strlen(raw), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (!j) {
            *ok = false;
            if (!tb_v_fail_member(c, p->name, "json", "is not JSON (its content is application/json)"))
                return false;
        } else if (!judge_param(p, p->flags & TB_CF_HOLDING, j, a, req, c, ok, rc)) {
            return false;
        }
    } else if (raw) {
        json_t *j;
        bool malformed = false;
        if (spread)
            j = spread;
        else if (enc && p->kind == TB_CK_STRUCT)
            j = object_from_text(p, a, enc, enc_n, dm, &malformed);
        else if (p->kind == TB_CK_STRUCT) /* a header: nothing to decode */
            j = object_from_text(p, a, raw, strlen(raw), DEC_NONE, NULL);
        else if (list)
            j = tb_param_json_list(vals, nv, p->text);
        else if (enc)
            j = split_encoded(a, enc, enc_n, item_sep(p), p->text, dm, &malformed);
        else if (p->flags & TB_CF_ARRAY)
            j = tb_param_json_split(raw, strlen(raw), item_sep(p), p->text);
        else
            j = tb_param_json(raw, strlen(raw), p->text);
        if (!j && malformed) {
            *ok = false;
            if (!tb_v_fail_member(c, p->name, "encoding", "has a malformed percent-encoding"))
                return false;
            tb_v_pop(c);
            return true;
        }
        if (!j) {
            *rc = TB_ENOMEM;
            return false;
        }
        if (p->kind != TB_CK_BYTES && !texts_utf8(j)) {
            json_decref(j);
            *ok = false;
            if (!tb_v_fail_member(c, p->name, "encoding", "is not UTF-8 text once percent-decoded"))
                return false;
        } else if (!judge_param(p, p->flags, j, a, req, c, ok, rc)) {
            return false;
        }
    } else if (p->flags & TB_CF_REQUIRED) {
        *ok = false;
        if (!tb_v_fail_member(c, p->name, "required", "is required"))
            return false;
    } else if (p->dflt) {
        memcpy(AT(req, p->off, char), p->dflt, tb_codec_value_size(p->kind, p->sub));
    }
    tb_v_pop(c);
    return true;
}

int tb_op_parse(const tb_op *op, tb_ctx *ctx, const tb_http_req *hr, void *req, tb_http_res *res)
{
    tb_arena *a = ctx->arena;
    tb_error err = TB_ERROR_INIT;
    tb_vctx vc;
    tb_vctx *c = &vc;
    bool ok = true;
    int rc = 0;
    memset(req, 0, op->req_size);
    tb_vctx_init(c, &err, TB_VALIDATE_ALL_ERRORS | TB_VALIDATE_FORMATS | TB_VALIDATE_REQUEST);
    for (size_t i = 0; i < op->nparams; i++) {
        if (!parse_param(&op->params[i], ctx, hr, req, c, &ok, &rc)) {
            if (rc)
                goto out;
            c->npath = 0;
            goto done;
        }
    }
    const tb_op_body *bd = op->body;
    /* the body's media type: its own, or one of its alternatives by Content-Type */
    int media = bd ? bd->media : TB_MEDIA_JSON;
    const char *want = bd ? bd->content_type : NULL;
    if (bd && bd->nalts && hr->content_type && !body_media_matches(media, hr->content_type, want)) {
        for (size_t i = 0; i < bd->nalts; i++) {
            if (body_media_matches(bd->alts[i].media, hr->content_type, bd->alts[i].content_type)) {
                media = bd->alts[i].media;
                want = bd->alts[i].content_type;
                break;
            }
        }
    }
    if (bd && bd->nalts && hr->body_len && !body_media_matches(media, hr->content_type, want)) {
        char msg[400];
        size_t n = (size_t)snprintf(msg, sizeof msg, "the request body must be %s",
                                    bd->content_type);
        for (size_t i = 0; i < bd->nalts && n < sizeof msg; i++)
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s%s",
                                  i + 1 == bd->nalts ? " or " : ", ", bd->alts[i].content_type);
        tb_api_error e = {"unsupported_media_type", msg, NULL, NULL, 0};
        rc = tb_http_res_error(res, ctx, 415, &e);
        if (rc == 0)
            rc = 1;
        goto out;
    }
    /* an empty body with its Content-Type is a body (zero bytes are data) */
    if (bd && media != TB_MEDIA_JSON && (hr->body_len || hr->content_type)) {
        if (!tb__media_matches(hr->content_type, want)) {
            char msg[160];
            snprintf(msg, sizeof msg, "the request body must be %s", want);
            tb_api_error e = {"unsupported_media_type", msg, NULL, NULL, 0};
            rc = tb_http_res_error(res, ctx, 415, &e);
            if (rc == 0)
                rc = 1;
            goto out;
        }
        json_t *j = NULL;
        bool bad = false;
        const char *why = "has a malformed percent-encoding", *where = NULL;
        tb__part *parts = NULL;
        size_t nparts = 0;
        if (media == TB_MEDIA_MULTIPART) {
            int prc = tb__multipart_parse(hr->content_type, hr->body, hr->body_len, a, &parts,
                                          &nparts, &why);
            if (prc > 0) {
                rc = prc;
                goto out;
            }
            if (prc < 0) {
                bad = true;
            } else {
                j = multipart_json(bd->sub, parts, nparts, &bad, &why, &where);
                if (!j && !bad) {
                    rc = TB_ENOMEM;
                    goto out;
                }
            }
        } else if (media == TB_MEDIA_BYTES) {
            tb_bytes *b = AT(req, bd->off, tb_bytes);
            b->data = hr->body;
            b->len = hr->body_len;
            b->type = hr->content_type;
            /* a text body against its string schema (maxLength, pattern...) */
            if (bd->validate && tb_utf8_valid(hr->body, hr->body_len))
                j = json_stringn(hr->body, hr->body_len);
        } else {
            j = form_json(bd, hr->body, hr->body_len, a, &bad, &why, &where);
            if (!j && !bad) {
                rc = TB_ENOMEM;
                goto out;
            }
        }
        bool r = true;
        const char *not_text = j && json_is_object(j) && media != TB_MEDIA_BYTES
                                   ? member_not_utf8(bd->kind == TB_CK_STRUCT ? bd->sub : NULL, j)
                                   : NULL;
        tb_v_push_key(c, "body", 4);
        if (bad) {
            r = false;
            if (where)
                tb_v_fail_member(c, where, media == TB_MEDIA_FORM ? "style" : "json", "%s", why);
            else
                tb_v_fail(c, media == TB_MEDIA_MULTIPART ? "multipart" : "encoding", "%s", why);
        } else if (not_text) {
            r = false;
            tb_v_fail_member(c, not_text, "encoding", "%s",
                             media == TB_MEDIA_MULTIPART
                                 ? "is not UTF-8 text (a part that is not a file)"
                                 : "is not UTF-8 text once percent-decoded");
        } else if (j) {
            r = run_validator(bd->validate, j, c);
        }
        tb_v_pop(c);
        if (r && ok && (media == TB_MEDIA_FORM || media == TB_MEDIA_MULTIPART)) {
            rc = tb_codec_member_decode(bd->kind, bd->flags, bd->sub, j, a, req, bd->off, bd->n_off);
            rc = unheld(c, "body", rc, &r);
            if (r && !rc && media == TB_MEDIA_MULTIPART && bd->kind == TB_CK_STRUCT)
                multipart_types(bd->sub, parts, nparts, AT(req, bd->off, char));
        }
        if (r && !(bd->flags & TB_CF_REQUIRED))
            *AT(req, bd->has_off, bool) = true;
        json_decref(j);
        if (rc)
            goto out;
        if (!r)
            ok = false;
    } else if (bd && media == TB_MEDIA_JSON && hr->body_len) {
        tb_error perr = TB_ERROR_INIT;
        json_t *j = tb_json_loadb(hr->body, hr->body_len, &perr);
        if (!j) {
            rc = perr.code == TB_ENOMEM ? TB_ENOMEM
                                        : tb_http_res_error_from(res, ctx, 400, "malformed_json", &perr);
            tb_error_deinit(&perr);
            if (rc == 0)
                rc = 1;
            goto out;
        }
        tb_error_deinit(&perr);
        tb_v_push_key(c, "body", 4);
        bool r = run_validator(bd->validate, j, c);
        tb_v_pop(c);
        if (r && ok) {
            rc = tb_codec_member_decode(bd->kind, bd->flags, bd->sub, j, a, req, bd->off, bd->n_off);
            rc = unheld(c, "body", rc, &r);
            if (!(bd->flags & TB_CF_REQUIRED))
                *AT(req, bd->has_off, bool) = true;
        }
        json_decref(j);
        if (rc)
            goto out;
        if (!r)
            ok = false;
    } else if (bd && (bd->flags & TB_CF_REQUIRED)) {
        ok = false;
        tb_v_fail_member(c, "body", "required", media == TB_MEDIA_JSON ? "a JSON body is required"
                                                                           : "a body is required");
    }
done:
    if (tb_vctx_finish(c, ok)) {
        rc = tb_http_res_error_from(res, ctx, 400, "validation_failed", &err);
        if (rc == 0)
            rc = 1;
    }
out:
    tb_error_deinit(&err);
    return rc;
}

/* ---- server: write ---- */

/* The row of a status: its own, else its range's (2XX: code 2), else the default (code 0). */
static const tb_op_status *status_row(const tb_op *op, int code)
{
    const tb_op_status *range = NULL, *dflt = NULL;
    for (size_t i = 0; i < op->nstatuses; i++) {
        int c = op->statuses[i].code;
        if (c == code)
            return &op->statuses[i];
        if (c == 0)
            dflt = &op->statuses[i];
        else if (c < 10 && code >= 100 && code / 100 == c)
            range = &op->statuses[i];
    }
    return range ? range : dflt;
}

const tb_api_error *tb_op_error(const tb_op *op, const void *resp)
{
    if (!op || !resp)
        return NULL;
    const tb_op_status *s = status_row(op, *(const int *)resp);
    return s && s->shape == TB_RS_ERROR ? (const tb_api_error *)((const char *)resp + s->off)
                                        : NULL;
}

/* Validates a response body against the schema of its status (debug and tests). */
static int check_response(const tb_op *op, const tb_op_status *s, tb_ctx *ctx, int status,
                          const char *body, size_t len)
{
    if (s->shape == TB_RS_NONE || s->shape == TB_RS_BYTES || !s->validate)
        return 0; /* no JSON to check */
    tb_error err = TB_ERROR_INIT;
    tb_vctx c;
    tb_vctx_init(&c, &err, TB_VALIDATE_ALL_ERRORS | TB_VALIDATE_FORMATS | TB_VALIDATE_RESPONSE);
    json_t *j = tb_json_loadb(body, len, &err);
    bool ok = j && s->validate(j, &c, NULL);
    int rc = j ? tb_vctx_finish(&c, ok) : TB_EPARSE;
    if (rc) {
        tb_log_error(ctx, "%s: the %d response does not match the spec: %s%s%s%s", op->name, status,
                     err.message, err.n_details ? " (" : "", err.n_details ? err.details[0].path : "",
                     err.n_details ? ")" : "");
        rc = TB_EVALIDATION;
    }
    json_decref(j);
    tb_error_deinit(&err);
    return rc;
}

/* The quality Accept gives media type t (RFC 9110 12.5.1): the most specific matching range's
 * q, -1 when no range matches. */
static double accept_q(const char *accept, const char *t)
{
    size_t tn = strcspn(t, ";"), slash = strcspn(t, "/");
    double best = -1;
    int best_spec = -1;
    for (const char *p = accept; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p + strcspn(p, ",");
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *re = semi ? semi : end;
        while (re > p && (re[-1] == ' ' || re[-1] == '\t'))
            re--;
        size_t rn = (size_t)(re - p);
        int spec = -1;
        if (rn == 3 && memcmp(p, "*/*", 3) == 0)
            spec = 0;
        else if (rn >= 2 && p[rn - 1] == '*' && p[rn - 2] == '/' && rn - 1 == slash + 1 &&
                 strncasecmp(p, t, slash + 1) == 0)
            spec = 1;
        else if (rn == tn && strncasecmp(p, t, tn) == 0)
            spec = 2;
        if (spec > best_spec) {
            double q = 1;
            for (const char *a = semi; a && a < end; a = memchr(a + 1, ';', (size_t)(end - a - 1))) {
                const char *v = a + 1;
                while (*v == ' ')
                    v++;
                if ((v[0] == 'q' || v[0] == 'Q') && v[1] == '=')
                    q = strtod(v + 2, NULL);
            }
            best = q;
            best_spec = spec;
        }
        p = end;
    }
    return best;
}

/* Of the declared type and the alternatives (concrete types only), the best by Accept; the
 * declared one when Accept is absent or names none of them (tablium answers anyway, as RFC
 * 9110 allows, rather than 406). */
static const char *negotiate(const char *declared, const char *const *alts, size_t n,
                             const tb_http_req *hr)
{
    const char *pick = declared && !strchr(declared, '*') ? declared : NULL;
    const char *accept = hr ? tb_http_req_header(hr, "Accept") : NULL; /* only when it matters */
    if (!accept || !*accept)
        return pick;
    double bq = pick ? accept_q(accept, pick) : -1;
    for (size_t i = 0; i < n; i++) {
        if (strchr(alts[i], '*'))
            continue;
        double q = accept_q(accept, alts[i]);
        if (q > bq) {
            bq = q;
            pick = alts[i];
        }
    }
    return pick;
}

int tb_op_write(const tb_op *op, tb_ctx *ctx, const void *resp, tb_http_res *res)
{
    return tb_op_write_for(op, ctx, resp, NULL, res);
}

int tb_op_write_for(const tb_op *op, tb_ctx *ctx, const void *resp, const tb_http_req *hr,
                    tb_http_res *res)
{
    tb_buf *b = &res->body;
    int status = *(const int *)resp;
    int rc = 0;
    tb_buf_reset(b);
    const tb_op_status *s = status_row(op, status);
    if (!s) {
        tb_log_error(ctx, "%s: the handler answered status %d, which the spec does not declare",
                     op->name, status);
        return TB_ESTATE;
    }
    if (s->code < 10 && (status < 100 || status > 599))
        return TB_ESTATE; /* the default or a range: still an HTTP status */
    switch (s->shape) {
    case TB_RS_DATA:
    case TB_RS_RAW: {
        if (s->shape == TB_RS_DATA)
            tb_buf_append(b, "{\"data\":", 8);
        tb_codec_member_write(s->kind, s->flags, s->sub, resp, s->off, s->n_off, b);
        if (s->shape == TB_RS_DATA)
            tb_buf_putc(b, '}');
        /* a JSON type of the spec's own (+json), chosen by Accept among the declared ones */
        const char *ct = s->nalt ? negotiate(s->content_type, s->alt_types, s->nalt, hr)
                                 : s->content_type;
        if (ct)
            rc = tb_http_res_header(res, "Content-Type", ct);
        break;
    }
    case TB_RS_ERROR:
        rc = tb_http_res_error(res, ctx, status, CAT(resp, s->off, tb_api_error));
        break;
    case TB_RS_BYTES: {
        const tb_bytes *x = CAT(resp, s->off, tb_bytes);
        if (x->len)
            tb_buf_append(b, x->data, x->len);
        const char *ct = x->type && *x->type ? x->type
                         : s->nalt ? negotiate(s->content_type, s->alt_types, s->nalt, hr)
                                   : NULL;
        rc = tb_http_res_header(res, "Content-Type", ct ? ct : concrete_type(x, s->content_type));
        break;
    }
    default:
        break;
    }
    if (rc)
        return rc;
    res->status = status;
    for (size_t i = 0; i < op->nheaders; i++) {
        const char *v = *CAT(resp, op->headers[i].off, const char *);
        if (v && tb_http_res_header(res, op->headers[i].name, v))
            return TB_EINVAL;
    }
    if (b->oom)
        return TB_ENOMEM;
    if (ctx->flags & TB_CTX_VALIDATE_RESPONSES)
        return check_response(op, s, ctx, status, b->data ? b->data : "", b->len);
    return 0;
}

/* ---- server: one request ---- */

int tb_op_serve(const tb_op *op, tb_op_handler handle, const tb_security_alt *sec, size_t nsec,
                tb_ctx *ctx, const tb_http_req *hr, tb_http_res *res)
{
    int rc;
    if (op->err_shapes) { /* the runtime's errors from here on take the operation's shapes */
        res->err_shapes = op->err_shapes;
        res->n_err_shapes = op->n_err_shapes;
    }
    if (sec) {
        rc = tb_http_authorize(ctx, hr, res, sec, nsec);
        if (rc)
            return rc > 0 ? 0 : rc;
    }
    void *req = tb_arena_alloc(ctx->arena, op->req_size);
    void *resp = tb_arena_calloc(ctx->arena, 1, op->resp_size);
    if (!req || !resp)
        return TB_ENOMEM;
    rc = tb_op_parse(op, ctx, hr, req, res);
    if (rc)
        return rc > 0 ? 0 : rc;
    rc = handle(ctx, req, resp);
    if (rc)
        return rc;
    return tb_op_write_for(op, ctx, resp, hr, res);
}

/* ---- client ---- */

static int decode_answer(const tb_op *op, tb_ctx *ctx, const tb_client_res *r, void *out,
                         tb_error *err)
{
    tb_arena *a = ctx->arena;
    json_t *j = NULL;
    int rc = 0;
    tb_error verr = TB_ERROR_INIT;
    memset(out, 0, op->resp_size);
    *(int *)out = r->status;
    const tb_op_status *s = status_row(op, r->status);
    if (!s)
        return tb_error_set(err, TB_EUPSTREAM, "%s %s: status %d is not declared by the spec: %.200s",
                            op->method, op->route, r->status, r->body);
    if (s->shape == TB_RS_BYTES) {
        tb_bytes *x = AT(out, s->off, tb_bytes);
        x->data = r->body;
        x->len = r->body_len;
        x->type = tb_client_res_header(r, "Content-Type");
    } else if (s->shape != TB_RS_NONE) {
        j = tb_json_loadb(r->body, r->body_len, &verr);
        if (!j) {
            rc = tb_error_set(err, TB_EUPSTREAM, "%s %s: the %d response is not JSON: %s", op->method,
                              op->route, r->status, verr.message);
            goto out;
        }
        if (s->validate) {
            tb_vctx c;
            tb_vctx_init(&c, &verr,
                         TB_VALIDATE_ALL_ERRORS | TB_VALIDATE_FORMATS | TB_VALIDATE_RESPONSE);
            bool ok = s->validate(j, &c, NULL);
            if (tb_vctx_finish(&c, ok)) {
                rc = tb_error_set(err, TB_EUPSTREAM, "%s %s: the %d response does not match the spec: %s",
                                  op->method, op->route, r->status, verr.message);
                tb_error_add_details(err, &verr);
                goto out;
            }
        }
        if (s->shape == TB_RS_ERROR)
            rc = tb_api_error_decode(json_object_get(j, "error"), a, AT(out, s->off, tb_api_error));
        else
            rc = tb_codec_member_decode(s->kind, s->flags, s->sub,
                               s->shape == TB_RS_DATA ? json_object_get(j, "data") : j, a, out, s->off,
                               s->n_off);
        if (rc) {
            tb_error_set(err, rc, "%s %s: decoding the %d response: %s", op->method, op->route,
                         r->status, tb_strerror(rc));
            goto out;
        }
    }
    for (size_t i = 0; i < op->nheaders; i++)
        *AT(out, op->headers[i].off, const char *) = tb_client_res_header(r, op->headers[i].name);
out:
    json_decref(j);
    tb_error_deinit(&verr);
    return rc;
}

/* Appends the text of one value: percent-encoded for a path or query (`query`: '+' and '&'
 * rules of a query), or as is (headers). */
static void emit_value(const tb_op_param *p, const char *v, tb_buf *b, int mode)
{
    const char *s = NULL;
    switch (p->kind) {
    case TB_CK_STRING:
        s = *(char *const *)v;
        break;
    case TB_CK_INTEGER:
        tb_param_format_int(b, (long long)*(const int64_t *)v);
        return;
    case TB_CK_NUMBER:
        tb_param_format_double(b, *(const double *)v);
        return;
    case TB_CK_BOOLEAN:
        tb_buf_puts(b, *(const bool *)v ? "true" : "false");
        return;
    case TB_CK_ENUM:
        s = tb_codec_enum_name(p->sub, *(const int *)v);
        break;
    case TB_CK_JSON: { /* free-form: a string as it is, anything else as its JSON text */
        const json_t *j = *(json_t *const *)v;
        if (json_is_string(j)) {
            s = json_string_value(j);
        } else if (j && !json_is_null(j)) {
            tb_buf t = TB_BUF_INIT;
            tb_buf_json_value(&t, j);
            if (t.len && mode == TB_IN_HEADER)
                tb_buf_append(b, t.data, t.len);
            else if (t.len)
                tb_url_encode(b, t.data, t.len, mode == TB_IN_QUERY);
            tb_buf_deinit(&t);
        }
        break;
    }
    default:
        return;
    }
    if (!s)
        return;
    if (mode == TB_IN_HEADER)
        tb_buf_puts(b, s);
    else
        tb_url_encode(b, s, strlen(s), mode == TB_IN_QUERY);
}

static bool field_present(const tb_codec_field *f, const char *v)
{
    return (f->flags & TB_CF_REQUIRED) || *(const bool *)(v + f->has_off);
}

/* One member of an object parameter (a scalar or enum field of p's struct at v). */
static void emit_member(const tb_op_param *p, const tb_codec_field *f, const char *v, tb_buf *b,
                        int mode)
{
    tb_op_param fp = *p;
    fp.kind = f->kind;
    fp.sub = f->sub;
    emit_value(&fp, v + f->off, b, mode);
}

/* The members of an object parameter present in v, as text: "k,v,k,v", or with `pairs`
 * "k=v,k=v". */
static void emit_object(const tb_op_param *p, const char *v, tb_buf *b, int mode, bool pairs)
{
    const tb_codec_type *t = p->sub;
    bool first = true;
    for (size_t i = 0; i < t->nfields; i++) {
        const tb_codec_field *f = &t->fields[i];
        if (!field_present(f, v))
            continue;
        if (!first)
            tb_buf_putc(b, ',');
        first = false;
        if (mode == TB_IN_HEADER)
            tb_buf_append(b, f->name, f->name_len);
        else
            tb_url_encode(b, f->name, f->name_len, mode == TB_IN_QUERY);
        tb_buf_putc(b, pairs ? '=' : ',');
        emit_member(p, f, v, b, mode);
    }
}

/* A whole parameter (a value, an object, or items separated by the style's separator). */
static void emit_param(const tb_op_param *p, const void *req, tb_buf *b, int mode)
{
    if (p->flags & TB_PF_CONTENT) { /* its JSON text, percent-encoded outside headers */
        tb_buf t = TB_BUF_INIT;
        tb_codec_member_write(p->kind, p->flags & TB_CF_HOLDING, p->sub, req, p->off, p->n_off, &t);
        if (t.len && mode == TB_IN_HEADER)
            tb_buf_append(b, t.data, t.len);
        else if (t.len)
            tb_url_encode(b, t.data, t.len, mode == TB_IN_QUERY);
        if (t.oom)
            b->oom = true;
        tb_buf_deinit(&t);
        return;
    }
    if (p->kind == TB_CK_STRUCT) {
        emit_object(p, CAT(req, p->off, char), b, mode,
                    p->style == TB_STYLE_SIMPLE && (p->flags & TB_PF_EXPLODE));
        return;
    }
    if (!(p->flags & TB_CF_ARRAY)) {
        emit_value(p, CAT(req, p->off, char), b, mode);
        return;
    }
    const char *items = *CAT(req, p->off, char *);
    size_t n = *CAT(req, p->n_off, size_t), sz = tb_codec_value_size(p->kind, p->sub);
    char sep = item_sep(p);
    for (size_t i = 0; i < n; i++) {
        if (i && sep == ' ')
            tb_buf_puts(b, mode == TB_IN_HEADER ? " " : "%20");
        else if (i && sep == '|')
            tb_buf_puts(b, mode == TB_IN_HEADER ? "|" : "%7C");
        else if (i)
            tb_buf_putc(b, sep);
        emit_value(p, items + i * sz, b, mode);
    }
}

static bool present(const tb_op_param *p, const void *req)
{
    return (p->flags & TB_CF_REQUIRED) || *CAT(req, p->has_off, bool);
}

static const tb_op_param *path_param(const tb_op *op, const char *name, size_t n)
{
    for (size_t i = 0; i < op->nparams; i++)
        if (op->params[i].in == TB_IN_PATH && op->params[i].name_len == n &&
            memcmp(op->params[i].name, name, n) == 0)
            return &op->params[i];
    return NULL;
}

/* The request target: the path template with its parameters, then the query. */
static void build_target(const tb_op *op, const void *req, tb_buf *u)
{
    const char *t = op->route;
    while (*t) {
        const char *open = strchr(t, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        const tb_op_param *p = close ? path_param(op, open + 1, (size_t)(close - open - 1)) : NULL;
        if (!p) {
            tb_buf_append(u, t, open ? (size_t)(open - t + 1) : strlen(t));
            t = open ? open + 1 : t + strlen(t);
            continue;
        }
        tb_buf_append(u, t, (size_t)(open - t));
        emit_param(p, req, u, TB_IN_PATH);
        t = close + 1;
    }
    char sep = '?';
    for (size_t i = 0; i < op->nparams; i++) {
        const tb_op_param *p = &op->params[i];
        if (p->in != TB_IN_QUERY || !present(p, req))
            continue;
        if (p->flags & TB_PF_BRACKETS) { /* name[k][0]=v */
            tb__brackets_write_member(u, &sep, p->name, p->name_len, p->kind, p->flags, p->sub,
                                      req, p->off, p->n_off);
        } else if (p->kind == TB_CK_STRUCT && !(p->flags & TB_PF_CONTENT) &&
            (p->style == TB_STYLE_DEEP_OBJECT || (p->flags & TB_PF_EXPLODE))) {
            /* each member under its own name: obj[k]=v, or k=v */
            const tb_codec_type *ot = p->sub;
            const char *v = CAT(req, p->off, char);
            for (size_t k = 0; k < ot->nfields; k++) {
                const tb_codec_field *f = &ot->fields[k];
                if (!field_present(f, v))
                    continue;
                tb_buf_putc(u, sep);
                sep = '&';
                if (p->style == TB_STYLE_DEEP_OBJECT) {
                    tb_url_encode(u, p->name, p->name_len, true);
                    tb_buf_puts(u, "%5B");
                    tb_url_encode(u, f->name, f->name_len, true);
                    tb_buf_puts(u, "%5D=");
                } else {
                    tb_url_encode(u, f->name, f->name_len, true);
                    tb_buf_putc(u, '=');
                }
                emit_member(p, f, v, u, TB_IN_QUERY);
            }
        } else if (p->kind == TB_CK_MAP && p->style == TB_STYLE_DEEP_OBJECT) {
            /* a map: obj[key]=value per entry */
            const tb_codec_map *mp = p->sub;
            const tb_map *m = CAT(req, p->off, tb_map);
            tb_op_param vp = *p;
            vp.kind = mp->kind;
            vp.sub = mp->sub;
            for (size_t k = 0; k < m->n; k++) {
                const char *e = (const char *)m->items + k * mp->entry_size;
                const char *key = *(char *const *)e;
                tb_buf_putc(u, sep);
                sep = '&';
                tb_url_encode(u, p->name, p->name_len, true);
                tb_buf_puts(u, "%5B");
                tb_url_encode(u, key ? key : "", key ? strlen(key) : 0, true);
                tb_buf_puts(u, "%5D=");
                emit_value(&vp, e + mp->off, u, TB_IN_QUERY);
            }
        } else if ((p->flags & TB_CF_ARRAY) && (p->flags & TB_PF_EXPLODE)) {
            const char *items = *CAT(req, p->off, char *);
            size_t n = *CAT(req, p->n_off, size_t), sz = tb_codec_value_size(p->kind, p->sub);
            for (size_t k = 0; k < n; k++) {
                tb_buf_putc(u, sep);
                sep = '&';
                tb_buf_append(u, p->qname, p->qname_len);
                emit_value(p, items + k * sz, u, TB_IN_QUERY);
            }
        } else {
            tb_buf_putc(u, sep);
            sep = '&';
            tb_buf_append(u, p->qname, p->qname_len);
            emit_param(p, req, u, TB_IN_QUERY);
        }
    }
}

/* Header and cookie parameters as header lines of the call. */
static int add_headers(const tb_op *op, const void *req, tb_client_call *call, tb_arena *a,
                       tb_error *err)
{
    tb_buf ck = TB_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < op->nparams && rc == 0; i++) {
        const tb_op_param *p = &op->params[i];
        if ((p->in != TB_IN_HEADER && p->in != TB_IN_COOKIE) || !present(p, req))
            continue;
        if (p->in == TB_IN_HEADER) {
            tb_buf hv = TB_BUF_INIT;
            emit_param(p, req, &hv, TB_IN_HEADER);
            rc = hv.oom ? TB_ENOMEM : tb_client_call_header(call, a, p->name, hv.data ? hv.data : "");
            tb_buf_deinit(&hv);
            if (rc)
                tb_error_set(err, rc, "%s: header %s: %s", op->name, p->name, tb_strerror(rc));
        } else {
            if (ck.len)
                tb_buf_append(&ck, "; ", 2);
            tb_buf_append(&ck, p->qname, p->qname_len);
            emit_param(p, req, &ck, TB_IN_PATH);
        }
    }
    if (rc == 0 && (ck.len || ck.oom)) {
        rc = ck.oom ? TB_ENOMEM : tb_client_call_header(call, a, "Cookie", ck.data);
        if (rc)
            tb_error_set(err, rc, "%s: cookies: %s", op->name, tb_strerror(rc));
    }
    tb_buf_deinit(&ck);
    return rc;
}

/* One form value (query-style percent-encoding). */
static void form_value(const tb_codec_field *f, const char *v, tb_buf *b)
{
    switch (f->kind) {
    case TB_CK_STRING: {
        const char *s = *(char *const *)v;
        if (s)
            tb_url_encode(b, s, strlen(s), true);
        return;
    }
    case TB_CK_INTEGER:
        tb_param_format_int(b, (long long)*(const int64_t *)v);
        return;
    case TB_CK_NUMBER:
        tb_param_format_double(b, *(const double *)v);
        return;
    case TB_CK_BOOLEAN:
        tb_buf_puts(b, *(const bool *)v ? "true" : "false");
        return;
    case TB_CK_ENUM: {
        const char *s = tb_codec_enum_name(f->sub, *(const int *)v);
        if (s)
            tb_url_encode(b, s, strlen(s), true);
        return;
    }
    case TB_CK_BYTES: { /* format: binary: the bytes themselves, not a JSON string of them */
        const tb_bytes *y = (const tb_bytes *)v;
        if (y->data)
            tb_url_encode(b, y->data, y->len, true);
        return;
    }
    default: { /* an object or free-form member: its JSON text */
        tb_buf j = TB_BUF_INIT;
        tb_codec_value_write(f->kind, f->sub, v, &j);
        if (j.len)
            tb_url_encode(b, j.data, j.len, true);
        tb_buf_deinit(&j);
        return;
    }
    }
}

/* A struct as application/x-www-form-urlencoded (arrays as repeated names; the members whose
 * encoding says deepObject, bd->deep, in the bracket form). */
static void form_write(const tb_op_body *bd, const char *v, tb_buf *b)
{
    const tb_codec_type *t = bd->sub;
    char sep = 0;
    for (size_t i = 0; i < t->nfields; i++) {
        const tb_codec_field *f = &t->fields[i];
        if (!field_present(f, v))
            continue;
        if ((f->flags & TB_CF_NULLABLE) && *(const bool *)(v + f->null_off))
            continue; /* a form has no null */
        if (bd->deep && bd->deep[i]) {
            tb__brackets_write_member(b, &sep, f->name, f->name_len, f->kind, f->flags, f->sub, v,
                                      f->off, f->n_off);
            continue;
        }
        size_t n = 1;
        const char *items = v + f->off;
        if (f->flags & TB_CF_ARRAY) {
            n = *(const size_t *)(v + f->n_off);
            items = *(char *const *)(v + f->off);
        }
        for (size_t k = 0; k < n; k++) {
            const char *x = tb_codec_item(f->kind, f->flags, f->sub, items, k); /* k 0: a scalar */
            if (!x)
                continue; /* a null item: a form has no null */
            if (sep)
                tb_buf_putc(b, sep);
            sep = '&';
            tb_url_encode(b, f->name, f->name_len, true);
            tb_buf_putc(b, '=');
            form_value(f, x, b);
        }
    }
}

/* One value of a multipart member as its part's data (text for scalars, JSON for the rest). */
static void part_value(const tb_codec_field *f, const char *v, tb_buf *tmp)
{
    const char *s;
    switch (f->kind) {
    case TB_CK_STRING:
        s = *(char *const *)v;
        if (s)
            tb_buf_puts(tmp, s);
        break;
    case TB_CK_ENUM:
        s = tb_codec_enum_name(f->sub, *(const int *)v);
        if (s)
            tb_buf_puts(tmp, s);
        break;
    case TB_CK_INTEGER:
    case TB_CK_NUMBER:
    case TB_CK_BOOLEAN:
        form_value(f, v, tmp); /* digits and true/false: nothing to escape */
        break;
    default:
        tb_codec_value_write(f->kind, f->sub, v, tmp);
    }
}

/* Writes the body's members as parts; true when a part's data holds the boundary (the caller
 * then draws another). */
static bool multipart_write(const tb_op_body *bd, const char *v, const char *boundary, tb_buf *b)
{
    bool collides = false;
    size_t bl = strlen(boundary);
    const tb_codec_type *t = bd->sub;
    tb_buf tmp = TB_BUF_INIT;
    for (size_t i = 0; i < t->nfields; i++) {
        const tb_codec_field *f = &t->fields[i];
        if (!(f->flags & TB_CF_REQUIRED) && !*(const bool *)(v + f->has_off))
            continue;
        if ((f->flags & TB_CF_NULLABLE) && *(const bool *)(v + f->null_off))
            continue; /* a form has no null */
        const char *declared = bd->part_types ? bd->part_types[i] : NULL;
        size_t n = 1;
        const char *items = v + f->off;
        if (f->flags & TB_CF_ARRAY) {
            n = *(const size_t *)(v + f->n_off);
            items = *(char *const *)(v + f->off);
        }
        for (size_t k = 0; k < n; k++) {
            const char *x = tb_codec_item(f->kind, f->flags, f->sub, items, k); /* k 0: a scalar */
            if (!x)
                continue; /* a null item: a form has no null */
            if (f->kind == TB_CK_BYTES) {
                const tb_bytes *y = (const tb_bytes *)x;
                const char *type = y->type && *y->type ? y->type
                                   : declared          ? declared
                                                       : "application/octet-stream";
                if (y->data && memmem(y->data, y->len, boundary, bl))
                    collides = true;
                tb__multipart_part(b, boundary, f->name, f->name, type, y->data ? y->data : "",
                                   y->data ? y->len : 0);
                continue;
            }
            tb_buf_reset(&tmp);
            part_value(f, x, &tmp);
            bool scalar = f->kind == TB_CK_STRING || f->kind == TB_CK_INTEGER ||
                          f->kind == TB_CK_NUMBER || f->kind == TB_CK_BOOLEAN ||
                          f->kind == TB_CK_ENUM;
            if (tmp.len && memmem(tmp.data, tmp.len, boundary, bl))
                collides = true;
            tb__multipart_part(b, boundary, f->name, NULL,
                               declared ? declared : scalar ? NULL : "application/json",
                               tmp.data ? tmp.data : "", tmp.len);
        }
    }
    if (tmp.oom)
        b->oom = true;
    tb_buf_deinit(&tmp);
    tb__multipart_close(b, boundary);
    return collides;
}

int tb_op_call(tb_client *http, const tb_op *op, tb_ctx *ctx, const void *req, void *out,
               tb_error *err)
{
    tb_arena *a = ctx->arena;
    tb_buf u = TB_BUF_INIT;
    tb_buf body = TB_BUF_INIT;
    tb_client_call call;
    tb_client_res r;
    int rc;
    memset(out, 0, op->resp_size); /* status 0 and no member when the call fails before an answer */
    memset(&call, 0, sizeof call);
    call.method = op->method;
    call.operation_id = op->operation_id;
    call.route = op->route;
    call.retry = op->retry;
    build_target(op, req, &u);
    if (u.oom) {
        rc = tb_error_set(err, TB_ENOMEM, "%s: out of memory", op->name);
        goto out;
    }
    call.path = u.data;
    rc = add_headers(op, req, &call, a, err);
    if (rc)
        goto out;
    const tb_op_body *bd = op->body;
    if (bd && ((bd->flags & TB_CF_REQUIRED) || *CAT(req, bd->has_off, bool))) {
        const char *ct = NULL;
        if (bd->media == TB_MEDIA_BYTES) {
            const tb_bytes *x = CAT(req, bd->off, tb_bytes);
            tb_buf_append(&body, x->data ? x->data : "", x->len);
            ct = concrete_type(x, bd->content_type);
        } else if (bd->media == TB_MEDIA_FORM) {
            form_write(bd, CAT(req, bd->off, char), &body);
            ct = "application/x-www-form-urlencoded";
        } else if (bd->media == TB_MEDIA_MULTIPART) {
            char boundary[TB__BOUNDARY_LEN + 1];
            for (int tries = 0;; tries++) { /* a boundary that no part holds */
                tb__multipart_boundary(boundary);
                tb_buf_reset(&body);
                if (!multipart_write(bd, CAT(req, bd->off, char), boundary, &body) || tries == 8)
                    break;
            }
            ct = tb_arena_printf(a, "multipart/form-data; boundary=%s", boundary);
        } else {
            tb_codec_member_write(bd->kind, bd->flags, bd->sub, req, bd->off, bd->n_off, &body);
        }
        if (body.oom || (ct && (rc = tb_client_call_header(&call, a, "Content-Type", ct)))) {
            rc = tb_error_set(err, TB_ENOMEM, "%s: out of memory", op->name);
            goto out;
        }
        call.body = body.data ? body.data : "";
        call.body_len = body.len;
    }
    for (size_t i = 0; i < op->nstatuses; i++) {
        if (op->statuses[i].shape == TB_RS_BYTES && op->statuses[i].code / 100 == 2) {
            /* a success that is not JSON: say which type is wanted */
            char accept[200];
            snprintf(accept, sizeof accept, "%s, application/json;q=0.5",
                     op->statuses[i].content_type ? op->statuses[i].content_type : "*/*");
            if ((rc = tb_client_call_header(&call, a, "Accept", accept))) {
                tb_error_set(err, rc, "%s: Accept: %s", op->name, tb_strerror(rc));
                goto out;
            }
            break;
        }
    }
    if (op->flags & TB_OPF_IDEMPOTENT) {
        /* x-tablium-idempotent: a key of its own unless the caller set one, so retries are safe */
        bool keyed = false;
        for (size_t i = 0; i < call.n_headers; i++)
            keyed |= strncasecmp(call.headers[i], "Idempotency-Key:", 16) == 0;
        if (!keyed) {
            char key[33];
            tb_request_id_new(key);
            rc = tb_client_call_header(&call, a, "Idempotency-Key", key);
            if (rc) {
                tb_error_set(err, rc, "%s: Idempotency-Key: %s", op->name, tb_strerror(rc));
                goto out;
            }
        }
    }
    if (op->timeout_ms) {
        /* x-tablium-timeout: so long at most, within the ctx's own deadline */
        int64_t saved = ctx->deadline_ms, due = tb_clock_ms() + op->timeout_ms;
        if (!saved || due < saved)
            ctx->deadline_ms = due;
        rc = tb_client_send(http, ctx, &call, &r, err);
        ctx->deadline_ms = saved;
    } else {
        rc = tb_client_send(http, ctx, &call, &r, err);
    }
    if (rc == 0)
        rc = decode_answer(op, ctx, &r, out, err);
out:
    tb_buf_deinit(&u);
    tb_buf_deinit(&body);
    return rc;
}
