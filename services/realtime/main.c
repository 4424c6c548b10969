/*
 * The Realtime service: Socket.IO namespace /games (handlers/realtime) for browsers and the
 * platform's players, over the Game State service.
 *
 *   REALTIME_PORT / PORT      port (default 3001); REALTIME_HOST (default 127.0.0.1)
 *   GAME_STATE_SERVICE_URL    the Game State service (tb_service_url)
 *   TB_JWT_SECRET / TB_JWT_JWKS_FILE / TB_JWT_JWKS_URL / TB_JWT_JWKS, TB_JWT_ISSUER,
 *   TB_JWT_AUDIENCE           how handshake tokens are verified (as the REST services)
 *   REALTIME_JWT_SCOPE        the scope a handshake token must carry ("user", a player's token
 *                             from Auth's login, unless set; empty: any)
 *   SERVICE_AUTH_TOKEN or AUTH_SERVICE_URL + TB_SERVICE_CLIENT_ID/_SECRET
 *                             this service's own token for Game State (tablium/token.h)
 *   REDIS_URL                 redis://host:port: share rooms with other Realtime nodes
 *   TB_RT_RECOVERY_MS         with REDIS_URL: connection state recovery, sessions kept this long
 *                             after a disconnect (socket.io's maxDisconnectionDuration; 0: off)
 *   TB_REDIS_URL, TB_AMQP_URL the event bus: game events relayed to the rooms
 *   TB_RT_PING_INTERVAL_MS, TB_RT_PING_TIMEOUT_MS   heartbeat (25000 / 20000)
 *   TB_RT_LOOPS               event loop threads (default: one per CPU)
 * Stops on SIGTERM or SIGINT (exit 0).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../handlers/realtime/realtime.h"
#include "game_state/game_state.h"
#include "tablium/client.h"
#include "tablium/jwt.h"
#include "tablium/log.h"
#include "tablium/token.h"

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

int main(void)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    tb_error err = TB_ERROR_INIT;
    tb_global_init();
    if (tb_service_token_init("realtime", &err) != 0) {
        fprintf(stderr, "realtime: %s\n", err.message);
        return 1;
    }
    tb_jwt_verifier *verifier = NULL;
    if (tb_jwt_verifier_from_env(&verifier, &err) != 0) {
        fprintf(stderr, "realtime: %s\n", err.message);
        return 1;
    }
    if (!verifier)
        tb_log_warn(NULL, "realtime: no TB_JWT_* key source: /games accepts no handshake");

    tb_rt_options o = TB_RT_OPTIONS_INIT;
    o.port = env_int("REALTIME_PORT", env_int("PORT", 3001));
    if (getenv("REALTIME_HOST"))
        o.host = getenv("REALTIME_HOST");
    o.ping_interval_ms = (unsigned)env_int("TB_RT_PING_INTERVAL_MS", 25000);
    o.ping_timeout_ms = (unsigned)env_int("TB_RT_PING_TIMEOUT_MS", 20000);
    if (!getenv("TB_RT_LOOPS")) /* else the library reads it */
        o.loops = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    tb_rt_server *srv;
    if (tb_rt_server_new(&o, &srv, &err) != 0) {
        fprintf(stderr, "realtime: %s\n", err.message);
        return 1;
    }
    const char *redis = getenv("REDIS_URL");
    if (redis && *redis) {
        static char host[128];
        tb_rt_redis_options ro = TB_RT_REDIS_OPTIONS_INIT;
        if (sscanf(redis, "redis://%127[^:/]:%d", host, &ro.port) < 1) {
            fprintf(stderr, "realtime: REDIS_URL must be redis://host:port\n");
            return 1;
        }
        ro.host = host;
        if (tb_rt_server_use_redis(srv, &ro, &err) != 0) {
            fprintf(stderr, "realtime: %s\n", err.message);
            return 1;
        }
        int rec_ms = env_int("TB_RT_RECOVERY_MS", 0);
        if (rec_ms > 0) {
            tb_rt_recovery_options rc = TB_RT_RECOVERY_OPTIONS_INIT;
            rc.host = host;
            rc.port = ro.port;
            rc.max_disconnection_ms = (unsigned)rec_ms;
            if (tb_rt_server_use_recovery(srv, &rc, &err) != 0) {
                fprintf(stderr, "realtime: %s\n", err.message);
                return 1;
            }
        }
    }
    char *gs_url = tb_service_url("game_state", GAME_STATE_DEFAULT_URL);
    rt_app *app = NULL;
    if (!gs_url || rt_app_new(srv, verifier, gs_url, &app, &err) != 0) {
        fprintf(stderr, "realtime: %s\n", err.message[0] ? err.message : "cannot start");
        return 1;
    }
    if (tb_rt_server_start(srv) != 0) {
        fprintf(stderr, "realtime: cannot start the loop\n");
        return 1;
    }
    tb_log_info(NULL, "realtime: /games on %s:%d, Game State at %s%s", o.host,
                tb_rt_server_port(srv), gs_url, redis ? ", Redis adapter on" : "");
    int sig;
    sigwait(&sigs, &sig);
    rt_app_stop(app); /* the relay posts to the server: it stops first */
    tb_rt_server_free(srv);
    rt_app_free(app);
    free(gs_url);
    tb_jwt_verifier_free(verifier);
    tb_service_token_shutdown();
    return 0;
}
