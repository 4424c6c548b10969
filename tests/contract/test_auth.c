/*
 * Contract tests of the Auth service (openapi/auth.yaml), and the seed's event flow: Auth
 * registers an account and publishes user.registered through its outbox over RabbitMQ; the User
 * service consumes it and creates the profile. Needs TB_TEST_AMQP_URL (scripts/with-brokers.sh).
 */
#include "harness.h"
#include "auth/auth.h"

#include "tablium/client.h"
#include "tablium/ctx.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static th_service auth_svc = {.name = "auth"};
static th_service user_svc = {.name = "user"};
static auth_client *ac;
static tb_arena *arena;
static tb_ctx ctx;
static char amqp_env[300];
static const char *env_list[] = {amqp_env, "AUTH_PBKDF2_ITERATIONS=1000", "TB_LOG_LEVEL=info",
                                 NULL};
static int serial;

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

static void names(char *uname, size_t ucap, char *email, size_t ecap, const char *base)
{
    snprintf(uname, ucap, "%s_%d_%d", base, (int)getpid() % 100000, ++serial);
    snprintf(email, ecap, "%s@example.com", uname);
}

static auth_account do_register(const char *base, const char *display)
{
    char uname[64], email[96];
    names(uname, sizeof uname, email, sizeof email, base);
    auth_register_account_req req = {.body = {.email = email, .username = uname,
                                              .password = "correct horse battery"}};
    if (display) {
        req.body.has_display_name = true;
        req.body.display_name = (char *)display;
    }
    auth_register_account_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(auth_register_account_call(ac, &ctx, &req, &out, &err) == 0, "%s",
                  err.message);
    ck_assert_int_eq(out.status, 201);
    tb_error_deinit(&err);
    return out.s201;
}

/* GET /users/{id}/profile on the User service until it is 200 (10 s at most). */
static json_t *wait_profile(const char *user_id)
{
    char u[256];
    snprintf(u, sizeof u, "%s/users/%s/profile", user_svc.direct, user_id);
    for (int t = 0; t < 200; t++) {
        th_resp r;
        th_http(&r, "GET", u, NULL, NULL, NULL);
        if (r.status == 200) {
            json_t *data = json_incref(json_object_get(r.json, "data"));
            th_resp_free(&r);
            return data;
        }
        ck_assert_msg(r.status == 404, "profile: %ld %s", r.status, r.body);
        th_resp_free(&r);
        sleep_ms(50);
    }
    return NULL;
}

/* Lines of a log file that contain `needle`. */
static int count_in_log(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

START_TEST(register_then_get_account_and_conflicts_are_409)
{
    auth_account a = do_register("ada", NULL);
    ck_assert_int_eq((int)strlen(a.user_id), 36);
    ck_assert(a.has_event_id);
    auth_get_account_req g = {.user_id = a.user_id};
    auth_get_account_resp out;
    ck_assert_int_eq(auth_get_account_call(ac, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_str_eq(out.s200.username, a.username);
    ck_assert(!out.s200.has_event_id);
    /* same email (any case), other username */
    char upper[128];
    snprintf(upper, sizeof upper, "%s", a.email);
    upper[0] = (char)(upper[0] - 32);
    auth_register_account_req again = {.body = {.email = upper, .username = "someone_else",
                                                .password = "12345678"}};
    auth_register_account_resp o2;
    ck_assert_int_eq(auth_register_account_call(ac, &ctx, &again, &o2, NULL), 0);
    ck_assert_int_eq(o2.status, 409);
    ck_assert_str_eq(o2.s409.code, "email_taken");
    again.body.email = "other@example.com";
    again.body.username = a.username;
    ck_assert_int_eq(auth_register_account_call(ac, &ctx, &again, &o2, NULL), 0);
    ck_assert_int_eq(o2.status, 409);
    ck_assert_str_eq(o2.s409.code, "username_taken");
    g.user_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    ck_assert_int_eq(auth_get_account_call(ac, &ctx, &g, &out, NULL), 0);
    ck_assert_int_eq(out.status, 404);
}
END_TEST

START_TEST(bad_registrations_are_400_naming_the_field)
{
    char u[256];
    snprintf(u, sizeof u, "%s/auth/register", auth_svc.url);
    th_resp r;
    th_http(&r, "POST", u, "{\"email\":\"nope\",\"username\":\"ada_x\",\"password\":\"12345678\"}",
            NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/email", "format");
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"email\":\"a@example.com\",\"username\":\"ada_x\",\"password\":\"1\"}",
            NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/password", "minLength");
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"email\":\"a@example.com\",\"username\":\"ada_x\"}", NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/password", "required");
    th_resp_free(&r);
    snprintf(u, sizeof u, "%s/auth/accounts/not-a-uuid", auth_svc.url);
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/path/userId", "pattern");
    th_resp_free(&r);
}
END_TEST

START_TEST(every_example_matches_its_schema)
{
    ck_assert_uint_ge(auth_n_examples, 3);
    for (size_t i = 0; i < auth_n_examples; i++) {
        const tb_api_example *ex = &auth_examples[i];
        json_t *j = json_loads(ex->json, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(j);
        tb_error err = TB_ERROR_INIT;
        ck_assert_msg(ex->validate(j, &err) == 0, "%s %s %s: %s", ex->operation_id, ex->where,
                      ex->name, err.message);
        tb_error_deinit(&err);
        json_decref(j);
    }
}
END_TEST

START_TEST(a_registration_becomes_a_profile_in_the_user_service)
{
    auth_account a = do_register("grace", "Grace H");
    json_t *p = wait_profile(a.user_id);
    ck_assert_msg(p != NULL, "no profile for %s; user log %s", a.user_id, user_svc.log);
    ck_assert_str_eq(json_string_value(json_object_get(p, "displayName")), "Grace H");
    json_decref(p);
    /* the User service logged the event id the Auth service answered with */
    ck_assert_int_eq(count_in_log(user_svc.log, a.event_id), 1);
}
END_TEST

START_TEST(killed_between_commit_and_publish_the_outbox_relays_on_restart)
{
    /* a second Auth with the fault hook: it dies (SIGKILL) right after the commit, before the
     * broker publish */
    th_service faulty = {.name = "auth", .prism_port = -1}; /* not a contract check */
    static char fault_amqp[300];
    snprintf(fault_amqp, sizeof fault_amqp, "%s", amqp_env);
    const char *fenv[] = {fault_amqp, "AUTH_PBKDF2_ITERATIONS=1000",
                          "TB_FAULT=outbox-crash-before-publish", NULL};
    th_start(&faulty, fenv);
    char uname[64], email[96], body[300], u[256];
    names(uname, sizeof uname, email, sizeof email, "crash");
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"username\":\"%s\",\"password\":\"12345678\"}",
             email, uname);
    snprintf(u, sizeof u, "%s/auth/register", faulty.direct);
    th_resp r;
    th_http(&r, "POST", u, body, NULL, NULL); /* 201, or the connection drops: both are fine */
    th_resp_free(&r);
    int st = 0;
    ck_assert_msg(th_wait_exit(&faulty, 10000, &st) && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "the fault hook did not kill auth (log %s)", faulty.log);
    ck_assert_int_eq(count_in_log(faulty.log, "outbox-crash-before-publish"), 1);
    /* nothing was published: the user does not exist yet */
    ck_assert_int_eq(count_in_log(user_svc.log, uname), 0);

    /* restarted without the fault: the outbox still holds the event and relays it */
    th_start(&faulty, env_list);
    /* the profile appears (the User service logs each one it creates, with the username) */
    for (int t = 0; t < 200 && count_in_log(user_svc.log, uname) == 0; t++)
        sleep_ms(50);
    ck_assert_msg(count_in_log(user_svc.log, uname) == 1, "profile of %s created %d times",
                  uname, count_in_log(user_svc.log, uname));
    sleep_ms(500); /* no second delivery shows up */
    ck_assert_int_eq(count_in_log(user_svc.log, uname), 1);
    ck_assert_int_eq(th_stop(&faulty), 0);
    th_cleanup(&faulty);
}
END_TEST

static void setup(void)
{
    const char *amqp = getenv("TB_TEST_AMQP_URL");
    ck_assert_msg(amqp && *amqp, "TB_TEST_AMQP_URL is not set: run under scripts/with-brokers.sh");
    snprintf(amqp_env, sizeof amqp_env, "TB_AMQP_URL=%s", amqp);
    th_start(&user_svc, env_list);
    th_start(&auth_svc, env_list);
    arena = tb_arena_new(0);
    tb_ctx_init(&ctx, arena, NULL);
    tb_client_opts copts = th_client_opts();
    ac = auth_client_new(auth_svc.url, &copts, NULL);
    ck_assert_ptr_nonnull(ac);
}

static void teardown(void)
{
    auth_client_free(ac);
    tb_arena_free(arena);
    th_stop_in_teardown(&auth_svc, "auth_service");
    th_stop_in_teardown(&user_svc, "user_service");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_global_init();
    Suite *s = suite_create("contract-auth");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 180);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, register_then_get_account_and_conflicts_are_409);
    tcase_add_test(tc, bad_registrations_are_400_naming_the_field);
    tcase_add_test(tc, every_example_matches_its_schema);
    tcase_add_test(tc, a_registration_becomes_a_profile_in_the_user_service);
    tcase_add_test(tc, killed_between_commit_and_publish_the_outbox_relays_on_restart);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed || th_teardown_failures() ? 1 : 0;
}
