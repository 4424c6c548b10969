#include "tablium/api.h"
#include "tablium/validate.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool parse_int(const char *s, size_t len, json_int_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len || len - i > 19)
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (json_int_t)(0 - v) : (json_int_t)v;
    return true;
}

static bool parse_num(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    /* JSON number syntax only: no hex, inf, nan or leading '+'/spaces. */
    for (size_t i = 0; i < len; i++) {
        char c = tmp[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '.' || c == 'e' || c == 'E' || c == '+'))
            return false;
    }
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (end != tmp + len || errno == ERANGE || !isfinite(d))
        return false;
    *out = d;
    return true;
}

json_t *tb_param_json(const char *s, size_t len, tb_param_kind kind)
{
    switch (kind) {
    case TB_PARAM_INTEGER: {
        json_int_t v;
        if (parse_int(s, len, &v))
            return json_integer(v);
        break;
    }
    case TB_PARAM_NUMBER: {
        json_int_t v;
        if (parse_int(s, len, &v))
            return json_integer(v);
        double d;
        if (parse_num(s, len, &d))
            return json_real(d);
        break;
    }
    case TB_PARAM_BOOLEAN:
        if (len == 4 && memcmp(s, "true", 4) == 0)
            return json_true();
        if (len == 5 && memcmp(s, "false", 5) == 0)
            return json_false();
        break;
    case TB_PARAM_ANY: {
        json_int_t v;
        double d;
        if (parse_int(s, len, &v))
            return json_integer(v);
        if (parse_num(s, len, &d))
            return json_real(d);
        if (len == 4 && memcmp(s, "true", 4) == 0)
            return json_true();
        if (len == 5 && memcmp(s, "false", 5) == 0)
            return json_false();
        break;
    }
    case TB_PARAM_JSON:
        if (len && (s[0] == '{' || s[0] == '[')) {
            json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
            if (j)
                return j;
        }
        break;
    case TB_PARAM_STRING:
        break;
    }
    return json_stringn_nocheck(s, len);
}

json_t *tb_param_json_list(const char *const *vals, size_t n, tb_param_kind kind)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const char *v = vals[i] ? vals[i] : "";
        if (json_array_append_new(a, tb_param_json(v, strlen(v), kind))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *tb_param_json_split(const char *s, size_t len, char sep, tb_param_kind kind)
{
    json_t *a = json_array();
    if (!a || len == 0)
        return a;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == sep) {
            if (json_array_append_new(a, tb_param_json(s + start, i - start, kind))) {
                json_decref(a);
                return NULL;
            }
            start = i + 1;
        }
    }
    return a;
}

int tb_param_format_int(tb_buf *b, long long v)
{
    tb_buf_printf(b, "%lld", v);
    return b->oom ? TB_ENOMEM : 0;
}

int tb_param_format_double(tb_buf *b, double v)
{
    tb_buf_printf(b, "%.17g", v);
    return b->oom ? TB_ENOMEM : 0;
}

static const char *str_member(const json_t *o, const char *k, tb_arena *a, bool *oom)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        return NULL;
    char *s = tb_arena_strndup(a, json_string_value(v), json_string_length(v));
    if (!s)
        *oom = true;
    return s;
}

int tb_api_error_decode(const json_t *error, tb_arena *a, tb_api_error *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(error))
        return TB_EVALIDATION;
    bool oom = false;
    out->code = str_member(error, "code", a, &oom);
    out->message = str_member(error, "message", a, &oom);
    out->request_id = str_member(error, "requestId", a, &oom);
    json_t *d = json_object_get(error, "details");
    if (json_is_array(d) && json_array_size(d)) {
        size_t n = json_array_size(d);
        tb_error_detail *det = tb_arena_calloc(a, n, sizeof *det);
        if (!det)
            return TB_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(d, i);
            det[i].path = (char *)str_member(x, "path", a, &oom);
            det[i].rule = (char *)str_member(x, "rule", a, &oom);
            det[i].message = (char *)str_member(x, "message", a, &oom);
        }
        out->details = det;
        out->n_details = n;
    }
    return oom ? TB_ENOMEM : 0;
}

int tb_api_example_validate(const tb_api_example *ex, const json_t *j, tb_error *err)
{
    /* "response 201": a response's rules; "request body", "parameter ...": a request's */
    unsigned dir = ex->where && strncmp(ex->where, "response", 8) == 0 ? TB_VALIDATE_RESPONSE
                                                                       : TB_VALIDATE_REQUEST;
    return tb_validate_with(ex->schema, j, TB_VALIDATE_ALL_ERRORS | TB_VALIDATE_FORMATS | dir,
                            err);
}
