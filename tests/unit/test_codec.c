/* The table-driven codec (tablium/codec.h) with hand-written descriptors, the way tablium-gen
 * writes them: every kind, required / optional / nullable members, arrays of scalars and of
 * structs, nested structs; decode -> write -> decode round trips, to_json equal to the written
 * text, and the refusals of values that do not have the struct's shape. */
#include "tablium/codec.h"
#include "tablium/json.h"
#include "tablium/validate.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum color { COLOR_RED, COLOR_GREEN } color;
static const tb_codec_str color_values[] = {{"red", 3}, {"green", 5}};
static const tb_codec_enum color_enum = {"color", 2, color_values};

typedef struct point {
    int64_t x;
    bool has_y;
    double y;
} point;
static const tb_codec_field point_fields[] = {
    {"x", "\"x\":", 1, 4, TB_CK_INTEGER, TB_CF_REQUIRED, offsetof(point, x), 0, 0, 0, NULL, NULL},
    {"y", "\"y\":", 1, 4, TB_CK_NUMBER, 0, offsetof(point, y), offsetof(point, has_y), 0, 0, NULL, NULL},
};
static const tb_codec_type point_type = {"point", sizeof(point), 2, point_fields, NULL, NULL, 0};

typedef struct shape {
    char *name;
    bool has_note;
    bool note_is_null;
    char *note;
    color color;
    bool has_filled;
    bool filled;
    size_t n_points;
    point *points;
    point origin;
    bool has_tags;
    size_t n_tags;
    color *tags;
    bool has_extra;
    json_t *extra;
} shape;
static const tb_codec_field shape_fields[] = {
    {"name", "\"name\":", 4, 7, TB_CK_STRING, TB_CF_REQUIRED, offsetof(shape, name), 0, 0, 0, NULL, NULL},
    {"note", "\"note\":", 4, 7, TB_CK_STRING, TB_CF_NULLABLE, offsetof(shape, note),
     offsetof(shape, has_note), offsetof(shape, note_is_null), 0, NULL, NULL},
    {"color", "\"color\":", 5, 8, TB_CK_ENUM, TB_CF_REQUIRED, offsetof(shape, color), 0, 0, 0,
     &color_enum, NULL},
    {"filled", "\"filled\":", 6, 9, TB_CK_BOOLEAN, 0, offsetof(shape, filled),
     offsetof(shape, has_filled), 0, 0, NULL, NULL},
    {"points", "\"points\":", 6, 9, TB_CK_STRUCT, TB_CF_REQUIRED | TB_CF_ARRAY,
     offsetof(shape, points), 0, 0, offsetof(shape, n_points), &point_type, NULL},
    {"origin", "\"origin\":", 6, 9, TB_CK_STRUCT, TB_CF_REQUIRED, offsetof(shape, origin), 0, 0, 0,
     &point_type, NULL},
    {"tags", "\"tags\":", 4, 7, TB_CK_ENUM, TB_CF_ARRAY, offsetof(shape, tags),
     offsetof(shape, has_tags), 0, offsetof(shape, n_tags), &color_enum, NULL},
    {"extra", "\"extra\":", 5, 8, TB_CK_JSON, 0, offsetof(shape, extra), offsetof(shape, has_extra),
     0, 0, NULL, NULL},
};
static const tb_codec_type shape_type = {"shape", sizeof(shape), 8, shape_fields, NULL, NULL, 0};

static const char FULL[] =
    "{\"name\":\"tri\\u00e9\",\"note\":null,\"color\":\"green\",\"filled\":true,"
    "\"points\":[{\"x\":1,\"y\":0.5},{\"x\":-2}],\"origin\":{\"x\":0},\"tags\":[\"red\",\"green\"],"
    "\"extra\":{\"k\":[1,null]}}";

static json_t *load(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(decode_every_kind)
{
    tb_arena *a = tb_arena_new(0);
    json_t *j = load(FULL);
    shape s;
    ck_assert_int_eq(tb_codec_decode(&shape_type, j, a, &s), 0);
    json_decref(j); /* strings are copied, the free-form value held by the arena */
    ck_assert_str_eq(s.name, "tri\xc3\xa9");
    ck_assert(s.has_note && s.note_is_null && s.note == NULL);
    ck_assert_int_eq(s.color, COLOR_GREEN);
    ck_assert(s.has_filled && s.filled);
    ck_assert_uint_eq(s.n_points, 2);
    ck_assert_int_eq(s.points[0].x, 1);
    ck_assert(s.points[0].has_y && s.points[0].y == 0.5);
    ck_assert(s.points[1].x == -2 && !s.points[1].has_y);
    ck_assert(s.origin.x == 0 && !s.origin.has_y);
    ck_assert(s.has_tags && s.n_tags == 2 && s.tags[0] == COLOR_RED && s.tags[1] == COLOR_GREEN);
    ck_assert(s.has_extra && json_is_object(s.extra));

    /* written text == input (member order is the table's), to_json == written */
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(tb_codec_serialize(&shape_type, &s, &b), 0);
    json_t *w = load(b.data);
    json_t *in = load(FULL);
    json_t *t = tb_codec_to_json(&shape_type, &s);
    ck_assert_msg(json_equal(w, in), "written %s", b.data);
    ck_assert(json_equal(t, in));
    json_decref(w);
    json_decref(in);
    json_decref(t);
    tb_buf_deinit(&b);
    tb_arena_free(a);
}
END_TEST

START_TEST(absent_optional_members_are_not_written)
{
    tb_arena *a = tb_arena_new(0);
    json_t *j = load("{\"name\":\"n\",\"color\":\"red\",\"points\":[],\"origin\":{\"x\":9,\"y\":1e300}}");
    shape s;
    ck_assert_int_eq(tb_codec_decode(&shape_type, j, a, &s), 0);
    ck_assert(!s.has_note && !s.has_filled && !s.has_tags && !s.has_extra);
    ck_assert_uint_eq(s.n_points, 0);
    tb_buf b = TB_BUF_INIT;
    tb_codec_write(&shape_type, &s, &b);
    json_t *w = load(b.data);
    ck_assert_msg(json_equal(w, j), "written %s", b.data);
    json_decref(w);
    json_decref(j);
    tb_buf_deinit(&b);

    /* an empty struct writes {} and a NULL string writes null */
    point p = {0};
    tb_buf_reset(&b);
    tb_codec_write(&point_type, &p, &b);
    ck_assert_str_eq(b.data, "{\"x\":0}");
    shape e;
    memset(&e, 0, sizeof e);
    e.color = (color)7; /* outside the enum */
    tb_buf_reset(&b);
    tb_codec_write(&shape_type, &e, &b);
    ck_assert_str_eq(b.data, "{\"name\":null,\"color\":null,\"points\":[],\"origin\":{\"x\":0}}");
    tb_buf_deinit(&b);
    tb_arena_free(a);
}
END_TEST

START_TEST(values_of_the_wrong_shape_are_refused)
{
    static const char *bad[] = {
        "[]",                                                                      /* not an object */
        "{\"color\":\"red\",\"points\":[],\"origin\":{\"x\":1}}",                    /* name missing */
        "{\"name\":1,\"color\":\"red\",\"points\":[],\"origin\":{\"x\":1}}",          /* name not a string */
        "{\"name\":\"n\",\"color\":\"blue\",\"points\":[],\"origin\":{\"x\":1}}",     /* not in the enum */
        "{\"name\":\"n\",\"color\":\"red\",\"points\":{},\"origin\":{\"x\":1}}",      /* not an array */
        "{\"name\":\"n\",\"color\":\"red\",\"points\":[{}],\"origin\":{\"x\":1}}",    /* item: x missing */
        "{\"name\":\"n\",\"color\":\"red\",\"points\":[],\"origin\":{\"x\":\"1\"}}",  /* x not a number */
        "{\"name\":\"n\",\"color\":\"red\",\"points\":[],\"origin\":{\"x\":1},\"filled\":0}",
        "{\"name\":null,\"color\":\"red\",\"points\":[],\"origin\":{\"x\":1}}",       /* null, not nullable */
    };
    tb_arena *a = tb_arena_new(0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = load(bad[i]);
        shape s;
        ck_assert_msg(tb_codec_decode(&shape_type, j, a, &s) == TB_EVALIDATION, "accepted %s", bad[i]);
        json_decref(j);
    }
    tb_arena_free(a);
}
END_TEST

START_TEST(integers_beyond_64_bits_are_refused_not_wrapped)
{
    /* JSON Schema counts 1.0, 1e3 and 1e19 as integers; an int64_t holds the first two only.
     * (int64_t)1e19 is undefined: it gave INT64_MIN, a huge amount turned negative. */
    static const struct {
        double v;
        int rc;
        int64_t want;
    } cases[] = {
        {1.0, 0, 1},
        {1e3, 0, 1000},
        {-9223372036854775808.0, 0, INT64_MIN},
        {9.2233720368547748e18, 0, 9223372036854774784LL},
        {9223372036854775808.0, TB_EVALIDATION, 0},
        {1e19, TB_EVALIDATION, 0},
        {-1e19, TB_EVALIDATION, 0},
        {1.7976931348623157e308, TB_EVALIDATION, 0},
        {0.5, TB_EVALIDATION, 0},
    };
    tb_arena *a = tb_arena_new(0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *j = json_real(cases[i].v);
        int64_t got = 7;
        int rc = tb_codec_value_decode(TB_CK_INTEGER, NULL, j, a, &got);
        ck_assert_msg(rc == cases[i].rc, "%.17g: rc %d", cases[i].v, rc);
        if (rc == 0)
            ck_assert_msg(got == cases[i].want, "%.17g: %lld", cases[i].v, (long long)got);
        json_decref(j);
    }
    tb_arena_free(a);
}
END_TEST

static bool only_small_x(const json_t *j, tb_vctx *c, tb_eval *ev)
{
    (void)ev;
    json_t *x = json_object_get(j, "x");
    if (json_is_integer(x) && json_integer_value(x) < 10)
        return true;
    tb_v_push_key(c, "x", 1);
    tb_v_fail(c, "maximum", "must be < 10");
    tb_v_pop(c);
    return false;
}

START_TEST(parse_validates_first)
{
    static const tb_codec_type checked = {"point",      sizeof(point), 2, point_fields,
                                          only_small_x, NULL,          0};
    tb_arena *a = tb_arena_new(0);
    point p;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(tb_codec_parse(&checked, "{\"x\":3}", 7, a, &p, &err), 0);
    ck_assert_int_eq(p.x, 3);
    ck_assert_int_eq(tb_codec_parse(&checked, "{\"x\":30}", 8, a, &p, &err), TB_EVALIDATION);
    ck_assert_uint_eq(err.n_details, 1);
    ck_assert_str_eq(err.details[0].path, "/x");
    ck_assert_str_eq(err.details[0].rule, "maximum");
    tb_error_deinit(&err);
    ck_assert_int_eq(tb_codec_parse(&checked, "{\"x\":", 5, a, &p, &err), TB_EPARSE);
    tb_error_deinit(&err);
    /* the schema false refuses everything with rule "false" */
    json_t *j = load("{}");
    ck_assert_int_eq(tb_validate_with(tb_v_never, j, 0, &err), TB_EVALIDATION);
    ck_assert_str_eq(err.details[0].rule, "false");
    ck_assert_int_eq(tb_validate_with(NULL, j, 0, NULL), 0);
    json_decref(j);
    tb_error_deinit(&err);
    tb_arena_free(a);
}
END_TEST

START_TEST(enum_lookup)
{
    ck_assert_int_eq(tb_codec_enum_find(&color_enum, "green", 5), 1);
    ck_assert_int_eq(tb_codec_enum_find(&color_enum, "gree", 4), -1);
    ck_assert_int_eq(tb_codec_enum_find(&color_enum, "green\0", 6), -1);
    ck_assert_str_eq(tb_codec_enum_name(&color_enum, 0), "red");
    ck_assert_ptr_null(tb_codec_enum_name(&color_enum, 2));
    ck_assert_ptr_null(tb_codec_enum_name(&color_enum, -1));
}
END_TEST

/* An anyOf of open objects without a discriminator (GitHub's protection rules): every branch
   matches (no validators here), so the branch is the first that keeps all of an object's
   members, else the one that keeps the most; a value that is not an object takes the first. */
START_TEST(union_of_open_objects_keeps_the_most)
{
    static const tb_codec_field timer_f[] = {
        {"id", "\"id\":", 2, 5, TB_CK_INTEGER, 0, 0, 0, 0, 0, NULL, NULL},
        {"wait", "\"wait\":", 4, 7, TB_CK_INTEGER, 0, 8, 0, 0, 0, NULL, NULL},
    };
    static const tb_codec_field review_f[] = {
        {"id", "\"id\":", 2, 5, TB_CK_INTEGER, 0, 0, 0, 0, 0, NULL, NULL},
        {"reviewers", "\"reviewers\":", 9, 12, TB_CK_JSON, 0, 8, 0, 0, 0, NULL, NULL},
        {"note", "\"note\":", 4, 7, TB_CK_STRING, 0, 16, 0, 0, 0, NULL, NULL},
    };
    static const tb_codec_type timer = {"timer", 16, 2, timer_f, NULL, NULL, 0};
    static const tb_codec_type review = {"review", 24, 3, review_f, NULL, NULL, 0};
    static const tb_codec_branch br[] = {
        {"timer", TB_CK_STRUCT, 0, TB_J(JSON_OBJECT), 8, 0, &timer, NULL, 0, NULL},
        {"review", TB_CK_STRUCT, 0, TB_J(JSON_OBJECT), 8, 0, &review, NULL, 0, NULL},
        {"any", TB_CK_JSON, 0, TB_J(JSON_OBJECT) | TB_J(JSON_INTEGER), 8, 0, NULL, NULL, 0, NULL},
    };
    static const tb_codec_union rule = {"rule", 32, NULL, 0, 3, br, NULL};
    static const struct {
        const char *json;
        int branch;
    } cases[] = {
        {"{\"id\": 1, \"wait\": 30}", 0},                       /* the first keeps it all */
        {"{\"id\": 1}", 0},                                      /* so do all: the first */
        {"{\"id\": 2, \"reviewers\": []}", 1},                  /* not the first it matches */
        {"{\"id\": 2, \"reviewers\": [], \"note\": \"n\", \"wait\": 5}", 2}, /* any value */
        {"7", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *x = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(x);
        ck_assert_msg(tb_codec_union_choose(&rule, x) == cases[i].branch, "%s", cases[i].json);
        json_decref(x);
    }
    /* without the any-value branch: the one that keeps the most (review keeps 3 of 4) */
    static const tb_codec_union two = {"rule", 32, NULL, 0, 2, br, NULL};
    json_t *x = load("{\"id\": 2, \"reviewers\": [], \"note\": \"n\", \"wait\": 5}");
    ck_assert_int_eq(tb_codec_union_choose(&two, x), 1);
    json_decref(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, decode_every_kind);
    tcase_add_test(tc, absent_optional_members_are_not_written);
    tcase_add_test(tc, values_of_the_wrong_shape_are_refused);
    tcase_add_test(tc, integers_beyond_64_bits_are_refused_not_wrapped);
    tcase_add_test(tc, parse_validates_first);
    tcase_add_test(tc, enum_lookup);
    tcase_add_test(tc, union_of_open_objects_keeps_the_most);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
