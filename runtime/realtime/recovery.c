/*
 * Connection state recovery with Socket.IO 4.6 semantics, kept in Redis so that it survives the
 * serving node: a client that comes back within max_disconnection gets its socket id, its rooms
 * and the packets it missed, and `recovered` is true, on whichever node it reaches.
 *
 * Redis keys (<p> is the options' key plus ":rec", "socket.io:rec" by default):
 *   <p>:epoch             this data set's epoch, a random word the first node sets. Offsets
 *                         carry it ("<epoch>:<n>"), and so do sessions: after Redis lost its
 *                         data (flushed, restarted empty) a client is told it is not recovered
 *                         rather than handed a partial replay.
 *   <p>:seq               the packet counter: every stored packet gets the next number, so
 *                         numbers order packets across rooms and nodes.
 *   <p>:s:<pid>           a session hash {sid, nsp, rooms (JSON), epoch, n0 (the counter when it
 *                         began), sub (the JWT subject, if any)}; it lives max_disconnection
 *                         after a disconnect, and while connected it is refreshed so that it
 *                         outlives its node by max_disconnection at most.
 *   <p>:r:<nsp>#<room>    a room's stream (the socket's own id is a room too), and
 *   <p>:a:<nsp>           the stream of broadcasts to the whole namespace: entries "<n>-0"
 *                         {t: the packet's text frame with its offset, x: except rooms (JSON),
 *                         b1..bN: its attachments}, trimmed to stream_max (approximately) and
 *                         expiring 2 x max_disconnection after their last packet.
 * A recovery reads only the streams of the session's rooms, from its offset, at most max_missed
 * entries (XRANGE with COUNT): never a scan of a global stream. Streams that lost entries past
 * the offset (XINFO's max-deleted-entry-id) make the recovery fail rather than skip packets.
 *
 * The scripts run in Redis (EVALSHA), each a single atomic step. They name keys of their own
 * beyond KEYS: standalone Redis (or one shard), not Redis Cluster.
 *
 * One thread owns the connection (hiredis, blocking, pipelined): it sends what the loops queued,
 * reads the replies in order and hands each back to the loop that asked, in order
 * (tb_rt_server_post). The loops of a server share it, the first loop's: packets get their
 * numbers in the order the loops stored them, so a packet stored after another (a move's
 * update after the previous move's ack) is replayed after it, whichever loops sent them. With
 * a connection per loop, two loops' stores raced to Redis and a recovered client could get the
 * later one first. While
 * Redis is unreachable every request fails at once (a packet goes out without an offset, a
 * recovery fails): recovery never holds up delivery.
 */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "tablium/buf.h"
#include "tablium/json.h"
#include "tablium/log.h"

/* KEYS: epoch, seq, stream... ARGV: epoch candidate, maxlen, ttl ms, text without its closing
 * bracket, except (JSON), attachments... Returns the offset. */
static const char STORE_LUA[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if not e then e = ARGV[1]; redis.call('SET', KEYS[1], e) end\n"
    "local n = redis.call('INCR', KEYS[2])\n"
    "local off = e .. ':' .. n\n"
    "local f = {'t', ARGV[4] .. ',\"' .. off .. '\"]', 'x', ARGV[5]}\n"
    "for i = 6, #ARGV do f[#f + 1] = 'b' .. (i - 5); f[#f + 1] = ARGV[i] end\n"
    "for i = 3, #KEYS do\n"
    "  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[2], n .. '-0', unpack(f))\n"
    "  redis.call('PEXPIRE', KEYS[i], ARGV[3])\n"
    "end\n"
    "return off\n";

/* KEYS: epoch, seq, session. ARGV: epoch candidate, sid, nsp, rooms (JSON), ttl ms, sub.
 * A session of an older epoch starts over (its n0 is the counter now). Returns the epoch. */
static const char PERSIST_LUA[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if not e then e = ARGV[1]; redis.call('SET', KEYS[1], e) end\n"
    "if redis.call('HGET', KEYS[3], 'epoch') ~= e then\n"
    "  redis.call('DEL', KEYS[3])\n"
    "  redis.call('HSET', KEYS[3], 'n0', redis.call('GET', KEYS[2]) or '0')\n"
    "end\n"
    "redis.call('HSET', KEYS[3], 'sid', ARGV[2], 'nsp', ARGV[3], 'rooms', ARGV[4], 'epoch', e,"
    " 'sub', ARGV[6])\n"
    "redis.call('PEXPIRE', KEYS[3], ARGV[5])\n"
    "return e\n";

/* KEYS: epoch, session. ARGV: offset epoch ('' without an offset), offset number (''), limit,
 * room stream prefix, namespace stream, nsp, sub. Returns {'ok', sid, rooms, entry...} or
 * {'no', why}. */
static const char RESTORE_LUA[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "local h = redis.call('HMGET', KEYS[2], 'sid', 'nsp', 'rooms', 'epoch', 'n0', 'sub')\n"
    "if not h[1] then return {'no', 'no such session (expired or never seen)'} end\n"
    "if not e or h[4] ~= e or (ARGV[1] ~= '' and ARGV[1] ~= e) then\n"
    "  return {'no', 'the epoch changed (Redis lost its data)'} end\n"
    "if h[2] ~= ARGV[6] then return {'no', 'the session is of another namespace'} end\n"
    "if (h[6] or '') ~= ARGV[7] then return {'no', 'the session is of another subject'} end\n"
    "local after = tonumber(ARGV[2] ~= '' and ARGV[2] or h[5])\n"
    "if not after then return {'no', 'bad offset'} end\n"
    "local limit = tonumber(ARGV[3])\n"
    "local keys = {ARGV[5]}\n"
    "for _, r in ipairs(cjson.decode(h[3])) do keys[#keys + 1] = ARGV[4] .. r end\n"
    "local out = {'ok', h[1], h[3]}\n"
    "local total = 0\n"
    "for _, k in ipairs(keys) do\n"
    "  if redis.call('EXISTS', k) == 1 then\n"
    "    local info = redis.call('XINFO', 'STREAM', k)\n"
    "    for i = 1, #info, 2 do\n"
    "      if info[i] == 'max-deleted-entry-id' then\n"
    "        local md = tonumber(string.match(info[i + 1], '^(%d+)'))\n"
    "        if md and md > after then return {'no', 'missed packets were trimmed'} end\n"
    "      end\n"
    "    end\n"
    "    local got = redis.call('XRANGE', k, '(' .. after .. '-0', '+', 'COUNT', limit + 1)\n"
    "    total = total + #got\n"
    "    if total > limit then return {'no', 'too many missed packets'} end\n"
    "    for _, en in ipairs(got) do out[#out + 1] = en end\n"
    "  end\n"
    "end\n"
    "return out\n";

enum { C_STORE, C_PERSIST, C_RESTORE, C_PLAIN };
enum { SCRIPT_STORE, SCRIPT_PERSIST, SCRIPT_RESTORE, NSCRIPTS };
static const char *const SCRIPTS[NSCRIPTS] = {STORE_LUA, PERSIST_LUA, RESTORE_LUA};

typedef struct rcmd {
    struct rcmd *next;
    int kind;
    int script; /* -1: argv is the whole command */
    int argc;
    char **argv;
    size_t *argvlen;
    redisReply *reply; /* NULL: failed (unreachable) */
    tb_rt__rec_stored_fn stored;
    tb_rt__rec_restored_fn restored;
    void *ud;
    struct tb_rt__rec *origin; /* the loop's recovery that queued it: its answer goes there */
} rcmd;

typedef struct batch {
    tb_rt__rec *r;
    rcmd *head;
} batch;

struct tb_rt__rec {
    tb_rt_server *srv;
    struct tb_rt__rec *conn; /* whose thread, queue and connection carry the commands: the
                                first loop's (itself there) */
    atomic_size_t pending;   /* its commands queued and not yet handed back */
    tb_rt_recovery_options o;
    char *host, *prefix;
    char candidate[16]; /* this node's epoch, used if Redis has none */
    pthread_t thread;
    bool started;
    atomic_bool stop;
    int wake[2];
    pthread_mutex_t mu;
    rcmd *q, *q_tail;
    size_t nq;
    char sha[NSCRIPTS][41];
    atomic_uint_fast64_t stored, failed, restored, refused;
};

/* ---------------------------------------------------------------- commands (loop thread) */

static void cmd_free(rcmd *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->argvlen);
    if (c->reply)
        freeReplyObject(c->reply);
    free(c);
}

static rcmd *cmd_new(int kind, int script, int argc)
{
    rcmd *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->kind = kind;
    c->script = script;
    c->argv = calloc((size_t)argc, sizeof *c->argv);
    c->argvlen = calloc((size_t)argc, sizeof *c->argvlen);
    if (!c->argv || !c->argvlen) {
        free(c->argv);
        free(c->argvlen);
        free(c);
        return NULL;
    }
    return c;
}

/* Sets argument i to a copy of (s, n); false when out of memory. */
static bool cmd_arg(rcmd *c, const void *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return false;
    memcpy(p, s, n);
    p[n] = '\0';
    c->argv[c->argc] = p;
    c->argvlen[c->argc] = n;
    c->argc++;
    return true;
}

static bool cmd_str(rcmd *c, const char *s)
{
    return cmd_arg(c, s, strlen(s));
}

static bool cmd_fmt(rcmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool cmd_fmt(rcmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!p)
        return false;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->argv[c->argc] = p;
    c->argvlen[c->argc] = (size_t)n;
    c->argc++;
    return true;
}

static void wake(tb_rt__rec *r)
{
    char c = 1;
    ssize_t n = write(r->wake[1], &c, 1);
    (void)n; /* a full pipe already wakes the thread */
}

static int enqueue(tb_rt__rec *r, rcmd *c)
{
    tb_rt__rec *q = r->conn;
    c->origin = r;
    atomic_fetch_add(&r->pending, 1);
    pthread_mutex_lock(&q->mu);
    if (q->q_tail)
        q->q_tail->next = c;
    else
        q->q = c;
    q->q_tail = c;
    q->nq++;
    pthread_mutex_unlock(&q->mu);
    wake(q);
    return 0;
}

/* The script's key arguments: "<p>:epoch", "<p>:seq". */
static bool add_base_keys(tb_rt__rec *r, rcmd *c, bool seq)
{
    return cmd_fmt(c, "%s:epoch", r->prefix) && (!seq || cmd_fmt(c, "%s:seq", r->prefix));
}

static void stream_key(tb_buf *b, tb_rt__rec *r, const char *nsp, const char *room)
{
    if (room)
        tb_buf_printf(b, "%s:r:%s#%s", r->prefix, nsp, room);
    else
        tb_buf_printf(b, "%s:a:%s", r->prefix, nsp);
}

int tb_rt__rec_store(tb_rt__rec *r, const char *nsp, const char *const *rooms, size_t nrooms,
                     const char *const *except, size_t nexcept, const char *text, size_t len,
                     const tb_rt_bin *bins, size_t nbins, tb_rt__rec_stored_fn done, void *ud)
{
    size_t nkeys = 2 + (nrooms ? nrooms : 1);
    rcmd *c = cmd_new(C_STORE, SCRIPT_STORE, (int)(3 + nkeys + 5 + nbins));
    if (!c)
        return TB_ENOMEM;
    c->stored = done;
    c->ud = done ? ud : NULL;
    char nk[24];
    snprintf(nk, sizeof nk, "%zu", nkeys);
    bool ok =
        cmd_str(c, "EVALSHA") && cmd_str(c, "") && cmd_str(c, nk) && add_base_keys(r, c, true);
    for (size_t i = 0; ok && i < (nrooms ? nrooms : 1); i++) {
        tb_buf k = TB_BUF_INIT;
        stream_key(&k, r, nsp, nrooms ? rooms[i] : NULL);
        ok = !k.oom && cmd_arg(c, k.data, k.len);
        tb_buf_deinit(&k);
    }
    tb_buf x = TB_BUF_INIT;
    tb_buf_putc(&x, '[');
    for (size_t i = 0; i < nexcept; i++) {
        if (i)
            tb_buf_putc(&x, ',');
        tb_buf_json_string(&x, except[i], strlen(except[i]));
    }
    tb_buf_putc(&x, ']');
    ok = ok && !x.oom && cmd_str(c, r->candidate) && cmd_fmt(c, "%zu", r->o.stream_max) &&
         cmd_fmt(c, "%u", 2 * r->o.max_disconnection_ms) && cmd_arg(c, text, len) &&
         cmd_arg(c, x.data, x.len);
    tb_buf_deinit(&x);
    for (size_t i = 0; ok && i < nbins; i++)
        ok = cmd_arg(c, bins[i].data, bins[i].len);
    if (!ok) {
        cmd_free(c);
        return TB_ENOMEM;
    }
    return enqueue(r, c);
}

static void rooms_json(tb_buf *b, const char *const *rooms, size_t n)
{
    tb_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            tb_buf_putc(b, ',');
        tb_buf_json_string(b, rooms[i], strlen(rooms[i]));
    }
    tb_buf_putc(b, ']');
}

int tb_rt__rec_persist(tb_rt__rec *r, const char *pid, const char *sid, const char *nsp,
                       const char *const *rooms, size_t nrooms, const char *sub)
{
    rcmd *c = cmd_new(C_PERSIST, SCRIPT_PERSIST, 3 + 3 + 6);
    if (!c)
        return TB_ENOMEM;
    tb_buf rj = TB_BUF_INIT;
    rooms_json(&rj, rooms, nrooms);
    bool ok = !rj.oom && cmd_str(c, "EVALSHA") && cmd_str(c, "") && cmd_str(c, "3") &&
              add_base_keys(r, c, true) && cmd_fmt(c, "%s:s:%s", r->prefix, pid) &&
              cmd_str(c, r->candidate) && cmd_str(c, sid) && cmd_str(c, nsp) &&
              cmd_arg(c, rj.data, rj.len) &&
              cmd_fmt(c, "%u", r->o.max_disconnection_ms + tb_rt__rec_refresh_ms(r)) &&
              cmd_str(c, sub ? sub : "");
    tb_buf_deinit(&rj);
    if (!ok) {
        cmd_free(c);
        return TB_ENOMEM;
    }
    return enqueue(r, c);
}

int tb_rt__rec_expire(tb_rt__rec *r, const char *pid, unsigned ms)
{
    rcmd *c = cmd_new(C_PLAIN, -1, 3);
    if (!c)
        return TB_ENOMEM;
    bool ok =
        ms ? cmd_str(c, "PEXPIRE") && cmd_fmt(c, "%s:s:%s", r->prefix, pid) && cmd_fmt(c, "%u", ms)
           : cmd_str(c, "DEL") && cmd_fmt(c, "%s:s:%s", r->prefix, pid);
    if (!ok) {
        cmd_free(c);
        return TB_ENOMEM;
    }
    return enqueue(r, c);
}

int tb_rt__rec_restore(tb_rt__rec *r, const char *nsp, const char *pid, const char *offset,
                       const char *sub, tb_rt__rec_restored_fn done, void *ud)
{
    char ep[64] = "", num[32] = "";
    if (offset) {
        const char *colon = strrchr(offset, ':');
        size_t el = colon ? (size_t)(colon - offset) : 0;
        size_t nl = colon ? strlen(colon + 1) : 0;
        if (!colon || el == 0 || el >= sizeof ep || nl == 0 || nl >= sizeof num ||
            strspn(colon + 1, "0123456789") != nl)
            return TB_EINVAL;
        memcpy(ep, offset, el);
        ep[el] = '\0';
        memcpy(num, colon + 1, nl + 1);
    }
    rcmd *c = cmd_new(C_RESTORE, SCRIPT_RESTORE, 3 + 2 + 7);
    if (!c)
        return TB_ENOMEM;
    c->restored = done;
    c->ud = ud;
    tb_buf pre = TB_BUF_INIT, all = TB_BUF_INIT;
    tb_buf_printf(&pre, "%s:r:%s#", r->prefix, nsp);
    stream_key(&all, r, nsp, NULL);
    bool ok = !pre.oom && !all.oom && cmd_str(c, "EVALSHA") && cmd_str(c, "") && cmd_str(c, "2") &&
              add_base_keys(r, c, false) && cmd_fmt(c, "%s:s:%s", r->prefix, pid) &&
              cmd_str(c, ep) && cmd_str(c, num) && cmd_fmt(c, "%zu", r->o.max_missed) &&
              cmd_arg(c, pre.data, pre.len) && cmd_arg(c, all.data, all.len) && cmd_str(c, nsp) &&
              cmd_str(c, sub ? sub : "");
    tb_buf_deinit(&pre);
    tb_buf_deinit(&all);
    if (!ok) {
        cmd_free(c);
        return TB_ENOMEM;
    }
    return enqueue(r, c);
}

unsigned tb_rt__rec_refresh_ms(const tb_rt__rec *r)
{
    unsigned ms = r->o.max_disconnection_ms / 4;
    return ms < 500 ? 500 : ms;
}

const tb_rt_recovery_options *tb_rt__rec_options(const tb_rt__rec *r)
{
    return &r->o;
}

/* ---------------------------------------------------------------- replies (loop thread) */

static uint64_t entry_number(const redisReply *id)
{
    if (!id || id->type != REDIS_REPLY_STRING)
        return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < id->len && id->str[i] != '-'; i++) {
        if (id->str[i] < '0' || id->str[i] > '9')
            return 0;
        n = n * 10 + (uint64_t)(id->str[i] - '0');
    }
    return n;
}

static int by_number(const void *a, const void *b)
{
    const tb_rt__rec_packet *x = a, *y = b;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* Builds the result of a restore from the script's answer: the missed packets of the session's
 * rooms once each, in order, without those excepting one of its rooms. */
static void restore_result(const redisReply *rep, tb_rt__rec_session *out)
{
    memset(out, 0, sizeof *out);
    out->why = "Redis is unreachable";
    if (!rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        out->why = "the recovery script failed";
        tb_log_warn(NULL, "realtime recovery: %s", rep->str);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(rep->element[0]->str, "ok") != 0) {
        out->why = rep->element[1]->type == REDIS_REPLY_STRING ? rep->element[1]->str : "refused";
        return;
    }
    if (rep->elements < 3 || rep->element[1]->type != REDIS_REPLY_STRING ||
        rep->element[2]->type != REDIS_REPLY_STRING || rep->element[1]->len >= sizeof out->sid) {
        out->why = "malformed session";
        return;
    }
    json_t *rooms = json_loadb(rep->element[2]->str, rep->element[2]->len, 0, NULL);
    if (!json_is_array(rooms)) {
        json_decref(rooms);
        out->why = "malformed session";
        return;
    }
    memcpy(out->sid, rep->element[1]->str, rep->element[1]->len + 1);
    out->rooms = rooms;
    size_t cap = rep->elements - 3;
    out->packets = cap ? calloc(cap, sizeof *out->packets) : NULL;
    if (cap && !out->packets) {
        json_decref(rooms);
        out->rooms = NULL;
        out->why = "out of memory";
        return;
    }
    for (size_t i = 3; i < rep->elements; i++) {
        const redisReply *en = rep->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
            en->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        uint64_t n = entry_number(en->element[0]);
        const redisReply *f = en->element[1];
        tb_rt__rec_packet p = {0};
        p.n = n;
        bool excluded = false;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const redisReply *k = f->element[j], *v = f->element[j + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "t") == 0) {
                p.text = v->str;
                p.len = v->len;
            } else if (strcmp(k->str, "x") == 0 && v->len > 2) {
                json_t *x = json_loadb(v->str, v->len, 0, NULL);
                size_t xi;
                json_t *xr;
                json_array_foreach(x, xi, xr)
                {
                    size_t ri;
                    json_t *rr;
                    json_array_foreach(rooms, ri, rr)
                    {
                        if (json_equal(rr, xr))
                            excluded = true;
                    }
                }
                json_decref(x);
            } else if (k->str[0] == 'b' && p.nbins < TB_RT__REC_MAX_BINS) {
                p.bins[p.nbins].data = v->str;
                p.bins[p.nbins].len = v->len;
                p.nbins++;
            }
        }
        if (!n || !p.text || excluded)
            continue;
        out->packets[out->npackets++] = p;
    }
    if (out->npackets > 1)
        qsort(out->packets, out->npackets, sizeof *out->packets, by_number);
    size_t k = 0; /* once each: a packet to several of the rooms is in several streams */
    for (size_t i = 0; i < out->npackets; i++)
        if (k == 0 || out->packets[k - 1].n != out->packets[i].n)
            out->packets[k++] = out->packets[i];
    out->npackets = k;
    out->ok = true;
    out->why = NULL;
}

static void deliver(tb_rt_server *srv, void *ud)
{
    batch *b = ud;
    tb_rt__rec *r = b->r;
    (void)srv;
    for (rcmd *c = b->head, *nx; c; c = nx) {
        nx = c->next;
        redisReply *rep = c->reply;
        bool err = rep && rep->type == REDIS_REPLY_ERROR;
        if (err && c->kind != C_RESTORE)
            tb_log_warn(NULL, "realtime recovery: Redis answered %s", rep->str);
        switch (c->kind) {
        case C_STORE:
            if (rep && rep->type == REDIS_REPLY_STRING) {
                atomic_fetch_add(&r->stored, 1);
                if (c->stored)
                    c->stored(r->srv, rep->str, rep->len, c->ud);
            } else {
                atomic_fetch_add(&r->failed, 1);
                if (c->stored)
                    c->stored(r->srv, NULL, 0, c->ud);
            }
            break;
        case C_RESTORE: {
            tb_rt__rec_session res;
            restore_result(rep, &res);
            atomic_fetch_add(res.ok ? &r->restored : &r->refused, 1);
            c->restored(r->srv, &res, c->ud);
            json_decref(res.rooms);
            free(res.packets);
            break;
        }
        default: break;
        }
        cmd_free(c);
    }
    free(b);
}

/* ---------------------------------------------------------------- the thread */

static redisContext *connect_redis(tb_rt__rec *r)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout(r->host, r->o.port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    struct timeval io = {5, 0};
    redisSetTimeout(c, io);
    redisEnableKeepAlive(c);
    for (int i = 0; i < NSCRIPTS; i++) {
        redisReply *rep = redisCommand(c, "SCRIPT LOAD %s", SCRIPTS[i]);
        bool ok = rep && rep->type == REDIS_REPLY_STRING && rep->len == 40;
        if (ok)
            memcpy(r->sha[i], rep->str, 41);
        else
            tb_log_warn(NULL, "realtime recovery: cannot load a script: %s",
                        rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no answer");
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* Hands the answers back: each run of commands of one loop to that loop, in order. */
static void post_batch(rcmd *head)
{
    while (head) {
        tb_rt__rec *r = head->origin;
        rcmd *last = head;
        size_t n = 1;
        for (; last->next && last->next->origin == r; last = last->next)
            n++;
        rcmd *rest = last->next;
        last->next = NULL;
        batch *b = malloc(sizeof *b);
        if (b) {
            b->r = r;
            b->head = head;
        }
        if (!b || tb_rt_server_post(r->srv, deliver, b) != 0) {
            /* out of memory: the answers are lost (a restore's socket waits for its link to go) */
            tb_log_warn(NULL, "realtime recovery: out of memory; Redis answers dropped");
            free(b);
            while (head) {
                rcmd *nx = head->next;
                cmd_free(head);
                head = nx;
            }
        }
        atomic_fetch_sub(&r->pending, n); /* after the post: a loop that waits then runs it */
        head = rest;
    }
}

static void *rec_main(void *arg)
{
    tb_rt__rec *r = arg;
    redisContext *c = NULL;
    unsigned backoff = 50;
    struct timespec next_try = {0, 0};
    for (;;) {
        bool stopping = atomic_load(&r->stop);
        pthread_mutex_lock(&r->mu);
        rcmd *work = r->q;
        r->q = r->q_tail = NULL;
        r->nq = 0;
        pthread_mutex_unlock(&r->mu);
        if (!work) {
            if (stopping)
                break;
            struct pollfd p = {r->wake[0], POLLIN, 0};
            poll(&p, 1, 1000);
            char buf[256];
            if (p.revents & POLLIN) {
                ssize_t n = read(r->wake[0], buf, sizeof buf);
                (void)n;
            }
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!c && (stopping || now.tv_sec > next_try.tv_sec ||
                   (now.tv_sec == next_try.tv_sec && now.tv_nsec >= next_try.tv_nsec))) {
            c = connect_redis(r);
            if (!c) {
                next_try = now;
                next_try.tv_nsec += (long)backoff * 1000000L;
                next_try.tv_sec += next_try.tv_nsec / 1000000000L;
                next_try.tv_nsec %= 1000000000L;
                backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
            } else {
                backoff = 50;
            }
        }
        if (c) {
            size_t n = 0;
            for (rcmd *w = work; w; w = w->next, n++) {
                if (w->script >= 0) {
                    free(w->argv[1]);
                    w->argv[1] = strdup(r->sha[w->script]);
                    w->argvlen[1] = w->argv[1] ? 40 : 0;
                }
                redisAppendCommandArgv(c, w->argc, (const char **)w->argv, w->argvlen);
            }
            bool broken = false;
            for (rcmd *w = work; w; w = w->next) {
                void *rep = NULL;
                if (!broken && redisGetReply(c, &rep) != REDIS_OK)
                    broken = true;
                w->reply = broken ? NULL : rep;
            }
            if (broken) {
                redisFree(c);
                c = NULL;
            }
        }
        /* without a connection every command fails now: nothing waits for Redis */
        post_batch(work);
    }
    if (c)
        redisFree(c);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static int use_recovery_one(tb_rt_server *srv, const tb_rt_recovery_options *opts,
                            tb_rt__rec *conn, tb_error *err)
{
    tb_rt_recovery_options def = TB_RT_RECOVERY_OPTIONS_INIT;
    if (!opts)
        opts = &def;
    if (!srv || tb_rt__server_rec(srv)) {
        tb_error_set(err, TB_EINVAL, "realtime: the server already has recovery");
        return TB_EINVAL;
    }
    tb_rt__rec *r = calloc(1, sizeof *r);
    if (!r)
        return TB_ENOMEM;
    r->srv = srv;
    r->conn = conn ? conn : r;
    r->o = *opts;
    if (!r->o.port)
        r->o.port = 6379;
    if (!r->o.max_disconnection_ms)
        r->o.max_disconnection_ms = 120000;
    if (!r->o.max_missed)
        r->o.max_missed = 1000;
    if (!r->o.stream_max)
        r->o.stream_max = 10000;
    r->host = strdup(opts->host ? opts->host : "127.0.0.1");
    tb_buf p = TB_BUF_INIT;
    tb_buf_printf(&p, "%s:rec", opts->key ? opts->key : "socket.io");
    r->prefix = p.oom ? NULL : strdup(p.data);
    tb_buf_deinit(&p);
    r->o.host = r->host;
    r->o.key = NULL;
    r->wake[0] = r->wake[1] = -1;
    pthread_mutex_init(&r->mu, NULL);
    if (!r->host || !r->prefix || pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        tb_rt__rec_free(r);
        tb_error_set(err, TB_ENOMEM, "realtime: cannot set up recovery");
        return TB_ENOMEM;
    }
    static const char A[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[10];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (unsigned char)rand();
    for (size_t i = 0; i < sizeof rnd; i++)
        r->candidate[i] = A[rnd[i] % 36];
    r->candidate[sizeof rnd] = '\0';
    tb_rt__server_set_rec(srv, r);
    return 0;
}

int tb_rt__rec_start(tb_rt__rec *r)
{
    if (r->conn != r)
        return 0; /* the first loop's thread carries its commands */
    if (pthread_create(&r->thread, NULL, rec_main, r) != 0)
        return TB_ENOMEM;
    r->started = true;
    return 0;
}

void tb_rt__rec_stop(tb_rt__rec *r)
{
    if (r && r->conn != r) {
        /* its commands are the first loop's thread's, which outlives this loop: their answers
           are posted to this loop before it goes (each batch ends, answered or failed, within
           the connection's timeouts) */
        while (atomic_load(&r->pending) && r->conn->started)
            usleep(1000);
        return;
    }
    if (!r || !r->started)
        return;
    atomic_store(&r->stop, true); /* the thread sends what is queued, then ends */
    wake(r);
    pthread_join(r->thread, NULL);
    r->started = false;
}

void tb_rt__rec_free(tb_rt__rec *r)
{
    if (!r)
        return;
    tb_rt__rec_stop(r);
    while (r->q) {
        rcmd *nx = r->q->next;
        cmd_free(r->q);
        r->q = nx;
    }
    if (r->wake[0] >= 0)
        close(r->wake[0]);
    if (r->wake[1] >= 0)
        close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    free(r->host);
    free(r->prefix);
    free(r);
}

void tb_rt__rec_stats(tb_rt__rec *r, uint64_t *stored, uint64_t *failed, uint64_t *restored,
                      uint64_t *refused)
{
    *stored = r ? atomic_load(&r->stored) : 0;
    *failed = r ? atomic_load(&r->failed) : 0;
    *restored = r ? atomic_load(&r->restored) : 0;
    *refused = r ? atomic_load(&r->refused) : 0;
}

/* Several loops: each keeps its sessions in the same Redis keys (any loop, or node, can recover
 * any session), through the first loop's connection (see the top of this file). */
int tb_rt_server_use_recovery(tb_rt_server *srv, const tb_rt_recovery_options *opts, tb_error *err)
{
    unsigned n = srv ? tb_rt__nshards(srv) : 1;
    for (unsigned i = 0; i < n; i++) {
        int rc = use_recovery_one(srv ? tb_rt__shard(srv, i) : NULL, opts,
                                  i ? tb_rt__server_rec(tb_rt__shard(srv, 0)) : NULL, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
