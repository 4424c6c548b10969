/*
 * Game State service handlers (openapi/game_state.yaml): the authoritative state of Connect
 * Four games. State: SQLite ($GAME_STATE_DB, default ./game_state.db in $TB_DATA_DIR).
 *
 * A game is one row of `games` (its board as c4_format text, its version, its players); every
 * move is also a row of `moves` (the history). A change is one transaction: the row is updated
 * only at the version the request saw (WHERE version = ?), and the durable events of the change
 * (game.created, game.started, game.completed) are written into the outbox in that same
 * transaction, then relayed to RabbitMQ (TB_AMQP_URL) after the commit. game.move.made goes to
 * Redis after the commit (TB_REDIS_URL; at-most-once), as Wallet's wallet.balance.updated.
 *
 * The rules are connect4.c's (pure); the players are users of the User service, asked through
 * its generated client (ctx->deps) without holding the database lock.
 */
#include "game_state/game_state.h"
#include "events/events.h"

#include "connect4.h"

#include "tablium/events.h"
#include "tablium/evstore.h"
#include "tablium/ids.h"
#include "tablium/json.h"
#include "tablium/log.h"
#include "tablium/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRODUCER "game-state-service"

/* One connection, used by one request at a time: SQLite transactions belong to a connection,
 * so two requests interleaving on it would see (and nest in) each other's. */
typedef struct gs_state {
    sqlite3 *db;
    pthread_mutex_t mu;
    tb_bus *bus;           /* relays the outbox; publishes game.move.made */
    bool redis;            /* TB_REDIS_URL is set */
    tb_store_probe *probe; /* the readiness check "database" */
} gs_state;

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS games ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT," /* creation order: lists are newest first */
    "  id TEXT NOT NULL UNIQUE,"
    "  player_x TEXT NOT NULL,"
    "  player_o TEXT,"
    "  status TEXT NOT NULL CHECK (status IN ('waiting', 'active', 'won', 'draw')),"
    "  board TEXT NOT NULL CHECK (length(board) = 42),"
    "  moves INTEGER NOT NULL CHECK (moves BETWEEN 0 AND 42),"
    "  last_row INTEGER,"
    "  last_col INTEGER,"
    "  version INTEGER NOT NULL CHECK (version >= 1),"
    "  created_at TEXT NOT NULL,"
    "  started_ms INTEGER,"
    "  updated_at TEXT NOT NULL,"
    "  idem_key TEXT UNIQUE);"
    "CREATE INDEX IF NOT EXISTS games_x ON games (player_x, seq);"
    "CREATE INDEX IF NOT EXISTS games_o ON games (player_o, seq);"
    "CREATE TABLE IF NOT EXISTS moves ("
    "  game_id TEXT NOT NULL REFERENCES games (id),"
    "  move_number INTEGER NOT NULL CHECK (move_number BETWEEN 1 AND 42),"
    "  player_id TEXT NOT NULL,"
    "  col INTEGER NOT NULL CHECK (col BETWEEN 0 AND 6),"
    "  row INTEGER NOT NULL CHECK (row BETWEEN 0 AND 5),"
    "  version INTEGER NOT NULL,"
    "  made_at TEXT NOT NULL,"
    "  PRIMARY KEY (game_id, move_number));";

int game_state_service_init(void **state, tb_error *err)
{
    gs_state *s = calloc(1, sizeof *s);
    if (!s)
        return tb_error_set(err, TB_ENOMEM, "game_state: out of memory");
    s->db = tb_store_open_service("game_state", SCHEMA, err);
    if (!s->db) {
        free(s);
        return TB_EIO;
    }
    pthread_mutex_init(&s->mu, NULL);
    *state = s;
    int rc = (s->probe = tb_store_probe_new(s->db, err)) ? 0 : TB_EIO;
    if (rc == 0 && tb_ready_check_add("database", tb_store_probe_ready, s->probe))
        rc = tb_error_set(err, TB_EINVAL, "game_state: cannot register the readiness check");
    if (rc == 0)
        rc = tb_outbox_init(s->db, err);
    const char *redis = getenv("TB_REDIS_URL");
    s->redis = redis && *redis;
    tb_bus_opts bo = {.service = "game_state", .producer = PRODUCER};
    if (rc == 0 && !(s->bus = tb_bus_new(&bo, err)))
        rc = TB_ENOMEM;
    if (rc == 0)
        rc = tb_bus_relay_outbox(s->bus, NULL, err); /* the service's own database */
    if (rc != 0) {
        game_state_service_fini(s);
        *state = NULL;
    }
    return rc;
}

void game_state_service_fini(void *state)
{
    gs_state *s = state;
    if (!s)
        return;
    if (s->probe) /* the check first: it reads the database file */
        tb_ready_check_remove(s->probe);
    tb_store_probe_free(s->probe);
    tb_bus_free(s->bus);
    tb_store_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static gs_state *state_of(tb_ctx *ctx)
{
    return ctx->state;
}

static int db_fail(tb_ctx *ctx, const char *what)
{
    tb_log_error(ctx, "game_state: %s: %s", what, sqlite3_errmsg(state_of(ctx)->db));
    return TB_EIO;
}

static void rollback(tb_ctx *ctx)
{
    sqlite3_exec(state_of(ctx)->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- a game as stored ---- */

typedef struct game_row {
    char id[37], x[37], o[37];
    bool has_o;
    game_state_game_status status;
    c4_board board;
    int moves;
    int last_row, last_col; /* -1 before the first move */
    int64_t version;
    int64_t started_ms;     /* 0 while waiting */
    char created_at[32], updated_at[32];
    bool has_key;
    char key[129];
} game_row;

#define GAME_COLS                                                                              \
    "id, player_x, player_o, status, board, moves, last_row, last_col, version, created_at, "  \
    "updated_at, started_ms, idem_key"

/* Column i as text into out (cap bytes); false when NULL or too long. */
static bool col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!s || n >= cap)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* A row of GAME_COLS; TB_EIO when it is not one this service wrote. */
static int read_game(tb_ctx *ctx, sqlite3_stmt *st, game_row *g)
{
    char status[16], board[C4_CELLS + 1];
    memset(g, 0, sizeof *g);
    g->has_o = sqlite3_column_type(st, 2) != SQLITE_NULL;
    g->has_key = sqlite3_column_type(st, 12) != SQLITE_NULL;
    if (!col_text(st, 0, g->id, sizeof g->id) || !col_text(st, 1, g->x, sizeof g->x) ||
        (g->has_o && !col_text(st, 2, g->o, sizeof g->o)) ||
        !col_text(st, 3, status, sizeof status) || !col_text(st, 4, board, sizeof board) ||
        !col_text(st, 9, g->created_at, sizeof g->created_at) ||
        !col_text(st, 10, g->updated_at, sizeof g->updated_at) ||
        (g->has_key && !col_text(st, 12, g->key, sizeof g->key)) ||
        game_state_game_status_from_string(status, strlen(status), &g->status) != 0 ||
        c4_parse(board, &g->board) != 0) {
        tb_log_error(ctx, "game_state: game row %s is damaged", g->id[0] ? g->id : "?");
        return TB_EIO;
    }
    g->moves = sqlite3_column_int(st, 5);
    bool has_last = sqlite3_column_type(st, 6) != SQLITE_NULL;
    g->last_row = has_last ? sqlite3_column_int(st, 6) : -1;
    g->last_col = has_last ? sqlite3_column_int(st, 7) : -1;
    g->version = sqlite3_column_int64(st, 8);
    g->started_ms = sqlite3_column_int64(st, 11);
    return 0;
}

/* The game whose `col` (id or idem_key) is `value`: 0 and *found, or a TB_E code. */
static int load_game_by(tb_ctx *ctx, const char *col, const char *value, game_row *g,
                        bool *found)
{
    sqlite3 *db = state_of(ctx)->db;
    sqlite3_stmt *st = NULL;
    char sql[256];
    *found = false;
    snprintf(sql, sizeof sql, "SELECT " GAME_COLS " FROM games WHERE %s = ?", col);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, "prepare select game");
    sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW) {
        *found = true;
        rc = read_game(ctx, st, g);
    } else if (step != SQLITE_DONE) {
        rc = db_fail(ctx, "select game");
    }
    sqlite3_finalize(st);
    return rc;
}

static int load_game(tb_ctx *ctx, const char *id, game_row *g, bool *found)
{
    return load_game_by(ctx, "id", id, g, found);
}

/* The player who holds mark m. */
static const char *player_of(const game_row *g, c4_mark m)
{
    return m == C4_X ? g->x : g->has_o ? g->o : NULL;
}

/* The API's view of a stored game, in the request's arena. */
static int to_game(tb_ctx *ctx, const game_row *g, game_state_game *out)
{
    tb_arena *a = ctx->arena;
    memset(out, 0, sizeof *out);
    out->id = tb_arena_strdup(a, g->id);
    out->status = g->status;
    out->n_players = g->has_o ? 2 : 1;
    out->players = tb_arena_calloc(a, 2, sizeof *out->players);
    if (!out->id || !out->players)
        return TB_ENOMEM;
    out->players[0] = tb_arena_strdup(a, g->x);
    out->players[1] = g->has_o ? tb_arena_strdup(a, g->o) : NULL;
    if (!out->players[0] || (g->has_o && !out->players[1]))
        return TB_ENOMEM;

    /* the board: a cell is NULL (JSON null) or points at its mark (the arena holds the two) */
    game_state_cell *mark = tb_arena_calloc(a, 2, sizeof *mark);
    out->n_board = C4_ROWS;
    out->board = tb_arena_calloc(a, C4_ROWS, sizeof *out->board);
    if (!mark || !out->board)
        return TB_ENOMEM;
    mark[0] = GAME_STATE_CELL_X;
    mark[1] = GAME_STATE_CELL_O;
    for (int r = 0; r < C4_ROWS; r++) {
        game_state_cell **cells = tb_arena_calloc(a, C4_COLS, sizeof *cells);
        if (!cells)
            return TB_ENOMEM;
        for (int c = 0; c < C4_COLS; c++) {
            int m = g->board.cell[r][c];
            cells[c] = m == C4_X ? &mark[0] : m == C4_O ? &mark[1] : NULL;
        }
        out->board[r].items = cells;
        out->board[r].n = C4_COLS;
    }

    bool has_last = g->moves > 0 && g->last_row >= 0 && g->last_col >= 0;
    c4_mark last_mark = has_last ? (c4_mark)g->board.cell[g->last_row][g->last_col] : C4_EMPTY;
    out->turn_is_null = g->status != GAME_STATE_GAME_STATUS_ACTIVE;
    if (!out->turn_is_null)
        out->turn = tb_arena_strdup(a, player_of(g, c4_to_move(g->moves)));
    out->winner_is_null = g->status != GAME_STATE_GAME_STATUS_WON || !has_last;
    if (!out->winner_is_null)
        out->winner = tb_arena_strdup(a, player_of(g, last_mark));
    out->winning_cells_is_null = true;
    c4_pos line[4];
    if (!out->winner_is_null &&
        c4_line_through(&g->board, (c4_pos){g->last_row, g->last_col}, line)) {
        out->winning_cells = tb_arena_calloc(a, 4, sizeof *out->winning_cells);
        if (!out->winning_cells)
            return TB_ENOMEM;
        for (int i = 0; i < 4; i++) {
            out->winning_cells[i].row = line[i].row;
            out->winning_cells[i].column = line[i].col;
        }
        out->n_winning_cells = 4;
        out->winning_cells_is_null = false;
    }
    out->moves = g->moves;
    out->last_move_is_null = !has_last;
    if (has_last) {
        out->last_move.player_id = tb_arena_strdup(a, player_of(g, last_mark));
        out->last_move.mark = last_mark == C4_X ? GAME_STATE_MARK_X : GAME_STATE_MARK_O;
        out->last_move.column = g->last_col;
        out->last_move.row = g->last_row;
        out->last_move.move_number = g->moves;
        if (!out->last_move.player_id)
            return TB_ENOMEM;
    }
    out->version = g->version;
    out->created_at = tb_arena_strdup(a, g->created_at);
    out->updated_at = tb_arena_strdup(a, g->updated_at);
    if ((!out->turn_is_null && !out->turn) || (!out->winner_is_null && !out->winner) ||
        !out->created_at || !out->updated_at)
        return TB_ENOMEM;
    return 0;
}

/* Writes one durable event into the outbox, in the open transaction (takes data). */
static int outbox(tb_ctx *ctx, const tb_event_type *t, json_t *data)
{
    tb_error err = TB_ERROR_INIT;
    int rc = data ? tb_outbox_add_json(state_of(ctx)->db, ctx, t, data, PRODUCER, NULL, &err)
                  : TB_ENOMEM;
    if (rc != 0)
        tb_log_error(ctx, "game_state: cannot record %s: %s", t->type,
                     data ? err.message : "out of memory");
    json_decref(data);
    tb_error_deinit(&err);
    return rc;
}

/* ---- the User service ---- */

typedef enum user_check {
    USER_KNOWN,
    USER_UNKNOWN,
    USER_UNREACHABLE, /* *fail holds the 502 */
} user_check;

/* Whether the User service knows user_id. Never under the database lock. */
static user_check check_user(tb_ctx *ctx, const char *user_id, tb_api_error *fail)
{
    game_state_deps *deps = game_state_deps_of(ctx);
    tb_error err = TB_ERROR_INIT;
    user_get_user_req req = {.user_id = (char *)user_id};
    user_get_user_resp out;
    int rc = deps && deps->user ? user_get_user_call(deps->user, ctx, &req, &out, &err)
                                : tb_error_set(&err, TB_ESTATE, "no client of the user service");
    user_check r = USER_UNREACHABLE;
    if (rc == 0 && out.status == USER_GET_USER_200) {
        r = USER_KNOWN;
    } else if (rc == 0 && out.status == USER_GET_USER_404) {
        r = USER_UNKNOWN;
    } else {
        /* the User service failed: 502 for our caller, the reason in our log only (as User
         * does when Wallet fails) */
        if (rc == 0)
            rc = tb_error_set(&err, TB_EUPSTREAM, "status %d", out.status);
        tb_log_warn(ctx, "game_state: user service call failed: %s: %s", tb_err_name(rc),
                    err.message);
        if (rc == TB_EOPEN) /* failing fast: the breaker on User is open */
            tb_api_error_set(fail, ctx, "upstream_unavailable",
                             "the user service is failing; calls to it are paused");
        else
            tb_api_error_set(fail, ctx, "upstream_failed",
                             "the user service did not answer as expected");
    }
    tb_error_deinit(&err);
    return r;
}

/* ---- handlers ---- */

int game_state_get_health(tb_ctx *ctx, const game_state_get_health_req *req,
                          game_state_get_health_resp *resp)
{
    (void)req;
    gs_state *s = state_of(ctx);
    pthread_mutex_lock(&s->mu);
    int rc = sqlite3_exec(s->db, "SELECT 1", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->mu);
    if (rc != SQLITE_OK) {
        resp->status = GAME_STATE_GET_HEALTH_503;
        tb_api_error_set(&resp->s503, ctx, "unavailable", "the database does not answer");
        return 0;
    }
    resp->status = GAME_STATE_GET_HEALTH_200;
    resp->s200.status = COMMON_HEALTH_STATUS_OK;
    return 0;
}

static int get_game_locked(tb_ctx *ctx, const game_state_get_game_req *req,
                           game_state_get_game_resp *resp)
{
    game_row g;
    bool found;
    int rc = load_game(ctx, req->game_id, &g, &found);
    if (rc)
        return rc;
    if (!found) {
        resp->status = GAME_STATE_GET_GAME_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no game %s", req->game_id);
        return 0;
    }
    resp->status = GAME_STATE_GET_GAME_200;
    return to_game(ctx, &g, &resp->s200);
}

int game_state_get_game(tb_ctx *ctx, const game_state_get_game_req *req,
                        game_state_get_game_resp *resp)
{
    gs_state *s = state_of(ctx);
    pthread_mutex_lock(&s->mu);
    int rc = get_game_locked(ctx, req, resp);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int list_games_locked(tb_ctx *ctx, const game_state_list_games_req *req,
                             game_state_list_games_resp *resp)
{
    sqlite3 *db = state_of(ctx)->db;
    sqlite3_stmt *st = NULL;
    int64_t limit = req->limit; /* the spec's default (20) when absent */
    if (sqlite3_prepare_v2(db,
                           "SELECT " GAME_COLS " FROM games"
                           " WHERE (?1 IS NULL OR player_x = ?1 OR player_o = ?1)"
                           " AND (?2 IS NULL OR status = ?2) ORDER BY seq DESC LIMIT ?3",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, "prepare list");
    if (req->has_player_id)
        sqlite3_bind_text(st, 1, req->player_id, -1, SQLITE_STATIC);
    if (req->has_status)
        sqlite3_bind_text(st, 2, game_state_game_status_to_string(req->status), -1,
                          SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit);
    game_state_game *items = tb_arena_calloc(ctx->arena, (size_t)limit, sizeof *items);
    size_t n = 0;
    int rc = items ? 0 : TB_ENOMEM, step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW && (int64_t)n < limit) {
        game_row g;
        if ((rc = read_game(ctx, st, &g)) == 0)
            rc = to_game(ctx, &g, &items[n++]);
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = db_fail(ctx, "list");
    sqlite3_finalize(st);
    if (rc)
        return rc;
    resp->status = GAME_STATE_LIST_GAMES_200;
    resp->s200.items = items;
    resp->s200.n = n;
    return 0;
}

int game_state_list_games(tb_ctx *ctx, const game_state_list_games_req *req,
                          game_state_list_games_resp *resp)
{
    gs_state *s = state_of(ctx);
    pthread_mutex_lock(&s->mu);
    int rc = list_games_locked(ctx, req, resp);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- createGame ---- */

/* Answers a request whose Idempotency-Key created game g: that game, or 422 when the key came
 * with another user. */
static int replay_create(tb_ctx *ctx, const game_state_create_game_req *req, const game_row *g,
                         game_state_create_game_resp *resp)
{
    if (strcmp(g->x, req->body.user_id) != 0) {
        resp->status = GAME_STATE_CREATE_GAME_422;
        tb_api_error_set(&resp->s422, ctx, "idempotency_key_reused",
                         "Idempotency-Key %s was used for a different request",
                         req->idempotency_key);
        return 0;
    }
    resp->status = GAME_STATE_CREATE_GAME_201;
    resp->headers.idempotent_replayed = "true";
    resp->headers.location = tb_arena_printf(ctx->arena, "/games/%s", g->id);
    if (!resp->headers.location)
        return TB_ENOMEM;
    return to_game(ctx, g, &resp->s201);
}

/* The game the request's Idempotency-Key created, if any: 0 and *replayed when it answered. */
static int create_replayed(tb_ctx *ctx, const game_state_create_game_req *req,
                           game_state_create_game_resp *resp, bool *replayed)
{
    game_row g;
    *replayed = false;
    if (!req->has_idempotency_key)
        return 0;
    int rc = load_game_by(ctx, "idem_key", req->idempotency_key, &g, replayed);
    if (rc == 0 && *replayed)
        rc = replay_create(ctx, req, &g, resp);
    return rc;
}

static int create_game_locked(tb_ctx *ctx, const game_state_create_game_req *req,
                              game_state_create_game_resp *resp)
{
    sqlite3 *db = state_of(ctx)->db;
    sqlite3_stmt *st = NULL;
    const char *key = req->has_idempotency_key ? req->idempotency_key : NULL;
    bool replayed;
    int rc;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, "begin");
    /* the same key may have arrived meanwhile (while User was asked) */
    if ((rc = create_replayed(ctx, req, resp, &replayed)) != 0 || replayed) {
        rollback(ctx);
        return rc;
    }
    game_row g = {.status = GAME_STATE_GAME_STATUS_WAITING, .last_row = -1, .last_col = -1,
                  .version = 1};
    char board[C4_CELLS + 1];
    tb_uuid_new(g.id);
    snprintf(g.x, sizeof g.x, "%s", req->body.user_id);
    tb_time_rfc3339(g.created_at);
    memcpy(g.updated_at, g.created_at, sizeof g.updated_at);
    c4_board_init(&g.board);
    c4_format(&g.board, board);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO games (id, player_x, status, board, moves, version, "
                           "created_at, updated_at, idem_key) VALUES (?, ?, 'waiting', ?, 0, 1, "
                           "?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, "prepare insert game");
        goto fail;
    }
    sqlite3_bind_text(st, 1, g.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, g.x, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, board, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, g.created_at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, g.updated_at, -1, SQLITE_STATIC);
    if (key)
        sqlite3_bind_text(st, 6, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        rc = db_fail(ctx, "insert game");
        goto fail;
    }
    char *players[] = {g.x};
    game_created_v1 ev = {
        .game_id = g.id, .game_type = GAME_CREATED_V1_GAME_TYPE_CONNECT4, .created_by = g.x,
        .n_players = 1, .players = players,
        .settings = {.time_control_seconds = 0, .rated = false}, .created_at = g.created_at};
    if ((rc = outbox(ctx, &game_created_v1_event, game_created_v1_to_json(&ev))) != 0)
        goto fail;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, "commit");
        goto fail;
    }
    tb_bus_outbox_kick(state_of(ctx)->bus);
    tb_log_info(ctx, "game_state: game %s created by %s", g.id, g.x);
    resp->status = GAME_STATE_CREATE_GAME_201;
    resp->headers.location = tb_arena_printf(ctx->arena, "/games/%s", g.id);
    if (!resp->headers.location)
        return TB_ENOMEM;
    return to_game(ctx, &g, &resp->s201);
fail:
    rollback(ctx);
    return rc;
}

int game_state_create_game(tb_ctx *ctx, const game_state_create_game_req *req,
                           game_state_create_game_resp *resp)
{
    gs_state *s = state_of(ctx);
    bool replayed;
    /* a retry answers from the store, without asking User again */
    pthread_mutex_lock(&s->mu);
    int rc = create_replayed(ctx, req, resp, &replayed);
    pthread_mutex_unlock(&s->mu);
    if (rc || replayed)
        return rc;
    switch (check_user(ctx, req->body.user_id, &resp->s502)) {
    case USER_UNREACHABLE:
        resp->status = GAME_STATE_CREATE_GAME_502;
        return 0;
    case USER_UNKNOWN:
        resp->status = GAME_STATE_CREATE_GAME_422;
        tb_api_error_set(&resp->s422, ctx, "unknown_player", "the user service knows no user %s",
                         req->body.user_id);
        return 0;
    case USER_KNOWN:
        break;
    }
    pthread_mutex_lock(&s->mu);
    rc = create_game_locked(ctx, req, resp);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- joinGame ---- */

/* Whether user may join g: 0 when yes, else 409 filled in resp (returns 1). */
static int join_refused(tb_ctx *ctx, const game_row *g, const char *user,
                        game_state_join_game_resp *resp)
{
    if (strcmp(g->x, user) == 0 || (g->has_o && strcmp(g->o, user) == 0)) {
        resp->status = GAME_STATE_JOIN_GAME_409;
        tb_api_error_set(&resp->s409, ctx, "already_joined", "user %s already plays in game %s",
                         user, g->id);
        return 1;
    }
    if (g->has_o || g->status != GAME_STATE_GAME_STATUS_WAITING) {
        resp->status = GAME_STATE_JOIN_GAME_409;
        tb_api_error_set(&resp->s409, ctx, "game_full", "game %s has its two players already",
                         g->id);
        return 1;
    }
    return 0;
}

/* Loads the game and checks that the user may join: 0 and *answered when resp is filled. */
static int join_check(tb_ctx *ctx, const game_state_join_game_req *req, game_row *g,
                      game_state_join_game_resp *resp, bool *answered)
{
    bool found;
    *answered = false;
    int rc = load_game(ctx, req->game_id, g, &found);
    if (rc)
        return rc;
    if (!found) {
        resp->status = GAME_STATE_JOIN_GAME_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no game %s", req->game_id);
        *answered = true;
        return 0;
    }
    *answered = join_refused(ctx, g, req->body.user_id, resp) != 0;
    return 0;
}

static int join_game_locked(tb_ctx *ctx, const game_state_join_game_req *req,
                            game_state_join_game_resp *resp)
{
    sqlite3 *db = state_of(ctx)->db;
    sqlite3_stmt *st = NULL;
    game_row g;
    bool answered;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, "begin");
    /* again: someone may have joined while User was asked */
    int rc = join_check(ctx, req, &g, resp, &answered);
    if (rc || answered) {
        rollback(ctx);
        return rc;
    }
    int64_t seen = g.version;
    g.has_o = true;
    snprintf(g.o, sizeof g.o, "%s", req->body.user_id);
    g.status = GAME_STATE_GAME_STATUS_ACTIVE;
    g.version++;
    g.started_ms = tb_time_ms();
    tb_time_rfc3339(g.updated_at);
    if (sqlite3_prepare_v2(db,
                           "UPDATE games SET player_o = ?, status = 'active', version = ?, "
                           "started_ms = ?, updated_at = ? WHERE id = ? AND version = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, "prepare join");
        goto fail;
    }
    sqlite3_bind_text(st, 1, g.o, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, g.version);
    sqlite3_bind_int64(st, 3, g.started_ms);
    sqlite3_bind_text(st, 4, g.updated_at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, g.id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, seen);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        rc = db_fail(ctx, "join");
        goto fail;
    }
    if (sqlite3_changes(db) != 1) { /* another writer of the file changed it meanwhile */
        rollback(ctx);
        resp->status = GAME_STATE_JOIN_GAME_409;
        tb_api_error_set(&resp->s409, ctx, "version_conflict",
                         "game %s changed meanwhile; read it again", g.id);
        return 0;
    }
    char *players[] = {g.x, g.o};
    game_started_v1 ev = {.game_id = g.id, .n_players = 2, .players = players,
                          .first_turn = g.x, .started_at = g.updated_at};
    if ((rc = outbox(ctx, &game_started_v1_event, game_started_v1_to_json(&ev))) != 0)
        goto fail;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, "commit");
        goto fail;
    }
    tb_bus_outbox_kick(state_of(ctx)->bus);
    tb_log_info(ctx, "game_state: game %s started: %s (X) against %s (O)", g.id, g.x, g.o);
    resp->status = GAME_STATE_JOIN_GAME_200;
    return to_game(ctx, &g, &resp->s200);
fail:
    rollback(ctx);
    return rc;
}

int game_state_join_game(tb_ctx *ctx, const game_state_join_game_req *req,
                         game_state_join_game_resp *resp)
{
    gs_state *s = state_of(ctx);
    game_row g;
    bool answered;
    /* what the store alone can refuse, before asking User */
    pthread_mutex_lock(&s->mu);
    int rc = join_check(ctx, req, &g, resp, &answered);
    pthread_mutex_unlock(&s->mu);
    if (rc || answered)
        return rc;
    switch (check_user(ctx, req->body.user_id, &resp->s502)) {
    case USER_UNREACHABLE:
        resp->status = GAME_STATE_JOIN_GAME_502;
        return 0;
    case USER_UNKNOWN:
        resp->status = GAME_STATE_JOIN_GAME_422;
        tb_api_error_set(&resp->s422, ctx, "unknown_player", "the user service knows no user %s",
                         req->body.user_id);
        return 0;
    case USER_KNOWN:
        break;
    }
    pthread_mutex_lock(&s->mu);
    rc = join_game_locked(ctx, req, resp);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- makeMove ---- */

/* 409 version_conflict naming the game's version in a detail (path /body/expectedVersion, rule
 * currentVersion, message the version's digits), as the spec documents. */
static int version_conflict(tb_ctx *ctx, tb_api_error *e, int64_t current, int64_t expected)
{
    tb_api_error_set(e, ctx, "version_conflict", "the game is at version %" PRId64 ", not %" PRId64,
                     current, expected);
    tb_error_detail *d = tb_arena_calloc(ctx->arena, 1, sizeof *d);
    if (!d)
        return TB_ENOMEM;
    d->path = tb_arena_strdup(ctx->arena, "/body/expectedVersion");
    d->rule = tb_arena_strdup(ctx->arena, "currentVersion");
    d->message = tb_arena_printf(ctx->arena, "%" PRId64, current);
    if (!d->path || !d->rule || !d->message)
        return TB_ENOMEM;
    e->details = d;
    e->n_details = 1;
    return 0;
}

/* The rule checks of a move on g, in the spec's order: 0 and *mark, or 1 with resp filled. */
static int move_refused(tb_ctx *ctx, const game_row *g, const game_state_move_request *b,
                        game_state_make_move_resp *resp, c4_mark *mark, int *rc)
{
    *rc = 0;
    if (strcmp(b->player_id, g->x) == 0) {
        *mark = C4_X;
    } else if (g->has_o && strcmp(b->player_id, g->o) == 0) {
        *mark = C4_O;
    } else {
        resp->status = GAME_STATE_MAKE_MOVE_422;
        tb_api_error_set(&resp->s422, ctx, "not_a_player", "user %s does not play in game %s",
                         b->player_id, g->id);
        return 1;
    }
    if (b->expected_version != g->version) {
        resp->status = GAME_STATE_MAKE_MOVE_409;
        *rc = version_conflict(ctx, &resp->s409, g->version, b->expected_version);
        return 1;
    }
    if (g->status != GAME_STATE_GAME_STATUS_ACTIVE) {
        resp->status = GAME_STATE_MAKE_MOVE_409;
        tb_api_error_set(&resp->s409, ctx, "game_not_active", "game %s is %s, not active", g->id,
                         g->status == GAME_STATE_GAME_STATUS_WAITING
                             ? "waiting for its second player"
                             : g->status == GAME_STATE_GAME_STATUS_WON ? "over (won)"
                                                                       : "over (drawn)");
        return 1;
    }
    if (c4_to_move(g->moves) != *mark) {
        resp->status = GAME_STATE_MAKE_MOVE_409;
        tb_api_error_set(&resp->s409, ctx, "not_your_turn", "it is %s's turn (%s) in game %s",
                         player_of(g, c4_to_move(g->moves)),
                         c4_to_move(g->moves) == C4_X ? "X" : "O", g->id);
        return 1;
    }
    int row = c4_landing_row(&g->board, (int)b->column);
    if (row == C4_EFULL) {
        resp->status = GAME_STATE_MAKE_MOVE_422;
        tb_api_error_set(&resp->s422, ctx, "column_full", "column %" PRId64 " is full",
                         b->column);
        return 1;
    }
    if (row < 0) { /* the schema keeps columns in 0..6; a guard if it ever does not */
        resp->status = GAME_STATE_MAKE_MOVE_400;
        tb_api_error_set(&resp->s400, ctx, "validation_failed",
                         "column %" PRId64 " is outside 0..6", b->column);
        return 1;
    }
    return 0;
}

/* Writes the move (game row at the version seen, history row) and its events; in the open
 * transaction. 0, 1 when the row changed meanwhile (resp filled), or a TB_E code. */
static int record_move(tb_ctx *ctx, const game_row *g, int64_t seen, const c4_move *mv,
                       const char *player, const char *now, game_state_make_move_resp *resp)
{
    sqlite3 *db = state_of(ctx)->db;
    sqlite3_stmt *st = NULL;
    char board[C4_CELLS + 1];
    c4_format(&g->board, board);
    if (sqlite3_prepare_v2(db,
                           "UPDATE games SET board = ?, moves = ?, last_row = ?, last_col = ?, "
                           "status = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, "prepare move");
    sqlite3_bind_text(st, 1, board, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, g->moves);
    sqlite3_bind_int(st, 3, mv->at.row);
    sqlite3_bind_int(st, 4, mv->at.col);
    sqlite3_bind_text(st, 5, game_state_game_status_to_string(g->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, g->version);
    sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, g->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, seen);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(ctx, "move");
    if (sqlite3_changes(db) != 1) { /* another writer of the file changed it meanwhile */
        resp->status = GAME_STATE_MAKE_MOVE_409;
        int64_t cur = seen;
        if (sqlite3_prepare_v2(db, "SELECT version FROM games WHERE id = ?", -1, &st, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                cur = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
        int rc = version_conflict(ctx, &resp->s409, cur, seen);
        return rc ? rc : 1;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO moves (game_id, move_number, player_id, col, row, version,"
                           " made_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ctx, "prepare insert move");
    sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, g->moves);
    sqlite3_bind_text(st, 3, player, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, mv->at.col);
    sqlite3_bind_int(st, 5, mv->at.row);
    sqlite3_bind_int64(st, 6, g->version);
    sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(ctx, "insert move");
    if (mv->outcome == C4_ONGOING)
        return 0;
    /* game.completed: 2 points for a win, 1 each for a draw, 0 for a loss */
    bool won = mv->outcome == C4_WON;
    const char *loser = strcmp(player, g->x) == 0 ? g->o : g->x;
    game_completed_v1_scores_item scores[2] = {
        {.player_id = (char *)(won ? player : g->x), .score = won ? 2 : 1},
        {.player_id = (char *)(won ? loser : g->o), .score = won ? 0 : 1},
    };
    int64_t ms = tb_time_ms() - g->started_ms;
    game_completed_v1 ev = {
        .game_id = (char *)g->id,
        .outcome = won ? GAME_COMPLETED_V1_OUTCOME_WIN : GAME_COMPLETED_V1_OUTCOME_DRAW,
        .winner_id_is_null = !won, .winner_id = won ? (char *)player : NULL,
        .n_scores = 2, .scores = scores, .duration_ms = ms > 0 ? ms : 0,
        .completed_at = (char *)now};
    return outbox(ctx, &game_completed_v1_event, game_completed_v1_to_json(&ev));
}

static int make_move_locked(tb_ctx *ctx, const game_state_make_move_req *req,
                            game_state_make_move_resp *resp)
{
    gs_state *s = state_of(ctx);
    const game_state_move_request *b = &req->body;
    game_row g;
    bool found;
    c4_mark mark;
    int rc;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ctx, "begin");
    if ((rc = load_game(ctx, req->game_id, &g, &found)) != 0)
        goto fail;
    if (!found) {
        rollback(ctx);
        resp->status = GAME_STATE_MAKE_MOVE_404;
        tb_api_error_set(&resp->s404, ctx, "not_found", "no game %s", req->game_id);
        return 0;
    }
    if (move_refused(ctx, &g, b, resp, &mark, &rc)) {
        rollback(ctx);
        return rc;
    }
    int64_t seen = g.version;
    c4_move mv;
    if ((rc = c4_drop(&g.board, (int)b->column, mark, &mv)) != 0) { /* checked: cannot fail */
        tb_log_error(ctx, "game_state: move refused by the rules after the checks: %d", rc);
        rc = TB_EIO;
        goto fail;
    }
    char now[25];
    tb_time_rfc3339(now);
    g.moves++;
    g.last_row = mv.at.row;
    g.last_col = mv.at.col;
    g.version++;
    g.status = mv.outcome == C4_WON     ? GAME_STATE_GAME_STATUS_WON
               : mv.outcome == C4_DRAWN ? GAME_STATE_GAME_STATUS_DRAW
                                        : GAME_STATE_GAME_STATUS_ACTIVE;
    memcpy(g.updated_at, now, sizeof now);
    const char *player = player_of(&g, mark);
    if ((rc = record_move(ctx, &g, seen, &mv, player, now, resp)) != 0) {
        rollback(ctx);
        return rc == 1 ? 0 : rc;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(ctx, "commit");
        goto fail;
    }
    if (mv.outcome != C4_ONGOING) {
        tb_bus_outbox_kick(s->bus);
        tb_log_info(ctx, "game_state: game %s %s after %d moves", g.id,
                    mv.outcome == C4_WON ? "won" : "drawn", g.moves);
    }
    if (s->redis) { /* light, at-most-once: after the commit, never inside it */
        char notation[4], to[8];
        snprintf(notation, sizeof notation, "%d", mv.at.col);
        snprintf(to, sizeof to, "r%dc%d", mv.at.row, mv.at.col);
        game_move_made_v1 ev = {.game_id = g.id, .player_id = (char *)player,
                                .move_number = g.moves,
                                .move = {.notation = notation, .has_to = true, .to = to},
                                .has_state_version = true, .state_version = g.version,
                                .made_at = now};
        tb_error perr = TB_ERROR_INIT;
        if (game_move_made_v1_publish_async(s->bus, ctx, &ev, NULL, NULL, &perr) != 0)
            tb_log_warn(ctx, "game_state: game.move.made not published: %s", perr.message);
        tb_error_deinit(&perr);
    }
    resp->status = GAME_STATE_MAKE_MOVE_200;
    return to_game(ctx, &g, &resp->s200);
fail:
    rollback(ctx);
    return rc;
}

int game_state_make_move(tb_ctx *ctx, const game_state_make_move_req *req,
                         game_state_make_move_resp *resp)
{
    gs_state *s = state_of(ctx);
    pthread_mutex_lock(&s->mu);
    int rc = make_move_locked(ctx, req, resp);
    pthread_mutex_unlock(&s->mu);
    return rc;
}
