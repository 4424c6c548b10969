/*
 * tablium: helpers the generated service code (gen/<service>/) calls: parameter conversion,
 * error-envelope decoding on the client side, and the examples table of a spec.
 * Service code rarely calls these directly.
 */
#ifndef TABLIUM_API_H
#define TABLIUM_API_H

#include "tablium/arena.h"
#include "tablium/codec.h"
#include "tablium/error.h"
#include "tablium/http.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/** How a parameter's text becomes a JSON value before validation. */
typedef enum tb_param_kind {
    TB_PARAM_STRING = 0,
    TB_PARAM_INTEGER,
    TB_PARAM_NUMBER,
    TB_PARAM_BOOLEAN,
    TB_PARAM_ANY, /* a union of scalar types: an integer, a number, true/false, else a string */
    TB_PARAM_JSON, /* free-form: the JSON text of an object or array is that value (as clients
                      send one), anything else a string */
} tb_param_kind;

/**
 * The JSON value of one parameter text s[0..len): an integer for a plain decimal integer
 * (TB_PARAM_INTEGER), a number (TB_PARAM_NUMBER), true/false (TB_PARAM_BOOLEAN), the object
 * or array a JSON text starting with { or [ holds (TB_PARAM_JSON), else a string.
 * A text that does not convert stays a string, so the schema's "type" rule reports it with the
 * parameter's path. New reference (caller owns; json_decref); NULL on OOM.
 */
json_t *tb_param_json(const char *s, size_t len, tb_param_kind kind);
/** An array value from separate texts (form, explode=true: ?a=1&a=2). New reference. */
json_t *tb_param_json_list(const char *const *vals, size_t n, tb_param_kind kind);
/** An array value from one text split on `sep` (simple, or form with explode=false). */
json_t *tb_param_json_split(const char *s, size_t len, char sep, tb_param_kind kind);

/** Appends the text of an integer / number / boolean parameter to b (for client URLs). */
int tb_param_format_int(tb_buf *b, long long v);
int tb_param_format_double(tb_buf *b, double v);

/**
 * Decodes an error envelope's "error" object ({code, message, requestId, details}) into out;
 * strings in `a`. Tolerant: missing members stay NULL. 0, TB_EVALIDATION (not an object) or
 * TB_ENOMEM.
 */
int tb_api_error_decode(const json_t *error, tb_arena *a, tb_api_error *out);

/** Appends e as the error object of the envelope ({code, message, requestId, details}), as
 *  the error responses carry it. */
void tb_api_error_write(tb_buf *b, const tb_api_error *e);

/** An example from a spec, with the validator of the place it belongs to. */
typedef struct tb_api_example {
    const char *operation_id;
    const char *where; /* "request body", "response 201", "parameter query limit" */
    const char *name;  /* "example" or the key under "examples" */
    const char *json;  /* the value as compact JSON */
    tb_vfn schema;     /* the compiled schema of that place (NULL: any value) */
} tb_api_example;

/** Validates a value against the schema of the example's place (all errors, formats
 *  asserted): 0, or TB_EVALIDATION with err's details. */
int tb_api_example_validate(const tb_api_example *ex, const json_t *j, tb_error *err);

#endif
