/*
 * Contract tests of the Game State service (openapi/game_state.yaml, OpenAPI 3.0): the real
 * game_state_service process, calling the real user_service through the generated User client,
 * driven through its own generated client and plain HTTP, with the shared brokers
 * (scripts/with-brokers.sh) for its events. With TB_CONTRACT_PRISM=1 its traffic goes through a
 * Stoplight Prism validating proxy, and any response violation fails the test.
 */
#include "harness.h"
#include "events/events.h"
#include "game_state/game_state.h"
#include "user/user.h"

#include "tablium/client.h"
#include "tablium/ctx.h"
#include "tablium/events.h"
#include "tablium/ids.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static th_service user_svc = {.name = "user", .prism_port = -1}; /* a dependency, not under test */
static th_service gs_svc = {.name = "game_state"};
static game_state_client *gc;
static user_client *uc;
static tb_arena *arena;
static tb_ctx ctx;

/* ---- helpers ---- */

static void url(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "%s%s", gs_svc.url, path);
}

/* A user the User service knows (a new one each call): its id, in the suite's arena. */
static const char *make_user_at(user_client *c)
{
    static int serial;
    char uname[40], email[80];
    snprintf(uname, sizeof uname, "gs_%d_%d", (int)getpid() % 100000, ++serial);
    snprintf(email, sizeof email, "%s@example.com", uname);
    user_create_user_req req = {.body = {.username = uname, .email = email}};
    user_create_user_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(user_create_user_call(c, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 201);
    tb_error_deinit(&err);
    return out.s201.id;
}

static const char *make_user(void)
{
    return make_user_at(uc);
}

/* A uuid nobody uses. */
static const char *stranger(void)
{
    char *id = tb_arena_alloc(arena, 37);
    tb_uuid_new(id);
    return id;
}

static game_state_create_game_resp create_game_at(game_state_client *c, const char *user,
                                                  const char *key)
{
    tb_error err = TB_ERROR_INIT;
    game_state_create_game_req req = {.has_idempotency_key = key != NULL,
                                      .idempotency_key = (char *)key,
                                      .body = {.user_id = (char *)user}};
    game_state_create_game_resp out;
    ck_assert_msg(game_state_create_game_call(c, &ctx, &req, &out, &err) == 0, "createGame: %s",
                  err.message);
    tb_error_deinit(&err);
    return out;
}

static game_state_join_game_resp join_game_at(game_state_client *c, const char *game,
                                              const char *user)
{
    tb_error err = TB_ERROR_INIT;
    game_state_join_game_req req = {.game_id = (char *)game, .body = {.user_id = (char *)user}};
    game_state_join_game_resp out;
    ck_assert_msg(game_state_join_game_call(c, &ctx, &req, &out, &err) == 0, "joinGame: %s",
                  err.message);
    tb_error_deinit(&err);
    return out;
}

static game_state_make_move_resp move_at(game_state_client *c, const char *game,
                                         const char *player, int64_t column, int64_t version)
{
    tb_error err = TB_ERROR_INIT;
    game_state_make_move_req req = {
        .game_id = (char *)game,
        .body = {.player_id = (char *)player, .column = column, .expected_version = version}};
    game_state_make_move_resp out;
    ck_assert_msg(game_state_make_move_call(c, &ctx, &req, &out, &err) == 0, "makeMove: %s",
                  err.message);
    tb_error_deinit(&err);
    return out;
}

static game_state_get_game_resp get_game_at(game_state_client *c, const char *game)
{
    tb_error err = TB_ERROR_INIT;
    game_state_get_game_req req = {.game_id = (char *)game};
    game_state_get_game_resp out;
    ck_assert_msg(game_state_get_game_call(c, &ctx, &req, &out, &err) == 0, "getGame: %s",
                  err.message);
    tb_error_deinit(&err);
    return out;
}

#define create_game(user, key) create_game_at(gc, user, key)
#define join_game(game, user) join_game_at(gc, game, user)
#define move(game, player, column, version) move_at(gc, game, player, column, version)
#define get_game(game) get_game_at(gc, game)

/* The cell's mark ("X", "O") or NULL for an empty one. */
static const char *cell(const game_state_game *g, int row, int col)
{
    ck_assert_uint_eq(g->n_board, 6);
    ck_assert_uint_eq(g->board[row].n, 7);
    const game_state_cell *v = g->board[row].items[col]; /* NULL: null */
    if (!v)
        return NULL;
    ck_assert_msg(*v == GAME_STATE_CELL_X || *v == GAME_STATE_CELL_O, "cell (%d,%d) is %d", row,
                  col, (int)*v);
    return game_state_cell_to_string(*v);
}

/* The board as 42 characters (".XO", row 0 first), for comparing whole boards. */
static void board_text(const game_state_game *g, char out[43])
{
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 7; c++) {
            const char *m = cell(g, r, c);
            out[r * 7 + c] = m ? m[0] : '.';
        }
    out[42] = '\0';
}

/* Two players and an active game between them: x created it (X), o joined (O). */
typedef struct match {
    const char *x, *o, *id;
    int64_t version;
} match;

static match start_match_at(game_state_client *c, user_client *users)
{
    match m = {.x = make_user_at(users), .o = make_user_at(users)};
    game_state_create_game_resp cr = create_game_at(c, m.x, NULL);
    ck_assert_int_eq(cr.status, 201);
    m.id = cr.s201.id;
    game_state_join_game_resp jr = join_game_at(c, m.id, m.o);
    ck_assert_int_eq(jr.status, 200);
    ck_assert_int_eq(jr.s200.version, 2);
    m.version = jr.s200.version;
    return m;
}

static match start_match(void)
{
    return start_match_at(gc, uc);
}

/* Plays cols alternately (X first), each at the version the previous answer gave; every move
 * must be 200. The last answer's game. */
static game_state_game play(match *m, const int *cols, size_t n)
{
    game_state_game last = {0};
    for (size_t i = 0; i < n; i++) {
        const char *who = i % 2 ? m->o : m->x;
        game_state_make_move_resp r = move(m->id, who, cols[i], m->version);
        ck_assert_msg(r.status == 200, "move %zu (column %d): %d %s", i + 1, cols[i], r.status,
                      r.status == 200 ? "" : r.s409.code);
        ck_assert_int_eq(r.s200.version, m->version + 1);
        ck_assert_int_eq(r.s200.moves, (int64_t)i + 1);
        ck_assert(!r.s200.last_move_is_null);
        ck_assert_str_eq(r.s200.last_move.player_id, who);
        ck_assert_int_eq(r.s200.last_move.column, cols[i]);
        ck_assert_int_eq(r.s200.last_move.move_number, (int64_t)i + 1);
        ck_assert_int_eq(r.s200.last_move.mark, i % 2 ? GAME_STATE_MARK_O : GAME_STATE_MARK_X);
        ck_assert_str_eq(cell(&r.s200, (int)r.s200.last_move.row, cols[i]), i % 2 ? "O" : "X");
        if (i + 1 < n) {
            ck_assert_int_eq(r.s200.status, GAME_STATE_GAME_STATUS_ACTIVE);
            ck_assert(!r.s200.turn_is_null);
            ck_assert_str_eq(r.s200.turn, i % 2 ? m->x : m->o);
        }
        m->version = r.s200.version;
        last = r.s200;
    }
    return last;
}

/* Asserts g is won by winner with these four cells. */
static void assert_won(const game_state_game *g, const char *winner, const int cells[4][2])
{
    ck_assert_int_eq(g->status, GAME_STATE_GAME_STATUS_WON);
    ck_assert(!g->winner_is_null);
    ck_assert_str_eq(g->winner, winner);
    ck_assert(g->turn_is_null);
    ck_assert(!g->winning_cells_is_null);
    ck_assert_uint_eq(g->n_winning_cells, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(g->winning_cells[i].row == cells[i][0] &&
                          g->winning_cells[i].column == cells[i][1],
                      "winning cell %d: (%lld,%lld), want (%d,%d)", i,
                      (long long)g->winning_cells[i].row, (long long)g->winning_cells[i].column,
                      cells[i][0], cells[i][1]);
    const char *mark = strcmp(winner, g->players[0]) == 0 ? "X" : "O";
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(cell(g, cells[i][0], cells[i][1]), mark);
}

/* A full board without four (21 discs each); every move legal, none ends the game early. */
static const int DRAW[] = {1, 0, 0, 0, 0, 0, 0, 1, 2, 1, 1, 1, 1, 2, 2, 4, 2, 2, 3, 2, 3,
                           3, 4, 3, 3, 3, 6, 4, 4, 5, 5, 4, 5, 6, 5, 5, 4, 5, 6, 6, 6, 6};

/* ---- events: a consumer of every game event, on the shared brokers ---- */

typedef struct seen_event {
    char type[40], game[37], producer[64];
    json_t *data;
} seen_event;

static struct {
    pthread_mutex_t mu;
    seen_event v[2048];
    size_t n;
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
static tb_bus *watcher;

static int on_game_event(tb_ctx *c, const tb_event *ev, void *user)
{
    (void)c;
    (void)user;
    pthread_mutex_lock(&seen.mu);
    if (seen.n < N(seen.v)) {
        seen_event *s = &seen.v[seen.n++];
        snprintf(s->type, sizeof s->type, "%s", ev->type);
        snprintf(s->game, sizeof s->game, "%s",
                 json_string_value(json_object_get(ev->data, "gameId")));
        snprintf(s->producer, sizeof s->producer, "%s", ev->producer ? ev->producer : "");
        s->data = json_deep_copy(ev->data);
    }
    pthread_mutex_unlock(&seen.mu);
    return TB_EVENT_ACK;
}

/* Starts the watcher before the services: RabbitMQ keeps only what reaches a bound queue, Redis
 * only what a subscriber hears. NULL (no events checked) without the brokers. */
static void watcher_start(void)
{
    const char *amqp = getenv("TB_TEST_AMQP_URL"), *redis = getenv("TB_TEST_REDIS_URL");
    if (!amqp || !redis)
        return;
    char data[256], svcname[64], id[33];
    th_tmpdir(data, sizeof data);
    setenv("TB_DATA_DIR", data, 1);
    tb_request_id_new(id);
    snprintf(svcname, sizeof svcname, "game-state-watcher-%.8s", id);
    tb_error err = TB_ERROR_INIT;
    tb_bus_opts bo = {.service = svcname, .amqp_url = amqp, .redis_url = redis};
    watcher = tb_bus_new(&bo, &err);
    ck_assert_msg(watcher != NULL, "%s", err.message);
    const tb_event_type *types[] = {&game_created_v1_event, &game_started_v1_event,
                                    &game_move_made_v1_event, &game_completed_v1_event};
    for (size_t i = 0; i < N(types); i++)
        ck_assert_int_eq(tb_bus_subscribe(watcher, types[i], on_game_event, NULL, &err), 0);
    ck_assert_msg(tb_bus_start(watcher, &err) == 0, "%s", err.message);
    tb_error_deinit(&err);
}

/* Waits (timeout_ms at most) until `want` events of type for game arrived; copies of the first
 * `want` in arrival order into out (the caller decrefs them) and the producer of the last one
 * copied into producer (may be NULL). Returns how many arrived (may exceed want). */
static size_t events_within(const char *type, const char *game, size_t want, json_t **out,
                            char producer[64], int timeout_ms)
{
    size_t n = 0;
    for (int waited = 0;; waited += 20) {
        n = 0;
        pthread_mutex_lock(&seen.mu);
        for (size_t i = 0; i < seen.n; i++)
            if (strcmp(seen.v[i].type, type) == 0 && strcmp(seen.v[i].game, game) == 0) {
                if (n < want) {
                    out[n] = json_incref(seen.v[i].data);
                    if (producer)
                        snprintf(producer, 64, "%s", seen.v[i].producer);
                }
                n++;
            }
        pthread_mutex_unlock(&seen.mu);
        if (n >= want || waited >= timeout_ms)
            return n;
        for (size_t i = 0; i < n; i++)
            json_decref(out[i]);
        usleep(20 * 1000);
    }
}

static size_t events_of(const char *type, const char *game, size_t want, json_t **out,
                        char producer[64])
{
    return events_within(type, game, want, out, producer, 10000);
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* ---- the operations through the generated client ---- */

START_TEST(health_answers_ok_through_the_client)
{
    game_state_get_health_req req = {0};
    game_state_get_health_resp out;
    ck_assert_int_eq(game_state_get_health_call(gc, &ctx, &req, &out, NULL), 0);
    ck_assert_int_eq(out.status, 200);
    ck_assert_int_eq(out.s200.status, COMMON_HEALTH_STATUS_OK);
}
END_TEST

START_TEST(create_join_and_get_a_game)
{
    const char *x = make_user(), *o = make_user();
    game_state_create_game_resp cr = create_game(x, NULL);
    ck_assert_int_eq(cr.status, 201);
    const game_state_game *g = &cr.s201;
    ck_assert_int_eq(g->status, GAME_STATE_GAME_STATUS_WAITING);
    ck_assert_uint_eq(g->n_players, 1);
    ck_assert_str_eq(g->players[0], x);
    ck_assert_int_eq(g->version, 1);
    ck_assert_int_eq(g->moves, 0); /* 0 is sent, not dropped */
    ck_assert(g->turn_is_null);
    ck_assert(g->winner_is_null);
    ck_assert(g->winning_cells_is_null);
    ck_assert(g->last_move_is_null);
    char text[43];
    board_text(g, text);
    ck_assert_str_eq(text, "..........................................");
    ck_assert_ptr_nonnull(cr.headers.location);
    ck_assert_ptr_nonnull(strstr(cr.headers.location, g->id));
    ck_assert_ptr_null(cr.headers.idempotent_replayed);
    const char *id = g->id;

    game_state_get_game_resp gr = get_game(id);
    ck_assert_int_eq(gr.status, 200);
    ck_assert_int_eq(gr.s200.status, GAME_STATE_GAME_STATUS_WAITING);
    ck_assert_str_eq(gr.s200.created_at, g->created_at);

    game_state_join_game_resp jr = join_game(id, o);
    ck_assert_int_eq(jr.status, 200);
    ck_assert_int_eq(jr.s200.status, GAME_STATE_GAME_STATUS_ACTIVE);
    ck_assert_uint_eq(jr.s200.n_players, 2);
    ck_assert_str_eq(jr.s200.players[0], x);
    ck_assert_str_eq(jr.s200.players[1], o);
    ck_assert(!jr.s200.turn_is_null);
    ck_assert_str_eq(jr.s200.turn, x); /* the creator (X) moves first */
    ck_assert_int_eq(jr.s200.version, 2);

    gr = get_game(id);
    ck_assert_int_eq(gr.status, 200);
    ck_assert_int_eq(gr.s200.status, GAME_STATE_GAME_STATUS_ACTIVE);
    ck_assert_str_eq(gr.s200.turn, x);
    ck_assert_int_eq(gr.s200.version, 2);
    ck_assert_str_eq(gr.s200.players[1], o);

    /* the first move: X's disc lands at the bottom, O to move */
    game_state_make_move_resp mr = move(id, x, 3, 2);
    ck_assert_int_eq(mr.status, 200);
    ck_assert_str_eq(cell(&mr.s200, 5, 3), "X");
    ck_assert_ptr_null(cell(&mr.s200, 4, 3));
    ck_assert_int_eq(mr.s200.last_move.row, 5);
    ck_assert_str_eq(mr.s200.turn, o);
    ck_assert_int_eq(mr.s200.version, 3);
    mr = move(id, o, 3, 3); /* stacks on it */
    ck_assert_int_eq(mr.status, 200);
    ck_assert_str_eq(cell(&mr.s200, 4, 3), "O");
    ck_assert_int_eq(mr.s200.last_move.row, 4);
    gr = get_game(id);
    board_text(&gr.s200, text);
    ck_assert_str_eq(text, "..............................." "O......X...");
    ck_assert_int_eq(gr.s200.moves, 2);
    ck_assert_int_eq(gr.s200.version, 4);
}
END_TEST

START_TEST(unknown_game_is_404)
{
    const char *x = make_user();
    const char *nobody = stranger();
    game_state_get_game_resp gr = get_game(nobody);
    ck_assert_int_eq(gr.status, 404);
    ck_assert_str_eq(gr.s404.code, "not_found");
    game_state_join_game_resp jr = join_game(nobody, x);
    ck_assert_int_eq(jr.status, 404);
    ck_assert_str_eq(jr.s404.code, "not_found");
    game_state_make_move_resp mr = move(nobody, x, 0, 2);
    ck_assert_int_eq(mr.status, 404);
    ck_assert_str_eq(mr.s404.code, "not_found");
}
END_TEST

START_TEST(joining_twice_or_a_full_game_is_409)
{
    match m = start_match();
    game_state_join_game_resp jr = join_game(m.id, m.o); /* again */
    ck_assert_int_eq(jr.status, 409);
    ck_assert_str_eq(jr.s409.code, "already_joined");
    jr = join_game(m.id, m.x); /* the creator */
    ck_assert_int_eq(jr.status, 409);
    ck_assert_str_eq(jr.s409.code, "already_joined");
    jr = join_game(m.id, make_user()); /* a third player */
    ck_assert_int_eq(jr.status, 409);
    ck_assert_str_eq(jr.s409.code, "game_full");
    /* the creator joining their own waiting game */
    const char *x = make_user();
    game_state_create_game_resp cr = create_game(x, NULL);
    jr = join_game(cr.s201.id, x);
    ck_assert_int_eq(jr.status, 409);
    ck_assert_str_eq(jr.s409.code, "already_joined");
    game_state_get_game_resp gr = get_game(m.id); /* unchanged */
    ck_assert_int_eq(gr.s200.version, 2);
    ck_assert_str_eq(gr.s200.players[1], m.o);
}
END_TEST

START_TEST(users_the_user_service_does_not_know_are_422)
{
    game_state_create_game_resp cr = create_game(stranger(), NULL);
    ck_assert_int_eq(cr.status, 422);
    ck_assert_str_eq(cr.s422.code, "unknown_player");
    const char *x = make_user();
    cr = create_game(x, NULL);
    ck_assert_int_eq(cr.status, 201);
    game_state_join_game_resp jr = join_game(cr.s201.id, stranger());
    ck_assert_int_eq(jr.status, 422);
    ck_assert_str_eq(jr.s422.code, "unknown_player");
    game_state_get_game_resp gr = get_game(cr.s201.id);
    ck_assert_int_eq(gr.s200.status, GAME_STATE_GAME_STATUS_WAITING); /* nobody joined */
}
END_TEST

/* ---- full games ---- */

START_TEST(wins_in_each_direction)
{
    static const struct {
        const char *name;
        int cols[11];
        size_t n;
        int winner_o;
        int cells[4][2];
    } cases[] = {
        {"vertical", {0, 1, 0, 1, 0, 1, 0}, 7, 0, {{2, 0}, {3, 0}, {4, 0}, {5, 0}}},
        {"horizontal", {0, 0, 1, 1, 2, 2, 3}, 7, 0, {{5, 0}, {5, 1}, {5, 2}, {5, 3}}},
        {"rising diagonal", {0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3}, 11, 0,
         {{5, 0}, {4, 1}, {3, 2}, {2, 3}}},
        {"falling diagonal", {6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3}, 11, 0,
         {{2, 3}, {3, 4}, {4, 5}, {5, 6}}},
        {"horizontal by O", {0, 1, 0, 2, 0, 3, 6, 4}, 8, 1, {{5, 1}, {5, 2}, {5, 3}, {5, 4}}},
    };
    for (size_t i = 0; i < N(cases); i++) {
        match m = start_match();
        game_state_game g = play(&m, cases[i].cols, cases[i].n);
        const char *winner = cases[i].winner_o ? m.o : m.x;
        fprintf(stderr, "game-state: %s win in %zu moves, game %s\n", cases[i].name,
                cases[i].n, m.id);
        assert_won(&g, winner, cases[i].cells);
        ck_assert_int_eq(g.version, 2 + (int64_t)cases[i].n);
        /* the stored state says the same */
        game_state_get_game_resp gr = get_game(m.id);
        assert_won(&gr.s200, winner, cases[i].cells);
        ck_assert_int_eq(gr.s200.moves, (int64_t)cases[i].n);
        /* and the game is over for both players */
        const char *next = cases[i].n % 2 ? m.o : m.x;
        game_state_make_move_resp r = move(m.id, next, 6, m.version);
        ck_assert_int_eq(r.status, 409);
        ck_assert_str_eq(r.s409.code, "game_not_active");
    }
}
END_TEST

START_TEST(a_full_board_without_four_is_a_draw)
{
    match m = start_match();
    game_state_game g = play(&m, DRAW, N(DRAW));
    ck_assert_int_eq(g.status, GAME_STATE_GAME_STATUS_DRAW);
    ck_assert(g.winner_is_null);
    ck_assert(g.winning_cells_is_null);
    ck_assert(g.turn_is_null);
    ck_assert_int_eq(g.moves, 42);
    ck_assert_int_eq(g.version, 44);
    char text[43];
    board_text(&g, text);
    ck_assert_str_eq(text, "XXOOXOO" "OOOXOOX" "XXXOXXO" "OOXOOXX" "XOOXXXO" "OXXXOOX");
    game_state_make_move_resp r = move(m.id, m.x, 0, 44);
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "game_not_active");
    game_state_get_game_resp gr = get_game(m.id);
    ck_assert_int_eq(gr.s200.status, GAME_STATE_GAME_STATUS_DRAW);
    ck_assert_int_eq(gr.s200.version, 44);
}
END_TEST

/* ---- each rule, with its code ---- */

START_TEST(moves_before_the_second_player_joined_are_409_game_not_active)
{
    const char *x = make_user();
    game_state_create_game_resp cr = create_game(x, NULL);
    game_state_make_move_resp r = move(cr.s201.id, x, 3, 1);
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "game_not_active");
    ck_assert_ptr_nonnull(strstr(r.s409.message, "waiting"));
}
END_TEST

START_TEST(moving_out_of_turn_is_409_not_your_turn)
{
    match m = start_match();
    game_state_make_move_resp r = move(m.id, m.o, 3, m.version); /* X moves first */
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "not_your_turn");
    static const int one[] = {3};
    play(&m, one, 1);
    r = move(m.id, m.x, 3, m.version); /* X twice */
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "not_your_turn");
    game_state_get_game_resp gr = get_game(m.id);
    ck_assert_int_eq(gr.s200.moves, 1);
    ck_assert_int_eq(gr.s200.version, m.version);
}
END_TEST

START_TEST(a_full_column_is_422_column_full)
{
    match m = start_match();
    static const int six[] = {2, 2, 2, 2, 2, 2}; /* X O X O X O: no four */
    play(&m, six, N(six));
    game_state_make_move_resp r = move(m.id, m.x, 2, m.version);
    ck_assert_int_eq(r.status, 422);
    ck_assert_str_eq(r.s422.code, "column_full");
    game_state_get_game_resp gr = get_game(m.id);
    ck_assert_int_eq(gr.s200.version, m.version); /* nothing applied */
    ck_assert_str_eq(gr.s200.turn, m.x);
    r = move(m.id, m.x, 1, m.version); /* another column is fine */
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(someone_who_does_not_play_in_the_game_is_422_not_a_player)
{
    match m = start_match();
    game_state_make_move_resp r = move(m.id, make_user(), 0, m.version);
    ck_assert_int_eq(r.status, 422);
    ck_assert_str_eq(r.s422.code, "not_a_player");
}
END_TEST

START_TEST(a_column_outside_0_to_6_is_400_from_the_schema)
{
    match m = start_match();
    char u[256], path[128], body[256];
    snprintf(path, sizeof path, "/games/%s/moves", m.id);
    url(u, sizeof u, path);
    th_resp r;
    snprintf(body, sizeof body, "{\"playerId\":\"%s\",\"column\":7,\"expectedVersion\":2}", m.x);
    th_http(&r, "POST", u, body, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/column", "maximum");
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    snprintf(body, sizeof body, "{\"playerId\":\"%s\",\"column\":-1,\"expectedVersion\":2}", m.x);
    th_http(&r, "POST", u, body, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/column", "minimum");
    th_resp_free(&r);
    snprintf(body, sizeof body, "{\"playerId\":\"%s\",\"column\":2.5}", m.x);
    th_http(&r, "POST", u, body, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/column", "type");
    th_assert_error(&r, 400, "validation_failed", "/body/expectedVersion", "required");
    th_resp_free(&r);
    th_http(&r, "POST", u, "{\"playerId\":\"nope\",\"column\":1,\"expectedVersion\":2,\"x\":1}",
            NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body/playerId", "pattern");
    th_assert_error(&r, 400, "validation_failed", "/body/x", "additionalProperties");
    th_resp_free(&r);
    game_state_get_game_resp gr = get_game(m.id);
    ck_assert_int_eq(gr.s200.moves, 0);
    ck_assert_int_eq(gr.s200.version, 2);
}
END_TEST

/* ---- optimistic concurrency ---- */

START_TEST(a_stale_expected_version_is_409_version_conflict_with_the_current_version)
{
    match m = start_match();
    static const int two[] = {3, 4};
    play(&m, two, N(two)); /* version 4 */
    game_state_make_move_resp r = move(m.id, m.x, 0, 3); /* X saw version 3 */
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "version_conflict");
    ck_assert_uint_eq(r.s409.n_details, 1);
    ck_assert_str_eq(r.s409.details[0].path, "/body/expectedVersion");
    ck_assert_str_eq(r.s409.details[0].rule, "currentVersion");
    ck_assert_str_eq(r.s409.details[0].message, "4");
    r = move(m.id, m.x, 0, 5); /* from the future: the same */
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "version_conflict");
    ck_assert_str_eq(r.s409.details[0].message, "4");
    game_state_get_game_resp gr = get_game(m.id);
    ck_assert_int_eq(gr.s200.version, 4); /* nothing applied */
    ck_assert_int_eq(gr.s200.moves, 2);
    r = move(m.id, m.x, 0, 4); /* at the current version */
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.s200.version, 5);
    /* a retry of a move that was applied is a conflict, not a second move */
    r = move(m.id, m.x, 0, 4);
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "version_conflict");
    ck_assert_str_eq(r.s409.details[0].message, "5");
}
END_TEST

#define RACERS 8

typedef struct racer {
    const match *m;
    int column;
    pthread_barrier_t *go;
    int status;
    char code[40];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    tb_arena *a = tb_arena_new(0);
    tb_ctx cx;
    tb_ctx_init(&cx, a, NULL);
    tb_client_opts o = th_client_opts();
    game_state_client *cl = game_state_client_new(gs_svc.url, &o, NULL);
    game_state_make_move_req req = {
        .game_id = (char *)r->m->id,
        .body = {.player_id = (char *)r->m->x, .column = r->column,
                 .expected_version = r->m->version}};
    game_state_make_move_resp out;
    pthread_barrier_wait(r->go);
    if (game_state_make_move_call(cl, &cx, &req, &out, NULL) == 0) {
        r->status = out.status;
        if (out.status == 409)
            snprintf(r->code, sizeof r->code, "%s", out.s409.code);
    }
    game_state_client_free(cl);
    tb_arena_free(a);
    return NULL;
}

START_TEST(concurrent_moves_at_one_version_apply_exactly_one)
{
    match m = start_match();
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    pthread_t t[RACERS];
    racer r[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){.m = &m, .column = i % 7, .go = &go};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    int ok = 0, conflicts = 0, winner = -1;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        if (r[i].status == 200) {
            ok++;
            winner = i;
        } else if (r[i].status == 409 && strcmp(r[i].code, "version_conflict") == 0) {
            conflicts++;
        }
    }
    pthread_barrier_destroy(&go);
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(conflicts, RACERS - 1);
    game_state_get_game_resp gr = get_game(m.id);
    ck_assert_int_eq(gr.s200.moves, 1);
    ck_assert_int_eq(gr.s200.version, 3);
    ck_assert_int_eq(gr.s200.last_move.column, r[winner].column);
}
END_TEST

/* ---- Idempotency-Key ---- */

START_TEST(idempotency_key_replays_the_created_game_and_refuses_another_user)
{
    const char *x = make_user();
    char key[64];
    snprintf(key, sizeof key, "create-%s", stranger());
    game_state_create_game_resp a = create_game(x, key);
    ck_assert_int_eq(a.status, 201);
    ck_assert_ptr_null(a.headers.idempotent_replayed);
    game_state_create_game_resp b = create_game(x, key);
    ck_assert_int_eq(b.status, 201);
    ck_assert_str_eq(b.s201.id, a.s201.id);
    ck_assert_str_eq(b.headers.idempotent_replayed, "true");
    game_state_create_game_resp c = create_game(make_user(), key);
    ck_assert_int_eq(c.status, 422);
    ck_assert_str_eq(c.s422.code, "idempotency_key_reused");
    /* one game exists for x */
    game_state_list_games_req lr = {.has_player_id = true, .player_id = (char *)x};
    game_state_list_games_resp lo;
    ck_assert_int_eq(game_state_list_games_call(gc, &ctx, &lr, &lo, NULL), 0);
    ck_assert_int_eq(lo.status, 200);
    ck_assert_uint_eq(lo.s200.n, 1);
    /* a replay after the game started answers its current state */
    const char *o = make_user();
    ck_assert_int_eq(join_game(a.s201.id, o).status, 200);
    b = create_game(x, key);
    ck_assert_int_eq(b.status, 201);
    ck_assert_int_eq(b.s201.status, GAME_STATE_GAME_STATUS_ACTIVE);
    ck_assert_int_eq(b.s201.version, 2);
}
END_TEST

START_TEST(list_games_filters_by_player_and_status_newest_first)
{
    const char *x = make_user(), *o = make_user();
    game_state_create_game_resp g1 = create_game(x, NULL), g2 = create_game(x, NULL);
    game_state_create_game_resp g3 = create_game(o, NULL);
    ck_assert_int_eq(join_game(g3.s201.id, x).status, 200); /* x plays O in g3 */
    game_state_list_games_req lr = {.has_player_id = true, .player_id = (char *)x};
    game_state_list_games_resp lo;
    ck_assert_int_eq(game_state_list_games_call(gc, &ctx, &lr, &lo, NULL), 0);
    ck_assert_int_eq(lo.status, 200);
    ck_assert_uint_eq(lo.s200.n, 3);
    ck_assert_str_eq(lo.s200.items[0].id, g3.s201.id);
    ck_assert_str_eq(lo.s200.items[1].id, g2.s201.id);
    ck_assert_str_eq(lo.s200.items[2].id, g1.s201.id);
    lr.has_status = true;
    lr.status = GAME_STATE_GAME_STATUS_WAITING;
    ck_assert_int_eq(game_state_list_games_call(gc, &ctx, &lr, &lo, NULL), 0);
    ck_assert_uint_eq(lo.s200.n, 2);
    lr.has_limit = true;
    lr.limit = 1;
    ck_assert_int_eq(game_state_list_games_call(gc, &ctx, &lr, &lo, NULL), 0);
    ck_assert_uint_eq(lo.s200.n, 1);
    ck_assert_str_eq(lo.s200.items[0].id, g2.s201.id);
    game_state_list_games_req none = {.has_player_id = true, .player_id = (char *)stranger()};
    ck_assert_int_eq(game_state_list_games_call(gc, &ctx, &none, &lo, NULL), 0);
    ck_assert_int_eq(lo.status, 200);
    ck_assert_uint_eq(lo.s200.n, 0);
    char u[256];
    th_resp r;
    url(u, sizeof u, "/games?limit=0&status=over");
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/query/limit", "minimum");
    th_assert_error(&r, 400, "validation_failed", "/query/status", "enum");
    th_resp_free(&r);
}
END_TEST

/* ---- state survives the process ---- */

START_TEST(state_survives_a_sigkill_and_a_restart)
{
    th_service s = {.name = "game_state", .prism_port = -1};
    static char uenv[120];
    snprintf(uenv, sizeof uenv, "USER_SERVICE_URL=%s", user_svc.direct);
    const char *env[] = {uenv, NULL};
    th_start(&s, env);
    tb_client_opts o = th_client_opts();
    game_state_client *c = game_state_client_new(s.direct, &o, NULL);
    match m = start_match_at(c, uc);
    static const int some[] = {3, 3, 4, 2, 5};
    for (size_t i = 0; i < N(some); i++) {
        game_state_make_move_resp r = move_at(c, m.id, i % 2 ? m.o : m.x, some[i], m.version);
        ck_assert_int_eq(r.status, 200);
        m.version = r.s200.version;
    }
    game_state_get_game_resp before = get_game_at(c, m.id);
    ck_assert_int_eq(before.status, 200);
    char board_before[43], board_after[43];
    board_text(&before.s200, board_before);
    pid_t old = s.pid;
    th_kill(&s); /* SIGKILL by PID: no shutdown code runs */
    th_start(&s, env); /* same folder, same port */
    ck_assert_int_ne(s.pid, old);
    game_state_get_game_resp after = get_game_at(c, m.id);
    ck_assert_int_eq(after.status, 200);
    board_text(&after.s200, board_after);
    ck_assert_str_eq(board_after, board_before);
    ck_assert_int_eq(after.s200.version, before.s200.version);
    ck_assert_int_eq(after.s200.version, 7);
    ck_assert_int_eq(after.s200.moves, 5);
    ck_assert_int_eq(after.s200.status, GAME_STATE_GAME_STATUS_ACTIVE);
    ck_assert_str_eq(after.s200.turn, m.o);
    ck_assert_str_eq(after.s200.last_move.player_id, m.x);
    ck_assert_int_eq(after.s200.last_move.column, 5);
    ck_assert_str_eq(after.s200.updated_at, before.s200.updated_at);
    /* and the game goes on from there */
    game_state_make_move_resp r = move_at(c, m.id, m.o, 6, 7);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.s200.version, 8);
    r = move_at(c, m.id, m.o, 6, 8);
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(r.s409.code, "not_your_turn");
    game_state_client_free(c);
    ck_assert_int_eq(th_stop(&s), 0);
    th_cleanup(&s);
}
END_TEST

/* ---- events ---- */

START_TEST(a_game_publishes_created_started_each_move_and_completed)
{
    ck_assert_msg(watcher, "TB_TEST_AMQP_URL/TB_TEST_REDIS_URL are not set: run under "
                           "scripts/with-brokers.sh");
    static const int seq[] = {0, 1, 0, 1, 0, 1, 0}; /* X wins vertically with move 7 */
    match m = start_match();
    play(&m, seq, N(seq));
    json_t *ev[8];
    char producer[64];

    ck_assert_uint_eq(events_of("game.created", m.id, 1, ev, producer), 1);
    ck_assert_str_eq(producer, "game-state-service");
    ck_assert_str_eq(jstr(ev[0], "gameType"), "connect4");
    ck_assert_str_eq(jstr(ev[0], "createdBy"), m.x);
    ck_assert_uint_eq(json_array_size(json_object_get(ev[0], "players")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(ev[0], "players"), 0)),
                     m.x);
    ck_assert(json_is_false(json_object_get(json_object_get(ev[0], "settings"), "rated")));
    json_decref(ev[0]);

    ck_assert_uint_eq(events_of("game.started", m.id, 1, ev, producer), 1);
    ck_assert_str_eq(producer, "game-state-service");
    ck_assert_str_eq(jstr(ev[0], "firstTurn"), m.x);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(ev[0], "players"), 1)),
                     m.o);
    json_decref(ev[0]);

    ck_assert_uint_eq(events_of("game.move.made", m.id, N(seq), ev, producer), N(seq));
    ck_assert_str_eq(producer, "game-state-service");
    for (size_t i = 0; i < N(seq); i++) { /* one ordered stream per game */
        ck_assert_int_eq(jint(ev[i], "moveNumber"), (json_int_t)i + 1);
        ck_assert_int_eq(jint(ev[i], "stateVersion"), (json_int_t)i + 3);
        ck_assert_str_eq(jstr(ev[i], "playerId"), i % 2 ? m.o : m.x);
        char notation[4];
        snprintf(notation, sizeof notation, "%d", seq[i]);
        ck_assert_str_eq(jstr(json_object_get(ev[i], "move"), "notation"), notation);
        json_decref(ev[i]);
    }
    ck_assert_uint_eq(events_of("game.move.made", m.id, N(seq), ev, NULL), N(seq));
    ck_assert_str_eq(jstr(json_object_get(ev[6], "move"), "to"), "r2c0"); /* the 4th X in col 0 */
    for (size_t i = 0; i < N(seq); i++)
        json_decref(ev[i]);

    ck_assert_uint_eq(events_of("game.completed", m.id, 1, ev, producer), 1);
    ck_assert_str_eq(producer, "game-state-service");
    ck_assert_str_eq(jstr(ev[0], "outcome"), "win");
    ck_assert_str_eq(jstr(ev[0], "winnerId"), m.x);
    json_t *scores = json_object_get(ev[0], "scores");
    ck_assert_uint_eq(json_array_size(scores), 2);
    ck_assert_str_eq(jstr(json_array_get(scores, 0), "playerId"), m.x);
    ck_assert_int_eq(jint(json_array_get(scores, 0), "score"), 2);
    ck_assert_str_eq(jstr(json_array_get(scores, 1), "playerId"), m.o);
    ck_assert_int_eq(jint(json_array_get(scores, 1), "score"), 0);
    ck_assert(jint(ev[0], "durationMs") >= 0);
    json_decref(ev[0]);
    usleep(300 * 1000); /* nothing more arrives: one of each */
    ck_assert_uint_eq(events_of("game.completed", m.id, 1, ev, NULL), 1);
    json_decref(ev[0]);
    ck_assert_uint_eq(events_of("game.created", m.id, 1, ev, NULL), 1);
    json_decref(ev[0]);
    ck_assert_uint_eq(events_of("game.started", m.id, 1, ev, NULL), 1);
    json_decref(ev[0]);
}
END_TEST

START_TEST(a_drawn_game_publishes_completed_with_outcome_draw)
{
    ck_assert_msg(watcher, "TB_TEST_AMQP_URL/TB_TEST_REDIS_URL are not set: run under "
                           "scripts/with-brokers.sh");
    match m = start_match();
    play(&m, DRAW, N(DRAW));
    json_t *ev[1];
    ck_assert_uint_eq(events_of("game.completed", m.id, 1, ev, NULL), 1);
    ck_assert_str_eq(jstr(ev[0], "outcome"), "draw");
    ck_assert(json_is_null(json_object_get(ev[0], "winnerId")));
    json_t *scores = json_object_get(ev[0], "scores");
    ck_assert_int_eq(jint(json_array_get(scores, 0), "score"), 1);
    ck_assert_int_eq(jint(json_array_get(scores, 1), "score"), 1);
    json_decref(ev[0]);
    json_t *moves[42];
    ck_assert_uint_eq(events_of("game.move.made", m.id, 42, moves, NULL), 42);
    ck_assert_int_eq(jint(moves[41], "moveNumber"), 42);
    ck_assert_int_eq(jint(moves[41], "stateVersion"), 44);
    for (size_t i = 0; i < 42; i++)
        json_decref(moves[i]);
}
END_TEST

START_TEST(refused_requests_publish_nothing)
{
    ck_assert_msg(watcher, "TB_TEST_AMQP_URL/TB_TEST_REDIS_URL are not set: run under "
                           "scripts/with-brokers.sh");
    match m = start_match();
    ck_assert_int_eq(move(m.id, m.o, 0, m.version).status, 409); /* not O's turn */
    ck_assert_int_eq(move(m.id, m.x, 0, m.version + 1).status, 409); /* stale */
    ck_assert_int_eq(join_game(m.id, make_user()).status, 409); /* full */
    static const int one[] = {5};
    play(&m, one, 1); /* one real move, after the refused ones */
    json_t *ev[2];
    ck_assert_uint_eq(events_of("game.move.made", m.id, 1, ev, NULL), 1);
    ck_assert_int_eq(jint(ev[0], "moveNumber"), 1);
    json_decref(ev[0]);
    /* none more within a second: the refused requests published nothing */
    size_t n = events_within("game.move.made", m.id, 2, ev, NULL, 1000);
    for (size_t i = 0; i < n && i < 2; i++)
        json_decref(ev[i]);
    ck_assert_uint_eq(n, 1);
    n = events_within("game.started", m.id, 2, ev, NULL, 1000);
    for (size_t i = 0; i < n && i < 2; i++)
        json_decref(ev[i]);
    ck_assert_uint_eq(n, 1);
}
END_TEST

/* ---- the User service down ---- */

START_TEST(user_service_down_is_502_upstream_failed_and_games_go_on_without_it)
{
    th_service us = {.name = "user", .prism_port = -1};
    static char wenv[96];
    snprintf(wenv, sizeof wenv, "WALLET_SERVICE_URL=http://127.0.0.1:%d", th_free_port());
    const char *uenv[] = {wenv, NULL};
    th_start(&us, uenv);
    th_service gs = {.name = "game_state", .prism_port = -1};
    static char genv[120];
    snprintf(genv, sizeof genv, "USER_SERVICE_URL=%s", us.direct);
    const char *env[] = {genv, "TB_USER_BREAKER_WAIT_DURATION_IN_OPEN_STATE_MS=1000", NULL};
    th_start(&gs, env);
    tb_client_opts o = th_client_opts();
    game_state_client *c = game_state_client_new(gs.direct, &o, NULL);
    user_client *u = user_client_new(us.direct, &o, NULL);
    match m = start_match_at(c, u);
    const char *x = make_user_at(u), *y = make_user_at(u);
    game_state_create_game_resp waiting = create_game_at(c, x, NULL);
    ck_assert_int_eq(waiting.status, 201);

    th_kill(&us);
    game_state_join_game_resp jr = join_game_at(c, waiting.s201.id, y);
    ck_assert_int_eq(jr.status, 502);
    ck_assert_str_eq(jr.s502.code, "upstream_failed");
    ck_assert_ptr_null(strstr(jr.s502.message, "127.0.0.1")); /* no URL leaked */
    game_state_create_game_resp cr = create_game_at(c, x, NULL);
    ck_assert_int_eq(cr.status, 502);
    /* upstream_unavailable once the breaker on User opened */
    ck_assert_msg(strcmp(cr.s502.code, "upstream_failed") == 0 ||
                      strcmp(cr.s502.code, "upstream_unavailable") == 0,
                  "%s", cr.s502.code);
    /* what needs no User still works: reading and playing */
    game_state_get_game_resp gr = get_game_at(c, waiting.s201.id);
    ck_assert_int_eq(gr.status, 200);
    ck_assert_int_eq(gr.s200.status, GAME_STATE_GAME_STATUS_WAITING); /* the 502 joined nobody */
    game_state_make_move_resp mr = move_at(c, m.id, m.x, 3, m.version);
    ck_assert_int_eq(mr.status, 200);

    th_start(&us, uenv); /* same port, same data */
    /* Game State's breaker on User may have opened meanwhile, and so may this client's on
     * Game State (its 502s count as failures): calls fail fast until the open wait ends */
    int status = 0;
    game_state_join_game_req jq = {.game_id = waiting.s201.id, .body = {.user_id = (char *)y}};
    for (int i = 0; i < 150 && status != 200; i++) {
        int rc = game_state_join_game_call(c, &ctx, &jq, &jr, NULL);
        ck_assert_msg(rc == 0 || rc == TB_EOPEN, "rc %d", rc);
        status = rc == 0 ? jr.status : 0;
        if (status != 200) {
            ck_assert_msg(status == 0 || status == 502, "join answered %d", status);
            usleep(100 * 1000);
        }
    }
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(jr.s200.status, GAME_STATE_GAME_STATUS_ACTIVE);
    game_state_client_free(c);
    user_client_free(u);
    ck_assert_int_eq(th_stop(&gs), 0);
    ck_assert_int_eq(th_stop(&us), 0);
    th_cleanup(&gs);
    th_cleanup(&us);
}
END_TEST

START_TEST(user_service_unreachable_from_the_start_is_502)
{
    th_service gs = {.name = "game_state", .prism_port = -1};
    static char genv[120];
    snprintf(genv, sizeof genv, "USER_SERVICE_URL=http://127.0.0.1:%d", th_free_port());
    const char *env[] = {genv, "TB_USER_RETRY_MAX_ATTEMPTS=1", NULL};
    th_start(&gs, env);
    char u[256], body[128];
    snprintf(u, sizeof u, "%s/games", gs.direct);
    snprintf(body, sizeof body, "{\"userId\":\"%s\"}", stranger());
    th_resp r;
    th_http(&r, "POST", u, body, NULL, NULL);
    th_assert_error(&r, 502, "upstream_failed", NULL, NULL);
    th_resp_free(&r);
    ck_assert_int_eq(th_stop(&gs), 0);
    th_cleanup(&gs);
}
END_TEST

/* ---- the request id travels to User ---- */

START_TEST(request_id_travels_game_state_to_user_and_back)
{
    const char *x = make_user();
    char u[256], body[128], rid[64];
    url(u, sizeof u, "/games");
    snprintf(body, sizeof body, "{\"userId\":\"%s\"}", x);
    const char *hdr[] = {"X-Request-ID: game-state-trace-7", NULL};
    th_resp r;
    th_http(&r, "POST", u, body, NULL, hdr);
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    ck_assert(th_header(&r, "X-Request-ID", rid, sizeof rid));
    ck_assert_str_eq(rid, "game-state-trace-7");
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    FILE *f = fopen(user_svc.log, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    bool seen_id = false;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"requestId\":\"game-state-trace-7\""))
            seen_id = true;
    fclose(f);
    ck_assert_msg(seen_id, "user log has no line with requestId game-state-trace-7");
}
END_TEST

/* ---- security from the spec ---- */

START_TEST(operations_need_a_valid_token_with_their_scope)
{
    char u[256], body[128], ch[512];
    snprintf(u, sizeof u, "%s/games", gs_svc.direct); /* straight: Prism answers 401 itself */
    snprintf(body, sizeof body, "{\"userId\":\"%s\"}", stranger());
    th_resp r;
    const char *none[] = {"Authorization:", NULL};
    th_http(&r, "GET", u, NULL, NULL, none);
    th_assert_error(&r, 401, "unauthorized", NULL, NULL);
    ck_assert(th_header(&r, "WWW-Authenticate", ch, sizeof ch));
    th_resp_free(&r);
    char *read = th_token("svc", "game.read", 300, NULL), *write = th_token("svc", "game.write", 300, NULL);
    char h[2048];
    snprintf(h, sizeof h, "Authorization: Bearer %s", read);
    const char *hr[] = {h, NULL};
    th_http(&r, "GET", u, NULL, NULL, hr);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    th_resp_free(&r);
    th_http(&r, "POST", u, body, NULL, hr);
    th_assert_error(&r, 403, "insufficient_scope", NULL, NULL);
    ck_assert(th_header(&r, "WWW-Authenticate", ch, sizeof ch));
    ck_assert_ptr_nonnull(strstr(ch, "insufficient_scope"));
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
                                     json_object_get(r.json, "error"), "message")),
                                 "game.write"));
    th_resp_free(&r);
    snprintf(h, sizeof h, "Authorization: Bearer %s", write);
    th_http(&r, "GET", u, NULL, NULL, hr);
    th_assert_error(&r, 403, "insufficient_scope", NULL, NULL);
    th_resp_free(&r);
    free(read);
    free(write);
    snprintf(u, sizeof u, "%s/health", gs_svc.direct);
    th_http(&r, "GET", u, NULL, NULL, none);
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);
}
END_TEST

/* ---- the spec's examples, bad input ---- */

START_TEST(every_example_matches_its_schema)
{
    ck_assert_uint_ge(game_state_n_examples, 6);
    for (size_t i = 0; i < game_state_n_examples; i++) {
        const tb_api_example *ex = &game_state_examples[i];
        json_t *j = json_loads(ex->json, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(j);
        tb_error err = TB_ERROR_INIT;
        ck_assert_msg(tb_api_example_validate(ex, j, &err) == 0, "%s %s %s: %s",
                      ex->operation_id, ex->where, ex->name,
                      err.n_details ? err.details[0].message : err.message);
        tb_error_deinit(&err);
        json_decref(j);
    }
}
END_TEST

/* The request body examples name users and games that do not exist here: each must pass the
 * schema (no 400) and get the answer its rules give. */
START_TEST(every_request_body_example_passes_validation)
{
    match m = start_match();
    char path[160], u[256];
    int sent = 0;
    for (size_t i = 0; i < game_state_n_examples; i++) {
        const tb_api_example *ex = &game_state_examples[i];
        if (strcmp(ex->where, "request body") != 0)
            continue;
        long want;
        if (strcmp(ex->operation_id, "createGame") == 0) {
            snprintf(path, sizeof path, "/games");
            want = 422; /* unknown_player */
        } else if (strcmp(ex->operation_id, "joinGame") == 0) {
            snprintf(path, sizeof path, "/games/%s/join", m.id);
            want = 409; /* game_full */
        } else if (strcmp(ex->operation_id, "makeMove") == 0) {
            snprintf(path, sizeof path, "/games/%s/moves", m.id);
            want = 422; /* not_a_player */
        } else {
            ck_abort_msg("no route for the example of %s", ex->operation_id);
        }
        url(u, sizeof u, path);
        th_resp r;
        th_http(&r, "POST", u, ex->json, NULL, NULL);
        ck_assert_msg(r.status == want, "%s example %s: %ld %s", ex->operation_id, ex->name,
                      r.status, r.body);
        th_assert_no_response_violation(&r);
        th_resp_free(&r);
        sent++;
    }
    ck_assert_int_eq(sent, 3);
}
END_TEST

START_TEST(malformed_json_wrong_media_type_unknown_path_and_method)
{
    char u[256], allow[64];
    th_resp r;
    url(u, sizeof u, "/games");
    if (!th_via_prism()) { /* Prism answers malformed JSON itself */
        th_http(&r, "POST", u, "{\"userId\": ,}", NULL, NULL);
        th_assert_error(&r, 400, "malformed_json", NULL, NULL);
        th_resp_free(&r);
    }
    th_http(&r, "POST", u, "userId=1", "application/x-www-form-urlencoded", NULL);
    th_assert_error(&r, 415, "unsupported_media_type", NULL, NULL);
    th_assert_no_response_violation(&r);
    th_resp_free(&r);
    th_http(&r, "POST", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/body", "required");
    th_resp_free(&r);
    th_http(&r, "DELETE", u, NULL, NULL, NULL);
    th_assert_error(&r, 405, "method_not_allowed", NULL, NULL);
    ck_assert(th_header(&r, "Allow", allow, sizeof allow));
    ck_assert(strstr(allow, "GET") && strstr(allow, "POST"));
    th_resp_free(&r);
    url(u, sizeof u, "/games/not-a-uuid");
    th_http(&r, "GET", u, NULL, NULL, NULL);
    th_assert_error(&r, 400, "validation_failed", "/path/gameId", "pattern");
    th_resp_free(&r);
    url(u, sizeof u, "/games/0b9d4c8e-1f2a-4e3b-8c7d-6a5f4e3d2c1b/undo");
    th_http(&r, "POST", u, "{}", NULL, NULL);
    th_assert_error(&r, 404, "not_found", NULL, NULL);
    th_resp_free(&r);
    url(u, sizeof u, "/games");
    const char *key[] = {"Idempotency-Key: has spaces", NULL};
    char body[128];
    snprintf(body, sizeof body, "{\"userId\":\"%s\"}", stranger());
    th_http(&r, "POST", u, body, NULL, key);
    th_assert_error(&r, 400, "validation_failed", "/header/Idempotency-Key", "pattern");
    th_resp_free(&r);
}
END_TEST

START_TEST(sigterm_stops_gracefully_with_exit_0)
{
    th_service s = {.name = "game_state", .prism_port = -1};
    th_start(&s, NULL);
    ck_assert_int_eq(th_stop(&s), 0);
    th_cleanup(&s);
}
END_TEST

/* ---- fixture ---- */

static void setup(void)
{
    watcher_start(); /* before the service: its events need a bound queue */
    static char wenv[96];
    snprintf(wenv, sizeof wenv, "WALLET_SERVICE_URL=http://127.0.0.1:%d", th_free_port());
    const char *uenv[] = {wenv, NULL};
    th_start(&user_svc, uenv);
    static char genv[120], amqp_env[300], redis_env[300];
    snprintf(genv, sizeof genv, "USER_SERVICE_URL=%s", user_svc.direct);
    const char *env[4] = {genv, NULL, NULL, NULL};
    if (watcher) {
        snprintf(amqp_env, sizeof amqp_env, "TB_AMQP_URL=%s", getenv("TB_TEST_AMQP_URL"));
        snprintf(redis_env, sizeof redis_env, "TB_REDIS_URL=%s", getenv("TB_TEST_REDIS_URL"));
        env[1] = amqp_env;
        env[2] = redis_env;
    }
    th_start(&gs_svc, env);
    arena = tb_arena_new(0);
    tb_ctx_init(&ctx, arena, NULL);
    tb_client_opts copts = th_client_opts();
    gc = game_state_client_new(gs_svc.url, &copts, NULL);
    uc = user_client_new(user_svc.direct, &copts, NULL);
    ck_assert_ptr_nonnull(gc);
    ck_assert_ptr_nonnull(uc);
}

static void teardown(void)
{
    game_state_client_free(gc);
    user_client_free(uc);
    tb_arena_free(arena);
    th_stop_in_teardown(&gs_svc, "game_state_service");
    th_stop_in_teardown(&user_svc, "user_service");
    tb_bus_free(watcher);
    for (size_t i = 0; i < seen.n; i++)
        json_decref(seen.v[i].data);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_global_init();
    Suite *s = suite_create("contract-game-state");
    TCase *tc = tcase_create("game_state");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, health_answers_ok_through_the_client);
    tcase_add_test(tc, create_join_and_get_a_game);
    tcase_add_test(tc, unknown_game_is_404);
    tcase_add_test(tc, joining_twice_or_a_full_game_is_409);
    tcase_add_test(tc, users_the_user_service_does_not_know_are_422);
    tcase_add_test(tc, wins_in_each_direction);
    tcase_add_test(tc, a_full_board_without_four_is_a_draw);
    tcase_add_test(tc, moves_before_the_second_player_joined_are_409_game_not_active);
    tcase_add_test(tc, moving_out_of_turn_is_409_not_your_turn);
    tcase_add_test(tc, a_full_column_is_422_column_full);
    tcase_add_test(tc, someone_who_does_not_play_in_the_game_is_422_not_a_player);
    tcase_add_test(tc, a_column_outside_0_to_6_is_400_from_the_schema);
    tcase_add_test(tc, a_stale_expected_version_is_409_version_conflict_with_the_current_version);
    tcase_add_test(tc, concurrent_moves_at_one_version_apply_exactly_one);
    tcase_add_test(tc, idempotency_key_replays_the_created_game_and_refuses_another_user);
    tcase_add_test(tc, list_games_filters_by_player_and_status_newest_first);
    tcase_add_test(tc, a_game_publishes_created_started_each_move_and_completed);
    tcase_add_test(tc, a_drawn_game_publishes_completed_with_outcome_draw);
    tcase_add_test(tc, refused_requests_publish_nothing);
    tcase_add_test(tc, request_id_travels_game_state_to_user_and_back);
    tcase_add_test(tc, operations_need_a_valid_token_with_their_scope);
    tcase_add_test(tc, every_example_matches_its_schema);
    tcase_add_test(tc, every_request_body_example_passes_validation);
    tcase_add_test(tc, malformed_json_wrong_media_type_unknown_path_and_method);
    tcase_add_test(tc, user_service_unreachable_from_the_start_is_502);
    if (!th_via_prism()) {
        tcase_add_test(tc, state_survives_a_sigkill_and_a_restart);
        tcase_add_test(tc, user_service_down_is_502_upstream_failed_and_games_go_on_without_it);
        tcase_add_test(tc, sigterm_stops_gracefully_with_exit_0);
    }
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed || th_teardown_failures() ? 1 : 0;
}
