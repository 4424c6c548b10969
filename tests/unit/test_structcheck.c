/* Struct checks (generator/tablium_gen/ir/structcheck.py): the typed publishers write valid data
 * straight from the C struct when T__fast_valid says so. Differential against the JSON path:
 * whenever the struct check passes, T_validate(T_to_json(v), FORMATS) must pass too, and the
 * JSON the fast path writes (T_serialize) must equal T_to_json. For types whose every keyword is
 * modelled, the two must agree exactly, so valid data really takes the fast path. */
#include "events/events.h"
#include "tablium/json.h"
#include "tablium/validate.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UID "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define UID2 "0b6f3b7e-93a1-4f1e-9a55-3e0a4c1f2b11"
#define TS "2026-11-24T10:00:00Z"

/* JSON path verdict: -1 when to_json fails (a string that is not UTF-8), else 1 valid / 0. */
#define SLOW(T, v)                                                                                 \
    ({                                                                                             \
        json_t *j_ = T##_to_json(v);                                                               \
        int r_ = j_ ? T##_validate(j_, TB_VALIDATE_FORMATS, NULL) == 0 : -1;                      \
        json_decref(j_);                                                                           \
        r_;                                                                                        \
    })

/* The fast path's JSON equals the JSON path's value. */
#define SAME_JSON(T, v)                                                                            \
    do {                                                                                           \
        tb_buf b_ = TB_BUF_INIT;                                                                   \
        ck_assert_int_eq(T##_serialize(v, &b_), 0);                                                \
        json_t *w_ = json_loadb(b_.data, b_.len, 0, NULL);                                         \
        json_t *t_ = T##_to_json(v);                                                               \
        ck_assert_msg(w_ && t_ && json_equal(w_, t_), "written %s", b_.data);                     \
        json_decref(w_);                                                                           \
        json_decref(t_);                                                                           \
        tb_buf_deinit(&b_);                                                                        \
    } while (0)

/* sound: fast implies slow; exact: they agree (for a JSON-writable value) */
#define AGREE(T, v, exact, what)                                                                   \
    do {                                                                                           \
        bool f_ = T##__fast_valid(v);                                                              \
        int s_ = SLOW(T, v);                                                                       \
        ck_assert_msg(!f_ || s_ == 1, "%s: struct check passed, JSON validation did not", what);   \
        if ((exact) && s_ >= 0)                                                                    \
            ck_assert_msg(f_ == (s_ == 1), "%s: struct check %d, JSON validation %d", what, f_,   \
                          s_);                                                                     \
        if (f_)                                                                                    \
            SAME_JSON(T, v);                                                                       \
    } while (0)

static game_move_made_v1 base_move(void)
{
    return (game_move_made_v1){
        .game_id = UID,
        .player_id = UID2,
        .move_number = 1,
        .move = {.notation = "e2e4", .has_from = true, .from = "e2", .has_to = true, .to = "e4"},
        .has_state_version = true,
        .state_version = 0,
        .made_at = TS,
    };
}

START_TEST(valid_data_takes_the_fast_path)
{
    game_move_made_v1 m = base_move();
    ck_assert(game_move_made_v1__fast_valid(&m));
    AGREE(game_move_made_v1, &m, true, "base move");

    char *players[] = {UID, UID2};
    game_created_v1 g = {.game_id = UID,
                         .game_type = GAME_CREATED_V1_GAME_TYPE_CHESS,
                         .created_by = UID,
                         .n_players = 2,
                         .players = players,
                         .settings = {.time_control_seconds = 600, .rated = true},
                         .has_stake = true,
                         .stake = {.amount = 100, .currency = "CHP"},
                         .created_at = TS};
    ck_assert(game_created_v1__fast_valid(&g));
    AGREE(game_created_v1, &g, true, "game created");

    user_profile_updated_v1 p = {.user_id = UID,
                                 .changes = {.has_display_name = true, .display_name = "Ada"},
                                 .updated_at = TS};
    ck_assert(user_profile_updated_v1__fast_valid(&p));
    AGREE(user_profile_updated_v1, &p, true, "profile");
}
END_TEST

/* Mutation i of a valid move (false past the last); what names it. */
static bool mutate(int i, game_move_made_v1 *m, const char **what)
{
#define CASE(n, w, body)                                                                           \
    case n:                                                                                        \
        *what = w;                                                                                 \
        body;                                                                                      \
        return true;
    switch (i) {
        CASE(0, "gameId not a uuid", m->game_id = "7c9e6679-7425-40de-944b-e07fc1f90ae")
        CASE(1, "gameId bad hex", m->game_id = "7c9e6679-7425-40de-944b-e07fc1f90aeg")
        CASE(2, "gameId NULL", m->game_id = NULL)
        CASE(3, "moveNumber 0", m->move_number = 0)
        CASE(4, "moveNumber -5", m->move_number = -5)
        CASE(5, "notation empty", m->move.notation = "")
        CASE(6, "notation 33", m->move.notation = "123456789012345678901234567890123")
        CASE(7, "notation 32", m->move.notation = "12345678901234567890123456789012")
        CASE(8, "notation 32 code points in 64 bytes",
             m->move.notation = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9")
        CASE(9, "notation not UTF-8", m->move.notation = "e2\xff")
        CASE(10, "notation surrogate", m->move.notation = "\xed\xa0\x80")
        CASE(11, "notation overlong", m->move.notation = "\xc0\xaf")
        CASE(12, "from 9", m->move.from = "abcdefghi")
        CASE(13, "from absent 9", (m->move.from = "abcdefghi", m->move.has_from = false))
        CASE(14, "to NULL", m->move.to = NULL)
        CASE(15, "stateVersion -1", m->state_version = -1)
        CASE(16, "stateVersion absent -1", (m->state_version = -1, m->has_state_version = false))
        CASE(17, "madeAt not a date-time", m->made_at = "2026-13-24T10:00:00Z")
        CASE(18, "madeAt too short", m->made_at = "2026-11-24T10:00Z")
        CASE(19, "madeAt offset", m->made_at = "2026-11-24T10:00:00.123+02:00")
    default:
        return false;
    }
#undef CASE
}

START_TEST(each_rule_is_checked_on_the_struct)
{
    const char *what = NULL;
    int n = 0;
    for (int i = 0;; i++) {
        game_move_made_v1 m = base_move();
        if (!mutate(i, &m, &what))
            break;
        AGREE(game_move_made_v1, &m, true, what);
        n++;
    }
    ck_assert_int_eq(n, 20);
}
END_TEST

/* random strings over an alphabet that reaches every rule: hex, dashes, multibyte, invalid */
static const char *pieces[] = {"0", "7", "a", "F", "g", "-", "e", "2", "\xc3\xa9", "\xe2\x82\xac",
                               "\xf0\x9f\x98\x80", "\xff", "\xed\xa0\x80", "T", ":", "Z", " "};

static char *rnd_string(unsigned *seed, char *buf, size_t cap)
{
    int kind = rand_r(seed) % 4;
    if (kind == 0)
        return rand_r(seed) % 2 ? UID : TS;
    size_t n = (size_t)(rand_r(seed) % 45), o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rand_r(seed) % (sizeof pieces / sizeof *pieces)];
        size_t l = strlen(p);
        if (o + l + 1 >= cap)
            break;
        memcpy(buf + o, p, l);
        o += l;
    }
    buf[o] = '\0';
    if (kind == 1 && o < cap) /* mutate a valid uuid or timestamp by one byte */
        return (snprintf(buf, cap, "%s", rand_r(seed) % 2 ? UID : TS),
                buf[rand_r(seed) % strlen(buf)] = pieces[rand_r(seed) % 8][0], buf);
    return buf;
}

START_TEST(random_moves_agree_with_the_json_path)
{
    unsigned seed = 12345;
    char b[6][200];
    int fast = 0;
    for (int it = 0; it < 20000; it++) {
        game_move_made_v1 m = base_move();
        switch (rand_r(&seed) % 6) {
        case 0: m.game_id = rnd_string(&seed, b[0], sizeof b[0]); break;
        case 1: m.player_id = rnd_string(&seed, b[1], sizeof b[1]); break;
        case 2: m.move.notation = rnd_string(&seed, b[2], sizeof b[2]); break;
        case 3: m.move.from = rnd_string(&seed, b[3], 12); break;
        case 4: m.made_at = rnd_string(&seed, b[4], sizeof b[4]); break;
        default:
            m.move_number = (int64_t)(rand_r(&seed) % 5) - 2;
            m.state_version = (int64_t)(rand_r(&seed) % 5) - 2;
            m.has_state_version = rand_r(&seed) % 2;
            m.move.has_to = rand_r(&seed) % 2;
        }
        AGREE(game_move_made_v1, &m, true, "random move");
        fast += game_move_made_v1__fast_valid(&m);
    }
    ck_assert_int_gt(fast, 2000); /* the valid share was reached, not only the invalid one */
}
END_TEST

START_TEST(arrays_enums_and_optional_members)
{
    char *players[] = {UID, UID2, UID};
    game_created_v1 g = {.game_id = UID,
                         .game_type = GAME_CREATED_V1_GAME_TYPE_CHESS,
                         .created_by = UID,
                         .n_players = 2,
                         .players = players,
                         .settings = {.time_control_seconds = 600, .rated = true},
                         .created_at = TS};
    AGREE(game_created_v1, &g, true, "no stake");
    ck_assert(game_created_v1__fast_valid(&g));
    g.n_players = 3; /* duplicate: uniqueItems */
    AGREE(game_created_v1, &g, true, "duplicate player");
    ck_assert(!game_created_v1__fast_valid(&g));
    g.n_players = 0; /* minItems 1 */
    AGREE(game_created_v1, &g, true, "no players");
    g.n_players = 1;
    g.game_type = (game_created_v1_game_type)99; /* not a constant: written as null */
    AGREE(game_created_v1, &g, true, "enum out of range");
    ck_assert(!game_created_v1__fast_valid(&g));
    g.game_type = GAME_CREATED_V1_GAME_TYPE_CONNECT4;
    g.settings.time_control_seconds = 86401; /* maximum */
    AGREE(game_created_v1, &g, true, "time control");
    g.settings.time_control_seconds = 86400;
    g.has_stake = true;
    g.stake = (game_created_v1_stake){.amount = -1, .currency = "CHP"};
    AGREE(game_created_v1, &g, true, "negative stake");
    g.stake.amount = 9007199254740992LL; /* maximum 2^53 - 1 */
    AGREE(game_created_v1, &g, true, "stake past 2^53");
    g.stake.amount = 9007199254740991LL;
    g.stake.currency = "chp";
    AGREE(game_created_v1, &g, true, "currency pattern");
    g.stake.currency = "CHP";
    ck_assert(game_created_v1__fast_valid(&g));

    /* minProperties 1 on changes; a null avatar leaves it to the JSON path */
    user_profile_updated_v1 p = {.user_id = UID, .updated_at = TS};
    AGREE(user_profile_updated_v1, &p, true, "no changes");
    ck_assert(!user_profile_updated_v1__fast_valid(&p));
    p.changes.has_avatar_url = true;
    p.changes.avatar_url_is_null = true;
    AGREE(user_profile_updated_v1, &p, false, "null avatar");
    ck_assert_int_eq(SLOW(user_profile_updated_v1, &p), 1);
    p.changes.avatar_url_is_null = false;
    p.changes.avatar_url = "https://example.com/a.png";
    AGREE(user_profile_updated_v1, &p, true, "avatar");
    ck_assert(user_profile_updated_v1__fast_valid(&p));
    p.changes.has_country = true;
    p.changes.country = "D";
    AGREE(user_profile_updated_v1, &p, true, "country");
}
END_TEST

START_TEST(utf8_validity_matches_jansson)
{
    const char *cases[] = {"", "a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                           "\xf4\x90\x80\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf",
                           "\xed\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xf0\x8f\xbf\xbf",
                           "\xf5\x80\x80\x80", "\x80", "\xc3", "\xe2\x82", "abcdefgh\xc3\xa9",
                           "abcdefghi\xff", "\xff" "abcdefgh"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *j = json_string(cases[i]);
        ck_assert_msg(tb_utf8_valid(cases[i], strlen(cases[i])) == (j != NULL), "case %zu", i);
        json_decref(j);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("structcheck");
    TCase *tc = tcase_create("structcheck");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, valid_data_takes_the_fast_path);
    tcase_add_test(tc, each_rule_is_checked_on_the_struct);
    tcase_add_test(tc, random_moves_agree_with_the_json_path);
    tcase_add_test(tc, arrays_enums_and_optional_members);
    tcase_add_test(tc, utf8_validity_matches_jansson);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
