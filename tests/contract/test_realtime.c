/*
 * The Realtime service (services/realtime, handlers/realtime) as its users see it: real
 * realtime_service, game_state_service and user_service processes, and players on the official
 * socket.io-client (tests/realtime/players.js) who play a game to the end; then the same service
 * with Game State down (a refusal, not a hang), and a clean SIGTERM.
 */
#include "harness.h"
#include "game_state/game_state.h"
#include "user/user.h"

#include "tablium/client.h"
#include "tablium/ctx.h"
#include "tablium/ids.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static th_service user_svc = {.name = "user", .prism_port = -1};
static th_service gs_svc = {.name = "game_state", .prism_port = -1};
static th_service rt_svc = {.name = "realtime", .prism_port = -1};
static const char *gs_env[4];
static game_state_client *gc;
static user_client *uc;
static tb_arena *arena;
static tb_ctx ctx;

static const char *make_user(void)
{
    char *uname = tb_arena_alloc(arena, 40), *email = tb_arena_alloc(arena, 64);
    char id[37];
    tb_uuid_new(id);
    snprintf(uname, 40, "rt_%.8s", id);
    snprintf(email, 64, "%.8s@example.com", id);
    user_create_user_req req = {.body = {.username = uname, .email = email}};
    user_create_user_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(user_create_user_call(uc, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 201);
    tb_error_deinit(&err);
    return out.s201.id;
}

static const char *create_game(const char *creator)
{
    game_state_create_game_req req = {.body = {.user_id = (char *)creator}};
    game_state_create_game_resp out;
    tb_error err = TB_ERROR_INIT;
    ck_assert_msg(game_state_create_game_call(gc, &ctx, &req, &out, &err) == 0, "%s", err.message);
    ck_assert_int_eq(out.status, 201);
    tb_error_deinit(&err);
    return out.s201.id;
}

/* Runs tests/realtime/players.js with env; returns its exit status, its output in out. */
static int players(const char *game, const char *a, const char *b, const char *c, char *out,
                   size_t cap)
{
    char *ta = th_token(a, "user", 600, NULL), *tbk = th_token(b, "user", 600, NULL),
         *tc = th_token(c, "user", 600, NULL), *ts = th_token(a, "wallet.read", 600, NULL);
    char cmd[6144];
    snprintf(cmd, sizeof cmd,
             "cd tests/realtime && ([ -d node_modules/socket.io-client ] || npm ci --no-audit "
             "--no-fund >&2) && RT_URL=%s GAME_ID=%s USER_A=%s USER_B=%s TOKEN_A=%s TOKEN_B=%s "
             "TOKEN_C=%s TOKEN_SERVICE=%s timeout 120 node players.js 2>&1",
             rt_svc.direct, game, a, b, ta, tbk, tc, ts);
    free(ts);
    free(ta);
    free(tbk);
    free(tc);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

START_TEST(two_players_play_a_game_to_the_end_through_socket_io)
{
    const char *a = make_user(), *b = make_user(), *c = make_user();
    const char *game = create_game(a);
    char out[16384];
    int rc = players(game, a, b, c, out, sizeof out);
    ck_assert_msg(rc == 0, "players.js failed (%d):\n%s\nrealtime log: %s", rc, out, rt_svc.log);
    const char *line = strstr(out, "realtime-service: ");
    ck_assert_ptr_nonnull(line);
    printf("%.*s\n", (int)strcspn(line, "\n"), line);
    /* Game State agrees: the game is won by A */
    game_state_get_game_req req = {.game_id = (char *)game};
    game_state_get_game_resp resp;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(game_state_get_game_call(gc, &ctx, &req, &resp, &err), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.s200.status, GAME_STATE_GAME_STATUS_WON);
    ck_assert_str_eq(resp.s200.winner, a);
    tb_error_deinit(&err);
}
END_TEST

START_TEST(game_state_down_is_a_refusal_to_the_sender_not_a_hang)
{
    const char *a = make_user();
    char *token = th_token(a, "user", 600, NULL);
    th_kill(&gs_svc);
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd,
             "cd tests/realtime && RT_URL=%s TOKEN=%s timeout 60 node -e '"
             "const {io}=require(\"socket.io-client\");"
             "const s=io(process.env.RT_URL+\"/games\",{forceNew:true,transports:[\"websocket\"],"
             "reconnection:false,auth:{token:process.env.TOKEN}});"
             "s.on(\"connect\",async()=>{const t0=Date.now();"
             "const r=await s.timeout(15000).emitWithAck(\"join-game\","
             "{gameId:\"00000000-0000-4000-8000-000000000001\"});"
             "console.log(JSON.stringify({code:r.error&&r.error.code,ms:Date.now()-t0}));"
             "s.close();process.exit(0)});s.on(\"connect_error\",e=>{console.log(e.message);"
             "process.exit(1)})' 2>&1",
             rt_svc.direct, token);
    free(token);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_msg(strstr(out, "\"code\":\"UPSTREAM_UNAVAILABLE\""), "%s", out);
    printf("realtime-service: Game State down: %s", out);
    th_start(&gs_svc, gs_env); /* same port, data and environment */
}
END_TEST

/* A move made without Realtime (here over Game State's REST API): Game State publishes
 * game.move.made on Redis, Realtime relays it as game-updated to the game's room. */
START_TEST(moves_made_elsewhere_are_relayed_from_the_bus_to_the_room)
{
    if (!getenv("TB_TEST_REDIS_URL")) {
        printf("realtime-service: relay not checked (no TB_TEST_REDIS_URL)\n");
        return;
    }
    const char *a = make_user(), *b = make_user();
    const char *game = create_game(a);
    game_state_join_game_req jreq = {.game_id = (char *)game, .body = {.user_id = (char *)b}};
    game_state_join_game_resp jresp;
    tb_error err = TB_ERROR_INIT;
    ck_assert_int_eq(game_state_join_game_call(gc, &ctx, &jreq, &jresp, &err), 0);
    ck_assert_int_eq(jresp.status, 200);
    char *token = th_token(a, "user", 600, NULL);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd tests/realtime && RT_URL=%s TOKEN=%s GAME=%s timeout 30 node -e '"
             "const {io}=require(\"socket.io-client\");"
             "const s=io(process.env.RT_URL+\"/games\",{forceNew:true,transports:[\"websocket\"],"
             "reconnection:false,auth:{token:process.env.TOKEN}});"
             "s.on(\"game-updated\",u=>{console.log(\"updated\",u.state.version,"
             "u.lastMove&&u.lastMove.column,u.lastMove&&u.lastMove.playerId);"
             "if(u.state.version>=3){s.close();process.exit(0)}});"
             "s.on(\"connect\",async()=>{const r=await s.timeout(10000).emitWithAck(\"join-game\","
             "{gameId:process.env.GAME});console.log(\"joined\",r.game.version)});"
             "setTimeout(()=>{console.log(\"no relay\");process.exit(1)},15000)' 2>&1",
             rt_svc.direct, token, game);
    free(token);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    ck_assert_msg(strncmp(line, "joined 2", 8) == 0, "%s", line);
    game_state_make_move_req mreq = {
        .game_id = (char *)game,
        .body = {.player_id = (char *)a, .column = 3, .expected_version = 2}};
    game_state_make_move_resp mresp;
    ck_assert_int_eq(game_state_make_move_call(gc, &ctx, &mreq, &mresp, &err), 0);
    ck_assert_int_eq(mresp.status, 200);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    char want[160];
    snprintf(want, sizeof want, "updated 3 3 %s", a);
    ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "got: %s (want %s)", line, want);
    ck_assert_int_eq(pclose(p), 0);
    printf("realtime-service: a move made over REST reached the room through the bus\n");
    tb_error_deinit(&err);
}
END_TEST

/* Connection state recovery (TB_RT_RECOVERY_MS, sessions in Redis): a spectator whose link drops
 * while the players move is recovered with the game-updated events it missed
 * (tests/realtime/recovering-spectator.js), on a second Realtime service with recovery on. */
START_TEST(a_spectator_that_lost_its_link_recovers_the_moves_it_missed)
{
    const char *redis = getenv("TB_TEST_REDIS_URL");
    if (!redis) {
        printf("realtime-service: recovery not checked (no TB_TEST_REDIS_URL)\n");
        return;
    }
    th_service rec = {.name = "realtime", .prism_port = -1};
    static char genv[120], renv[300], data_env[300];
    snprintf(genv, sizeof genv, "GAME_STATE_SERVICE_URL=%s", gs_svc.direct);
    snprintf(renv, sizeof renv, "REDIS_URL=%s", redis);
    th_tmpdir(rec.dir, sizeof rec.dir);
    snprintf(data_env, sizeof data_env, "TB_DATA_DIR=%s", rec.dir);
    const char *env[] = {genv, renv, data_env, "TB_RT_RECOVERY_MS=10000", NULL};
    th_start(&rec, env);
    const char *a = make_user(), *b = make_user(), *c = make_user();
    const char *game = create_game(a);
    char *ta = th_token(a, "user", 600, NULL), *tbk = th_token(b, "user", 600, NULL),
         *tc = th_token(c, "user", 600, NULL);
    char cmd[4096], out[8192];
    snprintf(cmd, sizeof cmd,
             "cd tests/realtime && RT_URL=%s GAME_ID=%s TOKEN_A=%s TOKEN_B=%s TOKEN_C=%s "
             "timeout 60 node recovering-spectator.js 2>&1",
             rec.direct, game, ta, tbk, tc);
    free(ta);
    free(tbk);
    free(tc);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "recovering-spectator.js failed:\n%s\nlog: %s", out, rec.log);
    const char *line = strstr(out, "realtime-service: ");
    ck_assert_ptr_nonnull(line);
    printf("%.*s\n", (int)strcspn(line, "\n"), line);
    ck_assert_int_eq(th_stop(&rec), 0);
    th_cleanup(&rec);
}
END_TEST

START_TEST(sigterm_stops_the_service_cleanly)
{
    th_service s = {.name = "realtime", .prism_port = -1};
    static char genv[120];
    snprintf(genv, sizeof genv, "GAME_STATE_SERVICE_URL=%s", gs_svc.direct);
    const char *env[] = {genv, NULL};
    th_start(&s, env);
    ck_assert_int_eq(th_stop(&s), 0);
    th_cleanup(&s);
}
END_TEST

static void setup(void)
{
    static char wenv[96], genv[120], renv[120];
    snprintf(wenv, sizeof wenv, "WALLET_SERVICE_URL=http://127.0.0.1:%d", th_free_port());
    const char *uenv[] = {wenv, NULL};
    th_start(&user_svc, uenv);
    /* the event bus, when the shared brokers are there: Game State publishes, Realtime relays */
    static char redis_env[300], amqp_env[300];
    const char *redis = getenv("TB_TEST_REDIS_URL"), *amqp = getenv("TB_TEST_AMQP_URL");
    snprintf(redis_env, sizeof redis_env, "TB_REDIS_URL=%s", redis ? redis : "");
    snprintf(amqp_env, sizeof amqp_env, "TB_AMQP_URL=%s", amqp ? amqp : "");
    snprintf(genv, sizeof genv, "USER_SERVICE_URL=%s", user_svc.direct);
    gs_env[0] = genv;
    gs_env[1] = redis_env;
    gs_env[2] = amqp_env;
    th_start(&gs_svc, gs_env);
    snprintf(renv, sizeof renv, "GAME_STATE_SERVICE_URL=%s", gs_svc.direct);
    static char data_env[300]; /* the bus's dedupe log goes there, not in the working folder */
    th_tmpdir(rt_svc.dir, sizeof rt_svc.dir);
    snprintf(data_env, sizeof data_env, "TB_DATA_DIR=%s", rt_svc.dir);
    const char *renvs[] = {renv, redis_env, amqp_env, data_env, NULL};
    th_start(&rt_svc, renvs);
    arena = tb_arena_new(0);
    tb_ctx_init(&ctx, arena, NULL);
    tb_client_opts copts = th_client_opts();
    gc = game_state_client_new(gs_svc.direct, &copts, NULL);
    uc = user_client_new(user_svc.direct, &copts, NULL);
    ck_assert_ptr_nonnull(gc);
    ck_assert_ptr_nonnull(uc);
}

static void teardown(void)
{
    game_state_client_free(gc);
    user_client_free(uc);
    tb_arena_free(arena);
    th_stop_in_teardown(&rt_svc, "realtime_service");
    th_stop_in_teardown(&gs_svc, "game_state_service");
    th_stop_in_teardown(&user_svc, "user_service");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tb_global_init();
    Suite *s = suite_create("contract-realtime");
    TCase *tc = tcase_create("realtime");
    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, two_players_play_a_game_to_the_end_through_socket_io);
    tcase_add_test(tc, game_state_down_is_a_refusal_to_the_sender_not_a_hang);
    tcase_add_test(tc, moves_made_elsewhere_are_relayed_from_the_bus_to_the_room);
    tcase_add_test(tc, a_spectator_that_lost_its_link_recovers_the_moves_it_missed);
    tcase_add_test(tc, sigterm_stops_the_service_cleanly);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr) + th_teardown_failures();
    srunner_free(sr);
    return failed ? 1 : 0;
}
