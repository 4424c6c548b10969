/* The Realtime service's application: namespace /games over the Game State service. */
#ifndef TB_HANDLERS_REALTIME_H
#define TB_HANDLERS_REALTIME_H

#include "tablium/error.h"
#include "tablium/jwt.h"
#include "tablium/realtime.h"

typedef struct rt_app rt_app;

/** Registers /games on srv: JWT on the handshake when verifier is given (borrowed: must
 *  outlive the server), the typed handlers, a Game State client at game_state_url, and the relay
 *  of game events (game.move.made from TB_REDIS_URL; game.started and game.completed from
 *  TB_AMQP_URL, queue "realtime") as game-updated to the game's room. Caller owns. To stop:
 *  rt_app_stop (the relay), tb_rt_server_free, then rt_app_free. */
int rt_app_new(tb_rt_server *srv, tb_jwt_verifier *verifier, const char *game_state_url,
               rt_app **out, tb_error *err);
void rt_app_stop(rt_app *app);
void rt_app_free(rt_app *app);

#endif
