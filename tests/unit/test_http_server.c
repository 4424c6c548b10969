/*
 * Unit tests of runtime/http (http.c, server.c) and runtime/core/log.c.
 *
 * A small hand-written service (what the generator would emit for it) is served by a real
 * tb_server on an ephemeral port and driven with libcurl:
 *   GET  /items/{id}  getItem     decodes the raw path parameter
 *   POST /items       createItem  application/json body, required, parsed with tb_json_loadb
 *   GET  /items       listItems   echoes query, header, cookie and ctx values
 *   GET  /fail        failItem    returns TB_EIO (the runtime must answer 500)
 *   GET  /slow        slowItem    sleeps 300 ms (graceful stop)
 */
#include "tablium/http.h"
#include "tablium/json.h"
#include "tablium/log.h"

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- the service ---- */

static int put_data(tb_http_res *res, int status, json_t *data)
{
    res->status = status;
    tb_buf_reset(&res->body);
    tb_buf_puts(&res->body, "{\"data\":");
    int rc = tb_buf_json_value(&res->body, data);
    tb_buf_putc(&res->body, '}');
    json_decref(data);
    return rc ? rc : res->body.oom ? TB_ENOMEM : 0;
}

static int get_item(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    bool bad = false;
    char *id = tb_http_pct_decode(ctx->arena, req->params[0].p, req->params[0].n, &bad);
    if (!id) {
        tb_api_error e;
        tb_api_error_set(&e, ctx, "bad_path", "path parameter id is not valid (%s)",
                         bad ? "bad escape" : "oom");
        return tb_http_res_error(res, ctx, 400, &e);
    }
    return put_data(res, 200,
                    json_pack("{s:s, s:s%}", "id", id, "raw", req->params[0].p, req->params[0].n));
}

static int create_item(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    tb_error err = TB_ERROR_INIT;
    int rc = 0;
    json_t *j = tb_json_loadb(req->body, req->body_len, &err);
    if (!j) {
        rc = tb_http_res_error_from(res, ctx, 400, "bad_request", &err);
        goto done;
    }
    json_t *name = json_object_get(j, "name");
    if (!json_is_string(name)) {
        tb_error_set(&err, TB_EVALIDATION, "invalid");
        tb_error_add_detail(&err, "/name", "type", "must be a string");
        rc = tb_http_res_error_from(res, ctx, 400, "bad_request", &err);
        json_decref(j);
        goto done;
    }
    rc = put_data(res, 201, json_pack("{s:O}", "name", name));
    json_decref(j);
done:
    tb_error_deinit(&err);
    return rc;
}

static int list_items(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    const char *ids[8];
    size_t n = tb_http_req_query_all(req, "id", ids, 8);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && i < 8; i++)
        json_array_append_new(arr, json_string(ids[i]));
    bool flag_present = false, nope_present = true;
    const char *flag = tb_http_req_query(req, "flag", &flag_present);
    tb_http_req_query(req, "nope", &nope_present);
    const char *q = tb_http_req_query(req, "q", NULL);
    const char *plus = tb_http_req_query(req, "plus", NULL);
    const char *tenant = tb_http_req_header(req, "x-tenant");
    const char *session = tb_http_req_cookie(req, "session");
    json_t *d = json_pack("{s:o, s:b, s:b, s:b, s:b}", "ids", arr, "flagPresent", flag_present,
                          "flagHasValue", flag != NULL, "nopePresent", nope_present, "validate",
                          (ctx->flags & TB_CTX_VALIDATE_RESPONSES) != 0);
    json_object_set_new(d, "q", q ? json_string(q) : json_null());
    json_object_set_new(d, "plus", plus ? json_string(plus) : json_null());
    json_object_set_new(d, "tenant", tenant ? json_string(tenant) : json_null());
    json_object_set_new(d, "session", session ? json_string(session) : json_null());
    json_object_set_new(d, "traceparent",
                        ctx->traceparent ? json_string(ctx->traceparent) : json_null());
    json_object_set_new(d, "state", ctx->state ? json_string(ctx->state) : json_null());
    json_object_set_new(d, "service", json_string(ctx->service));
    json_object_set_new(d, "requestId", json_string(ctx->request_id));
    return put_data(res, 200, d);
}

static int fail_item(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)ctx, (void)req;
    tb_buf_puts(&res->body, "{\"secret\":\"half-written"); /* must never reach the client */
    return TB_EIO;
}

static int slow_item(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)req;
    struct timespec t = {0, 300 * 1000 * 1000};
    nanosleep(&t, NULL);
    return put_data(res, 200, json_pack("{s:b}", "slow", ctx != NULL));
}

/* LINK /items/{id} (OpenAPI 3.2 additionalOperations): answers the method it was called with */
static int link_item(tb_ctx *ctx, const tb_http_req *req, tb_http_res *res)
{
    (void)ctx;
    return put_data(res, 200, json_pack("{s:s}", "method", req->method_name));
}

enum { OP_GET_ITEM, OP_CREATE_ITEM, OP_LIST_ITEMS, OP_FAIL, OP_SLOW, OP_LINK_ITEM };

static const tb_http_op test_ops[] = {
    {"getItem", TB_HTTP_GET, "/items/{id}", 0, get_item, NULL},
    {"createItem", TB_HTTP_POST, "/items", TB_OP_BODY | TB_OP_BODY_REQUIRED, create_item, NULL},
    {"listItems", TB_HTTP_GET, "/items", 0, list_items, NULL},
    {"failItem", TB_HTTP_GET, "/fail", 0, fail_item, NULL},
    {"slowItem", TB_HTTP_GET, "/slow", 0, slow_item, NULL},
    {"linkItem", -1, "/items/{id}", 0, link_item, NULL},
};

/* another method, routed by its name */
static const tb_http_xop test_xops[] = {{0, OP_LINK_ITEM, "LINK"}};

/* GET PUT POST DELETE OPTIONS HEAD PATCH TRACE */
static const int16_t test_routes[][TB_HTTP_N_METHODS] = {
    {OP_GET_ITEM, -1, -1, -1, -1, -1, -1, -1},
    {OP_LIST_ITEMS, -1, OP_CREATE_ITEM, -1, -1, -1, -1, -1},
    {OP_FAIL, -1, -1, -1, -1, -1, -1, -1},
    {OP_SLOW, -1, -1, -1, -1, -1, -1, -1},
};

static bool path_is(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

static int test_match(const char *path, size_t len, int method, tb_str *params, size_t *n_params)
{
    (void)method; /* one operation per path here */
    *n_params = 0;
    if (path_is(path, len, "/items"))
        return 1;
    if (path_is(path, len, "/fail"))
        return 2;
    if (path_is(path, len, "/slow"))
        return 3;
    if (len > 7 && memcmp(path, "/items/", 7) == 0 && !memchr(path + 7, '/', len - 7)) {
        params[0].p = path + 7;
        params[0].n = len - 7;
        *n_params = 1;
        return 0;
    }
    return -1;
}

static const tb_http_api test_api = {
    "items",
    "Items",
    "1.0",
    test_ops,
    sizeof test_ops / sizeof test_ops[0],
    test_match,
    test_routes,
    sizeof test_routes / sizeof test_routes[0],
    NULL,
    NULL,
    0,
    test_xops,
    1,
    NULL,
    0,
};

/* ---- middlewares ---- */

static int deny_on_request(void *self, tb_ctx *ctx, const tb_http_req *req, const tb_http_op *op,
                           tb_http_res *res)
{
    (void)self, (void)op;
    if (!tb_http_req_header(req, "X-Deny"))
        return 0;
    tb_api_error e;
    tb_api_error_set(&e, ctx, "unauthorized", "credentials are required for %s", op->operation_id);
    tb_http_res_error(res, ctx, 401, &e);
    return 1;
}

static void tag_on_response(void *self, tb_ctx *ctx, const tb_http_req *req, const tb_http_op *op,
                            tb_http_res *res)
{
    (void)ctx, (void)req;
    tb_http_res_header(res, "X-Served-By", self);
    tb_http_res_header(res, "X-Op", op ? op->operation_id : "none");
}

/* ---- client helpers ---- */

typedef struct reply {
    long status;
    CURLcode cc;
    char body[16384];
    size_t len;
    char head[8192];
    size_t hlen;
    json_t *json;
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    size_t k = sz * n;
    if (k > sizeof r->body - 1 - r->len)
        k = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    size_t k = sz * n;
    if (k > sizeof r->head - 1 - r->hlen)
        k = sizeof r->head - 1 - r->hlen;
    memcpy(r->head + r->hlen, p, k);
    r->hlen += k;
    r->head[r->hlen] = '\0';
    return sz * n;
}

/* Value of response header `name` (last response only), copied into out; NULL when absent. */
static const char *header(const reply *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = r->head; *line;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if ((size_t)(end - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vn = (size_t)(end - v);
            if (vn >= cap)
                vn = cap - 1;
            memcpy(out, v, vn);
            out[vn] = '\0';
            return out;
        }
        line = end + 2;
    }
    return NULL;
}

typedef struct upload {
    size_t left;
} upload;

static size_t on_read(char *p, size_t sz, size_t n, void *ud)
{
    upload *u = ud;
    size_t k = sz * n < u->left ? sz * n : u->left;
    memset(p, 'x', k);
    u->left -= k;
    return k;
}

static char base_url[64];

static void reply_clear(reply *r)
{
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Sends a request on handle h (reused: keep-alive) and parses the JSON body. method NULL: GET.
 * body NULL: none; chunked > 0: a chunked upload of that many bytes instead. */
static void send_on(CURL *h, const char *base, const char *method, const char *path,
                    const char *body, size_t chunked, struct curl_slist *hdrs, reply *r)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    reply_clear(r);
    upload up = {chunked};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (chunked) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, -1L);
    } else if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (method && strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        method = NULL;
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    r->cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->json = r->len ? json_loads(r->body, 0, NULL) : NULL;
}

static void send_req(const char *method, const char *path, const char *body,
                     struct curl_slist *hdrs, reply *r)
{
    CURL *h = curl_easy_init();
    send_on(h, base_url, method, path, body, 0, hdrs, r);
    curl_easy_cleanup(h);
}

static const char *jstr(const json_t *j, const char *path)
{
    /* "a.b.c" */
    char key[64];
    const json_t *cur = j;
    while (cur && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        cur = json_object_get(cur, key);
        path += n + (path[n] == '.');
    }
    return json_string_value(cur);
}

static bool is_hex32(const char *s)
{
    if (!s || strlen(s) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return false;
    return true;
}

static void assert_error(const reply *r, long status, const char *code)
{
    ck_assert_int_eq(r->cc, CURLE_OK);
    ck_assert_int_eq(r->status, status);
    ck_assert_msg(r->json != NULL, "body is not JSON: %s", r->body);
    ck_assert_str_eq(jstr(r->json, "error.code"), code);
    ck_assert_ptr_nonnull(jstr(r->json, "error.message"));
    char rid[160];
    ck_assert_ptr_nonnull(header(r, "X-Request-ID", rid, sizeof rid));
    ck_assert_str_eq(jstr(r->json, "error.requestId"), rid);
}

/* ---- the shared server ---- */

static tb_server *srv;
static char state_text[] = "the-state";

static void start_shared(void)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.max_body = 1024;
    o.validate_responses = 1;
    o.access_log = false;
    tb_error err = TB_ERROR_INIT;
    srv = tb_server_new(&test_api, &o, &err);
    ck_assert_msg(srv != NULL, "%s", err.message);
    tb_server_set_state(srv, state_text, NULL);
    tb_middleware deny = {"deny", deny_on_request, NULL, NULL};
    tb_middleware tag = {"tag", NULL, tag_on_response, "tablium-test"};
    ck_assert_int_eq(tb_server_use(srv, &deny), 0);
    ck_assert_int_eq(tb_server_use(srv, &tag), 0);
    ck_assert_int_eq(tb_server_start(srv, &err), 0);
    ck_assert_uint_ne(tb_server_port(srv), 0);
    ck_assert(tb_server_validates_responses(srv));
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", (unsigned)tb_server_port(srv));
    tb_error_deinit(&err);
}

static void stop_shared(void)
{
    ck_assert_int_eq(tb_server_stop(srv), 0);
    ck_assert_int_eq(tb_server_stop(srv), 0); /* idempotent */
    tb_server_free(srv);
    srv = NULL;
}

/* ---- http.c ---- */

START_TEST(methods_and_reasons_round_trip)
{
    for (int m = 0; m < TB_HTTP_N_METHODS; m++) {
        const char *name = tb_http_method_name(m);
        ck_assert_int_eq(tb_http_method_parse(name, strlen(name)), m);
    }
    ck_assert_ptr_null(tb_http_method_name(TB_HTTP_N_METHODS));
    ck_assert_ptr_null(tb_http_method_name(-1));
    ck_assert_int_eq(tb_http_method_parse("get", 3), -1);
    ck_assert_int_eq(tb_http_method_parse("GETX", 3), TB_HTTP_GET);
    ck_assert_int_eq(tb_http_method_parse("CONNECT", 7), -1);
    ck_assert_str_eq(tb_http_reason(404), "Not Found");
    ck_assert_str_eq(tb_http_reason(413), "Content Too Large");
    ck_assert_str_eq(tb_http_reason(799), "Unknown");
}
END_TEST

START_TEST(pct_decode_rejects_bad_escapes_and_nul_keeps_plus)
{
    tb_arena *a = tb_arena_new(0);
    bool bad = true;
    ck_assert_str_eq(tb_http_pct_decode(a, "a%2Fb%20c+d%e2%82%AC", 20, &bad),
                     "a/b c+d\xe2\x82\xac");
    ck_assert(!bad);
    ck_assert_str_eq(tb_http_pct_decode(a, "abc%41zzz", 6, NULL), "abcA");
    ck_assert_ptr_null(tb_http_pct_decode(a, "x%4", 3, &bad));
    ck_assert(bad);
    ck_assert_ptr_null(tb_http_pct_decode(a, "x%zz", 4, &bad));
    ck_assert(bad);
    ck_assert_ptr_null(tb_http_pct_decode(a, "x%00y", 5, &bad));
    ck_assert(bad);
    ck_assert_str_eq(tb_http_pct_decode(a, "", 0, &bad), "");
    ck_assert(!bad);
    tb_arena_free(a);
}
END_TEST

/* matches seg against pieces ("" strings stand for parameters); the parameters joined by '|' */
static const char *seg_match(const char *seg, const char *const *pc, size_t npc, size_t max_out)
{
    static char got[256];
    tb_http_seg_piece pieces[8];
    tb_str out[8];
    for (size_t i = 0; i < npc; i++) {
        pieces[i].lit = pc[i][0] ? pc[i] : NULL;
        pieces[i].n = strlen(pc[i]);
    }
    tb_str s = {seg, strlen(seg)};
    int n = tb_http_segment_match(s, pieces, npc, out, max_out);
    if (n < 0)
        return NULL;
    got[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", i ? "|" : "",
                 (int)out[i].n, out[i].p);
    return got;
}

START_TEST(segment_match_splits_mixed_segments_lazily_and_anchors_a_trailing_literal)
{
    const char *ext[] = {"", ".", ""};          /* {stem}.{ext} */
    const char *cancel[] = {"", ":cancel"};     /* {name}:cancel */
    const char *mix[] = {"", "1234", "", "-", "", "!", ""}; /* {foo}1234{bar}-{baz}!{kek} */
    const char *pre[] = {"v", "", ".json"};     /* v{n}.json */
    ck_assert_str_eq(seg_match("report.txt", ext, 3, 8), "report|txt");
    /* the first '.' ends the stem (path-to-regexp's lazy rule); the rest is the ext */
    ck_assert_str_eq(seg_match("a.tar.gz", ext, 3, 8), "a|tar.gz");
    /* a parameter takes at least one byte: a leading '.' belongs to the stem */
    ck_assert_str_eq(seg_match(".b.c", ext, 3, 8), ".b|c");
    ck_assert_ptr_null(seg_match("report.", ext, 3, 8));
    ck_assert_ptr_null(seg_match("report", ext, 3, 8));
    ck_assert_ptr_null(seg_match("", ext, 3, 8));
    ck_assert_str_eq(seg_match("job42:cancel", cancel, 2, 8), "job42");
    /* the trailing literal is anchored at the end, whatever comes before */
    ck_assert_str_eq(seg_match("a:cancel:cancel", cancel, 2, 8), "a:cancel");
    ck_assert_ptr_null(seg_match(":cancel", cancel, 2, 8));
    ck_assert_ptr_null(seg_match("job42:cancelx", cancel, 2, 8));
    ck_assert_ptr_null(seg_match("job42", cancel, 2, 8));
    ck_assert_str_eq(seg_match("ab1234cd-true!-7", mix, 7, 8), "ab|cd|true|-7");
    ck_assert_str_eq(seg_match("a12341234b-c!d", mix, 7, 8), "a|1234b|c|d");
    ck_assert_ptr_null(seg_match("ab1234cd-true", mix, 7, 8));
    ck_assert_ptr_null(seg_match("ab1234-true!1", mix, 7, 8)); /* bar would be empty... */
    /* ...unless a later '-' gives it a byte */
    ck_assert_str_eq(seg_match("ab1234--x!1", mix, 7, 8), "ab|-|x|1");
    ck_assert_ptr_null(seg_match("ab1234cd-true!1", mix, 7, 3)); /* more than max_out */
    ck_assert_str_eq(seg_match("v12.json", pre, 3, 8), "12");
    ck_assert_ptr_null(seg_match("w12.json", pre, 3, 8));
    ck_assert_ptr_null(seg_match("v.json", pre, 3, 8));
    ck_assert_ptr_null(seg_match("v", pre, 3, 8));
}
END_TEST

START_TEST(res_error_writes_envelope_without_details_when_none)
{
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    tb_ctx_init(&ctx, a, "rid-1");
    tb_http_res res = {0};
    tb_buf_puts(&res.body, "junk that must be reset");
    tb_api_error e;
    tb_api_error_set(&e, &ctx, "insufficient_funds", "need %d more \"coins\"", 5);
    ck_assert_str_eq(e.message, "need 5 more \"coins\"");
    ck_assert_int_eq(tb_http_res_error(&res, &ctx, 409, &e), 0);
    ck_assert_int_eq(res.status, 409);
    ck_assert_str_eq(res.body.data, "{\"error\":{\"code\":\"insufficient_funds\",\"message\":"
                                    "\"need 5 more \\\"coins\\\"\",\"requestId\":\"rid-1\"}}");
    for (int i = 0; i < TB_HTTP_MAX_RES_HEADERS; i++)
        ck_assert_int_eq(tb_http_res_header(&res, "X-A", "b"), 0);
    ck_assert_int_eq(tb_http_res_header(&res, "X-A", "b"), TB_EINVAL);
    tb_buf_deinit(&res.body);
    tb_arena_free(a);
}
END_TEST

START_TEST(res_error_from_maps_validation_parse_and_other_errors)
{
    tb_ctx ctx;
    tb_ctx_init(&ctx, NULL, "r");
    tb_http_res res = {0};
    tb_error err = TB_ERROR_INIT;

    tb_error_set(&err, TB_EVALIDATION, "x");
    tb_error_add_detail(&err, "/a", "minimum", "must be >= 0");
    tb_error_add_detail(&err, "/b", "required", "is required");
    ck_assert_int_eq(tb_http_res_error_from(&res, &ctx, 422, "ignored", &err), 0);
    json_t *j = json_loads(res.body.data, 0, NULL);
    ck_assert_int_eq(res.status, 422);
    ck_assert_str_eq(jstr(j, "error.code"), "validation_failed");
    json_t *d = json_object_get(json_object_get(j, "error"), "details");
    ck_assert_uint_eq(json_array_size(d), 2);
    ck_assert_str_eq(jstr(json_array_get(d, 1), "rule"), "required");
    ck_assert_str_eq(jstr(json_array_get(d, 0), "message"), "must be >= 0");
    json_decref(j);

    ck_assert_ptr_null(tb_json_loadb("[1,\n 2,,]", 9, &err));
    ck_assert_int_eq(tb_http_res_error_from(&res, &ctx, 400, "ignored", &err), 0);
    j = json_loads(res.body.data, 0, NULL);
    ck_assert_str_eq(jstr(j, "error.code"), "malformed_json");
    const char *m = jstr(j, "error.message");
    ck_assert_msg(strstr(m, "line 2") && strstr(m, "column") && strstr(m, "position"), "%s", m);
    json_decref(j);

    tb_error_set(&err, TB_ENOTFOUND, "no wallet 7");
    ck_assert_int_eq(tb_http_res_error_from(&res, &ctx, 404, "wallet_not_found", &err), 0);
    j = json_loads(res.body.data, 0, NULL);
    ck_assert_str_eq(jstr(j, "error.code"), "wallet_not_found");
    ck_assert_str_eq(jstr(j, "error.message"), "no wallet 7");
    ck_assert_ptr_null(json_object_get(json_object_get(j, "error"), "details"));
    json_decref(j);

    tb_error_deinit(&err);
    tb_buf_deinit(&res.body);
}
END_TEST

/* ---- log.c ---- */

/* Runs fn with stderr redirected into buf. */
static void capture_stderr(void (*fn)(void *), void *arg, char *buf, size_t cap)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn(arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = read(fds[0], buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fds[0]);
}

/* The level the suite runs at (off unless TB_LOG_LEVEL says otherwise: the 500 test logs an
 * error on purpose). */
static tb_log_level suite_level = TB_LOG_OFF;

static void log_some(void *arg)
{
    (void)arg;
    tb_ctx ctx;
    tb_ctx_init(&ctx, NULL, "req-9");
    ctx.service = "wallet";
    tb_log_set_level(TB_LOG_WARN);
    tb_log_info(&ctx, "filtered out");
    tb_log_fields(TB_LOG_WARN, &ctx, "\"status\":503", "quote \" backslash \\ newline \n %d", 7);
    tb_log_error(NULL, "%s", "no context");
}

START_TEST(log_writes_one_json_object_per_line_filtered_by_level)
{
    char out[4096];
    capture_stderr(log_some, NULL, out, sizeof out);
    char *nl = strchr(out, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    json_t *a = json_loads(out, 0, NULL);
    json_t *b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_msg(a && b, "not JSON lines: %s", out);
    ck_assert_str_eq(jstr(a, "level"), "warn");
    ck_assert_str_eq(jstr(a, "service"), "wallet");
    ck_assert_str_eq(jstr(a, "requestId"), "req-9");
    ck_assert_str_eq(jstr(a, "msg"), "quote \" backslash \\ newline \n 7");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "status")), 503);
    const char *ts = jstr(a, "ts");
    ck_assert_msg(strlen(ts) == 24 && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z', "%s", ts);
    ck_assert_str_eq(jstr(b, "level"), "error");
    ck_assert_ptr_null(json_object_get(b, "requestId"));
    ck_assert_ptr_null(strstr(nl + 1, "filtered out"));
    ck_assert(!tb_log_enabled(TB_LOG_INFO));
    ck_assert(tb_log_enabled(TB_LOG_ERROR));
    tb_log_set_level(suite_level);
    json_decref(a);
    json_decref(b);
}
END_TEST

/* ---- options ---- */

START_TEST(opts_from_env_reads_service_prefixed_then_generic_names)
{
    setenv("MY_SVC_PORT", "8123", 1);
    setenv("PORT", "9999", 1);
    setenv("HOST", "0.0.0.0", 1);
    setenv("TB_THREADS", "3", 1);
    setenv("TB_MAX_BODY", "2048", 1);
    setenv("TB_VALIDATE_RESPONSES", "0", 1);
    setenv("TB_ACCESS_LOG", "0", 1);
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    tb_server_opts_from_env(&o, "my-svc");
    ck_assert_uint_eq(o.port, 8123);
    ck_assert_str_eq(o.host, "0.0.0.0");
    ck_assert_uint_eq(o.threads, 3);
    ck_assert_uint_eq(o.max_body, 2048);
    ck_assert_int_eq(o.validate_responses, 0);
    ck_assert(!o.access_log);
    unsetenv("MY_SVC_PORT");
    setenv("TB_THREADS", "lots", 1); /* ignored */
    tb_server_opts p = TB_SERVER_OPTS_INIT;
    tb_server_opts_from_env(&p, "my-svc");
    ck_assert_uint_eq(p.port, 9999);
    ck_assert_uint_eq(p.threads, 0);

    /* -1 resolves from TB_VALIDATE_RESPONSES */
    tb_server_opts v = TB_SERVER_OPTS_INIT;
    tb_server *s = tb_server_new(&test_api, &v, NULL);
    ck_assert(!tb_server_validates_responses(s));
    tb_server_free(s);
    setenv("TB_VALIDATE_RESPONSES", "1", 1);
    s = tb_server_new(&test_api, &v, NULL);
    ck_assert(tb_server_validates_responses(s));
    tb_server_free(s);

    const char *vars[] = {
        "PORT", "HOST", "TB_THREADS", "TB_MAX_BODY", "TB_VALIDATE_RESPONSES", "TB_ACCESS_LOG"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}
END_TEST

/* ---- the server ---- */

START_TEST(get_returns_data_envelope_with_json_type_and_request_id)
{
    reply r = {0};
    send_req(NULL, "/items/42", NULL, NULL, &r);
    ck_assert_int_eq(r.cc, CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "data.id"), "42");
    char v[160];
    ck_assert_str_eq(header(&r, "Content-Type", v, sizeof v), "application/json");
    ck_assert(is_hex32(header(&r, "X-Request-ID", v, sizeof v)));
    ck_assert_str_eq(header(&r, "X-Served-By", v, sizeof v), "tablium-test");
    ck_assert_str_eq(header(&r, "X-Op", v, sizeof v), "getItem");
    reply_clear(&r);
}
END_TEST

START_TEST(raw_path_param_reaches_op_encoded_and_decodes_there)
{
    reply r = {0};
    send_req(NULL, "/items/a%2Fb%20c%E2%82%AC", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "data.raw"), "a%2Fb%20c%E2%82%AC");
    ck_assert_str_eq(jstr(r.json, "data.id"), "a/b c\xe2\x82\xac");
    send_req(NULL, "/items/bad%zz", NULL, NULL, &r);
    assert_error(&r, 400, "bad_path");
    reply_clear(&r);
}
END_TEST

START_TEST(unknown_path_is_404_not_found)
{
    reply r = {0};
    send_req(NULL, "/nowhere", NULL, NULL, &r);
    assert_error(&r, 404, "not_found");
    char v[64];
    ck_assert_str_eq(header(&r, "X-Op", v, sizeof v), "none"); /* on_response saw it too */
    reply_clear(&r);
}
END_TEST

START_TEST(wrong_method_is_405_with_allow_listing_route_methods_unknown_501)
{
    reply r = {0};
    send_req("DELETE", "/items/1", NULL, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    char v[128];
    ck_assert_str_eq(header(&r, "Allow", v, sizeof v), "GET, HEAD, LINK");
    /* a method outside the fixed eight, routed by name (case-sensitive) */
    send_req("LINK", "/items/1", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"method\":\"LINK\""), "%s", r.body);
    /* a method the service implements nowhere (case counts: "link" is not LINK) is 501,
     * RFC 9110 9.1; one it knows, on a resource without it, 405 */
    send_req("link", "/items/1", NULL, NULL, &r);
    assert_error(&r, 501, "not_implemented");
    send_req("LINK", "/items", NULL, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    send_req("PUT", "/items", NULL, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    ck_assert_str_eq(header(&r, "Allow", v, sizeof v), "GET, POST, HEAD");
    send_req("BREW", "/items", NULL, NULL, &r);
    assert_error(&r, 501, "not_implemented");
    reply_clear(&r);
}
END_TEST

START_TEST(post_json_body_is_created_with_json_media_types)
{
    reply r = {0};
    const char *types[] = {"Content-Type: application/json",
                           "Content-Type: Application/JSON; charset=utf-8",
                           "Content-Type: application/merge-patch+json"};
    for (size_t i = 0; i < 3; i++) {
        struct curl_slist *h = curl_slist_append(NULL, types[i]);
        send_req(NULL, "/items", "{\"name\":\"pen\"}", h, &r);
        curl_slist_free_all(h);
        ck_assert_int_eq(r.status, 201);
        ck_assert_str_eq(jstr(r.json, "data.name"), "pen");
    }
    reply_clear(&r);
}
END_TEST

START_TEST(body_over_limit_by_content_length_is_413_at_once)
{
    char big[2049];
    memset(big, 'a', 2048);
    big[2048] = '\0';
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    send_req(NULL, "/items", big, h, &r);
    assert_error(&r, 413, "payload_too_large");
    /* without Expect: 100-continue the body is already on the wire */
    h = curl_slist_append(h, "Expect:");
    send_req(NULL, "/items", big, h, &r);
    assert_error(&r, 413, "payload_too_large");
    curl_slist_free_all(h);
    reply_clear(&r);
}
END_TEST

START_TEST(chunked_body_growing_over_limit_is_413)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    send_on(c, base_url, NULL, "/items", NULL, 8000, h, &r);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    assert_error(&r, 413, "payload_too_large");
    reply_clear(&r);
}
END_TEST

START_TEST(chunked_body_under_limit_reaches_the_op)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    send_on(c, base_url, NULL, "/items", NULL, 500, h, &r); /* 500 x 'x': not JSON */
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    assert_error(&r, 400, "malformed_json");
    reply_clear(&r);
}
END_TEST

START_TEST(non_json_content_type_is_415)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/plain");
    send_req(NULL, "/items", "{\"name\":\"pen\"}", h, &r);
    assert_error(&r, 415, "unsupported_media_type");
    curl_slist_free_all(h);
    h = curl_slist_append(NULL, "Content-Type: application/jsonp");
    send_req(NULL, "/items", "{\"name\":\"pen\"}", h, &r);
    assert_error(&r, 415, "unsupported_media_type");
    curl_slist_free_all(h);
    reply_clear(&r);
}
END_TEST

START_TEST(malformed_json_is_400_with_line_and_column)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    send_req(NULL, "/items", "{\n  \"name\": tru\n}", h, &r);
    curl_slist_free_all(h);
    assert_error(&r, 400, "malformed_json");
    const char *m = jstr(r.json, "error.message");
    ck_assert_msg(strstr(m, "line 2") && strstr(m, "column "), "%s", m);
    reply_clear(&r);
}
END_TEST

START_TEST(missing_required_body_is_400_with_body_required_detail)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    send_req(NULL, "/items", "", h, &r);
    curl_slist_free_all(h);
    assert_error(&r, 400, "validation_failed");
    json_t *d = json_object_get(json_object_get(r.json, "error"), "details");
    ck_assert_uint_eq(json_array_size(d), 1);
    ck_assert_str_eq(jstr(json_array_get(d, 0), "path"), "/body");
    ck_assert_str_eq(jstr(json_array_get(d, 0), "rule"), "required");
    ck_assert_str_eq(jstr(json_array_get(d, 0), "message"), "a JSON body is required");
    reply_clear(&r);
}
END_TEST

START_TEST(schema_violation_is_400_validation_failed_with_details)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    send_req(NULL, "/items", "{\"name\":5}", h, &r);
    curl_slist_free_all(h);
    assert_error(&r, 400, "validation_failed");
    json_t *d = json_object_get(json_object_get(r.json, "error"), "details");
    ck_assert_str_eq(jstr(json_array_get(d, 0), "path"), "/name");
    ck_assert_str_eq(jstr(json_array_get(d, 0), "rule"), "type");
    reply_clear(&r);
}
END_TEST

START_TEST(op_failure_is_500_internal_without_internals)
{
    reply r = {0};
    send_req(NULL, "/fail", NULL, NULL, &r);
    assert_error(&r, 500, "internal");
    ck_assert_str_eq(jstr(r.json, "error.message"), "internal error");
    ck_assert_ptr_null(strstr(r.body, "secret"));
    ck_assert_ptr_null(strstr(r.body, "TB_EIO"));
    ck_assert_ptr_null(strstr(r.body, "output"));
    reply_clear(&r);
}
END_TEST

START_TEST(request_id_is_echoed_generated_or_replaced_when_invalid)
{
    reply r = {0};
    char v[200];
    struct curl_slist *h = curl_slist_append(NULL, "X-Request-ID: client-id_42.x");
    send_req(NULL, "/items", NULL, h, &r);
    curl_slist_free_all(h);
    ck_assert_str_eq(header(&r, "X-Request-ID", v, sizeof v), "client-id_42.x");
    ck_assert_str_eq(jstr(r.json, "data.requestId"), "client-id_42.x");

    send_req(NULL, "/nowhere", NULL, NULL, &r);
    ck_assert(is_hex32(header(&r, "X-Request-ID", v, sizeof v)));
    ck_assert_str_eq(jstr(r.json, "error.requestId"), v);

    h = curl_slist_append(NULL, "X-Request-ID: has spaces in it");
    send_req(NULL, "/items", NULL, h, &r);
    curl_slist_free_all(h);
    ck_assert(is_hex32(header(&r, "X-Request-ID", v, sizeof v)));

    char longid[160] = "X-Request-ID: ";
    memset(longid + strlen(longid), 'a', 129);
    h = curl_slist_append(NULL, longid);
    send_req(NULL, "/items", NULL, h, &r);
    curl_slist_free_all(h);
    ck_assert(is_hex32(header(&r, "X-Request-ID", v, sizeof v)));
    reply_clear(&r);
}
END_TEST

START_TEST(keep_alive_survives_consecutive_requests)
{
    CURL *c = curl_easy_init();
    reply r = {0};
    long conns = -1;
    send_on(c, base_url, NULL, "/items/1", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    ck_assert_int_eq(conns, 1);
    send_on(c, base_url, NULL, "/items/2", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    ck_assert_int_eq(conns, 0);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    send_on(c, base_url, NULL, "/items", "{\"name\":\"x\"}", 0, h, &r);
    curl_slist_free_all(h);
    ck_assert_int_eq(r.status, 201);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    ck_assert_int_eq(conns, 0);
    send_on(c, base_url, NULL, "/nowhere", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    ck_assert_int_eq(conns, 0);
    curl_easy_cleanup(c);
    reply_clear(&r);
}
END_TEST

START_TEST(middleware_can_answer_401_and_add_response_headers)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "X-Deny: 1");
    send_req(NULL, "/items/1", NULL, h, &r);
    curl_slist_free_all(h);
    assert_error(&r, 401, "unauthorized");
    ck_assert_str_eq(jstr(r.json, "error.message"), "credentials are required for getItem");
    char v[64];
    ck_assert_str_eq(header(&r, "X-Served-By", v, sizeof v), "tablium-test");
    reply_clear(&r);
}
END_TEST

START_TEST(query_header_cookie_and_ctx_values_reach_the_op)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "X-Tenant: acme");
    h = curl_slist_append(h, "Cookie: theme=dark; session=s3cr3t");
    h = curl_slist_append(h,
                          "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    send_req(NULL, "/items?q=hello%20world&id=1&id=2&id=%33&flag&plus=a+b%2Bc", NULL, h, &r);
    curl_slist_free_all(h);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "data.q"), "hello world");
    json_t *ids = json_object_get(json_object_get(r.json, "data"), "ids");
    ck_assert_uint_eq(json_array_size(ids), 3);
    ck_assert_str_eq(json_string_value(json_array_get(ids, 2)), "3");
    json_t *d = json_object_get(r.json, "data");
    ck_assert(json_is_true(json_object_get(d, "flagPresent")));
    ck_assert(json_is_false(json_object_get(d, "flagHasValue")));
    ck_assert(json_is_false(json_object_get(d, "nopePresent")));
    ck_assert(json_is_true(json_object_get(d, "validate")));
    ck_assert_str_eq(jstr(r.json, "data.plus"), "a b+c");
    ck_assert_str_eq(jstr(r.json, "data.tenant"), "acme");
    ck_assert_str_eq(jstr(r.json, "data.session"), "s3cr3t");
    ck_assert_str_eq(jstr(r.json, "data.state"), "the-state");
    ck_assert_str_eq(jstr(r.json, "data.service"), "items");
    /* ctx->traceparent is the request's server span: the caller's trace, a new span id */
    const char *tp = jstr(r.json, "data.traceparent");
    ck_assert_int_eq((int)strlen(tp), 55);
    ck_assert(strncmp(tp, "00-0af7651916cd43dd8448eb211c80319c-", 36) == 0);
    ck_assert(strcmp(tp + 36, "b7ad6b7169203331-01") != 0);
    ck_assert_str_eq(tp + 52, "-01");
    reply_clear(&r);
}
END_TEST

START_TEST(head_is_served_by_get_without_body)
{
    CURL *c = curl_easy_init();
    reply r = {0};
    send_on(c, base_url, "HEAD", "/items/1", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.cc, CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, 0);
    curl_easy_cleanup(c);
    reply_clear(&r);
}
END_TEST

static void *request_in_thread(void *arg)
{
    reply *r = arg;
    send_req(NULL, "/slow", NULL, NULL, r);
    return NULL;
}

static tb_server *start_private(bool access_log)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.shutdown_grace_ms = 5000;
    o.access_log = access_log;
    tb_server *s = tb_server_new(&test_api, &o, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tb_server_start(s, NULL), 0);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", (unsigned)tb_server_port(s));
    return s;
}

/* A server of api on a free port, base_url pointing at it (the caller keeps the shared one). */
static tb_server *start_with(const tb_http_api *api)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    tb_server *s = tb_server_new(api, &o, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tb_server_start(s, NULL), 0);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", (unsigned)tb_server_port(s));
    return s;
}

/* servers[0] with a path ("https://host/v2"): every route is mounted under it */
START_TEST(routes_are_mounted_under_the_base_path_of_servers_0)
{
    char shared_url[64];
    memcpy(shared_url, base_url, sizeof shared_url);
    static tb_http_api v2_api;
    v2_api = test_api;
    v2_api.base_path = "/v2";
    tb_server *s = start_with(&v2_api);
    reply r = {0};
    send_req(NULL, "/v2/items/42", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "data.id"), "42");
    send_req(NULL, "/items/42", NULL, NULL, &r); /* outside the base path */
    assert_error(&r, 404, "not_found");
    send_req(NULL, "/v2items/42", NULL, NULL, &r); /* a prefix of a segment is not the path */
    assert_error(&r, 404, "not_found");
    send_req(NULL, "/health/live", NULL, NULL, &r); /* the runtime's own stay at the root */
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(tb_server_stop(s), 0);
    tb_server_free(s);
    reply_clear(&r);
    memcpy(base_url, shared_url, sizeof shared_url);
}
END_TEST

/* Operations sharing a route and method, told apart by a header's value and the body's media
 * type (tb_http_qop; AWS's X-Amz-Target, Azure's #overload=stream): the same entries sorted by
 * route and method (bisected) and not (read in full) route alike. */
static const char *const qop_hn[] = {"x-kind"}, *const qop_hv[] = {"list"};
static const char *const qop_qn[] = {"ids"}, *const qop_qv[] = {NULL};
static const char *const qop_media[] = {"text/*", ""};
#define QOP_TEXT {1, TB_HTTP_POST, OP_LINK_ITEM, 0, NULL, NULL, 0, NULL, NULL, 2, qop_media}
#define QOP_KIND {2, TB_HTTP_GET, OP_LIST_ITEMS, 1, qop_qn, qop_qv, 1, qop_hn, qop_hv, 0, NULL}

static void check_qop_routing(const tb_http_qop *qops, size_t n)
{
    char shared_url[64];
    memcpy(shared_url, base_url, sizeof shared_url);
    static tb_http_api q_api;
    q_api = test_api;
    q_api.qops = qops;
    q_api.n_qops = n;
    tb_server *s = start_with(&q_api);
    reply r = {0};
    struct curl_slist *kind = curl_slist_append(NULL, "X-Kind: list");
    struct curl_slist *other = curl_slist_append(NULL, "X-Kind: lists");
    struct curl_slist *text = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    struct curl_slist *json = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *none = curl_slist_append(NULL, "Content-Type:");
    send_req(NULL, "/fail?ids", NULL, kind, &r); /* the header's value and the query: list */
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(json_object_get(json_object_get(r.json, "data"), "ids"));
    send_req(NULL, "/fail?ids", NULL, other, &r); /* another value: the route's own */
    assert_error(&r, 500, "internal");
    send_req(NULL, "/fail", NULL, kind, &r); /* the query parameter missing */
    assert_error(&r, 500, "internal");
    send_req("POST", "/items", "plain words", text, &r); /* text/plain: text/ * */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "data.method"), "POST");
    send_req("POST", "/items", "", none, &r); /* no body, no Content-Type: "" */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(jstr(r.json, "data.method"), "POST");
    send_req("POST", "/items", "{\"name\":\"x\"}", json, &r); /* JSON: the route's own */
    ck_assert_int_eq(r.status, 201);
    curl_slist_free_all(kind);
    curl_slist_free_all(other);
    curl_slist_free_all(text);
    curl_slist_free_all(json);
    curl_slist_free_all(none);
    ck_assert_int_eq(tb_server_stop(s), 0);
    tb_server_free(s);
    reply_clear(&r);
    memcpy(base_url, shared_url, sizeof shared_url);
}

START_TEST(operations_of_one_route_are_told_apart_by_headers_and_media_types)
{
    const tb_http_qop sorted[] = {QOP_TEXT, QOP_KIND};
    const tb_http_qop unsorted[] = {QOP_KIND, QOP_TEXT};
    check_qop_routing(sorted, 2);
    check_qop_routing(unsorted, 2);
}
END_TEST

START_TEST(stop_lets_in_flight_request_finish_then_refuses_connections)
{
    char shared_url[64];
    memcpy(shared_url, base_url, sizeof shared_url);
    tb_server *s = start_private(false);
    reply slow = {0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, request_in_thread, &slow), 0);
    for (int i = 0; i < 2000 && tb_server_in_flight(s) == 0; i++)
        usleep(1000);
    ck_assert_uint_eq(tb_server_in_flight(s), 1);
    ck_assert_int_eq(tb_server_stop(s), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(slow.cc, CURLE_OK);
    ck_assert_int_eq(slow.status, 200);
    ck_assert(json_is_true(json_object_get(json_object_get(slow.json, "data"), "slow")));
    ck_assert_uint_eq(tb_server_in_flight(s), 0);

    reply r = {0};
    send_req(NULL, "/items/1", NULL, NULL, &r);
    ck_assert_int_eq(r.cc, CURLE_COULDNT_CONNECT);
    tb_server_free(s);
    reply_clear(&slow);
    reply_clear(&r);
    memcpy(base_url, shared_url, sizeof shared_url);
}
END_TEST

START_TEST(stop_cuts_what_the_grace_period_leaves_and_returns_0)
{
    char shared_url[64];
    memcpy(shared_url, base_url, sizeof shared_url);
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 1;
    o.shutdown_grace_ms = 20;
    tb_server *s = tb_server_new(&test_api, &o, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tb_server_start(s, NULL), 0);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", (unsigned)tb_server_port(s));
    reply slow = {0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, request_in_thread, &slow), 0);
    for (int i = 0; i < 2000 && tb_server_in_flight(s) == 0; i++)
        usleep(1000);
    ck_assert_int_eq(tb_server_stop(s), 0);
    tb_server_stats st;
    tb_server_stats_get(s, &st);
    ck_assert_uint_eq(st.cut_at_stop, 1);
    pthread_join(t, NULL);
    tb_server_free(s);
    reply_clear(&slow);
    memcpy(base_url, shared_url, sizeof shared_url);
}
END_TEST

typedef struct run_arg {
    tb_server *s;
    pthread_t main_thread;
    bool use_signal;
    long status;
} run_arg;

static void *shutdown_when_serving(void *arg)
{
    run_arg *ra = arg;
    for (int i = 0; i < 5000 && tb_server_port(ra->s) == 0; i++)
        usleep(1000);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)tb_server_port(ra->s));
    reply r = {0};
    CURL *c = curl_easy_init();
    send_on(c, base, NULL, "/items/7", NULL, 0, NULL, &r);
    curl_easy_cleanup(c);
    ra->status = r.status;
    reply_clear(&r);
    if (ra->use_signal)
        pthread_kill(ra->main_thread, SIGTERM);
    else
        tb_server_shutdown(ra->s);
    return NULL;
}

static void run_until_stopped(bool use_signal)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    tb_server *s = tb_server_new(&test_api, &o, NULL);
    ck_assert_ptr_nonnull(s);
    run_arg ra = {s, pthread_self(), use_signal, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, shutdown_when_serving, &ra), 0);
    ck_assert_int_eq(tb_server_run(s, NULL), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(ra.status, 200);
    tb_server_free(s);
}

START_TEST(run_returns_0_after_shutdown_from_another_thread)
{
    run_until_stopped(false);
}
END_TEST

START_TEST(run_returns_0_after_sigterm_to_the_running_thread)
{
    run_until_stopped(true);
}
END_TEST

static void one_logged_request(void *arg)
{
    reply *r = arg;
    tb_log_set_level(TB_LOG_INFO);
    tb_server *s = start_private(true);
    send_req(NULL, "/items/5?x=1", NULL, NULL, r);
    tb_server_free(s);
    tb_log_set_level(suite_level);
}

START_TEST(access_log_has_method_path_status_and_ms)
{
    char shared_url[64];
    memcpy(shared_url, base_url, sizeof shared_url);
    char out[4096];
    reply r = {0};
    capture_stderr(one_logged_request, &r, out, sizeof out);
    ck_assert_int_eq(r.status, 200);
    char *line = strstr(out, "{\"ts\"");
    ck_assert_ptr_nonnull(line);
    json_t *j = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_msg(j != NULL, "%s", out);
    ck_assert_str_eq(jstr(j, "level"), "info");
    ck_assert_str_eq(jstr(j, "method"), "GET");
    ck_assert_str_eq(jstr(j, "path"), "/items/5");
    ck_assert_str_eq(jstr(j, "service"), "items");
    ck_assert(is_hex32(jstr(j, "requestId")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 200);
    ck_assert(json_is_number(json_object_get(j, "ms")));
    json_decref(j);
    reply_clear(&r);
    memcpy(base_url, shared_url, sizeof shared_url);
}
END_TEST

START_TEST(new_rejects_incomplete_api_and_start_reports_bind_failure)
{
    tb_error err = TB_ERROR_INIT;
    tb_http_api empty = {0};
    ck_assert_ptr_null(tb_server_new(&empty, NULL, &err));
    ck_assert_int_eq(err.code, TB_EINVAL);
    /* a query route to an operation or route the service does not have */
    static const char *const qn[] = {"method"}, *const qv[] = {"x"};
    const tb_http_qop bad_op[] = {{0, TB_HTTP_GET, 99, 1, qn, qv, 0, NULL, NULL, 0, NULL}};
    const tb_http_qop bad_route[] = {{99, TB_HTTP_GET, 0, 1, qn, qv, 0, NULL, NULL, 0, NULL}};
    const tb_http_qop no_names[] = {{0, TB_HTTP_GET, 0, 1, NULL, qv, 0, NULL, NULL, 0, NULL}};
    const tb_http_qop no_headers[] = {{0, TB_HTTP_GET, 0, 1, qn, qv, 1, NULL, NULL, 0, NULL}};
    const tb_http_qop no_media[] = {{0, TB_HTTP_GET, 0, 1, qn, qv, 0, NULL, NULL, 2, NULL}};
    const tb_http_qop *bad[] = {bad_op, bad_route, no_names, no_headers, no_media};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tb_http_api a = test_api;
        a.qops = bad[i];
        a.n_qops = 1;
        tb_error_deinit(&err);
        ck_assert_ptr_null(tb_server_new(&a, NULL, &err));
        ck_assert_int_eq(err.code, TB_EINVAL);
        ck_assert_str_eq(err.message, "the service description's query routes are invalid");
    }
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.port = tb_server_port(srv); /* already taken by the shared server */
    tb_server *s = tb_server_new(&test_api, &o, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tb_server_start(s, &err), TB_EIO);
    ck_assert_int_eq(err.code, TB_EIO);
    tb_server_free(s);
    tb_server_free(NULL);
    tb_error_deinit(&err);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TB_LOG_LEVEL"))
        suite_level = tb_log_enabled(TB_LOG_DEBUG)   ? TB_LOG_DEBUG
                      : tb_log_enabled(TB_LOG_INFO)  ? TB_LOG_INFO
                      : tb_log_enabled(TB_LOG_WARN)  ? TB_LOG_WARN
                      : tb_log_enabled(TB_LOG_ERROR) ? TB_LOG_ERROR
                                                     : TB_LOG_OFF;
    tb_log_set_level(suite_level);

    Suite *suite = suite_create("http_server");
    TCase *pure = tcase_create("http");
    tcase_add_test(pure, methods_and_reasons_round_trip);
    tcase_add_test(pure, pct_decode_rejects_bad_escapes_and_nul_keeps_plus);
    tcase_add_test(pure, segment_match_splits_mixed_segments_lazily_and_anchors_a_trailing_literal);
    tcase_add_test(pure, res_error_writes_envelope_without_details_when_none);
    tcase_add_test(pure, res_error_from_maps_validation_parse_and_other_errors);
    tcase_add_test(pure, log_writes_one_json_object_per_line_filtered_by_level);
    tcase_add_test(pure, opts_from_env_reads_service_prefixed_then_generic_names);
    suite_add_tcase(suite, pure);

    TCase *server = tcase_create("server");
    tcase_add_unchecked_fixture(server, start_shared, stop_shared);
    tcase_add_test(server, get_returns_data_envelope_with_json_type_and_request_id);
    tcase_add_test(server, raw_path_param_reaches_op_encoded_and_decodes_there);
    tcase_add_test(server, unknown_path_is_404_not_found);
    tcase_add_test(server, routes_are_mounted_under_the_base_path_of_servers_0);
    tcase_add_test(server, operations_of_one_route_are_told_apart_by_headers_and_media_types);
    tcase_add_test(server, wrong_method_is_405_with_allow_listing_route_methods_unknown_501);
    tcase_add_test(server, post_json_body_is_created_with_json_media_types);
    tcase_add_test(server, body_over_limit_by_content_length_is_413_at_once);
    tcase_add_test(server, chunked_body_growing_over_limit_is_413);
    tcase_add_test(server, chunked_body_under_limit_reaches_the_op);
    tcase_add_test(server, non_json_content_type_is_415);
    tcase_add_test(server, malformed_json_is_400_with_line_and_column);
    tcase_add_test(server, missing_required_body_is_400_with_body_required_detail);
    tcase_add_test(server, schema_violation_is_400_validation_failed_with_details);
    tcase_add_test(server, op_failure_is_500_internal_without_internals);
    tcase_add_test(server, request_id_is_echoed_generated_or_replaced_when_invalid);
    tcase_add_test(server, keep_alive_survives_consecutive_requests);
    tcase_add_test(server, middleware_can_answer_401_and_add_response_headers);
    tcase_add_test(server, query_header_cookie_and_ctx_values_reach_the_op);
    tcase_add_test(server, head_is_served_by_get_without_body);
    tcase_add_test(server, stop_lets_in_flight_request_finish_then_refuses_connections);
    tcase_add_test(server, stop_cuts_what_the_grace_period_leaves_and_returns_0);
    tcase_add_test(server, run_returns_0_after_shutdown_from_another_thread);
    tcase_add_test(server, run_returns_0_after_sigterm_to_the_running_thread);
    tcase_add_test(server, access_log_has_method_path_status_and_ms);
    tcase_add_test(server, new_rejects_incomplete_api_and_start_reports_bind_failure);
    suite_add_tcase(suite, server);

    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
