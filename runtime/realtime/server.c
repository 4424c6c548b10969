/*
 * The Socket.IO server on libwebsockets (tablium/realtime.h).
 *
 * Layers, bottom up:
 *   wsi      libwebsockets connections: HTTP requests (polling GET/POST) and WebSockets; each
 *            has a `pss` (per-session data) that links it to its Engine.IO session.
 *   session  an Engine.IO session: sid, transport, the outbound queue of frames, heartbeat.
 *   socket   a Socket.IO socket: one per namespace the session connected to; rooms.
 *
 * Everything runs on the loop thread. Objects that die inside a callback are unlinked at once
 * and freed by reap() when the outermost callback returns, so a handler that disconnects its
 * own socket never leaves a dangling pointer behind it.
 */
#include "tablium/realtime.h"

#include <libwebsockets.h>
#include <ctype.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "packet.h"
#include "tablium/buf.h"
#include "tablium/json.h"
#include "tablium/jwt.h"
#include "tablium/log.h"

/* ---------------------------------------------------------------- frames */

/* An Engine.IO packet encoded for the wire, shared by every recipient of a broadcast. The bytes
 * sit after LWS_PRE bytes of headroom, so a WebSocket write needs no copy. */
typedef struct frame {
    uint32_t refs;
    uint32_t len;
    uint8_t binary;
    uint8_t vol;
    unsigned char buf[];
} frame;

#define FRAME_DATA(f) ((f)->buf + LWS_PRE)

static frame *frame_new(const void *data, size_t len, bool binary)
{
    if (len > UINT32_MAX)
        return NULL;
    frame *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = (uint32_t)len;
    f->binary = binary;
    f->vol = 0;
    memcpy(FRAME_DATA(f), data, len);
    return f;
}

static void frame_unref(frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}

/* ---------------------------------------------------------------- small string map */

typedef struct hent {
    struct hent *next;
    const char *key; /* owned by the value */
    void *val;
} hent;

typedef struct hmap {
    hent **b;
    size_t nb, n;
} hmap;

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static void *hmap_get(const hmap *m, const char *key)
{
    if (!m->nb)
        return NULL;
    for (hent *e = m->b[hash_str(key) & (m->nb - 1)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

static int hmap_put(hmap *m, const char *key, void *val)
{
    if (m->n + 1 > m->nb) {
        size_t nb = m->nb ? m->nb * 2 : 16;
        hent **b = calloc(nb, sizeof *b);
        if (!b)
            return TB_ENOMEM;
        for (size_t i = 0; i < m->nb; i++)
            for (hent *e = m->b[i], *nx; e; e = nx) {
                nx = e->next;
                hent **slot = &b[hash_str(e->key) & (nb - 1)];
                e->next = *slot;
                *slot = e;
            }
        free(m->b);
        m->b = b;
        m->nb = nb;
    }
    hent *e = malloc(sizeof *e);
    if (!e)
        return TB_ENOMEM;
    hent **slot = &m->b[hash_str(key) & (m->nb - 1)];
    e->key = key;
    e->val = val;
    e->next = *slot;
    *slot = e;
    m->n++;
    return 0;
}

static void hmap_del(hmap *m, const char *key)
{
    if (!m->nb)
        return;
    for (hent **pp = &m->b[hash_str(key) & (m->nb - 1)]; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0) {
            hent *e = *pp;
            *pp = e->next;
            free(e);
            m->n--;
            return;
        }
}

static void hmap_free(hmap *m)
{
    for (size_t i = 0; i < m->nb; i++)
        for (hent *e = m->b[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(m->b);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- types */

typedef struct session session;
typedef struct room room;

enum { T_POLLING = 0, T_WS = 1 };
enum { S_OPEN = 0, S_CLOSING, S_DEAD };

struct session {
    session *prev, *next; /* srv->sessions */
    session *grave;       /* srv->graveyard */
    tb_rt_server *srv;
    char sid[24];
    uint8_t transport, state, raw, upgrading, noop_due, awaiting_pong, posting;
    struct lws *ws;  /* the WebSocket (upgraded, WebSocket-only, or the probe) */
    struct lws *get; /* the pending long-polling GET */
    frame **q;       /* outbound ring */
    uint32_t qhead, qn, qcap;
    size_t qbytes;
    lws_sorted_usec_list_t sul_ping;    /* ping interval, then ping timeout */
    lws_sorted_usec_list_t sul_connect; /* connectTimeout; closing deadline */
    tb_rt_socket **socks;               /* one per namespace */
    size_t nsocks, capsocks;
    /* a binary packet waiting for its attachments */
    tb_rt__sio_packet pend;
    char *pend_nsp;
    unsigned pend_have;
    tb_rt_bin pend_bins[TB_SIO_MAX_ATTACHMENTS];
};

typedef struct member {
    tb_rt_socket *s;
    uint32_t slot; /* index in s->rooms */
} member;

struct room {
    char *name;
    member *m;
    uint32_t n, cap;
};

typedef struct sroom {
    room *r;
    uint32_t idx; /* index in r->m */
} sroom;

typedef struct pending_ack {
    struct pending_ack *next;
    tb_rt_socket *s;
    int64_t id;
    tb_rt_ack_fn cb;
    void *ud;
    lws_sorted_usec_list_t sul;
} pending_ack;

struct tb_rt_socket {
    tb_rt_socket *prev, *next; /* nsp->socks */
    tb_rt_socket *grave;
    char id[24];
    session *sess;
    tb_rt_nsp *nsp;
    json_t *auth;
    tb_jwt_claims *claims;
    int64_t claims_until; /* wall-clock seconds: the handshake token's exp + leeway, 0: none */
    void *data;
    void (*release)(void *);
    sroom *rooms;
    uint32_t nrooms, caprooms;
    uint64_t mark, xmark; /* broadcast de-duplication stamps */
    int64_t next_ack;
    pending_ack *acks;
    bool gone;
    bool recovered; /* a recovered session */
    bool persisted; /* recovery: its session is in Redis (rooms are written as they change) */
    char pid[24];   /* recovery: the private session id ("" without recovery) */
};

typedef struct handler {
    char *name;
    tb_rt_event_fn fn;
    void *ud;
} handler;

typedef struct mware {
    tb_rt_middleware_fn fn;
    void *ud;
} mware;

/* Members of a room on every loop (several loops: tb_rt_room_count). */
typedef struct rcount {
    char *name;
    size_t n;
} rcount;

/* A namespace on every loop. */
typedef struct nsp_group {
    pthread_mutex_t mu; /* counts: each loop updates it as its sockets join and leave rooms */
    hmap counts;        /* room name -> rcount */
    tb_rt_nsp *twins[]; /* by loop index */
} nsp_group;

struct tb_rt_nsp {
    tb_rt_nsp *next; /* srv->nsps */
    tb_rt_server *srv;
    char *name;
    tb_rt_nsp_match_fn match; /* a pattern: not a namespace itself */
    void *match_ud;
    tb_rt_nsp *pattern; /* the pattern this namespace came from, whose handlers it uses */
    mware *mw;
    size_t nmw;
    handler *h;
    size_t nh;
    tb_rt_event_fn any;
    void *any_ud;
    tb_rt_socket_fn on_connect;
    void *on_connect_ud;
    tb_rt_disconnect_fn on_disconnect;
    void *on_disconnect_ud;
    tb_rt_disconnect_fn on_disconnecting;
    void *on_disconnecting_ud;
    tb_rt_socket *socks;
    atomic_size_t nsocks; /* read by the other loops (tb_rt_nsp_count) */
    hmap rooms;
    /* several loops: the same namespace on each loop (owned by the first loop's namespace);
     * NULL for a namespace a pattern created on one loop */
    struct nsp_group *grp;
    tb_rt_server_emit_fn server_emit;
    void *server_emit_ud;
};

typedef struct job {
    struct job *next;
    void (*work)(void *);
    void (*done)(tb_rt_server *, void *);
    void *ud;
    tb_rt_server *home; /* the loop done runs on */
} job;

/* Recovery: a session of this process that no CONNECT may recover (see pid_* below). */
typedef struct pid_state {
    char pid[24];
    bool live;                   /* its socket is connected, on one of the loops */
    int64_t ended_ms;            /* else: when it ended on purpose (monotonic) */
    struct pid_state *next_ended; /* the first loop's ended queue, oldest first */
} pid_state;

/* A CONNECT waiting for Redis to answer whether its session can be recovered. */
typedef struct restoring {
    struct restoring *next;
    char sess_sid[24]; /* its Engine.IO session, looked up again when Redis answers */
    tb_rt_socket *so;  /* the socket, not yet in its namespace */
    uint64_t cap_from; /* the first capture it needs */
} restoring;

/* While a recovery is in flight, what is delivered meanwhile is kept, so that the socket also
 * gets what was sent to its rooms between Redis' answer and its arrival on the loop. */
typedef struct capture {
    struct capture *next;
    uint64_t seq, n; /* n: the packet's recovery number (0: not stored) */
    tb_rt_nsp *nsp;
    struct frame *f[TB_SIO_MAX_ATTACHMENTS + 1];
    size_t nf;
    char **rooms, **except;
    size_t nrooms, nexcept;
} capture;

typedef struct post_item {
    struct post_item *next;
    void (*fn)(tb_rt_server *, void *);
    void *ud;
} post_item;

struct tb_rt_server {
    tb_rt_options o;
    char *path, *eio_path, *host, *cors;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int port;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    session *sessions;
    hmap sids;
    tb_rt_nsp *nsps;
    session *graveyard;
    tb_rt_socket *sock_graveyard;
    int depth;
    uint64_t epoch;
    tb_rt__adapter *adapter;
    tb_rt__rec *rec; /* connection state recovery, or NULL */
    uint64_t stores_sent, stores_done; /* packets this loop sent Redis to store, and answered */
    struct held *held, **held_tail;    /* packets waiting for stores in flight (send_frames) */
    restoring *restores;
    capture *caps, **caps_tail;
    uint64_t cap_seq;
    lws_sorted_usec_list_t sul_refresh;
    /* offload: worker threads */
    pthread_mutex_t job_mu;
    pthread_cond_t job_cv;
    job *jobs, *jobs_tail;
    pthread_t *workers;
    int nworkers;
    bool jobs_stop;
    pthread_mutex_t post_mu;
    post_item *posts, *posts_tail;
    size_t heap_base;
    /* several loops (tb_rt_options.loops > 1): each is a tb_rt_server of its own */
    tb_rt_server *primary;     /* the first loop (the handle users hold); itself when alone */
    tb_rt_server **shards;     /* the first loop: every loop, itself first; NULL when alone */
    unsigned nshards, shard;   /* loops in all (on the first loop); this loop's index */
    tb_rt__acceptor *acceptor; /* the first loop, with several: the listening socket */
    atomic_uint rr;            /* round robin among equally loaded loops */
    atomic_bool dying;         /* the first loop: tearing down, loops no longer post to others */
    /* recovery, on the first loop for every loop: the pids no CONNECT may recover */
    pthread_mutex_t pid_mu;
    hmap pids; /* pid -> pid_state */
    pid_state *ended, **ended_tail;
    bool direct_write; /* TB_RT_DIRECT_WRITE=0 turns off writing outside the writable callback */
    struct {
        atomic_uint_fast64_t sessions, sockets, websocket, packets_out, packets_in,
            dropped_volatile, slow_disconnects, protocol_errors, refused, buffered_bytes,
            adapter_published, adapter_received, adapter_bytes_in, adapter_dropped,
            adapter_reconnects, recovered, not_recovered;
    } st;
};

#define ST_ADD(srv, f, v)                                                                          \
    atomic_fetch_add_explicit(&(srv)->st.f, (uint64_t)(v), memory_order_relaxed)
#define ST_SUB(srv, f, v)                                                                          \
    atomic_fetch_sub_explicit(&(srv)->st.f, (uint64_t)(v), memory_order_relaxed)

/* Per-connection data of libwebsockets (zeroed when the connection opens; an HTTP keep-alive
 * connection reuses it for every request, so each request resets it). */
enum { K_NONE = 0, K_GET, K_POST, K_WS, K_DONE };
typedef struct pss {
    session *sess; /* K_WS: its session; K_GET: while pending */
    uint8_t kind, phase, close_after, closing, raw;
    int status;
    const char *ctype;
    unsigned char *resp; /* LWS_PRE + resp_len */
    size_t resp_len;
    char sid[24];
    char origin[256];
    unsigned char *rx; /* WebSocket message or POST body being assembled */
    size_t rx_len, rx_cap;
    bool rx_binary, rx_over;
    char ctrl[8]; /* "3probe", written before the queue */
    size_t ctrl_len;
    /* a chunked request body, decoded here (libwebsockets hands its framing through) */
    bool chunked;
    uint8_t ck_state;
    size_t ck_size;
    /* a CORS preflight: the request headers it asked for */
    bool preflight;
    char acrh[256];
} pss;

/* ---------------------------------------------------------------- several loops */

/* The loop running on this thread (NULL on any other thread). */
static _Thread_local tb_rt_server *tl_loop;

static tb_rt_nsp *nsp_find(tb_rt_server *srv, const char *name, size_t len);

/* The calling loop when srv is one of its group: handlers hold the first loop's server, and
 * what they do belongs to the loop they run on. */
static tb_rt_server *srv_here(tb_rt_server *srv)
{
    tb_rt_server *me = tl_loop;
    return me && srv && me->primary == srv->primary ? me : srv;
}

/* The calling loop's namespace of this name (each loop has its own sockets and rooms), or NULL
 * when this loop has none (a namespace a pattern created on another loop). */
static tb_rt_nsp *nsp_here(tb_rt_nsp *nsp)
{
    tb_rt_server *me = tl_loop;
    if (!me || me == nsp->srv || me->primary != nsp->srv->primary)
        return nsp;
    if (nsp->grp)
        return nsp->grp->twins[me->shard];
    return nsp->match ? NULL : nsp_find(me, nsp->name, strlen(nsp->name));
}

unsigned tb_rt__nshards(const tb_rt_server *srv)
{
    return srv->primary->nshards;
}

tb_rt_server *tb_rt__shard(tb_rt_server *srv, unsigned i)
{
    return srv->primary->shards ? srv->primary->shards[i] : srv;
}

static void session_close(session *s, const char *reason, bool flush);
static void socket_drop(tb_rt_socket *s, const char *reason, bool tell_client);
static void finish_connect(session *s, tb_rt_socket *so, const tb_rt__rec_session *res,
                           uint64_t cap_from);
static int restore_start(session *s, tb_rt_socket *so);
static void persist(tb_rt_socket *so);
static void replay(tb_rt_socket *so, const tb_rt__rec_session *res, uint64_t cap_from);
static void session_after_drop(tb_rt_socket *so, const char *reason);
static void pid_live(tb_rt_server *srv, const char *pid);
static int session_push(session *s, frame *f);

/* ---------------------------------------------------------------- ids */

static const char ID_CHARS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void new_id(char out[24])
{
    const char *A = ID_CHARS;
    unsigned char r[20];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)rand();
    for (size_t i = 0; i < 20; i++)
        out[i] = A[r[i] & 63];
    out[20] = '\0';
}

/* ---------------------------------------------------------------- HTTP answers */

/* Request headers a CORS preflight allows on the polling transport. */
#define TB_RT_CORS_HEADERS                                                                         \
    "Content-Type, Authorization, X-Requested-With, X-Request-ID, traceparent, tracestate"

static void http_answer(struct lws *wsi, pss *p, int status, const char *ctype, const void *body,
                        size_t len, bool close_after)
{
    free(p->resp);
    p->resp = malloc(LWS_PRE + len + 1);
    if (!p->resp) {
        p->resp_len = 0;
        p->status = 500;
        p->ctype = "text/plain";
        p->close_after = 1;
    } else {
        memcpy(p->resp + LWS_PRE, body, len);
        p->resp_len = len;
        p->status = status;
        p->ctype = ctype;
        p->close_after = close_after;
    }
    p->phase = 1;
    p->kind = K_DONE;
    if (wsi)
        lws_callback_on_writable(wsi);
}

static void http_error(struct lws *wsi, pss *p, int status, int code, const char *message)
{
    char body[160];
    int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, message);
    http_answer(wsi, p, status, "application/json", body, (size_t)n, true);
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **q,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), q, end);
}

static int http_writeable(struct lws *wsi, pss *p)
{
    tb_rt_server *srv = lws_context_user(lws_get_context(wsi));
    if (p->phase == 1) {
        unsigned char hb[LWS_PRE + 1024];
        unsigned char *start = hb + LWS_PRE, *q = start, *end = hb + sizeof hb - 1;
        if (lws_add_http_common_headers(wsi, (unsigned)p->status, p->ctype, p->resp_len, &q, end))
            return -1;
        /* CORS as socket.io's `cors: {origin: true, credentials: true}` (cors_origin NULL),
         * a fixed origin, or none ("") */
        const char *origin = srv->cors ? srv->cors : p->origin;
        bool reflect = !srv->cors;
        if (reflect || origin[0]) {
            const char *vary = p->preflight ? "Origin, Access-Control-Request-Headers" : "Origin";
            if (origin[0] && add_header(wsi, "access-control-allow-origin:", origin, &q, end))
                return -1;
            if (reflect && (add_header(wsi, "vary:", vary, &q, end) ||
                            add_header(wsi, "access-control-allow-credentials:", "true", &q, end)))
                return -1;
            if (p->preflight &&
                (add_header(wsi, "access-control-allow-methods:", "GET,HEAD,PUT,PATCH,POST,DELETE",
                            &q, end) ||
                 (p->acrh[0] &&
                  add_header(wsi, "access-control-allow-headers:", p->acrh, &q, end))))
                return -1;
        }
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &q, end))
            return -1;
        /* several loops: the next request may be another session's, on another loop; the
         * acceptor routes each new connection to the loop of its sid */
        if (srv->primary->nshards > 1)
            p->close_after = 1;
        if (p->close_after && add_header(wsi, "connection:", "close", &q, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &q, end))
            return -1;
        p->phase = 2;
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (p->phase == 2) {
        p->phase = 0;
        int n = 0;
        if (p->resp_len)
            n = lws_write(wsi, p->resp + LWS_PRE, p->resp_len, LWS_WRITE_HTTP_FINAL);
        free(p->resp);
        p->resp = NULL;
        p->resp_len = 0;
        if (n < 0 || p->close_after)
            return -1;
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- sessions */

static void reap(tb_rt_server *srv);

static void queue_clear(session *s)
{
    while (s->qn) {
        frame *f = s->q[s->qhead];
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qn--;
        s->qbytes -= f->len;
        ST_SUB(s->srv, buffered_bytes, f->len);
        frame_unref(f);
    }
}

static frame *queue_pop(session *s)
{
    if (!s->qn)
        return NULL;
    frame *f = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qn--;
    s->qbytes -= f->len;
    ST_SUB(s->srv, buffered_bytes, f->len);
    return f;
}

/* Answers the pending GET with everything queued (or a noop), then unlinks it. */
static void poll_flush(session *s, bool noop)
{
    struct lws *wsi = s->get;
    if (!wsi)
        return;
    pss *p = lws_wsi_user(wsi);
    tb_buf b = TB_BUF_INIT;
    if (noop) {
        tb_buf_putc(&b, '6');
    } else {
        bool first = true;
        frame *f;
        while ((f = queue_pop(s))) {
            if (!first)
                tb_buf_putc(&b, 0x1e);
            first = false;
            if (f->binary) {
                tb_buf_putc(&b, 'b');
                tb_buf_base64(&b, FRAME_DATA(f), f->len, false);
            } else {
                tb_buf_append(&b, FRAME_DATA(f), f->len);
            }
            frame_unref(f);
        }
    }
    s->get = NULL;
    p->sess = NULL;
    if (b.oom)
        http_answer(wsi, p, 500, "text/plain", "", 0, true);
    else
        http_answer(wsi, p, 200, "text/plain; charset=UTF-8", b.data, b.len, false);
    tb_buf_deinit(&b);
}

static void session_kick(session *s)
{
    if (s->transport == T_WS && !s->upgrading) {
        if (!s->ws)
            return;
        /* A frame alone in the queue of a link with nothing buffered goes out now: waiting for
         * the writable callback costs two epoll_ctl calls and a wake-up per delivery. Partial
         * sends stay safe: libwebsockets keeps the rest and asks for writable itself, and the
         * next frames then wait in the queue (lws_partial_buffered). */
        pss *p = lws_wsi_user(s->ws);
        if (s->srv->direct_write && s->qn == 1 && p && !p->ctrl_len && !p->closing &&
            !lws_partial_buffered(s->ws)) {
            frame *f = queue_pop(s);
            int n = lws_write(s->ws, FRAME_DATA(f), f->len,
                              f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
            frame_unref(f);
            if (n < 0) {
                p->closing = 1;
                lws_callback_on_writable(s->ws);
            } else if (s->state == S_CLOSING) {
                lws_callback_on_writable(s->ws); /* flushed: the writable callback closes it */
            }
            return;
        }
        lws_callback_on_writable(s->ws);
    } else if (s->get && s->qn && !s->upgrading) {
        poll_flush(s, false);
    }
}

static int session_push(session *s, frame *f)
{
    tb_rt_server *srv = s->srv;
    if (s->state != S_OPEN && !(s->state == S_CLOSING && f->len == 1)) {
        frame_unref(f);
        return TB_ESTATE;
    }
    if (s->qbytes + f->len > srv->o.max_buffered && s->qn > 0) {
        if (f->vol) {
            ST_ADD(srv, dropped_volatile, 1);
            frame_unref(f);
            return 0;
        }
        frame_unref(f);
        ST_ADD(srv, slow_disconnects, 1);
        session_close(s, "slow client", false);
        return TB_EBUSY;
    }
    if (s->qn == s->qcap) {
        uint32_t nc = s->qcap ? s->qcap * 2 : 8;
        frame **q = malloc(nc * sizeof *q);
        if (!q) {
            frame_unref(f);
            return TB_ENOMEM;
        }
        for (uint32_t i = 0; i < s->qn; i++)
            q[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = q;
        s->qhead = 0;
        s->qcap = nc;
    }
    s->q[(s->qhead + s->qn) % s->qcap] = f;
    s->qn++;
    s->qbytes += f->len;
    ST_ADD(srv, buffered_bytes, f->len);
    ST_ADD(srv, packets_out, 1);
    session_kick(s);
    return 0;
}

static int session_send_text(session *s, const char *text, size_t len)
{
    frame *f = frame_new(text, len, false);
    if (!f)
        return TB_ENOMEM;
    return session_push(s, f);
}

static void schedule(session *s, lws_sorted_usec_list_t *sul, sul_cb_t cb, unsigned ms)
{
    lws_sul_schedule(s->srv->ctx, 0, sul, cb, (lws_usec_t)ms * 1000);
}

static void on_ping_timer(lws_sorted_usec_list_t *sul)
{
    session *s = lws_container_of(sul, session, sul_ping);
    tb_rt_server *srv = s->srv;
    srv->depth++;
    if (s->state == S_CLOSING) {
        session_close(s, NULL, false); /* the flush deadline passed */
    } else if (s->awaiting_pong) {
        session_close(s, "ping timeout", false);
    } else {
        s->awaiting_pong = 1;
        schedule(s, &s->sul_ping, on_ping_timer, srv->o.ping_timeout_ms);
        session_send_text(s, "2", 1);
    }
    srv->depth--;
    reap(srv);
}

static void on_connect_timer(lws_sorted_usec_list_t *sul)
{
    session *s = lws_container_of(sul, session, sul_connect);
    tb_rt_server *srv = s->srv;
    srv->depth++;
    if (s->state == S_OPEN && s->nsocks == 0 && !s->raw)
        session_close(s, "connect timeout", false);
    srv->depth--;
    reap(srv);
}

static session *session_new(tb_rt_server *srv, int transport, bool raw)
{
    session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->srv = srv;
    s->transport = (uint8_t)transport;
    s->raw = raw;
    do {
        new_id(s->sid);
        if (srv->primary->nshards > 1) /* its loop, for the acceptor to route its requests */
            s->sid[0] = ID_CHARS[srv->shard];
    } while (hmap_get(&srv->sids, s->sid));
    if (hmap_put(&srv->sids, s->sid, s) != 0) {
        free(s);
        return NULL;
    }
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    ST_ADD(srv, sessions, 1);
    if (transport == T_WS)
        ST_ADD(srv, websocket, 1);

    tb_buf b = TB_BUF_INIT;
    tb_buf_printf(&b,
                  "0{\"sid\":\"%s\",\"upgrades\":%s,\"pingInterval\":%u,\"pingTimeout\":%u,"
                  "\"maxPayload\":%zu}",
                  s->sid, transport == T_POLLING ? "[\"websocket\"]" : "[]",
                  srv->o.ping_interval_ms, srv->o.ping_timeout_ms, srv->o.max_payload);
    session_send_text(s, b.data, b.len);
    tb_buf_deinit(&b);
    schedule(s, &s->sul_ping, on_ping_timer, srv->o.ping_interval_ms);
    if (!raw)
        schedule(s, &s->sul_connect, on_connect_timer, srv->o.connect_timeout_ms);
    return s;
}

static void pend_clear(session *s)
{
    json_decref(s->pend.data);
    s->pend.data = NULL;
    for (unsigned i = 0; i < s->pend_have; i++)
        free((void *)s->pend_bins[i].data);
    s->pend_have = 0;
    free(s->pend_nsp);
    s->pend_nsp = NULL;
    s->pend.nattach = 0;
}

/* Ends a session. With flush (a server-side close), what is queued is still delivered, then the
 * link closes; without, everything goes now. reason NULL: the sockets are already gone. */
static void session_close(session *s, const char *reason, bool flush)
{
    tb_rt_server *srv = s->srv;
    if (s->state == S_DEAD)
        return;
    if (s->state == S_OPEN) {
        s->state = S_CLOSING;
        while (s->nsocks)
            socket_drop(s->socks[s->nsocks - 1], reason ? reason : "transport close", false);
        pend_clear(s);
        lws_sul_cancel(&s->sul_connect);
        if (flush && (s->qn || s->transport == T_POLLING)) {
            if (s->transport == T_POLLING) {
                session_send_text(s, "1", 1);
                if (s->get)
                    poll_flush(s, false);
            } else if (s->ws) {
                lws_callback_on_writable(s->ws);
            }
            if (s->ws || s->transport == T_POLLING) {
                /* the flush deadline; a ws closes itself once its queue drained */
                schedule(s, &s->sul_ping, on_ping_timer, 2000);
                return;
            }
        }
    }
    /* dead now: unlink the connections, free at reap */
    s->state = S_DEAD;
    lws_sul_cancel(&s->sul_ping);
    lws_sul_cancel(&s->sul_connect);
    hmap_del(&srv->sids, s->sid);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ST_SUB(srv, sessions, 1);
    if (s->transport == T_WS)
        ST_SUB(srv, websocket, 1);
    if (s->ws) {
        pss *p = lws_wsi_user(s->ws);
        p->sess = NULL;
        p->closing = 1;
        lws_callback_on_writable(s->ws);
        s->ws = NULL;
    }
    if (s->get) {
        /* a poll still waiting gets the close packet */
        struct lws *wsi = s->get;
        pss *p = lws_wsi_user(wsi);
        s->get = NULL;
        p->sess = NULL;
        http_answer(wsi, p, 200, "text/plain; charset=UTF-8", "1", 1, false);
    }
    queue_clear(s);
    s->grave = srv->graveyard;
    srv->graveyard = s;
}

/* ---------------------------------------------------------------- rooms */

/* Several loops: a member more (+1) or fewer (-1) in a room, for tb_rt_room_count. */
static void room_counted(tb_rt_nsp *nsp, const char *name, int d)
{
    nsp_group *g = nsp->grp;
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    rcount *c = hmap_get(&g->counts, name);
    if (!c && d > 0 && (c = calloc(1, sizeof *c)) != NULL) {
        if (!(c->name = strdup(name)) || hmap_put(&g->counts, c->name, c) != 0) {
            free(c->name);
            free(c);
            c = NULL; /* out of memory: the count is low, nothing else */
        }
    }
    if (c && (d > 0 || c->n > 0))
        c->n += (size_t)(ssize_t)d;
    if (c && c->n == 0) {
        hmap_del(&g->counts, c->name);
        free(c->name);
        free(c);
    }
    pthread_mutex_unlock(&g->mu);
}

static room *room_get(tb_rt_nsp *nsp, const char *name, bool create)
{
    room *r = hmap_get(&nsp->rooms, name);
    if (r || !create)
        return r;
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name)) || hmap_put(&nsp->rooms, r->name, r) != 0) {
        if (r)
            free(r->name);
        free(r);
        return NULL;
    }
    if (nsp->srv->adapter)
        tb_rt__adapter_room_added(nsp->srv->adapter, nsp, r->name);
    return r;
}

static void room_maybe_free(tb_rt_nsp *nsp, room *r)
{
    if (r->n)
        return;
    if (nsp->srv->adapter)
        tb_rt__adapter_room_removed(nsp->srv->adapter, nsp, r->name);
    hmap_del(&nsp->rooms, r->name);
    free(r->m);
    free(r->name);
    free(r);
}

int tb_rt_socket_join(tb_rt_socket *s, const char *room_name)
{
    if (!s || !room_name || s->gone)
        return TB_EINVAL;
    if (tb_rt_socket_in(s, room_name))
        return 0;
    room *r = room_get(s->nsp, room_name, true);
    if (!r)
        return TB_ENOMEM;
    if (r->n == r->cap) {
        uint32_t nc = r->cap ? r->cap * 2 : 4;
        member *m = realloc(r->m, nc * sizeof *m);
        if (!m) {
            room_maybe_free(s->nsp, r);
            return TB_ENOMEM;
        }
        r->m = m;
        r->cap = nc;
    }
    if (s->nrooms == s->caprooms) {
        uint32_t nc = s->caprooms ? s->caprooms * 2 : 2;
        sroom *sr = realloc(s->rooms, nc * sizeof *sr);
        if (!sr) {
            room_maybe_free(s->nsp, r);
            return TB_ENOMEM;
        }
        s->rooms = sr;
        s->caprooms = nc;
    }
    r->m[r->n] = (member){s, s->nrooms};
    s->rooms[s->nrooms] = (sroom){r, r->n};
    r->n++;
    s->nrooms++;
    room_counted(s->nsp, room_name, +1);
    if (s->persisted)
        persist(s);
    return 0;
}

static void leave_slot(tb_rt_socket *s, uint32_t slot)
{
    room *r = s->rooms[slot].r;
    uint32_t idx = s->rooms[slot].idx;
    /* swap-remove from the room, fixing the moved member's back index */
    r->m[idx] = r->m[--r->n];
    if (idx < r->n)
        r->m[idx].s->rooms[r->m[idx].slot].idx = idx;
    /* swap-remove from the socket */
    s->rooms[slot] = s->rooms[--s->nrooms];
    if (slot < s->nrooms) {
        sroom *moved = &s->rooms[slot];
        moved->r->m[moved->idx].slot = slot;
    }
    room_counted(s->nsp, r->name, -1);
    room_maybe_free(s->nsp, r);
}

int tb_rt_socket_leave(tb_rt_socket *s, const char *room_name)
{
    if (!s || !room_name)
        return TB_EINVAL;
    for (uint32_t i = 0; i < s->nrooms; i++)
        if (strcmp(s->rooms[i].r->name, room_name) == 0) {
            leave_slot(s, i);
            if (s->persisted)
                persist(s);
            return 0;
        }
    return 0;
}

size_t tb_rt_socket_rooms(const tb_rt_socket *s, const char **out, size_t max)
{
    size_t n = s ? s->nrooms : 0;
    for (size_t i = 0; out && i < n && i < max; i++)
        out[i] = s->rooms[i].r->name;
    return n;
}

bool tb_rt_socket_in(const tb_rt_socket *s, const char *room_name)
{
    for (uint32_t i = 0; s && i < s->nrooms; i++)
        if (strcmp(s->rooms[i].r->name, room_name) == 0)
            return true;
    return false;
}

size_t tb_rt_room_count(const tb_rt_nsp *nsp, const char *room_name)
{
    if (nsp->grp) {
        pthread_mutex_lock(&nsp->grp->mu);
        rcount *c = hmap_get(&nsp->grp->counts, room_name);
        size_t n = c ? c->n : 0;
        pthread_mutex_unlock(&nsp->grp->mu);
        return n;
    }
    room *r = hmap_get(&nsp->rooms, room_name);
    return r ? r->n : 0;
}

size_t tb_rt_nsp_count(const tb_rt_nsp *nsp)
{
    if (!nsp->grp)
        return nsp->nsocks;
    size_t n = 0;
    for (unsigned i = 0; i < nsp->srv->primary->nshards; i++)
        n += nsp->grp->twins[i]->nsocks;
    return n;
}


/* ---------------------------------------------------------------- sending */

/* What an emit, broadcast or ack may send: not a name Socket.IO reserves (the client would take
 * the packet for its own and drop the link, as the reference server refuses to emit them), args
 * an array, and with attachments every placeholder naming one of them. TB_EINVAL, else 0. */
static int outbound_ok(const char *event, const json_t *args, size_t nbins)
{
    if (event && tb_rt__sio_reserved(event, strlen(event)))
        return TB_EINVAL;
    if (nbins > TB_SIO_MAX_ATTACHMENTS || (args && !json_is_array(args)))
        return TB_EINVAL;
    if (nbins && args && tb_rt__sio_check_placeholders(args, (unsigned)nbins) < 0)
        return TB_EINVAL;
    return 0;
}

/* Encodes an EVENT or ACK packet into frames: the text frame, then one frame per attachment. */
static int encode_packet(tb_rt_nsp *nsp, int type, int64_t ack_id, const char *event,
                         const json_t *args, const tb_rt_bin *bins, size_t nbins, frame **out,
                         size_t *nout)
{
    if (outbound_ok(event, args, nbins))
        return TB_EINVAL;
    tb_buf data = TB_BUF_INIT, pkt = TB_BUF_INIT;
    int rc;
    if (event) {
        rc = tb_rt__sio_event_json(&data, event, args);
    } else if (args) {
        rc = tb_buf_json_value(&data, args);
    } else {
        tb_buf_puts(&data, "[]");
        rc = 0;
    }
    if (rc == 0 && nbins)
        type = type == TB_SIO_EVENT ? TB_SIO_BINARY_EVENT : TB_SIO_BINARY_ACK;
    if (rc == 0) {
        tb_rt__sio_encode(&pkt, type, (unsigned)nbins, nsp->name, ack_id, data.data, data.len);
        rc = pkt.oom || data.oom ? TB_ENOMEM : 0;
    }
    size_t n = 0;
    if (rc == 0 && (out[n] = frame_new(pkt.data, pkt.len, false)))
        n++;
    else if (rc == 0)
        rc = TB_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nbins; i++) {
        if (!(out[n] = frame_new(bins[i].data, bins[i].len, true)))
            rc = TB_ENOMEM;
        else
            n++;
    }
    tb_buf_deinit(&data);
    tb_buf_deinit(&pkt);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            frame_unref(out[i]);
        return rc;
    }
    *nout = n;
    return 0;
}

static int push_frames(session *s, frame **f, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        f[i]->refs++;
        int r = session_push(s, f[i]);
        if (r != 0 && rc == 0)
            rc = r;
        if (r != 0 && (s->state != S_OPEN))
            break;
    }
    return rc;
}

/* With recovery a stored packet goes out once Redis answers, a round trip later. A packet to a
 * socket that is not stored (an ack, an emit with an ack) made meanwhile is held behind the
 * stores this loop has in flight, and sent once the last of them is answered (answers come back
 * in order), so a socket gets packets in the order they were made, as socket.io's in-memory
 * store gives. The socket is kept by id: it may be gone by then. */
typedef struct held {
    struct held *next;
    uint64_t after; /* stores_sent when it was held */
    tb_rt_nsp *nsp;
    char sid[24];
    size_t n;
    frame *f[TB_SIO_MAX_ATTACHMENTS + 1];
} held;

static void held_free(held *h)
{
    for (size_t i = 0; i < h->n; i++)
        frame_unref(h->f[i]);
    free(h);
}

static int send_frames(tb_rt_socket *s, frame **f, size_t n)
{
    tb_rt_server *srv = s->nsp->srv;
    if (srv->stores_done == srv->stores_sent && !srv->held)
        return push_frames(s->sess, f, n);
    held *h = calloc(1, sizeof *h);
    if (!h)
        return TB_ENOMEM;
    h->after = srv->stores_sent;
    h->nsp = s->nsp;
    snprintf(h->sid, sizeof h->sid, "%s", s->id);
    for (size_t i = 0; i < n; i++) {
        f[i]->refs++;
        h->f[h->n++] = f[i];
    }
    if (!srv->held)
        srv->held_tail = &srv->held;
    *srv->held_tail = h;
    srv->held_tail = &h->next;
    return 0;
}

/* Sends what no store in flight holds back any more (every one when all is true: teardown). */
static void held_release(tb_rt_server *srv, bool all)
{
    while (srv->held && (all || srv->held->after <= srv->stores_done)) {
        held *h = srv->held;
        srv->held = h->next;
        tb_rt_socket *s = all ? NULL : tb_rt__socket_find(h->nsp, h->sid);
        if (s && !s->gone)
            push_frames(s->sess, h->f, h->n);
        held_free(h);
    }
    if (!srv->held)
        srv->held_tail = &srv->held;
}

static int store_then_send(tb_rt_nsp *nsp, const tb_rt_to *to, const tb_rt_socket *one,
                           const char *event, const json_t *args, const tb_rt_bin *bins,
                           size_t nbins);

static int emit_now(tb_rt_socket *s, const char *event, const json_t *args, const tb_rt_bin *bins,
                    size_t nbins)
{
    frame *f[TB_SIO_MAX_ATTACHMENTS + 1];
    size_t n;
    int rc = encode_packet(s->nsp, TB_SIO_EVENT, -1, event, args, bins, nbins, f, &n);
    if (rc != 0)
        return rc;
    rc = push_frames(s->sess, f, n);
    for (size_t i = 0; i < n; i++)
        frame_unref(f[i]);
    return rc;
}

int tb_rt_socket_emit(tb_rt_socket *s, const char *event, const json_t *args, const tb_rt_bin *bins,
                      size_t nbins)
{
    if (!s || !event || outbound_ok(event, args, nbins))
        return TB_EINVAL;
    if (s->gone)
        return TB_ESTATE;
    if (s->nsp->srv->rec) /* stored in the socket's own room first, as socket.io does */
        return store_then_send(s->nsp, NULL, s, event, args, bins, nbins);
    return emit_now(s, event, args, bins, nbins);
}

static void ack_unlink(pending_ack *a)
{
    for (pending_ack **pp = &a->s->acks; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    lws_sul_cancel(&a->sul);
}

static void on_ack_timeout(lws_sorted_usec_list_t *sul)
{
    pending_ack *a = lws_container_of(sul, pending_ack, sul);
    tb_rt_server *srv = a->s->nsp->srv;
    srv->depth++;
    ack_unlink(a);
    a->cb(a->s, TB_ETIMEDOUT, NULL, NULL, 0, a->ud);
    free(a);
    srv->depth--;
    reap(srv);
}

int tb_rt_socket_emit_ack(tb_rt_socket *s, const char *event, const json_t *args,
                          const tb_rt_bin *bins, size_t nbins, unsigned timeout_ms, tb_rt_ack_fn cb,
                          void *ud)
{
    if (!s || !event || !cb)
        return TB_EINVAL;
    if (s->gone)
        return TB_ESTATE;
    pending_ack *a = calloc(1, sizeof *a);
    if (!a)
        return TB_ENOMEM;
    frame *f[TB_SIO_MAX_ATTACHMENTS + 1];
    size_t n;
    int64_t id = s->next_ack++;
    int rc = encode_packet(s->nsp, TB_SIO_EVENT, id, event, args, bins, nbins, f, &n);
    if (rc != 0) {
        free(a);
        return rc;
    }
    a->s = s;
    a->id = id;
    a->cb = cb;
    a->ud = ud;
    a->next = s->acks;
    s->acks = a;
    lws_sul_schedule(s->nsp->srv->ctx, 0, &a->sul, on_ack_timeout,
                     (lws_usec_t)(timeout_ms ? timeout_ms : 10000) * 1000);
    rc = send_frames(s, f, n);
    for (size_t i = 0; i < n; i++)
        frame_unref(f[i]);
    if (rc != 0 && !s->gone) {
        ack_unlink(a);
        free(a);
    }
    /* when the push closed the link, socket_drop already answered cb with TB_ECONN */
    return rc;
}

int tb_rt_ack(tb_rt_socket *s, const tb_rt_event *ev, const json_t *args, const tb_rt_bin *bins,
              size_t nbins)
{
    if (!s || !ev || ev->ack_id < 0)
        return TB_EINVAL;
    if (s->gone)
        return TB_ESTATE;
    frame *f[TB_SIO_MAX_ATTACHMENTS + 1];
    size_t n;
    int rc = encode_packet(s->nsp, TB_SIO_ACK, ev->ack_id, NULL, args, bins, nbins, f, &n);
    if (rc != 0)
        return rc;
    rc = send_frames(s, f, n);
    for (size_t i = 0; i < n; i++)
        frame_unref(f[i]);
    return rc;
}

tb_rt_socket **tb_rt__select(tb_rt_nsp *nsp, const tb_rt_to *to, size_t *nout)
{
    uint64_t ep = ++nsp->srv->epoch;
    *nout = 0;
    if (to)
        for (size_t i = 0; i < to->nexcept; i++) {
            room *r = hmap_get(&nsp->rooms, to->except[i]);
            for (uint32_t j = 0; r && j < r->n; j++)
                r->m[j].s->xmark = ep;
        }
    const tb_rt_socket *skip = to ? to->except_socket : NULL;
    tb_rt_socket **list = NULL;
    size_t nl = 0, cap = 0;
    if (!to || to->nrooms == 0) {
        cap = nsp->nsocks;
        list = cap ? malloc(cap * sizeof *list) : NULL;
        for (tb_rt_socket *s = nsp->socks; list && s; s = s->next)
            if (s != skip && s->xmark != ep)
                list[nl++] = s;
    } else {
        for (size_t i = 0; i < to->nrooms; i++) {
            room *r = hmap_get(&nsp->rooms, to->rooms[i]);
            cap += r ? r->n : 0;
        }
        list = cap ? malloc(cap * sizeof *list) : NULL;
        for (size_t i = 0; list && i < to->nrooms; i++) {
            room *r = hmap_get(&nsp->rooms, to->rooms[i]);
            for (uint32_t j = 0; r && j < r->n; j++) {
                tb_rt_socket *s = r->m[j].s;
                if (s == skip || s->xmark == ep || s->mark == ep)
                    continue;
                s->mark = ep;
                list[nl++] = s;
            }
        }
    }
    *nout = nl;
    return list;
}

static char **strv_dup(const char *const *v, size_t n, const char *extra)
{
    char **out = calloc(n + 2, sizeof *out);
    bool ok = out != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = (out[i] = strdup(v[i])) != NULL;
    if (ok && extra)
        ok = (out[n] = strdup(extra)) != NULL;
    if (!ok && out) {
        for (size_t i = 0; i <= n; i++)
            free(out[i]);
        free(out);
        return NULL;
    }
    return out;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void capture_free(capture *c)
{
    for (size_t i = 0; i < c->nf; i++)
        frame_unref(c->f[i]);
    strv_free(c->rooms);
    strv_free(c->except);
    free(c);
}

/* Keeps a delivered packet for the recoveries in flight. */
static void capture_add(tb_rt_nsp *nsp, const tb_rt_to *to, uint64_t n, frame **f, size_t nf)
{
    tb_rt_server *srv = nsp->srv;
    capture *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->seq = srv->cap_seq++;
    c->n = n;
    c->nsp = nsp;
    c->nrooms = to ? to->nrooms : 0;
    c->nexcept = (to ? to->nexcept : 0) + (to && to->except_socket ? 1 : 0);
    c->rooms = strv_dup(to ? (const char *const *)to->rooms : NULL, to ? to->nrooms : 0, NULL);
    c->except = strv_dup(to ? (const char *const *)to->except : NULL, to ? to->nexcept : 0,
                         to && to->except_socket ? to->except_socket->id : NULL);
    if (!c->rooms || !c->except) {
        capture_free(c);
        return;
    }
    for (size_t i = 0; i < nf; i++) {
        f[i]->refs++;
        c->f[c->nf++] = f[i];
    }
    if (!srv->caps)
        srv->caps_tail = &srv->caps;
    *srv->caps_tail = c;
    srv->caps_tail = &c->next;
}

/* Drops the captures no recovery in flight needs. */
static void captures_trim(tb_rt_server *srv)
{
    uint64_t keep = UINT64_MAX;
    for (restoring *r = srv->restores; r; r = r->next)
        if (r->cap_from < keep)
            keep = r->cap_from;
    while (srv->caps && srv->caps->seq < keep) {
        capture *c = srv->caps;
        srv->caps = c->next;
        capture_free(c);
    }
    if (!srv->caps)
        srv->caps_tail = &srv->caps;
}

/* The number in an offset "<epoch>:<n>" (the last argument of a stored packet), else 0. */
static uint64_t offset_number(const char *s, size_t len)
{
    const char *colon = s ? memrchr(s, ':', len) : NULL;
    if (!colon || colon == s || (size_t)(s + len - colon) < 2)
        return 0;
    uint64_t n = 0;
    for (const char *p = colon + 1; p < s + len; p++) {
        if (*p < '0' || *p > '9' || n > UINT64_MAX / 10 - 10)
            return 0;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    return n;
}

static void forward(tb_rt_nsp *nsp, const tb_rt_to *to, const char *event, const json_t *args,
                    const tb_rt_bin *bins, size_t nbins, uint64_t n);

/* Delivers now; n: the packet's recovery number when stored (0: none, or read from the last
 * argument of a packet from another node). */
static int broadcast_now(tb_rt_nsp *nsp, const tb_rt_to *to, const char *event, const json_t *args,
                         const tb_rt_bin *bins, size_t nbins, uint64_t n)
{
    frame *f[TB_SIO_MAX_ATTACHMENTS + 1];
    size_t nf;
    int rc = encode_packet(nsp, TB_SIO_EVENT, -1, event, args, bins, nbins, f, &nf);
    if (rc != 0)
        return rc;
    if (to && (to->flags & TB_RT_VOLATILE))
        for (size_t i = 0; i < nf; i++)
            f[i]->vol = 1;
    if (nsp->srv->adapter && !(to && (to->flags & TB_RT_LOCAL)))
        rc = tb_rt__adapter_publish(nsp->srv->adapter, nsp, to, event, args, bins, nbins);
    /* the other loops of this process: through Redis when each is a node of the adapter, else
     * (or for a local broadcast) directly; never what came from another loop or node */
    if (nsp->srv->primary->nshards > 1 && !(to && (to->flags & TB_RT__REMOTE)) &&
        (!nsp->srv->adapter || (to && (to->flags & TB_RT_LOCAL))))
        forward(nsp, to, event, args, bins, nbins, n);
    if (nsp->srv->restores) {
        json_t *last = json_array_get(args, json_array_size(args) - 1);
        if (!n && to && (to->flags & TB_RT__REMOTE) && json_is_string(last))
            n = offset_number(json_string_value(last), json_string_length(last));
        capture_add(nsp, to, n, f, nf);
    }
    /* recipients first (a push may close a slow client's link and change the rooms) */
    size_t nl;
    tb_rt_socket **list = tb_rt__select(nsp, to, &nl);
    for (size_t i = 0; i < nl; i++)
        if (!list[i]->gone)
            push_frames(list[i]->sess, f, nf);
    free(list);
    for (size_t i = 0; i < nf; i++)
        frame_unref(f[i]);
    return rc;
}

/* A packet on its way to Redis (recovery): delivered when stored, with its offset. Also a
 * broadcast on its way to another loop (nsp_name, n). */
typedef struct stored_job {
    tb_rt_nsp *nsp; /* namespaces live as long as the server */
    char *nsp_name; /* to another loop: its namespace of this name */
    uint64_t n;     /* to another loop: the recovery number */
    char *event;
    json_t *args;
    tb_rt_bin bins[TB_SIO_MAX_ATTACHMENTS];
    size_t nbins;
    char **rooms, **except;
    size_t nrooms, nexcept;
    unsigned flags;
    char one[24]; /* an emit to this socket only */
} stored_job;

static void stored_job_free(stored_job *j)
{
    free(j->nsp_name);
    free(j->event);
    json_decref(j->args);
    for (size_t i = 0; i < j->nbins; i++)
        free((void *)j->bins[i].data);
    strv_free(j->rooms);
    strv_free(j->except);
    free(j);
}

static void on_stored(tb_rt_server *srv, const char *offset, size_t len, void *ud)
{
    stored_job *j = ud;
    uint64_t n = 0;
    if (offset && json_array_append_new(j->args, json_stringn(offset, len)) == 0)
        n = offset_number(offset, len);
    srv->depth++;
    if (j->one[0]) {
        tb_rt_socket *s = tb_rt__socket_find(j->nsp, j->one);
        if (s && !s->gone)
            emit_now(s, j->event, j->args, j->bins, j->nbins);
    } else {
        tb_rt_to to = {(const char *const *)j->rooms,
                       j->nrooms,
                       (const char *const *)j->except,
                       j->nexcept,
                       NULL,
                       j->flags};
        broadcast_now(j->nsp, &to, j->event, j->args, j->bins, j->nbins, n);
    }
    srv->stores_done++;
    held_release(srv, false);
    srv->depth--;
    reap(srv);
    stored_job_free(j);
}

/* A copy of a packet and where it goes, to send later or on another thread (the socket `one`,
 * an emit to one socket, by id: it may be gone by then; the excepted socket among the except
 * rooms). NULL when out of memory. */
static stored_job *job_new(tb_rt_nsp *nsp, const tb_rt_to *to, const tb_rt_socket *one,
                           const char *event, const json_t *args, const tb_rt_bin *bins,
                           size_t nbins)
{
    stored_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->nsp = nsp;
    j->event = strdup(event);
    j->args = args ? json_deep_copy(args) : json_array();
    bool ok = j->event && j->args;
    for (size_t i = 0; ok && i < nbins; i++) {
        void *d = malloc(bins[i].len ? bins[i].len : 1);
        ok = d != NULL;
        if (ok) {
            memcpy(d, bins[i].data, bins[i].len);
            j->bins[j->nbins].data = d;
            j->bins[j->nbins++].len = bins[i].len;
        }
    }
    const char *one_room = one ? one->id : NULL;
    if (one)
        snprintf(j->one, sizeof j->one, "%s", one->id);
    j->nrooms = one ? 1 : to ? to->nrooms : 0;
    j->nexcept = (to ? to->nexcept : 0) + (to && to->except_socket ? 1 : 0);
    j->flags = to ? to->flags : 0;
    j->rooms = one ? strv_dup(&one_room, 1, NULL)
                   : strv_dup(to ? (const char *const *)to->rooms : NULL, j->nrooms, NULL);
    j->except = strv_dup(to ? (const char *const *)to->except : NULL, to ? to->nexcept : 0,
                         to && to->except_socket ? to->except_socket->id : NULL);
    if (!ok || !j->rooms || !j->except) {
        stored_job_free(j);
        return NULL;
    }
    return j;
}

static void on_forwarded(tb_rt_server *srv, void *ud)
{
    stored_job *j = ud;
    tb_rt_nsp *nsp = nsp_find(srv, j->nsp_name, strlen(j->nsp_name));
    if (nsp) { /* else no socket ever joined it on this loop */
        tb_rt_to to = {(const char *const *)j->rooms,
                       j->nrooms,
                       (const char *const *)j->except,
                       j->nexcept,
                       NULL,
                       j->flags | TB_RT_LOCAL | TB_RT__REMOTE};
        srv->depth++;
        broadcast_now(nsp, &to, j->event, j->args, j->bins, j->nbins, j->n);
        srv->depth--;
        reap(srv);
    }
    stored_job_free(j);
}

/* Hands a broadcast to the other loops, each its own copy (in order: a loop's posts run in the
 * order they were made). */
static void forward(tb_rt_nsp *nsp, const tb_rt_to *to, const char *event, const json_t *args,
                    const tb_rt_bin *bins, size_t nbins, uint64_t n)
{
    tb_rt_server *first = nsp->srv->primary;
    if (atomic_load(&first->dying))
        return;
    for (unsigned i = 0; i < first->nshards; i++) {
        tb_rt_server *other = first->shards[i];
        if (other == nsp->srv)
            continue;
        stored_job *j = job_new(nsp, to, NULL, event, args, bins, nbins);
        if (j && (j->nsp_name = strdup(nsp->name)) != NULL) {
            j->n = n;
            if (tb_rt_server_post(other, on_forwarded, j) == 0)
                continue;
        }
        if (j)
            stored_job_free(j);
        tb_log_warn(NULL, "realtime: out of memory forwarding a broadcast to loop %u", i);
    }
}

/* Recovery: stores the packet in Redis (rooms' streams), then sends it with its offset. The
 * socket `one` (an emit to one socket) is kept by id: it may be gone by then. */
static int store_then_send(tb_rt_nsp *nsp, const tb_rt_to *to, const tb_rt_socket *one,
                           const char *event, const json_t *args, const tb_rt_bin *bins,
                           size_t nbins)
{
    if (nbins > TB_SIO_MAX_ATTACHMENTS || (args && !json_is_array(args)))
        return TB_EINVAL;
    stored_job *j = job_new(nsp, to, one, event, args, bins, nbins);
    if (!j)
        return TB_ENOMEM;
    tb_buf data = TB_BUF_INIT, pkt = TB_BUF_INIT;
    int rc = tb_rt__sio_event_json(&data, event, j->args);
    if (rc == 0 && (data.oom || data.len < 2))
        rc = TB_ENOMEM;
    if (rc == 0) { /* the text without its closing ']': Redis appends the offset */
        tb_rt__sio_encode(&pkt, nbins ? TB_SIO_BINARY_EVENT : TB_SIO_EVENT, (unsigned)nbins,
                          nsp->name, -1, data.data, data.len - 1);
        rc = pkt.oom ? TB_ENOMEM : 0;
    }
    if (rc == 0)
        rc = tb_rt__rec_store(nsp->srv->rec, nsp->name, (const char *const *)j->rooms, j->nrooms,
                              (const char *const *)j->except, j->nexcept, pkt.data, pkt.len,
                              j->bins, j->nbins, on_stored, j);
    tb_buf_deinit(&data);
    tb_buf_deinit(&pkt);
    if (rc != 0)
        stored_job_free(j);
    else
        nsp->srv->stores_sent++;
    return rc;
}

static bool recoverable(const tb_rt_nsp *nsp, const tb_rt_to *to)
{
    return nsp->srv->rec && !(to && (to->flags & (TB_RT_VOLATILE | TB_RT__REMOTE)));
}

static tb_rt_nsp *nsp_new(tb_rt_server *srv, const char *name);

int tb_rt_broadcast(tb_rt_nsp *nsp, const tb_rt_to *to, const char *event, const json_t *args,
                    const tb_rt_bin *bins, size_t nbins)
{
    if (!nsp || !event || nsp->match || outbound_ok(event, args, nbins))
        return TB_EINVAL;
    tb_rt_nsp *here = nsp_here(nsp);
    if (!here) { /* a namespace a pattern made on another loop: this loop gets it too */
        here = nsp_new(tl_loop, nsp->name);
        if (!here)
            return TB_ENOMEM;
        here->pattern = nsp->pattern && nsp->pattern->grp
                            ? nsp->pattern->grp->twins[tl_loop->shard]
                            : NULL;
    }
    nsp = here;
    if (recoverable(nsp, to))
        return store_then_send(nsp, to, NULL, event, args, bins, nbins);
    return broadcast_now(nsp, to, event, args, bins, nbins, 0);
}

/* ---------------------------------------------------------------- sockets */

static void socket_drop(tb_rt_socket *s, const char *reason, bool tell_client)
{
    if (s->gone)
        return;
    tb_rt_nsp *nsp = s->nsp;
    tb_rt_server *srv = nsp->srv;
    session *sess = s->sess;
    if (tell_client) {
        tb_buf b = TB_BUF_INIT;
        tb_rt__sio_encode(&b, TB_SIO_DISCONNECT, 0, nsp->name, -1, NULL, 0);
        if (!b.oom)
            session_send_text(sess, b.data, b.len);
        tb_buf_deinit(&b);
    }
    s->gone = true;
    for (size_t i = 0; i < sess->nsocks; i++)
        if (sess->socks[i] == s) {
            sess->socks[i] = sess->socks[--sess->nsocks];
            break;
        }
    if (s->prev)
        s->prev->next = s->next;
    else
        nsp->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    nsp->nsocks--;
    ST_SUB(srv, sockets, 1);
    if (s->persisted) {
        s->persisted = false; /* leaving its rooms now does not change its session */
        session_after_drop(s, reason);
    }
    tb_rt_nsp *h = nsp->pattern ? nsp->pattern : nsp;
    if (h->on_disconnecting) /* socket.io's "disconnecting": still in its rooms */
        h->on_disconnecting(s, reason, h->on_disconnecting_ud);
    while (s->nrooms)
        leave_slot(s, s->nrooms - 1);
    if (h->on_disconnect)
        h->on_disconnect(s, reason, h->on_disconnect_ud);
    while (s->acks) {
        pending_ack *a = s->acks;
        ack_unlink(a);
        a->cb(s, TB_ECONN, NULL, NULL, 0, a->ud);
        free(a);
    }
    s->grave = srv->sock_graveyard;
    srv->sock_graveyard = s;
}

static void socket_free(tb_rt_socket *s)
{
    if (s->release)
        s->release(s->data);
    json_decref(s->auth);
    tb_jwt_claims_free(s->claims);
    free(s->rooms);
    free(s);
}

static void reap(tb_rt_server *srv)
{
    if (srv->depth > 0)
        return;
    while (srv->sock_graveyard) {
        tb_rt_socket *s = srv->sock_graveyard;
        srv->sock_graveyard = s->grave;
        socket_free(s);
    }
    while (srv->graveyard) {
        session *s = srv->graveyard;
        srv->graveyard = s->grave;
        pend_clear(s);
        free(s->q);
        free(s->socks);
        free(s);
    }
}

void tb_rt_socket_disconnect(tb_rt_socket *s, bool close_link)
{
    if (!s || s->gone)
        return;
    session *sess = s->sess;
    tb_rt_server *srv = s->nsp->srv;
    srv->depth++;
    socket_drop(s, "server namespace disconnect", true);
    if (close_link)
        session_close(sess, "server namespace disconnect", true);
    srv->depth--;
    reap(srv);
}

const char *tb_rt_socket_id(const tb_rt_socket *s)
{
    return s->id;
}
tb_rt_nsp *tb_rt_socket_nsp(const tb_rt_socket *s)
{
    return s->nsp;
}
const json_t *tb_rt_socket_auth(const tb_rt_socket *s)
{
    return s->auth;
}
const tb_jwt_claims *tb_rt_socket_claims(const tb_rt_socket *s)
{
    return s->claims;
}
void tb_rt_socket_set_data(tb_rt_socket *s, void *data, void (*release)(void *data))
{
    if (s->release && s->data != data)
        s->release(s->data);
    s->data = data;
    s->release = release;
}
void *tb_rt_socket_data(const tb_rt_socket *s)
{
    return s->data;
}
const char *tb_rt_socket_transport(const tb_rt_socket *s)
{
    return s->sess->transport == T_WS ? "websocket" : "polling";
}

int tb_rt_refuse(tb_rt_socket *s, const tb_rt_event *ev, const char *error_event, const char *code,
                 const char *message, const tb_error *err)
{
    if (!s || !ev || !error_event || !code || !message)
        return TB_EINVAL;
    json_t *details = json_array();
    for (size_t i = 0; err && details && i < err->n_details; i++)
        json_array_append_new(details,
                              json_pack("{s:s,s:s,s:s}", "path", err->details[i].path ?: "", "rule",
                                        err->details[i].rule ?: "", "message",
                                        err->details[i].message ?: ""));
    json_t *body = json_pack("{s:s,s:s,s:s,s:o}", "code", code, "message", message, "event",
                             ev->name ? ev->name : "", "details", details ? details : json_array());
    if (!body)
        return TB_ENOMEM;
    if (err && err->n_omitted)
        json_object_set_new(body, "omitted", json_integer((json_int_t)err->n_omitted));
    json_t *args = json_pack("[O]", body);
    int rc = args ? tb_rt_socket_emit(s, error_event, args, NULL, 0) : TB_ENOMEM;
    json_decref(args);
    if (ev->ack_id >= 0 && !s->gone) {
        json_t *ack = json_pack("[{s:O}]", "error", body);
        int r = ack ? tb_rt_ack(s, ev, ack, NULL, 0) : TB_ENOMEM;
        json_decref(ack);
        if (rc == 0)
            rc = r;
    }
    json_decref(body);
    return rc;
}

const tb_rt_bin *tb_rt_bin_of(const tb_rt_event *ev, const json_t *v)
{
    if (!json_is_object(v) || !json_is_true(json_object_get(v, "_placeholder")))
        return NULL;
    const json_t *num = json_object_get(v, "num");
    if (!json_is_integer(num) || json_integer_value(num) < 0 ||
        (size_t)json_integer_value(num) >= ev->nbins)
        return NULL;
    return &ev->bins[json_integer_value(num)];
}

/* ---------------------------------------------------------------- namespaces */

static tb_rt_nsp *nsp_new(tb_rt_server *srv, const char *name)
{
    tb_rt_nsp *n = calloc(1, sizeof *n);
    if (!n || !(n->name = strdup(name ? name : ""))) {
        free(n);
        return NULL;
    }
    n->srv = srv;
    n->next = srv->nsps;
    srv->nsps = n;
    if (srv->adapter && n->name[0] == '/')
        tb_rt__adapter_nsp_added(srv->adapter, n);
    return n;
}

static tb_rt_nsp *nsp_find(tb_rt_server *srv, const char *name, size_t len)
{
    for (tb_rt_nsp *n = srv->nsps; n; n = n->next)
        if (!n->match && strlen(n->name) == len && memcmp(n->name, name, len) == 0)
            return n;
    return NULL;
}

tb_rt_nsp *tb_rt_server_of(tb_rt_server *srv, const char *name)
{
    if (!srv || !name || name[0] != '/')
        return NULL;
    srv = srv_here(srv);
    tb_rt_nsp *n = nsp_find(srv, name, strlen(name));
    return n ? n : nsp_new(srv, name);
}

tb_rt_nsp *tb_rt_server_of_match(tb_rt_server *srv, tb_rt_nsp_match_fn match, void *ud)
{
    if (!srv || !match)
        return NULL;
    tb_rt_nsp *n = nsp_new(srv, "");
    if (n) {
        n->match = match;
        n->match_ud = ud;
    }
    return n;
}

const char *tb_rt_nsp_name(const tb_rt_nsp *nsp)
{
    return nsp->name;
}

int tb_rt_nsp_use(tb_rt_nsp *nsp, tb_rt_middleware_fn fn, void *ud)
{
    mware *m = realloc(nsp->mw, (nsp->nmw + 1) * sizeof *m);
    if (!m)
        return TB_ENOMEM;
    nsp->mw = m;
    nsp->mw[nsp->nmw++] = (mware){fn, ud};
    return 0;
}

void tb_rt_nsp_on_connect(tb_rt_nsp *nsp, tb_rt_socket_fn fn, void *ud)
{
    nsp->on_connect = fn;
    nsp->on_connect_ud = ud;
}

void tb_rt_nsp_on_disconnect(tb_rt_nsp *nsp, tb_rt_disconnect_fn fn, void *ud)
{
    nsp->on_disconnect = fn;
    nsp->on_disconnect_ud = ud;
}

void tb_rt_nsp_on_disconnecting(tb_rt_nsp *nsp, tb_rt_disconnect_fn fn, void *ud)
{
    nsp->on_disconnecting = fn;
    nsp->on_disconnecting_ud = ud;
}

int tb_rt_nsp_on(tb_rt_nsp *nsp, const char *name, tb_rt_event_fn fn, void *ud)
{
    for (size_t i = 0; i < nsp->nh; i++)
        if (strcmp(nsp->h[i].name, name) == 0) {
            nsp->h[i].fn = fn;
            nsp->h[i].ud = ud;
            return 0;
        }
    handler *h = realloc(nsp->h, (nsp->nh + 1) * sizeof *h);
    if (!h)
        return TB_ENOMEM;
    nsp->h = h;
    if (!(h[nsp->nh].name = strdup(name)))
        return TB_ENOMEM;
    h[nsp->nh].fn = fn;
    h[nsp->nh].ud = ud;
    nsp->nh++;
    return 0;
}

void tb_rt_nsp_on_any(tb_rt_nsp *nsp, tb_rt_event_fn fn, void *ud)
{
    nsp->any = fn;
    nsp->any_ud = ud;
}

static int jwt_middleware(tb_rt_socket *s, const json_t *auth, tb_rt_refusal *out, void *ud)
{
    tb_jwt_verifier *v = ud;
    const json_t *tok = json_object_get(auth, "token");
    if (!json_is_string(tok)) {
        snprintf(out->message, sizeof out->message, "Authentication error");
        out->data = json_pack("{s:s}", "reason", "missing_token");
        return 1;
    }
    tb_jwt_claims *claims = NULL;
    const char *t = json_string_value(tok);
    size_t len = json_string_length(tok);
    if (len > 7 && strncasecmp(t, "Bearer ", 7) == 0) {
        t += 7;
        len -= 7;
    }
    int rc = tb_jwt_verify(v, t, len, &claims, NULL);
    if (rc != 0) {
        snprintf(out->message, sizeof out->message, "Authentication error");
        out->data = json_pack("{s:s}", "reason", tb_jwt_err_name(rc));
        return 1;
    }
    tb_jwt_claims_free(s->claims);
    s->claims = claims;
    int64_t exp = tb_jwt_claims_exp(claims);
    s->claims_until = exp > 0 ? exp + tb_jwt_verifier_leeway_s(v) : 0;
    return 0;
}

int tb_rt_nsp_use_jwt(tb_rt_nsp *nsp, tb_jwt_verifier *verifier)
{
    if (!nsp || !verifier)
        return TB_EINVAL;
    return tb_rt_nsp_use(nsp, jwt_middleware, verifier);
}

/* ---------------------------------------------------------------- Socket.IO input */

static void protocol_error(session *s, const char *why)
{
    ST_ADD(s->srv, protocol_errors, 1);
    if (tb_log_enabled(TB_LOG_DEBUG))
        tb_log_debug(NULL, "realtime: closing %s: %s", s->sid, why);
    session_close(s, "parse error", false);
}

static tb_rt_socket *sock_of(session *s, const char *nsp, size_t len)
{
    for (size_t i = 0; i < s->nsocks; i++) {
        const char *n = s->socks[i]->nsp->name;
        if (strlen(n) == len && memcmp(n, nsp, len) == 0)
            return s->socks[i];
    }
    return NULL;
}

static void connect_error(session *s, const char *nsp, const char *message, json_t *data)
{
    tb_buf d = TB_BUF_INIT, b = TB_BUF_INIT;
    tb_buf_puts(&d, "{\"message\":");
    tb_buf_json_string(&d, message, strlen(message));
    if (data) {
        tb_buf_puts(&d, ",\"data\":");
        if (tb_buf_json_value(&d, data) != 0)
            tb_buf_puts(&d, "null");
    }
    tb_buf_putc(&d, '}');
    tb_rt__sio_encode(&b, TB_SIO_CONNECT_ERROR, 0, nsp, -1, d.data, d.len);
    if (!b.oom && !d.oom)
        session_send_text(s, b.data, b.len);
    tb_buf_deinit(&d);
    tb_buf_deinit(&b);
    ST_ADD(s->srv, refused, 1);
}

static void on_connect_packet(session *s, tb_rt__sio_packet *p)
{
    tb_rt_server *srv = s->srv;
    char name[256];
    if (p->nsp_len >= sizeof name) {
        protocol_error(s, "namespace name too long");
        return;
    }
    memcpy(name, p->nsp, p->nsp_len);
    name[p->nsp_len] = '\0';
    bool restoring_here = false;
    for (restoring *r = srv->restores; r; r = r->next)
        if (strcmp(r->sess_sid, s->sid) == 0 && strcmp(r->so->nsp->name, name) == 0)
            restoring_here = true;
    if (restoring_here || sock_of(s, p->nsp, p->nsp_len)) {
        protocol_error(s, "CONNECT to a namespace already joined");
        return;
    }
    tb_rt_nsp *nsp = nsp_find(srv, p->nsp, p->nsp_len);
    if (!nsp) {
        for (tb_rt_nsp *pat = srv->nsps; pat; pat = pat->next)
            if (pat->match && pat->match(name, pat->match_ud)) {
                nsp = nsp_new(srv, name);
                if (nsp)
                    nsp->pattern = pat;
                break;
            }
    }
    if (!nsp) {
        connect_error(s, name, "Invalid namespace", NULL);
        return;
    }
    tb_rt_socket *so = calloc(1, sizeof *so);
    if (!so) {
        session_close(s, "transport error", false);
        return;
    }
    new_id(so->id);
    so->sess = s;
    so->nsp = nsp;
    so->auth = p->data ? json_incref(p->data) : json_object();
    so->gone = true; /* not yet in the namespace */
    tb_rt_nsp *h = nsp->pattern ? nsp->pattern : nsp;
    for (size_t i = 0; i < h->nmw; i++) {
        tb_rt_refusal ref;
        ref.message[0] = '\0';
        ref.data = NULL;
        if (h->mw[i].fn(so, so->auth, &ref, h->mw[i].ud) != 0) {
            connect_error(s, name, ref.message[0] ? ref.message : "Not authorized", ref.data);
            json_decref(ref.data);
            socket_free(so);
            return;
        }
        if (s->state != S_OPEN) { /* the middleware closed the link */
            socket_free(so);
            return;
        }
    }
    if (srv->rec && restore_start(s, so) == 0)
        return; /* Redis answers whether the session comes back: restore_done */
    finish_connect(s, so, NULL, 0);
}

/* Puts a socket that passed its middlewares in its namespace and tells the client; res: the
 * session it recovers (NULL: a new one); cap_from: the captures to look at (recovery). */
static void finish_connect(session *s, tb_rt_socket *so, const tb_rt__rec_session *res,
                           uint64_t cap_from)
{
    tb_rt_server *srv = s->srv;
    tb_rt_nsp *nsp = so->nsp;
    tb_rt_nsp *h = nsp->pattern ? nsp->pattern : nsp;
    if (s->nsocks == s->capsocks) {
        size_t nc = s->capsocks ? s->capsocks * 2 : 2;
        tb_rt_socket **a = realloc(s->socks, nc * sizeof *a);
        if (!a) {
            socket_free(so);
            session_close(s, "transport error", false);
            return;
        }
        s->socks = a;
        s->capsocks = nc;
    }
    s->socks[s->nsocks++] = so;
    so->next = nsp->socks;
    if (nsp->socks)
        nsp->socks->prev = so;
    nsp->socks = so;
    nsp->nsocks++;
    so->gone = false;
    ST_ADD(srv, sockets, 1);
    tb_rt_socket_join(so, so->id);
    size_t ri;
    json_t *rv;
    if (res)
        json_array_foreach(res->rooms, ri, rv)
        {
            if (json_is_string(rv))
                tb_rt_socket_join(so, json_string_value(rv));
        }
    lws_sul_cancel(&s->sul_connect);

    tb_buf d = TB_BUF_INIT, b = TB_BUF_INIT;
    tb_buf_puts(&d, "{\"sid\":");
    tb_buf_json_string(&d, so->id, strlen(so->id));
    if (srv->rec) {
        tb_buf_puts(&d, ",\"pid\":");
        tb_buf_json_string(&d, so->pid, strlen(so->pid));
    }
    tb_buf_putc(&d, '}');
    tb_rt__sio_encode(&b, TB_SIO_CONNECT, 0, nsp->name, -1, d.data, d.len);
    if (!b.oom && !d.oom)
        session_send_text(s, b.data, b.len);
    tb_buf_deinit(&d);
    tb_buf_deinit(&b);
    if (res) /* what it missed, then what came while Redis answered */
        replay(so, res, cap_from);
    if (srv->rec && !so->gone) {
        so->persisted = true;
        pid_live(srv, so->pid);
        persist(so);
    }
    if (h->on_connect && !so->gone)
        h->on_connect(so, h->on_connect_ud);
}

/* ---------------------------------------------------------------- recovery */

/* Which sessions a CONNECT may not recover, whatever Redis says: one whose socket is still
 * connected here (socket.io keeps a session only once its socket is gone; recovering it would
 * give two sockets one id), and one that ended on purpose (a client's disconnect()) until its
 * deletion has surely reached Redis. Each loop talks to Redis over a connection of its own, so
 * the deletion the old socket's loop sent can reach Redis after the recovery another loop sent
 * for the client's next connection. Kept on the first loop, under a mutex, for every loop. */
#define PID_ENDED_KEEP_MS 10000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under pid_mu: forgets sessions ended on purpose long enough ago. */
static void pid_prune(tb_rt_server *first, int64_t now)
{
    while (first->ended && now - first->ended->ended_ms > PID_ENDED_KEEP_MS) {
        pid_state *e = first->ended;
        if (!(first->ended = e->next_ended))
            first->ended_tail = &first->ended;
        hmap_del(&first->pids, e->pid);
        free(e);
    }
}

static void pid_live(tb_rt_server *srv, const char *pid)
{
    tb_rt_server *first = srv->primary;
    pthread_mutex_lock(&first->pid_mu);
    pid_prune(first, mono_ms());
    pid_state *e = hmap_get(&first->pids, pid);
    if (!e && (e = calloc(1, sizeof *e)) != NULL) {
        snprintf(e->pid, sizeof e->pid, "%s", pid);
        e->live = true;
        if (hmap_put(&first->pids, e->pid, e) != 0)
            free(e);
    }
    pthread_mutex_unlock(&first->pid_mu);
}

/* Its socket is gone: forgotten (recoverable), or kept a while as ended on purpose. */
static void pid_gone(tb_rt_server *srv, const char *pid, bool recoverable)
{
    tb_rt_server *first = srv->primary;
    pthread_mutex_lock(&first->pid_mu);
    int64_t now = mono_ms();
    pid_prune(first, now);
    pid_state *e = hmap_get(&first->pids, pid);
    if (e && e->live) {
        if (recoverable) {
            hmap_del(&first->pids, e->pid);
            free(e);
        } else {
            e->live = false;
            e->ended_ms = now;
            *first->ended_tail = e;
            first->ended_tail = &e->next_ended;
        }
    }
    pthread_mutex_unlock(&first->pid_mu);
}

/* Why the session cannot be recovered here, or NULL. */
static const char *pid_refused(tb_rt_server *srv, const char *pid)
{
    tb_rt_server *first = srv->primary;
    pthread_mutex_lock(&first->pid_mu);
    pid_prune(first, mono_ms());
    const pid_state *e = hmap_get(&first->pids, pid);
    const char *why = !e ? NULL : e->live ? "its socket is still connected" : "it ended on purpose";
    pthread_mutex_unlock(&first->pid_mu);
    return why;
}

static void pid_free_all(tb_rt_server *first)
{
    for (size_t b = 0; b < first->pids.nb; b++)
        for (hent *e = first->pids.b[b]; e; e = e->next)
            free(e->val);
    hmap_free(&first->pids);
    pthread_mutex_destroy(&first->pid_mu);
}

static void persist(tb_rt_socket *so)
{
    const char **rooms = malloc((so->nrooms + 1) * sizeof *rooms);
    if (!rooms)
        return;
    for (uint32_t i = 0; i < so->nrooms; i++)
        rooms[i] = so->rooms[i].r->name;
    tb_rt__rec_persist(so->nsp->srv->rec, so->pid, so->id, so->nsp->name, rooms, so->nrooms,
                       so->claims ? tb_jwt_claims_sub(so->claims) : NULL);
    free(rooms);
}

static bool capture_reaches(const capture *c, const tb_rt_socket *so)
{
    for (size_t i = 0; i < c->nexcept; i++)
        if (tb_rt_socket_in(so, c->except[i]))
            return false;
    if (!c->nrooms)
        return true;
    for (size_t i = 0; i < c->nrooms; i++)
        if (tb_rt_socket_in(so, c->rooms[i]))
            return true;
    return false;
}

static void replay(tb_rt_socket *so, const tb_rt__rec_session *res, uint64_t cap_from)
{
    tb_rt_server *srv = so->nsp->srv;
    const char *off = json_string_value(json_object_get(so->auth, "offset"));
    uint64_t last = off ? offset_number(off, strlen(off)) : 0;
    for (size_t i = 0; i < res->npackets && !so->gone; i++) {
        const tb_rt__rec_packet *p = &res->packets[i];
        frame *f[TB_RT__REC_MAX_BINS + 1];
        size_t nf = 0;
        bool ok = (f[nf] = frame_new(p->text, p->len, false)) != NULL;
        if (ok)
            nf++;
        for (size_t k = 0; ok && k < p->nbins; k++)
            if ((ok = (f[nf] = frame_new(p->bins[k].data, p->bins[k].len, true)) != NULL))
                nf++;
        if (ok)
            push_frames(so->sess, f, nf);
        for (size_t k = 0; k < nf; k++)
            frame_unref(f[k]);
        if (p->n > last)
            last = p->n;
    }
    for (capture *c = srv->caps; c && !so->gone; c = c->next)
        if (c->seq >= cap_from && c->nsp == so->nsp && (c->n == 0 || c->n > last) &&
            capture_reaches(c, so))
            push_frames(so->sess, c->f, c->nf);
}

static bool pid_ok(const char *pid)
{
    size_t n = pid ? strlen(pid) : 0;
    return n > 0 && n < 24 &&
           strspn(pid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static void restore_done(tb_rt_server *srv, const tb_rt__rec_session *res, void *ud)
{
    restoring *rs = ud;
    for (restoring **pp = &srv->restores; *pp; pp = &(*pp)->next)
        if (*pp == rs) {
            *pp = rs->next;
            break;
        }
    tb_rt_socket *so = rs->so;
    session *s = hmap_get(&srv->sids, rs->sess_sid);
    srv->depth++;
    /* the session may have ended, or another CONNECT recovered it, while Redis answered */
    const char *refused = res->ok ? pid_refused(srv, so->pid) : NULL;
    if (!s || s->state != S_OPEN) {
        socket_free(so);
    } else if (res->ok && !refused) {
        snprintf(so->id, sizeof so->id, "%s", res->sid);
        so->recovered = true;
        ST_ADD(srv, recovered, 1);
        finish_connect(s, so, res, rs->cap_from);
    } else {
        if (tb_log_enabled(TB_LOG_DEBUG))
            tb_log_debug(NULL, "realtime: session not recovered: %s",
                         refused ? refused : res->why);
        ST_ADD(srv, not_recovered, 1);
        new_id(so->pid);
        finish_connect(s, so, NULL, 0);
    }
    free(rs);
    captures_trim(srv);
    srv->depth--;
    reap(srv);
}

/* A CONNECT with a pid: asks Redis for the session. 0 when asked (restore_done follows); else
 * the socket connects as a new session, with a new pid. */
static int restore_start(session *s, tb_rt_socket *so)
{
    tb_rt_server *srv = s->srv;
    const char *pid = json_string_value(json_object_get(so->auth, "pid"));
    const char *off = json_string_value(json_object_get(so->auth, "offset"));
    if (!pid_ok(pid)) {
        new_id(so->pid);
        return TB_ENOTFOUND;
    }
    const char *why = pid_refused(srv, pid);
    if (why) {
        if (tb_log_enabled(TB_LOG_DEBUG))
            tb_log_debug(NULL, "realtime: session not recovered: %s", why);
        new_id(so->pid);
        ST_ADD(srv, not_recovered, 1);
        return TB_ECONFLICT;
    }
    snprintf(so->pid, sizeof so->pid, "%s", pid);
    restoring *rs = calloc(1, sizeof *rs);
    if (!rs) {
        new_id(so->pid);
        return TB_ENOMEM;
    }
    snprintf(rs->sess_sid, sizeof rs->sess_sid, "%s", s->sid);
    rs->so = so;
    rs->cap_from = srv->cap_seq;
    int rc =
        tb_rt__rec_restore(srv->rec, so->nsp->name, pid, off,
                           so->claims ? tb_jwt_claims_sub(so->claims) : NULL, restore_done, rs);
    if (rc != 0) {
        free(rs);
        new_id(so->pid);
        ST_ADD(srv, not_recovered, 1);
        return rc;
    }
    rs->next = srv->restores;
    srv->restores = rs;
    return 0;
}

/* Every refresh period: the sessions of connected sockets live on (max_disconnection after this
 * node would stop refreshing them). */
static void on_refresh(lws_sorted_usec_list_t *sul)
{
    tb_rt_server *srv = lws_container_of(sul, tb_rt_server, sul_refresh);
    unsigned ttl =
        tb_rt__rec_options(srv->rec)->max_disconnection_ms + tb_rt__rec_refresh_ms(srv->rec);
    for (tb_rt_nsp *n = srv->nsps; n; n = n->next)
        for (tb_rt_socket *so = n->socks; so; so = so->next)
            if (so->persisted)
                tb_rt__rec_expire(srv->rec, so->pid, ttl);
    lws_sul_schedule(srv->ctx, 0, &srv->sul_refresh, on_refresh,
                     (lws_usec_t)tb_rt__rec_refresh_ms(srv->rec) * 1000);
}

/* The session after its socket went: kept max_disconnection for the reasons socket.io recovers
 * from, else deleted. */
static void session_after_drop(tb_rt_socket *so, const char *reason)
{
    static const char *const keep[] = {"transport close", "transport error",
                                       "ping timeout",    "server shutting down",
                                       "forced close",    "forced server close"};
    bool recoverable_reason = false;
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
        if (strcmp(reason, keep[i]) == 0)
            recoverable_reason = true;
    pid_gone(so->nsp->srv, so->pid, recoverable_reason);
    tb_rt__rec_expire(
        so->nsp->srv->rec, so->pid,
        recoverable_reason ? tb_rt__rec_options(so->nsp->srv->rec)->max_disconnection_ms : 0);
}

bool tb_rt_socket_recovered(const tb_rt_socket *s)
{
    return s && s->recovered;
}

static void dispatch(session *s, tb_rt__sio_packet *p, const tb_rt_bin *bins, unsigned nbins)
{
    switch (p->type) {
    case TB_SIO_CONNECT: on_connect_packet(s, p); return;
    case TB_SIO_DISCONNECT: {
        tb_rt_socket *so = sock_of(s, p->nsp, p->nsp_len);
        if (so)
            socket_drop(so, "client namespace disconnect", false);
        else
            protocol_error(s, "DISCONNECT for a namespace not joined");
        return;
    }
    case TB_SIO_EVENT:
    case TB_SIO_BINARY_EVENT: {
        tb_rt_socket *so = sock_of(s, p->nsp, p->nsp_len);
        if (!so) { /* the reference closes the link ("invalid state") */
            protocol_error(s, "EVENT for a namespace not joined");
            return;
        }
        char num[32];
        const json_t *n0 = json_array_get(p->data, 0);
        const char *name;
        if (json_is_string(n0)) {
            name = json_string_value(n0);
        } else {
            if (json_is_integer(n0))
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(n0));
            else
                snprintf(num, sizeof num, "%.17g", json_real_value(n0));
            name = num;
        }
        json_t *args = json_array();
        if (!args)
            return;
        for (size_t i = 1; i < json_array_size(p->data); i++)
            json_array_append(args, json_array_get(p->data, i));
        tb_rt_event ev = {name, args, bins, nbins, p->ack_id};
        if (so->claims_until && (int64_t)time(NULL) >= so->claims_until) {
            /* the handshake's token has expired: the socket acts for nobody now (it moved
             * discs for as long as it stayed open). The sender hears why, then the namespace
             * disconnects it ("io server disconnect"): it connects again with a fresh token. */
            ST_ADD(s->srv, refused, 1);
            tb_rt_refuse(so, &ev, "error", "UNAUTHENTICATED",
                         "the token of this connection has expired: connect again with a new one",
                         NULL);
            json_decref(args);
            tb_rt_socket_disconnect(so, false);
            return;
        }
        tb_rt_nsp *h = so->nsp->pattern ? so->nsp->pattern : so->nsp;
        tb_rt_event_fn fn = h->any;
        void *ud = h->any_ud;
        for (size_t i = 0; i < h->nh; i++)
            if (strcmp(h->h[i].name, name) == 0) {
                fn = h->h[i].fn;
                ud = h->h[i].ud;
                break;
            }
        if (fn)
            fn(so, &ev, ud);
        json_decref(args);
        return;
    }
    case TB_SIO_ACK:
    case TB_SIO_BINARY_ACK: {
        tb_rt_socket *so = sock_of(s, p->nsp, p->nsp_len);
        if (!so) {
            protocol_error(s, "ACK for a namespace not joined");
            return;
        }
        for (pending_ack *a = so->acks; a; a = a->next)
            if (a->id == p->ack_id) {
                ack_unlink(a);
                a->cb(so, 0, p->data, bins, nbins, a->ud);
                free(a);
                return;
            }
        return; /* unknown or late ack: ignored */
    }
    default: protocol_error(s, "a client may not send CONNECT_ERROR");
    }
}

static void on_sio_text(session *s, const char *text, size_t len)
{
    if (s->pend.nattach) {
        protocol_error(s, "got plaintext data when reconstructing a packet");
        return;
    }
    tb_rt__sio_packet p;
    const char *why;
    if (tb_rt__sio_decode(text, len, &p, &why) != 0) {
        protocol_error(s, why);
        return;
    }
    if (p.nattach) {
        s->pend = p;
        s->pend_nsp = strndup(p.nsp, p.nsp_len);
        if (!s->pend_nsp) {
            pend_clear(s);
            session_close(s, "transport error", false);
            return;
        }
        s->pend.nsp = s->pend_nsp;
        s->pend_have = 0;
        return;
    }
    dispatch(s, &p, NULL, 0);
    json_decref(p.data);
}

static void on_sio_binary(session *s, const unsigned char *data, size_t len)
{
    if (!s->pend.nattach) {
        protocol_error(s, "binary data with no packet waiting for it");
        return;
    }
    void *copy = malloc(len ? len : 1);
    if (!copy) {
        session_close(s, "transport error", false);
        return;
    }
    memcpy(copy, data, len);
    s->pend_bins[s->pend_have].data = copy;
    s->pend_bins[s->pend_have].len = len;
    if (++s->pend_have < s->pend.nattach)
        return;
    tb_rt__sio_packet p = s->pend;
    tb_rt_bin bins[TB_SIO_MAX_ATTACHMENTS];
    unsigned n = s->pend_have;
    memcpy(bins, s->pend_bins, n * sizeof bins[0]);
    char *nsp = s->pend_nsp;
    memset(&s->pend, 0, sizeof s->pend);
    s->pend_have = 0;
    s->pend_nsp = NULL;
    dispatch(s, &p, bins, n);
    json_decref(p.data);
    for (unsigned i = 0; i < n; i++)
        free((void *)bins[i].data);
    free(nsp);
}

/* One Engine.IO packet from the client (any transport). */
static int on_eio_packet(int type, const unsigned char *data, size_t len, bool binary, void *ud)
{
    session *s = ud;
    tb_rt_server *srv = s->srv;
    if (s->state != S_OPEN)
        return 1;
    ST_ADD(srv, packets_in, 1);
    if (binary) {
        if (s->raw) {
            if (srv->o.on_eio_message)
                srv->o.on_eio_message(srv, s->sid, data, len, true, srv->o.eio_ud);
        } else {
            on_sio_binary(s, data, len);
        }
        return s->state == S_OPEN ? 0 : 1;
    }
    switch (type) {
    case TB_EIO_PONG:
        if (s->awaiting_pong) {
            s->awaiting_pong = 0;
            schedule(s, &s->sul_ping, on_ping_timer, srv->o.ping_interval_ms);
        }
        break;
    case TB_EIO_CLOSE:
        if (s->get)
            poll_flush(s, true); /* the reference ends the pending poll with a noop */
        session_close(s, "transport close", false);
        return 1;
    case TB_EIO_MESSAGE:
        if (s->raw) {
            if (srv->o.on_eio_message)
                srv->o.on_eio_message(srv, s->sid, data, len, false, srv->o.eio_ud);
        } else {
            on_sio_text(s, (const char *)data, len);
        }
        break;
    case TB_EIO_NOOP: break;
    default: /* open, ping, upgrade out of place */
        protocol_error(s, "unexpected Engine.IO packet");
        return 1;
    }
    return s->state == S_OPEN ? 0 : 1;
}

typedef struct eio_later {
    char sid[24];
    bool binary;
    size_t len;
    unsigned char data[];
} eio_later;

static void on_eio_later(tb_rt_server *srv, void *ud)
{
    eio_later *e = ud;
    tb_rt_eio_send(srv, e->sid, e->data, e->len, e->binary);
    free(e);
}

int tb_rt_eio_send(tb_rt_server *srv, const char *sid, const void *data, size_t len, bool binary)
{
    srv = srv_here(srv);
    if (srv->primary->nshards > 1 && sid[0]) { /* another loop's session: sent from its loop */
        const char *at = strchr(ID_CHARS, sid[0]);
        unsigned k = at ? (unsigned)(at - ID_CHARS) : 0;
        if (k < srv->primary->nshards && k != srv->shard) {
            if (strlen(sid) >= sizeof((eio_later *)0)->sid)
                return TB_ENOTFOUND;
            eio_later *e = malloc(sizeof *e + len + 1);
            if (!e)
                return TB_ENOMEM;
            snprintf(e->sid, sizeof e->sid, "%s", sid);
            e->binary = binary;
            e->len = len;
            memcpy(e->data, data, len);
            int rc = tb_rt_server_post(srv->primary->shards[k], on_eio_later, e);
            if (rc != 0)
                free(e);
            return rc;
        }
    }
    session *s = hmap_get(&srv->sids, sid);
    if (!s || s->state != S_OPEN)
        return TB_ENOTFOUND;
    if (binary) {
        frame *f = frame_new(data, len, true);
        return f ? session_push(s, f) : TB_ENOMEM;
    }
    frame *f = malloc(sizeof *f + LWS_PRE + len + 1);
    if (!f)
        return TB_ENOMEM;
    f->refs = 1;
    f->len = (uint32_t)len + 1;
    f->binary = 0;
    f->vol = 0;
    FRAME_DATA(f)[0] = '4';
    memcpy(FRAME_DATA(f) + 1, data, len);
    return session_push(s, f);
}

/* ---------------------------------------------------------------- for the adapter */

struct lws_context *tb_rt__server_lws(tb_rt_server *srv)
{
    return srv->ctx;
}
tb_rt__adapter *tb_rt__server_adapter(tb_rt_server *srv)
{
    return srv->adapter;
}
void tb_rt__server_set_adapter(tb_rt_server *srv, tb_rt__adapter *a)
{
    srv->adapter = a;
}
tb_rt__rec *tb_rt__server_rec(tb_rt_server *srv)
{
    return srv->rec;
}
void tb_rt__server_set_rec(tb_rt_server *srv, tb_rt__rec *r)
{
    srv->rec = r;
}
void tb_rt__stat_add(tb_rt_server *srv, int which, uint64_t v)
{
    switch (which) {
    case TB_RT__ST_PUBLISHED: ST_ADD(srv, adapter_published, v); break;
    case TB_RT__ST_RECEIVED: ST_ADD(srv, adapter_received, v); break;
    case TB_RT__ST_BYTES_IN: ST_ADD(srv, adapter_bytes_in, v); break;
    case TB_RT__ST_DROPPED: ST_ADD(srv, adapter_dropped, v); break;
    case TB_RT__ST_RECONNECTS: ST_ADD(srv, adapter_reconnects, v); break;
    }
}
tb_rt_nsp *tb_rt__nsp_first(tb_rt_server *srv)
{
    tb_rt_nsp *n = srv->nsps;
    while (n && n->match)
        n = n->next;
    return n;
}
tb_rt_nsp *tb_rt__nsp_next(tb_rt_nsp *nsp)
{
    tb_rt_nsp *n = nsp->next;
    while (n && n->match)
        n = n->next;
    return n;
}
tb_rt_server *tb_rt__nsp_server(tb_rt_nsp *nsp)
{
    return nsp->srv;
}
tb_rt_nsp *tb_rt__nsp_find(tb_rt_server *srv, const char *name, size_t len)
{
    return nsp_find(srv, name, len);
}
tb_rt_server_emit_fn tb_rt__nsp_server_emit_fn(tb_rt_nsp *nsp, void **ud)
{
    tb_rt_nsp *h = nsp->pattern ? nsp->pattern : nsp;
    *ud = h->server_emit_ud;
    return h->server_emit;
}
void tb_rt_nsp_on_server_emit(tb_rt_nsp *nsp, tb_rt_server_emit_fn fn, void *ud)
{
    nsp->server_emit = fn;
    nsp->server_emit_ud = ud;
}
tb_rt_socket *tb_rt_nsp_socket(tb_rt_nsp *nsp, const char *id)
{
    nsp = nsp ? nsp_here(nsp) : NULL;
    return nsp && id ? tb_rt__socket_find(nsp, id) : NULL;
}
tb_rt_socket *tb_rt__socket_find(tb_rt_nsp *nsp, const char *id)
{
    room *r = hmap_get(&nsp->rooms, id); /* every socket is in the room of its id */
    for (uint32_t i = 0; r && i < r->n; i++)
        if (strcmp(r->m[i].s->id, id) == 0)
            return r->m[i].s;
    return NULL;
}
void tb_rt__socket_rooms(const tb_rt_socket *s, void (*fn)(const char *room, void *ud), void *ud)
{
    for (uint32_t i = 0; i < s->nrooms; i++)
        fn(s->rooms[i].r->name, ud);
}
void tb_rt__nsp_rooms(tb_rt_nsp *nsp, void (*fn)(const char *room, void *ud), void *ud)
{
    for (size_t i = 0; i < nsp->rooms.nb; i++)
        for (hent *e = nsp->rooms.b[i]; e; e = e->next)
            fn(e->key, ud);
}
bool tb_rt__room_exists(tb_rt_nsp *nsp, const char *name, size_t len)
{
    char buf[256];
    if (len >= sizeof buf)
        return false;
    memcpy(buf, name, len);
    buf[len] = '\0';
    return hmap_get(&nsp->rooms, buf) != NULL;
}

/* ---------------------------------------------------------------- libwebsockets glue */

static int endpoint_of(tb_rt_server *srv, const char *path, bool *raw)
{
    size_t n = strlen(path);
    const char *eps[2] = {srv->path, srv->eio_path};
    for (int i = 0; i < 2; i++) {
        if (!eps[i])
            continue;
        size_t m = strlen(eps[i]);
        /* "/socket.io/" also answers "/socket.io" */
        if ((n == m && memcmp(path, eps[i], m) == 0) ||
            (m > 1 && n == m - 1 && eps[i][m - 1] == '/' && memcmp(path, eps[i], n) == 0)) {
            *raw = i == 1;
            return 0;
        }
    }
    return -1;
}

static const char *urlarg(struct lws *wsi, const char *name, char *buf, int len)
{
    const char *v = lws_get_urlarg_by_name(wsi, name, buf, len);
    return v;
}

/* Checks the query of a request; on failure answers it (HTTP) and returns -1. */
static int check_query(tb_rt_server *srv, struct lws *wsi, pss *p, bool upgrade, session **sess_out)
{
    struct lws *answer = upgrade ? NULL : wsi; /* an upgrade's refusal is written at once */
    char eio[32], tr[48], sid[64];
    const char *e = urlarg(wsi, "EIO=", eio, sizeof eio);
    const char *t = urlarg(wsi, "transport=", tr, sizeof tr);
    const char *sd = urlarg(wsi, "sid=", sid, sizeof sid);
    *sess_out = NULL;
    if (!t || (strcmp(t, "polling") != 0 && strcmp(t, "websocket") != 0)) {
        http_error(answer, p, 400, 0, "Transport unknown");
        return -1;
    }
    if (!e || strcmp(e, "4") != 0) {
        http_error(answer, p, 400, 5, "Unsupported protocol version");
        return -1;
    }
    if (upgrade != (strcmp(t, "websocket") == 0)) {
        http_error(answer, p, 400, 3, "Bad request");
        return -1;
    }
    if (sd) {
        session *s = hmap_get(&srv->sids, sd);
        if (!s || s->state == S_DEAD) {
            http_error(answer, p, 400, 1, "Session ID unknown");
            return -1;
        }
        if (s->raw != p->raw || (upgrade && (s->transport != T_POLLING || s->ws)) ||
            (!upgrade && s->transport != T_POLLING)) {
            http_error(answer, p, 400, 3, "Bad request");
            return -1;
        }
        snprintf(p->sid, sizeof p->sid, "%s", sd);
        *sess_out = s;
    } else {
        p->sid[0] = '\0';
    }
    return 0;
}

static void capture_origin(struct lws *wsi, pss *p)
{
    p->origin[0] = '\0';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0 &&
        lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) < (int)sizeof p->origin)
        lws_hdr_copy(wsi, p->origin, sizeof p->origin, WSI_TOKEN_ORIGIN);
}

static void pss_reset(pss *p)
{
    free(p->resp);
    free(p->rx);
    unsigned char raw = p->raw;
    memset(p, 0, sizeof *p);
    p->raw = raw;
}

static int on_http(tb_rt_server *srv, struct lws *wsi, pss *p, const char *path)
{
    pss_reset(p);
    bool raw = false;
    if (endpoint_of(srv, path, &raw) != 0) {
        /* health for load balancers and orchestrators: the loop answers, so it is live */
        if (strcmp(path, "/health") == 0 || strcmp(path, "/health/live") == 0 ||
            strcmp(path, "/health/ready") == 0) {
            char body[128];
            tb_rt_stats st;
            tb_rt_server_stats(srv->primary, &st);
            int n = snprintf(body, sizeof body, "{\"status\":\"ok\",\"sessions\":%llu}",
                             (unsigned long long)st.sessions);
            http_answer(wsi, p, 200, "application/json", body, (size_t)n, false);
            return 0;
        }
        http_answer(wsi, p, 404, "text/plain", "Not Found", 9, true);
        return 0;
    }
    p->raw = raw;
    capture_origin(wsi, p);
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    char acrm[64];
    if (!get && !post &&
        lws_hdr_custom_copy(wsi, acrm, sizeof acrm, "access-control-request-method:", 30) > 0) {
        /* a CORS preflight (OPTIONS) */
        p->preflight = true;
        /* libwebsockets 4.1 drops Access-Control-Request-Headers (a token it was built
         * without), so the preflight allows a fixed set instead of echoing the request */
        snprintf(p->acrh, sizeof p->acrh, "%s", TB_RT_CORS_HEADERS);
        http_answer(wsi, p, 204, "text/plain", "", 0, false);
        return 0;
    }
    if (post && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        char te[64];
        if (lws_hdr_copy(wsi, te, sizeof te, WSI_TOKEN_HTTP_TRANSFER_ENCODING) <= 0 ||
            strcasecmp(te, "chunked") != 0) {
            http_answer(wsi, p, 501, "text/plain", "unsupported transfer-encoding", 29, true);
            return 0;
        }
        p->chunked = true;
    }
    session *s;
    if (check_query(srv, wsi, p, false, &s) != 0)
        return 0;
    if (!get && !post) {
        http_error(wsi, p, 400, 2, "Bad handshake method");
        return 0;
    }
    if (!s) {
        if (!get) {
            http_error(wsi, p, 400, 2, "Bad handshake method");
            return 0;
        }
        s = session_new(srv, T_POLLING, raw);
        if (!s) {
            http_error(wsi, p, 500, 3, "Bad request");
            return 0;
        }
        p->kind = K_GET;
        p->sess = s;
        s->get = wsi;
        poll_flush(s, false); /* the open packet */
        return 0;
    }
    if (get) {
        if (s->get) {
            /* a second concurrent poll: the reference answers 400 and closes the session */
            http_error(wsi, p, 400, 3, "Bad request");
            session_close(s, "transport error", false);
            return 0;
        }
        p->kind = K_GET;
        p->sess = s;
        s->get = wsi;
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        if (s->upgrading || s->noop_due) {
            s->noop_due = 0;
            poll_flush(s, true);
        } else if (s->qn) {
            poll_flush(s, false);
        }
        return 0;
    }
    if (s->posting) {
        http_error(wsi, p, 400, 3, "Bad request");
        session_close(s, "transport error", false);
        return 0;
    }
    s->posting = 1;
    p->kind = K_POST;
    return 0;
}

static void on_http_body_done(tb_rt_server *srv, struct lws *wsi, pss *p);
static void on_http_body(tb_rt_server *srv, struct lws *wsi, pss *p, const void *in, size_t len);

/* RFC 9112 section 7.1 chunked framing: feeds the data to on_http_body, and completes the body
 * at the last chunk. The connection closes after the answer (libwebsockets does not know where
 * the body ended). */
enum {
    CK_SIZE,
    CK_EXT,
    CK_SIZE_LF,
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TRAILER,
    CK_TRAILER_LINE,
    CK_END_LF,
    CK_DONE
};
static void on_chunked_body(tb_rt_server *srv, struct lws *wsi, pss *p, const unsigned char *in,
                            size_t len)
{
    size_t i = 0;
    while (i < len && p->kind == K_POST) {
        unsigned char c = in[i];
        switch (p->ck_state) {
        case CK_SIZE:
            if (isxdigit(c) && p->ck_size < ((size_t)1 << 40)) {
                p->ck_size = p->ck_size * 16 + (size_t)(isdigit(c) ? c - '0' : (c | 32) - 'a' + 10);
                i++;
                continue;
            }
            if (c == ';' || c == ' ' || c == '\t') {
                p->ck_state = CK_EXT;
                i++;
                continue;
            }
            if (c == '\r') {
                p->ck_state = CK_SIZE_LF;
                i++;
                continue;
            }
            goto bad;
        case CK_EXT:
            if (c == '\r')
                p->ck_state = CK_SIZE_LF;
            i++;
            continue;
        case CK_SIZE_LF:
            if (c != '\n')
                goto bad;
            i++;
            p->ck_state = p->ck_size ? CK_DATA : CK_TRAILER;
            continue;
        case CK_DATA: {
            size_t n = len - i < p->ck_size ? len - i : p->ck_size;
            on_http_body(srv, wsi, p, in + i, n);
            i += n;
            p->ck_size -= n;
            if (!p->ck_size)
                p->ck_state = CK_DATA_CR;
            continue;
        }
        case CK_DATA_CR:
            if (c != '\r')
                goto bad;
            p->ck_state = CK_DATA_LF;
            i++;
            continue;
        case CK_DATA_LF:
            if (c != '\n')
                goto bad;
            p->ck_state = CK_SIZE;
            i++;
            continue;
        case CK_TRAILER: /* at the start of a trailer line */
            p->ck_state = c == '\r' ? CK_END_LF : CK_TRAILER_LINE;
            i++;
            continue;
        case CK_TRAILER_LINE:
            if (c == '\n')
                p->ck_state = CK_TRAILER;
            i++;
            continue;
        case CK_END_LF:
            if (c != '\n')
                goto bad;
            p->ck_state = CK_DONE;
            p->close_after = 1;
            on_http_body_done(srv, wsi, p);
            p->close_after = 1;
            return;
        default: return;
        }
    }
    return;
bad:
    http_answer(wsi, p, 400, "text/plain", "invalid chunked body", 20, true);
}

static void on_http_body(tb_rt_server *srv, struct lws *wsi, pss *p, const void *in, size_t len)
{
    if (p->kind != K_POST || p->rx_over)
        return;
    if (p->rx_len + len > srv->o.max_payload) {
        /* as the reference: 413, and the session ends */
        p->rx_over = 1;
        session *s = hmap_get(&srv->sids, p->sid);
        if (s) {
            s->posting = 0;
            session_close(s, "transport error", false);
        }
        http_answer(wsi, p, 413, "text/plain", "Payload Too Large", 17, true);
        return;
    }
    if (p->rx_len + len > p->rx_cap) {
        size_t nc = p->rx_cap ? p->rx_cap * 2 : 1024;
        while (nc < p->rx_len + len)
            nc *= 2;
        unsigned char *r = realloc(p->rx, nc);
        if (!r) {
            p->rx_over = 1;
            http_answer(wsi, p, 500, "text/plain", "", 0, true);
            return;
        }
        p->rx = r;
        p->rx_cap = nc;
    }
    memcpy(p->rx + p->rx_len, in, len);
    p->rx_len += len;
}

static void on_http_body_done(tb_rt_server *srv, struct lws *wsi, pss *p)
{
    if (p->kind != K_POST)
        return;
    session *s = hmap_get(&srv->sids, p->sid);
    if (!s || s->state != S_OPEN) {
        http_error(wsi, p, 400, 1, "Session ID unknown");
        return;
    }
    s->posting = 0;
    http_answer(wsi, p, 200, "text/html", "ok", 2, false);
    if (tb_rt__payload_decode(p->rx, p->rx_len, on_eio_packet, s) < 0 && s->state == S_OPEN)
        protocol_error(s, "invalid polling payload");
    free(p->rx);
    p->rx = NULL;
    p->rx_len = p->rx_cap = 0;
}

static void on_ws_established(tb_rt_server *srv, struct lws *wsi, pss *p)
{
    char path[256];
    pss_reset(p);
    p->kind = K_WS;
    bool raw = false;
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0 ||
        endpoint_of(srv, path, &raw) != 0) {
        p->closing = 1;
        lws_callback_on_writable(wsi);
        return;
    }
    p->raw = raw;
    char sid[64];
    const char *sd = urlarg(wsi, "sid=", sid, sizeof sid);
    if (sd) {
        session *s = hmap_get(&srv->sids, sd);
        if (!s || s->state != S_OPEN || s->transport != T_POLLING || s->ws) {
            p->closing = 1;
            lws_callback_on_writable(wsi);
            return;
        }
        s->ws = wsi;
        p->sess = s;
        return; /* the probe follows */
    }
    session *s = session_new(srv, T_WS, raw);
    if (!s) {
        p->closing = 1;
        lws_callback_on_writable(wsi);
        return;
    }
    s->ws = wsi;
    p->sess = s;
    lws_callback_on_writable(wsi);
}

static void on_ws_message(tb_rt_server *srv, struct lws *wsi, pss *p, const unsigned char *d,
                          size_t len, bool binary)
{
    session *s = p->sess;
    if (!s || s->state != S_OPEN)
        return;
    if (s->transport == T_POLLING && s->ws == wsi) {
        /* the upgrade: 2probe -> 3probe (and a noop to the pending poll), then 5 */
        if (!binary && len == 6 && memcmp(d, "2probe", 6) == 0) {
            memcpy(p->ctrl, "3probe", 6);
            p->ctrl_len = 6;
            s->upgrading = 1;
            lws_callback_on_writable(wsi);
            if (s->get)
                poll_flush(s, true);
            else
                s->noop_due = 1;
            return;
        }
        if (!binary && len == 1 && d[0] == '5' && s->upgrading) {
            s->upgrading = 0;
            s->noop_due = 0;
            s->transport = T_WS;
            ST_ADD(srv, websocket, 1);
            if (s->get)
                poll_flush(s, true);
            lws_callback_on_writable(wsi);
            return;
        }
        protocol_error(s, "invalid upgrade packet");
        return;
    }
    if (binary) {
        on_eio_packet(TB_EIO_MESSAGE, d, len, true, s);
        return;
    }
    if (len == 0 || d[0] < '0' || d[0] > '6') {
        protocol_error(s, "invalid Engine.IO packet");
        return;
    }
    on_eio_packet(d[0] - '0', d + 1, len - 1, false, s);
}

static int ws_writeable(struct lws *wsi, pss *p)
{
    if (p->closing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    if (p->ctrl_len) {
        unsigned char b[LWS_PRE + sizeof p->ctrl];
        memcpy(b + LWS_PRE, p->ctrl, p->ctrl_len);
        int n = lws_write(wsi, b + LWS_PRE, p->ctrl_len, LWS_WRITE_TEXT);
        p->ctrl_len = 0;
        if (n < 0)
            return -1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    session *s = p->sess;
    if (!s || s->ws != wsi || s->transport != T_WS || s->upgrading)
        return 0;
    frame *f = queue_pop(s);
    if (f) {
        int n =
            lws_write(wsi, FRAME_DATA(f), f->len, f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        frame_unref(f);
        if (n < 0)
            return -1;
    }
    if (s->qn)
        lws_callback_on_writable(wsi);
    else if (s->state == S_CLOSING)
        session_close(s, NULL, false); /* flushed: close the link */
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    tb_rt_server *srv = ctx ? lws_context_user(ctx) : NULL;
    pss *p = user;
    int rc = 0;
    if (!srv)
        return 0;
    srv->depth++;
    switch (reason) {
    case LWS_CALLBACK_HTTP: rc = on_http(srv, wsi, p, in ? (const char *)in : "/"); break;
    case LWS_CALLBACK_HTTP_BODY:
        if (p->chunked)
            on_chunked_body(srv, wsi, p, in, len);
        else
            on_http_body(srv, wsi, p, in, len);
        break;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: on_http_body_done(srv, wsi, p); break;
    case LWS_CALLBACK_HTTP_WRITEABLE: rc = http_writeable(wsi, p); break;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (p) {
            if (p->kind == K_GET && p->sess && p->sess->get == wsi) {
                session *s = p->sess;
                s->get = NULL;
                p->sess = NULL;
                session_close(s, "transport close", false);
            }
            if (p->kind == K_POST && p->sid[0]) {
                session *s = hmap_get(&srv->sids, p->sid);
                if (s)
                    s->posting = 0;
            }
            pss_reset(p);
        }
        break;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        char path[256];
        bool raw = false;
        session *s;
        if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0 ||
            endpoint_of(srv, path, &raw) != 0) {
            rc = -1;
            break;
        }
        pss tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.raw = raw;
        if (check_query(srv, wsi, &tmp, true, &s) != 0) {
            /* answer the 400 ourselves, now */
            unsigned char hb[LWS_PRE + 512];
            unsigned char *start = hb + LWS_PRE, *q = start, *end = hb + sizeof hb - 1;
            if (lws_add_http_common_headers(wsi, (unsigned)tmp.status, tmp.ctype, tmp.resp_len, &q,
                                            end) == 0 &&
                lws_finalize_write_http_header(wsi, start, &q, end) == 0)
                lws_write(wsi, tmp.resp + LWS_PRE, tmp.resp_len, LWS_WRITE_HTTP_FINAL);
            free(tmp.resp);
            rc = 1;
            break;
        }
        free(tmp.resp);
        break;
    }
    case LWS_CALLBACK_ESTABLISHED: on_ws_established(srv, wsi, p); break;
    case LWS_CALLBACK_RECEIVE: {
        if (!p || p->kind != K_WS)
            break;
        if (lws_is_first_fragment(wsi)) {
            p->rx_len = 0;
            p->rx_over = 0;
            p->rx_binary = lws_frame_is_binary(wsi);
        }
        if (!p->rx_over) {
            if (p->rx_len + len > srv->o.max_payload) {
                p->rx_over = 1;
            } else {
                if (p->rx_len + len > p->rx_cap) {
                    size_t nc = p->rx_cap ? p->rx_cap : 1024;
                    while (nc < p->rx_len + len)
                        nc *= 2;
                    unsigned char *r = realloc(p->rx, nc);
                    if (!r) {
                        rc = -1;
                        break;
                    }
                    p->rx = r;
                    p->rx_cap = nc;
                }
                memcpy(p->rx + p->rx_len, in, len);
                p->rx_len += len;
            }
        }
        if (p->rx_over) {
            /* as the reference (ws maxPayload): close 1009, the session ends */
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
            rc = -1;
            break;
        }
        if (!lws_is_final_fragment(wsi))
            break;
        on_ws_message(srv, wsi, p, p->rx, p->rx_len, p->rx_binary);
        p->rx_len = 0;
        if (p->rx_cap > 65536) { /* do not keep a big buffer for an idle link */
            free(p->rx);
            p->rx = NULL;
            p->rx_cap = 0;
        }
        break;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: rc = ws_writeable(wsi, p); break;
    case LWS_CALLBACK_CLOSED:
        if (p) {
            session *s = p->sess;
            if (s && s->ws == wsi) {
                s->ws = NULL;
                p->sess = NULL;
                if (s->transport == T_WS)
                    session_close(s, "transport close", false);
                else
                    s->upgrading = 0; /* a failed probe: stay on polling */
                if (s->state == S_OPEN && s->get && s->qn)
                    poll_flush(s, false);
            }
            pss_reset(p);
        }
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        pthread_mutex_lock(&srv->post_mu);
        post_item *it = srv->posts;
        srv->posts = srv->posts_tail = NULL;
        pthread_mutex_unlock(&srv->post_mu);
        while (it) {
            post_item *nx = it->next;
            it->fn(srv, it->ud);
            free(it);
            it = nx;
        }
        break;
    }
    default: break;
    }
    srv->depth--;
    reap(srv);
    return rc;
}

/* ---------------------------------------------------------------- server */

static const struct lws_protocols protocols[] = {
    {"tablium-socket.io", callback, sizeof(pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void lws_log_to_tablium(int level, const char *line)
{
    (void)level;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    tb_log_warn(NULL, "libwebsockets: %.*s", (int)n, line);
}

/* One loop's server: its copy of the options, its libwebsockets context (listening on the port,
 * or, with several loops, adopting what the acceptor hands it). */
static int server_init(tb_rt_server *srv, const tb_rt_options *opts, bool listen, tb_error *err)
{
    srv->o = *opts;
    srv->path = strdup(opts->path);
    srv->eio_path = dup_or_null(opts->eio_path);
    srv->host = strdup(opts->host ? opts->host : "127.0.0.1");
    srv->cors = dup_or_null(opts->cors_origin);
    pthread_mutex_init(&srv->post_mu, NULL);
    pthread_mutex_init(&srv->job_mu, NULL);
    pthread_cond_init(&srv->job_cv, NULL);
    if (!srv->path || !srv->host || (opts->eio_path && !srv->eio_path) ||
        (opts->cors_origin && !srv->cors))
        return TB_ENOMEM;
    if (!srv->o.max_connections)
        srv->o.max_connections = 65536;
    if (!srv->o.max_buffered)
        srv->o.max_buffered = 4u << 20;
    if (!srv->o.connect_timeout_ms)
        srv->o.connect_timeout_ms = 45000;
    if (!tb_rt_server_of(srv, "/"))
        return TB_ENOMEM;

    lws_set_log_level(LLL_ERR, lws_log_to_tablium);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = listen ? opts->port : CONTEXT_PORT_NO_LISTEN_SERVER;
    info.iface = listen ? srv->host : NULL;
    info.protocols = protocols;
    info.user = srv;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (!strchr(srv->host, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.fd_limit_per_thread = srv->o.max_connections + 64;
    info.max_http_header_pool =
        (unsigned short)(srv->o.max_connections > 65535 ? 65535 : srv->o.max_connections);
    info.timeout_secs = 30;
    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        tb_error_set(err, TB_EIO, "realtime: cannot listen on %s:%d", srv->host, opts->port);
        return TB_EIO;
    }
    srv->vh = lws_get_vhost_by_name(srv->ctx, "default");
    if (listen)
        srv->port = srv->vh ? lws_get_vhost_listen_port(srv->vh) : opts->port;
    const char *dw = getenv("TB_RT_DIRECT_WRITE");
    srv->direct_write = !(dw && strcmp(dw, "0") == 0);
    return 0;
}

/* tb_rt_options.loops, else TB_RT_LOOPS ("auto": one per CPU), else 1; at most 64 (the first
 * character of a sid names its loop). */
static unsigned loops_wanted(const tb_rt_options *opts)
{
    long n = opts->loops;
    const char *env = getenv("TB_RT_LOOPS");
    if (!n && env && *env)
        n = strcmp(env, "auto") == 0 ? sysconf(_SC_NPROCESSORS_ONLN) : strtol(env, NULL, 10);
    return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

int tb_rt_server_new(const tb_rt_options *opts, tb_rt_server **out, tb_error *err)
{
    tb_rt_options def = TB_RT_OPTIONS_INIT;
    *out = NULL;
    if (!opts)
        opts = &def;
    if (!opts->path || opts->path[0] != '/' || opts->max_payload == 0 ||
        opts->ping_interval_ms == 0 || opts->ping_timeout_ms == 0) {
        tb_error_set(err, TB_EINVAL,
                     "realtime: path must start with '/', and max_payload, "
                     "ping_interval_ms and ping_timeout_ms must be > 0");
        return TB_EINVAL;
    }
    tb_rt_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return TB_ENOMEM;
    srv->primary = srv;
    pthread_mutex_init(&srv->pid_mu, NULL);
    srv->ended_tail = &srv->ended;
    srv->nshards = loops_wanted(opts);
    int rc = 0;
    if (srv->nshards > 1) {
        rc = tb_rt__acceptor_listen(opts->host ? opts->host : "127.0.0.1", opts->port,
                                    &srv->acceptor, &srv->port, err);
        srv->shards = rc == 0 ? calloc(srv->nshards, sizeof *srv->shards) : NULL;
        if (rc == 0 && !srv->shards)
            rc = TB_ENOMEM;
        if (rc != 0)
            srv->nshards = 1;
        else
            srv->shards[0] = srv;
        for (unsigned i = 1; rc == 0 && i < srv->nshards; i++) {
            tb_rt_server *sh = calloc(1, sizeof *sh);
            if (!sh) {
                rc = TB_ENOMEM;
                break;
            }
            sh->primary = srv;
            sh->shard = i;
            srv->shards[i] = sh;
            rc = server_init(sh, opts, false, err);
        }
    }
    if (rc == 0)
        rc = server_init(srv, opts, srv->nshards == 1, err);
    if (rc != 0) {
        tb_rt_server_free(srv);
        return rc;
    }
    struct mallinfo2 mi = mallinfo2();
    srv->heap_base = mi.uordblks;
    *out = srv;
    return 0;
}

static void *loop_main(void *arg)
{
    tb_rt_server *srv = arg;
    tl_loop = srv;
    while (!atomic_load(&srv->stop))
        if (lws_service(srv->ctx, 0) < 0)
            break;
    tl_loop = NULL;
    return NULL;
}

/* ---------------------------------------------------------------- several loops */

/* A connection from the acceptor, on the loop it was routed to. */
static void adopt(tb_rt_server *srv, void *ud)
{
    int fd = (int)(intptr_t)ud;
    if (atomic_load(&srv->stop))
        close(fd);
    else if (!lws_adopt_socket_vhost(srv->vh, fd)) /* it closed fd */
        tb_log_warn(NULL, "realtime: loop %u could not take a connection", srv->shard);
}

/* The loop a request line names by its sid (the sid's first character), else n. */
static unsigned sid_loop(const char *head, size_t len, unsigned n)
{
    const char *end = memchr(head, '\n', len);
    if (!end)
        end = head + len;
    for (const char *p = head; p + 5 < end; p++)
        if ((p[0] == '?' || p[0] == '&') && memcmp(p + 1, "sid=", 4) == 0) {
            const char *at = p[5] ? strchr(ID_CHARS, p[5]) : NULL;
            unsigned k = at ? (unsigned)(at - ID_CHARS) : n;
            return k < n ? k : n;
        }
    return n;
}

/* The acceptor's choice: the loop of the sid, else the loop with the fewest sessions (from a
 * rotating start, so a burst of new connections is spread). */
static void route(int fd, const char *head, size_t len, void *ud)
{
    tb_rt_server *first = ud;
    unsigned n = first->nshards, k = sid_loop(head, len, n);
    if (k == n) {
        unsigned start = atomic_fetch_add(&first->rr, 1) % n;
        uint64_t best = UINT64_MAX;
        for (unsigned i = 0; i < n; i++) {
            unsigned j = (start + i) % n;
            uint64_t load = atomic_load_explicit(&first->shards[j]->st.sessions,
                                                 memory_order_relaxed);
            if (load < best) {
                best = load;
                k = j;
            }
        }
    }
    if (tb_rt_server_post(first->shards[k], adopt, (void *)(intptr_t)fd) != 0)
        close(fd);
}

/* Before the loops start: every loop gets the namespaces, patterns and handlers registered on
 * the first one, in the same order. */
static int clone_namespaces(tb_rt_server *srv)
{
    size_t count = 0;
    for (tb_rt_nsp *p = srv->nsps; p; p = p->next)
        count++;
    tb_rt_nsp **list = calloc(count ? count : 1, sizeof *list);
    if (!list)
        return TB_ENOMEM;
    size_t k = count;
    for (tb_rt_nsp *p = srv->nsps; p; p = p->next)
        list[--k] = p; /* oldest first */
    int rc = 0;
    for (size_t x = 0; rc == 0 && x < count; x++) {
        tb_rt_nsp *p = list[x];
        if (p->grp)
            continue;
        if (!(p->grp = calloc(1, sizeof *p->grp + srv->nshards * sizeof(tb_rt_nsp *)))) {
            rc = TB_ENOMEM;
            break;
        }
        pthread_mutex_init(&p->grp->mu, NULL);
        p->grp->twins[0] = p;
        for (unsigned i = 1; i < srv->nshards; i++) {
            tb_rt_server *sh = srv->shards[i];
            tb_rt_nsp *t = p->match ? NULL : nsp_find(sh, p->name, strlen(p->name));
            if (!t && !(t = nsp_new(sh, p->name))) {
                rc = TB_ENOMEM;
                break;
            }
            t->match = p->match;
            t->match_ud = p->match_ud;
            t->pattern = p->pattern && p->pattern->grp ? p->pattern->grp->twins[i] : NULL;
            t->any = p->any;
            t->any_ud = p->any_ud;
            t->on_connect = p->on_connect;
            t->on_connect_ud = p->on_connect_ud;
            t->on_disconnect = p->on_disconnect;
            t->on_disconnect_ud = p->on_disconnect_ud;
            t->on_disconnecting = p->on_disconnecting;
            t->on_disconnecting_ud = p->on_disconnecting_ud;
            t->server_emit = p->server_emit;
            t->server_emit_ud = p->server_emit_ud;
            for (size_t m = 0; rc == 0 && m < p->nmw; m++)
                rc = tb_rt_nsp_use(t, p->mw[m].fn, p->mw[m].ud);
            for (size_t h = 0; rc == 0 && h < p->nh; h++)
                rc = tb_rt_nsp_on(t, p->h[h].name, p->h[h].fn, p->h[h].ud);
            t->grp = p->grp;
            p->grp->twins[i] = t;
        }
    }
    free(list);
    return rc;
}

int tb_rt_server_start(tb_rt_server *srv)
{
    if (!srv || srv->started || srv->primary != srv)
        return TB_EINVAL;
    if (srv->nshards > 1 && clone_namespaces(srv) != 0)
        return TB_ENOMEM;
    for (unsigned i = 0; i < srv->nshards; i++) {
        tb_rt_server *sh = tb_rt__shard(srv, i);
        if (sh->adapter && tb_rt__adapter_start(sh->adapter) != 0)
            return TB_ENOMEM;
        if (sh->rec) {
            if (tb_rt__rec_start(sh->rec) != 0)
                return TB_ENOMEM;
            lws_sul_schedule(sh->ctx, 0, &sh->sul_refresh, on_refresh,
                             (lws_usec_t)tb_rt__rec_refresh_ms(sh->rec) * 1000);
        }
    }
    for (unsigned i = 0; i < srv->nshards; i++) {
        tb_rt_server *sh = tb_rt__shard(srv, i);
        if (pthread_create(&sh->thread, NULL, loop_main, sh) != 0)
            return TB_ENOMEM;
        sh->started = true;
    }
    if (srv->acceptor && tb_rt__acceptor_start(srv->acceptor, route, srv) != 0)
        return TB_ENOMEM;
    return 0;
}

int tb_rt_server_port(const tb_rt_server *srv)
{
    return srv->port;
}

int tb_rt_server_post(tb_rt_server *srv, void (*fn)(tb_rt_server *srv, void *ud), void *ud)
{
    if (!srv || !fn)
        return TB_EINVAL;
    post_item *it = malloc(sizeof *it);
    if (!it)
        return TB_ENOMEM;
    it->fn = fn;
    it->ud = ud;
    it->next = NULL;
    pthread_mutex_lock(&srv->post_mu);
    if (srv->posts_tail)
        srv->posts_tail->next = it;
    else
        srv->posts = it;
    srv->posts_tail = it;
    pthread_mutex_unlock(&srv->post_mu);
    lws_cancel_service(srv->ctx);
    return 0;
}

static void job_done(tb_rt_server *srv, void *ud)
{
    job *j = ud;
    j->done(srv, j->ud);
    free(j);
}

static void *worker_main(void *arg)
{
    tb_rt_server *srv = arg;
    pthread_mutex_lock(&srv->job_mu);
    for (;;) {
        while (!srv->jobs && !srv->jobs_stop)
            pthread_cond_wait(&srv->job_cv, &srv->job_mu);
        if (!srv->jobs)
            break; /* stopping, and nothing left */
        job *j = srv->jobs;
        srv->jobs = j->next;
        if (!srv->jobs)
            srv->jobs_tail = NULL;
        pthread_mutex_unlock(&srv->job_mu);
        j->work(j->ud);
        if (tb_rt_server_post(j->home, job_done, j) != 0) {
            j->done(j->home, j->ud); /* out of memory: better late on this thread than never */
            free(j);
        }
        pthread_mutex_lock(&srv->job_mu);
    }
    pthread_mutex_unlock(&srv->job_mu);
    return NULL;
}

int tb_rt_server_offload(tb_rt_server *srv, void (*work)(void *ud),
                         void (*done)(tb_rt_server *srv, void *ud), void *ud)
{
    if (!srv || !work || !done)
        return TB_EINVAL;
    job *j = calloc(1, sizeof *j);
    if (!j)
        return TB_ENOMEM;
    j->work = work;
    j->done = done;
    j->ud = ud;
    j->home = srv_here(srv); /* done runs on the loop that asked, where its sockets are */
    srv = srv->primary;      /* one pool of workers for every loop */
    pthread_mutex_lock(&srv->job_mu);
    if (!srv->workers) {
        const char *env = getenv("TB_RT_WORKERS");
        int n = env ? atoi(env) : 4;
        n = n < 1 ? 1 : n > 64 ? 64 : n;
        srv->workers = calloc((size_t)n, sizeof *srv->workers);
        for (int i = 0; srv->workers && i < n; i++)
            if (pthread_create(&srv->workers[i], NULL, worker_main, srv) == 0)
                srv->nworkers++;
    }
    if (!srv->nworkers) {
        pthread_mutex_unlock(&srv->job_mu);
        free(j);
        return TB_ENOMEM;
    }
    if (srv->jobs_tail)
        srv->jobs_tail->next = j;
    else
        srv->jobs = j;
    srv->jobs_tail = j;
    pthread_cond_signal(&srv->job_cv);
    pthread_mutex_unlock(&srv->job_mu);
    return 0;
}

/* Every loop's counters, summed. */
void tb_rt_server_stats(tb_rt_server *srv, tb_rt_stats *out)
{
    memset(out, 0, sizeof *out);
    srv = srv->primary;
    for (unsigned i = 0; i < srv->nshards; i++) {
        tb_rt_server *sh = tb_rt__shard(srv, i);
#define ADD(f) out->f += atomic_load_explicit(&sh->st.f, memory_order_relaxed)
        ADD(sessions);
        ADD(sockets);
        ADD(websocket);
        ADD(packets_out);
        ADD(packets_in);
        ADD(dropped_volatile);
        ADD(slow_disconnects);
        ADD(protocol_errors);
        ADD(refused);
        ADD(buffered_bytes);
        ADD(adapter_published);
        ADD(adapter_received);
        ADD(adapter_bytes_in);
        ADD(adapter_dropped);
        ADD(adapter_reconnects);
        ADD(recovered);
        ADD(not_recovered);
#undef ADD
        uint64_t stored = 0, failed = 0, restored, refused;
        tb_rt__rec_stats(sh->rec, &stored, &failed, &restored, &refused);
        out->recovery_stored += stored;
        out->recovery_failed += failed;
    }
}

size_t tb_rt_server_bytes_per_session(tb_rt_server *srv)
{
    tb_rt_stats st;
    tb_rt_server_stats(srv, &st);
    struct mallinfo2 mi = mallinfo2();
    srv = srv->primary;
    if (!st.sessions || mi.uordblks < srv->heap_base)
        return 0;
    return (mi.uordblks - srv->heap_base) / st.sessions;
}

static void run_posts(tb_rt_server *srv)
{
    for (;;) {
        pthread_mutex_lock(&srv->post_mu);
        post_item *it = srv->posts;
        srv->posts = srv->posts_tail = NULL;
        pthread_mutex_unlock(&srv->post_mu);
        if (!it)
            break;
        while (it) {
            post_item *nx = it->next;
            it->fn(srv, it->ud);
            free(it);
            it = nx;
        }
    }
}

/* One loop's teardown, its thread stopped: this thread owns it now (and runs its handlers as
 * that loop). */
static void shard_free(tb_rt_server *srv)
{
    tl_loop = srv;
    /* what was posted still runs */
    srv->depth++;
    run_posts(srv);
    while (srv->sessions)
        session_close(srv->sessions, "server shutting down", false);
    /* recovery: the sessions just closed are kept in Redis; then what it answered runs */
    tb_rt__rec_stop(srv->rec);
    run_posts(srv);
    held_release(srv, true);
    while (srv->restores) {
        restoring *r = srv->restores;
        srv->restores = r->next;
        socket_free(r->so);
        free(r);
    }
    captures_trim(srv);
    srv->depth--;
    if (srv->ctx)
        lws_context_destroy(srv->ctx);
    reap(srv);
    tl_loop = NULL;
    while (srv->nsps) {
        tb_rt_nsp *n = srv->nsps;
        srv->nsps = n->next;
        for (size_t i = 0; i < n->nh; i++)
            free(n->h[i].name);
        free(n->h);
        free(n->mw);
        hmap_free(&n->rooms);
        free(n->name);
        if (n->grp && n->grp->twins[0] == n) { /* the first loop's owns the group */
            for (size_t b = 0; b < n->grp->counts.nb; b++)
                for (hent *e = n->grp->counts.b[b]; e; e = e->next) {
                    rcount *c = e->val;
                    free(c->name);
                    free(c);
                }
            hmap_free(&n->grp->counts);
            pthread_mutex_destroy(&n->grp->mu);
            free(n->grp);
        }
        free(n);
    }
    tb_rt__adapter_free(srv->adapter);
    srv->adapter = NULL;
    tb_rt__rec_free(srv->rec);
    srv->rec = NULL;
    hmap_free(&srv->sids);
    while (srv->posts) {
        post_item *it = srv->posts;
        srv->posts = it->next;
        free(it);
    }
    pthread_mutex_destroy(&srv->post_mu);
    pthread_mutex_destroy(&srv->job_mu);
    pthread_cond_destroy(&srv->job_cv);
    if (srv->primary == srv)
        pid_free_all(srv);
    free(srv->path);
    free(srv->eio_path);
    free(srv->host);
    free(srv->cors);
    free(srv);
}

void tb_rt_server_free(tb_rt_server *srv)
{
    if (!srv || srv->primary != srv)
        return;
    /* no new connections; then the workers and the adapters, which post to the loops, stop
     * (workers finish their jobs); then the loops */
    tb_rt__acceptor_free(srv->acceptor);
    srv->acceptor = NULL;
    pthread_mutex_lock(&srv->job_mu);
    srv->jobs_stop = true;
    pthread_cond_broadcast(&srv->job_cv);
    pthread_mutex_unlock(&srv->job_mu);
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i], NULL);
    free(srv->workers);
    srv->workers = NULL;
    srv->nworkers = 0;
    unsigned n = srv->nshards;
    for (unsigned i = 0; i < n; i++) {
        tb_rt_server *sh = tb_rt__shard(srv, i);
        if (sh)
            tb_rt__adapter_stop(sh->adapter);
    }
    for (unsigned i = 0; i < n; i++) {
        tb_rt_server *sh = tb_rt__shard(srv, i);
        if (sh) {
            atomic_store(&sh->stop, true);
            if (sh->ctx)
                lws_cancel_service(sh->ctx);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        tb_rt_server *sh = tb_rt__shard(srv, i);
        if (sh && sh->started)
            pthread_join(sh->thread, NULL);
    }
    atomic_store(&srv->dying, true);
    tb_rt_server **shards = srv->shards;
    for (unsigned i = n; i-- > 1;)
        if (shards[i])
            shard_free(shards[i]);
    free(shards);
    shard_free(srv);
}
