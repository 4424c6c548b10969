/* Composition as C types, through the committed golden code of tests/generator/fixtures/shapes.yaml
 * (tests/generator/golden/shapes: what tablium-gen writes for it, checked by the golden test):
 *   a discriminated oneOf (mapping, an alias, an implicit name) as a tagged union, and its errors
 *   (an unknown or missing discriminator is one error at the property naming the allowed
 *   values; a known one reports its own branch's errors only);
 *   an anyOf chosen by validation, a list of types, a nullable oneOf;
 *   an allOf merged into one struct; maps (additionalProperties) in document order;
 *   a recursive tree held by pointers; arrays of arrays; arrays whose items may be null (each
 *   item a pointer, NULL for null; a string item its own char *), a named array of them among
 *   them (its list type is the one the member that $refs it uses).
 * Every value goes JSON -> C -> JSON and compares equal (jansson's json_equal), both through the
 * writer (T_serialize) and through T_to_json. */
#include "shapes.h"

#include "tablium/arena.h"
#include "tablium/buf.h"
#include "tablium/error.h"
#include "tablium/validate.h"

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

/* both writers (serialize and to_json) give the JSON value of text */
static void writes_as(const shapes *d, const char *text)
{
    json_t *want = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(want);
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(shapes_serialize(d, &b), 0);
    json_t *got = json_loadb(b.data, b.len, 0, NULL);
    ck_assert_msg(got && json_equal(want, got), "want %s, wrote %.*s", text, (int)b.len, b.data);
    json_t *tj = shapes_to_json(d);
    ck_assert_msg(tj && json_equal(want, tj), "to_json: want %s", text);
    json_decref(tj);
    json_decref(got);
    json_decref(want);
    tb_buf_deinit(&b);
}

/* parses text as a drawing (must succeed) and checks both ways back to JSON */
static shapes parse_ok(const char *text)
{
    shapes d;
    tb_error err = TB_ERROR_INIT;
    int rc = shapes_parse(text, strlen(text), A, &d, &err);
    ck_assert_msg(rc == 0, "%s: %s", text, err.message);
    tb_error_deinit(&err);
    writes_as(&d, text);
    return d;
}

/* parses text (must fail validation) and returns the number of details; the first one's path,
 * rule and message are copied out */
static size_t parse_bad(const char *text, char *path, char *rule, char *msg)
{
    shapes d;
    tb_error err = TB_ERROR_INIT;
    int rc = shapes_parse(text, strlen(text), A, &d, &err);
    ck_assert_msg(rc == TB_EVALIDATION, "%s: rc %d", text, rc);
    ck_assert_uint_ge(err.n_details, 1);
    strcpy(path, err.details[0].path);
    strcpy(rule, err.details[0].rule);
    strcpy(msg, err.details[0].message);
    size_t n = err.n_details;
    tb_error_deinit(&err);
    return n;
}

START_TEST(discriminated_union)
{
    shapes d = parse_ok("{\"shapes\":[{\"kind\":\"round\",\"radius\":2.5},"
                        "{\"kind\":\"circle\",\"radius\":1.5},{\"kind\":\"square\",\"side\":3},"
                        "{\"kind\":\"polygon\",\"points\":[[0.5,0.25],[1.5,0.5],[0.5,1.5]]}]}");
    ck_assert_uint_eq(d.n_shapes, 4);
    ck_assert_int_eq(d.shapes[0].kind, SHAPE_CIRCLE); /* "round" maps to circle */
    ck_assert(d.shapes[0].circle.radius == 2.5);
    ck_assert_str_eq(d.shapes[0].circle.kind, "round");
    ck_assert_int_eq(d.shapes[1].kind, SHAPE_CIRCLE);
    ck_assert_int_eq(d.shapes[2].kind, SHAPE_SQUARE);
    ck_assert_int_eq(d.shapes[2].square.side, 3);
    ck_assert_int_eq(d.shapes[3].kind, SHAPE_POLYGON); /* implicit: the schema's name */
    ck_assert_uint_eq(d.shapes[3].polygon.n_points, 3); /* an array of arrays: lists */
    ck_assert_uint_eq(d.shapes[3].polygon.points[1].n, 2);
    ck_assert(d.shapes[3].polygon.points[1].items[0] == 1.5);
}
END_TEST

/* A value made in C: `kind` is enough, the branch's own discriminator member may stay unset
 * (the tag its kind names is written); one set is written as it is ("round", an alias). */
START_TEST(kind_alone_writes_the_discriminator)
{
    shape s[3];
    memset(s, 0, sizeof s);
    s[0].kind = SHAPE_SQUARE;
    s[0].square.side = 3;
    s[1].kind = SHAPE_CIRCLE;
    s[1].circle.radius = 1.5;
    s[2].kind = SHAPE_CIRCLE;
    s[2].circle.kind = "round";
    s[2].circle.radius = 2.5;
    shapes d;
    memset(&d, 0, sizeof d);
    d.shapes = s;
    d.n_shapes = 3;
    writes_as(&d, "{\"shapes\":[{\"kind\":\"square\",\"side\":3},"
                  "{\"kind\":\"circle\",\"radius\":1.5},{\"kind\":\"round\",\"radius\":2.5}]}");
    ck_assert_ptr_null(s[0].square.kind); /* the caller's value is not changed */
    json_t *j = shapes_to_json(&d);
    ck_assert_int_eq(shapes_validate(j, TB_VALIDATE_FORMATS, NULL), 0);
    json_decref(j);
}
END_TEST

START_TEST(discriminator_errors_name_the_property_or_the_branch)
{
    char path[512], rule[64], msg[512];
    /* unknown value: one error, at the property, naming the allowed values */
    size_t n = parse_bad("{\"shapes\":[{\"kind\":\"hexagon\",\"side\":2}]}", path, rule, msg);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(path, "/shapes/0/kind");
    ck_assert_str_eq(rule, "discriminator");
    ck_assert_str_eq(msg, "must be one of \"circle\", \"round\", \"square\", \"polygon\"");
    /* missing */
    n = parse_bad("{\"shapes\":[{\"side\":2}]}", path, rule, msg);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(path, "/shapes/0/kind");
    ck_assert_str_eq(rule, "required");
    ck_assert_ptr_nonnull(strstr(msg, "\"square\""));
    /* a known value: that branch's errors only (not "must match exactly one schema") */
    n = parse_bad("{\"shapes\":[{\"kind\":\"square\",\"side\":0}]}", path, rule, msg);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(path, "/shapes/0/side");
    ck_assert_str_eq(rule, "minimum");
    n = parse_bad("{\"shapes\":[{\"kind\":\"round\",\"radius\":-1}]}", path, rule, msg);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(path, "/shapes/0/radius");
    ck_assert_str_eq(rule, "exclusiveMinimum");
    /* not an object */
    n = parse_bad("{\"shapes\":[7]}", path, rule, msg);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(path, "/shapes/0");
    ck_assert_str_eq(rule, "discriminator");
}
END_TEST

START_TEST(union_chosen_by_validation)
{
    shapes d = parse_ok("{\"shapes\":[],\"size\":12,\"id\":\"a-1\"}");
    ck_assert_int_eq(d.size.kind, SIZE_INTEGER);
    ck_assert_int_eq(d.size.integer, 12);
    ck_assert_int_eq(d.id.kind, ID_STRING);
    ck_assert_str_eq(d.id.string, "a-1");
    d = parse_ok("{\"shapes\":[],\"size\":\"medium\",\"id\":42}");
    ck_assert_int_eq(d.size.kind, SIZE_STRING);
    ck_assert_int_eq(d.size.string, SIZE_STRING_MEDIUM);
    ck_assert_int_eq(d.id.kind, ID_INTEGER);
    ck_assert_int_eq(d.id.integer, 42);
    d = parse_ok("{\"shapes\":[],\"size\":{\"width\":3,\"height\":4}}");
    ck_assert_int_eq(d.size.kind, SIZE_OBJECT);
    ck_assert_int_eq(d.size.object.width, 3);
    ck_assert_int_eq(d.size.object.height, 4);
    ck_assert(!d.has_id);
    char path[512], rule[64], msg[512];
    ck_assert_uint_ge(parse_bad("{\"shapes\":[],\"size\":\"huge\"}", path, rule, msg), 1);
    ck_assert_str_eq(path, "/size");
    ck_assert_uint_ge(parse_bad("{\"shapes\":[],\"id\":1.5}", path, rule, msg), 1);
    ck_assert_str_eq(path, "/id");
}
END_TEST

START_TEST(nullable_one_of)
{
    shapes d = parse_ok("{\"shapes\":[],\"label\":null}");
    ck_assert(d.has_label && d.label_is_null);
    d = parse_ok("{\"shapes\":[],\"label\":\"x\"}");
    ck_assert(d.has_label && !d.label_is_null);
    ck_assert_str_eq(d.label, "x");
}
END_TEST

START_TEST(merged_all_of_and_maps)
{
    shapes d = parse_ok("{\"shapes\":[],\"layers\":{\"bg\":{\"name\":\"Back\",\"visible\":true,"
                        "\"opacity\":0.5},\"fg\":{\"name\":\"Front\",\"note\":\"top\","
                        "\"visible\":false}},\"tags\":{\"z\":\"last\",\"a\":\"first\"}}");
    ck_assert_uint_eq(d.layers.n, 2);
    ck_assert_str_eq(d.layers.items[0].key, "bg");
    ck_assert_str_eq(d.layers.items[0].value.name, "Back"); /* from named (allOf part 1) */
    ck_assert(d.layers.items[0].value.visible);           /* from allOf part 2 */
    ck_assert(d.layers.items[0].value.has_opacity && d.layers.items[0].value.opacity == 0.5);
    ck_assert_str_eq(d.layers.items[1].key, "fg");
    ck_assert(d.layers.items[1].value.has_note);
    ck_assert(!d.layers.items[1].value.visible);
    /* document order, not sorted */
    ck_assert_str_eq(d.tags.items[0].key, "z");
    ck_assert_str_eq(d.tags.items[1].value, "first");
    char path[512], rule[64], msg[512];
    /* the merged struct's validator is the whole allOf */
    parse_bad("{\"shapes\":[],\"layers\":{\"bg\":{\"name\":\"Back\"}}}", path, rule, msg);
    ck_assert_str_eq(path, "/layers/bg/visible");
    ck_assert_str_eq(rule, "required");
    /* a key with U+0000 cannot be a C string: refused, not cut */
    shapes x;
    tb_error err = TB_ERROR_INIT;
    const char *nul = "{\"shapes\":[],\"tags\":{\"a\\u0000b\":\"v\"}}";
    ck_assert_int_ne(shapes_parse(nul, strlen(nul), A, &x, &err), 0);
    tb_error_deinit(&err);
}
END_TEST

START_TEST(recursive_tree)
{
    shapes d = parse_ok("{\"shapes\":[],\"root\":{\"value\":1,\"next\":{\"value\":2,\"next\":"
                        "{\"value\":3}},\"children\":[{\"value\":4,\"children\":[{\"value\":5}]},"
                        "{\"value\":6}]}}");
    ck_assert(d.has_root);
    ck_assert_ptr_nonnull(d.root.next);
    ck_assert_int_eq(d.root.next->value, 2);
    ck_assert_int_eq(d.root.next->next->value, 3);
    ck_assert(!d.root.next->next->has_next);
    ck_assert_uint_eq(d.root.n_children, 2);
    ck_assert_int_eq(d.root.children[0].children[0].value, 5);
    ck_assert_int_eq(d.root.children[1].value, 6);
    char path[512], rule[64], msg[512];
    parse_bad("{\"shapes\":[],\"root\":{\"value\":1,\"next\":{\"value\":2,\"next\":{\"value\":"
              "\"x\"}}}}", path, rule, msg);
    ck_assert_str_eq(path, "/root/next/next/value");
    ck_assert_str_eq(rule, "type");
}
END_TEST

START_TEST(items_that_may_be_null)
{
    shapes d = parse_ok("{\"shapes\":[],\"grid\":[[1.5,null],[null],[]],"
                        "\"marks\":[null,\"a\",\"\"],\"scores\":[1,null,-3],"
                        "\"owners\":[null,{\"name\":\"n\"}]}");
    ck_assert_uint_eq(d.n_grid, 3);
    ck_assert_uint_eq(d.grid[0].n, 2);
    ck_assert_ptr_nonnull(d.grid[0].items[0]);
    ck_assert(*d.grid[0].items[0] == 1.5);
    ck_assert_ptr_null(d.grid[0].items[1]);
    ck_assert_uint_eq(d.grid[1].n, 1);
    ck_assert_ptr_null(d.grid[1].items[0]);
    ck_assert_uint_eq(d.grid[2].n, 0);
    ck_assert_uint_eq(d.n_marks, 3);
    ck_assert_ptr_null(d.marks[0]);
    ck_assert_str_eq(d.marks[1], "a");
    ck_assert_str_eq(d.marks[2], ""); /* "" is a value, not null */
    ck_assert_uint_eq(d.n_scores, 3);
    ck_assert_int_eq(*d.scores[0], 1);
    ck_assert_ptr_null(d.scores[1]);
    ck_assert_int_eq(*d.scores[2], -3);
    ck_assert_uint_eq(d.n_owners, 2);
    ck_assert_ptr_null(d.owners[0]);
    ck_assert_str_eq(d.owners[1]->name, "n");
    /* an enum whose values include null: a C enum, nullable; its items pointers */
    shapes e = parse_ok("{\"shapes\":[],\"compass\":null,\"corners\":[\"ne\",null,\"nw\"]}");
    ck_assert(e.has_compass && e.compass_is_null);
    ck_assert_uint_eq(e.n_corners, 3);
    ck_assert_int_eq(*e.corners[0], COMPASS_NE);
    ck_assert_ptr_null(e.corners[1]);
    ck_assert_int_eq(*e.corners[2], COMPASS_NW);
    e = parse_ok("{\"shapes\":[],\"compass\":\"nw\"}");
    ck_assert(e.has_compass && !e.compass_is_null && e.compass == COMPASS_NW);
    /* null only where the schema allows it: the rule and the item's path */
    char path[512], rule[64], msg[512];
    parse_bad("{\"shapes\":[],\"scores\":[1,\"x\"]}", path, rule, msg);
    ck_assert_str_eq(path, "/scores/1");
    ck_assert_str_eq(rule, "type");
    parse_bad("{\"shapes\":[null]}", path, rule, msg);
    ck_assert_str_eq(path, "/shapes/0");
    parse_bad("{\"shapes\":[],\"corners\":[\"se\"]}", path, rule, msg);
    ck_assert_str_eq(path, "/corners/0");
    ck_assert_str_eq(rule, "enum");
    /* built in C and written */
    double half = 0.5;
    double *row0[] = {NULL, &half};
    shapes_grid_item grid[] = {{row0, 2}};
    char *marks[] = {"m", NULL};
    int64_t seven = 7;
    int64_t *scores[] = {NULL, &seven};
    named who = {.name = "w"};
    named *owners[] = {&who, NULL};
    shapes w;
    memset(&w, 0, sizeof w);
    w.has_grid = w.has_marks = w.has_scores = w.has_owners = true;
    w.grid = grid;
    w.n_grid = 1;
    w.marks = marks;
    w.n_marks = 2;
    w.scores = scores;
    w.n_scores = 2;
    w.owners = owners;
    w.n_owners = 2;
    writes_as(&w, "{\"shapes\":[],\"grid\":[[null,0.5]],\"marks\":[\"m\",null],"
                  "\"scores\":[null,7],\"owners\":[{\"name\":\"w\"},null]}");
}
END_TEST

START_TEST(unions_that_may_be_null)
{
    /* several types and null; a oneOf with a null branch among others: nullable unions */
    shapes d = parse_ok("{\"shapes\":[],\"reading\":null,\"readings\":[3,\"a\",null]}");
    ck_assert(d.has_reading && d.reading_is_null);
    ck_assert_uint_eq(d.n_readings, 3);
    ck_assert_int_eq(d.readings[0]->kind, SHAPES_READINGS_ITEM_INTEGER);
    ck_assert_int_eq(d.readings[0]->integer, 3);
    ck_assert_int_eq(d.readings[1]->kind, SHAPES_READINGS_ITEM_STRING);
    ck_assert_str_eq(d.readings[1]->string, "a");
    ck_assert_ptr_null(d.readings[2]);
    d = parse_ok("{\"shapes\":[],\"reading\":\"x\"}");
    ck_assert(d.has_reading && !d.reading_is_null && d.reading.kind == SHAPES_READING_STRING);
    ck_assert_str_eq(d.reading.string, "x");
    d = parse_ok("{\"shapes\":[],\"reading\":-4}");
    ck_assert(!d.reading_is_null && d.reading.kind == SHAPES_READING_INTEGER);
    ck_assert_int_eq(d.reading.integer, -4);
    /* null is no licence for other values: the rule and the path */
    char path[512], rule[64], msg[512];
    parse_bad("{\"shapes\":[],\"reading\":1.5}", path, rule, msg);
    ck_assert_str_eq(path, "/reading");
    ck_assert_str_eq(rule, "type");
    parse_bad("{\"shapes\":[],\"readings\":[1,\"\"]}", path, rule, msg);
    ck_assert_str_eq(path, "/readings/1");
    ck_assert_str_eq(rule, "oneOf");
    /* and why no branch took it: each branch's first violation (it said only "must match
     * exactly one schema in oneOf") */
    ck_assert_msg(strstr(msg, "; #0: /readings/1: ") && strstr(msg, "(type)") &&
                      strstr(msg, "; #1: /readings/1: must have at least 1 characters (minLength)") &&
                      strstr(msg, "; #2: /readings/1: "),
                  "%s", msg);
    /* built in C and written */
    shapes w;
    memset(&w, 0, sizeof w);
    w.has_reading = w.reading_is_null = true;
    shapes_readings_item two = {.kind = SHAPES_READINGS_ITEM_INTEGER, .integer = 2};
    shapes_readings_item *items[] = {NULL, &two};
    w.has_readings = true;
    w.readings = items;
    w.n_readings = 2;
    writes_as(&w, "{\"shapes\":[],\"reading\":null,\"readings\":[null,2]}");
}
END_TEST

START_TEST(members_beyond_the_properties)
{
    /* properties and additionalProperties: the other members are kept, in document order */
    shapes d = parse_ok("{\"shapes\":[],\"meta\":{\"zeta\":1,\"author\":\"a\",\"alpha\":-2},"
                        "\"extra\":{\"id\":7,\"any\":[1,{\"q\":null}],\"s\":\"x\"}}");
    ck_assert(d.has_meta && d.meta.has_author);
    ck_assert_str_eq(d.meta.author, "a");
    ck_assert_uint_eq(d.meta.additional_properties.n, 2);
    ck_assert_str_eq(d.meta.additional_properties.items[0].key, "zeta");
    ck_assert_int_eq(d.meta.additional_properties.items[0].value, 1);
    ck_assert_str_eq(d.meta.additional_properties.items[1].key, "alpha");
    ck_assert_int_eq(d.meta.additional_properties.items[1].value, -2);
    ck_assert(d.extra.has_id && d.extra.id == 7);
    ck_assert_uint_eq(d.extra.additional_properties.n, 2);
    ck_assert_str_eq(d.extra.additional_properties.items[0].key, "any");
    ck_assert(json_is_array(d.extra.additional_properties.items[0].value));
    ck_assert_str_eq(json_string_value(d.extra.additional_properties.items[1].value), "x");
    d = parse_ok("{\"shapes\":[],\"meta\":{}}");
    ck_assert_uint_eq(d.meta.additional_properties.n, 0);
    /* the additional members' schema still decides: the rule and the path */
    char path[512], rule[64], msg[512];
    parse_bad("{\"shapes\":[],\"meta\":{\"author\":\"a\",\"n\":\"x\"}}", path, rule, msg);
    ck_assert_str_eq(path, "/meta/n");
    ck_assert_str_eq(rule, "type");
    /* built in C and written: after the properties; an entry named like a property is left
     * out (the property is the member) */
    shapes_meta_additional_entry more[] = {{"b", 2}, {"author", 9}, {"c", 3}};
    shapes w;
    memset(&w, 0, sizeof w);
    w.has_meta = true;
    w.meta.has_author = true;
    w.meta.author = "me";
    w.meta.additional_properties.items = more;
    w.meta.additional_properties.n = 3;
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(shapes_serialize(&w, &b), 0);
    ck_assert_msg(strstr(b.data, "{\"author\":\"me\",\"b\":2,\"c\":3}") != NULL, "wrote %.*s",
                  (int)b.len, b.data);
    tb_buf_deinit(&b);
    writes_as(&w, "{\"shapes\":[],\"meta\":{\"author\":\"me\",\"b\":2,\"c\":3}}");
}
END_TEST

START_TEST(built_in_c_and_written)
{
    node leaf = {.value = 9};
    shape s[2];
    memset(s, 0, sizeof s);
    s[0].kind = SHAPE_SQUARE;
    s[0].square.kind = "square";
    s[0].square.side = 2;
    s[1].kind = SHAPE_CIRCLE;
    s[1].circle.kind = "circle";
    s[1].circle.radius = 0.25;
    shapes_tags_entry tags[] = {{"k", "v"}};
    shapes d;
    memset(&d, 0, sizeof d);
    d.shapes = s;
    d.n_shapes = 2;
    d.has_id = true;
    d.id.kind = ID_INTEGER;
    d.id.integer = 7;
    d.has_tags = true;
    d.tags.items = tags;
    d.tags.n = 1;
    d.has_root = true;
    d.root.value = 8;
    d.root.has_next = true;
    d.root.next = &leaf;
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(shapes_serialize(&d, &b), 0);
    tb_buf_putc(&b, '\0');
    ck_assert_str_eq(b.data, "{\"shapes\":[{\"kind\":\"square\",\"side\":2},{\"kind\":\"circle\","
                             "\"radius\":0.25}],\"id\":7,\"tags\":{\"k\":\"v\"},\"root\":{\"value\""
                             ":8,\"next\":{\"value\":9}}}");
    /* what it wrote is valid against the schema */
    tb_error err = TB_ERROR_INIT;
    json_t *j = json_loads(b.data, 0, NULL);
    ck_assert_int_eq(shapes_validate(j, TB_VALIDATE_ALL_ERRORS, &err), 0);
    json_decref(j);
    tb_error_deinit(&err);
    tb_buf_deinit(&b);
    /* a union with no kind writes null */
    size z = {0};
    tb_buf zb = TB_BUF_INIT;
    ck_assert_int_eq(size_serialize(&z, &zb), 0);
    ck_assert_int_eq((int)zb.len, 4);
    ck_assert(memcmp(zb.data, "null", 4) == 0);
    tb_buf_deinit(&zb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shapes");
    TCase *tc = tcase_create("composition");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, discriminated_union);
    tcase_add_test(tc, kind_alone_writes_the_discriminator);
    tcase_add_test(tc, discriminator_errors_name_the_property_or_the_branch);
    tcase_add_test(tc, union_chosen_by_validation);
    tcase_add_test(tc, nullable_one_of);
    tcase_add_test(tc, merged_all_of_and_maps);
    tcase_add_test(tc, recursive_tree);
    tcase_add_test(tc, items_that_may_be_null);
    tcase_add_test(tc, unions_that_may_be_null);
    tcase_add_test(tc, members_beyond_the_properties);
    tcase_add_test(tc, built_in_c_and_written);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
