/* readOnly and writeOnly members that are required (tests/specs/access_modes.yaml, generated at
 * build time), over real HTTP and through the generated client. OpenAPI 3.0.3 (Schema Object):
 * a readOnly member's `required` takes effect in responses only, a writeOnly one's in requests
 * only. So a create request without the server's id is accepted (it was 400 /body/id
 * required), an answer without the password is read (the client got TB_EUPSTREAM), and each
 * is still required on its own side. In C both are optional members (has_id, has_password).
 * Built as a debug build of a service is: responses are validated. */
#undef NDEBUG
#include "access_modes/access_modes.h"

#include "tablium/ctx.h"
#include "tablium/http.h"
#include "tablium/validate.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the handler ---- */

int access_modes_service_init(void **state, tb_error *err)
{
    (void)err;
    *state = NULL;
    return 0;
}

void access_modes_service_fini(void *state)
{
    (void)state;
}

/* Answers the account with the server's id and time, never the password; "no-id" answers
 * without the id (a handler's bug the debug build's response check catches), "echo" with the
 * password too (allowed: writeOnly only lifts `required`). */
int access_modes_create_account(tb_ctx *ctx, const access_modes_create_account_req *req,
                                access_modes_create_account_resp *resp)
{
    (void)ctx;
    const access_modes_account *in = &req->body;
    resp->status = 201;
    resp->s201.name = in->name;
    resp->s201.has_id = strcmp(in->name, "no-id") != 0;
    resp->s201.id = 42;
    resp->s201.has_created_at = true;
    resp->s201.created_at = "2026-12-07T10:00:00Z";
    if (strcmp(in->name, "echo") == 0) {
        resp->s201.has_password = true;
        resp->s201.password = in->password;
    }
    return 0;
}

/* ---- fixture ---- */

static tb_server *srv;
static access_modes_client *cl;
static char base[128];
static tb_arena *A;
static tb_ctx ctx;

static void setup(void)
{
    tb_server_opts o = TB_SERVER_OPTS_INIT;
    o.threads = 2;
    o.host = "127.0.0.1";
    srv = tb_server_new(&access_modes_api, &o, NULL);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_eq(tb_server_start(srv, NULL), 0);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)tb_server_port(srv));
    tb_error err = TB_ERROR_INIT;
    cl = access_modes_client_new(base, NULL, &err);
    ck_assert_msg(cl != NULL, "%s", err.message);
    A = tb_arena_new(0);
    tb_ctx_init(&ctx, A, "rid-access-modes");
}

static void teardown(void)
{
    tb_arena_free(A);
    access_modes_client_free(cl);
    tb_server_stop(srv);
    tb_server_free(srv);
}

static size_t collect(char *p, size_t sz, size_t n, void *u)
{
    char *out = u;
    size_t have = strlen(out), k = sz * n, room = 4095 - have;
    memcpy(out + have, p, k < room ? k : room);
    out[have + (k < room ? k : room)] = '\0';
    return k;
}

/* POST /accounts with body as another client writes it: the status, the answer in out. */
static long post(const char *body, char out[4096])
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s/accounts", base);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    out[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* ---- tests ---- */

START_TEST(a_request_without_its_readonly_members_is_accepted)
{
    char out[4096];
    long st = post("{\"name\": \"ada\", \"password\": \"correct horse\"}", out);
    ck_assert_msg(st == 201, "%ld %s", st, out);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    const json_t *d = json_object_get(j, "data") ? json_object_get(j, "data") : j;
    ck_assert_int_eq(json_integer_value(json_object_get(d, "id")), 42);
    ck_assert_str_eq(json_string_value(json_object_get(d, "createdAt")), "2026-12-07T10:00:00Z");
    ck_assert_ptr_null(json_object_get(d, "password"));
    json_decref(j);
    /* a client that sends them anyway is not refused for it */
    st = post("{\"id\": 7, \"name\": \"ada\", \"password\": \"correct horse\"}", out);
    ck_assert_msg(st == 201, "%ld %s", st, out);
}
END_TEST

START_TEST(a_request_without_its_writeonly_member_is_refused_at_its_path)
{
    char out[4096];
    long st = post("{\"name\": \"ada\"}", out);
    ck_assert_msg(st == 400, "%ld %s", st, out);
    ck_assert_msg(strstr(out, "/body/password") && strstr(out, "\"required\"") &&
                      strstr(out, "is required (in requests: it is writeOnly)"),
                  "%s", out);
    ck_assert_msg(!strstr(out, "/body/id"), "%s", out);
}
END_TEST

START_TEST(an_answer_without_its_readonly_member_fails_the_response_check)
{
    char out[4096];
    long st = post("{\"name\": \"no-id\", \"password\": \"correct horse\"}", out);
    ck_assert_msg(st == 500, "%ld %s", st, out);
}
END_TEST

START_TEST(the_client_sends_without_the_id_and_reads_an_answer_without_the_password)
{
    access_modes_create_account_req req = {
        .body = {.name = "ada", .has_password = true, .password = "correct horse"}};
    access_modes_create_account_resp resp;
    tb_error err = TB_ERROR_INIT;
    int rc = access_modes_create_account_call(cl, &ctx, &req, &resp, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    ck_assert_int_eq(resp.status, 201);
    ck_assert(resp.s201.has_id);
    ck_assert_int_eq(resp.s201.id, 42);
    ck_assert(!resp.s201.has_password);
    ck_assert_str_eq(resp.s201.name, "ada");
    /* and an answer that carries the password is read too */
    req.body.name = "echo";
    rc = access_modes_create_account_call(cl, &ctx, &req, &resp, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    ck_assert(resp.s201.has_password);
    ck_assert_str_eq(resp.s201.password, "correct horse");
    tb_error_deinit(&err);
}
END_TEST

/* Without a direction (events, a standalone _validate), JSON Schema's rule: all are required. */
START_TEST(without_a_direction_every_required_member_applies)
{
    json_t *j = json_loads("{\"name\": \"ada\"}", 0, NULL);
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_ne(access_modes_account_validate(j, TB_VALIDATE_ALL_ERRORS, &err), 0);
    ck_assert_uint_eq(err.n_details, 3); /* id, password, createdAt */
    tb_error_reset(&err);
    ck_assert_int_ne(access_modes_account_validate(j, TB_VALIDATE_REQUEST, &err), 0);
    tb_error_reset(&err);
    json_object_set_new(j, "password", json_string("correct horse"));
    ck_assert_int_eq(access_modes_account_validate(j, TB_VALIDATE_REQUEST, &err), 0);
    ck_assert_int_ne(access_modes_account_validate(j, TB_VALIDATE_RESPONSE, &err), 0);
    tb_error_deinit(&err);
    json_decref(j);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    unsetenv("TB_VALIDATE_RESPONSES"); /* the build's default is what is tested */
    Suite *s = suite_create("access_modes");
    TCase *tc = tcase_create("access_modes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_request_without_its_readonly_members_is_accepted);
    tcase_add_test(tc, a_request_without_its_writeonly_member_is_refused_at_its_path);
    tcase_add_test(tc, an_answer_without_its_readonly_member_fails_the_response_check);
    tcase_add_test(tc, the_client_sends_without_the_id_and_reads_an_answer_without_the_password);
    tcase_add_test(tc, without_a_direction_every_required_member_applies);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
