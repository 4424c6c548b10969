/*
 * The Redis adapter, wire-compatible with @socket.io/redis-adapter 8.x (lib/index.ts):
 *   broadcasts  PUBLISH <key>#<nsp>#[<room>#]  msgpack [uid, {type: 2, data, nsp}, opts]
 *               (the room suffix when exactly one room); nodes PSUBSCRIBE <key>#<nsp>#*
 *   requests    SUBSCRIBE <key>-request#<nsp>#: JSON {uid, requestId, type, ...}, except
 *               BROADCAST (7) which is msgpack; answers PUBLISH <key>-response#<nsp>#.
 * A node subscribed to the request channel is counted by the others (PUBSUB NUMSUB), so every
 * request that waits for all nodes is answered here: SOCKETS, ALL_ROOMS, REMOTE_JOIN/LEAVE/
 * DISCONNECT, REMOTE_FETCH, SERVER_SIDE_EMIT and BROADCAST with acknowledgements.
 *
 * One thread owns both Redis connections (hiredis, blocking sockets driven by poll): it
 * publishes what the loop queued (pipelined), reads subscriptions, and hands what arrives to the
 * loop in batches (tb_rt_server_post). While Redis is unreachable, broadcasts wait in a bounded
 * queue and are published on reconnect (the npm adapter loses them), and subscriptions are
 * restored.
 */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mpack.h"
#include "packet.h"
#include "tablium/buf.h"
#include "tablium/json.h"
#include "tablium/log.h"

enum {
    R_SOCKETS = 0,
    R_ALL_ROOMS,
    R_REMOTE_JOIN,
    R_REMOTE_LEAVE,
    R_REMOTE_DISCONNECT,
    R_REMOTE_FETCH,
    R_SERVER_SIDE_EMIT,
    R_BROADCAST,
    R_BROADCAST_CLIENT_COUNT,
    R_BROADCAST_ACK
};

typedef struct msg {
    struct msg *next;
    char *channel;
    size_t channel_len;
    char *data;
    size_t len;
} msg;

typedef struct subscription {
    char *name; /* channel or pattern */
    bool pattern;
    bool active; /* wanted now (a room that emptied is unsubscribed) */
    bool sent;   /* subscribed on the current connection */
} subscription;

struct tb_rt__adapter {
    tb_rt_server *srv;
    char *host, *key;
    int port;
    size_t max_queued;
    char uid[8];
    pthread_t thread;
    bool started;
    atomic_bool stop, ready;
    int wake[2];
    pthread_mutex_t mu;
    msg *out, *out_tail; /* to publish */
    size_t out_bytes;
    subscription *subs; /* every subscription; the thread (re)sends them */
    size_t nsubs, capsubs;
    json_t *sub_index; /* name -> index in subs */
    bool subs_dirty;   /* some subscription to send or withdraw */
    bool targeted;     /* per-room channels instead of one pattern per namespace */
};

/* ---------------------------------------------------------------- queueing (any thread) */

static void msg_free(msg *m)
{
    free(m->channel);
    free(m->data);
    free(m);
}

static msg *msg_new(const char *ch, size_t chlen, const void *data, size_t len)
{
    msg *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->channel = malloc(chlen + 1);
    m->data = malloc(len ? len : 1);
    if (!m->channel || !m->data) {
        msg_free(m);
        return NULL;
    }
    memcpy(m->channel, ch, chlen);
    m->channel[chlen] = '\0';
    m->channel_len = chlen;
    memcpy(m->data, data, len);
    m->len = len;
    return m;
}

static void wake(tb_rt__adapter *a)
{
    char c = 1;
    ssize_t n = write(a->wake[1], &c, 1);
    (void)n; /* a full pipe already wakes the thread */
}

static int publish(tb_rt__adapter *a, const char *ch, size_t chlen, const void *data, size_t len)
{
    msg *m = msg_new(ch, chlen, data, len);
    if (!m)
        return TB_ENOMEM;
    pthread_mutex_lock(&a->mu);
    if (a->out_bytes + len > a->max_queued) {
        pthread_mutex_unlock(&a->mu);
        msg_free(m);
        tb_rt__stat_add(a->srv, TB_RT__ST_DROPPED, 1);
        return TB_EBUSY;
    }
    if (a->out_tail)
        a->out_tail->next = m;
    else
        a->out = m;
    a->out_tail = m;
    a->out_bytes += len;
    pthread_mutex_unlock(&a->mu);
    tb_rt__stat_add(a->srv, TB_RT__ST_PUBLISHED, 1);
    wake(a);
    return 0;
}

/* Escapes Redis glob characters of a namespace name used in a pattern. */
static void glob_escape(tb_buf *b, const char *s)
{
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            tb_buf_putc(b, '\\');
        tb_buf_putc(b, *s);
    }
}

/* Wants (or, active false, no longer wants) a subscription; the thread sends the change. */
static int set_sub(tb_rt__adapter *a, const char *name, bool pattern, bool active)
{
    pthread_mutex_lock(&a->mu);
    json_t *ix = json_object_get(a->sub_index, name);
    if (ix) {
        subscription *s = &a->subs[json_integer_value(ix)];
        if (s->active != active) {
            s->active = active;
            a->subs_dirty = true;
        }
        pthread_mutex_unlock(&a->mu);
        wake(a);
        return 0;
    }
    if (!active) {
        pthread_mutex_unlock(&a->mu);
        return 0;
    }
    if (a->nsubs == a->capsubs) {
        size_t nc = a->capsubs ? a->capsubs * 2 : 8;
        subscription *ns = realloc(a->subs, nc * sizeof *ns);
        if (!ns) {
            pthread_mutex_unlock(&a->mu);
            return TB_ENOMEM;
        }
        a->subs = ns;
        a->capsubs = nc;
    }
    subscription *sb = &a->subs[a->nsubs];
    memset(sb, 0, sizeof *sb);
    sb->name = strdup(name);
    sb->pattern = pattern;
    sb->active = true;
    if (!sb->name ||
        json_object_set_new(a->sub_index, name, json_integer((json_int_t)a->nsubs)) != 0) {
        free(sb->name);
        pthread_mutex_unlock(&a->mu);
        return TB_ENOMEM;
    }
    a->nsubs++;
    a->subs_dirty = true;
    pthread_mutex_unlock(&a->mu);
    wake(a);
    return 0;
}

static void room_channel(tb_buf *b, tb_rt__adapter *a, tb_rt_nsp *nsp, const char *room)
{
    tb_buf_printf(b, "%s#%s#", a->key, tb_rt_nsp_name(nsp));
    if (room)
        tb_buf_printf(b, "%s#", room);
}

void tb_rt__adapter_room_added(tb_rt__adapter *a, tb_rt_nsp *nsp, const char *room)
{
    if (!a->targeted)
        return;
    tb_buf b = TB_BUF_INIT;
    room_channel(&b, a, nsp, room);
    if (!b.oom)
        set_sub(a, b.data, false, true);
    tb_buf_deinit(&b);
}

void tb_rt__adapter_room_removed(tb_rt__adapter *a, tb_rt_nsp *nsp, const char *room)
{
    if (!a->targeted)
        return;
    tb_buf b = TB_BUF_INIT;
    room_channel(&b, a, nsp, room);
    if (!b.oom)
        set_sub(a, b.data, false, false);
    tb_buf_deinit(&b);
}

void tb_rt__adapter_nsp_added(tb_rt__adapter *a, tb_rt_nsp *nsp)
{
    const char *name = tb_rt_nsp_name(nsp);
    tb_buf b = TB_BUF_INIT;
    if (a->targeted) { /* broadcasts to everyone; rooms come and go (room_added) */
        room_channel(&b, a, nsp, NULL);
        if (!b.oom)
            set_sub(a, b.data, false, true);
    } else {
        tb_buf_puts(&b, a->key);
        tb_buf_putc(&b, '#');
        glob_escape(&b, name);
        tb_buf_puts(&b, "#*");
        if (!b.oom)
            set_sub(a, b.data, true, true);
    }
    tb_buf_reset(&b);
    tb_buf_printf(&b, "%s-request#%s#", a->key, name);
    if (!b.oom)
        set_sub(a, b.data, false, true);
    tb_buf_deinit(&b);
}

/* ---------------------------------------------------------------- publishing (loop) */

static void pack_strs(msgpack_packer *pk, const char *const *v, size_t n, const char *extra)
{
    msgpack_pack_array(pk, n + (extra ? 1 : 0));
    for (size_t i = 0; i < n; i++)
        tb_rt__mp_pack_str(pk, v[i]);
    if (extra)
        tb_rt__mp_pack_str(pk, extra);
}

static int publish_one(tb_rt__adapter *a, tb_rt_nsp *nsp, const tb_rt_to *to, const char *event,
                       const json_t *args, const tb_rt_bin *bins, size_t nbins)
{
    const char *name = tb_rt_nsp_name(nsp);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    tb_rt__mp_pack_str(&pk, a->uid);
    msgpack_pack_map(&pk, 3);
    tb_rt__mp_pack_str(&pk, "type");
    msgpack_pack_int(&pk, TB_SIO_EVENT);
    tb_rt__mp_pack_str(&pk, "data");
    msgpack_pack_array(&pk, 1 + json_array_size(args));
    tb_rt__mp_pack_str(&pk, event);
    int rc = 0;
    for (size_t i = 0; i < json_array_size(args) && rc == 0; i++)
        rc = tb_rt__mp_pack_json(&pk, json_array_get(args, i), bins, nbins);
    tb_rt__mp_pack_str(&pk, "nsp");
    tb_rt__mp_pack_str(&pk, name);
    msgpack_pack_map(&pk, 3);
    tb_rt__mp_pack_str(&pk, "rooms");
    pack_strs(&pk, to ? to->rooms : NULL, to ? to->nrooms : 0, NULL);
    tb_rt__mp_pack_str(&pk, "except");
    pack_strs(&pk, to ? to->except : NULL, to ? to->nexcept : 0,
              to && to->except_socket ? tb_rt_socket_id(to->except_socket) : NULL);
    tb_rt__mp_pack_str(&pk, "flags");
    if (to && (to->flags & TB_RT_VOLATILE)) {
        msgpack_pack_map(&pk, 1);
        tb_rt__mp_pack_str(&pk, "volatile");
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_map(&pk, 0);
    }
    if (rc == 0) {
        tb_buf ch = TB_BUF_INIT;
        tb_buf_printf(&ch, "%s#%s#", a->key, name);
        if (to && to->nrooms == 1)
            tb_buf_printf(&ch, "%s#", to->rooms[0]);
        rc = ch.oom ? TB_ENOMEM : publish(a, ch.data, ch.len, sb.data, sb.size);
        tb_buf_deinit(&ch);
    } else {
        rc = TB_EINVAL;
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int tb_rt__adapter_publish(tb_rt__adapter *a, tb_rt_nsp *nsp, const tb_rt_to *to, const char *event,
                           const json_t *args, const tb_rt_bin *bins, size_t nbins)
{
    if (!a->targeted || !to || to->nrooms <= 1)
        return publish_one(a, nsp, to, event, args, bins, nbins);
    /* targeted: each room on its own channel, where only its holders listen; a socket in two
     * of the rooms gets the message once: the i-th copy excepts the rooms before it */
    const char **except = malloc((to->nexcept + to->nrooms) * sizeof *except);
    if (!except)
        return TB_ENOMEM;
    for (size_t i = 0; i < to->nexcept; i++)
        except[i] = to->except[i];
    int rc = 0;
    for (size_t i = 0; i < to->nrooms && rc == 0; i++) {
        tb_rt_to one = *to;
        one.rooms = &to->rooms[i];
        one.nrooms = 1;
        one.except = except;
        one.nexcept = to->nexcept + i;
        rc = publish_one(a, nsp, &one, event, args, bins, nbins);
        except[to->nexcept + i] = to->rooms[i];
    }
    free(except);
    return rc;
}

int tb_rt_nsp_server_emit(tb_rt_nsp *nsp, const char *event, const json_t *args)
{
    tb_rt__adapter *a = nsp ? tb_rt__server_adapter(tb_rt__nsp_server(nsp)) : NULL;
    if (!a || !event || (args && !json_is_array(args)))
        return a ? TB_EINVAL : TB_ESTATE;
    json_t *data = json_pack("[s]", event);
    if (data && args)
        json_array_extend(data, (json_t *)args);
    json_t *req =
        data ? json_pack("{s:s,s:i,s:o}", "uid", a->uid, "type", R_SERVER_SIDE_EMIT, "data", data)
             : NULL;
    if (!req)
        return TB_ENOMEM;
    tb_buf b = TB_BUF_INIT, ch = TB_BUF_INIT;
    int rc = tb_buf_json_value(&b, req);
    json_decref(req);
    tb_buf_printf(&ch, "%s-request#%s#", a->key, tb_rt_nsp_name(nsp));
    if (rc == 0)
        rc = b.oom || ch.oom ? TB_ENOMEM : publish(a, ch.data, ch.len, b.data, b.len);
    tb_buf_deinit(&b);
    tb_buf_deinit(&ch);
    return rc;
}

/* ---------------------------------------------------------------- receiving (loop) */

static bool mp_str_eq(const msgpack_object *o, const char *s, size_t n)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

/* A string or number value as a C string (rooms may be numbers in Node). */
static char *mp_text(const msgpack_object *o)
{
    char buf[48];
    if (o->type == MSGPACK_OBJECT_STR) {
        if (memchr(o->via.str.ptr, '\0', o->via.str.size))
            return NULL;
        return strndup(o->via.str.ptr, o->via.str.size);
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->via.u64);
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        snprintf(buf, sizeof buf, "%lld", (long long)o->via.i64);
    else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        snprintf(buf, sizeof buf, "%.17g", o->via.f64);
    else
        return NULL;
    return strdup(buf);
}

typedef struct strlist {
    char **v;
    size_t n;
} strlist;

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int mp_strlist(const msgpack_object *o, strlist *out)
{
    out->v = NULL;
    out->n = 0;
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    out->v = calloc(o->via.array.size + 1, sizeof *out->v);
    if (!out->v)
        return -1;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        if (!(out->v[out->n] = mp_text(&o->via.array.ptr[i]))) {
            strlist_free(out);
            return -1;
        }
        out->n++;
    }
    return 0;
}

static int json_strlist(const json_t *a, strlist *out)
{
    out->v = NULL;
    out->n = 0;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return -1;
    out->v = calloc(json_array_size(a) + 1, sizeof *out->v);
    if (!out->v)
        return -1;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *x = json_array_get(a, i);
        char buf[48];
        const char *t = json_string_value(x);
        if (!t && json_is_integer(x)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(x));
            t = buf;
        }
        if (!t || !(out->v[out->n] = strdup(t))) {
            strlist_free(out);
            return -1;
        }
        out->n++;
    }
    return 0;
}

/* Decodes a packet {type, data: [event, ...args], nsp}: the event name and its arguments. */
static int packet_event(const msgpack_object *packet, const char *nsp, char **event, json_t **args,
                        tb_rt_bin *bins, size_t *nbins)
{
    const msgpack_object *pn = tb_rt__mp_get(packet, "nsp");
    const msgpack_object *type = tb_rt__mp_get(packet, "type");
    const msgpack_object *data = tb_rt__mp_get(packet, "data");
    if (pn ? !mp_str_eq(pn, nsp, strlen(nsp)) : strcmp(nsp, "/") != 0)
        return -1; /* another namespace */
    if (!type || type->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        (type->via.u64 != TB_SIO_EVENT && type->via.u64 != TB_SIO_BINARY_EVENT) || !data ||
        data->type != MSGPACK_OBJECT_ARRAY || data->via.array.size == 0)
        return -2;
    if (!(*event = mp_text(&data->via.array.ptr[0])))
        return -2;
    *nbins = 0;
    *args = json_array();
    for (uint32_t i = 1; *args && i < data->via.array.size; i++) {
        json_t *v = tb_rt__mp_to_json(&data->via.array.ptr[i], bins, nbins, TB_SIO_MAX_ATTACHMENTS);
        if (!v || json_array_append_new(*args, v) != 0) {
            json_decref(*args);
            *args = NULL;
        }
    }
    if (!*args) {
        free(*event);
        *event = NULL;
        return -2;
    }
    return 0;
}

static void on_broadcast(tb_rt__adapter *a, tb_rt_nsp *nsp, const msg *m)
{
    const char *name = tb_rt_nsp_name(nsp);
    size_t plen = strlen(a->key) + 1 + strlen(name) + 1; /* <key>#<nsp># */
    if (m->channel_len < plen)
        return;
    if (m->channel_len > plen) { /* a one-room broadcast: skip it early when the room is not here */
        const char *room = m->channel + plen;
        size_t rlen = m->channel_len - plen - 1;
        if (m->channel[m->channel_len - 1] != '#' || !tb_rt__room_exists(nsp, room, rlen))
            return;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (msgpack_unpack_next(&up, m->data, m->len, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_ARRAY || up.data.via.array.size < 3) {
        tb_rt__stat_add(a->srv, TB_RT__ST_DROPPED, 1);
        msgpack_unpacked_destroy(&up);
        return;
    }
    const msgpack_object *v = up.data.via.array.ptr;
    if (mp_str_eq(&v[0], a->uid, strlen(a->uid))) {
        msgpack_unpacked_destroy(&up);
        return; /* our own */
    }
    char *event = NULL;
    json_t *args = NULL;
    tb_rt_bin bins[TB_SIO_MAX_ATTACHMENTS];
    size_t nbins = 0;
    strlist rooms = {0}, except = {0};
    int rc = packet_event(&v[1], name, &event, &args, bins, &nbins);
    if (rc == 0 && (mp_strlist(tb_rt__mp_get(&v[2], "rooms"), &rooms) != 0 ||
                    mp_strlist(tb_rt__mp_get(&v[2], "except"), &except) != 0))
        rc = -2;
    if (rc == 0) {
        const msgpack_object *flags = tb_rt__mp_get(&v[2], "flags");
        const msgpack_object *vol = tb_rt__mp_get(flags, "volatile");
        tb_rt_to to = {(const char *const *)rooms.v,
                       rooms.n,
                       (const char *const *)except.v,
                       except.n,
                       NULL,
                       TB_RT_LOCAL | TB_RT__REMOTE};
        if (vol && vol->type == MSGPACK_OBJECT_BOOLEAN && vol->via.boolean)
            to.flags |= TB_RT_VOLATILE;
        tb_rt_broadcast(nsp, &to, event, args, bins, nbins);
    } else if (rc == -2) {
        tb_rt__stat_add(a->srv, TB_RT__ST_DROPPED, 1);
    }
    strlist_free(&rooms);
    strlist_free(&except);
    free(event);
    json_decref(args);
    msgpack_unpacked_destroy(&up);
}

static void respond(tb_rt__adapter *a, tb_rt_nsp *nsp, json_t *res /* stolen */)
{
    tb_buf b = TB_BUF_INIT, ch = TB_BUF_INIT;
    if (res && tb_buf_json_value(&b, res) == 0) {
        tb_buf_printf(&ch, "%s-response#%s#", a->key, tb_rt_nsp_name(nsp));
        if (!b.oom && !ch.oom)
            publish(a, ch.data, ch.len, b.data, b.len);
    }
    json_decref(res);
    tb_buf_deinit(&b);
    tb_buf_deinit(&ch);
}

static void add_room_name(const char *room, void *ud)
{
    json_array_append_new(ud, json_string(room));
}

static tb_rt_socket **select_opts(tb_rt_nsp *nsp, const json_t *opts, size_t *n)
{
    strlist rooms, except;
    *n = 0;
    if (json_strlist(json_object_get(opts, "rooms"), &rooms) != 0)
        return NULL;
    if (json_strlist(json_object_get(opts, "except"), &except) != 0) {
        strlist_free(&rooms);
        return NULL;
    }
    tb_rt_to to = {
        (const char *const *)rooms.v, rooms.n, (const char *const *)except.v, except.n, NULL, 0};
    tb_rt_socket **list = tb_rt__select(nsp, &to, n);
    strlist_free(&rooms);
    strlist_free(&except);
    return list;
}

typedef struct ack_ctx {
    tb_rt__adapter *a;
    tb_rt_nsp *nsp;
    char *request_id;
    bool request_id_num;
} ack_ctx;

/* One client's acknowledgement of a cluster broadcast: BROADCAST_ACK (msgpack) to the asker. */
static void broadcast_acked(tb_rt_socket *s, int status, const json_t *args, const tb_rt_bin *bins,
                            size_t nbins, void *ud)
{
    (void)s;
    ack_ctx *c = ud;
    if (status == 0) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        tb_rt__mp_pack_str(&pk, "type");
        msgpack_pack_int(&pk, R_BROADCAST_ACK);
        tb_rt__mp_pack_str(&pk, "requestId");
        if (c->request_id_num)
            msgpack_pack_int64(&pk, strtoll(c->request_id, NULL, 10));
        else
            tb_rt__mp_pack_str(&pk, c->request_id);
        tb_rt__mp_pack_str(&pk, "packet");
        const json_t *first = json_array_get(args, 0);
        if (!first || tb_rt__mp_pack_json(&pk, first, bins, nbins) != 0)
            msgpack_pack_nil(&pk);
        tb_buf ch = TB_BUF_INIT;
        tb_buf_printf(&ch, "%s-response#%s#", c->a->key, tb_rt_nsp_name(c->nsp));
        if (!ch.oom)
            publish(c->a, ch.data, ch.len, sb.data, sb.size);
        tb_buf_deinit(&ch);
        msgpack_sbuffer_destroy(&sb);
    }
    free(c->request_id);
    free(c);
}

/* BROADCAST (7): a broadcast whose sender waits for every client's acknowledgement. */
static void on_broadcast_request(tb_rt__adapter *a, tb_rt_nsp *nsp, const msgpack_object *req)
{
    const msgpack_object *uid = tb_rt__mp_get(req, "uid");
    if (uid && mp_str_eq(uid, a->uid, strlen(a->uid)))
        return;
    const msgpack_object *rid = tb_rt__mp_get(req, "requestId");
    const msgpack_object *packet = tb_rt__mp_get(req, "packet");
    const msgpack_object *opts = tb_rt__mp_get(req, "opts");
    char *request_id = rid ? mp_text(rid) : NULL;
    char *event = NULL;
    json_t *args = NULL;
    tb_rt_bin bins[TB_SIO_MAX_ATTACHMENTS];
    size_t nbins = 0;
    strlist rooms = {0}, except = {0};
    if (!request_id || !packet ||
        packet_event(packet, tb_rt_nsp_name(nsp), &event, &args, bins, &nbins) != 0 ||
        mp_strlist(tb_rt__mp_get(opts, "rooms"), &rooms) != 0 ||
        mp_strlist(tb_rt__mp_get(opts, "except"), &except) != 0) {
        tb_rt__stat_add(a->srv, TB_RT__ST_DROPPED, 1);
        goto done;
    }
    const msgpack_object *flags = tb_rt__mp_get(opts, "flags");
    const msgpack_object *tmo = tb_rt__mp_get(flags, "timeout");
    unsigned timeout = tmo && tmo->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                           ? (unsigned)(tmo->via.u64 > 600000 ? 600000 : tmo->via.u64)
                           : 5000;
    tb_rt_to to = {
        (const char *const *)rooms.v, rooms.n, (const char *const *)except.v, except.n, NULL, 0};
    size_t n;
    tb_rt_socket **list = tb_rt__select(nsp, &to, &n);
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        ack_ctx *c = calloc(1, sizeof *c);
        if (!c || !(c->request_id = strdup(request_id))) {
            free(c);
            continue;
        }
        c->a = a;
        c->nsp = nsp;
        c->request_id_num = rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        if (tb_rt_socket_emit_ack(list[i], event, args, bins, nbins, timeout, broadcast_acked, c) ==
            0)
            sent++;
        else {
            free(c->request_id);
            free(c);
        }
    }
    free(list);
    json_t *res = json_pack("{s:i,s:s,s:I}", "type", R_BROADCAST_CLIENT_COUNT, "requestId",
                            request_id, "clientCount", (json_int_t)sent);
    if (res && rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        json_object_set_new(res, "requestId", json_integer((json_int_t)rid->via.u64));
    respond(a, nsp, res);
done:
    strlist_free(&rooms);
    strlist_free(&except);
    free(request_id);
    free(event);
    json_decref(args);
}

static void on_request(tb_rt__adapter *a, tb_rt_nsp *nsp, const msg *m)
{
    if (m->len == 0)
        return;
    if (m->data[0] != '{') { /* msgpack: BROADCAST with acks */
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        if (msgpack_unpack_next(&up, m->data, m->len, &off) == MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *type = tb_rt__mp_get(&up.data, "type");
            if (type && type->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                type->via.u64 == R_BROADCAST)
                on_broadcast_request(a, nsp, &up.data);
        } else {
            tb_rt__stat_add(a->srv, TB_RT__ST_DROPPED, 1);
        }
        msgpack_unpacked_destroy(&up);
        return;
    }
    json_t *req = tb_json_loadb(m->data, m->len, NULL);
    if (!json_is_object(req)) {
        json_decref(req);
        tb_rt__stat_add(a->srv, TB_RT__ST_DROPPED, 1);
        return;
    }
    const char *uid = json_string_value(json_object_get(req, "uid"));
    json_t *rid = json_object_get(req, "requestId");
    json_int_t type = json_integer_value(json_object_get(req, "type"));
    if (uid && strcmp(uid, a->uid) == 0) {
        json_decref(req);
        return; /* our own */
    }
    json_t *res = NULL;
    const json_t *opts = json_object_get(req, "opts");
    switch (type) {
    case R_SOCKETS: {
        json_t *o = json_pack("{s:O?}", "rooms", json_object_get(req, "rooms"));
        size_t n;
        tb_rt_socket **list = select_opts(nsp, o, &n);
        json_decref(o);
        json_t *ids = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(ids, json_string(tb_rt_socket_id(list[i])));
        free(list);
        res = json_pack("{s:O?,s:o}", "requestId", rid, "sockets", ids);
        break;
    }
    case R_ALL_ROOMS: {
        json_t *rooms = json_array();
        tb_rt__nsp_rooms(nsp, add_room_name, rooms);
        res = json_pack("{s:O?,s:o}", "requestId", rid, "rooms", rooms);
        break;
    }
    case R_REMOTE_JOIN:
    case R_REMOTE_LEAVE:
    case R_REMOTE_DISCONNECT: {
        if (opts) { /* every matching socket; no answer (as the npm adapter) */
            size_t n;
            tb_rt_socket **list = select_opts(nsp, opts, &n);
            strlist rooms = {0};
            if (type != R_REMOTE_DISCONNECT)
                json_strlist(json_object_get(req, "rooms"), &rooms);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < rooms.n; j++) {
                    if (type == R_REMOTE_JOIN)
                        tb_rt_socket_join(list[i], rooms.v[j]);
                    else
                        tb_rt_socket_leave(list[i], rooms.v[j]);
                }
            if (type == R_REMOTE_DISCONNECT)
                for (size_t i = 0; i < n; i++)
                    tb_rt_socket_disconnect(list[i], json_is_true(json_object_get(req, "close")));
            strlist_free(&rooms);
            free(list);
            break;
        }
        const char *sid = json_string_value(json_object_get(req, "sid"));
        tb_rt_socket *s = sid ? tb_rt__socket_find(nsp, sid) : NULL;
        if (!s)
            break; /* another node's socket */
        const char *room = json_string_value(json_object_get(req, "room"));
        if (type == R_REMOTE_JOIN && room)
            tb_rt_socket_join(s, room);
        else if (type == R_REMOTE_LEAVE && room)
            tb_rt_socket_leave(s, room);
        else if (type == R_REMOTE_DISCONNECT)
            tb_rt_socket_disconnect(s, json_is_true(json_object_get(req, "close")));
        res = json_pack("{s:O?}", "requestId", rid);
        break;
    }
    case R_REMOTE_FETCH: {
        size_t n;
        tb_rt_socket **list = select_opts(nsp, opts, &n);
        json_t *socks = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *rooms = json_array();
            tb_rt__socket_rooms(list[i], add_room_name, rooms);
            json_t *hs = json_pack("{s:{},s:s,s:s,s:b,s:b,s:i,s:s,s:{},s:O}", "headers", "time", "",
                                   "address", "", "xdomain", 0, "secure", 0, "issued", 0, "url", "",
                                   "query", "auth", tb_rt_socket_auth(list[i]));
            json_array_append_new(socks,
                                  json_pack("{s:s,s:o,s:o,s:{}}", "id", tb_rt_socket_id(list[i]),
                                            "handshake", hs, "rooms", rooms, "data"));
        }
        free(list);
        res = json_pack("{s:O?,s:o}", "requestId", rid, "sockets", socks);
        break;
    }
    case R_SERVER_SIDE_EMIT: {
        void *ud;
        tb_rt_server_emit_fn fn = tb_rt__nsp_server_emit_fn(nsp, &ud);
        const json_t *data = json_object_get(req, "data");
        const char *event = json_string_value(json_array_get(data, 0));
        json_t *answer = NULL;
        if (fn && event) {
            json_t *args = json_array();
            for (size_t i = 1; args && i < json_array_size(data); i++)
                json_array_append(args, json_array_get(data, i));
            answer = args ? fn(nsp, event, args, ud) : NULL;
            json_decref(args);
        }
        if (rid)
            res = json_pack("{s:i,s:O,s:o}", "type", R_SERVER_SIDE_EMIT, "requestId", rid, "data",
                            answer ? answer : json_null());
        else
            json_decref(answer);
        break;
    }
    default: break; /* responses of other kinds and unknown types: not ours */
    }
    if (res)
        respond(a, nsp, res);
    json_decref(req);
}

typedef struct batch {
    tb_rt__adapter *a;
    msg *head;
} batch;

/* The namespace a channel belongs to: <key>#<nsp>#... (broadcast) or <key>-request#<nsp>#. */
static tb_rt_nsp *channel_nsp(tb_rt__adapter *a, tb_rt_server *srv, const msg *m, bool *request)
{
    size_t klen = strlen(a->key);
    const char *c = m->channel;
    size_t off;
    if (m->channel_len > klen + 9 && memcmp(c, a->key, klen) == 0 &&
        memcmp(c + klen, "-request#", 9) == 0) {
        *request = true;
        off = klen + 9;
    } else if (m->channel_len > klen + 1 && memcmp(c, a->key, klen) == 0 && c[klen] == '#') {
        *request = false;
        off = klen + 1;
    } else {
        return NULL;
    }
    for (tb_rt_nsp *n = tb_rt__nsp_first(srv); n; n = tb_rt__nsp_next(n)) {
        size_t nl = strlen(tb_rt_nsp_name(n));
        if (m->channel_len > off + nl && memcmp(c + off, tb_rt_nsp_name(n), nl) == 0 &&
            c[off + nl] == '#' && (!*request || m->channel_len == off + nl + 1))
            return n;
    }
    return NULL;
}

static void deliver(tb_rt_server *srv, void *ud)
{
    batch *b = ud;
    tb_rt__adapter *a = b->a;
    for (msg *m = b->head, *nx; m; m = nx) {
        nx = m->next;
        tb_rt__stat_add(srv, TB_RT__ST_RECEIVED, 1);
        tb_rt__stat_add(srv, TB_RT__ST_BYTES_IN, m->len + m->channel_len);
        bool request = false;
        tb_rt_nsp *nsp = channel_nsp(a, srv, m, &request);
        if (nsp) {
            if (request)
                on_request(a, nsp, m);
            else
                on_broadcast(a, nsp, m);
        }
        msg_free(m);
    }
    free(b);
}

/* ---------------------------------------------------------------- the thread */

static redisContext *connect_redis(tb_rt__adapter *a)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    struct timeval io = {5, 0};
    redisSetTimeout(c, io);
    redisEnableKeepAlive(c);
    return c;
}

static bool flush_ctx(redisContext *c)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return false;
    return true;
}

static void sleep_ms(tb_rt__adapter *a, unsigned ms)
{
    struct pollfd p = {a->wake[0], POLLIN, 0};
    poll(&p, 1, (int)ms); /* a stop request wakes it early */
    char buf[64];
    if (p.revents & POLLIN) {
        ssize_t n = read(a->wake[0], buf, sizeof buf);
        (void)n;
    }
}

static void *adapter_main(void *arg)
{
    tb_rt__adapter *a = arg;
    redisContext *sub = NULL, *pub = NULL;
    size_t pub_pending = 0;
    bool subs_ok = false; /* every wanted subscription sent on this connection */
    unsigned backoff = 50;
    bool ever = false;
    while (!atomic_load(&a->stop)) {
        if (!sub || !pub) {
            if (sub)
                redisFree(sub);
            if (pub)
                redisFree(pub);
            sub = connect_redis(a);
            pub = sub ? connect_redis(a) : NULL;
            if (!sub || !pub) {
                atomic_store(&a->ready, false);
                sleep_ms(a, backoff);
                backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
                continue;
            }
            if (ever)
                tb_rt__stat_add(a->srv, TB_RT__ST_RECONNECTS, 1);
            ever = true;
            backoff = 50;
            pub_pending = 0;
            pthread_mutex_lock(&a->mu);
            for (size_t i = 0; i < a->nsubs; i++)
                a->subs[i].sent = false;
            a->subs_dirty = true;
            pthread_mutex_unlock(&a->mu);
        }
        /* subscriptions not yet sent on this connection */
        pthread_mutex_lock(&a->mu);
        if (a->subs_dirty) {
            for (size_t i = 0; i < a->nsubs; i++) {
                subscription *sb = &a->subs[i];
                if (sb->active && !sb->sent)
                    redisAppendCommand(sub, sb->pattern ? "PSUBSCRIBE %s" : "SUBSCRIBE %s",
                                       sb->name);
                else if (!sb->active && sb->sent)
                    redisAppendCommand(sub, sb->pattern ? "PUNSUBSCRIBE %s" : "UNSUBSCRIBE %s",
                                       sb->name);
                sb->sent = sb->active;
            }
            a->subs_dirty = false;
            subs_ok = false;
        }
        msg *out = a->out;
        a->out = a->out_tail = NULL;
        a->out_bytes = 0;
        pthread_mutex_unlock(&a->mu);
        for (msg *m = out; m; m = m->next) {
            redisAppendCommand(pub, "PUBLISH %b %b", m->channel, m->channel_len, m->data, m->len);
            pub_pending++;
        }
        if (!flush_ctx(sub) || !flush_ctx(pub)) {
            /* requeue what was not confirmed published, in order */
            pthread_mutex_lock(&a->mu);
            if (out) {
                msg *last = out;
                size_t bytes = 0;
                for (msg *m = out; m; m = m->next) {
                    bytes += m->len;
                    last = m;
                }
                last->next = a->out;
                a->out = out;
                if (!a->out_tail)
                    a->out_tail = last;
                a->out_bytes += bytes;
            }
            pthread_mutex_unlock(&a->mu);
            redisFree(sub);
            redisFree(pub);
            sub = pub = NULL;
            continue;
        }
        while (out) {
            msg *nx = out->next;
            msg_free(out);
            out = nx;
        }
        struct pollfd p[3] = {{sub->fd, POLLIN, 0}, {pub->fd, POLLIN, 0}, {a->wake[0], POLLIN, 0}};
        int n = poll(p, 3, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (p[2].revents & POLLIN) {
            char buf[256];
            ssize_t r = read(a->wake[0], buf, sizeof buf);
            (void)r;
        }
        bool broken = false;
        if (p[1].revents & (POLLIN | POLLERR | POLLHUP)) {
            if (redisBufferRead(pub) != REDIS_OK) {
                broken = true;
            } else {
                void *r;
                while (redisGetReplyFromReader(pub, &r) == REDIS_OK && r) {
                    freeReplyObject(r);
                    if (pub_pending)
                        pub_pending--;
                }
            }
        }
        batch *b = NULL;
        msg **tail = NULL;
        if (!broken && (p[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            if (redisBufferRead(sub) != REDIS_OK) {
                broken = true;
            } else {
                void *rv;
                while (redisGetReplyFromReader(sub, &rv) == REDIS_OK && rv) {
                    redisReply *r = rv;
                    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
                        r->element[0]->type == REDIS_REPLY_STRING) {
                        const char *kind = r->element[0]->str;
                        bool pm = strcmp(kind, "pmessage") == 0 && r->elements == 4;
                        bool mm = strcmp(kind, "message") == 0;
                        if (strcmp(kind, "psubscribe") == 0 || strcmp(kind, "subscribe") == 0) {
                            if (!subs_ok) {
                                subs_ok = true;
                                atomic_store(&a->ready, true);
                            }
                        } else if (pm || mm) {
                            redisReply *ch = r->element[pm ? 2 : 1];
                            redisReply *data = r->element[pm ? 3 : 2];
                            msg *m = msg_new(ch->str, ch->len, data->str, data->len);
                            if (m) {
                                if (!b && (b = calloc(1, sizeof *b)))
                                    tail = &b->head;
                                if (b) {
                                    b->a = a;
                                    *tail = m;
                                    tail = &m->next;
                                } else {
                                    msg_free(m);
                                }
                            }
                        }
                    }
                    freeReplyObject(r);
                }
            }
        }
        if (b && tb_rt_server_post(a->srv, deliver, b) != 0) {
            for (msg *m = b->head, *nx; m; m = nx) {
                nx = m->next;
                msg_free(m);
            }
            free(b);
        }
        if (broken) {
            atomic_store(&a->ready, false);
            redisFree(sub);
            redisFree(pub);
            sub = pub = NULL;
        }
    }
    if (sub)
        redisFree(sub);
    if (pub) {
        /* publish what is left before going (bounded by the 5 s I/O timeout) */
        pthread_mutex_lock(&a->mu);
        msg *out = a->out;
        a->out = a->out_tail = NULL;
        pthread_mutex_unlock(&a->mu);
        for (msg *m = out; m; m = m->next)
            redisAppendCommand(pub, "PUBLISH %b %b", m->channel, m->channel_len, m->data, m->len);
        void *r;
        if (out && flush_ctx(pub))
            for (msg *m = out; m; m = m->next)
                if (redisGetReply(pub, &r) == REDIS_OK)
                    freeReplyObject(r);
        while (out) {
            msg *nx = out->next;
            msg_free(out);
            out = nx;
        }
        redisFree(pub);
    }
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static int use_redis_one(tb_rt_server *srv, const tb_rt_redis_options *opts, tb_error *err)
{
    tb_rt_redis_options def = TB_RT_REDIS_OPTIONS_INIT;
    if (!opts)
        opts = &def;
    if (!srv || tb_rt__server_adapter(srv)) {
        tb_error_set(err, TB_EINVAL, "realtime: the server already has an adapter");
        return TB_EINVAL;
    }
    tb_rt__adapter *a = calloc(1, sizeof *a);
    if (!a)
        return TB_ENOMEM;
    a->srv = srv;
    a->host = strdup(opts->host ? opts->host : "127.0.0.1");
    a->key = strdup(opts->key ? opts->key : "socket.io");
    a->port = opts->port ? opts->port : 6379;
    a->max_queued = opts->max_queued ? opts->max_queued : 16u << 20;
    a->targeted = opts->targeted;
    a->sub_index = json_object();
    a->wake[0] = a->wake[1] = -1;
    pthread_mutex_init(&a->mu, NULL);
    if (!a->host || !a->key || !a->sub_index || pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        tb_rt__adapter_free(a);
        tb_error_set(err, TB_ENOMEM, "realtime: cannot set up the Redis adapter");
        return TB_ENOMEM;
    }
    static const char A[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[6];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)rand();
    for (int i = 0; i < 6; i++)
        a->uid[i] = A[r[i] % 36];
    a->uid[6] = '\0';
    tb_rt__server_set_adapter(srv, a);
    for (tb_rt_nsp *n = tb_rt__nsp_first(srv); n; n = tb_rt__nsp_next(n))
        tb_rt__adapter_nsp_added(a, n);
    return 0;
}

/* Several loops: each is a node of its own (its uid, its subscriptions, its heartbeats), as the
 * workers of a Node.js cluster are; the sibling loops get one another's broadcasts through
 * Redis like any other node's. */
int tb_rt_server_use_redis(tb_rt_server *srv, const tb_rt_redis_options *opts, tb_error *err)
{
    unsigned n = srv ? tb_rt__nshards(srv) : 1;
    for (unsigned i = 0; i < n; i++) {
        int rc = use_redis_one(srv ? tb_rt__shard(srv, i) : NULL, opts, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

bool tb_rt_server_adapter_ready(tb_rt_server *srv)
{
    unsigned n = srv ? tb_rt__nshards(srv) : 0;
    for (unsigned i = 0; i < n; i++) {
        tb_rt__adapter *a = tb_rt__server_adapter(tb_rt__shard(srv, i));
        if (!a || !atomic_load(&a->ready))
            return false;
    }
    return n > 0;
}

int tb_rt__adapter_start(tb_rt__adapter *a)
{
    if (pthread_create(&a->thread, NULL, adapter_main, a) != 0)
        return TB_ENOMEM;
    a->started = true;
    return 0;
}

void tb_rt__adapter_stop(tb_rt__adapter *a)
{
    if (!a || !a->started)
        return;
    atomic_store(&a->stop, true);
    wake(a);
    pthread_join(a->thread, NULL);
    a->started = false;
}

void tb_rt__adapter_free(tb_rt__adapter *a)
{
    if (!a)
        return;
    tb_rt__adapter_stop(a);
    while (a->out) {
        msg *nx = a->out->next;
        msg_free(a->out);
        a->out = nx;
    }
    for (size_t i = 0; i < a->nsubs; i++)
        free(a->subs[i].name);
    free(a->subs);
    json_decref(a->sub_index);
    if (a->wake[0] >= 0)
        close(a->wake[0]);
    if (a->wake[1] >= 0)
        close(a->wake[1]);
    pthread_mutex_destroy(&a->mu);
    free(a->host);
    free(a->key);
    free(a);
}
