/* The runtime's own errors in the shapes a spec declares (tests/specs/problems.yaml, generated at
 * build time by tablium_add_service), over real HTTP, read back by the generated client:
 *   RFC 9457 problem details (application/problem+json) for createOrder/getOrder/createPet:
 *     400 validation (errors[] with "#/body/..." pointers and rules), malformed JSON, 415, a
 *     handler failure (500, the default response), an unknown discriminator value;
 *   a flat {code, message} object (additionalProperties: false) for createItem's 4XX;
 *   404 and 405 outside any operation in the spec's usual shape (problem details).
 * Built as a debug build of a service is, whatever the build type of libtablium: NDEBUG unset
 * where TB_SERVER_OPTS_INIT is expanded, so responses are validated by default. */
#undef NDEBUG
#include "problems/problems.h"

#include "tablium/ctx.h"
#include "tablium/http.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the handlers ---- */

int problems_service_init(void **state, tb_error *err)
{
    (void)err;
    *state = NULL;
    return 0;
}

void problems_service_fini(void *state)
{
    (void)state;
}

int problems_create_order(tb_ctx *ctx, const problems_create_order_req *req,
                          problems_create_order_resp *resp)
{
    (void)ctx;
    if (strcmp(req->body.item, "boom") == 0)
        return TB_EINVAL; /* a handler failure: the runtime answers 500 */
    resp->status = 201;
    resp->s201 = req->body;
    resp->s201.has_id = true;
    resp->s201.id = 7;
    if (strcmp(req->body.item, "slip") == 0)
        resp->status = 200; /* a handler's slip: 200 is the default response, s201 is filled */
    return 0;
}

int problems_get_order(tb_ctx *ctx, const problems_get_order_req *req,
                       problems_get_order_resp *resp)
{
    (void)ctx;
    if (req->id != 7 && req->id != 8) { /* the handler's own problem, through the default response */
        resp->status = 404;
        resp->sdefault.title = "Not Found";
        resp->sdefault.status = 404;
        resp->sdefault.has_detail = true;
        resp->sdefault.detail = "no such order";
        return 0;
    }
    resp->status = 200;
    resp->s200.item = req->id == 8 ? NULL : "tea"; /* 8: the answer misses its required item */
    resp->s200.quantity = 2;
    return 0;
}

int problems_note_order(tb_ctx *ctx, const problems_note_order_req *req,
                        problems_note_order_resp *resp)
{
    (void)ctx;
    if (req->id != 7) {
        resp->status = 404;
        resp->s404.title = "Not Found";
        resp->s404.status = 404;
        return 0;
    }
    resp->status = 200;
    resp->s200.item = (char *)req->body.note;
    resp->s200.quantity = 1;
    return 0;
}

int problems_cancel_order(tb_ctx *ctx, const problems_cancel_order_req *req,
                          problems_cancel_order_resp *resp)
{
    (void)ctx;
    if (strcmp(req->body.reason, "boom") == 0)
        return TB_EIO; /* a handler failure: 500 */
    resp->status = 204;
    return 0;
}

int problems_issue_token(tb_ctx *ctx, const problems_issue_token_req *req,
                         problems_issue_token_resp *resp)
{
    (void)ctx;
    if (req->body.has_scope && strcmp(req->body.scope, "nope") == 0) {
        resp->status = 401;
        resp->s401.error = "invalid_client";
        return 0;
    }
    resp->status = 200;
    resp->s200.access_token = "t0k";
    return 0;
}

int problems_create_item(tb_ctx *ctx, const problems_create_item_req *req,
                         problems_create_item_resp *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 201;
    return 0;
}

int problems_create_pet(tb_ctx *ctx, const problems_create_pet_req *req,
                        problems_create_pet_resp *resp)
{
    (void)ctx;
    resp->status = 201;
    resp->s201 = req->body;
    return 0;
}

int problems_create_charge(tb_ctx *ctx, const problems_create_charge_req *req,
                           problems_create_charge_resp *resp)
{
    (void)ctx;
    if (req->body.amount > 1000) { /* the handler's own error, every member of Stripe's */
        resp->status = 402;
        resp->s402.error.type = PROBLEMS_STRIPE_ERROR_ERROR_TYPE_CARD_ERROR;
        resp->s402.error.has_code = true;
        resp->s402.error.code = "card_declined";
        resp->s402.error.has_decline_code = true;
        resp->s402.error.decline_code = "insufficient_funds";
        resp->s402.error.has_param = true;
        resp->s402.error.param = "amount";
        return 0;
    }
    resp->status = 200;
    return 0;
}

int problems_get_thing(tb_ctx *ctx, const problems_get_thing_req *req,
                       problems_get_thing_resp *resp)
{
    (void)ctx;
    resp->status = 404; /* Google's error: an integer code, a status string */
    resp->sdefault.has_error = true;
    resp->sdefault.error.has_code = true;
    resp->sdefault.error.code = 404;
    resp->sdefault.error.has_status = true;
    resp->sdefault.error.status = "NOT_FOUND";
    resp->sdefault.error.has_message = true;
    resp->sdefault.error.message = req->id == 7 ? "thing 7 is gone" : "no such thing";
    return 0;
}

int problems_touch_latest(tb_ctx *ctx, const problems_touch_latest_req *req,
                          problems_touch_latest_resp *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 204;
    return 0;
}

/* ---- fixture ---- */

static tb_server *srv;
static problems_client *cl;
static char base[128];
static tb_arena *A;
static tb_ctx ctx;

static void setup(void)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.host = "127.0.0.1";
    srv = tb_server_new(&problems_api, &o, NULL);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_eq(tb_server_start(srv, NULL), 0);
    snprintf(base, sizeof base, "http://127.0.0.1:%u/api", (unsigned)tb_server_port(srv));
    tb_error err = TB_ERROR_INIT;
    cl = problems_client_new(base, NULL, &err);
    ck_assert_msg(cl != NULL, "%s", err.message);
    A = tb_arena_new(0);
    tb_ctx_init(&ctx, A, "rid-problems");
}

static void teardown(void)
{
    tb_arena_free(A);
    problems_client_free(cl);
    tb_server_stop(srv);
    tb_server_free(srv);
}

/* One request as another client writes it; the answer's body and Content-Type. */
static long raw(const char *method, const char *path, const char *ct, const char *body, char *out,
                size_t cap, char *ctype, size_t ctcap)
{
    CURL *c = curl_easy_init();
    char url[256], line[128];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(line, sizeof line, "Content-Type: %s", ct ? ct : "application/json");
    struct curl_slist *h = curl_slist_append(NULL, line);
    memset(out, 0, cap);
    FILE *f = fmemopen(out, cap - 1, "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    char *t = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &t);
    snprintf(ctype, ctcap, "%s", t ? t : "");
    fclose(f);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* ---- tests ---- */

START_TEST(validation_errors_are_problem_details_the_client_reads)
{
    problems_create_order_req req = {{false, 0, "tea", 0}};
    problems_create_order_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(problems_create_order_call(cl, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 400);
    ck_assert_str_eq(out.s400.title, "Bad Request");
    ck_assert_int_eq(out.s400.status, 400);
    ck_assert(out.s400.has_code);
    ck_assert_str_eq(out.s400.code, "validation_failed");
    ck_assert(out.s400.has_errors);
    ck_assert_uint_eq(out.s400.n_errors, 1);
    ck_assert_str_eq(out.s400.errors[0].pointer, "#/body/quantity");
    ck_assert(out.s400.errors[0].has_rule);
    ck_assert_str_eq(out.s400.errors[0].rule, "minimum");
    ck_assert(out.s400.has_type);
    ck_assert_str_eq(out.s400.type, "about:blank");

    /* the valid call still works */
    req.body.quantity = 3;
    ck_assert_msg(problems_create_order_call(cl, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 201);
    ck_assert_int_eq(out.s201.id, 7);

    /* a handler failure: 500 in the default response's shape */
    req.body.item = "boom";
    ck_assert_msg(problems_create_order_call(cl, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 500);
    ck_assert_int_eq(out.sdefault.status, 500);
    ck_assert_str_eq(out.sdefault.title, "Internal Server Error");
    tb_error_deinit(&err);
}
END_TEST

/* A status whose member the handler did not fill: each status has its own member, so the
 * default's is read as the empty value it is (never s201's bytes taken for a Problem: with the
 * members overlapping, has_id and id read as has_type and a type pointer, 7, and the server
 * crashed), and the server goes on. */
START_TEST(a_status_without_its_member_is_not_read_from_another)
{
    char out[4096], ct[128];
    long st = raw("POST", "/orders", NULL, "{\"item\":\"slip\",\"quantity\":2}", out, sizeof out,
                  ct, sizeof ct);
    ck_assert_msg(st == 200 || st == 500, "%ld %s", st, out);
    ck_assert_msg(!strstr(out, "slip"), "%s", out);
    st = raw("POST", "/orders", NULL, "{\"item\":\"tea\",\"quantity\":2}", out, sizeof out, ct,
             sizeof ct);
    ck_assert_int_eq(st, 201);
    ck_assert_msg(strstr(out, "\"id\":7"), "%s", out);
}
END_TEST

/* The service's own build decides whether responses are validated by default (NDEBUG unset
 * here, set in libtablium's RelWithDebInfo build): an answer outside the spec is a 500. */
START_TEST(a_debug_build_validates_its_responses)
{
    char out[4096], ct[128];
    ck_assert_int_eq(raw("GET", "/orders/7", NULL, NULL, out, sizeof out, ct, sizeof ct), 200);
    long st = raw("GET", "/orders/8", NULL, NULL, out, sizeof out, ct, sizeof ct);
    ck_assert_msg(st == 500, "%ld %s", st, out);
    ck_assert_str_eq(ct, "application/problem+json");
}
END_TEST

/* noteOrder declares a 404 alone: its 400 (validation) takes the API's usual shape, problem
 * details, as the 404 it declares does; not tablium's envelope. */
START_TEST(an_operation_without_a_400_of_its_own_answers_it_in_the_apis_shape)
{
    char out[4096], ct[128];
    long st = raw("PATCH", "/orders/7/note", NULL, "{\"note\":\"far too long\"}", out, sizeof out,
                  ct, sizeof ct);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(ct, "application/problem+json");
    ck_assert_msg(strstr(out, "\"pointer\":\"#/body/note\"") && strstr(out, "\"status\":400") &&
                      !strstr(out, "\"error\":"),
                  "%s", out);
    st = raw("PATCH", "/orders/8/note", NULL, "{\"note\":\"hi\"}", out, sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 404);
    ck_assert_str_eq(ct, "application/problem+json");
    st = raw("PATCH", "/orders/7/note", NULL, "{\"note\":\"hi\"}", out, sizeof out, ct, sizeof ct);
    ck_assert_msg(st == 200 && strstr(out, "\"item\":\"hi\""), "%ld %s", st, out);
}
END_TEST

START_TEST(malformed_json_and_media_type_as_problems)
{
    char out[4096], ct[128];
    long st = raw("POST", "/orders", NULL, "{\"item\":", out, sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(ct, "application/problem+json");
    ck_assert_msg(strstr(out, "\"status\":400") && strstr(out, "\"code\":\"malformed_json\"") &&
                      strstr(out, "\"detail\":\"malformed JSON at line 1"),
                  "%s", out);
    /* format: int32 is a range (the OpenAPI Format Registry's), refused at its path */
    st = raw("POST", "/orders", NULL, "{\"item\":\"tea\",\"quantity\":2147483648}", out,
             sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 400);
    ck_assert_msg(strstr(out, "\"pointer\":\"#/body/quantity\"") && strstr(out, "\"rule\":\"format\"") &&
                      strstr(out, "must be a valid int32 (-2147483648 to 2147483647)"),
                  "%s", out);
    st = raw("POST", "/orders", NULL, "{\"item\":\"tea\",\"quantity\":2147483647}", out,
             sizeof out, ct, sizeof ct);
    ck_assert_msg(st == 201 && strstr(out, "\"quantity\":2147483647"), "%ld %s", st, out);
    st = raw("POST", "/orders", "text/plain", "tea", out, sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 415);
    ck_assert_str_eq(ct, "application/problem+json");
    ck_assert_msg(strstr(out, "\"status\":415") && strstr(out, "\"title\":\"Unsupported Media Type\""),
                  "%s", out);
    ck_assert_ptr_null(strstr(out, "\"error\":")); /* not tablium's envelope */
}
END_TEST

/* cancelOrder declares a 400 alone: a 415 and a 500 take that shape, not the envelope. */
START_TEST(statuses_an_operation_does_not_declare_take_its_400_shape)
{
    char out[4096], ct[128];
    long st = raw("POST", "/orders/7/cancel", "text/plain", "reason=x", out, sizeof out, ct,
                  sizeof ct);
    ck_assert_msg(st == 415, "%ld %s", st, out);
    ck_assert_str_eq(ct, "application/problem+json");
    ck_assert_msg(strstr(out, "\"status\":415") && !strstr(out, "\"error\":"), "%s", out);
    st = raw("POST", "/orders/7/cancel", "application/x-www-form-urlencoded", "reason=boom", out,
             sizeof out, ct, sizeof ct);
    ck_assert_msg(st == 500, "%ld %s", st, out);
    ck_assert_str_eq(ct, "application/problem+json");
    st = raw("POST", "/orders/7/cancel", "application/x-www-form-urlencoded", "reason=late", out,
             sizeof out, ct, sizeof ct);
    ck_assert_msg(st == 204, "%ld %s", st, out);
}
END_TEST

START_TEST(outside_any_operation_the_usual_shape)
{
    char out[4096], ct[128];
    long st = raw("GET", "/nowhere", NULL, NULL, out, sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 404);
    ck_assert_str_eq(ct, "application/problem+json");
    ck_assert_msg(strstr(out, "\"status\":404") && strstr(out, "\"title\":\"Not Found\""), "%s", out);
    st = raw("DELETE", "/orders", NULL, NULL, out, sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 405);
    ck_assert_msg(strstr(out, "\"status\":405"), "%s", out);
    /* a handler's own problem is its own */
    problems_get_order_req g = {9};
    problems_get_order_resp gr;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(problems_get_order_call(cl, &ctx, &g, &gr, &err), 0);
    ck_assert_int_eq(gr.status, 404);
    ck_assert_str_eq(gr.sdefault.detail, "no such order");
    /* a path parameter out of its range: the runtime's 400, in the default's shape */
    g.id = 0;
    ck_assert_int_eq(problems_get_order_call(cl, &ctx, &g, &gr, &err), 0);
    ck_assert_int_eq(gr.status, 400);
    ck_assert_int_eq(gr.sdefault.status, 400);
    ck_assert_str_eq(gr.sdefault.errors[0].pointer, "#/path/id");
    tb_error_deinit(&err);
}
END_TEST

/* RFC 6749 5.2: the runtime's refusals put OAuth's code in `error` and its own code, message
 * and violations in `error_description`; an OAuth client library reads them as it reads the
 * handler's. */
START_TEST(an_oauth_error_object)
{
    char out[4096], ct[128];
    const char *form = "application/x-www-form-urlencoded";
    long st = raw("POST", "/oauth/token", form, "scope=x", out, sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(out, "{\"error\":\"invalid_request\",\"error_description\":"
                          "\"validation_failed: the request does not match its schema: "
                          "/body/grant_type: is required (required)\"}");
    st = raw("POST", "/oauth/token", form, "grant_type=password&scope=0123456789abcdefg", out,
             sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 400);
    ck_assert_msg(strstr(out, "/body/grant_type: ") && strstr(out, "(enum); /body/scope: ") &&
                      strstr(out, "(maxLength)"),
                  "%s", out);
    st = raw("POST", "/oauth/token", "text/plain", "grant_type=client_credentials", out,
             sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 415);
    ck_assert_msg(strncmp(out, "{\"error\":\"invalid_request\",\"error_description\":"
                               "\"unsupported_media_type: ", 72) == 0, "%s", out);
    st = raw("POST", "/oauth/token", form, "grant_type=client_credentials&scope=nope", out,
             sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 401);
    ck_assert_str_eq(out, "{\"error\":\"invalid_client\"}");
}
END_TEST

START_TEST(a_flat_code_message_object)
{
    char out[4096], ct[128];
    long st = raw("POST", "/legacy/items", NULL, "{\"name\":\"\"}", out, sizeof out, ct, sizeof ct);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(ct, "application/json");
    /* closed (additionalProperties: false): exactly its two members */
    ck_assert_str_eq(out, "{\"code\":400,\"message\":\"the request does not match its schema: "
                          "/body/name: must have at least 1 characters (minLength)\"}");
    problems_create_item_req req = {{""}};
    problems_create_item_resp r;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(problems_create_item_call(cl, &ctx, &req, &r, &err) == 0, "%s", err.message);
    ck_assert_int_eq(r.status, 400);
    ck_assert_int_eq(r.s4xx.code, 400);
    /* no member for the violations: the message names them */
    ck_assert_str_eq(r.s4xx.message, "the request does not match its schema: /body/name: must "
                                     "have at least 1 characters (minLength)");
    tb_error_deinit(&err);
}
END_TEST

START_TEST(an_unknown_discriminator_value_as_a_problem)
{
    problems_create_pet_req req;
    memset(&req, 0, sizeof req);
    req.body.kind = PROBLEMS_PET_CAT;
    req.body.cat.kind = "bird";
    req.body.cat.lives = 3;
    problems_create_pet_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(problems_create_pet_call(cl, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 400);
    ck_assert_uint_eq(out.s400.n_errors, 1);
    ck_assert_str_eq(out.s400.errors[0].pointer, "#/body/kind");
    ck_assert_str_eq(out.s400.errors[0].rule, "discriminator");
    ck_assert_str_eq(out.s400.errors[0].detail, "must be one of \"Cat\", \"Dog\"");
    /* a known one: its branch's errors only */
    req.body.cat.kind = "Cat";
    req.body.cat.lives = 12;
    ck_assert_int_eq(problems_create_pet_call(cl, &ctx, &req, &out, &err), 0);
    ck_assert_int_eq(out.status, 400);
    ck_assert_uint_eq(out.s400.n_errors, 1);
    ck_assert_str_eq(out.s400.errors[0].pointer, "#/body/lives");
    ck_assert_str_eq(out.s400.errors[0].rule, "maximum");
    req.body.cat.lives = 9;
    ck_assert_int_eq(problems_create_pet_call(cl, &ctx, &req, &out, &err), 0);
    ck_assert_int_eq(out.status, 201);
    ck_assert_int_eq(out.s201.kind, PROBLEMS_PET_CAT);
    ck_assert_int_eq(out.s201.cat.lives, 9);
    tb_error_deinit(&err);
}
END_TEST

/* An error object under "error" that is not tablium's envelope is the answer's own type: a
 * Stripe error keeps type, param and decline_code (a tb_api_error dropped them), Google's keeps
 * its integer code and status; the runtime's own errors take Google's shape under "error". */
START_TEST(error_objects_that_are_not_the_envelope_keep_every_member)
{
    problems_create_charge_req req = {{5000}};
    problems_create_charge_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(problems_create_charge_call(cl, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 402);
    ck_assert_int_eq(out.s402.error.type, PROBLEMS_STRIPE_ERROR_ERROR_TYPE_CARD_ERROR);
    ck_assert_str_eq(out.s402.error.decline_code, "insufficient_funds");
    ck_assert_str_eq(out.s402.error.param, "amount");
    ck_assert_str_eq(out.s402.error.code, "card_declined");

    problems_get_thing_req g = {7};
    problems_get_thing_resp gr;
    ck_assert_msg(problems_get_thing_call(cl, &ctx, &g, &gr, &err) == 0, "%s", err.message);
    ck_assert_int_eq(gr.status, 404);
    ck_assert_int_eq(gr.sdefault.error.code, 404);
    ck_assert_str_eq(gr.sdefault.error.status, "NOT_FOUND");
    ck_assert_str_eq(gr.sdefault.error.message, "thing 7 is gone");
    /* the runtime's 400: Google's shape, the status as the code; the client reads it */
    char body[4096], ct[128];
    ck_assert_int_eq(raw("GET", "/things/0", NULL, NULL, body, sizeof body, ct, sizeof ct), 400);
    ck_assert_msg(strncmp(body, "{\"error\":{\"code\":400,\"message\":", 29) == 0, "%s", body);
    g.id = 0;
    ck_assert_msg(problems_get_thing_call(cl, &ctx, &g, &gr, &err) == 0, "%s", err.message);
    ck_assert_int_eq(gr.status, 400);
    ck_assert_int_eq(gr.sdefault.error.code, 400);
    ck_assert_str_eq(gr.sdefault.error.message,
                     "the request does not match its schema: /path/id: must be >= 1 (minimum)");
    tb_error_deinit(&err);
}
END_TEST

/* A concrete path without the request's method gives way to a templated one with it, as
 * Express routes: GET /things/latest is getThing's (whose id must be an integer: 400 in its
 * shape), not a 405 of POST /things/latest; a method no template has is still a 405. */
START_TEST(a_concrete_path_without_the_method_gives_way)
{
    char body[4096], ct[128];
    ck_assert_int_eq(raw("GET", "/things/latest", NULL, NULL, body, sizeof body, ct, sizeof ct),
                     400);
    ck_assert_msg(strstr(body, "{\"error\":{\"code\":400,") == body, "%s", body);
    ck_assert_int_eq(raw("POST", "/things/latest", NULL, NULL, body, sizeof body, ct, sizeof ct),
                     204);
    ck_assert_int_eq(raw("DELETE", "/things/latest", NULL, NULL, body, sizeof body, ct, sizeof ct),
                     405);
    ck_assert_int_eq(raw("GET", "/things/12", NULL, NULL, body, sizeof body, ct, sizeof ct), 404);
    ck_assert_msg(strstr(body, "no such thing"), "%s", body);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    unsetenv("TB_VALIDATE_RESPONSES"); /* the build's default is what is tested */
    Suite *s = suite_create("problems");
    TCase *tc = tcase_create("shapes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, validation_errors_are_problem_details_the_client_reads);
    tcase_add_test(tc, malformed_json_and_media_type_as_problems);
    tcase_add_test(tc, a_status_without_its_member_is_not_read_from_another);
    tcase_add_test(tc, a_debug_build_validates_its_responses);
    tcase_add_test(tc, an_operation_without_a_400_of_its_own_answers_it_in_the_apis_shape);
    tcase_add_test(tc, outside_any_operation_the_usual_shape);
    tcase_add_test(tc, statuses_an_operation_does_not_declare_take_its_400_shape);
    tcase_add_test(tc, a_flat_code_message_object);
    tcase_add_test(tc, an_unknown_discriminator_value_as_a_problem);
    tcase_add_test(tc, error_objects_that_are_not_the_envelope_keep_every_member);
    tcase_add_test(tc, a_concrete_path_without_the_method_gives_way);
    tcase_add_test(tc, an_oauth_error_object);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
