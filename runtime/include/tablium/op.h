/*
 * tablium: the table-driven operation layer behind generated services and clients.
 *
 * tablium-gen describes every OpenAPI operation with a tb_op: parameter rows (where, name,
 * style, kind, offsetof the member and its has_/n_ companions, default, validator), the request
 * body, status rows (code, shape, offsetof the union member, validator) and response headers.
 * Request parsing and response writing on the server, and the whole call on the client, run
 * here from those tables; generated code keeps the route trie, the tables and one-line typed
 * wrappers (<op>__parse, <op>__write, <op>_call).
 *
 * The tables are read-only data: every function here is thread-safe.
 */
#ifndef TABLIUM_OP_H
#define TABLIUM_OP_H

#include "tablium/client.h"
#include "tablium/codec.h"
#include "tablium/ctx.h"
#include "tablium/http.h"

#include <stddef.h>
#include <stdint.h>

/* tb_op_param.in */
enum { TB_IN_PATH, TB_IN_QUERY, TB_IN_HEADER, TB_IN_COOKIE };

/* tb_op_param.style (OpenAPI 3 parameter styles) */
enum {
    TB_STYLE_FORM,            /* query, cookie: a=1&a=2 (explode) or a=1,2; an object's members
                                 as their own names (explode) or obj=k,v,k,v */
    TB_STYLE_SIMPLE,          /* path, header: 1,2; an object k,v,k,v or k=v,k=v (explode) */
    TB_STYLE_SPACE_DELIMITED, /* query arrays: a=1%202 */
    TB_STYLE_PIPE_DELIMITED,  /* query arrays: a=1|2 */
    TB_STYLE_DEEP_OBJECT,     /* query objects: obj[k]=v */
};

/* tb_op_param.flags, besides TB_CF_REQUIRED and TB_CF_ARRAY (tablium/codec.h) */
#define TB_PF_EXPLODE 0x10u /* an array in the query as repeated name=value pairs */
#define TB_PF_CONTENT 0x20u /* `content: application/json`: the value is JSON text (any type) */
/* style deepObject beyond a flat object (arrays, nested objects, unions: Stripe's expand[0]=x,
 * created[gt]=1): the bracket form qs and Rails read and write, name[key][0]=value */
#define TB_PF_BRACKETS 0x80u

typedef struct tb_op_param {
    const char *name;   /* as in the spec */
    const char *qname;  /* the name percent-encoded and followed by '=' (query, cookie) */
    uint16_t name_len;  /* bytes of name */
    uint16_t qname_len; /* bytes of qname */
    uint8_t in;         /* TB_IN_* */
    uint8_t style;      /* TB_STYLE_* */
    uint8_t kind;       /* tb_codec_kind of the value, or of each item with TB_CF_ARRAY */
    uint8_t flags;      /* TB_CF_REQUIRED, TB_CF_ARRAY, TB_PF_* */
    uint8_t text;       /* tb_param_kind: how the text of a value becomes JSON */
    uint8_t index;      /* path parameters: the position of its {segment} */
    uint32_t off;       /* offsetof the member in the request (TB_CF_ARRAY: the items pointer) */
    uint32_t has_off;   /* offsetof bool has_<name> (optional parameters) */
    uint32_t n_off;     /* offsetof size_t n_<name> (TB_CF_ARRAY) */
    const void *sub;    /* tb_codec_enum for TB_CK_ENUM, tb_codec_type for an object */
    const void *dflt;   /* the schema's default (the member's C type), or NULL */
    tb_vfn validate;    /* the parameter's schema; NULL: any value */
} tb_op_param;

/* tb_op_body.media: how the request body is read */
enum {
    TB_MEDIA_JSON,  /* application/json and +json types: parsed, validated, decoded */
    TB_MEDIA_FORM,  /* application/x-www-form-urlencoded: name=value pairs as the members of
                       the body's struct, typed by their schema, then validated like JSON */
    TB_MEDIA_BYTES, /* anything else (octet-stream, text, images, a range like image/x): the
                       bytes as they came, in a tb_bytes */
    TB_MEDIA_MULTIPART, /* multipart/form-data: one part per member of the body's struct (a
                           repeated name for an array), scalars typed by their schema, files
                           as tb_bytes with their part's type, objects as JSON parts; then
                           validated like JSON */
};

/** Another media type a request body may come in (the same schema): the server reads it by
 *  its Content-Type; clients send the body's first media type. */
typedef struct tb_op_media {
    uint8_t media;            /* TB_MEDIA_JSON, _FORM or _MULTIPART */
    const char *content_type; /* "application/x-www-form-urlencoded" ... */
} tb_op_media;

typedef struct tb_op_body {
    uint8_t kind;     /* tb_codec_kind of the body, or of each item with TB_CF_ARRAY */
    uint8_t flags;    /* TB_CF_REQUIRED, TB_CF_ARRAY */
    uint32_t off;     /* offsetof body */
    uint32_t has_off; /* offsetof has_body (optional bodies) */
    uint32_t n_off;   /* offsetof n_body (TB_CF_ARRAY) */
    const void *sub;  /* tb_codec_type / tb_codec_enum */
    tb_vfn validate;
    uint8_t media;            /* TB_MEDIA_* */
    const char *content_type; /* the spec's media type or range ("image/x", "x/x" with *) */
    const char *const *part_types; /* TB_MEDIA_MULTIPART: per member of the body's struct, the
                                      encoding's contentType (or NULL); NULL: none declared */
    const tb_op_media *alts; /* other media types of the same body, or NULL */
    size_t nalts;
    /* TB_MEDIA_FORM (or a form among alts): per member of the body's struct, 1 when its
       encoding says style deepObject, the bracket form name[key][0]=value (Stripe's bodies);
       NULL: none does (objects then travel as their JSON text) */
    const uint8_t *deep;
} tb_op_body;

/* tb_op_status.shape: what the body of that status holds */
enum {
    TB_RS_NONE,  /* no content */
    TB_RS_DATA,  /* {"data": value}: the value in the member */
    TB_RS_ERROR, /* {"error": {...}}: a tb_api_error member */
    TB_RS_RAW,   /* the value itself */
    TB_RS_BYTES, /* a body that is not JSON: a tb_bytes member, sent as it is */
};

typedef struct tb_op_status {
    int code;         /* HTTP status; 1..5 for a range (2XX), 0 for the spec's "default" */
    uint8_t shape;    /* TB_RS_* */
    uint8_t kind;     /* tb_codec_kind of the value (TB_RS_DATA, TB_RS_RAW) */
    uint8_t flags;    /* TB_CF_ARRAY */
    uint32_t off;     /* offsetof the union member (TB_CF_ARRAY: its items pointer) */
    uint32_t n_off;   /* offsetof its item count (TB_CF_ARRAY) */
    const void *sub;  /* tb_codec_type / tb_codec_enum */
    tb_vfn validate;  /* the body's schema; NULL: not checked */
    const char *content_type; /* TB_RS_BYTES: the spec's media type (or range); else the
                                 declared JSON type when it is not plain application/json */
    const char *const *alt_types; /* other media types of the same answer, or NULL: the one
                                     sent is the best of all by the request's Accept */
    size_t nalt;
} tb_op_status;

typedef struct tb_op_header {
    const char *name; /* response header the spec declares */
    uint32_t off;     /* offsetof its const char * in the response's headers */
} tb_op_header;

/* tb_op.flags */
#define TB_OPF_IDEMPOTENT 0x1u /* x-tablium-idempotent: clients send an Idempotency-Key */

typedef struct tb_op {
    const char *name;         /* the C name of the operation, for messages */
    const char *method;       /* "GET", "POST", ... */
    const char *route;        /* the path template, "/wallets/{walletId}" */
    const char *operation_id; /* the spec's operationId (or the derived name) */
    size_t req_size;
    size_t resp_size; /* the response struct begins with `int status` */
    const tb_op_param *params;
    size_t nparams;
    const tb_op_body *body; /* NULL: no JSON request body */
    const tb_op_status *statuses; /* by code; the default (code 0) last */
    size_t nstatuses;
    const tb_op_header *headers;
    size_t nheaders;
    const tb_retry_policy *retry; /* x-tablium-retry, or NULL */
    int timeout_ms;               /* x-tablium-timeout of client calls, 0: none */
    unsigned flags;               /* TB_OPF_* */
    const tb_err_shape *err_shapes; /* the runtime's errors in the spec's shapes, or NULL */
    size_t n_err_shapes;
} tb_op;

/** Server: parses and validates a request into *req (zeroed first). 0 when the handler may run;
 *  1 when res already holds the answer (400 with every violation's JSON path and rule); or a
 *  TB_E... code for an internal failure. */
int tb_op_parse(const tb_op *op, tb_ctx *ctx, const tb_http_req *hr, void *req, tb_http_res *res);

/** Server: like tb_op_write, with the request's Accept header (hr may be NULL) choosing among
 *  the status's declared media types. */
int tb_op_write_for(const tb_op *op, tb_ctx *ctx, const void *resp, const tb_http_req *hr,
                    tb_http_res *res);

/** Server: writes the handler's response (status, body, declared headers) into res. TB_ESTATE
 *  when the status is not one the spec declares; with TB_CTX_VALIDATE_RESPONSES the body is
 *  checked against its schema (TB_EVALIDATION, logged, when it does not match). */
int tb_op_write(const tb_op *op, tb_ctx *ctx, const void *resp, tb_http_res *res);

/** A handler with its request and response types erased (generated per operation). */
typedef int (*tb_op_handler)(tb_ctx *ctx, const void *req, void *resp);

/** Server: one request to an operation: its security (any of the nsec alternatives, none when
 *  sec is NULL), parse, the handler, write. What a tb_http_op's invoke does. */
int tb_op_serve(const tb_op *op, tb_op_handler handle, const tb_security_alt *sec, size_t nsec,
                tb_ctx *ctx, const tb_http_req *hr, tb_http_res *res);

/** Client: sends *req to the service behind http and decodes the answer into *out (memory in
 *  ctx->arena). 0 when the service answered a status the spec declares (out->status), else
 *  TB_ECONN / TB_ETIMEDOUT / TB_EUPSTREAM / ... with err saying why; *out is zeroed first, so a
 *  call that fails before an answer leaves status 0. */
int tb_op_call(tb_client *http, const tb_op *op, tb_ctx *ctx, const void *req, void *out,
               tb_error *err);

/** The error answer a response holds (`resp` begins with `int status`): the tb_api_error member
 *  of its status (its own row, its range's, else the default), or NULL for a success and for a
 *  status whose body is not the error envelope. Generated clients wrap it as <op>_resp_error. */
const tb_api_error *tb_op_error(const tb_op *op, const void *resp);

#endif
