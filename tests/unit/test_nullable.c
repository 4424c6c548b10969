/* OpenAPI 3.0's `nullable: true` beside $ref, allOf or oneOf without a type
 * (tests/specs/nullable.yaml, generated at build time): the validators allow null where the C
 * types carry <name>_is_null, so a null that a spec's author meant is read and written back,
 * not refused with 400 (or, in an answer, TB_EUPSTREAM); a value that is neither null nor the
 * reference's type is still refused at its path; a member without nullable refuses null; and
 * a keyword beside the $ref (shape's `type: string`) is ignored, as OpenAPI 3.0 says. */
#include "nullable/nullable.h"

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/error.h"

#include <check.h>
#include <jansson.h>
#include <string.h>

/* text parsed as a Thing: rc want; on success written back as the same JSON value; on failure
   its first detail at path by rule */
static void thing(const char *text, int want, const char *path, const char *rule)
{
    tb_arena *a = tb_arena_new(0);
    nullable_thing t;
    tb_error err = TB_ERROR_INIT;
    int rc = nullable_thing_parse(text, strlen(text), a, &t, &err);
    ck_assert_msg(rc == want, "%s: rc %d, want %d (%s)", text, rc, want, err.message);
    if (rc == 0) {
        tb_buf b = TB_BUF_INIT;
        ck_assert_int_eq(nullable_thing_serialize(&t, &b), 0);
        json_t *w = json_loads(text, 0, NULL), *g = json_loadb(b.data, b.len, 0, NULL);
        ck_assert_msg(w && g && json_equal(w, g), "want %s, wrote %.*s", text, (int)b.len,
                      b.data);
        json_decref(w);
        json_decref(g);
        tb_buf_deinit(&b);
    } else {
        ck_assert_uint_ge(err.n_details, 1);
        ck_assert_str_eq(err.details[0].path, path);
        ck_assert_str_eq(err.details[0].rule, rule);
    }
    tb_error_deinit(&err);
    tb_arena_free(a);
}

START_TEST(null_is_allowed_beside_a_reference)
{
    thing("{\"name\": null, \"owner\": null, \"either\": null, \"shape\": null}", 0, NULL, NULL);
    tb_arena *a = tb_arena_new(0);
    nullable_thing t;
    const char *text = "{\"name\": null, \"owner\": null, \"either\": null}";
    ck_assert_int_eq(nullable_thing_parse(text, strlen(text), a, &t, NULL), 0);
    ck_assert(t.has_name && t.name_is_null && t.has_owner && t.owner_is_null && t.has_either &&
              t.either_is_null && !t.has_shape);
    tb_arena_free(a);
}
END_TEST

START_TEST(the_references_still_judge_other_values)
{
    thing("{\"name\": \"tom\", \"owner\": {\"z\": 2}, \"either\": \"cat\", \"shape\": {\"z\": 3}}",
          0, NULL, NULL);
    thing("{\"either\": {\"z\": 4}}", 0, NULL, NULL);
    thing("{\"name\": \"\"}", TB_EVALIDATION, "/name", "minLength");
    thing("{\"owner\": 5}", TB_EVALIDATION, "/owner", "type");
    thing("{\"owner\": {\"z\": \"x\"}}", TB_EVALIDATION, "/owner/z", "type");
    thing("{\"either\": 5}", TB_EVALIDATION, "/either", "oneOf");
    /* no nullable: null is refused */
    thing("{\"plain\": null}", TB_EVALIDATION, "/plain", "type");
    /* `type: string` beside the $ref is ignored: an object is the reference's type */
    thing("{\"shape\": \"text\"}", TB_EVALIDATION, "/shape", "type");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nullable");
    TCase *tc = tcase_create("oas30");
    tcase_add_test(tc, null_is_allowed_beside_a_reference);
    tcase_add_test(tc, the_references_still_judge_other_values);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
