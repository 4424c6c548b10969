/* What runtime/realtime/server.c and the Redis adapter share (not public). Loop thread only. */
#ifndef TB_RT_INTERNAL_H
#define TB_RT_INTERNAL_H

#include "tablium/realtime.h"

typedef struct tb_rt__adapter tb_rt__adapter;
typedef struct tb_rt__rec tb_rt__rec;

/** tb_rt_to.flags, internal: a broadcast from another node (delivered here only, not stored) */
#define TB_RT__REMOTE 0x100u

/* server.c */
/** Several event loops (tb_rt_options.loops > 1): the server handed out is the first loop's;
 *  each loop is a tb_rt_server of its own (shard), sharing the namespaces' handlers. */
unsigned tb_rt__nshards(const tb_rt_server *srv);
tb_rt_server *tb_rt__shard(tb_rt_server *srv, unsigned i);
struct lws_context *tb_rt__server_lws(tb_rt_server *srv);
tb_rt__adapter *tb_rt__server_adapter(tb_rt_server *srv);
void tb_rt__server_set_adapter(tb_rt_server *srv, tb_rt__adapter *a);
tb_rt__rec *tb_rt__server_rec(tb_rt_server *srv);
void tb_rt__server_set_rec(tb_rt_server *srv, tb_rt__rec *r);
void tb_rt__stat_add(tb_rt_server *srv, int which, uint64_t v);
enum {
    TB_RT__ST_PUBLISHED,
    TB_RT__ST_RECEIVED,
    TB_RT__ST_BYTES_IN,
    TB_RT__ST_DROPPED,
    TB_RT__ST_RECONNECTS
};
/** Real namespaces (not patterns), in no particular order. */
tb_rt_nsp *tb_rt__nsp_first(tb_rt_server *srv);
tb_rt_nsp *tb_rt__nsp_next(tb_rt_nsp *nsp);
tb_rt_server *tb_rt__nsp_server(tb_rt_nsp *nsp);
tb_rt_nsp *tb_rt__nsp_find(tb_rt_server *srv, const char *name, size_t len);
tb_rt_server_emit_fn tb_rt__nsp_server_emit_fn(tb_rt_nsp *nsp, void **ud);
/** The sockets a broadcast to `to` reaches (rooms, except rooms, except socket), each once.
 *  Caller owns the array (free); *n its length. NULL with *n 0 when none (or out of memory). */
tb_rt_socket **tb_rt__select(tb_rt_nsp *nsp, const tb_rt_to *to, size_t *n);
tb_rt_socket *tb_rt__socket_find(tb_rt_nsp *nsp, const char *id);
/** Room names of a socket / of a namespace: fn called for each. */
void tb_rt__socket_rooms(const tb_rt_socket *s, void (*fn)(const char *room, void *ud), void *ud);
void tb_rt__nsp_rooms(tb_rt_nsp *nsp, void (*fn)(const char *room, void *ud), void *ud);
bool tb_rt__room_exists(tb_rt_nsp *nsp, const char *room, size_t len);

/* acceptor.c: the listening socket of a server with several loops; route(fd, head, len) gets
 * each connection with the first bytes it sent (peeked: still to be read), on its thread. */
typedef struct tb_rt__acceptor tb_rt__acceptor;
typedef void (*tb_rt__route_fn)(int fd, const char *head, size_t len, void *ud);
int tb_rt__acceptor_listen(const char *host, int port, tb_rt__acceptor **out, int *bound,
                           tb_error *err);
int tb_rt__acceptor_start(tb_rt__acceptor *a, tb_rt__route_fn route, void *ud);
/** Stops the thread, closes the listening socket and what still waits. NULL-safe. */
void tb_rt__acceptor_free(tb_rt__acceptor *a);

/* redis_adapter.c */
int tb_rt__adapter_publish(tb_rt__adapter *a, tb_rt_nsp *nsp, const tb_rt_to *to, const char *event,
                           const json_t *args, const tb_rt_bin *bins, size_t nbins);
void tb_rt__adapter_nsp_added(tb_rt__adapter *a, tb_rt_nsp *nsp);
/** A room got its first member / lost its last (targeted mode subscribes to its channel). */
void tb_rt__adapter_room_added(tb_rt__adapter *a, tb_rt_nsp *nsp, const char *room);
void tb_rt__adapter_room_removed(tb_rt__adapter *a, tb_rt_nsp *nsp, const char *room);
int tb_rt__adapter_start(tb_rt__adapter *a);
/** Stops the adapter's thread (NULL-safe); then tb_rt__adapter_free. */
void tb_rt__adapter_stop(tb_rt__adapter *a);
void tb_rt__adapter_free(tb_rt__adapter *a);

/* recovery.c (connection state recovery in Redis). Requests are answered on the loop thread, in
 * the order they were made; every callback runs once. */
#define TB_RT__REC_MAX_BINS 10
/** A stored packet: offset "<epoch>:<n>" (borrowed), or NULL when it could not be stored (Redis
 *  unreachable): then it goes out without an offset. */
typedef void (*tb_rt__rec_stored_fn)(tb_rt_server *srv, const char *offset, size_t len, void *ud);
typedef struct tb_rt__rec_packet {
    uint64_t n;
    const char *text; /* the Engine.IO text frame, its offset inside */
    size_t len;
    tb_rt_bin bins[TB_RT__REC_MAX_BINS];
    size_t nbins;
} tb_rt__rec_packet;
typedef struct tb_rt__rec_session {
    bool ok;
    const char *why; /* !ok: why it cannot be recovered */
    char sid[24];
    json_t *rooms;              /* the rooms it was in (its own id among them) */
    tb_rt__rec_packet *packets; /* missed, in order, each once */
    size_t npackets;
} tb_rt__rec_session;
/** Everything borrowed: valid during the call. */
typedef void (*tb_rt__rec_restored_fn)(tb_rt_server *srv, const tb_rt__rec_session *res, void *ud);
/** Stores a packet for the rooms (none: the whole namespace); text: its Engine.IO text frame
 *  without the closing ']' of its data, which the offset completes. */
int tb_rt__rec_store(tb_rt__rec *r, const char *nsp, const char *const *rooms, size_t nrooms,
                     const char *const *except, size_t nexcept, const char *text, size_t len,
                     const tb_rt_bin *bins, size_t nbins, tb_rt__rec_stored_fn done, void *ud);
/** Writes a session (connect, rooms changed, refresh while connected). */
int tb_rt__rec_persist(tb_rt__rec *r, const char *pid, const char *sid, const char *nsp,
                       const char *const *rooms, size_t nrooms, const char *sub);
/** A session's time to live from now (ms > 0), or its end (0). */
int tb_rt__rec_expire(tb_rt__rec *r, const char *pid, unsigned ms);
/** Looks a session up with the client's offset (NULL: none; then every packet since the
 *  session began). TB_EINVAL for a malformed offset (no callback). */
int tb_rt__rec_restore(tb_rt__rec *r, const char *nsp, const char *pid, const char *offset,
                       const char *sub, tb_rt__rec_restored_fn done, void *ud);
unsigned tb_rt__rec_refresh_ms(const tb_rt__rec *r);
const tb_rt_recovery_options *tb_rt__rec_options(const tb_rt__rec *r);
int tb_rt__rec_start(tb_rt__rec *r);
/** Sends what is queued, then stops the thread (NULL-safe). */
void tb_rt__rec_stop(tb_rt__rec *r);
void tb_rt__rec_free(tb_rt__rec *r);
void tb_rt__rec_stats(tb_rt__rec *r, uint64_t *stored, uint64_t *failed, uint64_t *restored,
                      uint64_t *refused);

#endif
