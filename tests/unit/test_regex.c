/* tb_regex_search, the engine behind every generated `pattern` check: ECMA patterns translated
 * to PCRE2 by the generator, compiled on first use, matched with the JIT.
 *   A pattern that backtracks without end on a hostile subject (beezup's URL pattern, whose
 *   `([\/\w \.-]*)*` nests two stars) stops at TB_REGEX_MATCH_LIMIT steps and counts as no
 *   match (TB_ETOOBIG), where PCRE2's default limit, ten times higher, would still answer;
 *   one validation spends at most TB_REGEX_EXHAUSTED_MAX such matches, then every pattern of
 *   it fails at once, until the next validation starts;
 *   a long ordinary subject that outgrows the JIT's stack is matched by the interpreter rather
 *   than refused. */
#include "tablium/error.h"
#include "tablium/validate.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static tb_regex URL = TB_REGEX("^(https?:\\/\\/)?([\\da-z\\.-]+)\\.([a-z\\.]{2,6})([\\/\\w \\.-]*)*\\/?$");
static tb_regex WORDS = TB_REGEX("^(\\w+\\s?)*$");

START_TEST(backtracking_stops_at_the_match_limit)
{
    tb_vctx c;
    tb_vctx_init(&c, NULL, 0); /* a validation starts: its budget (below) is whole */
    const char *ok = "http://example.com/a/b c.d";
    ck_assert_int_eq(tb_regex_search(&URL, ok, strlen(ok)), 1);
    /* about 2 to 10 million steps before PCRE2 could say "no match": over our limit */
    char s[128] = "http://example.com/";
    for (int i = 0; i < 9; i++)
        strcat(s, "a ");
    strcat(s, "!");
    ck_assert_int_eq(tb_regex_search(&URL, s, strlen(s)), TB_ETOOBIG);
    /* fewer steps: an answer */
    char t[128] = "http://example.com/a a a!";
    ck_assert_int_eq(tb_regex_search(&URL, t, strlen(t)), 0);
}
END_TEST

START_TEST(one_validation_spends_a_bounded_budget)
{
    tb_vctx c;
    tb_vctx_init(&c, NULL, 0);
    char s[128] = "http://example.com/";
    for (int i = 0; i < 9; i++)
        strcat(s, "a ");
    strcat(s, "!");
    const char *ok = "http://example.com/a";
    ck_assert_int_eq(tb_regex_search(&URL, ok, strlen(ok)), 1);
    for (int i = 0; i < TB_REGEX_EXHAUSTED_MAX; i++)
        ck_assert_int_eq(tb_regex_search(&URL, s, strlen(s)), TB_ETOOBIG);
    /* spent: the rest of this validation's patterns count as no match without running (even
       a subject that matches, of any pattern), so a body of 40,000 such strings costs a few
       matches, not 40,000 */
    ck_assert_int_eq(tb_regex_search(&URL, ok, strlen(ok)), TB_ETOOBIG);
    ck_assert_int_eq(tb_regex_search(&WORDS, "abc", 3), TB_ETOOBIG);
    /* a quiet check inside that validation (a decode choosing a union's branch) shares it */
    tb_vctx q;
    tb__vctx_init_nested(&q, NULL, 0);
    ck_assert_int_eq(tb_regex_search(&URL, ok, strlen(ok)), TB_ETOOBIG);
    /* the next validation starts afresh */
    tb_vctx_init(&c, NULL, 0);
    ck_assert_int_eq(tb_regex_search(&URL, ok, strlen(ok)), 1);
}
END_TEST

START_TEST(a_long_subject_outgrows_the_jit_stack)
{
    tb_vctx c;
    tb_vctx_init(&c, NULL, 0);
    size_t n = 20000;
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        s[i] = i % 7 == 6 ? ' ' : 'a';
    s[n] = 0;
    ck_assert_int_eq(tb_regex_search(&WORDS, s, n), 1);
    /* nested stars again: a subject it refuses fails the check (the limit, or no match) */
    s[n / 2] = '!';
    ck_assert_int_ne(tb_regex_search(&WORDS, s, n), 1);
    free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("regex");
    TCase *tc = tcase_create("limits");
    tcase_add_test(tc, backtracking_stops_at_the_match_limit);
    tcase_add_test(tc, one_validation_spends_a_bounded_budget);
    tcase_add_test(tc, a_long_subject_outgrows_the_jit_stack);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tb_validate_thread_cleanup();
    return failed ? 1 : 0;
}
