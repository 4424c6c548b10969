/*
 * The server of tests/realtime/rooms.test.js: the realtime API beyond the conformance server
 * (rooms, broadcasts with exceptions, server emits with acks, disconnects, middleware with the
 * runtime's JWT verifier, namespace patterns, per-socket data, the slow-client policy, posts from
 * another thread), each driven by an event a socket.io-client sends. 127.0.0.1:$PORT.
 *   TB_TEST_JWT_SECRET  HS256 secret of the tokens /games accepts (issuer "tablium-test")
 *   REDIS_URL           redis://host:port: join the cluster through the Redis adapter
 *   NODE_NAME           this node's name in whoami (cluster tests)
 *   RECOVERY_MS         connection state recovery in the Redis of REDIS_URL, sessions kept this
 *                       long (recovery tests); RECOVERY_KEY its key prefix, RECOVERY_MAX_MISSED
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablium/jwt.h"
#include "tablium/realtime.h"

static tb_rt_server *srv;
static const char *node_name = "c";

static void ack_value(tb_rt_socket *s, const tb_rt_event *ev, json_t *v)
{
    json_t *args = json_pack("[o]", v);
    if (ev->ack_id >= 0)
        tb_rt_ack(s, ev, args, NULL, 0);
    json_decref(args);
}

static const char **string_list(const json_t *a, size_t *n)
{
    *n = json_array_size(a);
    const char **out = calloc(*n + 1, sizeof *out);
    for (size_t i = 0; i < *n; i++)
        out[i] = json_string_value(json_array_get(a, i));
    return out;
}

static void on_join(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    const char *room = json_string_value(json_array_get(ev->args, 0));
    ack_value(s, ev, json_boolean(room && tb_rt_socket_join(s, room) == 0));
}

static void on_leave(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    const char *room = json_string_value(json_array_get(ev->args, 0));
    ack_value(s, ev, json_boolean(room && tb_rt_socket_leave(s, room) == 0));
}

/* say {to: [rooms], except: [rooms], self: bool, volatile: bool, event, args: [...]} */
static void on_say(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    const json_t *o = json_array_get(ev->args, 0);
    tb_rt_to to = {0};
    size_t n;
    const char **rooms = string_list(json_object_get(o, "to"), &n);
    to.rooms = rooms;
    to.nrooms = n;
    const char **except = string_list(json_object_get(o, "except"), &n);
    to.except = except;
    to.nexcept = n;
    if (!json_is_true(json_object_get(o, "self")))
        to.except_socket = s;
    if (json_is_true(json_object_get(o, "volatile")))
        to.flags |= TB_RT_VOLATILE;
    int rc =
        tb_rt_broadcast(tb_rt_socket_nsp(s), &to, json_string_value(json_object_get(o, "event")),
                        json_object_get(o, "args"), ev->bins, ev->nbins);
    free(rooms);
    free(except);
    ack_value(s, ev, json_integer(rc));
}

static void on_count(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    const char *room = json_string_value(json_array_get(ev->args, 0));
    tb_rt_nsp *nsp = tb_rt_socket_nsp(s);
    ack_value(s, ev,
              json_pack("{s:I,s:I}", "room", (json_int_t)(room ? tb_rt_room_count(nsp, room) : 0),
                        "nsp", (json_int_t)tb_rt_nsp_count(nsp)));
}

static void asked(tb_rt_socket *s, int status, const json_t *args, const tb_rt_bin *bins,
                  size_t nbins, void *ud)
{
    (void)bins;
    (void)nbins;
    (void)ud;
    if (status == TB_ECONN)
        return; /* the socket is going: nothing can be emitted to it */
    json_t *res = json_pack("[{s:s}]", "status", status == 0 ? "ok" : tb_err_name(status));
    if (args)
        json_object_set(json_array_get(res, 0), "args", (json_t *)args);
    tb_rt_socket_emit(s, "asked", res, NULL, 0);
    json_decref(res);
}

/* ask(timeout_ms[, before]): the server asks the client "question" and reports the answer as
 * "asked"; with `before`, it first emits that event ("first") to the socket */
static void on_ask(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    json_int_t ms = json_integer_value(json_array_get(ev->args, 0));
    const char *before = json_string_value(json_array_get(ev->args, 1));
    if (before) {
        json_t *first = json_pack("[s]", "first");
        tb_rt_socket_emit(s, before, first, NULL, 0);
        json_decref(first);
    }
    json_t *q = json_pack("[s]", "what is 6 x 7?");
    tb_rt_socket_emit_ack(s, "question", q, NULL, 0, ms > 0 ? (unsigned)ms : 1000, asked, NULL);
    json_decref(q);
}

/* misuse: what the API refuses to send, each call's result by name: emits and a broadcast of a
 * reserved name, a placeholder naming no attachment, args that are not an array */
static void on_misuse(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    static const unsigned char byte = 7;
    tb_rt_bin bin = {&byte, 1};
    json_t *args = json_pack("[s]", "x");
    json_t *stray = json_pack("[{s:b,s:i}]", "_placeholder", 1, "num", 1);
    json_t *obj = json_object();
    int rc[6] = {
        tb_rt_socket_emit(s, "connect", args, NULL, 0),
        tb_rt_socket_emit(s, "disconnect", args, NULL, 0),
        tb_rt_socket_emit_ack(s, "newListener", args, NULL, 0, 1000, asked, NULL),
        tb_rt_broadcast(tb_rt_socket_nsp(s), NULL, "connect_error", args, NULL, 0),
        tb_rt_socket_emit(s, "blob", stray, &bin, 1),
        tb_rt_socket_emit(s, "blob", obj, NULL, 0),
    };
    json_t *names = json_array();
    for (size_t i = 0; i < 6; i++)
        json_array_append_new(names, json_string(rc[i] ? tb_err_name(rc[i]) : "ok"));
    json_decref(args);
    json_decref(stray);
    json_decref(obj);
    ack_value(s, ev, names);
}

static void on_kick(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    tb_rt_socket_disconnect(s, json_is_true(json_array_get(ev->args, 0)));
}

static void on_whoami(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    const tb_jwt_claims *c = tb_rt_socket_claims(s);
    int *joins = tb_rt_socket_data(s);
    ack_value(s, ev,
              json_pack("{s:s,s:s,s:s?,s:s,s:i,s:s,s:b}", "id", tb_rt_socket_id(s), "transport",
                        tb_rt_socket_transport(s), "sub", c ? tb_jwt_claims_sub(c) : NULL, "nsp",
                        tb_rt_nsp_name(tb_rt_socket_nsp(s)), "connects", joins ? *joins : -1,
                        "node", node_name, "recovered", tb_rt_socket_recovered(s)));
}

static void on_stats(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    tb_rt_stats st;
    tb_rt_server_stats(srv, &st);
    ack_value(s, ev,
              json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "recovered",
                        (json_int_t)st.recovered, "not_recovered", (json_int_t)st.not_recovered,
                        "recovery_stored", (json_int_t)st.recovery_stored, "adapter_received",
                        (json_int_t)st.adapter_received, "adapter_bytes_in",
                        (json_int_t)st.adapter_bytes_in, "adapter_published",
                        (json_int_t)st.adapter_published, "sessions", (json_int_t)st.sessions,
                        "sockets", (json_int_t)st.sockets, "websocket", (json_int_t)st.websocket,
                        "dropped_volatile", (json_int_t)st.dropped_volatile, "slow_disconnects",
                        (json_int_t)st.slow_disconnects, "protocol_errors",
                        (json_int_t)st.protocol_errors, "refused", (json_int_t)st.refused,
                        "bytes_per_session", (json_int_t)tb_rt_server_bytes_per_session(srv)));
}

/* flood(n, size, volatile): n events of `size` bytes to this socket at once */
static void on_flood(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    json_int_t n = json_integer_value(json_array_get(ev->args, 0));
    json_int_t size = json_integer_value(json_array_get(ev->args, 1));
    bool vol = json_is_true(json_array_get(ev->args, 2));
    char *blob = malloc((size_t)size + 1);
    memset(blob, 'x', (size_t)size);
    blob[size] = '\0';
    json_t *args = json_pack("[s]", blob);
    free(blob);
    const char *self = tb_rt_socket_id(s);
    tb_rt_to to = {&self, 1, NULL, 0, NULL, vol ? TB_RT_VOLATILE : 0};
    tb_rt_nsp *nsp = tb_rt_socket_nsp(s);
    for (json_int_t i = 0; i < n; i++)
        if (tb_rt_broadcast(nsp, &to, "flood", args, NULL, 0) != 0 ||
            tb_rt_room_count(nsp, self) == 0)
            break; /* disconnected as a slow client */
    json_decref(args);
}

static void posted(tb_rt_server *server, void *ud)
{
    (void)server;
    char *text = ud;
    json_t *args = json_pack("[s]", text);
    tb_rt_broadcast(tb_rt_server_of(srv, "/"), NULL, "posted", args, NULL, 0);
    json_decref(args);
    free(text);
}

static void *poster(void *ud)
{
    tb_rt_server_post(srv, posted, ud);
    return NULL;
}

/* post(text): another thread asks the loop to broadcast "posted" to everyone */
static void on_post(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    (void)s;
    pthread_t t;
    char *text = strdup(json_string_value(json_array_get(ev->args, 0)) ?: "");
    pthread_create(&t, NULL, poster, text);
    pthread_detach(t);
}

/* server-emit(args...): to the other nodes' server-side listeners */
static void on_server_emit_event(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    ack_value(s, ev,
              json_integer(tb_rt_nsp_server_emit(tb_rt_socket_nsp(s), "ping-cluster", ev->args)));
}

/* what another node's serverSideEmit gets from this node: remembered, and answered (under a
 * mutex: with several loops, each loop's adapter calls this) */
static json_t *last_server_emit;
static pthread_mutex_t last_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *on_server_emit(tb_rt_nsp *nsp, const char *event, const json_t *args, void *ud)
{
    (void)nsp;
    (void)ud;
    if (strcmp(event, "ping-cluster") != 0)
        return NULL;
    json_t *copy = json_deep_copy(args);
    pthread_mutex_lock(&last_mu);
    json_t *old = last_server_emit;
    last_server_emit = copy;
    pthread_mutex_unlock(&last_mu);
    json_decref(old);
    return json_pack("{s:s,s:O}", "node", node_name, "got", (json_t *)args);
}

static void on_last_server_emit(tb_rt_socket *s, const tb_rt_event *ev, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&last_mu);
    json_t *v = last_server_emit ? json_deep_copy(last_server_emit) : json_null();
    pthread_mutex_unlock(&last_mu);
    ack_value(s, ev, v);
}

static void count_connect(tb_rt_socket *s, void *ud)
{
    (void)ud;
    int *n = malloc(sizeof *n);
    *n = 1;
    tb_rt_socket_set_data(s, n, free);
    json_t *args = json_pack("[s]", tb_rt_nsp_name(tb_rt_socket_nsp(s)));
    tb_rt_socket_emit(s, "hello", args, NULL, 0);
    json_decref(args);
}

/* before it leaves them: tell each room it is in (but its own) that it goes, with its rooms */
static void on_disconnecting(tb_rt_socket *s, const char *reason, void *ud)
{
    (void)ud;
    const char *names[16];
    size_t n = tb_rt_socket_rooms(s, names, 16);
    json_t *all = json_array();
    for (size_t i = 0; i < n && i < 16; i++)
        json_array_append_new(all, json_string(names[i]));
    for (size_t i = 0; i < n && i < 16; i++) {
        if (strcmp(names[i], tb_rt_socket_id(s)) == 0)
            continue;
        tb_rt_to to = {&names[i], 1, NULL, 0, s, 0};
        json_t *args = json_pack("[{s:s,s:s,s:s,s:O}]", "id", tb_rt_socket_id(s), "room",
                                 names[i], "reason", reason, "rooms", all);
        tb_rt_broadcast(tb_rt_socket_nsp(s), &to, "gone-from", args, NULL, 0);
        json_decref(args);
    }
    json_decref(all);
}

static void on_disconnect(tb_rt_socket *s, const char *reason, void *ud)
{
    (void)ud;
    /* tell the others in "watchers" why this socket left (by now it is in no room) */
    const char *room = "watchers";
    tb_rt_to to = {&room, 1, NULL, 0, s, 0};
    json_t *args = json_pack("[{s:s,s:s,s:I}]", "id", tb_rt_socket_id(s), "reason", reason,
                             "rooms", (json_int_t)tb_rt_socket_rooms(s, NULL, 0));
    tb_rt_broadcast(tb_rt_socket_nsp(s), &to, "left", args, NULL, 0);
    json_decref(args);
}

static int refuse_banned(tb_rt_socket *s, const json_t *auth, tb_rt_refusal *out, void *ud)
{
    (void)s;
    (void)ud;
    if (json_is_true(json_object_get(auth, "banned"))) {
        snprintf(out->message, sizeof out->message, "banned");
        out->data = json_pack("{s:s}", "until", "forever");
        return 1;
    }
    return 0;
}

static bool dyn_match(const char *name, void *ud)
{
    (void)ud;
    return strncmp(name, "/dyn-", 5) == 0;
}

static void wire(tb_rt_nsp *nsp)
{
    tb_rt_nsp_on_connect(nsp, count_connect, NULL);
    tb_rt_nsp_on_disconnect(nsp, on_disconnect, NULL);
    tb_rt_nsp_on_disconnecting(nsp, on_disconnecting, NULL);
    tb_rt_nsp_on(nsp, "join", on_join, NULL);
    tb_rt_nsp_on(nsp, "leave", on_leave, NULL);
    tb_rt_nsp_on(nsp, "say", on_say, NULL);
    tb_rt_nsp_on(nsp, "count", on_count, NULL);
    tb_rt_nsp_on(nsp, "ask", on_ask, NULL);
    tb_rt_nsp_on(nsp, "kick", on_kick, NULL);
    tb_rt_nsp_on(nsp, "misuse", on_misuse, NULL);
    tb_rt_nsp_on(nsp, "whoami", on_whoami, NULL);
    tb_rt_nsp_on(nsp, "stats", on_stats, NULL);
    tb_rt_nsp_on(nsp, "flood", on_flood, NULL);
    tb_rt_nsp_on(nsp, "post", on_post, NULL);
    tb_rt_nsp_on(nsp, "server-emit", on_server_emit_event, NULL);
    tb_rt_nsp_on(nsp, "last-server-emit", on_last_server_emit, NULL);
    tb_rt_nsp_on_server_emit(nsp, on_server_emit, NULL);
}

int main(void)
{
    const char *port = getenv("PORT");
    const char *secret = getenv("TB_TEST_JWT_SECRET");
    tb_rt_options o = TB_RT_OPTIONS_INIT;
    o.port = port ? atoi(port) : 3000;
    o.ping_interval_ms = 2000;
    o.ping_timeout_ms = 2000;
    o.connect_timeout_ms = 3000;
    o.max_buffered = 256 * 1024;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    tb_error err = TB_ERROR_INIT;
    tb_jwt_key *key = NULL;
    tb_jwt_verifier *verifier = NULL;
    tb_jwt_verifier_opts vo = TB_JWT_VERIFIER_OPTS_INIT;
    if (!secret ||
        tb_jwt_key_from_secret(secret, strlen(secret), TB_JWT_HS256, NULL, &key, &err) != 0) {
        fprintf(stderr, "rooms_server: TB_TEST_JWT_SECRET is needed\n");
        return 1;
    }
    vo.keys = &key;
    vo.n_keys = 1;
    vo.issuer = "tablium-test";
    vo.leeway_s = 1; /* an expiry test waits exp + leeway */
    if (tb_jwt_verifier_new(&vo, &verifier, &err) != 0) {
        fprintf(stderr, "rooms_server: %s\n", err.message);
        return 1;
    }
    if (tb_rt_server_new(&o, &srv, &err) != 0) {
        fprintf(stderr, "rooms_server: %s\n", err.message);
        return 1;
    }
    const char *redis = getenv("REDIS_URL");
    if (getenv("NODE_NAME"))
        node_name = getenv("NODE_NAME");
    if (redis) {
        tb_rt_redis_options ro = TB_RT_REDIS_OPTIONS_INIT;
        static char host[128];
        int rport = 6379;
        if (sscanf(redis, "redis://%127[^:/]:%d", host, &rport) < 1) {
            fprintf(stderr, "rooms_server: REDIS_URL must be redis://host:port\n");
            return 1;
        }
        ro.host = host;
        ro.port = rport;
        ro.targeted = getenv("REDIS_TARGETED") && strcmp(getenv("REDIS_TARGETED"), "1") == 0;
        if (tb_rt_server_use_redis(srv, &ro, &err) != 0) {
            fprintf(stderr, "rooms_server: %s\n", err.message);
            return 1;
        }
        if (getenv("RECOVERY_MS")) {
            tb_rt_recovery_options rc = TB_RT_RECOVERY_OPTIONS_INIT;
            rc.host = host;
            rc.port = rport;
            rc.max_disconnection_ms = (unsigned)atoi(getenv("RECOVERY_MS"));
            if (getenv("RECOVERY_KEY"))
                rc.key = getenv("RECOVERY_KEY");
            if (getenv("RECOVERY_MAX_MISSED"))
                rc.max_missed = (size_t)atoi(getenv("RECOVERY_MAX_MISSED"));
            if (tb_rt_server_use_recovery(srv, &rc, &err) != 0) {
                fprintf(stderr, "rooms_server: %s\n", err.message);
                return 1;
            }
        }
    }
    tb_rt_nsp *root = tb_rt_server_of(srv, "/");
    tb_rt_nsp_use(root, refuse_banned, NULL);
    wire(root);
    tb_rt_nsp *games = tb_rt_server_of(srv, "/games");
    tb_rt_nsp_use_jwt(games, verifier);
    wire(games);
    wire(tb_rt_server_of_match(srv, dyn_match, NULL));
    tb_rt_server_start(srv);
    fprintf(stderr, "rooms_server: listening on 127.0.0.1:%d\n", tb_rt_server_port(srv));
    int sig;
    sigwait(&sigs, &sig);
    tb_rt_server_free(srv);
    json_decref(last_server_emit);
    tb_jwt_verifier_free(verifier);
    tb_jwt_key_free(key);
    return 0;
}
