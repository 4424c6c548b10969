/* tb_regex_search, the engine behind every generated `pattern` check: ECMA patterns translated
 * to PCRE2 by the generator, compiled on first use, matched with the JIT.
 *   A pattern that backtracks without end on a hostile subject (beezup's URL pattern, whose
 *   `([\/\w \.-]*)*` nests two stars) stops at TB_REGEX_MATCH_LIMIT steps and counts as no
 *   match (TB_ETOOBIG), where PCRE2's default limit, ten times higher, would still answer;
 *   one validation spends at most TB_REGEX_EXHAUSTED_MAX such matches, then every pattern of
 *   it fails at once, until the next validation starts;
 *   a long ordinary subject that outgrows the JIT's stack is matched by the interpreter rather
 *   than refused;
 *   a validation in which a pattern went undecided fails even where the forced "no match" would
 *   have let the value pass (not, a oneOf branch, a patternProperties key: tests/specs/
 *   patterns.yaml, generated at build time), naming the value's path and the rule. */
#include "patterns/patterns.h"

#include "tablium/error.h"
#include "tablium/validate.h"
#include "tb_vctx.h" /* runtime/json: tb__vctx_init_nested */

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

/* the hostile subject of the tests above, as a JSON string */
#define HOSTILE "http://example.com/a a a a a a a a a !"

/* text validated by fn: 0, or TB_EVALIDATION with its first detail at path by rule */
static void judged(int (*fn)(const json_t *, unsigned, tb_error *), const char *text, int want,
                   const char *path, const char *rule)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(j);
    tb_error err = TB_ERROR_INIT;
    int rc = fn(j, TB_VALIDATE_ALL_ERRORS, &err);
    ck_assert_msg(rc == want, "%s: rc %d, want %d (%s)", text, rc, want, err.message);
    if (want) {
        ck_assert_uint_ge(err.n_details, 1);
        ck_assert_str_eq(err.details[0].path, path);
        ck_assert_str_eq(err.details[0].rule, rule);
    }
    tb_error_deinit(&err);
    json_decref(j);
}

START_TEST(an_undecided_pattern_never_lets_a_value_pass)
{
    /* not: {pattern}: text passes, a URL is refused by `not`, the hostile subject (which the
       pattern cannot refuse in time) is refused too */
    judged(patterns_not_url_validate, "\"hello\"", 0, NULL, NULL);
    judged(patterns_not_url_validate, "\"http://example.com/a\"", TB_EVALIDATION, "", "not");
    judged(patterns_not_url_validate, "\"" HOSTILE "\"", TB_EVALIDATION, "", "pattern");
    /* oneOf [URL, short text]: the hostile subject would count as text only */
    judged(patterns_url_or_text_validate, "\"hello\"", 0, NULL, NULL);
    judged(patterns_url_or_text_validate, "\"" HOSTILE "\"", TB_EVALIDATION, "", "pattern");
    /* a key the pattern cannot decide is not left to additionalProperties */
    judged(patterns_labels_validate, "{\"http://example.com/a\": 3, \"note\": \"x\"}", 0, NULL,
           NULL);
    judged(patterns_labels_validate, "{\"http://example.com/a\": \"x\"}", TB_EVALIDATION,
           "/http:~1~1example.com~1a", "type");
    judged(patterns_labels_validate, "{\"" HOSTILE "\": \"x\"}", TB_EVALIDATION, "", "pattern");
    /* nested: the path names the member */
    judged(patterns_checked_validate, "{\"link\": \"ok\", \"text\": \"" HOSTILE "\"}",
           TB_EVALIDATION, "/text", "pattern");
    /* each validation starts decided again */
    judged(patterns_checked_validate, "{\"link\": \"ok\", \"text\": \"fine\"}", 0, NULL, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("regex");
    TCase *tc = tcase_create("limits");
    tcase_add_test(tc, backtracking_stops_at_the_match_limit);
    tcase_add_test(tc, one_validation_spends_a_bounded_budget);
    tcase_add_test(tc, a_long_subject_outgrows_the_jit_stack);
    tcase_add_test(tc, an_undecided_pattern_never_lets_a_value_pass);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tb_validate_thread_cleanup();
    return failed ? 1 : 0;
}
