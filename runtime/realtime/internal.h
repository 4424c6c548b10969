/* What runtime/realtime/server.c and the Redis adapter share (not public). Loop thread only. */
#ifndef TB_RT_INTERNAL_H
#define TB_RT_INTERNAL_H

#include "tablium/realtime.h"

typedef struct tb_rt__adapter tb_rt__adapter;

/* server.c */
struct lws_context *tb_rt__server_lws(tb_rt_server *srv);
tb_rt__adapter *tb_rt__server_adapter(tb_rt_server *srv);
void tb_rt__server_set_adapter(tb_rt_server *srv, tb_rt__adapter *a);
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

#endif
