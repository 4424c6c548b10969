/* Unit tests of runtime/events/dlog.c: the dedupe log of a durable consumer without a store
 * (appends, reopening, a torn or garbled tail, compaction, refusals), on temporary files. */
#include "../../runtime/events/tb_dlog.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char DIR_[64];
static char PATH[128];

static void setup(void)
{
    snprintf(DIR_, sizeof DIR_, "/tmp/tb-dlog-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(DIR_));
    snprintf(PATH, sizeof PATH, "%s/svc-events.dedupe", DIR_);
}

static void teardown(void)
{
    char p[192];
    snprintf(p, sizeof p, "%s.tmp", PATH);
    unlink(p);
    unlink(PATH);
    rmdir(DIR_);
}

typedef struct {
    char ids[64][48];
    int n;
} loaded;

static void on_id(void *user, const char *id)
{
    loaded *l = user;
    if (l->n < 64)
        snprintf(l->ids[l->n], sizeof l->ids[0], "%s", id);
    l->n++;
}

static tb_dlog *open_log(size_t keep, loaded *l)
{
    tb_error err = TB_ERROR_INIT;
    tb_dlog *d = tb_dlog_open(PATH, keep, on_id, l, &err);
    ck_assert_msg(d != NULL, "open: %s", err.message);
    tb_error_deinit(&err);
    return d;
}

static void append(tb_dlog *d, const char *const *ids, size_t n)
{
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(tb_dlog_append(d, ids, n, &err), 0);
    tb_error_deinit(&err);
}

static off_t file_size(void)
{
    struct stat st;
    ck_assert_int_eq(stat(PATH, &st), 0);
    return st.st_size;
}

START_TEST(appended_ids_come_back_in_order_after_reopening)
{
    loaded l = {0};
    tb_dlog *d = open_log(100, &l);
    ck_assert_int_eq(l.n, 0);
    const char *a[] = {"6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34", "0b9d4c8e-1f2a-4e3b-8c7d-6a5f4e3d2c1b"};
    const char *b[] = {"3c2b1a09-8f7e-4d6c-9b5a-493827160504"};
    append(d, a, 2);
    append(d, b, 1);
    ck_assert_uint_eq(tb_dlog_records(d), 3);
    tb_dlog_close(d);
    ck_assert_int_eq((int)file_size(), 3 * 48);

    loaded again = {0};
    d = open_log(100, &again);
    ck_assert_int_eq(again.n, 3);
    ck_assert_str_eq(again.ids[0], a[0]);
    ck_assert_str_eq(again.ids[1], a[1]);
    ck_assert_str_eq(again.ids[2], b[0]);
    tb_dlog_close(d);
}
END_TEST

START_TEST(only_the_newest_keep_are_loaded)
{
    loaded l = {0};
    tb_dlog *d = open_log(3, &l);
    const char *ids[] = {"id-1", "id-2", "id-3", "id-4", "id-5"};
    append(d, ids, 5);
    tb_dlog_close(d);
    loaded again = {0};
    d = open_log(3, &again);
    ck_assert_int_eq(again.n, 3);
    ck_assert_str_eq(again.ids[0], "id-3");
    ck_assert_str_eq(again.ids[2], "id-5");
    tb_dlog_close(d);
}
END_TEST

START_TEST(a_torn_last_record_is_cut_off_and_the_rest_kept)
{
    loaded l = {0};
    tb_dlog *d = open_log(100, &l);
    const char *ids[] = {"id-a", "id-b"};
    append(d, ids, 2);
    tb_dlog_close(d);
    /* a process killed in the middle of writing the third record */
    int fd = open(PATH, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    const char part[20] = {4, 'i', 'd', '-', 'c'};
    ck_assert_int_eq((int)write(fd, part, sizeof part), (int)sizeof part);
    close(fd);

    loaded again = {0};
    d = open_log(100, &again);
    ck_assert_int_eq(again.n, 2);
    ck_assert_str_eq(again.ids[1], "id-b");
    ck_assert_int_eq((int)file_size(), 2 * 48); /* cut back to whole records */
    const char *next[] = {"id-c"};
    append(d, next, 1);
    tb_dlog_close(d);
    loaded third = {0};
    d = open_log(100, &third);
    ck_assert_int_eq(third.n, 3);
    ck_assert_str_eq(third.ids[2], "id-c");
    tb_dlog_close(d);
}
END_TEST

START_TEST(a_garbled_record_ends_the_valid_prefix)
{
    loaded l = {0};
    tb_dlog *d = open_log(100, &l);
    const char *ids[] = {"id-a", "id-b", "id-c"};
    append(d, ids, 3);
    tb_dlog_close(d);
    /* one byte of the second record's id flipped: its check byte no longer matches */
    int fd = open(PATH, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq((int)pwrite(fd, "X", 1, 48 + 2), 1);
    close(fd);
    loaded again = {0};
    d = open_log(100, &again);
    ck_assert_int_eq(again.n, 1);
    ck_assert_str_eq(again.ids[0], "id-a");
    tb_dlog_close(d);
}
END_TEST

START_TEST(the_file_stays_bounded_and_keeps_the_newest)
{
    loaded l = {0};
    tb_dlog *d = open_log(10, &l);
    char bufs[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(bufs[i], sizeof bufs[i], "id-%03d", i);
        const char *one[] = {bufs[i]};
        append(d, one, 1);
        ck_assert_uint_le(tb_dlog_records(d), 20);
    }
    ck_assert_int_le((int)file_size(), 20 * 48);
    tb_dlog_close(d);
    loaded again = {0};
    d = open_log(10, &again);
    ck_assert_int_eq(again.n, 10);
    ck_assert_str_eq(again.ids[0], "id-090");
    ck_assert_str_eq(again.ids[9], "id-099");
    tb_dlog_close(d);
    char tmp[192];
    snprintf(tmp, sizeof tmp, "%s.tmp", PATH);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* no compaction left half done */
}
END_TEST

START_TEST(a_big_file_is_compacted_when_opened)
{
    loaded l = {0};
    tb_dlog *d = open_log(1000, &l);
    char bufs[50][16];
    const char *ids[50];
    for (int i = 0; i < 50; i++) {
        snprintf(bufs[i], sizeof bufs[i], "id-%02d", i);
        ids[i] = bufs[i];
    }
    append(d, ids, 50);
    tb_dlog_close(d);
    loaded again = {0};
    d = open_log(5, &again); /* keep shrank: 50 > 2 * 5 */
    ck_assert_int_eq(again.n, 5);
    ck_assert_uint_eq(tb_dlog_records(d), 5);
    ck_assert_int_eq((int)file_size(), 5 * 48);
    ck_assert_str_eq(again.ids[4], "id-49");
    tb_dlog_close(d);
}
END_TEST

START_TEST(ids_too_long_are_skipped_not_truncated)
{
    loaded l = {0};
    tb_dlog *d = open_log(100, &l);
    char long_id[80];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    const char *ids[] = {long_id, "", "ok-id"};
    append(d, ids, 3);
    ck_assert_uint_eq(tb_dlog_records(d), 1);
    tb_dlog_close(d);
    loaded again = {0};
    d = open_log(100, &again);
    ck_assert_int_eq(again.n, 1);
    ck_assert_str_eq(again.ids[0], "ok-id");
    tb_dlog_close(d);
}
END_TEST

START_TEST(an_unusable_path_is_a_clear_error)
{
    tb_error err = TB_ERROR_INIT;
    ck_assert_ptr_null(tb_dlog_open("/nonexistent-dir/x/svc.dedupe", 10, NULL, NULL, &err));
    ck_assert_int_eq(err.code, TB_EIO);
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent-dir/x/svc.dedupe"));
    ck_assert_ptr_nonnull(strstr(err.message, "No such file"));
    tb_error_deinit(&err);
}
END_TEST

/* A write cut short (here by RLIMIT_FSIZE, as a full disk would) is undone to whole records:
 * the batch does not count, and the log stays aligned for the next appends. */
START_TEST(a_failed_append_leaves_the_log_aligned)
{
    loaded l = {0};
    tb_dlog *d = open_log(100, &l);
    const char *ab[] = {"id-a", "id-b"};
    append(d, ab, 2);
    struct rlimit old, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 2 * 48 + 20;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    const char *cd[] = {"id-c", "id-d"};
    tb_error err = TB_ERROR_INIT;
    int rc = tb_dlog_append(d, cd, 2, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    ck_assert_int_eq(rc, TB_EIO);
    ck_assert_ptr_nonnull(strstr(err.message, "append"));
    tb_error_deinit(&err);
    ck_assert_int_eq((int)file_size(), 2 * 48);
    const char *ef[] = {"id-e", "id-f"};
    append(d, ef, 2);
    tb_dlog_close(d);
    loaded again = {0};
    d = open_log(100, &again);
    ck_assert_int_eq(again.n, 4);
    ck_assert_str_eq(again.ids[1], "id-b");
    ck_assert_str_eq(again.ids[2], "id-e");
    ck_assert_str_eq(again.ids[3], "id-f");
    tb_dlog_close(d);
}
END_TEST

START_TEST(a_log_in_use_is_refused)
{
    loaded l = {0};
    tb_dlog *d = open_log(10, &l);
    tb_error err = TB_ERROR_INIT;
    ck_assert_ptr_null(tb_dlog_open(PATH, 10, NULL, NULL, &err));
    ck_assert_int_eq(err.code, TB_ESTATE);
    ck_assert_ptr_nonnull(strstr(err.message, "in use"));
    tb_error_deinit(&err);
    tb_dlog_close(d);
    d = open_log(10, &l); /* free again once closed */
    tb_dlog_close(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dlog");
    TCase *tc = tcase_create("dlog");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, appended_ids_come_back_in_order_after_reopening);
    tcase_add_test(tc, only_the_newest_keep_are_loaded);
    tcase_add_test(tc, a_torn_last_record_is_cut_off_and_the_rest_kept);
    tcase_add_test(tc, a_garbled_record_ends_the_valid_prefix);
    tcase_add_test(tc, the_file_stays_bounded_and_keeps_the_newest);
    tcase_add_test(tc, a_big_file_is_compacted_when_opened);
    tcase_add_test(tc, ids_too_long_are_skipped_not_truncated);
    tcase_add_test(tc, an_unusable_path_is_a_clear_error);
    tcase_add_test(tc, a_failed_append_leaves_the_log_aligned);
    tcase_add_test(tc, a_log_in_use_is_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
