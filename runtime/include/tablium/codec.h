/*
 * tablium: the table-driven codec behind generated types.
 *
 * tablium-gen describes every generated struct with a tb_codec_type: one tb_codec_field row per
 * member (JSON name, kind, offsetof the value and of its has_/n_/_is_null companions, the
 * sub-type) and the compiled JSON Schema validator of the type. Decoding (jansson value or JSON
 * text -> struct), writing (struct -> JSON text) and to_json (struct -> jansson) all run here,
 * from that one table, the way protobuf-c runs from its field descriptors. Generated code keeps
 * the tables and one-line typed wrappers (T_parse, T_serialize, ...); service code calls those.
 *
 * The descriptors are read-only data: every function here is thread-safe.
 */
#ifndef TABLIUM_CODEC_H
#define TABLIUM_CODEC_H

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_vctx; /* tablium/validate.h: not included, so that C++ can include this header */
struct tb_eval;

/** The generated compiled validators' signature: true when j is valid (errors go to c). */
typedef bool (*tb_vfn)(const json_t *j, struct tb_vctx *c, struct tb_eval *ev);

/** The C representation of a value (of each item, for an array field). */
typedef enum tb_codec_kind {
    TB_CK_STRING = 1, /* char *, NUL-terminated, arena-owned; NULL writes null */
    TB_CK_INTEGER,    /* int64_t */
    TB_CK_NUMBER,     /* double */
    TB_CK_BOOLEAN,    /* bool */
    TB_CK_ENUM,       /* a generated C enum (int-sized), 0..count-1; sub: tb_codec_enum */
    TB_CK_STRUCT,     /* a generated struct held by value; sub: tb_codec_type */
    TB_CK_JSON,       /* json_t * held by the arena; NULL writes null */
    TB_CK_API_ERROR,  /* tb_api_error (tablium/http.h): the error object of the envelope */
    TB_CK_BYTES,      /* tb_bytes: a body that is not JSON (octet-stream, text, images...) */
    TB_CK_UNION,      /* a generated tagged union (oneOf/anyOf); sub: tb_codec_union */
    TB_CK_MAP,        /* a generated map (additionalProperties); sub: tb_codec_map */
    TB_CK_LIST,       /* an array held as a value (an item of an array); sub: tb_codec_list */
} tb_codec_kind;

/** Bytes of a body that is not JSON, with their media type. In a request the runtime fills it
 *  (data borrowed from the request, type its Content-Type); in a response the handler does
 *  (data from ctx->arena or static; type NULL: the type the spec declares). */
typedef struct tb_bytes {
    const char *data;
    size_t len;
    const char *type;
} tb_bytes;

/* tb_codec_field.flags */
#define TB_CF_REQUIRED 0x1u /* no has_ companion: decoding fails when the member is absent */
#define TB_CF_NULLABLE 0x2u /* a bool <name>_is_null companion at null_off */
#define TB_CF_ARRAY 0x4u    /* items pointer at off, size_t count at n_off */
#define TB_CF_POINTER 0x8u  /* a pointer to the value at off (recursive types): NULL when absent */
/* with TB_CF_ARRAY: an item may be null (OpenAPI `nullable` / type [T, "null"] items), so each item
 * is a pointer to its value, NULL for null (T **items); a string's item is its own char *, NULL for
 * null (char **items as without the flag). 0x40: op.h's TB_PF_* take 0x10, 0x20 and 0x80. */
#define TB_CF_ITEM_NULL 0x40u
/* the flags that say how a value is held (what tb_codec_member_* read; not REQUIRED/NULLABLE,
 * nor a parameter's TB_PF_*) */
#define TB_CF_HOLDING (TB_CF_ARRAY | TB_CF_POINTER | TB_CF_ITEM_NULL)
/** Of an array with `flags` and `kind` items at `items`, item k's value, or NULL for a null item
 *  (TB_CF_ITEM_NULL). Of a member that is not an array (k = 0), the value at `items` itself. */
const void *tb_codec_item(int kind, unsigned flags, const void *sub, const void *items, size_t k);

typedef struct tb_codec_str {
    const char *s;
    size_t n;
} tb_codec_str;

/** A string enum: values[i] is the JSON string of the C constant i. */
typedef struct tb_codec_enum {
    const char *name; /* the C type, for messages */
    size_t count;
    const tb_codec_str *values;
} tb_codec_enum;

typedef struct tb_codec_field {
    const char *name;  /* JSON member name (UTF-8) */
    const char *key;   /* the member name as JSON text followed by ':' (what the writer emits) */
    uint16_t name_len; /* bytes of name */
    uint16_t key_len;  /* bytes of key */
    uint8_t kind;      /* tb_codec_kind of the value, or of each item with TB_CF_ARRAY */
    uint8_t flags;     /* TB_CF_* */
    uint32_t off;      /* offsetof the value (TB_CF_ARRAY: of the items pointer) */
    uint32_t has_off;  /* offsetof bool has_<name> (optional members) */
    uint32_t null_off; /* offsetof bool <name>_is_null (TB_CF_NULLABLE) */
    uint32_t n_off;    /* offsetof size_t n_<name> (TB_CF_ARRAY) */
    const void *sub;   /* tb_codec_type (TB_CK_STRUCT), tb_codec_enum (TB_CK_ENUM), else NULL */
    const void *dflt;  /* the schema's default, a value of the member's C type: written there
                          when the member is absent (has_<name> stays false), else NULL */
} tb_codec_field;

typedef struct tb_codec_type {
    const char *name; /* the C type, for messages */
    size_t size;      /* sizeof the struct */
    size_t nfields;
    const tb_codec_field *fields;
    tb_vfn validate; /* the schema's compiled validator; NULL: every value is valid */
    /* an object with properties and additionalProperties: the members that are not properties,
     * kept in document order in a map (tb_map) at rest_off; NULL when they are not kept */
    const struct tb_codec_map *rest;
    uint32_t rest_off;
} tb_codec_type;

/** The bit of a jansson json_type in tb_codec_branch.jtypes. */
#define TB_J(t) (1u << (t))

/** One alternative of a tagged union: a member of the union's anonymous C union. */
typedef struct tb_codec_branch {
    const char *name;           /* the member's C name (and the kind constant's suffix) */
    uint8_t kind;               /* tb_codec_kind of the member (of each item with TB_CF_ARRAY) */
    uint8_t flags;              /* TB_CF_ARRAY, TB_CF_POINTER, TB_CF_ITEM_NULL */
    uint16_t jtypes;            /* JSON types the branch can match: 1 << json_type */
    uint32_t off;               /* offsetof the member */
    uint32_t n_off;             /* offsetof its count (TB_CF_ARRAY) */
    const void *sub;            /* as tb_codec_field.sub */
    tb_vfn validate;            /* the branch's schema (chooses it without a discriminator) */
    size_t ntags;               /* discriminator values that choose this branch */
    const tb_codec_str *tags;
} tb_codec_branch;

/** A oneOf/anyOf as a C tagged union: `int kind` (0: none, i + 1: branches[i]) at offset 0,
 *  then an anonymous union of the branches' members. The branch of a value is the one its
 *  discriminator names (OpenAPI discriminator: propertyName + mapping), else the first whose
 *  schema the value matches; without a discriminator, of an object that several match, the
 *  first that keeps all of its members, else the one that keeps the most (a struct drops
 *  members it does not declare). */
typedef struct tb_codec_union {
    const char *name;          /* the C type, for messages */
    size_t size;               /* sizeof the struct */
    const char *discriminator; /* the discriminator's property name, or NULL */
    size_t disc_len;
    size_t nbranches;
    const tb_codec_branch *branches;
    tb_vfn validate; /* the whole schema */
} tb_codec_union;

/** What every generated map looks like: entries in document order. */
typedef struct tb_map {
    void *items;
    size_t n;
} tb_map;

/** What every generated list looks like: an array that is itself a value (arrays of arrays). */
typedef struct tb_list {
    void *items;
    size_t n;
} tb_list;

/** The items of a list: struct { T *items; size_t n; }. */
typedef struct tb_codec_list {
    const char *name; /* the C type, for messages */
    uint8_t kind;     /* tb_codec_kind of each item */
    uint8_t flags;    /* TB_CF_ITEM_NULL */
    const void *sub;
} tb_codec_list;

/** An object whose members all have one schema (additionalProperties) as a C map: a struct
 *  { T_entry *items; size_t n; } whose entries are { char *key; <value member> }. */
typedef struct tb_codec_map {
    const char *name;  /* the C type, for messages */
    size_t entry_size; /* sizeof one entry */
    uint8_t kind;      /* tb_codec_kind of the value (of each item with TB_CF_ARRAY) */
    uint8_t flags;     /* TB_CF_ARRAY, TB_CF_ITEM_NULL, TB_CF_NULLABLE (value_is_null) */
    uint32_t off;      /* offsetof the value in the entry */
    uint32_t n_off;    /* offsetof its count (TB_CF_ARRAY) */
    uint32_t null_off; /* offsetof value_is_null (TB_CF_NULLABLE) */
    const void *sub;
    tb_vfn validate; /* the whole schema */
} tb_codec_map;

/* ---- enums ---- */

/** The JSON string of constant v, or NULL for a value outside the enum. */
static inline const char *tb_codec_enum_name(const tb_codec_enum *e, int v)
{
    return (unsigned)v < e->count ? e->values[v].s : NULL;
}

/** The constant whose JSON string is s[0..len), or -1. */
int tb_codec_enum_find(const tb_codec_enum *e, const char *s, size_t len);

/* ---- structs ---- */

/** Decodes a jansson value that already passed t->validate into *out (zeroed first).
 *  Strings are copied into the arena, free-form values held by it. Returns 0, TB_ENOMEM, or
 *  TB_EVALIDATION when j does not have the struct's shape (a value that was not validated). */
int tb_codec_decode(const tb_codec_type *t, const json_t *j, tb_arena *a, void *out);

/** Appends *v as compact JSON text. Out of memory is left in b->oom. */
void tb_codec_write(const tb_codec_type *t, const void *v, tb_buf *b);

/** *v as a new jansson value (caller owns; json_decref), or NULL on out of memory. */
json_t *tb_codec_to_json(const tb_codec_type *t, const void *v);

/** Validates j against t's schema: 0, or TB_EVALIDATION with err's details (JSON paths). */
int tb_codec_validate(const tb_codec_type *t, const json_t *j, unsigned flags, tb_error *err);

/** Validates j (all errors) and decodes it. */
int tb_codec_from_json(const tb_codec_type *t, const json_t *j, tb_arena *a, void *out,
                       tb_error *err);

/** Parses JSON text buf[0..len), validates and decodes it: 0, TB_EPARSE, TB_EVALIDATION or
 *  TB_ENOMEM with err set. */
int tb_codec_parse(const tb_codec_type *t, const char *buf, size_t len, tb_arena *a, void *out,
                   tb_error *err);

/** Appends *v as JSON text to out: 0 or TB_ENOMEM. */
int tb_codec_serialize(const tb_codec_type *t, const void *v, tb_buf *out);

/* ---- the typed API of generated types ---- */

/**
 * TB_CODEC_DECLARE(T) declares, in a generated header, the functions of struct type T:
 *   int T_validate(const json_t *j, unsigned flags, tb_error *err);
 *   int T_parse(const char *buf, size_t len, tb_arena *a, T *out, tb_error *err);
 *   int T_from_json(const json_t *j, tb_arena *a, T *out, tb_error *err);
 *   int T_serialize(const T *v, tb_buf *out);
 *   json_t *T_to_json(const T *v);
 * TB_CODEC_DEFINE(T) defines them, in the generated .c, over T's descriptor T__desc: each is a
 * one-line call into this module (tb_codec_validate, tb_codec_parse, ...).
 */
#define TB_CODEC_DECLARE(T)                                                                    \
    int T##_validate(const json_t *j, unsigned flags, tb_error *err);                          \
    int T##_parse(const char *buf, size_t len, tb_arena *a, T *out, tb_error *err);             \
    int T##_from_json(const json_t *j, tb_arena *a, T *out, tb_error *err);                    \
    int T##_serialize(const T *v, tb_buf *out);                                                \
    json_t *T##_to_json(const T *v)

#define TB_CODEC_DEFINE(T)                                                                     \
    int T##_validate(const json_t *j, unsigned flags, tb_error *err)                           \
    {                                                                                          \
        return tb_codec_validate(&T##__desc, j, flags, err);                                   \
    }                                                                                          \
    int T##_parse(const char *buf, size_t len, tb_arena *a, T *out, tb_error *err)              \
    {                                                                                          \
        return tb_codec_parse(&T##__desc, buf, len, a, out, err);                              \
    }                                                                                          \
    int T##_from_json(const json_t *j, tb_arena *a, T *out, tb_error *err)                     \
    {                                                                                          \
        return tb_codec_from_json(&T##__desc, j, a, out, err);                                 \
    }                                                                                          \
    int T##_serialize(const T *v, tb_buf *out)                                                 \
    {                                                                                          \
        return tb_codec_serialize(&T##__desc, v, out);                                         \
    }                                                                                          \
    json_t *T##_to_json(const T *v)                                                            \
    {                                                                                          \
        return tb_codec_to_json(&T##__desc, v);                                                \
    }

/**
 * TB_CODEC_ENUM_DECLARE(T) declares the functions of string enum T:
 *   const char *T_to_string(T v);   the JSON string of v; NULL for a value outside the enum
 *   int T_from_string(const char *s, size_t len, T *out);   0, or TB_EINVAL when s[0..len) is
 *                                                            not one of the values
 * TB_CODEC_ENUM_DEFINE(T) defines them over T__enum.
 */
#define TB_CODEC_ENUM_DECLARE(T)                                                               \
    const char *T##_to_string(T v);                                                            \
    int T##_from_string(const char *s, size_t len, T *out)

#define TB_CODEC_ENUM_DEFINE(T)                                                                \
    _Static_assert(sizeof(T) == sizeof(int), "a generated enum is int-sized");                 \
    const char *T##_to_string(T v)                                                             \
    {                                                                                          \
        return tb_codec_enum_name(&T##__enum, (int)v);                                         \
    }                                                                                          \
    int T##_from_string(const char *s, size_t len, T *out)                                     \
    {                                                                                          \
        int v = tb_codec_enum_find(&T##__enum, s, len);                                        \
        if (v < 0)                                                                             \
            return TB_EINVAL;                                                                  \
        *out = (T)v;                                                                           \
        return 0;                                                                              \
    }

/** TB_CODEC_VALUE_DECLARE(T) / _DEFINE(T, KIND, SUB): the same functions as TB_CODEC_DECLARE
 *  for a generated union (KIND TB_CK_UNION, SUB &T__union) or map (TB_CK_MAP, &T__map). */
#define TB_CODEC_VALUE_DECLARE(T) TB_CODEC_DECLARE(T)

#define TB_CODEC_VALUE_DEFINE(T, KIND, SUB, VFN)                                               \
    int T##_validate(const json_t *j, unsigned flags, tb_error *err)                           \
    {                                                                                          \
        return tb_validate_with(VFN, j, flags, err);                                           \
    }                                                                                          \
    int T##_parse(const char *buf, size_t len, tb_arena *a, T *out, tb_error *err)              \
    {                                                                                          \
        return tb_codec_value_parse(KIND, SUB, buf, len, a, out, err);                         \
    }                                                                                          \
    int T##_from_json(const json_t *j, tb_arena *a, T *out, tb_error *err)                     \
    {                                                                                          \
        return tb_codec_value_from_json(KIND, SUB, j, a, out, err);                            \
    }                                                                                          \
    int T##_serialize(const T *v, tb_buf *out)                                                 \
    {                                                                                          \
        tb_codec_value_write(KIND, SUB, v, out);                                               \
        return out->oom ? TB_ENOMEM : 0;                                                       \
    }                                                                                          \
    json_t *T##_to_json(const T *v)                                                            \
    {                                                                                          \
        return tb_codec_value_to_json(KIND, SUB, v);                                           \
    }

/** Defines T_validate(j, flags, err) of a type without a struct (an alias or an enum) over its
 *  compiled validator fn (NULL: every value is valid). */
#define TB_VALIDATE_DEFINE(T, fn)                                                              \
    int T##_validate(const json_t *j, unsigned flags, tb_error *err)                           \
    {                                                                                          \
        return tb_validate_with(fn, j, flags, err);                                            \
    }

/* ---- single values (parameters, bodies that are not structs) ---- */

/** The C size of one value of `kind` (an array's item). */
size_t tb_codec_value_size(int kind, const void *sub);
/** Decodes one value of `kind` (sub as in tb_codec_field) into *dst. */
int tb_codec_value_decode(int kind, const void *sub, const json_t *x, tb_arena *a, void *dst);
/** Appends one value of `kind` at v as JSON text. */
void tb_codec_value_write(int kind, const void *sub, const void *v, tb_buf *b);
/** One value of `kind` at v as a new jansson value, or NULL on out of memory. */
json_t *tb_codec_value_to_json(int kind, const void *sub, const void *v);

/** A value or, with TB_CF_ARRAY in flags, an array (items pointer at off, count at n_off) of
 *  `kind` (with TB_CF_POINTER, a pointer to the value) in the struct at base: decoded from x /
 *  appended as JSON text / a new jansson value. What a field row, a parameter, a body or a
 *  response member of the generated tables holds. */
int tb_codec_member_decode(int kind, unsigned flags, const void *sub, const json_t *x,
                           tb_arena *a, void *base, uint32_t off, uint32_t n_off);
void tb_codec_member_write(int kind, unsigned flags, const void *sub, const void *base,
                           uint32_t off, uint32_t n_off, tb_buf *b);
json_t *tb_codec_member_to_json(int kind, unsigned flags, const void *sub, const void *base,
                                uint32_t off, uint32_t n_off);

/** The branch a value of the union takes (after validation): its index, or -1. */
int tb_codec_union_choose(const tb_codec_union *u, const json_t *x);

/** Validates j (all errors) against a union's or a map's schema and decodes it into *out;
 *  appends *v as JSON text. The typed API of generated unions and maps (TB_CODEC_VALUE_DEFINE). */
int tb_codec_value_from_json(int kind, const void *sub, const json_t *j, tb_arena *a, void *out,
                             tb_error *err);
int tb_codec_value_parse(int kind, const void *sub, const char *buf, size_t len, tb_arena *a,
                         void *out, tb_error *err);

/** Runs a compiled validator over j as a whole validation (NULL fn: valid):
 *  0, or TB_EVALIDATION with err's details. */
int tb_validate_with(tb_vfn fn, const json_t *j, unsigned flags, tb_error *err);

/** A validator that refuses every value (the schema `false`). */
bool tb_v_never(const json_t *j, struct tb_vctx *c, struct tb_eval *ev);

#endif
