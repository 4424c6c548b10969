/*
 * The Realtime service's handlers: namespace /games (schemas/realtime/games.json).
 *
 *   join-game {gameId}    the game is fetched from Game State (and joined there when it waits for
 *                         a second player and the user is not in it); the socket joins the room
 *                         game:<id>; the others in the room get user-joined; when the join
 *                         started the game, the room gets game-updated; the ack carries the game.
 *   game-move {gameId, column, expectedVersion?}
 *                         Game State applies the move (the player is the token's subject); the
 *                         room gets game-updated with the state, the last move and a timestamp;
 *                         the ack carries the game. A move Game State refuses goes back to the
 *                         sender only, as the error event with Game State's code.
 *   leave-game {gameId}   leaves the room.
 *
 * The user is the `sub` claim of the token the handshake carried (tb_rt_nsp_use_jwt). Calls to
 * Game State block, so they run on the server's workers (tb_rt_server_offload): the loop keeps
 * serving, and the result comes back to the loop, where the socket is looked up again by id.
 */
#include "realtime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/events.h"
#include "game_state/game_state.h"
#include "realtime/realtime.h"
#include "tablium/buf.h"
#include "tablium/ctx.h"
#include "tablium/ids.h"
#include "tablium/jwt.h"
#include "tablium/log.h"

struct rt_app {
    tb_rt_server *srv;
    tb_rt_nsp *games;
    game_state_client *gs;
    games_handlers handlers;
    tb_bus *bus;  /* game events to relay; NULL when events are off */
    json_t *seen; /* game id -> the last version broadcast */
    char scope[64]; /* the scope a handshake token must carry, "" for none */
    pthread_mutex_t seen_mu; /* seen: the server's loops (TB_RT_LOOPS) share it */
};

typedef enum { OP_JOIN, OP_MOVE } op_kind;

typedef struct op {
    rt_app *app;
    op_kind kind;
    char sid[32];
    char event[16];
    int64_t ack_id;
    char game_id[64];
    char user[256];
    int64_t column, expected_version;
    bool has_expected;
    /* the result */
    const char *code; /* NULL: done */
    char message[256];
    tb_error details; /* Game State's details of a refusal (a version_conflict's version) */
    json_t *game;      /* the realtime schema's game_state */
    json_t *last_move; /* or NULL */
    bool started;      /* the join started the game */
} op;

/* ---- Game State's game -> the realtime schema's game_state ---- */

static json_t *state_of(const game_state_game *g)
{
    json_t *full = game_state_game_to_json(g);
    if (!full)
        return NULL;
    /* the realtime state: the members its schema declares */
    static const char *const keep[] = {"id",   "status", "players", "board",
                                       "turn", "winner", "moves",   "version"};
    json_t *st = json_object();
    for (size_t i = 0; st && i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(full, keep[i]);
        json_object_set(st, keep[i], v ? v : json_null());
    }
    json_decref(full);
    return st;
}

static void fail(op *o, const char *code, const char *what, const char *detail)
{
    o->code = code;
    tb_buf b = TB_BUF_INIT;
    tb_buf_puts(&b, what);
    if (detail && *detail)
        tb_buf_printf(&b, " (%.160s)", detail);
    snprintf(o->message, sizeof o->message, "%.255s", b.oom || !b.data ? what : b.data);
    tb_buf_deinit(&b);
}

/* An error answer of Game State (the tb_api_error of whichever status it is, or NULL): its
 * code, upper-cased (version_conflict -> VERSION_CONFLICT), its message and its details. */
static void fail_api(op *o, const tb_api_error *e, int status)
{
    static char codes[8][48];
    static int next;
    char *c = codes[__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) & 7];
    snprintf(c, sizeof codes[0], "%s", e && e->code ? e->code : "UPSTREAM_ERROR");
    for (char *p = c; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    o->code = c;
    if (e && e->message)
        snprintf(o->message, sizeof o->message, "%s", e->message);
    else
        snprintf(o->message, sizeof o->message, "the Game State service answered %d", status);
    for (size_t i = 0; e && e->details && i < e->n_details; i++)
        tb_error_add_detail(&o->details, e->details[i].path, e->details[i].rule,
                            e->details[i].message);
}

static void call_failed(op *o, int rc, const tb_error *err)
{
    fail(o, "UPSTREAM_UNAVAILABLE", "the Game State service cannot answer now",
         err && err->message[0] ? err->message : tb_strerror(rc));
}

static bool has_player(const game_state_game *g, const char *user)
{
    for (size_t i = 0; i < g->n_players; i++)
        if (strcmp(g->players[i], user) == 0)
            return true;
    return false;
}

/* On a worker: the calls to Game State. */
static void work(void *ud)
{
    op *o = ud;
    tb_arena *a = tb_arena_new(0);
    tb_ctx ctx;
    char rid[33];
    tb_request_id_new(rid);
    tb_ctx_init(&ctx, a, rid);
    tb_error err = TB_ERROR_INIT;
    if (!a) {
        fail(o, "INTERNAL", "out of memory", NULL);
        return;
    }
    if (o->kind == OP_JOIN) {
        game_state_get_game_req req = {.game_id = o->game_id};
        game_state_get_game_resp resp;
        int rc = game_state_get_game_call(o->app->gs, &ctx, &req, &resp, &err);
        if (rc != 0) {
            call_failed(o, rc, &err);
        } else if (resp.status != GAME_STATE_GET_GAME_200) {
            fail_api(o, game_state_get_game_resp_error(&resp), resp.status);
        } else if (resp.s200.status == GAME_STATE_GAME_STATUS_WAITING &&
                   !has_player(&resp.s200, o->user)) {
            game_state_join_game_req jreq = {.game_id = o->game_id};
            jreq.body.user_id = o->user;
            game_state_join_game_resp jresp;
            rc = game_state_join_game_call(o->app->gs, &ctx, &jreq, &jresp, &err);
            if (rc != 0)
                call_failed(o, rc, &err);
            else if (jresp.status != 200)
                fail_api(o, game_state_join_game_resp_error(&jresp), jresp.status);
            else {
                o->game = state_of(&jresp.s200);
                o->started = jresp.s200.status == GAME_STATE_GAME_STATUS_ACTIVE;
            }
        } else {
            o->game = state_of(&resp.s200);
        }
    } else {
        game_state_make_move_req req = {.game_id = o->game_id};
        req.body.player_id = o->user;
        req.body.column = o->column;
        game_state_get_game_resp cur;
        if (!o->has_expected) {
            /* no version given: the one the game has now (the move still races fairly: Game
             * State refuses it if another move lands first) */
            game_state_get_game_req g = {.game_id = o->game_id};
            int rc = game_state_get_game_call(o->app->gs, &ctx, &g, &cur, &err);
            if (rc != 0) {
                call_failed(o, rc, &err);
                goto done;
            }
            if (cur.status != 200) {
                fail_api(o, game_state_get_game_resp_error(&cur), cur.status);
                goto done;
            }
            o->expected_version = cur.s200.version;
        }
        req.body.expected_version = o->expected_version;
        game_state_make_move_resp resp;
        int rc = game_state_make_move_call(o->app->gs, &ctx, &req, &resp, &err);
        if (rc != 0) {
            call_failed(o, rc, &err);
        } else if (resp.status != GAME_STATE_MAKE_MOVE_200) {
            fail_api(o, game_state_make_move_resp_error(&resp), resp.status);
        } else {
            o->game = state_of(&resp.s200);
            if (!resp.s200.last_move_is_null) {
                json_t *full = game_state_game_to_json(&resp.s200);
                o->last_move = json_incref(json_object_get(full, "lastMove"));
                json_decref(full);
            }
        }
    }
done:
    tb_error_deinit(&err);
    tb_arena_free(a);
}

static void now_rfc3339(char out[25])
{
    tb_time_rfc3339(out);
}

/* True when the room already got this version of the game (from a move made here, or relayed
 * from the bus); records it otherwise. Any loop. */
static bool already_broadcast(rt_app *app, const char *game_id, json_int_t version)
{
    pthread_mutex_lock(&app->seen_mu);
    json_t *v = json_object_get(app->seen, game_id);
    bool seen = v && json_integer_value(v) >= version;
    if (!seen) {
        if (json_object_size(app->seen) >= 10000)
            json_object_clear(app->seen); /* bounded: an old game's record is only an optimisation */
        json_object_set_new(app->seen, game_id, json_integer(version));
    }
    pthread_mutex_unlock(&app->seen_mu);
    return seen;
}

/* Back on the loop: answer the sender, tell the room. */
static void done(tb_rt_server *srv, void *ud)
{
    (void)srv;
    op *o = ud;
    rt_app *app = o->app;
    tb_rt_socket *s = tb_rt_nsp_socket(app->games, o->sid);
    tb_rt_event ev = {o->event, NULL, NULL, 0, o->ack_id};
    char room[96];
    snprintf(room, sizeof room, "game:%s", o->game_id);
    const char *rooms[] = {room};
    char ts[25];
    now_rfc3339(ts);
    if (o->code) {
        if (s)
            tb_rt_refuse(s, &ev, "error", o->code, o->message, &o->details);
        goto out;
    }
    tb_arena *a = tb_arena_new(0);
    tb_error err = TB_ERROR_INIT;
    games_game_ack ack;
    json_t *ackj = json_pack("{s:O}", "game", o->game);
    bool ok = a && ackj && games_game_ack_from_json(ackj, a, &ack, &err) == 0;
    if (!ok)
        tb_log_error(NULL,
                     "realtime: the game from Game State does not fit the realtime schema: %s",
                     err.message);
    if (o->kind == OP_JOIN) {
        if (s) {
            tb_rt_socket_join(s, room);
            games_user_joined uj = {.game_id = o->game_id, .user_id = o->user, .timestamp = ts};
            tb_rt_to to = {rooms, 1, NULL, 0, s, 0};
            games_broadcast_user_joined(app->games, &to, &uj);
        }
    }
    if ((o->kind == OP_MOVE || o->started) && ok &&
        !already_broadcast(app, o->game_id,
                           json_integer_value(json_object_get(o->game, "version")))) {
        json_t *upj = json_pack("{s:s,s:O,s:O?,s:s}", "gameId", o->game_id, "state", o->game,
                                "lastMove", o->last_move, "timestamp", ts);
        games_game_updated typed;
        if (upj && games_game_updated_from_json(upj, a, &typed, &err) == 0) {
            tb_rt_to to = {rooms, 1, NULL, 0, NULL, 0};
            games_broadcast_game_updated(app->games, &to, &typed);
        }
        json_decref(upj);
    }
    if (s && ok && o->kind == OP_JOIN)
        games_ack_join_game(s, &ev, &ack);
    else if (s && ok)
        games_ack_game_move(s, &ev, &ack);
    else if (s)
        tb_rt_refuse(s, &ev, "error", "INTERNAL", "the game could not be represented", NULL);
    json_decref(ackj);
    tb_error_deinit(&err);
    tb_arena_free(a);
out:
    json_decref(o->game);
    json_decref(o->last_move);
    tb_error_deinit(&o->details);
    free(o);
}

/* ---- relay: game events from the bus (moves made elsewhere: the Game Engine, REST) ---- */

typedef struct relay {
    rt_app *app;
    char game_id[64];
    json_t *game, *last_move;
    bool local;
} relay;

static void relay_on_loop(tb_rt_server *srv, void *ud)
{
    (void)srv;
    relay *r = ud;
    json_int_t version = json_integer_value(json_object_get(r->game, "version"));
    if (!already_broadcast(r->app, r->game_id, version)) {
        char room[96], ts[25];
        snprintf(room, sizeof room, "game:%s", r->game_id);
        tb_time_rfc3339(ts);
        const char *rooms[] = {room};
        tb_arena *a = tb_arena_new(0);
        tb_error err = TB_ERROR_INIT;
        json_t *upj = json_pack("{s:s,s:O,s:O?,s:s}", "gameId", r->game_id, "state", r->game,
                                "lastMove", r->last_move, "timestamp", ts);
        games_game_updated typed;
        if (a && upj && games_game_updated_from_json(upj, a, &typed, &err) == 0) {
            /* light events reach every node: each tells its own sockets */
            tb_rt_to to = {rooms, 1, NULL, 0, NULL, r->local ? TB_RT_LOCAL : 0};
            games_broadcast_game_updated(r->app->games, &to, &typed);
        } else {
            tb_log_warn(NULL, "realtime: not relaying game %s: %s", r->game_id, err.message);
        }
        json_decref(upj);
        tb_error_deinit(&err);
        tb_arena_free(a);
    }
    json_decref(r->game);
    json_decref(r->last_move);
    free(r);
}

/* On a bus worker (it may block): the game's state now, then to the loop. */
static int relay_game(rt_app *app, tb_ctx *ctx, const char *game_id, bool local)
{
    game_state_get_game_req req = {.game_id = (char *)game_id};
    game_state_get_game_resp resp;
    tb_error err = TB_ERROR_INIT;
    int rc = game_state_get_game_call(app->gs, ctx, &req, &resp, &err);
    tb_error_deinit(&err);
    if (rc != 0)
        return TB_EVENT_RETRY; /* Game State is away: the bus tries again later */
    if (resp.status != 200)
        return TB_EVENT_ACK; /* no such game: nothing to tell */
    relay *r = calloc(1, sizeof *r);
    if (!r)
        return TB_EVENT_RETRY;
    r->app = app;
    r->local = local;
    snprintf(r->game_id, sizeof r->game_id, "%s", game_id);
    r->game = state_of(&resp.s200);
    if (!resp.s200.last_move_is_null) {
        json_t *full = game_state_game_to_json(&resp.s200);
        r->last_move = json_incref(json_object_get(full, "lastMove"));
        json_decref(full);
    }
    if (!r->game || tb_rt_server_post(app->srv, relay_on_loop, r) != 0) {
        json_decref(r->game);
        json_decref(r->last_move);
        free(r);
        return TB_EVENT_RETRY;
    }
    return TB_EVENT_ACK;
}

static int on_move_made(tb_ctx *ctx, const tb_event *ev, const game_move_made_v1 *d, void *ud)
{
    (void)ev;
    return relay_game(ud, ctx, d->game_id, true);
}

static int on_started(tb_ctx *ctx, const tb_event *ev, const game_started_v1 *d, void *ud)
{
    (void)ev;
    return relay_game(ud, ctx, d->game_id, false);
}

static int on_completed(tb_ctx *ctx, const tb_event *ev, const game_completed_v1 *d, void *ud)
{
    (void)ev;
    return relay_game(ud, ctx, d->game_id, false);
}

static int relay_start(rt_app *app, tb_error *err)
{
    const char *redis = getenv("TB_REDIS_URL"), *amqp = getenv("TB_AMQP_URL");
    bool light = redis && *redis, durable = amqp && *amqp;
    if (!light && !durable) {
        tb_log_info(NULL, "realtime: TB_REDIS_URL and TB_AMQP_URL unset: not relaying game events");
        return 0;
    }
    tb_bus_opts bo = {.service = "realtime", .light_parallel = true};
    int rc = (app->bus = tb_bus_new(&bo, err)) ? 0 : TB_ENOMEM;
    if (rc == 0 && light)
        rc = game_move_made_v1_subscribe(app->bus, on_move_made, app, err);
    if (rc == 0 && durable)
        rc = game_started_v1_subscribe(app->bus, on_started, app, err);
    if (rc == 0 && durable)
        rc = game_completed_v1_subscribe(app->bus, on_completed, app, err);
    if (rc == 0)
        rc = tb_bus_start(app->bus, err);
    return rc;
}

static op *op_new(rt_app *app, tb_rt_socket *s, const tb_rt_event *ev, op_kind kind,
                  const char *game_id)
{
    const tb_jwt_claims *c = tb_rt_socket_claims(s);
    const char *sub = c ? tb_jwt_claims_sub(c) : NULL;
    if (!sub) {
        tb_rt_refuse(s, ev, "error", "UNAUTHENTICATED", "the handshake's token has no subject",
                     NULL);
        return NULL;
    }
    op *o = calloc(1, sizeof *o);
    if (!o) {
        tb_rt_refuse(s, ev, "error", "INTERNAL", "out of memory", NULL);
        return NULL;
    }
    tb_error_init(&o->details);
    o->app = app;
    o->kind = kind;
    o->ack_id = ev->ack_id;
    snprintf(o->sid, sizeof o->sid, "%s", tb_rt_socket_id(s));
    snprintf(o->event, sizeof o->event, "%s", ev->name);
    snprintf(o->game_id, sizeof o->game_id, "%s", game_id);
    snprintf(o->user, sizeof o->user, "%s", sub);
    return o;
}

static void offload(rt_app *app, tb_rt_socket *s, const tb_rt_event *ev, op *o)
{
    if (tb_rt_server_offload(app->srv, work, done, o) != 0) {
        tb_rt_refuse(s, ev, "error", "INTERNAL", "cannot start the call", NULL);
        free(o);
    }
}

static void on_join_game(tb_rt_socket *s, const games_join_game *p, const tb_rt_event *ev, void *ud)
{
    op *o = op_new(ud, s, ev, OP_JOIN, p->game_id);
    if (o)
        offload(ud, s, ev, o);
}

static void on_game_move(tb_rt_socket *s, const games_game_move *p, const tb_rt_event *ev, void *ud)
{
    op *o = op_new(ud, s, ev, OP_MOVE, p->game_id);
    if (!o)
        return;
    o->column = p->column;
    o->has_expected = p->has_expected_version;
    o->expected_version = p->has_expected_version ? p->expected_version : 0;
    offload(ud, s, ev, o);
}

static void on_leave_game(tb_rt_socket *s, const games_leave_game *p, const tb_rt_event *ev,
                          void *ud)
{
    (void)ev;
    (void)ud;
    char room[96];
    snprintf(room, sizeof room, "game:%s", p->game_id);
    tb_rt_socket_leave(s, room);
}

/* After the JWT middleware: the token carries app->scope, else "Authentication error". */
static int require_scope(tb_rt_socket *s, const json_t *auth, tb_rt_refusal *out, void *ud)
{
    (void)auth;
    rt_app *app = ud;
    const tb_jwt_claims *c = tb_rt_socket_claims(s);
    if (c && tb_jwt_claims_has_scope(c, app->scope))
        return 0;
    snprintf(out->message, sizeof out->message, "Authentication error");
    out->data = json_pack("{s:s, s:s}", "reason", "insufficient_scope", "scope", app->scope);
    return 1;
}

int rt_app_new(tb_rt_server *srv, tb_jwt_verifier *verifier, const char *game_state_url,
               rt_app **out, tb_error *err)
{
    rt_app *app = calloc(1, sizeof *app);
    if (!app)
        return TB_ENOMEM;
    app->srv = srv;
    app->seen = json_object();
    pthread_mutex_init(&app->seen_mu, NULL);
    app->gs = game_state_client_new(game_state_url, NULL, err);
    if (!app->gs || !app->seen) {
        json_decref(app->seen);
        free(app);
        return TB_EINVAL;
    }
    app->games = tb_rt_server_of(srv, games_namespace);
    if (verifier) {
        tb_rt_nsp_use_jwt(app->games, verifier);
        /* a player's token: any token the issuer signs verified (a service's client-credentials
         * token became a "player"); REALTIME_JWT_SCOPE, "user" unless set, "" for any */
        const char *scope = getenv("REALTIME_JWT_SCOPE");
        snprintf(app->scope, sizeof app->scope, "%s", scope ? scope : "user");
        if (app->scope[0])
            tb_rt_nsp_use(app->games, require_scope, app);
    }
    app->handlers.join_game = on_join_game;
    app->handlers.game_move = on_game_move;
    app->handlers.leave_game = on_leave_game;
    app->handlers.ud = app;
    int rc = games_on(app->games, &app->handlers);
    if (rc == 0)
        rc = relay_start(app, err);
    if (rc != 0) {
        rt_app_free(app);
        return rc;
    }
    *out = app;
    return 0;
}

void rt_app_stop(rt_app *app)
{
    if (!app)
        return;
    tb_bus_free(app->bus); /* its handlers post to the server */
    app->bus = NULL;
}

void rt_app_free(rt_app *app)
{
    if (!app)
        return;
    rt_app_stop(app);
    game_state_client_free(app->gs);
    json_decref(app->seen);
    pthread_mutex_destroy(&app->seen_mu);
    free(app);
}
