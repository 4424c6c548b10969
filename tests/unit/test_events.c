/* Generated event types (gen/events from schemas/events): parse, validate and serialize round
 * trips, and every error path: malformed JSON, each schema rule, stop-first vs all errors. */
#include "events/events.h"
#include "tablium/json.h"
#include "tablium/validate.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define UID "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define UID2 "0b6f3b7e-93a1-4f1e-9a55-3e0a4c1f2b11"
#define TS "2026-11-24T10:00:00Z"

static tb_arena *A;
static tb_error E;

static void setup(void)
{
    A = tb_arena_new(0);
    tb_error_init(&E);
}

static void teardown(void)
{
    tb_arena_free(A);
    tb_error_deinit(&E);
}

/* The detail with this path, or NULL. */
static const tb_error_detail *detail_at(const tb_error *e, const char *path)
{
    for (size_t i = 0; i < e->n_details; i++)
        if (strcmp(e->details[i].path, path) == 0)
            return &e->details[i];
    return NULL;
}

static void assert_violation(const char *doc, const char *path, const char *rule)
{
    user_registered_v1 u;
    int rc = user_registered_v1_parse(doc, strlen(doc), A, &u, &E);
    ck_assert_int_eq(rc, TB_EVALIDATION);
    ck_assert_int_eq(E.code, TB_EVALIDATION);
    const tb_error_detail *d = detail_at(&E, path);
    ck_assert_msg(d != NULL, "no violation at %s; first is %s (%s)", path,
                  E.n_details ? E.details[0].path : "-", E.n_details ? E.details[0].rule : "-");
    ck_assert_str_eq(d->rule, rule);
    ck_assert(strlen(d->message) > 0);
}

START_TEST(user_registered_round_trip)
{
    const char *doc = "{\"userId\":\"" UID "\",\"email\":\"ada@example.com\",\"username\":\"ada\","
                      "\"registeredAt\":\"" TS "\"}";
    user_registered_v1 u;
    ck_assert_int_eq(user_registered_v1_parse(doc, strlen(doc), A, &u, &E), 0);
    ck_assert_str_eq(u.user_id, UID);
    ck_assert_str_eq(u.email, "ada@example.com");
    ck_assert(!u.has_display_name);
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(user_registered_v1_serialize(&u, &b), 0);
    ck_assert_str_eq(b.data, doc); /* same member order, absent optional stays absent */
    u.has_display_name = true;
    u.display_name = "Ada L.";
    tb_buf_reset(&b);
    user_registered_v1_serialize(&u, &b);
    user_registered_v1 v;
    ck_assert_int_eq(user_registered_v1_parse(b.data, b.len, A, &v, &E), 0);
    ck_assert(v.has_display_name);
    ck_assert_str_eq(v.display_name, "Ada L.");
    json_t *j = user_registered_v1_to_json(&v);
    json_t *k = tb_json_loadb(b.data, b.len, NULL);
    ck_assert(tb_json_equal(j, k));
    json_decref(j);
    json_decref(k);
    tb_buf_deinit(&b);
}
END_TEST

START_TEST(zero_false_and_empty_are_sent_not_dropped)
{
    game_created_v1 g;
    memset(&g, 0, sizeof g);
    const char *players[] = {UID};
    g.game_id = UID2;
    g.game_type = GAME_CREATED_V1_GAME_TYPE_CHESS;
    g.created_by = UID;
    g.players = (char **)players;
    g.n_players = 1;
    g.settings.time_control_seconds = 0;
    g.settings.rated = false;
    g.has_stake = true;
    g.stake.amount = 0;
    g.stake.currency = "CHP";
    g.created_at = TS;
    tb_buf b = TB_BUF_INIT;
    ck_assert_int_eq(game_created_v1_serialize(&g, &b), 0);
    ck_assert_ptr_nonnull(strstr(b.data, "\"timeControlSeconds\":0"));
    ck_assert_ptr_nonnull(strstr(b.data, "\"rated\":false"));
    ck_assert_ptr_nonnull(strstr(b.data, "\"stake\":{\"amount\":0,\"currency\":\"CHP\"}"));
    game_created_v1 back;
    ck_assert_int_eq(game_created_v1_parse(b.data, b.len, A, &back, &E), 0);
    ck_assert_int_eq(back.game_type, GAME_CREATED_V1_GAME_TYPE_CHESS);
    ck_assert_uint_eq(back.n_players, 1);
    ck_assert_str_eq(back.players[0], UID);
    ck_assert(back.has_stake);
    ck_assert_int_eq(back.stake.amount, 0);
    ck_assert(!back.settings.rated);
    tb_buf_deinit(&b);
}
END_TEST

START_TEST(nullable_member_keeps_null)
{
    const char *doc = "{\"gameId\":\"" UID "\",\"outcome\":\"draw\",\"winnerId\":null,"
                      "\"scores\":[{\"playerId\":\"" UID2 "\",\"score\":-3}],\"durationMs\":0,"
                      "\"completedAt\":\"" TS "\"}";
    game_completed_v1 g;
    ck_assert_int_eq(game_completed_v1_parse(doc, strlen(doc), A, &g, &E), 0);
    ck_assert(g.winner_id_is_null);
    ck_assert_int_eq(g.outcome, GAME_COMPLETED_V1_OUTCOME_DRAW);
    ck_assert_int_eq(g.scores[0].score, -3);
    tb_buf b = TB_BUF_INIT;
    game_completed_v1_serialize(&g, &b);
    ck_assert_str_eq(b.data, doc);
    tb_buf_deinit(&b);
}
END_TEST

START_TEST(envelope_carries_free_form_data)
{
    const char *doc = "{\"id\":\"" UID "\",\"type\":\"user.registered\",\"version\":\"1.0\","
                      "\"timestamp\":\"" TS "\",\"producer\":\"auth-service\","
                      "\"data\":{\"userId\":\"" UID2 "\",\"nested\":[1,2.5,null]},"
                      "\"metadata\":{\"correlationId\":\"req-1\",\"traceId\":"
                      "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"tenant\":\"eu\"}}";
    event_envelope env;
    ck_assert_int_eq(event_envelope_parse(doc, strlen(doc), A, &env, &E), 0);
    ck_assert_str_eq(env.type, "user.registered");
    ck_assert(json_is_object(env.data));
    ck_assert(env.metadata.has_trace_id);
    ck_assert(!env.metadata.has_traceparent);
    tb_buf b = TB_BUF_INIT;
    event_envelope_serialize(&env, &b);
    json_t *x = tb_json_loadb(b.data, b.len, NULL);
    ck_assert_int_eq(event_envelope_validate(x, 0, NULL), 0);
    json_t *data = json_object_get(x, "data");
    ck_assert(json_equal(data, env.data)); /* data travels unchanged */
    json_decref(x);
    tb_buf_deinit(&b);
    /* unknown top-level member: refused, metadata extras must be strings */
    const char *extra = "{\"id\":\"" UID "\",\"type\":\"a.b\",\"version\":\"1.0\",\"timestamp\":\"" TS
                        "\",\"producer\":\"p\",\"data\":{},\"metadata\":{\"correlationId\":\"c\","
                        "\"n\":1},\"x\":1}";
    ck_assert_int_eq(event_envelope_parse(extra, strlen(extra), A, &env, &E), TB_EVALIDATION);
    ck_assert_ptr_nonnull(detail_at(&E, "/x"));
    ck_assert_str_eq(detail_at(&E, "/x")->rule, "additionalProperties");
    ck_assert_str_eq(detail_at(&E, "/metadata/n")->rule, "type");
}
END_TEST

START_TEST(malformed_json_has_line_and_column)
{
    const char *doc = "{\"userId\": \"" UID "\",\n \"email\": }";
    user_registered_v1 u;
    ck_assert_int_eq(user_registered_v1_parse(doc, strlen(doc), A, &u, &E), TB_EPARSE);
    ck_assert_int_eq(E.line, 2);
    ck_assert_int_gt(E.column, 1);
    ck_assert_ptr_nonnull(strstr(E.message, "line 2"));
    ck_assert_int_eq(user_registered_v1_parse("", 0, A, &u, &E), TB_EPARSE);
    ck_assert_int_eq(user_registered_v1_parse("[1,2", 4, A, &u, &E), TB_EPARSE);
}
END_TEST

START_TEST(each_rule_names_its_path)
{
#define BASE_OK "\"userId\":\"" UID "\",\"email\":\"a@b.co\",\"registeredAt\":\"" TS "\""
    assert_violation("{" BASE_OK "}", "/username", "required");
    assert_violation("{" BASE_OK ",\"username\":7}", "/username", "type");
    assert_violation("{" BASE_OK ",\"username\":\"ab\"}", "/username", "minLength");
    assert_violation("{" BASE_OK ",\"username\":\"a b c\"}", "/username", "pattern");
    assert_violation("{" BASE_OK ",\"username\":\"ada\",\"admin\":true}", "/admin",
                     "additionalProperties");
    assert_violation("{" BASE_OK ",\"username\":\"ada\",\"displayName\":\"\"}", "/displayName",
                     "minLength");
    assert_violation("[]", "", "type");
    /* code points, not bytes: 3 two-byte characters satisfy minLength 3 */
    const char *utf = "{" BASE_OK ",\"username\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}";
    user_registered_v1 u;
    ck_assert_int_eq(user_registered_v1_parse(utf, strlen(utf), A, &u, &E), TB_EVALIDATION);
    ck_assert_str_eq(E.details[0].rule, "pattern"); /* not minLength */
#undef BASE_OK
}
END_TEST

/* Regression: a string member is a char *, which ends at its first NUL, so "a\u0000b" was
 * decoded as "a". A string that becomes a C string refuses U+0000 (rule "nul"); free-form
 * JSON (json_t *) keeps it as data. */
START_TEST(nul_in_a_string_that_becomes_a_c_string_is_refused_naming_its_path)
{
#define BASE_OK "\"userId\":\"" UID "\",\"registeredAt\":\"" TS "\""
    assert_violation("{" BASE_OK ",\"email\":\"a@b.co\",\"username\":\"ada\","
                     "\"displayName\":\"a\\u0000b\"}", "/displayName", "nul");
    ck_assert_ptr_nonnull(strstr(detail_at(&E, "/displayName")->message, "NUL"));
    /* a member typed by a shared $ref'd definition (whose pattern refuses the NUL as well) */
    json_t *j = json_pack("{s:s, s:s, s:s, s:s#}", "userId", UID, "registeredAt", TS, "email",
                          "a@b.co", "username", "ad\0a", (size_t)4);
    ck_assert_int_eq(user_registered_v1_validate(j, TB_VALIDATE_ALL_ERRORS, &E), TB_EVALIDATION);
    bool nul = false;
    for (size_t i = 0; i < E.n_details; i++)
        nul |= strcmp(E.details[i].path, "/username") == 0 && strcmp(E.details[i].rule, "nul") == 0;
    ck_assert_msg(nul, "no nul detail at /username");
    json_decref(j);
#undef BASE_OK
    /* free-form data is not a C string: a NUL in it is data */
    const char *doc = "{\"id\":\"" UID "\",\"type\":\"user.registered\",\"version\":\"1.0\","
                      "\"timestamp\":\"" TS "\",\"producer\":\"auth-service\","
                      "\"data\":{\"note\":\"a\\u0000b\"},\"metadata\":{\"correlationId\":\"c\"}}";
    event_envelope env;
    ck_assert_msg(event_envelope_parse(doc, strlen(doc), A, &env, &E) == 0, "%s", E.message);
    ck_assert_uint_eq(json_string_length(json_object_get(env.data, "note")), 3);
}
END_TEST

START_TEST(numbers_enums_arrays_and_nesting)
{
    const char *tx = "{\"transactionId\":\"" UID "\",\"walletId\":\"" UID "\",\"userId\":\"" UID
                     "\",\"type\":\"refund\",\"amount\":0,\"currency\":\"usd\",\"balanceAfter\":-1,"
                     "\"createdAt\":\"" TS "\"}";
    json_t *j = tb_json_loadb(tx, strlen(tx), NULL);
    ck_assert_int_eq(wallet_transaction_created_v1_validate(j, TB_VALIDATE_ALL_ERRORS, &E),
                     TB_EVALIDATION);
    ck_assert_str_eq(detail_at(&E, "/type")->rule, "enum");
    ck_assert_str_eq(detail_at(&E, "/amount")->rule, "exclusiveMinimum");
    ck_assert_str_eq(detail_at(&E, "/currency")->rule, "pattern");
    ck_assert_str_eq(detail_at(&E, "/balanceAfter")->rule, "minimum");
    ck_assert_uint_eq(E.n_details, 4);
    /* stop at the first */
    ck_assert_int_eq(wallet_transaction_created_v1_validate(j, 0, &E), TB_EVALIDATION);
    ck_assert_uint_eq(E.n_details, 1);
    ck_assert_ptr_nonnull(strstr(E.message, "and more") == NULL ? E.message : NULL);
    json_decref(j);

    const char *g = "{\"gameId\":\"" UID "\",\"gameType\":\"chess\",\"createdBy\":\"" UID "\","
                    "\"players\":[\"" UID "\",\"nope\",\"" UID "\"],\"settings\":{"
                    "\"timeControlSeconds\":1.5,\"rated\":\"yes\"},\"createdAt\":\"" TS "\"}";
    j = tb_json_loadb(g, strlen(g), NULL);
    ck_assert_int_eq(game_created_v1_validate(j, TB_VALIDATE_ALL_ERRORS, &E), TB_EVALIDATION);
    ck_assert_str_eq(detail_at(&E, "/players/1")->rule, "pattern");
    ck_assert_str_eq(detail_at(&E, "/players")->rule, "uniqueItems");
    ck_assert_str_eq(detail_at(&E, "/settings/timeControlSeconds")->rule, "type");
    ck_assert_str_eq(detail_at(&E, "/settings/rated")->rule, "type");
    json_decref(j);
    /* 1.0 is an integer (JSON Schema), jansson reads it as a real */
    const char *m = "{\"gameId\":\"" UID "\",\"playerId\":\"" UID "\",\"moveNumber\":1.0,"
                    "\"move\":{\"notation\":\"e2e4\"},\"madeAt\":\"" TS "\"}";
    game_move_made_v1 mv;
    ck_assert_int_eq(game_move_made_v1_parse(m, strlen(m), A, &mv, &E), 0);
    ck_assert_int_eq(mv.move_number, 1);
}
END_TEST

START_TEST(formats_are_asserted_only_when_asked)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "userId", UID, "email", "not-an-email",
                          "username", "ada", "registeredAt", TS);
    ck_assert_int_eq(user_registered_v1_validate(j, 0, &E), 0);
    ck_assert_int_eq(user_registered_v1_validate(j, TB_VALIDATE_FORMATS, &E), TB_EVALIDATION);
    ck_assert_str_eq(E.details[0].path, "/email");
    ck_assert_str_eq(E.details[0].rule, "format");
    json_object_set_new(j, "email", json_string("ada@example.com"));
    json_object_set_new(j, "registeredAt", json_string("2026-02-30T10:00:00Z"));
    ck_assert_int_eq(user_registered_v1_validate(j, TB_VALIDATE_FORMATS, &E), TB_EVALIDATION);
    ck_assert_str_eq(E.details[0].path, "/registeredAt");
    json_decref(j);
}
END_TEST

START_TEST(versions_coexist)
{
    json_t *v1 = json_pack("{s:s, s:s, s:s, s:s}", "userId", UID, "email", "a@b.co", "username",
                           "ada", "registeredAt", TS);
    ck_assert_int_eq(user_registered_v1_validate(v1, 0, NULL), 0);
    ck_assert_int_eq(user_registered_v2_validate(v1, 0, &E), TB_EVALIDATION); /* v2 needs more */
    ck_assert_ptr_nonnull(detail_at(&E, "/displayName"));
    json_decref(v1);
}
END_TEST

START_TEST(enum_strings_round_trip)
{
    for (int i = 0; i < GAME_CREATED_V1_GAME_TYPE__COUNT; i++) {
        const char *s = game_created_v1_game_type_to_string((game_created_v1_game_type)i);
        ck_assert_ptr_nonnull(s);
        game_created_v1_game_type back;
        ck_assert_int_eq(game_created_v1_game_type_from_string(s, strlen(s), &back), 0);
        ck_assert_int_eq((int)back, i);
    }
    game_created_v1_game_type t;
    ck_assert_int_eq(game_created_v1_game_type_from_string("go", 2, &t), TB_EINVAL);
    ck_assert_ptr_null(game_created_v1_game_type_to_string((game_created_v1_game_type)99));
}
END_TEST

START_TEST(deep_nesting_is_refused_not_crashing)
{
    /* 200 nested arrays in a free-form member: jansson parses them, validation is bounded */
    char doc[1024];
    size_t o = 0;
    o += (size_t)snprintf(doc + o, sizeof doc - o, "{\"id\":\"" UID "\",\"type\":\"a.b\","
                          "\"version\":\"1.0\",\"timestamp\":\"" TS "\",\"producer\":\"p\","
                          "\"metadata\":{\"correlationId\":\"c\"},\"data\":{\"x\":");
    for (int i = 0; i < 200; i++)
        doc[o++] = '[';
    for (int i = 0; i < 200; i++)
        doc[o++] = ']';
    doc[o++] = '}';
    doc[o++] = '}';
    doc[o] = 0;
    event_envelope env;
    ck_assert_int_eq(event_envelope_parse(doc, o, A, &env, &E), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("events");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, user_registered_round_trip);
    tcase_add_test(tc, nul_in_a_string_that_becomes_a_c_string_is_refused_naming_its_path);
    tcase_add_test(tc, zero_false_and_empty_are_sent_not_dropped);
    tcase_add_test(tc, nullable_member_keeps_null);
    tcase_add_test(tc, envelope_carries_free_form_data);
    tcase_add_test(tc, malformed_json_has_line_and_column);
    tcase_add_test(tc, each_rule_names_its_path);
    tcase_add_test(tc, numbers_enums_arrays_and_nesting);
    tcase_add_test(tc, formats_are_asserted_only_when_asked);
    tcase_add_test(tc, versions_coexist);
    tcase_add_test(tc, enum_strings_round_trip);
    tcase_add_test(tc, deep_nesting_is_refused_not_crashing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
