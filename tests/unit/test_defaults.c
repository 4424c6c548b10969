/* A member's `default` is what its absence means (tests/specs/defaults.yaml, generated at build
 * time): a parse that finds the member absent fills the default in and leaves has_<name> false,
 * so a handler reads what the spec says (`capture` absent is true, it read false) and can still
 * tell it was not sent; writing the value back leaves it out again. Arrays and members without
 * a default are left empty, as before. */
#include "defaults/defaults.h"

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/error.h"

#include <check.h>
#include <string.h>

START_TEST(an_absent_member_reads_as_its_default)
{
    tb_arena *a = tb_arena_new(0);
    defaults_charge c;
    const char *text = "{\"amount\": 5}";
    ck_assert_int_eq(defaults_charge_parse(text, strlen(text), a, &c, NULL), 0);
    ck_assert_int_eq(c.amount, 5);
    ck_assert(c.capture && !c.has_capture);
    ck_assert_int_eq(c.tier, 1);
    ck_assert(!c.has_tier);
    ck_assert(c.score == 0.5);
    ck_assert_int_eq(c.currency, DEFAULTS_CHARGE_CURRENCY_USD);
    ck_assert(!c.has_currency);
    ck_assert_str_eq(c.note, "none given");
    ck_assert_str_eq(c.ref, "r-1"); /* the default of the referenced schema */
    ck_assert(!c.has_tags && c.n_tags == 0);
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(defaults_charge_serialize(&c, &b), 0);
    ck_assert_str_eq(b.data, "{\"amount\":5}"); /* not sent, not written */
    tb_buf_deinit(&b);
    tb_arena_free(a);
}
END_TEST

START_TEST(a_sent_member_keeps_its_value)
{
    tb_arena *a = tb_arena_new(0);
    defaults_charge c;
    const char *text = "{\"amount\": 5, \"capture\": false, \"tier\": 0, \"currency\": \"EUR\", "
                       "\"note\": \"\"}";
    ck_assert_int_eq(defaults_charge_parse(text, strlen(text), a, &c, NULL), 0);
    ck_assert(!c.capture && c.has_capture);
    ck_assert(c.tier == 0 && c.has_tier);
    ck_assert_int_eq(c.currency, DEFAULTS_CHARGE_CURRENCY_EUR);
    ck_assert_str_eq(c.note, "");
    tb_arena_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("defaults");
    TCase *tc = tcase_create("defaults");
    tcase_add_test(tc, an_absent_member_reads_as_its_default);
    tcase_add_test(tc, a_sent_member_keeps_its_value);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
