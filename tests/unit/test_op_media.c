/* The operation layer (tablium/op.h) with bodies that are not JSON, over real HTTP: hand-written
 * operation tables the way tablium-gen writes them, served by a tb_server and called by
 * tb_op_call through libcurl.
 *   PUT /blobs/{name}   application/octet-stream in, image/x range out: bytes as they came
 *                       (NULs, invalid UTF-8), the response's own type
 *   POST /forms         application/x-www-form-urlencoded in (typed members, a repeated
 *                       name for an array), JSON out: spaces, '+', '&' and UTF-8 survive; a
 *                       member of the wrong type is a 400 naming /body/<member>
 *   wrong Content-Type  415 naming the expected type */
#include "tablium/api.h"
#include "tablium/client.h"
#include "tablium/codec.h"
#include "tablium/ctx.h"
#include "tablium/http.h"
#include "tablium/json.h"
#include "tablium/op.h"
#include "tablium/validate.h"

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- PUT /blobs/{name} ---- */

typedef struct blob_req {
    char *name;
    tb_bytes body;
} blob_req;

typedef struct blob_resp {
    int status;
    union {
        tb_bytes s200;
        tb_bytes s4xx;
        char none_;
    };
} blob_resp;

static const tb_op_param blob_params[] = {
    {"name", "name=", 4, 5, TB_IN_PATH, TB_STYLE_SIMPLE, TB_CK_STRING, TB_CF_REQUIRED, 0, 0,
     offsetof(blob_req, name), 0, 0, NULL, NULL, NULL},
};
static const tb_op_body blob_body = {TB_CK_BYTES, TB_CF_REQUIRED, offsetof(blob_req, body), 0, 0,
                                     NULL, NULL, TB_MEDIA_BYTES, "application/octet-stream", NULL, NULL, 0, NULL};
static const tb_op_status blob_statuses[] = {
    {4, TB_RS_BYTES, TB_CK_BYTES, 0, offsetof(blob_resp, s4xx), 0, NULL, NULL, "text/plain", NULL, 0},
    {200, TB_RS_BYTES, TB_CK_BYTES, 0, offsetof(blob_resp, s200), 0, NULL, NULL, "image/*", NULL, 0},
};
static const tb_op blob_op = {"put_blob", "PUT", "/blobs/{name}", "putBlob", sizeof(blob_req),
                              sizeof(blob_resp), blob_params, 1, &blob_body, blob_statuses, 2,
                              NULL, 0, NULL, 0, 0, NULL, 0};

/* answers the bytes reversed, as image/png when the name says png, else the declared range's
 * fallback */
static int put_blob(tb_ctx *ctx, const void *reqp, void *respp)
{
    const blob_req *req = reqp;
    blob_resp *resp = respp;
    if (strcmp(req->name, "teapot") == 0) { /* a status of the 4XX range */
        resp->status = 418;
        resp->s4xx.data = "short and stout";
        resp->s4xx.len = 15;
        return 0;
    }
    char *out = tb_arena_alloc(ctx->arena, req->body.len + 1);
    for (size_t i = 0; i < req->body.len; i++)
        out[i] = req->body.data[req->body.len - 1 - i];
    resp->status = 200;
    resp->s200.data = out;
    resp->s200.len = req->body.len;
    resp->s200.type = strstr(req->name, "png") ? "image/png" : NULL;
    return 0;
}

/* ---- POST /forms ---- */

typedef struct form {
    char *name;
    bool has_count;
    int64_t count;
    bool has_tags;
    size_t n_tags;
    char **tags;
} form;

static const tb_codec_field form_fields[] = {
    {"name", "\"name\":", 4, 7, TB_CK_STRING, TB_CF_REQUIRED, offsetof(form, name), 0, 0, 0, NULL, NULL},
    {"count", "\"count\":", 5, 8, TB_CK_INTEGER, 0, offsetof(form, count),
     offsetof(form, has_count), 0, 0, NULL, NULL},
    {"tags", "\"tags\":", 4, 7, TB_CK_STRING, TB_CF_ARRAY, offsetof(form, tags),
     offsetof(form, has_tags), 0, offsetof(form, n_tags), NULL, NULL},
};
static const tb_codec_type form_type = {"form", sizeof(form), 3, form_fields, NULL, NULL, 0};

/* the schema: count an integer */
static bool form_schema(const json_t *j, struct tb_vctx *c, struct tb_eval *ev)
{
    (void)ev;
    json_t *n = json_object_get(j, "count");
    if (!n || json_is_integer(n))
        return true;
    tb_v_push_key(c, "count", 5);
    tb_v_fail(c, "type", "must be integer");
    tb_v_pop(c);
    return false;
}

typedef struct form_req {
    form body;
} form_req;

typedef struct form_resp {
    int status;
    union {
        form s200;
        char none_;
    };
} form_resp;

static const tb_op_body form_body = {TB_CK_STRUCT, TB_CF_REQUIRED, offsetof(form_req, body), 0, 0,
                                     &form_type, form_schema, TB_MEDIA_FORM,
                                     "application/x-www-form-urlencoded", NULL, NULL, 0, NULL};
static const tb_op_status form_statuses[] = {
    {200, TB_RS_DATA, TB_CK_STRUCT, 0, offsetof(form_resp, s200), 0, &form_type, NULL, NULL, NULL, 0},
};
static const tb_op form_op = {"post_form", "POST", "/forms", "postForm", sizeof(form_req),
                              sizeof(form_resp), NULL, 0, &form_body, form_statuses, 1,
                              NULL, 0, NULL, 0, 0, NULL, 0};

static int post_form(tb_ctx *ctx, const void *reqp, void *respp)
{
    (void)ctx;
    const form_req *req = reqp;
    form_resp *resp = respp;
    resp->status = 200;
    resp->s200 = req->body;
    return 0;
}

/* ---- GET /search: parameter styles ---- */

typedef struct filter {
    bool has_color;
    char *color;
    bool has_min;
    int64_t min;
} filter;
static const tb_codec_field filter_fields[] = {
    {"color", "\"color\":", 5, 8, TB_CK_STRING, 0, offsetof(filter, color),
     offsetof(filter, has_color), 0, 0, NULL, NULL},
    {"min", "\"min\":", 3, 6, TB_CK_INTEGER, 0, offsetof(filter, min), offsetof(filter, has_min),
     0, 0, NULL, NULL},
};
static const tb_codec_type filter_type = {"filter", sizeof(filter), 2, filter_fields, NULL, NULL, 0};

typedef struct pt {
    int64_t x;
    int64_t y;
} pt;
static const tb_codec_field pt_fields[] = {
    {"x", "\"x\":", 1, 4, TB_CK_INTEGER, TB_CF_REQUIRED, offsetof(pt, x), 0, 0, 0, NULL, NULL},
    {"y", "\"y\":", 1, 4, TB_CK_INTEGER, TB_CF_REQUIRED, offsetof(pt, y), 0, 0, 0, NULL, NULL},
};
static const tb_codec_type pt_type = {"pt", sizeof(pt), 2, pt_fields, NULL, NULL, 0};

typedef struct search_req {
    bool has_tags;
    size_t n_tags;
    char **tags;
    bool has_ids;
    size_t n_ids;
    int64_t *ids;
    bool has_filter;
    filter filter;
    bool has_point;
    pt point;
} search_req;

typedef struct search_resp {
    int status;
    union {
        json_t *s200;
        char none_;
    };
} search_resp;

static const tb_op_param search_params[] = {
    {"tags", "tags=", 4, 5, TB_IN_QUERY, TB_STYLE_SPACE_DELIMITED, TB_CK_STRING, TB_CF_ARRAY,
     TB_PARAM_STRING, 0, offsetof(search_req, tags), offsetof(search_req, has_tags),
     offsetof(search_req, n_tags), NULL, NULL, NULL},
    {"ids", "ids=", 3, 4, TB_IN_QUERY, TB_STYLE_PIPE_DELIMITED, TB_CK_INTEGER, TB_CF_ARRAY,
     TB_PARAM_INTEGER, 0, offsetof(search_req, ids), offsetof(search_req, has_ids),
     offsetof(search_req, n_ids), NULL, NULL, NULL},
    {"filter", "filter=", 6, 7, TB_IN_QUERY, TB_STYLE_DEEP_OBJECT, TB_CK_STRUCT, TB_PF_EXPLODE,
     TB_PARAM_STRING, 0, offsetof(search_req, filter), offsetof(search_req, has_filter), 0,
     &filter_type, NULL, NULL},
    {"X-Point", "X-Point=", 7, 8, TB_IN_HEADER, TB_STYLE_SIMPLE, TB_CK_STRUCT, TB_PF_EXPLODE,
     TB_PARAM_STRING, 0, offsetof(search_req, point), offsetof(search_req, has_point), 0,
     &pt_type, NULL, NULL},
};
static const tb_op_status search_statuses[] = {
    {200, TB_RS_RAW, TB_CK_JSON, 0, offsetof(search_resp, s200), 0, NULL, NULL, NULL, NULL, 0},
};
static const tb_op search_op = {"search", "GET", "/search", "search", sizeof(search_req),
                                sizeof(search_resp), search_params, 4, NULL, search_statuses, 1,
                                NULL, 0, NULL, 0, 0, NULL, 0};

/* answers what it received, as JSON */
static int search(tb_ctx *ctx, const void *reqp, void *respp)
{
    const search_req *req = reqp;
    search_resp *resp = respp;
    json_t *o = json_object(), *tags = json_array(), *ids = json_array();
    for (size_t i = 0; i < req->n_tags; i++)
        json_array_append_new(tags, json_string(req->tags[i]));
    for (size_t i = 0; i < req->n_ids; i++)
        json_array_append_new(ids, json_integer(req->ids[i]));
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "ids", ids);
    if (req->has_filter)
        json_object_set_new(o, "filter", tb_codec_to_json(&filter_type, &req->filter));
    if (req->has_point)
        json_object_set_new(o, "point", tb_codec_to_json(&pt_type, &req->point));
    tb_arena_hold_json(ctx->arena, o);
    json_decref(o);
    resp->status = 200;
    resp->s200 = o;
    return 0;
}

static int search_invoke(tb_ctx *ctx, const tb_http_req *hr, tb_http_res *res)
{
    return tb_op_serve(&search_op, search, NULL, 0, ctx, hr, res);
}

/* ---- the server ---- */

static int blob_invoke(tb_ctx *ctx, const tb_http_req *hr, tb_http_res *res)
{
    return tb_op_serve(&blob_op, put_blob, NULL, 0, ctx, hr, res);
}

static int form_invoke(tb_ctx *ctx, const tb_http_req *hr, tb_http_res *res)
{
    return tb_op_serve(&form_op, post_form, NULL, 0, ctx, hr, res);
}

static const tb_http_op ops[] = {
    {"putBlob", TB_HTTP_PUT, "/blobs/{name}", 0, blob_invoke, NULL},
    {"postForm", TB_HTTP_POST, "/forms", 0, form_invoke, NULL},
    {"search", TB_HTTP_GET, "/search", 0, search_invoke, NULL},
};
/* GET PUT POST DELETE OPTIONS HEAD PATCH TRACE */
static const int16_t routes[][TB_HTTP_N_METHODS] = {
    {-1, 0, -1, -1, -1, -1, -1, -1},
    {-1, -1, 1, -1, -1, -1, -1, -1},
    {2, -1, -1, -1, -1, -1, -1, -1},
};

static int match(const char *p, size_t n, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    *n_params = 0;
    if (n > 7 && memcmp(p, "/blobs/", 7) == 0 && !memchr(p + 7, '/', n - 7)) {
        params[0].p = p + 7;
        params[0].n = n - 7;
        *n_params = 1;
        return 0;
    }
    if (n == 6 && memcmp(p, "/forms", 6) == 0)
        return 1;
    if (n == 7 && memcmp(p, "/search", 7) == 0)
        return 2;
    return -1;
}

static const tb_http_api api = {"media", "Media", "1.0", ops, 3, match, routes, 3, NULL, NULL, 0, NULL, 0, NULL, 0};

static tb_server *srv;
static tb_client *cl;
static char base[64];

static void setup(void)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.validate_responses = 1;
    srv = tb_server_new(&api, &o, NULL);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_eq(tb_server_start(srv, NULL), 0);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)tb_server_port(srv));
    tb_error err = TB_ERROR_INIT;
    cl = tb_client_new(base, NULL, &err);
    ck_assert_msg(cl != NULL, "%s", err.message);
}

static void teardown(void)
{
    tb_client_free(cl);
    tb_server_stop(srv);
    tb_server_free(srv);
}

START_TEST(bytes_go_and_come_back_as_they_are_with_their_types)
{
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "rid-blob");
    static const char data[] = {'P', 'N', 'G', 0, '\xff', '\xfe', 'z'};
    blob_req req = {"pic.png", {data, sizeof data, NULL}};
    blob_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_op_call(cl, &blob_op, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 200);
    ck_assert_uint_eq(out.s200.len, sizeof data);
    for (size_t i = 0; i < sizeof data; i++)
        ck_assert_int_eq(out.s200.data[i], data[sizeof data - 1 - i]);
    ck_assert_str_eq(out.s200.type, "image/png");
    /* the handler left the type to the spec: a range falls back to octet-stream */
    req.name = "raw";
    ck_assert_int_eq(tb_op_call(cl, &blob_op, &ctx, &req, &out, &err), 0);
    ck_assert_str_eq(out.s200.type, "application/octet-stream");
    /* a status the spec declares by its range (4XX), with the range's type */
    req.name = "teapot";
    ck_assert_int_eq(tb_op_call(cl, &blob_op, &ctx, &req, &out, &err), 0);
    ck_assert_int_eq(out.status, 418);
    ck_assert_uint_eq(out.s4xx.len, 15);
    ck_assert_int_eq(memcmp(out.s4xx.data, "short and stout", 15), 0);
    ck_assert_str_eq(out.s4xx.type, "text/plain");
    req.name = "raw";
    /* an empty body is still a body */
    req.body.len = 0;
    ck_assert_int_eq(tb_op_call(cl, &blob_op, &ctx, &req, &out, &err), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_uint_eq(out.s200.len, 0);
    tb_error_deinit(&err);
    tb_arena_free(a);
}
END_TEST

START_TEST(form_members_are_typed_and_round_trip)
{
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "rid-form");
    char *tags[] = {"a b", "c+d&e=f", "\xc3\xa9t\xc3\xa9"};
    form_req req = {{"Zo\xc3\xab & co", true, 42, true, 3, tags}};
    form_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_op_call(cl, &form_op, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 200);
    ck_assert_str_eq(out.s200.name, "Zo\xc3\xab & co");
    ck_assert(out.s200.has_count && out.s200.count == 42);
    ck_assert_uint_eq(out.s200.n_tags, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_str_eq(out.s200.tags[i], tags[i]);
    tb_error_deinit(&err);
    tb_arena_free(a);
}
END_TEST

/* One request as another client writes it: an optional header line and body (POST). */
/* method NULL: GET, or POST with a body */
static long raw_m(const char *method, const char *path_query, const char *header,
                  const char *body, char *out, size_t cap)
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path_query);
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    memset(out, 0, cap);
    FILE *f = fmemopen(out, cap - 1, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(f);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static long raw(const char *path_query, const char *header, const char *body, char *out,
                size_t cap)
{
    return raw_m(NULL, path_query, header, body, out, cap);
}

static long raw_post(const char *path, const char *ct, const char *body, char *out, size_t cap)
{
    char line[128];
    snprintf(line, sizeof line, "Content-Type: %s", ct);
    return raw(path, line, body, out, cap);
}

START_TEST(a_wrong_member_type_names_its_path_and_a_wrong_media_type_is_415)
{
    char out[2048];
    long st = raw_post("/forms", "application/x-www-form-urlencoded", "name=x&count=many", out,
                       sizeof out - 1);
    ck_assert_int_eq(st, 400);
    ck_assert_msg(strstr(out, "\"path\":\"/body/count\"") && strstr(out, "\"rule\":\"type\""), "%s",
                  out);
    st = raw_post("/forms", "application/x-www-form-urlencoded; charset=utf-8",
                  "name=a+b%2Bc&tags=x&tags=y", out, sizeof out);
    ck_assert_int_eq(st, 200); /* '+' is a space, %2B a plus; a repeated name an array */
    ck_assert_msg(strstr(out, "\"name\":\"a b+c\"") && strstr(out, "\"tags\":[\"x\",\"y\"]"), "%s",
                  out);
    st = raw_post("/forms", "application/json", "{\"name\":\"x\"}", out, sizeof out);
    ck_assert_int_eq(st, 415);
    ck_assert_msg(strstr(out, "application/x-www-form-urlencoded"), "%s", out);
    st = raw_post("/forms", "application/x-www-form-urlencoded", "name=%zz", out, sizeof out);
    ck_assert_int_eq(st, 400);
    ck_assert_msg(strstr(out, "\"rule\":\"encoding\""), "%s", out);
    /* a malformed pair before good ones is still refused (it was silently dropped: 200
       without count), and so is a malformed name before a good value (it was a 500) */
    st = raw_post("/forms", "application/x-www-form-urlencoded", "name=x&count=%zz&tags=y", out,
                  sizeof out);
    ck_assert_msg(st == 400 && strstr(out, "\"rule\":\"encoding\""), "%ld %s", st, out);
    st = raw_post("/forms", "application/x-www-form-urlencoded", "name=x&co%zzunt=1", out,
                  sizeof out);
    ck_assert_msg(st == 400 && strstr(out, "\"rule\":\"encoding\""), "%ld %s", st, out);
}
END_TEST

START_TEST(parameter_styles_arrays_and_objects_both_ways)
{
    /* as another client writes them: spaceDelimited, pipeDelimited, deepObject, simple+explode */
    char out[2048];
    long st = raw("/search?tags=a%20b%20c&ids=1%7C22%7C333&filter%5Bcolor%5D=red&filter%5Bmin%5D=3",
                  "X-Point: x=4,y=-5", NULL, out, sizeof out);
    ck_assert_int_eq(st, 200);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *want = json_loads("{\"tags\":[\"a\",\"b\",\"c\"],\"ids\":[1,22,333],"
                              "\"filter\":{\"color\":\"red\",\"min\":3},\"point\":{\"x\":4,\"y\":-5}}",
                              0, NULL);
    ck_assert_msg(json_equal(j, want), "%s", out);
    json_decref(j);

    /* and as tb_op_call writes them */
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "rid-search");
    char *tags[] = {"a", "b", "c"};
    int64_t ids[] = {1, 22, 333};
    search_req req = {true, 3, tags, true, 3, ids, true, {true, "red", true, 3}, true, {4, -5}};
    search_resp r;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(tb_op_call(cl, &search_op, &ctx, &req, &r, &err) == 0, "%s", err.message);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(json_equal(r.s200, want), "client round trip");
    json_decref(want);
    tb_error_deinit(&err);
    tb_arena_free(a);
}
END_TEST

/* A parameter or form member is text (a JSON Schema string): bytes that are not UTF-8 once
 * percent-decoded are a 400 naming it, rule "encoding", in every place a value or key can come
 * from. Before, the handler got them and answering them was a 500 (its JSON refuses them), and
 * an object key that was not UTF-8 was a 500 at once. Files and octet bodies stay bytes. */
START_TEST(text_that_is_not_utf8_is_a_400_naming_where)
{
    char out[2048];
    static const struct {
        const char *url, *header, *ct, *body, *path;
    } cases[] = {
        {"/search?tags=a%20%FF", NULL, NULL, NULL, "/query/tags"},
        {"/search?filter%5Bcolor%5D=%C0%AF", NULL, NULL, NULL, "/query/filter"},
        {"/search", "X-Point: x=4,y=5,\xff=1", NULL, NULL, "/header/X-Point"},
        {"/blobs/a%ED%A0%80b", NULL, "application/octet-stream", "x", "/path/name"},
        {"/forms", NULL, "application/x-www-form-urlencoded", "name=%FF", "/body/name"},
        {"/forms", NULL, "application/x-www-form-urlencoded", "name=a&tags=b&tags=%FE",
         "/body/tags"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ct[128];
        const char *h = cases[i].header;
        if (cases[i].ct) {
            snprintf(ct, sizeof ct, "Content-Type: %s", cases[i].ct);
            h = ct;
        }
        long st = raw_m(strncmp(cases[i].url, "/blobs/", 7) ? NULL : "PUT", cases[i].url, h,
                        cases[i].body, out, sizeof out);
        char want[96];
        snprintf(want, sizeof want, "\"path\":\"%s\",\"rule\":\"encoding\"", cases[i].path);
        ck_assert_msg(st == 400 && strstr(out, want) && strstr(out, "UTF-8"), "case %zu: %ld %s",
                      i, st, out);
    }
    /* UTF-8 passes, and an octet body stays bytes */
    ck_assert_int_eq(raw("/search?tags=%C3%A9t%C3%A9", NULL, NULL, out, sizeof out), 200);
    ck_assert_msg(strstr(out, "\"tags\":[\"\xc3\xa9t\xc3\xa9\"]"), "%s", out);
    ck_assert_int_eq(raw_m("PUT", "/blobs/x", "Content-Type: application/octet-stream", "\xff\xfe",
                           out, sizeof out),
                     200);
    ck_assert_int_eq(memcmp(out, "\xfe\xff", 2), 0); /* reversed, bytes as they came */
}
END_TEST

int main(void)
{
    if (tb_global_init())
        return 1;
    Suite *s = suite_create("op_media");
    TCase *tc = tcase_create("op_media");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, bytes_go_and_come_back_as_they_are_with_their_types);
    tcase_add_test(tc, form_members_are_typed_and_round_trip);
    tcase_add_test(tc, a_wrong_member_type_names_its_path_and_a_wrong_media_type_is_415);
    tcase_add_test(tc, parameter_styles_arrays_and_objects_both_ways);
    tcase_add_test(tc, text_that_is_not_utf8_is_a_400_naming_where);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
