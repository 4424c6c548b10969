/*
 * tablium realtime: a Socket.IO v5 / Engine.IO v4 server on libwebsockets (libtablium_realtime).
 *
 *   tb_rt_server *srv;
 *   tb_rt_options o = TB_RT_OPTIONS_INIT;
 *   o.port = 3000;
 *   tb_rt_server_new(&o, &srv, NULL);
 *   tb_rt_nsp *games = tb_rt_server_of(srv, "/games");
 *   tb_rt_nsp_on(games, "join-game", on_join, NULL);
 *   tb_rt_server_start(srv);            // o.loops event loop threads (default 1)
 *   ...
 *   tb_rt_server_free(srv);             // stops, closes every connection
 *
 * Transports: WebSocket and HTTP long-polling with the upgrade, on one port and path
 * (`/socket.io/` by default), as the official socket.io-client expects. The same port answers
 * GET /health, /health/live and /health/ready ({"status":"ok","sessions":N}). An optional raw
 * Engine.IO path (tb_rt_options.eio_path) hands whole Engine.IO messages to a callback.
 *
 * Values: an event's arguments are a jansson array. Binary arguments travel as attachments: in
 * the array they are placeholders `{"_placeholder":true,"num":N}` and their bytes are
 * `bins[N]` (tb_rt_event.bins when received; the bins parameter when sending). tb_rt_bin_of()
 * resolves a placeholder.
 *
 * Threads: every callback runs on the server's loop thread, and every function here must be
 * called on that thread (from a callback), except tb_rt_server_new/start/free, tb_rt_server_post
 * (any thread: runs a function on the loop) and tb_rt_server_stats.
 *
 * Several loops (tb_rt_options.loops or TB_RT_LOOPS > 1; one per core scales a node across its
 * CPUs): each loop thread serves its own share of the connections, with its own sessions,
 * sockets and rooms; one acceptor thread hands each new connection to the loop of the session
 * its request names (the sid: the long-polling requests and the upgrade of a session reach its
 * loop, as @socket.io/sticky does for Node.js workers), a new session to the least busy loop.
 * What changes for the application:
 *   - handlers run on several threads at once: what they share must be thread-safe;
 *   - register namespaces, middleware and handlers before tb_rt_server_start (every loop gets
 *     them); the tb_rt_nsp of tb_rt_server_of may be used from any loop's callbacks (it stands
 *     for that loop's part of the namespace);
 *   - tb_rt_broadcast reaches the sockets of every loop (through the Redis adapter when there
 *     is one: each loop is then a node of its own, as each worker of a Node.js cluster is);
 *     tb_rt_nsp_count and tb_rt_room_count count every loop's sockets; tb_rt_nsp_socket finds
 *     the calling loop's only (a socket's callbacks run on its loop);
 *   - tb_rt_server_offload's done runs on the loop that called it; tb_rt_server_post runs on
 *     the first loop;
 *   - a long-polling answer closes its connection (`Connection: close`): a kept-alive connection
 *     could carry another session's next request to the wrong loop. WebSockets are unaffected.
 *
 * Errors: 0 or a negative TB_E* code (tablium/error.h).
 */
#ifndef TABLIUM_REALTIME_H
#define TABLIUM_REALTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tablium/error.h"

typedef struct tb_rt_server tb_rt_server;
typedef struct tb_rt_nsp tb_rt_nsp;
typedef struct tb_rt_socket tb_rt_socket;
struct tb_jwt_verifier;
struct tb_jwt_claims;

/** Server options. Start from TB_RT_OPTIONS_INIT; every field has the reference server's
 *  default but cors_origin: socket.io sends no CORS headers unless told, this server reflects
 *  the Origin (set "" for socket.io's behaviour, or the one origin browsers may come from). */
typedef struct tb_rt_options {
    const char *host;            /**< address to bind; default "127.0.0.1" */
    int port;                    /**< 0: any free port (tb_rt_server_port tells which) */
    const char *path;            /**< Socket.IO path, default "/socket.io/" */
    const char *eio_path;        /**< raw Engine.IO path, or NULL (then on_eio_message unused) */
    unsigned ping_interval_ms;   /**< default 25000 */
    unsigned ping_timeout_ms;    /**< default 20000 */
    unsigned connect_timeout_ms; /**< no Socket.IO CONNECT within this closes the link; 45000 */
    size_t max_payload;          /**< largest Engine.IO message or polling body; 1000000 */
    size_t max_buffered;         /**< bytes queued for one client before the slow-client policy
                                      (volatile packets dropped, others disconnect); 4 MB */
    unsigned max_connections;    /**< connections the loop serves (fd table size); 65536 */
    const char *cors_origin;     /**< NULL: reflect the request's Origin with credentials
                                      (socket.io `cors: {origin: true, credentials: true}`);
                                      "" : no CORS headers; else that origin */
    /** Raw Engine.IO messages on eio_path (borrowed: valid during the call). Reply with
     *  tb_rt_eio_send(). */
    void (*on_eio_message)(tb_rt_server *srv, const char *sid, const void *data, size_t len,
                           bool binary, void *ud);
    void *eio_ud;
    /** Event loop threads. 0: the environment's TB_RT_LOOPS (a number, or "auto" for one per
     *  CPU), else 1. With several, see "Several loops" above. At most 64. */
    unsigned loops;
} tb_rt_options;

#define TB_RT_OPTIONS_INIT                                                                         \
    {                                                                                              \
        "127.0.0.1", 0, "/socket.io/", NULL, 25000, 20000, 45000, 1000000, 4u << 20, 65536, NULL,  \
            NULL, NULL, 0                                                                          \
    }

/** One binary attachment (borrowed bytes). */
typedef struct tb_rt_bin {
    const void *data;
    size_t len;
} tb_rt_bin;

/** An event received from a client. Everything is borrowed: valid during the callback. */
typedef struct tb_rt_event {
    const char *name;      /**< the event name (a numeric name is given as its decimal text) */
    json_t *args;          /**< the arguments after the name: an array, possibly empty */
    const tb_rt_bin *bins; /**< attachments the placeholders in args refer to */
    size_t nbins;
    int64_t ack_id; /**< >= 0 when the client waits for an acknowledgement (tb_rt_ack) */
} tb_rt_event;

/** Where a broadcast goes. All fields optional: no rooms means every socket of the namespace. */
typedef struct tb_rt_to {
    const char *const *rooms; /**< union of these rooms */
    size_t nrooms;
    const char *const *except; /**< minus the members of these rooms */
    size_t nexcept;
    const tb_rt_socket *except_socket; /**< minus this socket (broadcast from a sender) */
    unsigned flags;                    /**< TB_RT_VOLATILE */
} tb_rt_to;

/** A volatile packet may be dropped for a slow client instead of disconnecting it. */
#define TB_RT_VOLATILE 1u
/** This node's sockets only: not published to the other nodes (Socket.IO's `.local`). */
#define TB_RT_LOCAL 2u

/** What a middleware answers when it refuses a connection: CONNECT_ERROR
 *  `{"message": message, "data": data}`. */
typedef struct tb_rt_refusal {
    char message[256];
    json_t *data; /**< optional; the middleware's reference, released by the server */
} tb_rt_refusal;

typedef void (*tb_rt_event_fn)(tb_rt_socket *s, const tb_rt_event *ev, void *ud);
typedef void (*tb_rt_socket_fn)(tb_rt_socket *s, void *ud);
/** reason: Socket.IO's names ("client namespace disconnect", "server namespace disconnect",
 *  "transport close", "transport error", "ping timeout", "parse error", "server shutting down",
 *  "slow client"). */
typedef void (*tb_rt_disconnect_fn)(tb_rt_socket *s, const char *reason, void *ud);
/** Returns 0 to accept, else fills `out` and returns nonzero. auth: the CONNECT payload
 *  (borrowed; an empty object when the client sent none). */
typedef int (*tb_rt_middleware_fn)(tb_rt_socket *s, const json_t *auth, tb_rt_refusal *out,
                                   void *ud);
/** An acknowledgement from the client: status 0 with its arguments, or TB_ETIMEDOUT (args NULL),
 *  or TB_ECONN when the socket went away first. Borrowed: valid during the call. */
typedef void (*tb_rt_ack_fn)(tb_rt_socket *s, int status, const json_t *args, const tb_rt_bin *bins,
                             size_t nbins, void *ud);
/** A namespace name the server does not know: return true to create it (it takes the pattern's
 *  handlers and middleware). */
typedef bool (*tb_rt_nsp_match_fn)(const char *name, void *ud);

typedef struct tb_rt_stats {
    uint64_t sessions;           /**< Engine.IO sessions open now */
    uint64_t sockets;            /**< Socket.IO sockets connected now (all namespaces) */
    uint64_t websocket;          /**< sessions on WebSocket now */
    uint64_t packets_out;        /**< Engine.IO packets queued for clients */
    uint64_t packets_in;         /**< Engine.IO packets received */
    uint64_t dropped_volatile;   /**< volatile packets dropped for slow clients */
    uint64_t slow_disconnects;   /**< clients disconnected for exceeding max_buffered */
    uint64_t protocol_errors;    /**< links closed for invalid packets */
    uint64_t refused;            /**< CONNECTs refused (unknown namespace, middleware) */
    uint64_t buffered_bytes;     /**< bytes queued for clients now */
    uint64_t adapter_published;  /**< messages published to the other nodes */
    uint64_t adapter_received;   /**< messages received from the other nodes */
    uint64_t adapter_bytes_in;   /**< bytes of those messages */
    uint64_t adapter_dropped;    /**< messages not delivered (malformed, or the outbound queue
                                      full while Redis was unreachable) */
    uint64_t adapter_reconnects; /**< Redis connections re-established */
    uint64_t recovery_stored;    /**< packets stored for connection state recovery */
    uint64_t recovery_failed;    /**< packets sent without an offset (Redis unreachable) */
    uint64_t recovered;          /**< sockets recovered (same id, rooms, missed packets) */
    uint64_t not_recovered;      /**< recoveries asked for and refused (expired, epoch...) */
} tb_rt_stats;

/* ---- server ---- */

/** Creates a server and binds its port (so tb_rt_server_port is known); the loop starts with
 *  tb_rt_server_start. Caller owns; free with tb_rt_server_free. */
int tb_rt_server_new(const tb_rt_options *opts, tb_rt_server **out, tb_error *err);
/** Starts the loop thread. */
int tb_rt_server_start(tb_rt_server *srv);
/** Stops the loop (clients see the link close), joins it and frees everything. NULL-safe. Not
 *  from a callback. */
void tb_rt_server_free(tb_rt_server *srv);
/** The bound port. */
int tb_rt_server_port(const tb_rt_server *srv);
/** Runs fn(srv, ud) on the loop thread soon. Any thread. */
int tb_rt_server_post(tb_rt_server *srv, void (*fn)(tb_rt_server *srv, void *ud), void *ud);
/**
 * Runs work(ud) on one of the server's worker threads (started on first use; TB_RT_WORKERS, default
 * 4), then done(srv, ud) on the loop thread. For handlers that must block, e.g. to call another
 * service: the loop keeps serving meanwhile. A socket seen in the handler may be gone by the time
 * done runs: keep its id and look it up again (tb_rt_nsp_socket). Loop thread or any thread.
 */
int tb_rt_server_offload(tb_rt_server *srv, void (*work)(void *ud),
                         void (*done)(tb_rt_server *srv, void *ud), void *ud);
/** Counters (any thread; a consistent-enough snapshot). */
void tb_rt_server_stats(tb_rt_server *srv, tb_rt_stats *out);
/** Bytes of heap the server holds per open session on average (sessions, sockets, rooms, queues
 *  and libwebsockets' own per-connection state), for capacity planning. */
size_t tb_rt_server_bytes_per_session(tb_rt_server *srv);

/** Sends a raw Engine.IO message on eio_path's session `sid`. TB_ENOTFOUND when it is gone. */
int tb_rt_eio_send(tb_rt_server *srv, const char *sid, const void *data, size_t len, bool binary);

/* ---- several nodes ---- */

/** The Redis adapter: wire-compatible with @socket.io/redis-adapter 8.x (MessagePack broadcasts
 *  on `<key>#<nsp>#[<room>#]`, JSON requests on `<key>-request#<nsp>#`), so C nodes and Node.js
 *  socket.io nodes serve the same rooms. One background thread per server talks to Redis;
 *  broadcasts made while Redis is unreachable wait in a bounded queue and go out on reconnect. */
typedef struct tb_rt_redis_options {
    const char *host;  /**< default "127.0.0.1" */
    int port;          /**< default 6379 */
    const char *key;   /**< channel prefix, default "socket.io" (the npm adapter's `key`) */
    size_t max_queued; /**< bytes of broadcasts kept while Redis is unreachable; 16 MB */
    /** Targeted mode: this node SUBSCRIBEs to `<key>#<nsp>#<room>#` only for the rooms it has
     *  members in (and `<key>#<nsp>#` for broadcasts to everyone), instead of PSUBSCRIBE
     *  `<key>#<nsp>#*`, so a node receives only what its sockets need and adding nodes adds
     *  capacity. A broadcast to several rooms is published once per room, each copy excepting
     *  the rooms before it (a socket in two of them gets it once). Node.js nodes (the npm
     *  adapter's pattern) still receive everything and deliver it correctly; what they publish
     *  to several rooms at once, on `<key>#<nsp>#`, reaches targeted nodes too. */
    bool targeted;
} tb_rt_redis_options;

#define TB_RT_REDIS_OPTIONS_INIT                                                                   \
    {                                                                                              \
        "127.0.0.1", 6379, "socket.io", 16u << 20, false                                           \
    }

/** Attaches the Redis adapter. Before tb_rt_server_start. Namespaces created later are added
 *  as they come. */
int tb_rt_server_use_redis(tb_rt_server *srv, const tb_rt_redis_options *opts, tb_error *err);
/** True once the adapter has its Redis subscriptions in place (any thread). */
bool tb_rt_server_adapter_ready(tb_rt_server *srv);

/** A `serverSideEmit(event, ...args)` from another node (borrowed). When the sender waits for
 *  acknowledgements, the returned value (a new reference, or NULL for null) is this node's
 *  answer. */
typedef json_t *(*tb_rt_server_emit_fn)(tb_rt_nsp *nsp, const char *event, const json_t *args,
                                        void *ud);
void tb_rt_nsp_on_server_emit(tb_rt_nsp *nsp, tb_rt_server_emit_fn fn, void *ud);
/** Sends event with args (an array or NULL, borrowed) to the other nodes' server-side listeners
 *  (Node.js: `io.on(event, ...)`), without ack. TB_ESTATE without an adapter. */
int tb_rt_nsp_server_emit(tb_rt_nsp *nsp, const char *event, const json_t *args);

/* ---- connection state recovery ---- */

/**
 * Connection state recovery, Socket.IO 4.6's `connectionStateRecovery`, kept in Redis so that it
 * works on any node, also after the serving node was killed: a client that lost its link comes
 * back (socket.io-client sends its `pid` and the offset of the last packet it received) within
 * max_disconnection_ms and gets the same socket id, its rooms and the packets sent to them
 * meanwhile, and `socket.recovered` is true. Otherwise it gets a new session, and
 * `socket.recovered` is false (session expired, missed more than max_missed, Redis lost its
 * data: a new epoch).
 *
 * Which packets: events without an acknowledgement and not volatile, broadcast or emitted to
 * one socket; each carries its offset as a last argument (as with socket.io, listeners see it).
 * With recovery on, such a packet goes out once Redis has stored it (about one Redis round
 * trip later); while Redis is unreachable it goes out at once without an offset.
 * Differences from socket.io: the middlewares run again on a recovery (a JWT is checked, and a
 * session is recovered only for the same `sub`); a client that had received no packet yet is
 * recovered too (from the session's start). Packets that two nodes broadcast within a Redis
 * round trip of each other may reach a client in the other order, and a recovery then replays
 * the later-numbered one again.
 */
typedef struct tb_rt_recovery_options {
    const char *host;              /**< Redis; default "127.0.0.1" */
    int port;                      /**< default 6379 */
    const char *key;               /**< key prefix, default "socket.io" (keys "<key>:rec:...") */
    unsigned max_disconnection_ms; /**< default 120000 (socket.io's 2 minutes) */
    size_t max_missed;             /**< more missed packets than this: not recovered; 1000 */
    size_t stream_max;             /**< packets kept per room (approximately); 10000 */
} tb_rt_recovery_options;

#define TB_RT_RECOVERY_OPTIONS_INIT                                                                \
    {                                                                                              \
        "127.0.0.1", 6379, "socket.io", 120000, 1000, 10000                                        \
    }

/** Turns recovery on for every namespace. Before tb_rt_server_start. */
int tb_rt_server_use_recovery(tb_rt_server *srv, const tb_rt_recovery_options *opts, tb_error *err);
/** True when this socket is a recovered session (socket.io's `socket.recovered`). */
bool tb_rt_socket_recovered(const tb_rt_socket *s);

/* ---- namespaces ---- */

/** The namespace `name` ("/" or "/games"), created on first use. Borrowed: lives as long as the
 *  server. */
tb_rt_nsp *tb_rt_server_of(tb_rt_server *srv, const char *name);
/** A pattern of namespaces (Socket.IO's `io.of(regex|fn)`): an unknown name that `match`
 *  accepts becomes a namespace with the handlers registered on the returned one. */
tb_rt_nsp *tb_rt_server_of_match(tb_rt_server *srv, tb_rt_nsp_match_fn match, void *ud);
const char *tb_rt_nsp_name(const tb_rt_nsp *nsp);
/** Middleware, run in order before a socket joins the namespace. */
int tb_rt_nsp_use(tb_rt_nsp *nsp, tb_rt_middleware_fn fn, void *ud);
/** Middleware verifying `auth.token` with the runtime's JWT verifier (borrowed: must outlive the
 *  server). Refusal: CONNECT_ERROR "Authentication error" with `data.reason` (the verifier's
 *  error name). The claims stay on the socket (tb_rt_socket_claims). */
int tb_rt_nsp_use_jwt(tb_rt_nsp *nsp, struct tb_jwt_verifier *verifier);
void tb_rt_nsp_on_connect(tb_rt_nsp *nsp, tb_rt_socket_fn fn, void *ud);
void tb_rt_nsp_on_disconnect(tb_rt_nsp *nsp, tb_rt_disconnect_fn fn, void *ud);
/** Socket.IO's "disconnecting": runs before on_disconnect, while the socket is still in its
 *  rooms (tb_rt_socket_rooms, tb_rt_socket_in), so that a handler can tell them who left (a
 *  broadcast from here reaches the others; the socket itself gets nothing more). By then
 *  on_disconnect sees it in no room. */
void tb_rt_nsp_on_disconnecting(tb_rt_nsp *nsp, tb_rt_disconnect_fn fn, void *ud);
/** The handler of event `name` (copied). A second registration replaces the first. */
int tb_rt_nsp_on(tb_rt_nsp *nsp, const char *name, tb_rt_event_fn fn, void *ud);
/** The handler of events with no handler of their own. */
void tb_rt_nsp_on_any(tb_rt_nsp *nsp, tb_rt_event_fn fn, void *ud);
/** Emits to rooms of the namespace (to = NULL: every socket). args: an array or NULL (borrowed).
 *  The packet is encoded once and shared by every recipient.
 *  Here and in every emit and ack: TB_EINVAL, nothing sent, for a name Socket.IO reserves
 *  (connect, connect_error, disconnect, disconnecting, newListener, removeListener: the
 *  reference server throws), args that are not an array, or with attachments a placeholder
 *  `{"_placeholder":true,"num":N}` whose N names none of them. */
int tb_rt_broadcast(tb_rt_nsp *nsp, const tb_rt_to *to, const char *event, const json_t *args,
                    const tb_rt_bin *bins, size_t nbins);
/** Sockets of the namespace now, and members of a room (0 when it does not exist). */
size_t tb_rt_nsp_count(const tb_rt_nsp *nsp);
size_t tb_rt_room_count(const tb_rt_nsp *nsp, const char *room);

/* ---- sockets ---- */

const char *tb_rt_socket_id(const tb_rt_socket *s);
/** The connected socket of this namespace with this id, or NULL (gone, or another node's). */
tb_rt_socket *tb_rt_nsp_socket(tb_rt_nsp *nsp, const char *id);
tb_rt_nsp *tb_rt_socket_nsp(const tb_rt_socket *s);
/** The CONNECT payload (borrowed; an empty object when none was sent). */
const json_t *tb_rt_socket_auth(const tb_rt_socket *s);
/** Claims verified by tb_rt_nsp_use_jwt, else NULL (borrowed). */
const struct tb_jwt_claims *tb_rt_socket_claims(const tb_rt_socket *s);
/** Per-socket data; `release` (may be NULL) is called with it when the socket goes. */
void tb_rt_socket_set_data(tb_rt_socket *s, void *data, void (*release)(void *data));
void *tb_rt_socket_data(const tb_rt_socket *s);
/** The transport now: "polling" or "websocket". */
const char *tb_rt_socket_transport(const tb_rt_socket *s);

int tb_rt_socket_join(tb_rt_socket *s, const char *room);
int tb_rt_socket_leave(tb_rt_socket *s, const char *room);
bool tb_rt_socket_in(const tb_rt_socket *s, const char *room);
/** The rooms the socket is in (its own id among them): up to max names into out (borrowed,
 *  valid until it joins or leaves one), and how many there are. */
size_t tb_rt_socket_rooms(const tb_rt_socket *s, const char **out, size_t max);

/** Emits to this socket only. args: array or NULL (borrowed). */
int tb_rt_socket_emit(tb_rt_socket *s, const char *event, const json_t *args, const tb_rt_bin *bins,
                      size_t nbins);
/** Emits and waits for the client's acknowledgement: `cb` runs exactly once (the ack, a
 *  timeout after timeout_ms, or TB_ECONN at disconnect). If the call fails, cb never runs. */
int tb_rt_socket_emit_ack(tb_rt_socket *s, const char *event, const json_t *args,
                          const tb_rt_bin *bins, size_t nbins, unsigned timeout_ms, tb_rt_ack_fn cb,
                          void *ud);
/** Acknowledges a received event (ev->ack_id >= 0); once per event: the server does not keep
 *  which acks it owes (a handler may ack later, from a copy of ev), so a second call sends a
 *  second ACK, which socket.io-client ignores as it does an ack id it never sent. */
int tb_rt_ack(tb_rt_socket *s, const tb_rt_event *ev, const json_t *args, const tb_rt_bin *bins,
              size_t nbins);
/** Disconnects the socket from its namespace ("server namespace disconnect"); with
 *  close_link also closes the whole Engine.IO link. The socket is freed after on_disconnect:
 *  do not use it afterwards. */
void tb_rt_socket_disconnect(tb_rt_socket *s, bool close_link);

/**
 * Refuses a received event: sends `error_event` to this socket only with
 *   {"code": code, "message": message, "event": ev->name,
 *    "details": [{"path": "/column", "rule": "maximum", "message": "..."}]}
 * (details from err, which may be NULL), and, when the client waits for an ack, acks with
 * [{"error": <the same object>}] so that emitWithAck does not wait for its timeout. The generated
 * handlers of schemas/realtime call it for payloads that fail their schema.
 */
int tb_rt_refuse(tb_rt_socket *s, const tb_rt_event *ev, const char *error_event, const char *code,
                 const char *message, const tb_error *err);

/** The attachment a placeholder value stands for, or NULL when `v` is not a valid placeholder of
 *  this event. */
const tb_rt_bin *tb_rt_bin_of(const tb_rt_event *ev, const json_t *v);

#endif
