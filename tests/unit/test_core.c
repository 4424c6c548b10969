/* Unit tests of runtime/core: error codes and details (and their cap, through the validators
 * and the 400 envelope), arena, byte buffer. */
#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/ctx.h"
#include "tablium/error.h"
#include "tablium/http.h"
#include "tablium/ids.h"
#include "tablium/json.h"
#include "tablium/validate.h"

#include <check.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

START_TEST(strerror_names_every_code_and_unknown)
{
    ck_assert_str_eq(tb_strerror(TB_OK), "success");
    ck_assert_str_eq(tb_strerror(TB_EPARSE), "malformed JSON");
    ck_assert_str_eq(tb_err_name(TB_EVALIDATION), "TB_EVALIDATION");
    ck_assert_str_eq(tb_strerror(-9999), "unknown error");
    ck_assert_str_eq(tb_err_name(12345), "TB_UNKNOWN");
}
END_TEST

START_TEST(error_details_are_copied_and_reset)
{
    tb_error e = TB_ERROR_INIT;
    char path[] = "/a";
    ck_assert_int_eq(tb_error_add_detail(&e, path, "type", "must be string"), 0);
    path[1] = 'b'; /* the detail owns its copy */
    ck_assert_int_eq(tb_error_set(&e, TB_EVALIDATION, "x=%d", 7), TB_EVALIDATION);
    ck_assert_str_eq(e.message, "x=7");
    ck_assert_uint_eq(e.n_details, 1);
    ck_assert_str_eq(e.details[0].path, "/a");
    tb_error_reset(&e);
    ck_assert_uint_eq(e.n_details, 0);
    ck_assert_int_eq(e.code, 0);
    tb_error_deinit(&e);
    tb_error_deinit(NULL);
    ck_assert_int_eq(tb_error_set(NULL, TB_EINVAL, "ignored"), TB_EINVAL);
}
END_TEST

/* Regression (issue 12): 110,000 unknown keys gave 110,002 details, an 8.6 MB answer. */
START_TEST(error_details_stop_at_the_cap_and_count_the_rest)
{
    tb_error e = TB_ERROR_INIT, all = TB_ERROR_INIT;
    for (int i = 0; i < TB_ERROR_MAX_DETAILS + 50; i++)
        ck_assert_int_eq(tb_error_add_detail(&e, "/x", "type", "must be string"), 0);
    ck_assert_uint_eq(e.n_details, TB_ERROR_MAX_DETAILS);
    ck_assert_uint_eq(e.n_omitted, 50);
    ck_assert(tb_error_details_full(&e));
    /* merging keeps the cap and adds up what was dropped */
    ck_assert_int_eq(tb_error_add_detail(&all, "/y", "minimum", "must be >= 1"), 0);
    ck_assert_int_eq(tb_error_add_details(&all, &e), 0);
    ck_assert_uint_eq(all.n_details, TB_ERROR_MAX_DETAILS);
    ck_assert_str_eq(all.details[0].path, "/y");
    ck_assert_uint_eq(all.n_omitted, 1 + 50);
    tb_error_reset(&e);
    ck_assert_uint_eq(e.n_details, 0);
    ck_assert_uint_eq(e.n_omitted, 0);
    ck_assert(!tb_error_details_full(&e));
    tb_error_deinit(&e);
    tb_error_deinit(&all);
}
END_TEST

START_TEST(error_detail_text_is_cut_at_a_character_boundary)
{
    char path[2048];
    path[0] = '/';
    size_t n = 1;
    while (n + 2 < sizeof path) { /* "é" is 2 bytes: a cut at an odd offset would split one */
        path[n++] = '\xc3';
        path[n++] = '\xa9';
    }
    path[n] = '\0';
    tb_error e = TB_ERROR_INIT;
    ck_assert_int_eq(tb_error_add_detail(&e, path, "additionalProperties", path), 0);
    const char *p = e.details[0].path;
    size_t len = strlen(p);
    ck_assert_uint_le(len, TB_ERROR_MAX_DETAIL_TEXT);
    ck_assert_str_eq(p + len - 3, "...");
    ck_assert_uint_eq((len - 3 - 1) % 2, 0); /* whole characters after the '/' */
    ck_assert_mem_eq(p, path, len - 3);
    ck_assert_uint_le(strlen(e.details[0].message), TB_ERROR_MAX_DETAIL_TEXT);
    ck_assert_str_eq(e.details[0].rule, "additionalProperties");
    tb_error_deinit(&e);
}
END_TEST

/* The validators record the first TB_ERROR_MAX_DETAILS violations and only count the rest. */
START_TEST(validation_keeps_the_first_violations_and_counts_the_others)
{
    tb_error e = TB_ERROR_INIT;
    tb_vctx c;
    tb_vctx_init(&c, &e, TB_VALIDATE_ALL_ERRORS);
    char key[16];
    for (int i = 0; i < 110000; i++) {
        int kn = snprintf(key, sizeof key, "k%d", i);
        tb_v_push_key(&c, key, (size_t)kn);
        ck_assert(tb_v_fail(&c, "additionalProperties", "is not allowed"));
        tb_v_pop(&c);
    }
    ck_assert_int_eq(tb_vctx_finish(&c, false), TB_EVALIDATION);
    ck_assert_uint_eq(c.nerrors, 110000);
    ck_assert_uint_eq(e.n_details, TB_ERROR_MAX_DETAILS);
    ck_assert_uint_eq(e.n_omitted, 110000 - TB_ERROR_MAX_DETAILS);
    ck_assert_str_eq(e.details[99].path, "/k99");
    ck_assert_ptr_nonnull(strstr(e.message, "and more"));

    /* the 400 envelope: 100 details, then "detailsOmitted" */
    tb_http_res res = {0};
    ck_assert_int_eq(tb_http_res_error_from(&res, NULL, 400, "bad_request", &e), 0);
    ck_assert_uint_lt(res.body.len, 64 * 1024);
    json_t *j = tb_json_loadb(res.body.data, res.body.len, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *err = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "code")), "validation_failed");
    ck_assert_uint_eq(json_array_size(json_object_get(err, "details")), TB_ERROR_MAX_DETAILS);
    ck_assert_int_eq(json_integer_value(json_object_get(err, "detailsOmitted")),
                     110000 - TB_ERROR_MAX_DETAILS);
    json_decref(j);

    /* long details: the body stops listing them at TB_HTTP_ERROR_DETAILS_MAX_BYTES */
    tb_error_reset(&e);
    char big[TB_ERROR_MAX_DETAIL_TEXT + 1];
    memset(big, '\x01', sizeof big - 1); /* escaped as \u0001: 6 bytes each */
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < TB_ERROR_MAX_DETAILS; i++)
        tb_error_add_detail(&e, big, "pattern", big);
    e.code = TB_EVALIDATION;
    ck_assert_int_eq(tb_http_res_error_from(&res, NULL, 400, "bad_request", &e), 0);
    ck_assert_uint_lt(res.body.len, 64 * 1024);
    j = tb_json_loadb(res.body.data, res.body.len, NULL);
    ck_assert_ptr_nonnull(j);
    err = json_object_get(j, "error");
    size_t listed = json_array_size(json_object_get(err, "details"));
    ck_assert_uint_gt(listed, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(err, "detailsOmitted")),
                     TB_ERROR_MAX_DETAILS - (json_int_t)listed);
    json_decref(j);
    tb_buf_deinit(&res.body);
    tb_error_deinit(&e);
}
END_TEST

static int cleanup_log[8];
static int cleanup_n;
static void log_cleanup(void *p)
{
    cleanup_log[cleanup_n++] = *(int *)p;
}

START_TEST(arena_aligns_grows_and_runs_cleanups_newest_first)
{
    tb_arena *a = tb_arena_new(64);
    ck_assert_ptr_nonnull(a);
    for (int i = 0; i < 1000; i++) {
        void *p = tb_arena_alloc(a, (size_t)(i % 37) + 1);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, 0xAB, (size_t)(i % 37) + 1);
    }
    char *big = tb_arena_alloc(a, 1 << 20); /* larger than any block so far */
    ck_assert_ptr_nonnull(big);
    memset(big, 1, 1 << 20);
    ck_assert_ptr_null(tb_arena_calloc(a, SIZE_MAX / 2, 4)); /* overflow refused */
    ck_assert_str_eq(tb_arena_strndup(a, "hello world", 5), "hello");
    ck_assert_ptr_null(tb_arena_strdup(a, NULL));
    static int one = 1, two = 2;
    cleanup_n = 0;
    ck_assert_int_eq(tb_arena_on_free(a, log_cleanup, &one), 0);
    ck_assert_int_eq(tb_arena_on_free(a, log_cleanup, &two), 0);
    tb_arena_reset(a);
    ck_assert_int_eq(cleanup_n, 2);
    ck_assert_int_eq(cleanup_log[0], 2);
    ck_assert_int_eq(cleanup_log[1], 1);
    ck_assert_uint_eq(tb_arena_used(a), 0);
    ck_assert_ptr_nonnull(tb_arena_alloc(a, 10)); /* usable after reset */
    tb_arena_free(a);
    tb_arena_free(NULL);
}
END_TEST

START_TEST(arena_holds_json_until_freed)
{
    tb_arena *a = tb_arena_new(0);
    json_t *j = json_string("kept");
    ck_assert_int_eq(tb_arena_hold_json(a, j), 0);
    ck_assert_int_eq(j->refcount, 2);
    json_decref(j);
    ck_assert_str_eq(json_string_value(j), "kept"); /* still alive: the arena holds it */
    tb_arena_free(a);                               /* ASan reports a leak if it did not drop it */
    /* tb_arena_json takes the caller's reference (a handler's json_pack for a response) */
    a = tb_arena_new(0);
    json_t *k = tb_arena_json(a, json_pack("{s:i}", "n", 1));
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(k->refcount, 1); /* the arena's, no other */
    ck_assert_ptr_null(tb_arena_json(a, NULL));
    tb_arena_free(a); /* released here: a leak under ASan otherwise */
}
END_TEST

START_TEST(buf_escapes_json_strings)
{
    tb_buf b = TB_BUF_INIT;
    const char s[] = "a\"b\\c\n\t\x01\xc3\xa9";
    tb_buf_json_string(&b, s, sizeof s - 1);
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\"");
    tb_buf_reset(&b);
    tb_buf_json_string(&b, "nul\0x", 5);
    ck_assert_str_eq(b.data, "\"nul\\u0000x\"");
    tb_buf_deinit(&b);
}
END_TEST

/* RFC 4648 section 10's vectors, padded; base64url (section 5) without padding, and its two
 * letters where standard base64 has '+' and '/' */
START_TEST(buf_base64_and_base64url)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xfb\xff\xbf"};
    const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "+/+/"};
    const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy", "-_-_"};
    for (int i = 0; i < 8; i++) {
        tb_buf a = TB_BUF_INIT, b = TB_BUF_INIT;
        tb_buf_puts(&a, "<");
        tb_buf_base64(&a, in[i], strlen(in[i]), false);
        tb_buf_base64(&b, in[i], strlen(in[i]), true);
        ck_assert(!a.oom && !b.oom);
        ck_assert_str_eq(a.data + 1, std[i]); /* appended */
        ck_assert_uint_eq(a.len, 1 + strlen(std[i]));
        ck_assert_str_eq(b.data ? b.data : "", url[i]);
        tb_buf_deinit(&a);
        tb_buf_deinit(&b);
    }
}
END_TEST

START_TEST(buf_numbers_round_trip)
{
    tb_buf b = TB_BUF_INIT;
    double vals[] = {0.1, 1.0 / 3.0, 1e308, -2.5e-300, 12345678.0, 0.0};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        tb_buf_reset(&b);
        tb_buf_json_double(&b, vals[i]);
        json_t *j = tb_json_loadb(b.data, b.len, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_msg(json_is_real(j), "%s should read back as a real", b.data);
        ck_assert_msg(json_real_value(j) == vals[i], "%s != %.17g", b.data, vals[i]);
        json_decref(j);
    }
    tb_buf_reset(&b);
    tb_buf_json_int(&b, INT64_MIN);
    ck_assert_str_eq(b.data, "-9223372036854775808");
    tb_buf_reset(&b);
    tb_buf_printf(&b, "%s-%0200d", "long", 7); /* longer than the printf fast path */
    ck_assert_uint_eq(b.len, 205);
    size_t n;
    char *d = tb_buf_steal(&b, &n);
    ck_assert_uint_eq(n, 205);
    ck_assert_ptr_null(b.data);
    free(d);
}
END_TEST

START_TEST(json_loadb_reports_line_and_column)
{
    tb_error e = TB_ERROR_INIT;
    const char *bad = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    ck_assert_ptr_null(tb_json_loadb(bad, strlen(bad), &e));
    ck_assert_int_eq(e.code, TB_EPARSE);
    ck_assert_int_eq(e.line, 3);
    ck_assert_int_gt(e.column, 0);
    ck_assert_int_gt(e.position, 0);
    const char *dup = "{\"a\":1,\"a\":2}";
    ck_assert_ptr_null(tb_json_loadb(dup, strlen(dup), &e));
    ck_assert_int_eq(e.code, TB_EPARSE);
    const char *bad_utf8 = "\"\xff\"";
    ck_assert_ptr_null(tb_json_loadb(bad_utf8, strlen(bad_utf8), &e));
    tb_error_deinit(&e);
}
END_TEST

static void assert_uuid_v4(const char *u)
{
    ck_assert_uint_eq(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            ck_assert_int_eq(u[i], '-');
        else
            ck_assert_msg(strchr("0123456789abcdef", u[i]) != NULL, "%s", u);
    }
    ck_assert_int_eq(u[14], '4');
    ck_assert_msg(strchr("89ab", u[19]) != NULL, "%s", u);
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

START_TEST(uuids_are_v4_and_distinct)
{
    enum { N = 5000 };
    char(*ids)[37] = malloc(sizeof *ids * N);
    for (int i = 0; i < N; i++) {
        tb_uuid_new(ids[i]);
        assert_uuid_v4(ids[i]);
    }
    qsort(ids, N, sizeof *ids, cmp_str);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
    free(ids);
}
END_TEST

/* Calls gen (which writes an id of len characters) once to seed this thread's state, then
 * once in a forked child and once more in the parent: the two must differ, as a child must
 * never repeat its parent's next ids. child_next gets the child's id. */
static void child_differs_from_parent(void (*gen)(char *), size_t len, char child_next[64])
{
    char first[64], parent_next[64];
    memset(child_next, 0, 64);
    gen(first);
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char u[64];
        gen(u);
        _exit(write(fd[1], u, len + 1) == (ssize_t)(len + 1) ? 0 : 1);
    }
    close(fd[1]);
    ck_assert_int_eq((int)read(fd[0], child_next, len + 1), (int)(len + 1));
    close(fd[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    gen(parent_next);
    ck_assert_uint_eq(strlen(child_next), len);
    ck_assert_str_ne(child_next, parent_next);
    ck_assert_str_ne(child_next, first);
}

static void uuid_gen(char *out) { tb_uuid_new(out); }
static void request_id_gen(char *out) { tb_request_id_new(out); }

/* The random bytes are pooled per thread. */
START_TEST(a_forked_child_does_not_repeat_its_parents_uuids)
{
    char child[64];
    child_differs_from_parent(uuid_gen, 36, child);
    assert_uuid_v4(child);
}
END_TEST

/* The request and trace id generator is per thread too. */
START_TEST(a_forked_child_does_not_repeat_its_parents_request_ids)
{
    char child[64];
    child_differs_from_parent(request_id_gen, 32, child);
}
END_TEST

START_TEST(rfc3339_timestamps_are_utc_with_milliseconds)
{
    for (int round = 0; round < 3; round++) {
        char t[25];
        /* (not time(NULL): glibc serves it from the coarse clock, which lags CLOCK_REALTIME by
         * up to a tick, so across a second boundary "now" looked like the future) */
        struct timespec b, a;
        clock_gettime(CLOCK_REALTIME, &b);
        tb_time_rfc3339(t);
        clock_gettime(CLOCK_REALTIME, &a);
        time_t before = b.tv_sec, after = a.tv_sec;
        ck_assert_uint_eq(strlen(t), 24);
        for (int i = 0; i < 24; i++) {
            const char *want = i == 4 || i == 7 ? "-" : i == 10 ? "T" : i == 13 || i == 16 ? ":"
                             : i == 19 ? "." : i == 23 ? "Z" : "0123456789";
            ck_assert_msg(strchr(want, t[i]) != NULL, "%s at %d", t, i);
        }
        struct tm tm = {0};
        ck_assert_ptr_nonnull(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
        time_t got = timegm(&tm);
        ck_assert_msg(got >= before && got <= after, "%s is not now (%lld..%lld)", t,
                      (long long)before, (long long)after);
        usleep(400000); /* the next round crosses into another second at least once */
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, strerror_names_every_code_and_unknown);
    tcase_add_test(tc, error_details_are_copied_and_reset);
    tcase_add_test(tc, error_details_stop_at_the_cap_and_count_the_rest);
    tcase_add_test(tc, error_detail_text_is_cut_at_a_character_boundary);
    tcase_add_test(tc, validation_keeps_the_first_violations_and_counts_the_others);
    tcase_add_test(tc, arena_aligns_grows_and_runs_cleanups_newest_first);
    tcase_add_test(tc, arena_holds_json_until_freed);
    tcase_add_test(tc, buf_escapes_json_strings);
    tcase_add_test(tc, buf_numbers_round_trip);
    tcase_add_test(tc, buf_base64_and_base64url);
    tcase_add_test(tc, json_loadb_reports_line_and_column);
    tcase_add_test(tc, uuids_are_v4_and_distinct);
    tcase_add_test(tc, rfc3339_timestamps_are_utc_with_milliseconds);
    tcase_add_test(tc, a_forked_child_does_not_repeat_its_parents_request_ids);
    tcase_add_test(tc, a_forked_child_does_not_repeat_its_parents_uuids);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
