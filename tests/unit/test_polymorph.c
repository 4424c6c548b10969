/* Polymorphism by allOf and a discriminator (tests/specs/polymorph.yaml, generated at build
 * time): a schema with a discriminator and no oneOf, which subtypes extend with allOf, is the
 * union of its subtypes and of itself. Checked through the generated codecs:
 *   the tag picks the subtype (implicit name, the base's mapping, Azure's
 *   x-ms-discriminator-value, a subtype of a subtype), whose own members arrive;
 *   a tag no subtype has, or none where the base does not require one, is read against the base
 *   (the base branch), and written back as it came;
 *   a subtype's errors name the member and the rule; a missing tag is one error at the property;
 *   an annotated reference ({allOf: [$ref], description}) and an array of the base are unions. */
#include "polymorph/polymorph.h"

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/error.h"

#include <check.h>
#include <jansson.h>
#include <string.h>

static tb_arena *A;

static void setup(void)
{
    A = tb_arena_new(0);
}

static void teardown(void)
{
    tb_arena_free(A);
}

/* text parsed as a Pet (must succeed), written back both ways as the same JSON value */
static polymorph_pet pet_ok(const char *text)
{
    polymorph_pet p;
    tb_error err = TB_ERROR_INIT;
    int rc = polymorph_pet_parse(text, strlen(text), A, &p, &err);
    ck_assert_msg(rc == 0, "%s: %s", text, err.message);
    tb_error_deinit(&err);
    json_t *want = json_loads(text, 0, NULL);
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(polymorph_pet_serialize(&p, &b), 0);
    json_t *got = json_loadb(b.data, b.len, 0, NULL);
    ck_assert_msg(got && json_equal(want, got), "want %s, wrote %.*s", text, (int)b.len, b.data);
    json_t *tj = polymorph_pet_to_json(&p);
    ck_assert_msg(tj && json_equal(want, tj), "to_json: want %s", text);
    json_decref(tj);
    json_decref(got);
    json_decref(want);
    tb_buf_deinit(&b);
    return p;
}

/* text parsed as a Pet must fail validation with exactly one detail at path, by rule */
static void pet_bad(const char *text, const char *path, const char *rule)
{
    polymorph_pet p;
    tb_error err = TB_ERROR_INIT;
    int rc = polymorph_pet_parse(text, strlen(text), A, &p, &err);
    ck_assert_msg(rc == TB_EVALIDATION, "%s: rc %d", text, rc);
    ck_assert_uint_eq(err.n_details, 1);
    ck_assert_str_eq(err.details[0].path, path);
    ck_assert_str_eq(err.details[0].rule, rule);
    tb_error_deinit(&err);
}

START_TEST(the_tag_picks_the_subtype)
{
    polymorph_pet p = pet_ok("{\"petType\": \"Dog\", \"name\": \"Rex\", \"packSize\": 4}");
    ck_assert_int_eq(p.kind, POLYMORPH_PET_DOG);
    ck_assert_str_eq(p.dog.name, "Rex");
    ck_assert_int_eq(p.dog.pack_size, 4);

    p = pet_ok("{\"petType\": \"Cat\", \"name\": \"Tom\", \"huntingSkill\": \"lazy\"}");
    ck_assert_int_eq(p.kind, POLYMORPH_PET_CAT);
    ck_assert_int_eq(p.cat.hunting_skill, POLYMORPH_CAT_HUNTING_SKILL_LAZY);

    /* Lion extends Cat, which extends Pet: a Pet too, with the members of both */
    p = pet_ok("{\"petType\": \"Lion\", \"name\": \"Leo\", \"huntingSkill\": \"adventurous\", "
               "\"prideSize\": 7}");
    ck_assert_int_eq(p.kind, POLYMORPH_PET_LION);
    ck_assert_int_eq(p.lion.hunting_skill, POLYMORPH_CAT_HUNTING_SKILL_ADVENTUROUS);
    ck_assert(p.lion.has_pride_size);
    ck_assert_int_eq(p.lion.pride_size, 7);

    /* the base's own name is its tag (OpenAPI's implicit mapping) */
    p = pet_ok("{\"petType\": \"Pet\", \"name\": \"Generic\"}");
    ck_assert_int_eq(p.kind, POLYMORPH_PET_PET_BASE);
}
END_TEST

START_TEST(an_unknown_tag_is_read_as_the_base)
{
    polymorph_pet p = pet_ok("{\"petType\": \"Parrot\", \"name\": \"Polly\"}");
    ck_assert_int_eq(p.kind, POLYMORPH_PET_PET_BASE);
    ck_assert_str_eq(p.pet_base.pet_type, "Parrot");
    ck_assert_str_eq(p.pet_base.name, "Polly");
    /* and checked as the base is */
    pet_bad("{\"petType\": \"Parrot\"}", "/name", "required");
}
END_TEST

START_TEST(a_subtype_reports_its_own_errors)
{
    pet_bad("{\"petType\": \"Dog\", \"name\": \"Rex\"}", "/packSize", "required");
    pet_bad("{\"petType\": \"Dog\", \"name\": \"Rex\", \"packSize\": -1}", "/packSize", "minimum");
    pet_bad("{\"petType\": \"Lion\", \"name\": \"Leo\", \"huntingSkill\": \"sleepy\"}",
            "/huntingSkill", "enum");
    pet_bad("{\"name\": \"Rex\", \"packSize\": 4}", "/petType", "required");
    pet_bad("[]", "", "discriminator");
}
END_TEST

START_TEST(mapping_and_azure_tags)
{
    const char *copy = "{\"@odata.type\": \"#Microsoft.Jobs.CopyJob\", \"id\": \"j1\", "
                       "\"source\": \"a\", \"target\": \"b\"}";
    polymorph_job j;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(polymorph_job_parse(copy, strlen(copy), A, &j, &err), 0);
    ck_assert_int_eq(j.kind, POLYMORPH_JOB_COPY_JOB);
    ck_assert_str_eq(j.copy_job.source, "a");
    ck_assert_str_eq(j.copy_job.target, "b");

    const char *del = "{\"@odata.type\": \"#Microsoft.Jobs.DeleteJob\", \"id\": \"j2\", "
                      "\"path\": \"/tmp/x\"}";
    ck_assert_int_eq(polymorph_job_parse(del, strlen(del), A, &j, &err), 0);
    ck_assert_int_eq(j.kind, POLYMORPH_JOB_DELETE_JOB);
    ck_assert_str_eq(j.delete_job.path, "/tmp/x");

    /* a mapped subtype is known by its mapping's value only, not also by its schema name */
    const char *byname = "{\"@odata.type\": \"CopyJob\", \"id\": \"j3\", \"source\": \"a\"}";
    ck_assert_int_eq(polymorph_job_parse(byname, strlen(byname), A, &j, &err), 0);
    ck_assert_int_eq(j.kind, POLYMORPH_JOB_JOB_BASE);

    /* a base that does not require its discriminator: a value without one is a base value */
    const char *untagged = "{\"id\": \"j4\"}";
    ck_assert_int_eq(polymorph_job_parse(untagged, strlen(untagged), A, &j, &err), 0);
    ck_assert_int_eq(j.kind, POLYMORPH_JOB_JOB_BASE);
    ck_assert_str_eq(j.job_base.id, "j4");
    ck_assert(!j.job_base.has_odata_type);
    const char *noid = "{\"@odata.type\": \"#Microsoft.Jobs.DeleteJob\"}";
    ck_assert_int_eq(polymorph_job_parse(noid, strlen(noid), A, &j, &err), TB_EVALIDATION);
    ck_assert_str_eq(err.details[0].path, "/id");
    tb_error_deinit(&err);
}
END_TEST

START_TEST(references_to_the_base_are_unions)
{
    const char *text = "{\"name\": \"Ada\", \"favourite\": {\"petType\": \"Lion\", \"name\": \"Leo\", "
                       "\"huntingSkill\": \"lazy\"}, \"pets\": [{\"petType\": \"Dog\", \"name\": "
                       "\"Rex\", \"packSize\": 4}, {\"petType\": \"Parrot\", \"name\": \"P\"}]}";
    polymorph_owner o;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(polymorph_owner_parse(text, strlen(text), A, &o, &err), 0);
    ck_assert(o.has_favourite);
    ck_assert_int_eq(o.favourite.kind, POLYMORPH_PET_LION);
    ck_assert_uint_eq(o.n_pets, 2);
    ck_assert_int_eq(o.pets[0].kind, POLYMORPH_PET_DOG);
    ck_assert_int_eq(o.pets[0].dog.pack_size, 4);
    ck_assert_int_eq(o.pets[1].kind, POLYMORPH_PET_PET_BASE);
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(polymorph_owner_serialize(&o, &b), 0);
    json_t *want = json_loads(text, 0, NULL), *got = json_loadb(b.data, b.len, 0, NULL);
    ck_assert_msg(got && json_equal(want, got), "wrote %.*s", (int)b.len, b.data);
    json_decref(want);
    json_decref(got);
    tb_buf_deinit(&b);

    const char *bad = "{\"name\": \"Ada\", \"pets\": [{\"petType\": \"Dog\", \"name\": \"Rex\"}]}";
    ck_assert_int_eq(polymorph_owner_parse(bad, strlen(bad), A, &o, &err), TB_EVALIDATION);
    ck_assert_uint_eq(err.n_details, 1);
    ck_assert_str_eq(err.details[0].path, "/pets/0/packSize");
    tb_error_deinit(&err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("polymorph");
    TCase *tc = tcase_create("allOf hierarchies");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_tag_picks_the_subtype);
    tcase_add_test(tc, an_unknown_tag_is_read_as_the_base);
    tcase_add_test(tc, a_subtype_reports_its_own_errors);
    tcase_add_test(tc, mapping_and_azure_tags);
    tcase_add_test(tc, references_to_the_base_are_unions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
