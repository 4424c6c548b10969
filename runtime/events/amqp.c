/*
 * The RabbitMQ transport of the event bus (rabbitmq-c 0.11); contract in tb_amqp.h.
 *
 * rabbitmq-c is not thread-safe, so every publisher and every consumer owns one connection and
 * one I/O thread that alone calls into the library. Other threads talk to it through a
 * mutex-protected queue plus an eventfd, which the I/O thread poll()s together with the AMQP
 * socket. Before blocking in poll() the thread drains what the library already buffered
 * (amqp_frames_enqueued / amqp_data_in_buffer, via amqp_simple_wait_frame_noblock with a zero
 * timeout), and it never sleeps longer than a quarter of the heartbeat: heartbeats only run
 * inside library calls.
 *
 * Publisher: a ring of `window` records in submission order, [head, tail) by absolute index.
 * The I/O thread sends them in order (records in [head, send_abs) were sent on the current
 * connection); confirm tags are sequential per channel, and tag_abs[tag % window] maps a live tag
 * back to its record (two live tags never collide: they would need more than `window` records in
 * the ring). A settled record's slot becomes NULL and the head moves over NULL slots. On a
 * reconnect the live records are compacted and re-sent in order with new tags.
 *
 * Consumer: channel 1 consumes (manual acks), channel 2 is in confirm mode and carries the
 * retry and dead-letter copies; a delivery is acked on channel 1 only once its copy was
 * confirmed on channel 2. Deliveries carry the connection generation they came from.
 */
#include "tb_amqp.h"
#include "tb_link.h"

#include "tablium/log.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_EXCHANGE "tablium.events"
#define CONNECT_TIMEOUT_MS 5000
#define RPC_TIMEOUT_MS 15000
#define CLOSE_TIMEOUT_MS 2000
#define SHUTDOWN_DRAIN_MS 5000
#define MAX_ATTEMPTS_LIMIT 64
#define SHORTSTR_MAX 255
#define QUEUE_NAME_MAX 200 /* leaves room for ".retry.NN" and ".dlq" in a shortstr */
#define SEND_BATCH 256
#define READ_BATCH 512

#define H_ATTEMPT "x-tablium-attempt"
#define H_VERSION "x-tablium-version"
#define H_TRACEPARENT "traceparent"
#define H_KEY "x-tablium-key"
#define H_REASON "x-tablium-reason"
#define H_DEAD_AT "x-tablium-dead-at"
#define H_ROUTING_KEY "x-tablium-routing-key"
#define H_QUEUE "x-tablium-queue"

/* The publisher or consumer whose I/O thread this is (NULL elsewhere). */
static _Thread_local const void *io_owner;

/* ================================================================ helpers ==== */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval ms_tv(int ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static int cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

/* Waits on a CLOCK_MONOTONIC condition until deadline (ms, now_ms() clock); ETIMEDOUT or 0. */
static int cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline)
{
    struct timespec ts = {(time_t)(deadline / 1000u), (long)(deadline % 1000u) * 1000000L};
    return pthread_cond_timedwait(cv, mu, &ts);
}

static void efd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    (void)n;
}

static void efd_drain(int fd)
{
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v);
    (void)n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static amqp_bytes_t cbytes(const char *s)
{
    return s ? amqp_cstring_bytes(s) : amqp_empty_bytes;
}

static bool bytes_is(amqp_bytes_t b, const char *s)
{
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.bytes, s, n) == 0);
}

static bool bytes_has_prefix(amqp_bytes_t b, const char *s)
{
    size_t n = strlen(s);
    return b.len >= n && memcmp(b.bytes, s, n) == 0;
}

static bool bytes_eq(amqp_bytes_t a, amqp_bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.bytes, b.bytes, a.len) == 0);
}

/* Copies b into buf (cap >= 1) as a C string, truncated. */
static void bytes_to_buf(amqp_bytes_t b, char *buf, size_t cap)
{
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    if (n)
        memcpy(buf, b.bytes, n);
    buf[n] = '\0';
}

/* JSON string body escaping for log fields (no quotes added). */
static void json_esc(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; s && *s && o + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

static void rfc3339_now(char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000L) % 1000);
}

/* ------------------------------------------------------------ connection ---- */

typedef struct amqp_target {
    char *url;                      /* amqp_parse_url's storage */
    struct amqp_connection_info ci; /* points into url */
    char where[300];                /* host:port/vhost for logs (no credentials) */
} amqp_target;

static int target_parse(amqp_target *t, const char *url, tb_error *err)
{
    memset(t, 0, sizeof *t);
    if (url == NULL || *url == '\0')
        return tb_error_set(err, TB_EINVAL, "amqp: no URL");
    t->url = strdup(url);
    if (t->url == NULL)
        return tb_error_set(err, TB_ENOMEM, "amqp: out of memory");
    amqp_default_connection_info(&t->ci);
    if (amqp_parse_url(t->url, &t->ci) != AMQP_STATUS_OK || t->ci.ssl) {
        free(t->url);
        t->url = NULL;
        return tb_error_set(err, TB_EINVAL,
                            "amqp: bad URL (want amqp://user:pass@host:port/vhost)");
    }
    /* "amqp://host:port/" names the vhost "" by the URI spec; nobody means that: use "/" */
    if (t->ci.vhost == NULL || t->ci.vhost[0] == '\0')
        t->ci.vhost = (char *)"/";
    snprintf(t->where, sizeof t->where, "%s:%d%s%s", t->ci.host, t->ci.port,
             strcmp(t->ci.vhost, "/") == 0 ? "" : "/",
             strcmp(t->ci.vhost, "/") == 0 ? "" : t->ci.vhost);
    return 0;
}

static void target_free(amqp_target *t)
{
    free(t->url);
    t->url = NULL;
}

/* Maps a reply to a TB code and a readable text. *permanent: a server refusal that a retry will
 * not fix (access refused, inequivalent arguments...), as opposed to a broken connection. */
static int reply_err(amqp_rpc_reply_t r, const char *what, char *why, size_t cap, bool *permanent)
{
    if (permanent)
        *permanent = false;
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return 0;
    case AMQP_RESPONSE_NONE: snprintf(why, cap, "%s: no reply", what); return TB_ECONN;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(why, cap, "%s: %s", what, amqp_error_string2(r.library_error));
        return r.library_error == AMQP_STATUS_TIMEOUT ? TB_ETIMEDOUT : TB_ECONN;
    case AMQP_RESPONSE_SERVER_EXCEPTION: break;
    }
    unsigned code = 0;
    amqp_bytes_t text = amqp_empty_bytes;
    if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD && r.reply.decoded) {
        amqp_connection_close_t *m = r.reply.decoded;
        code = m->reply_code;
        text = m->reply_text;
    } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD && r.reply.decoded) {
        amqp_channel_close_t *m = r.reply.decoded;
        code = m->reply_code;
        text = m->reply_text;
    }
    snprintf(why, cap, "%s: %u %.*s", what, code, (int)(text.len > 200 ? 200 : text.len),
             text.len ? (const char *)text.bytes : "");
    switch (code) {
    case 404:
        if (permanent)
            *permanent = true;
        return TB_ENOTFOUND;
    case 403:
    case 530:
        if (permanent)
            *permanent = true;
        return TB_ECONN;
    case 405:
    case 406:
        if (permanent)
            *permanent = true;
        return TB_ESTATE;
    default: return code == 320 ? TB_ECONN : TB_EIO;
    }
}

/* Answers a server channel.close / connection.close carried by r, so the channel number can be
 * reused (or the connection closed cleanly). */
static void close_ok(amqp_connection_state_t conn, amqp_channel_t ch, amqp_rpc_reply_t r)
{
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION)
        return;
    if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
}

/* Checks the last RPC; answers a close; fills why. *chan_only: the connection is still usable
 * (only channel ch was closed by the broker). */
static int rpc_check(amqp_connection_state_t conn, amqp_channel_t ch, const char *what, char *why,
                     size_t cap, bool *permanent, bool *chan_only)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    int rc = reply_err(r, what, why, cap, permanent);
    if (chan_only)
        *chan_only = r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
                     r.reply.id == AMQP_CHANNEL_CLOSE_METHOD;
    close_ok(conn, ch, r);
    return rc;
}

/* Opens and logs in; 0 or a TB code with why filled. */
static int conn_open(const amqp_target *t, int heartbeat_s, amqp_connection_state_t *out, char *why,
                     size_t cap, bool *permanent)
{
    *out = NULL;
    if (permanent)
        *permanent = false;
    amqp_connection_state_t conn = amqp_new_connection();
    if (conn == NULL) {
        snprintf(why, cap, "out of memory");
        return TB_ENOMEM;
    }
    amqp_socket_t *s = amqp_tcp_socket_new(conn);
    if (s == NULL) {
        amqp_destroy_connection(conn);
        snprintf(why, cap, "out of memory");
        return TB_ENOMEM;
    }
    struct timeval tv = ms_tv(CONNECT_TIMEOUT_MS);
    int st = amqp_socket_open_noblock(s, t->ci.host, t->ci.port, &tv);
    if (st != AMQP_STATUS_OK) {
        snprintf(why, cap, "connect to %s: %s", t->where, amqp_error_string2(st));
        amqp_destroy_connection(conn);
        return st == AMQP_STATUS_TIMEOUT ? TB_ETIMEDOUT : TB_ECONN;
    }
    amqp_set_handshake_timeout(conn, &tv);
    struct timeval rpc = ms_tv(RPC_TIMEOUT_MS);
    amqp_set_rpc_timeout(conn, &rpc);
    amqp_rpc_reply_t r = amqp_login(conn, t->ci.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, heartbeat_s,
                                    AMQP_SASL_METHOD_PLAIN, t->ci.user, t->ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char what[320];
        snprintf(what, sizeof what, "login to %s", t->where);
        int rc = reply_err(r, what, why, cap, permanent);
        close_ok(conn, 0, r);
        amqp_destroy_connection(conn);
        return rc;
    }
    *out = conn;
    return 0;
}

static void conn_close(amqp_connection_state_t conn)
{
    if (conn == NULL)
        return;
    struct timeval tv = ms_tv(CLOSE_TIMEOUT_MS);
    amqp_set_rpc_timeout(conn, &tv);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

static int chan_open(amqp_connection_state_t conn, amqp_channel_t ch, char *why, size_t cap)
{
    amqp_channel_open(conn, ch);
    return rpc_check(conn, ch, "channel.open", why, cap, NULL, NULL);
}

static int read_frame_now(amqp_connection_state_t conn, amqp_frame_t *f)
{
    struct timeval zero = {0, 0};
    return amqp_simple_wait_frame_noblock(conn, f, &zero);
}

/* TCP_CORK around a batch of publishes: the socket has TCP_NODELAY, so without it every
 * message would leave in its own segment and cost the broker one read each. */
static void sock_cork(amqp_connection_state_t conn, bool on)
{
    int v = on ? 1 : 0;
    setsockopt(amqp_get_sockfd(conn), IPPROTO_TCP, TCP_CORK, &v, sizeof v);
}

static bool buffered(amqp_connection_state_t conn)
{
    return amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn);
}

/* Polls the socket and the eventfd for at most timeout_ms. */
static void io_wait(amqp_connection_state_t conn, int efd, int timeout_ms)
{
    struct pollfd fds[2];
    int n = 0;
    if (conn) {
        fds[n].fd = amqp_get_sockfd(conn);
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        n++;
    }
    fds[n].fd = efd;
    fds[n].events = POLLIN;
    fds[n].revents = 0;
    n++;
    if (poll(fds, (nfds_t)n, timeout_ms) > 0 && (fds[n - 1].revents & POLLIN))
        efd_drain(efd);
}

static int idle_timeout_ms(int heartbeat_s)
{
    int t = heartbeat_s > 0 ? heartbeat_s * 1000 / 4 : 1000;
    return t > 1000 ? 1000 : (t < 50 ? 50 : t);
}

static void log_conn(tb_log_level lvl, const char *role, const char *name, const amqp_target *t,
                     unsigned connects, long down_ms, const char *error, const char *msg)
{
    if (!tb_log_enabled(lvl))
        return;
    char ename[200], ewhere[400], eerr[600], fields[1400];
    json_esc(name ? name : "", ename, sizeof ename);
    json_esc(t->where, ewhere, sizeof ewhere);
    json_esc(error ? error : "", eerr, sizeof eerr);
    int n = snprintf(fields, sizeof fields,
                     "\"transport\":\"amqp\",\"role\":\"%s\",\"name\":\"%s\",\"broker\":\"%s\","
                     "\"connects\":%u",
                     role, ename, ewhere, connects);
    if (down_ms >= 0 && n > 0 && (size_t)n < sizeof fields)
        n += snprintf(fields + n, sizeof fields - (size_t)n, ",\"downMs\":%ld", down_ms);
    if (error && n > 0 && (size_t)n < sizeof fields)
        snprintf(fields + n, sizeof fields - (size_t)n, ",\"error\":\"%s\"", eerr);
    tb_log_fields(lvl, NULL, fields, "%s", msg);
}

static void apply_conn_defaults(tb_amqp_opts *o)
{
    if (o->exchange == NULL)
        o->exchange = DEFAULT_EXCHANGE;
    if (o->window == 0)
        o->window = 1000;
    if (o->publish_timeout_ms <= 0)
        o->publish_timeout_ms = 30000;
    if (o->reconnect_min_ms <= 0)
        o->reconnect_min_ms = 100;
    if (o->reconnect_max_ms <= 0)
        o->reconnect_max_ms = 5000;
    if (o->reconnect_max_ms < o->reconnect_min_ms)
        o->reconnect_max_ms = o->reconnect_min_ms;
    if (o->heartbeat_s <= 0)
        o->heartbeat_s = 30;
}

static int next_backoff(int cur, int max)
{
    return cur >= max / 2 ? max : cur * 2;
}

/* ---------------------------------------------------------- headers ---- */

static bool field_int(const amqp_field_value_t *v, int64_t *out)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8: *out = v->value.i8; return true;
    case AMQP_FIELD_KIND_U8: *out = v->value.u8; return true;
    case AMQP_FIELD_KIND_I16: *out = v->value.i16; return true;
    case AMQP_FIELD_KIND_U16: *out = v->value.u16; return true;
    case AMQP_FIELD_KIND_I32: *out = v->value.i32; return true;
    case AMQP_FIELD_KIND_U32: *out = v->value.u32; return true;
    case AMQP_FIELD_KIND_I64: *out = v->value.i64; return true;
    case AMQP_FIELD_KIND_U64:
        *out = v->value.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v->value.u64;
        return true;
    default: return false;
    }
}

static bool field_str(const amqp_field_value_t *v, amqp_bytes_t *out)
{
    if (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES)
        return false;
    *out = v->value.bytes;
    return true;
}

/* Headers a republish replaces or drops (the broker's dead-lettering history included). */
static bool header_replaced(amqp_bytes_t key)
{
    return bytes_is(key, H_ATTEMPT) || bytes_is(key, H_ROUTING_KEY) || bytes_is(key, H_REASON) ||
           bytes_is(key, H_DEAD_AT) || bytes_is(key, H_QUEUE) || bytes_is(key, "x-death") ||
           bytes_has_prefix(key, "x-first-death-") || bytes_has_prefix(key, "x-last-death-");
}

static amqp_table_entry_t entry_str(const char *key, const char *val)
{
    amqp_table_entry_t e;
    memset(&e, 0, sizeof e);
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = cbytes(val);
    return e;
}

static amqp_table_entry_t entry_i32(const char *key, int32_t val)
{
    amqp_table_entry_t e;
    memset(&e, 0, sizeof e);
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_I32;
    e.value.value.i32 = val;
    return e;
}


/* ---------------------------------------------------------- deliveries ---- */

typedef struct dlink {
    struct dlink *prev, *next;
} dlink;

/* A delivery as the transport keeps it: the public part first, then what a republish needs. */
typedef struct cdeliv {
    tb_amqp_delivery d;
    dlink link;                     /* consumer's live list (I/O thread only) */
    struct cdeliv *qnext;           /* settle queue (consumer mutex) */
    struct tb_amqp_consumer *owner; /* NULL for DLQ listings */
    uint64_t tag;
    unsigned gen;
    bool acking; /* in the batch of acks being sent */
    tb_amqp_action action;
    char *reason; /* settle reason (malloc) */
    /* properties kept for republishing */
    const char *content_type, *content_encoding, *app_id;
    uint64_t timestamp;
    bool has_timestamp;
    uint8_t priority;
    bool has_priority;
    const unsigned char *hdr; /* encoded headers table, NULL when none */
    size_t hdr_len;
    /* DLQ view (x-tablium-reason / x-tablium-dead-at), NULL when absent */
    const char *dead_reason, *dead_at;
    char data[];
} cdeliv;

typedef struct str_slot {
    amqp_bytes_t src;
    bool present;
    const char **dst;
} str_slot;

/* Builds a delivery from a message; strings are copied (NUL-terminated), the body too (with a NUL
 * after it), the headers table encoded into enc (scratch of enc_cap bytes) and copied. */
static cdeliv *deliv_build(uint64_t tag, bool redelivered, amqp_bytes_t rk, const amqp_message_t *m,
                           unsigned char *enc, size_t enc_cap)
{
    const amqp_basic_properties_t *p = &m->properties;
    amqp_bytes_t version = amqp_empty_bytes, trace = amqp_empty_bytes, orig_rk = amqp_empty_bytes,
                 reason = amqp_empty_bytes, dead_at = amqp_empty_bytes, key = amqp_empty_bytes;
    bool has_version = false, has_trace = false, has_orig_rk = false, has_reason = false,
         has_dead_at = false, has_key = false;
    int attempt = 1;
    size_t hdr_len = 0;
    if ((p->_flags & AMQP_BASIC_HEADERS_FLAG) && p->headers.num_entries > 0 && p->headers.entries) {
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &p->headers.entries[i];
            int64_t n;
            if (bytes_is(e->key, H_ATTEMPT)) {
                if (field_int(&e->value, &n) && n >= 1)
                    attempt = n > INT_MAX ? INT_MAX : (int)n;
            } else if (bytes_is(e->key, H_VERSION)) {
                has_version = field_str(&e->value, &version);
            } else if (bytes_is(e->key, H_TRACEPARENT)) {
                has_trace = field_str(&e->value, &trace);
            } else if (bytes_is(e->key, H_KEY)) {
                has_key = field_str(&e->value, &key);
            } else if (bytes_is(e->key, H_ROUTING_KEY)) {
                has_orig_rk = field_str(&e->value, &orig_rk);
            } else if (bytes_is(e->key, H_REASON)) {
                has_reason = field_str(&e->value, &reason);
            } else if (bytes_is(e->key, H_DEAD_AT)) {
                has_dead_at = field_str(&e->value, &dead_at);
            }
        }
        size_t off = 0;
        amqp_bytes_t out = {enc_cap, enc};
        amqp_table_t hdrs = p->headers;
        if (enc && amqp_encode_table(out, &hdrs, &off) == AMQP_STATUS_OK)
            hdr_len = off;
    }
    cdeliv tmp;
    memset(&tmp, 0, sizeof tmp);
    str_slot slots[] = {
        {has_orig_rk ? orig_rk : rk, true, &tmp.d.routing_key},
        {p->message_id, (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0, &tmp.d.message_id},
        {p->type, (p->_flags & AMQP_BASIC_TYPE_FLAG) != 0, &tmp.d.type},
        {version, has_version, &tmp.d.version},
        {p->correlation_id, (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) != 0,
         &tmp.d.correlation_id},
        {trace, has_trace, &tmp.d.traceparent},
        {key, has_key, &tmp.d.key},
        {p->content_type, (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) != 0, &tmp.content_type},
        {p->content_encoding, (p->_flags & AMQP_BASIC_CONTENT_ENCODING_FLAG) != 0,
         &tmp.content_encoding},
        {p->app_id, (p->_flags & AMQP_BASIC_APP_ID_FLAG) != 0, &tmp.app_id},
        {reason, has_reason, &tmp.dead_reason},
        {dead_at, has_dead_at, &tmp.dead_at},
    };
    size_t nslots = sizeof slots / sizeof slots[0];
    size_t total = m->body.len + 1 + hdr_len;
    for (size_t i = 0; i < nslots; i++)
        if (slots[i].present)
            total += slots[i].src.len + 1;
    cdeliv *w = malloc(sizeof *w + total);
    if (w == NULL)
        return NULL;
    char *cur = w->data;
    for (size_t i = 0; i < nslots; i++) {
        if (!slots[i].present)
            continue;
        if (slots[i].src.len)
            memcpy(cur, slots[i].src.bytes, slots[i].src.len);
        cur[slots[i].src.len] = '\0';
        *slots[i].dst = cur;
        cur += slots[i].src.len + 1;
    }
    if (m->body.len)
        memcpy(cur, m->body.bytes, m->body.len);
    cur[m->body.len] = '\0';
    tmp.d.body = cur;
    tmp.d.len = m->body.len;
    cur += m->body.len + 1;
    if (hdr_len) {
        memcpy(cur, enc, hdr_len);
        tmp.hdr = (const unsigned char *)cur;
        tmp.hdr_len = hdr_len;
    }
    tmp.d.attempt = attempt;
    tmp.d.redelivered = redelivered;
    tmp.tag = tag;
    if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) {
        tmp.has_timestamp = true;
        tmp.timestamp = p->timestamp;
    }
    if (p->_flags & AMQP_BASIC_PRIORITY_FLAG) {
        tmp.has_priority = true;
        tmp.priority = p->priority;
    }
    /* tmp's string pointers already point into w->data: copy the fixed part over */
    memcpy(w, &tmp, sizeof tmp);
    return w;
}

typedef struct repub_spec {
    const char *routing_key; /* destination queue through the default exchange */
    int attempt;
    bool dead;
    const char *reason; /* dead only */
    const char *queue;  /* dead only: x-tablium-queue */
    int64_t expire_ms;  /* retry only: how long the copy waits in the retry queue */
} repub_spec;

/* Publishes a copy of w (persistent, mandatory) to the default exchange. AMQP status. */
static int republish(amqp_connection_state_t conn, amqp_channel_t ch, const cdeliv *w,
                     const repub_spec *s)
{
    amqp_pool_t pool;
    init_amqp_pool(&pool, 1024);
    amqp_table_t orig = {0, NULL};
    if (w->hdr_len) {
        size_t off = 0;
        amqp_bytes_t enc = {w->hdr_len, (void *)w->hdr};
        if (amqp_decode_table(enc, &pool, &orig, &off) != AMQP_STATUS_OK) {
            orig.num_entries = 0;
            orig.entries = NULL;
        }
    }
    size_t cap = (size_t)(orig.num_entries > 0 ? orig.num_entries : 0) + 6;
    amqp_table_entry_t *e = calloc(cap, sizeof *e);
    if (e == NULL) {
        empty_amqp_pool(&pool);
        return AMQP_STATUS_NO_MEMORY;
    }
    int n = 0;
    for (int i = 0; i < orig.num_entries; i++)
        if (!header_replaced(orig.entries[i].key))
            e[n++] = orig.entries[i];
    e[n++] = entry_i32(H_ATTEMPT, s->attempt);
    if (w->d.routing_key)
        e[n++] = entry_str(H_ROUTING_KEY, w->d.routing_key);
    char dead_at[96];
    if (s->dead) {
        rfc3339_now(dead_at, sizeof dead_at);
        e[n++] = entry_str(H_REASON, s->reason ? s->reason : "");
        e[n++] = entry_str(H_DEAD_AT, dead_at);
        e[n++] = entry_str(H_QUEUE, s->queue ? s->queue : "");
    }
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.headers.num_entries = n;
    props.headers.entries = e;
    if (w->d.message_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(w->d.message_id);
    }
    if (w->d.type) {
        props._flags |= AMQP_BASIC_TYPE_FLAG;
        props.type = amqp_cstring_bytes(w->d.type);
    }
    if (w->d.correlation_id) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = amqp_cstring_bytes(w->d.correlation_id);
    }
    if (w->content_type) {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes(w->content_type);
    }
    if (w->content_encoding) {
        props._flags |= AMQP_BASIC_CONTENT_ENCODING_FLAG;
        props.content_encoding = amqp_cstring_bytes(w->content_encoding);
    }
    if (w->app_id) {
        props._flags |= AMQP_BASIC_APP_ID_FLAG;
        props.app_id = amqp_cstring_bytes(w->app_id);
    }
    if (w->has_timestamp) {
        props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        props.timestamp = w->timestamp;
    }
    if (w->has_priority) {
        props._flags |= AMQP_BASIC_PRIORITY_FLAG;
        props.priority = w->priority;
    }
    char expiration[24];
    if (s->expire_ms > 0) { /* per message, so a changed delay never conflicts with the queue */
        snprintf(expiration, sizeof expiration, "%lld", (long long)s->expire_ms);
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        props.expiration = amqp_cstring_bytes(expiration);
    }
    amqp_bytes_t body = {w->d.len, (void *)w->d.body};
    int st = amqp_basic_publish(conn, ch, amqp_empty_bytes, amqp_cstring_bytes(s->routing_key), 1,
                                0, &props, body);
    free(e);
    empty_amqp_pool(&pool);
    return st;
}

/* ================================================================ publisher ==== */

typedef struct pub_rec {
    uint64_t deadline;
    uint64_t tag; /* confirm tag on the current connection; 0 when not sent on it */
    tb_amqp_confirm_fn cb;
    void *user;
    int rc; /* reported on ack: 0, or TB_ENOTFOUND once returned */
    bool returned;
    amqp_bytes_t exchange, routing_key, body;
    amqp_basic_properties_t props;
    amqp_table_entry_t hdr[4];
    char data[];
} pub_rec;

typedef struct known_ex {
    char **names;
    size_t n, cap;
} known_ex;

struct tb_amqp_pub {
    amqp_target tgt;
    tb_amqp_opts o;
    char *exchange;
    unsigned cap;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t room; /* head moved (room in the window, flush progress) */
    int efd;
    /* under mu (the ring slots: see the top comment) */
    pub_rec **ring;
    uint64_t head, tail;
    bool stop;
    bool idle;         /* the I/O thread is (about to be) in poll(): signal the eventfd */
    unsigned waiting;  /* publishers blocked on a full window */
    unsigned flushing; /* threads in tb_amqp_pub_flush */
    atomic_uint connects;
    tb__link link; /* for readiness */
    /* I/O thread only */
    uint64_t *tag_abs;
    amqp_connection_state_t conn;
    uint64_t send_abs, next_tag, acked_upto, tail_seen;
    bool blocked, ch2_open;
    known_ex known;
};

static void known_clear(known_ex *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->names[i]);
    k->n = 0;
}

static bool known_has(const known_ex *k, amqp_bytes_t name)
{
    for (size_t i = 0; i < k->n; i++)
        if (bytes_is(name, k->names[i]))
            return true;
    return false;
}

static void known_add(known_ex *k, const char *name)
{
    if (k->n == k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 4;
        char **nn = realloc(k->names, nc * sizeof *nn);
        if (nn == NULL)
            return;
        k->names = nn;
        k->cap = nc;
    }
    char *s = strdup(name);
    if (s)
        k->names[k->n++] = s;
}

static pub_rec *rec_new(const char *ex, const char *rk, const tb_amqp_props *pp, const void *body,
                        size_t len)
{
    tb_amqp_props none = {0};
    if (pp == NULL)
        pp = &none;
    const char *strs[] = {ex,          rk, pp->message_id, pp->type, pp->version, pp->correlation_id,
                          pp->traceparent, pp->key};
    enum { NSTR = sizeof strs / sizeof strs[0] };
    size_t lens[NSTR];
    size_t total = len;
    for (size_t i = 0; i < NSTR; i++) {
        lens[i] = strs[i] ? strlen(strs[i]) : 0;
        total += strs[i] ? lens[i] + 1 : 0;
    }
    pub_rec *r = malloc(sizeof *r + total);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof *r);
    amqp_bytes_t b[NSTR];
    char *cur = r->data;
    for (size_t i = 0; i < NSTR; i++) {
        b[i] = amqp_empty_bytes;
        if (strs[i] == NULL)
            continue;
        memcpy(cur, strs[i], lens[i] + 1);
        b[i].bytes = cur;
        b[i].len = lens[i];
        cur += lens[i] + 1;
    }
    if (len)
        memcpy(cur, body, len);
    r->body.bytes = cur;
    r->body.len = len;
    r->exchange = b[0];
    r->routing_key = b[1];
    r->props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    r->props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (pp->message_id) {
        r->props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        r->props.message_id = b[2];
    }
    if (pp->type) {
        r->props._flags |= AMQP_BASIC_TYPE_FLAG;
        r->props.type = b[3];
    }
    if (pp->correlation_id) {
        r->props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        r->props.correlation_id = b[5];
    }
    int n = 0;
    if (pp->version) {
        r->hdr[n] = entry_str(H_VERSION, NULL);
        r->hdr[n++].value.value.bytes = b[4];
    }
    if (pp->traceparent) {
        r->hdr[n] = entry_str(H_TRACEPARENT, NULL);
        r->hdr[n++].value.value.bytes = b[6];
    }
    if (pp->key) {
        r->hdr[n] = entry_str(H_KEY, NULL);
        r->hdr[n++].value.value.bytes = b[7];
    }
    if (pp->attempt > 0)
        r->hdr[n++] = entry_i32(H_ATTEMPT, pp->attempt);
    if (n) {
        r->props._flags |= AMQP_BASIC_HEADERS_FLAG;
        r->props.headers.num_entries = n;
        r->props.headers.entries = r->hdr;
    }
    return r;
}

static void pub_settle(tb_amqp_pub *p, uint64_t abs, pub_rec *r, int rc)
{
    p->ring[abs % p->cap] = NULL;
    if (r->cb)
        r->cb(r->user, rc);
    free(r);
}

static void pub_settle_tag(tb_amqp_pub *p, uint64_t tag, bool nack)
{
    if (tag == 0 || tag > p->next_tag)
        return;
    uint64_t abs = p->tag_abs[tag % p->cap];
    if (abs < p->head || abs >= p->send_abs)
        return;
    pub_rec *r = p->ring[abs % p->cap];
    if (r == NULL || r->tag != tag)
        return;
    pub_settle(p, abs, r, nack ? TB_EIO : r->rc);
}

static void pub_confirm(tb_amqp_pub *p, uint64_t tag, bool multiple, bool nack)
{
    if (!multiple) {
        pub_settle_tag(p, tag, nack);
        return;
    }
    if (tag > p->next_tag)
        tag = p->next_tag;
    for (uint64_t t = p->acked_upto + 1; t <= tag; t++)
        pub_settle_tag(p, t, nack);
    if (tag > p->acked_upto)
        p->acked_upto = tag;
}

/* Moves the head over settled slots; wakes flushers, and blocked publishers once there is room
 * for a batch (one by one would ping-pong between the threads for every confirm) or when the I/O
 * thread is about to go idle. */
static void pub_advance(tb_amqp_pub *p, bool going_idle)
{
    pthread_mutex_lock(&p->mu);
    uint64_t h = p->head;
    while (p->head < p->tail && p->ring[p->head % p->cap] == NULL)
        p->head++;
    uint64_t room = p->cap - (p->tail - p->head);
    bool wake_pub = p->waiting && room > 0 && (going_idle || room >= (p->cap + 15) / 16);
    bool wake_flush = p->flushing && p->head == p->tail && p->head != h;
    if (wake_pub || wake_flush)
        pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->mu);
    if (p->send_abs < p->head)
        p->send_abs = p->head;
}

/* Records whose deadline passed: cb(TB_ETIMEDOUT). Deadlines grow with the ring position (up to
 * the scheduling of concurrent publishers), so the scan stops at the first live one. */
static void pub_expire(tb_amqp_pub *p, uint64_t now)
{
    for (uint64_t a = p->head; a < p->tail_seen; a++) {
        pub_rec *r = p->ring[a % p->cap];
        if (r == NULL)
            continue;
        if (r->deadline > now)
            break;
        pub_settle(p, a, r, TB_ETIMEDOUT);
    }
}

static uint64_t pub_next_deadline(const tb_amqp_pub *p)
{
    for (uint64_t a = p->head; a < p->tail_seen; a++) {
        pub_rec *r = p->ring[a % p->cap];
        if (r)
            return r->deadline;
    }
    return UINT64_MAX;
}

/* 0 when the exchange exists (declared or checked on this connection), TB_ENOTFOUND when it
 * does not, another TB code when the connection broke. */
static int pub_check_exchange(tb_amqp_pub *p, amqp_bytes_t ex, char *why, size_t cap)
{
    if (ex.len == 0 || bytes_is(ex, p->exchange) || known_has(&p->known, ex))
        return 0;
    char name[SHORTSTR_MAX + 1];
    bytes_to_buf(ex, name, sizeof name);
    if (!p->ch2_open) {
        int rc = chan_open(p->conn, 2, why, cap);
        if (rc != 0)
            return rc == TB_ENOTFOUND ? TB_ECONN : rc;
        p->ch2_open = true;
    }
    amqp_exchange_declare(p->conn, 2, ex, amqp_cstring_bytes("topic"), 1, 0, 0, 0,
                          amqp_empty_table);
    bool chan_only = false;
    int rc = rpc_check(p->conn, 2, "exchange.declare passive", why, cap, NULL, &chan_only);
    if (rc == 0) {
        known_add(&p->known, name);
        return 0;
    }
    if (chan_only) {
        p->ch2_open = false;
        return rc == TB_ENOTFOUND ? TB_ENOTFOUND : TB_EIO;
    }
    return rc == TB_ENOTFOUND ? TB_ECONN : rc;
}

static int pub_connect(tb_amqp_pub *p, char *why, size_t cap)
{
    amqp_connection_state_t conn;
    int rc = conn_open(&p->tgt, p->o.heartbeat_s, &conn, why, cap, NULL);
    if (rc != 0)
        return rc;
    if ((rc = chan_open(conn, 1, why, cap)) != 0)
        goto fail;
    amqp_confirm_select(conn, 1);
    if ((rc = rpc_check(conn, 1, "confirm.select", why, cap, NULL, NULL)) != 0)
        goto fail;
    if (p->exchange[0]) {
        amqp_exchange_declare(conn, 1, amqp_cstring_bytes(p->exchange), amqp_cstring_bytes("topic"),
                              0, 1, 0, 0, amqp_empty_table);
        if ((rc = rpc_check(conn, 1, "exchange.declare", why, cap, NULL, NULL)) != 0)
            goto fail;
    }
    p->conn = conn;
    p->ch2_open = false;
    p->blocked = false;
    p->next_tag = 0;
    p->acked_upto = 0;
    known_clear(&p->known);
    /* compact the live records and re-send them all, in order */
    pthread_mutex_lock(&p->mu);
    uint64_t w = p->head;
    for (uint64_t a = p->head; a < p->tail; a++) {
        pub_rec *r = p->ring[a % p->cap];
        if (r == NULL)
            continue;
        p->ring[a % p->cap] = NULL;
        p->ring[w % p->cap] = r;
        r->tag = 0;
        r->rc = 0;
        r->returned = false;
        w++;
    }
    if (w != p->tail)
        pthread_cond_broadcast(&p->room);
    p->tail = w;
    p->tail_seen = w;
    pthread_mutex_unlock(&p->mu);
    p->send_abs = p->head;
    return 0;
fail:
    amqp_destroy_connection(conn);
    return rc;
}

static int pub_on_return(tb_amqp_pub *p, const amqp_frame_t *f, char *why, size_t cap)
{
    const amqp_basic_return_t *m = f->payload.method.decoded;
    char ex[SHORTSTR_MAX + 1], rk[SHORTSTR_MAX + 1];
    bytes_to_buf(m->exchange, ex, sizeof ex);
    bytes_to_buf(m->routing_key, rk, sizeof rk);
    amqp_message_t msg;
    amqp_rpc_reply_t rr = amqp_read_message(p->conn, f->channel, &msg, 0);
    if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
        int rc = reply_err(rr, "read returned message", why, cap, NULL);
        close_ok(p->conn, f->channel, rr);
        return rc ? rc : TB_ECONN;
    }
    /* returns come in publish order, each before the ack of its message */
    amqp_bytes_t mid = (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
                           ? msg.properties.message_id
                           : amqp_empty_bytes;
    bool has_mid = (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0;
    for (uint64_t a = p->head; a < p->send_abs; a++) {
        pub_rec *r = p->ring[a % p->cap];
        if (r == NULL || r->tag == 0 || r->returned)
            continue;
        bool r_mid = (r->props._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0;
        if (!bytes_is(r->exchange, ex) || !bytes_is(r->routing_key, rk) || r_mid != has_mid ||
            (has_mid && !bytes_eq(r->props.message_id, mid)) || r->body.len != msg.body.len)
            continue;
        r->returned = true;
        r->rc = TB_ENOTFOUND;
        break;
    }
    amqp_destroy_message(&msg);
    return 0;
}

/* One frame; 0, or a TB code when the connection must be rebuilt. */
static int pub_on_frame(tb_amqp_pub *p, amqp_frame_t *f, char *why, size_t cap)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f->payload.method.decoded;
        if (f->channel == 1)
            pub_confirm(p, a->delivery_tag, a->multiple, false);
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = f->payload.method.decoded;
        if (f->channel == 1)
            pub_confirm(p, a->delivery_tag, a->multiple, true);
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD: return pub_on_return(p, f, why, cap);
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f->payload.method.decoded;
        snprintf(why, cap, "channel %u closed by the broker: %u %.*s", f->channel, m->reply_code,
                 (int)(m->reply_text.len > 200 ? 200 : m->reply_text.len),
                 m->reply_text.len ? (const char *)m->reply_text.bytes : "");
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(p->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        if (f->channel == 2) {
            p->ch2_open = false;
            return 0;
        }
        return TB_EIO;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = f->payload.method.decoded;
        snprintf(why, cap, "connection closed by the broker: %u %.*s", m->reply_code,
                 (int)(m->reply_text.len > 200 ? 200 : m->reply_text.len),
                 m->reply_text.len ? (const char *)m->reply_text.bytes : "");
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(p->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        return TB_ECONN;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD:
        p->blocked = true;
        tb__link_blocked(&p->link, true);
        log_conn(TB_LOG_WARN, "publisher", p->exchange, &p->tgt, atomic_load(&p->connects), -1,
                 NULL, "amqp publisher blocked by the broker (resource alarm)");
        return 0;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        p->blocked = false;
        tb__link_blocked(&p->link, false);
        log_conn(TB_LOG_INFO, "publisher", p->exchange, &p->tgt, atomic_load(&p->connects), -1,
                 NULL, "amqp publisher unblocked");
        return 0;
    default: return 0;
    }
}

/* One round of I/O on a live connection; 0, or a TB code when it broke. */
static int pub_step(tb_amqp_pub *p, char *why, size_t cap)
{
    pthread_mutex_lock(&p->mu);
    p->tail_seen = p->tail;
    pthread_mutex_unlock(&p->mu);
    int sent = 0, rc;
    bool corked = false;
    while (!p->blocked && p->send_abs < p->tail_seen && sent < SEND_BATCH) {
        if (!corked && p->tail_seen - p->send_abs > 1) {
            sock_cork(p->conn, true);
            corked = true;
        }
        uint64_t abs = p->send_abs;
        pub_rec *r = p->ring[abs % p->cap];
        p->send_abs++;
        if (r == NULL)
            continue;
        rc = pub_check_exchange(p, r->exchange, why, cap);
        if (rc == TB_ENOTFOUND) {
            pub_settle(p, abs, r, TB_ENOTFOUND);
            continue;
        }
        if (rc == TB_EIO) /* the passive check itself failed oddly: the publish will tell */
            rc = 0;
        if (rc != 0)
            return rc;
        r->tag = ++p->next_tag;
        p->tag_abs[r->tag % p->cap] = abs;
        int st =
            amqp_basic_publish(p->conn, 1, r->exchange, r->routing_key, 1, 0, &r->props, r->body);
        if (st != AMQP_STATUS_OK) {
            snprintf(why, cap, "basic.publish: %s", amqp_error_string2(st));
            return TB_ECONN;
        }
        sent++;
    }
    if (corked)
        sock_cork(p->conn, false);
    int nread = 0;
    for (;;) {
        amqp_frame_t f;
        int st = read_frame_now(p->conn, &f);
        if (st == AMQP_STATUS_TIMEOUT)
            break;
        if (st != AMQP_STATUS_OK) {
            snprintf(why, cap, "%s", amqp_error_string2(st));
            return TB_ECONN;
        }
        if ((rc = pub_on_frame(p, &f, why, cap)) != 0)
            return rc;
        if (++nread >= READ_BATCH)
            break;
    }
    amqp_maybe_release_buffers(p->conn);
    uint64_t now = now_ms();
    pub_expire(p, now);
    bool idle = sent == 0 && nread == 0 && !buffered(p->conn);
    pub_advance(p, idle);
    if (idle) {
        pthread_mutex_lock(&p->mu);
        bool more = (p->tail > p->send_abs && !p->blocked) || p->stop;
        p->idle = !more;
        pthread_mutex_unlock(&p->mu);
        if (!more) {
            int t = idle_timeout_ms(p->o.heartbeat_s);
            uint64_t dl = pub_next_deadline(p);
            if (dl != UINT64_MAX)
                t = dl <= now ? 0 : (dl - now < (uint64_t)t ? (int)(dl - now) + 1 : t);
            io_wait(p->conn, p->efd, t);
            pthread_mutex_lock(&p->mu);
            p->idle = false;
            pthread_mutex_unlock(&p->mu);
        }
    }
    return 0;
}

/* Waits while disconnected: settles expired records, wakes for stop; at most ms. */
static void pub_wait_down(tb_amqp_pub *p, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop;
        p->tail_seen = p->tail;
        pthread_mutex_unlock(&p->mu);
        uint64_t now = now_ms();
        pub_expire(p, now);
        pub_advance(p, true);
        if (stop || now >= end)
            return;
        uint64_t dl = pub_next_deadline(p);
        uint64_t until = dl < end ? dl : end;
        io_wait(NULL, p->efd, until <= now ? 0 : (int)(until - now) + 1);
    }
}

static void *pub_main(void *arg)
{
    tb_amqp_pub *p = arg;
    io_owner = p;
    char why[512];
    int backoff = p->o.reconnect_min_ms;
    uint64_t down_since = 0;
    unsigned failures = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        if (p->conn == NULL) {
            why[0] = '\0';
            if (pub_connect(p, why, sizeof why) != 0) {
                tb__link_down(&p->link, why);
                if (failures++ == 0)
                    log_conn(TB_LOG_WARN, "publisher", p->exchange, &p->tgt,
                             atomic_load(&p->connects), -1, why,
                             "amqp publisher cannot connect; retrying with backoff");
                pub_wait_down(p, backoff);
                backoff = next_backoff(backoff, p->o.reconnect_max_ms);
                continue;
            }
            tb__link_up(&p->link);
            unsigned n = atomic_fetch_add(&p->connects, 1) + 1;
            if (n == 1)
                log_conn(TB_LOG_INFO, "publisher", p->exchange, &p->tgt, n, -1, NULL,
                         "amqp publisher connected");
            else
                log_conn(TB_LOG_WARN, "publisher", p->exchange, &p->tgt, n,
                         down_since ? (long)(now_ms() - down_since) : -1, NULL,
                         "amqp publisher reconnected; re-sending unconfirmed publishes");
            backoff = p->o.reconnect_min_ms;
            failures = 0;
            continue;
        }
        why[0] = '\0';
        if (pub_step(p, why, sizeof why) != 0) {
            log_conn(TB_LOG_WARN, "publisher", p->exchange, &p->tgt, atomic_load(&p->connects), -1,
                     why, "amqp publisher lost its connection");
            tb__link_down(&p->link, why);
            amqp_destroy_connection(p->conn);
            p->conn = NULL;
            down_since = now_ms();
            failures = 1;
        }
    }
    /* shutdown: take what already arrived, then fail the rest */
    if (p->conn) {
        for (int i = 0; i < READ_BATCH; i++) {
            amqp_frame_t f;
            if (read_frame_now(p->conn, &f) != AMQP_STATUS_OK ||
                pub_on_frame(p, &f, why, sizeof why) != 0)
                break;
        }
        conn_close(p->conn);
        p->conn = NULL;
    }
    pthread_mutex_lock(&p->mu);
    uint64_t tail = p->tail;
    pthread_mutex_unlock(&p->mu);
    for (uint64_t a = p->head; a < tail; a++) {
        pub_rec *r = p->ring[a % p->cap];
        if (r)
            pub_settle(p, a, r, TB_ESTATE);
    }
    pthread_mutex_lock(&p->mu);
    p->head = tail;
    pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

tb_amqp_pub *tb_amqp_pub_new(const tb_amqp_opts *o, tb_error *err)
{
    if (o == NULL)
        return tb_error_set(err, TB_EINVAL, "amqp publisher: no options"), NULL;
    tb_amqp_pub *p = calloc(1, sizeof *p);
    if (p == NULL)
        return tb_error_set(err, TB_ENOMEM, "amqp publisher: out of memory"), NULL;
    p->efd = -1;
    p->o = *o;
    apply_conn_defaults(&p->o);
    if (target_parse(&p->tgt, o->url, err) != 0) {
        free(p);
        return NULL;
    }
    if (strlen(p->o.exchange) > SHORTSTR_MAX) {
        tb_error_set(err, TB_EINVAL, "amqp publisher: exchange name too long");
        goto fail;
    }
    p->exchange = strdup(p->o.exchange);
    p->o.exchange = p->exchange;
    p->o.url = NULL;
    p->cap = p->o.window;
    p->ring = calloc(p->cap, sizeof *p->ring);
    p->tag_abs = calloc(p->cap, sizeof *p->tag_abs);
    if (p->exchange == NULL || p->ring == NULL || p->tag_abs == NULL) {
        tb_error_set(err, TB_ENOMEM, "amqp publisher: out of memory");
        goto fail;
    }
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        tb_error_set(err, TB_EIO, "amqp publisher: eventfd: %s", strerror(errno));
        goto fail;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        tb_error_set(err, TB_ENOMEM, "amqp publisher: mutex");
        goto fail;
    }
    if (cond_init_mono(&p->room) != 0) {
        pthread_mutex_destroy(&p->mu);
        tb_error_set(err, TB_ENOMEM, "amqp publisher: condition");
        goto fail;
    }
    atomic_init(&p->connects, 0);
    tb__link_init(&p->link);
    if (pthread_create(&p->thread, NULL, pub_main, p) != 0) {
        tb__link_destroy(&p->link);
        pthread_cond_destroy(&p->room);
        pthread_mutex_destroy(&p->mu);
        tb_error_set(err, TB_ENOMEM, "amqp publisher: cannot start its thread");
        goto fail;
    }
    return p;
fail:
    if (p->efd >= 0)
        close(p->efd);
    free(p->ring);
    free(p->tag_abs);
    free(p->exchange);
    target_free(&p->tgt);
    free(p);
    return NULL;
}

int tb_amqp_publish(tb_amqp_pub *p, const char *exchange, const char *routing_key,
                    const tb_amqp_props *props, const void *body, size_t len, tb_amqp_confirm_fn cb,
                    void *user)
{
    if (p == NULL || routing_key == NULL || (body == NULL && len > 0))
        return TB_EINVAL;
    const char *ex = exchange ? exchange : p->exchange;
    if (strlen(ex) > SHORTSTR_MAX || strlen(routing_key) > SHORTSTR_MAX)
        return TB_EINVAL;
    uint64_t deadline = now_ms() + (uint64_t)p->o.publish_timeout_ms;
    pub_rec *r = rec_new(ex, routing_key, props, body, len);
    if (r == NULL)
        return TB_ENOMEM;
    r->deadline = deadline;
    r->cb = cb;
    r->user = user;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->tail - p->head >= p->cap) {
        if (io_owner == p) { /* called from a confirm callback: waiting would deadlock */
            pthread_mutex_unlock(&p->mu);
            free(r);
            return TB_ESTATE;
        }
        p->waiting++;
        int w = cond_wait_until(&p->room, &p->mu, deadline);
        p->waiting--;
        if (w == ETIMEDOUT && p->tail - p->head >= p->cap) {
            pthread_mutex_unlock(&p->mu);
            free(r);
            return TB_ETIMEDOUT;
        }
    }
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        free(r);
        return TB_ESTATE;
    }
    p->ring[p->tail % p->cap] = r;
    p->tail++;
    bool wake = p->idle;
    p->idle = false;
    pthread_mutex_unlock(&p->mu);
    if (wake)
        efd_signal(p->efd);
    return 0;
}

int tb_amqp_pub_flush(tb_amqp_pub *p, int timeout_ms)
{
    if (p == NULL)
        return 0;
    uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    p->flushing++;
    while (p->head != p->tail) {
        if (io_owner == p || cond_wait_until(&p->room, &p->mu, deadline) == ETIMEDOUT) {
            rc = p->head == p->tail ? 0 : TB_ETIMEDOUT;
            break;
        }
    }
    p->flushing--;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void tb_amqp_pub_free(tb_amqp_pub *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->mu);
    efd_signal(p->efd);
    pthread_join(p->thread, NULL);
    tb__link_destroy(&p->link);
    pthread_cond_destroy(&p->room);
    pthread_mutex_destroy(&p->mu);
    close(p->efd);
    known_clear(&p->known);
    free(p->known.names);
    free(p->ring);
    free(p->tag_abs);
    free(p->exchange);
    target_free(&p->tgt);
    free(p);
}

unsigned tb_amqp_pub_connects(const tb_amqp_pub *p)
{
    return p ? atomic_load(&((tb_amqp_pub *)p)->connects) : 0;
}

bool tb_amqp_pub_up(tb_amqp_pub *p, char *why, size_t cap)
{
    return p == NULL || tb__link_get(&p->link, "publisher", why, cap);
}

/* ================================================================ consumer ==== */

typedef struct repub_pending {
    uint64_t tag; /* channel 2 confirm tag */
    cdeliv *w;
    bool returned;
} repub_pending;

typedef struct topo {
    char *exchange, *queue;
    char **bindings;
    size_t n_bindings;
    int max_attempts, retry_base_ms, retry_max_ms;
    bool dlq;
} topo;

struct tb_amqp_consumer {
    amqp_target tgt;
    tb_amqp_opts o;
    topo t;
    unsigned prefetch;
    tb_amqp_deliver_fn fn;
    void *user;
    pthread_t thread;
    pthread_mutex_t mu;
    int efd;
    /* under mu */
    cdeliv *sq_head, *sq_tail;
    bool stop;
    bool idle; /* the I/O thread is (about to be) in poll(): signal the eventfd */
    atomic_uint connects;
    tb__link link; /* for readiness */
    /* I/O thread only (and consumer_new before the thread starts) */
    amqp_connection_state_t conn;
    unsigned gen;
    char ctag[SHORTSTR_MAX + 1];
    dlink live; /* deliveries not yet freed, newest first (so in delivery-tag order) */
    repub_pending *rp;
    size_t rp_n, rp_cap;
    uint64_t rp_next_tag;
    bool need_redeclare, blocked;
    unsigned char *enc;
    size_t enc_cap;
};

static void topo_free(topo *t)
{
    free(t->exchange);
    free(t->queue);
    for (size_t i = 0; i < t->n_bindings; i++)
        free(t->bindings[i]);
    free(t->bindings);
    memset(t, 0, sizeof *t);
}

static int topo_init(topo *t, const tb_amqp_consumer_opts *o, const tb_amqp_opts *conn,
                     tb_error *err)
{
    memset(t, 0, sizeof *t);
    if (o->queue == NULL || o->queue[0] == '\0')
        return tb_error_set(err, TB_EINVAL, "amqp consumer: no queue name");
    if (strlen(o->queue) > QUEUE_NAME_MAX)
        return tb_error_set(err, TB_EINVAL, "amqp consumer: queue name longer than %d bytes",
                            QUEUE_NAME_MAX);
    if (strlen(conn->exchange) > SHORTSTR_MAX)
        return tb_error_set(err, TB_EINVAL, "amqp consumer: exchange name too long");
    if (o->max_attempts < 0 || o->max_attempts > MAX_ATTEMPTS_LIMIT)
        return tb_error_set(err, TB_EINVAL, "amqp consumer: max_attempts must be 1..%d",
                            MAX_ATTEMPTS_LIMIT);
    if (o->n_bindings && o->bindings == NULL)
        return tb_error_set(err, TB_EINVAL, "amqp consumer: n_bindings without bindings");
    t->max_attempts = o->max_attempts ? o->max_attempts : 5;
    t->retry_base_ms = o->retry_base_ms > 0 ? o->retry_base_ms : 1000;
    t->retry_max_ms = o->retry_max_ms > 0 ? o->retry_max_ms : 60000;
    if (t->retry_max_ms < t->retry_base_ms)
        t->retry_max_ms = t->retry_base_ms;
    t->dlq = o->dlq;
    t->exchange = strdup(conn->exchange);
    t->queue = strdup(o->queue);
    t->bindings = o->n_bindings ? calloc(o->n_bindings, sizeof *t->bindings) : NULL;
    if (t->exchange == NULL || t->queue == NULL || (o->n_bindings && t->bindings == NULL))
        goto oom;
    for (size_t i = 0; i < o->n_bindings; i++) {
        if (o->bindings[i] == NULL || strlen(o->bindings[i]) > SHORTSTR_MAX) {
            topo_free(t);
            return tb_error_set(err, TB_EINVAL, "amqp consumer: bad binding #%zu", i);
        }
        t->bindings[i] = strdup(o->bindings[i]);
        t->n_bindings = i + 1;
        if (t->bindings[i] == NULL)
            goto oom;
    }
    return 0;
oom:
    topo_free(t);
    return tb_error_set(err, TB_ENOMEM, "amqp consumer: out of memory");
}

static int64_t retry_ttl(const topo *t, int n)
{
    int64_t ttl = t->retry_base_ms;
    for (int i = 1; i < n && ttl < t->retry_max_ms; i++)
        ttl *= 2;
    return ttl > t->retry_max_ms ? t->retry_max_ms : ttl;
}

/* Declares exchange, queue, bindings, retry queues and DLQ on channel ch. */
static int topo_declare(amqp_connection_state_t conn, amqp_channel_t ch, const topo *t, char *why,
                        size_t cap, bool *permanent)
{
    int rc;
    if (t->exchange[0]) {
        amqp_exchange_declare(conn, ch, amqp_cstring_bytes(t->exchange),
                              amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
        if ((rc = rpc_check(conn, ch, "exchange.declare", why, cap, permanent, NULL)) != 0)
            return rc;
    }
    amqp_queue_declare(conn, ch, amqp_cstring_bytes(t->queue), 0, 1, 0, 0, amqp_empty_table);
    if ((rc = rpc_check(conn, ch, "queue.declare", why, cap, permanent, NULL)) != 0)
        return rc;
    for (size_t i = 0; i < t->n_bindings && t->exchange[0]; i++) {
        amqp_queue_bind(conn, ch, amqp_cstring_bytes(t->queue), amqp_cstring_bytes(t->exchange),
                        amqp_cstring_bytes(t->bindings[i]), amqp_empty_table);
        if ((rc = rpc_check(conn, ch, "queue.bind", why, cap, permanent, NULL)) != 0)
            return rc;
    }
    char name[SHORTSTR_MAX + 1];
    for (int n = 1; n < t->max_attempts; n++) {
        snprintf(name, sizeof name, "%s.retry.%d", t->queue, n);
        /* no x-message-ttl: each copy carries its delay (expiration), so changing the retry
         * delays of a service never makes this declaration conflict with the queue's */
        amqp_table_entry_t e[2] = {
            entry_str("x-dead-letter-exchange", ""),
            entry_str("x-dead-letter-routing-key", t->queue),
        };
        amqp_table_t args = {2, e};
        amqp_queue_declare(conn, ch, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
        if ((rc = rpc_check(conn, ch, "queue.declare (retry)", why, cap, permanent, NULL)) != 0)
            return rc;
    }
    if (t->dlq) {
        snprintf(name, sizeof name, "%s.dlq", t->queue);
        amqp_queue_declare(conn, ch, amqp_cstring_bytes(name), 0, 1, 0, 0, amqp_empty_table);
        if ((rc = rpc_check(conn, ch, "queue.declare (dlq)", why, cap, permanent, NULL)) != 0)
            return rc;
    }
    return 0;
}

static cdeliv *link_deliv(dlink *l)
{
    return (cdeliv *)(void *)((char *)l - offsetof(cdeliv, link));
}

static void live_link(tb_amqp_consumer *c, cdeliv *w)
{
    w->link.prev = &c->live;
    w->link.next = c->live.next;
    c->live.next->prev = &w->link;
    c->live.next = &w->link;
}

/* Unlinks (when linked) and frees. */
static void deliv_free(cdeliv *w)
{
    if (w->link.next) {
        w->link.prev->next = w->link.next;
        w->link.next->prev = w->link.prev;
    }
    free(w->reason);
    free(w);
}

static int cons_connect(tb_amqp_consumer *c, char *why, size_t cap, bool *permanent)
{
    amqp_connection_state_t conn;
    int rc = conn_open(&c->tgt, c->o.heartbeat_s, &conn, why, cap, permanent);
    if (rc != 0)
        return rc;
    if ((rc = chan_open(conn, 1, why, cap)) != 0 || (rc = chan_open(conn, 2, why, cap)) != 0)
        goto fail;
    if ((rc = topo_declare(conn, 1, &c->t, why, cap, permanent)) != 0)
        goto fail;
    amqp_confirm_select(conn, 2);
    if ((rc = rpc_check(conn, 2, "confirm.select", why, cap, NULL, NULL)) != 0)
        goto fail;
    amqp_basic_qos(conn, 1, 0, (uint16_t)c->prefetch, 0);
    if ((rc = rpc_check(conn, 1, "basic.qos", why, cap, permanent, NULL)) != 0)
        goto fail;
    amqp_basic_consume_ok_t *ok = amqp_basic_consume(conn, 1, amqp_cstring_bytes(c->t.queue),
                                                     amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if ((rc = rpc_check(conn, 1, "basic.consume", why, cap, permanent, NULL)) != 0)
        goto fail;
    bytes_to_buf(ok ? ok->consumer_tag : amqp_empty_bytes, c->ctag, sizeof c->ctag);
    c->conn = conn;
    c->gen++;
    c->rp_n = 0;
    c->rp_next_tag = 0;
    c->need_redeclare = false;
    c->blocked = false;
    return 0;
fail:
    amqp_destroy_connection(conn);
    return rc;
}

static void rp_add(tb_amqp_consumer *c, uint64_t tag, cdeliv *w)
{
    if (c->rp_n == c->rp_cap) {
        size_t nc = c->rp_cap ? c->rp_cap * 2 : 64;
        repub_pending *n = realloc(c->rp, nc * sizeof *n);
        if (n == NULL) { /* cannot track it: leave the delivery unacked (redelivered later) */
            tb_log_error(NULL, "amqp consumer %s: out of memory tracking a republish", c->t.queue);
            return;
        }
        c->rp = n;
        c->rp_cap = nc;
    }
    c->rp[c->rp_n++] = (repub_pending){tag, w, false};
}

/* A republish was confirmed (or nacked): ack (or requeue) the original. */
static int rp_complete(tb_amqp_consumer *c, repub_pending *e, bool ok)
{
    cdeliv *w = e->w;
    int st;
    if (ok && !e->returned) {
        st = amqp_basic_ack(c->conn, 1, w->tag, 0);
    } else {
        tb_log_warn(NULL,
                    "amqp consumer %s: the retry/dead-letter copy of %s was %s; the message "
                    "goes back to the queue",
                    c->t.queue, w->d.message_id ? w->d.message_id : "(no id)",
                    e->returned ? "unroutable (queue missing: re-declaring)" : "nacked");
        if (e->returned)
            c->need_redeclare = true;
        st = amqp_basic_reject(c->conn, 1, w->tag, 1);
    }
    deliv_free(w);
    e->w = NULL;
    return st == AMQP_STATUS_OK ? 0 : TB_ECONN;
}

static int rp_confirm(tb_amqp_consumer *c, uint64_t tag, bool multiple, bool ok)
{
    int rc = 0;
    size_t keep = 0;
    for (size_t i = 0; i < c->rp_n; i++) {
        repub_pending *e = &c->rp[i];
        bool hit = multiple ? e->tag <= tag : e->tag == tag;
        if (hit && rc == 0)
            rc = rp_complete(c, e, ok);
        else if (hit)
            deliv_free(e->w);
        else
            c->rp[keep++] = *e;
    }
    c->rp_n = keep;
    return rc;
}

static int cons_settle_one(tb_amqp_consumer *c, cdeliv *w)
{
    tb_amqp_action a = w->action;
    const char *reason = w->reason;
    if (a == TB_AMQP_RETRY && w->d.attempt >= c->t.max_attempts) {
        a = TB_AMQP_DEAD;
        if (reason == NULL)
            reason = "retries exhausted";
    }
    if (a == TB_AMQP_DEAD && !c->t.dlq) {
        tb_log_warn(NULL, "amqp consumer %s: message %s (%s, attempt %d) dropped: %s", c->t.queue,
                    w->d.message_id ? w->d.message_id : "(no id)",
                    w->d.routing_key ? w->d.routing_key : "", w->d.attempt,
                    reason ? reason : "dead");
        a = TB_AMQP_ACK;
    }
    if (a != TB_AMQP_RETRY && a != TB_AMQP_DEAD) {
        int st = amqp_basic_ack(c->conn, 1, w->tag, 0);
        deliv_free(w);
        return st == AMQP_STATUS_OK ? 0 : TB_ECONN;
    }
    char rk[SHORTSTR_MAX + 1];
    repub_spec s = {rk, 0, false, NULL, NULL, 0};
    if (a == TB_AMQP_RETRY) {
        snprintf(rk, sizeof rk, "%s.retry.%d", c->t.queue, w->d.attempt);
        s.attempt = w->d.attempt + 1;
        s.expire_ms = retry_ttl(&c->t, w->d.attempt);
    } else {
        snprintf(rk, sizeof rk, "%s.dlq", c->t.queue);
        s.attempt = w->d.attempt;
        s.dead = true;
        s.reason = reason ? reason : "dead";
        s.queue = c->t.queue;
    }
    int st = republish(c->conn, 2, w, &s);
    if (st != AMQP_STATUS_OK) {
        deliv_free(w); /* not acked: the broker redelivers it after the reconnect */
        return TB_ECONN;
    }
    rp_add(c, ++c->rp_next_tag, w);
    return 0;
}

/* Sends the acks of a batch: one basic.ack with multiple=1 for the longest run of the oldest
 * outstanding deliveries that are all in the batch (the live list is in delivery-tag order,
 * oldest last), then the others one by one. Frees them all. */
static int cons_send_acks(tb_amqp_consumer *c, cdeliv *acks)
{
    uint64_t upto = 0;
    size_t run = 0;
    for (dlink *l = c->live.prev; l != &c->live; l = l->prev) {
        cdeliv *w = link_deliv(l);
        if (w->gen != c->gen)
            continue; /* older connection: the broker forgot these tags */
        if (!w->acking)
            break;
        upto = w->tag;
        run++;
    }
    int st = AMQP_STATUS_OK;
    if (run >= 2)
        st = amqp_basic_ack(c->conn, 1, upto, 1);
    else
        upto = 0;
    while (acks) {
        cdeliv *next = acks->qnext;
        if (st == AMQP_STATUS_OK && acks->tag > upto)
            st = amqp_basic_ack(c->conn, 1, acks->tag, 0);
        deliv_free(acks);
        acks = next;
    }
    return st == AMQP_STATUS_OK ? 0 : TB_ECONN;
}

/* Executes the queued settles; old-generation ones (or all, when disconnected) are only freed. */
static int cons_do_settles(tb_amqp_consumer *c)
{
    pthread_mutex_lock(&c->mu);
    cdeliv *w = c->sq_head;
    c->sq_head = c->sq_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    if (w == NULL)
        return 0;
    bool corked = c->conn && w->qnext;
    if (corked)
        sock_cork(c->conn, true);
    int rc = 0;
    cdeliv *acks = NULL, **acks_tail = &acks;
    while (w) {
        cdeliv *next = w->qnext;
        if (c->conn == NULL || w->gen != c->gen || rc != 0) {
            deliv_free(w);
        } else if (w->action == TB_AMQP_ACK) {
            w->acking = true;
            w->qnext = NULL;
            *acks_tail = w;
            acks_tail = &w->qnext;
        } else {
            rc = cons_settle_one(c, w);
        }
        w = next;
    }
    if (acks && rc == 0) {
        rc = cons_send_acks(c, acks);
    } else {
        while (acks) {
            cdeliv *next = acks->qnext;
            deliv_free(acks);
            acks = next;
        }
    }
    if (corked && c->conn)
        sock_cork(c->conn, false);
    return rc;
}

static int cons_on_deliver(tb_amqp_consumer *c, const amqp_frame_t *f, bool deliver, char *why,
                           size_t cap)
{
    const amqp_basic_deliver_t *m = f->payload.method.decoded;
    uint64_t tag = m->delivery_tag;
    bool redelivered = m->redelivered != 0;
    char rk[SHORTSTR_MAX + 1];
    bytes_to_buf(m->routing_key, rk, sizeof rk);
    amqp_message_t msg;
    amqp_rpc_reply_t rr = amqp_read_message(c->conn, f->channel, &msg, 0);
    if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
        int rc = reply_err(rr, "read delivery", why, cap, NULL);
        close_ok(c->conn, f->channel, rr);
        return rc ? rc : TB_ECONN;
    }
    if (!deliver || f->channel != 1) { /* shutting down: left unacked, the broker requeues it */
        amqp_destroy_message(&msg);
        return 0;
    }
    cdeliv *w = deliv_build(tag, redelivered, amqp_cstring_bytes(rk), &msg, c->enc, c->enc_cap);
    amqp_destroy_message(&msg);
    if (w == NULL) {
        tb_log_error(NULL, "amqp consumer %s: out of memory; delivery requeued", c->t.queue);
        return amqp_basic_reject(c->conn, 1, tag, 1) == AMQP_STATUS_OK ? 0 : TB_ECONN;
    }
    w->owner = c;
    w->gen = c->gen;
    w->acking = false;
    w->reason = NULL;
    w->qnext = NULL;
    live_link(c, w);
    c->fn(c->user, &w->d);
    return 0;
}

static int cons_on_return(tb_amqp_consumer *c, const amqp_frame_t *f, char *why, size_t cap)
{
    const amqp_basic_return_t *m = f->payload.method.decoded;
    char rk[SHORTSTR_MAX + 1];
    bytes_to_buf(m->routing_key, rk, sizeof rk);
    amqp_message_t msg;
    amqp_rpc_reply_t rr = amqp_read_message(c->conn, f->channel, &msg, 0);
    if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
        int rc = reply_err(rr, "read returned message", why, cap, NULL);
        close_ok(c->conn, f->channel, rr);
        return rc ? rc : TB_ECONN;
    }
    bool has_mid = (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0;
    for (size_t i = 0; i < c->rp_n; i++) {
        repub_pending *e = &c->rp[i];
        if (e->returned || e->w->d.len != msg.body.len)
            continue;
        bool w_mid = e->w->d.message_id != NULL;
        if (w_mid != has_mid ||
            (has_mid && !bytes_is(msg.properties.message_id, e->w->d.message_id)))
            continue;
        char exp[SHORTSTR_MAX + 1];
        if (e->w->action == TB_AMQP_RETRY && e->w->d.attempt < c->t.max_attempts)
            snprintf(exp, sizeof exp, "%s.retry.%d", c->t.queue, e->w->d.attempt);
        else
            snprintf(exp, sizeof exp, "%s.dlq", c->t.queue);
        if (strcmp(exp, rk) != 0)
            continue;
        e->returned = true;
        break;
    }
    amqp_destroy_message(&msg);
    return 0;
}

static int cons_on_frame(tb_amqp_consumer *c, amqp_frame_t *f, bool deliver, char *why, size_t cap)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (f->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: return cons_on_deliver(c, f, deliver, why, cap);
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f->payload.method.decoded;
        return f->channel == 2 ? rp_confirm(c, a->delivery_tag, a->multiple, true) : 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = f->payload.method.decoded;
        return f->channel == 2 ? rp_confirm(c, a->delivery_tag, a->multiple, false) : 0;
    }
    case AMQP_BASIC_RETURN_METHOD: return cons_on_return(c, f, why, cap);
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(why, cap, "the broker cancelled the consumer (queue deleted?)");
        return TB_ENOTFOUND;
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f->payload.method.decoded;
        snprintf(why, cap, "channel %u closed by the broker: %u %.*s", f->channel, m->reply_code,
                 (int)(m->reply_text.len > 200 ? 200 : m->reply_text.len),
                 m->reply_text.len ? (const char *)m->reply_text.bytes : "");
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(c->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        return TB_EIO;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = f->payload.method.decoded;
        snprintf(why, cap, "connection closed by the broker: %u %.*s", m->reply_code,
                 (int)(m->reply_text.len > 200 ? 200 : m->reply_text.len),
                 m->reply_text.len ? (const char *)m->reply_text.bytes : "");
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(c->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        return TB_ECONN;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD:
        c->blocked = true;
        tb__link_blocked(&c->link, true);
        log_conn(TB_LOG_WARN, "consumer", c->t.queue, &c->tgt, atomic_load(&c->connects), -1, NULL,
                 "amqp consumer blocked by the broker (resource alarm)");
        return 0;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        c->blocked = false;
        tb__link_blocked(&c->link, false);
        return 0;
    default: return 0;
    }
}

static int cons_read(tb_amqp_consumer *c, bool deliver, int *nread, char *why, size_t cap)
{
    *nread = 0;
    for (;;) {
        amqp_frame_t f;
        int st = read_frame_now(c->conn, &f);
        if (st == AMQP_STATUS_TIMEOUT)
            break;
        if (st != AMQP_STATUS_OK) {
            snprintf(why, cap, "%s", amqp_error_string2(st));
            return TB_ECONN;
        }
        int rc = cons_on_frame(c, &f, deliver, why, cap);
        if (rc != 0)
            return rc;
        if (++*nread >= READ_BATCH)
            break;
    }
    amqp_maybe_release_buffers(c->conn);
    return 0;
}

static int cons_step(tb_amqp_consumer *c, char *why, size_t cap)
{
    int rc;
    if (c->need_redeclare) {
        c->need_redeclare = false;
        if ((rc = topo_declare(c->conn, 1, &c->t, why, cap, NULL)) != 0)
            return rc;
    }
    if ((rc = cons_do_settles(c)) != 0) {
        snprintf(why, cap, "sending a settle failed");
        return rc;
    }
    int nread;
    if ((rc = cons_read(c, true, &nread, why, cap)) != 0)
        return rc;
    if (nread == 0 && !buffered(c->conn)) {
        pthread_mutex_lock(&c->mu);
        bool more = c->sq_head != NULL || c->stop;
        c->idle = !more;
        pthread_mutex_unlock(&c->mu);
        if (!more) {
            io_wait(c->conn, c->efd, idle_timeout_ms(c->o.heartbeat_s));
            pthread_mutex_lock(&c->mu);
            c->idle = false;
            pthread_mutex_unlock(&c->mu);
        }
    }
    return 0;
}

static void cons_lost(tb_amqp_consumer *c)
{
    for (size_t i = 0; i < c->rp_n; i++)
        deliv_free(c->rp[i].w); /* not acked: redelivered after the reconnect */
    c->rp_n = 0;
    amqp_destroy_connection(c->conn);
    c->conn = NULL;
}

static bool cons_stopping(tb_amqp_consumer *c)
{
    pthread_mutex_lock(&c->mu);
    bool s = c->stop;
    pthread_mutex_unlock(&c->mu);
    return s;
}

static void cons_shutdown(tb_amqp_consumer *c)
{
    char why[512];
    if (c->conn) {
        amqp_basic_cancel(c->conn, 1, amqp_cstring_bytes(c->ctag));
        int rc = rpc_check(c->conn, 1, "basic.cancel", why, sizeof why, NULL, NULL);
        /* the settles already requested, and the confirms of their copies (bounded) */
        uint64_t end = now_ms() + SHUTDOWN_DRAIN_MS;
        while (rc == 0 && now_ms() < end) {
            if ((rc = cons_do_settles(c)) != 0)
                break;
            pthread_mutex_lock(&c->mu);
            bool queued = c->sq_head != NULL;
            pthread_mutex_unlock(&c->mu);
            if (c->rp_n == 0 && !queued)
                break;
            int nread;
            if ((rc = cons_read(c, false, &nread, why, sizeof why)) != 0)
                break;
            if (nread == 0 && !buffered(c->conn))
                io_wait(c->conn, c->efd, 50);
        }
        if (rc == 0)
            conn_close(c->conn);
        else
            amqp_destroy_connection(c->conn);
        c->conn = NULL;
    }
    c->rp_n = 0;
    pthread_mutex_lock(&c->mu);
    c->sq_head = c->sq_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (c->live.next != &c->live)
        deliv_free(link_deliv(c->live.next));
}

static void *cons_main(void *arg)
{
    tb_amqp_consumer *c = arg;
    io_owner = c;
    char why[512];
    int backoff = c->o.reconnect_min_ms;
    uint64_t down_since = 0;
    unsigned failures = 0;
    while (!cons_stopping(c)) {
        if (c->conn == NULL) {
            cons_do_settles(c); /* old deliveries: free only */
            why[0] = '\0';
            bool permanent = false;
            if (cons_connect(c, why, sizeof why, &permanent) != 0) {
                tb__link_down(&c->link, why);
                if (failures++ == 0 || permanent)
                    log_conn(permanent ? TB_LOG_ERROR : TB_LOG_WARN, "consumer", c->t.queue,
                             &c->tgt, atomic_load(&c->connects), -1, why,
                             "amqp consumer cannot connect; retrying with backoff");
                io_wait(NULL, c->efd, backoff);
                backoff = next_backoff(backoff, c->o.reconnect_max_ms);
                continue;
            }
            tb__link_up(&c->link);
            unsigned n = atomic_fetch_add(&c->connects, 1) + 1;
            log_conn(TB_LOG_WARN, "consumer", c->t.queue, &c->tgt, n, (long)(now_ms() - down_since),
                     NULL, "amqp consumer reconnected; unacked deliveries will be redelivered");
            backoff = c->o.reconnect_min_ms;
            failures = 0;
            continue;
        }
        why[0] = '\0';
        if (cons_step(c, why, sizeof why) != 0) {
            log_conn(TB_LOG_WARN, "consumer", c->t.queue, &c->tgt, atomic_load(&c->connects), -1,
                     why, "amqp consumer lost its connection");
            tb__link_down(&c->link, why);
            cons_lost(c);
            down_since = now_ms();
            failures = 1;
        }
    }
    cons_shutdown(c);
    return NULL;
}

static void consumer_destroy(tb_amqp_consumer *c)
{
    tb__link_destroy(&c->link);
    if (c->efd >= 0)
        close(c->efd);
    free(c->rp);
    free(c->enc);
    topo_free(&c->t);
    target_free(&c->tgt);
    free(c);
}

tb_amqp_consumer *tb_amqp_consumer_new(const tb_amqp_consumer_opts *o, tb_amqp_deliver_fn fn,
                                       void *user, tb_error *err)
{
    if (o == NULL || fn == NULL)
        return tb_error_set(err, TB_EINVAL, "amqp consumer: no options or callback"), NULL;
    tb_amqp_consumer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return tb_error_set(err, TB_ENOMEM, "amqp consumer: out of memory"), NULL;
    tb__link_init(&c->link);
    c->efd = -1;
    c->live.next = c->live.prev = &c->live;
    c->o = o->conn;
    apply_conn_defaults(&c->o);
    if (target_parse(&c->tgt, o->conn.url, err) != 0) {
        tb__link_destroy(&c->link);
        free(c);
        return NULL;
    }
    if (topo_init(&c->t, o, &c->o, err) != 0) {
        consumer_destroy(c);
        return NULL;
    }
    c->o.url = NULL;
    c->o.exchange = c->t.exchange;
    c->prefetch = o->prefetch ? (o->prefetch > 65535 ? 65535 : o->prefetch) : 1000;
    c->fn = fn;
    c->user = user;
    c->enc_cap = AMQP_DEFAULT_FRAME_SIZE;
    c->enc = malloc(c->enc_cap);
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->enc == NULL || c->efd < 0) {
        tb_error_set(err, TB_ENOMEM, "amqp consumer: out of memory");
        consumer_destroy(c);
        return NULL;
    }
    atomic_init(&c->connects, 0);
    /* first connect here, bounded: a consumer that cannot reach its broker is an error */
    uint64_t deadline = now_ms() + (uint64_t)c->o.publish_timeout_ms;
    int backoff = c->o.reconnect_min_ms;
    char why[512];
    for (;;) {
        bool permanent = false;
        why[0] = '\0';
        int rc = cons_connect(c, why, sizeof why, &permanent);
        if (rc == 0)
            break;
        uint64_t now = now_ms();
        if (permanent || now + (uint64_t)backoff >= deadline) {
            tb_error_set(err, rc, "amqp consumer %s: %s", c->t.queue, why);
            consumer_destroy(c);
            return NULL;
        }
        sleep_ms(backoff);
        backoff = next_backoff(backoff, c->o.reconnect_max_ms);
    }
    atomic_store(&c->connects, 1);
    tb__link_up(&c->link);
    log_conn(TB_LOG_INFO, "consumer", c->t.queue, &c->tgt, 1, -1, NULL, "amqp consumer connected");
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        conn_close(c->conn);
        tb_error_set(err, TB_ENOMEM, "amqp consumer: mutex");
        consumer_destroy(c);
        return NULL;
    }
    if (pthread_create(&c->thread, NULL, cons_main, c) != 0) {
        conn_close(c->conn);
        pthread_mutex_destroy(&c->mu);
        tb_error_set(err, TB_ENOMEM, "amqp consumer: cannot start its thread");
        consumer_destroy(c);
        return NULL;
    }
    return c;
}

void tb_amqp_settle(tb_amqp_consumer *c, tb_amqp_delivery *d, tb_amqp_action action,
                    const char *reason)
{
    if (d == NULL)
        return;
    cdeliv *w = (cdeliv *)d;
    if (w->owner == NULL)
        return;
    if (c != w->owner) {
        if (c != NULL)
            tb_log_error(NULL, "amqp: tb_amqp_settle with the wrong consumer (ignored)");
        c = w->owner;
    }
    w->action = action;
    w->reason = (action != TB_AMQP_ACK && reason) ? strdup(reason) : NULL;
    w->qnext = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->sq_tail)
        c->sq_tail->qnext = w;
    else
        c->sq_head = w;
    c->sq_tail = w;
    bool wake = c->idle;
    c->idle = false;
    pthread_mutex_unlock(&c->mu);
    if (wake)
        efd_signal(c->efd);
}

void tb_amqp_consumer_free(tb_amqp_consumer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_mutex_unlock(&c->mu);
    efd_signal(c->efd);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    consumer_destroy(c);
}

unsigned tb_amqp_consumer_connects(const tb_amqp_consumer *c)
{
    return c ? atomic_load(&((tb_amqp_consumer *)c)->connects) : 0;
}

bool tb_amqp_consumer_up(tb_amqp_consumer *c, char *why, size_t cap)
{
    return c == NULL || tb__link_get(&c->link, "consumer", why, cap);
}

/* ================================================================ one-shot tools ==== */

typedef struct sync_conn {
    amqp_connection_state_t conn;
    char why[512];
} sync_conn;

static int sync_open(sync_conn *s, const tb_amqp_opts *o, const char *what, tb_error *err)
{
    memset(s, 0, sizeof *s);
    if (o == NULL)
        return tb_error_set(err, TB_EINVAL, "%s: no options", what);
    amqp_target t;
    int rc = target_parse(&t, o->url, err);
    if (rc != 0)
        return rc;
    rc = conn_open(&t, 0, &s->conn, s->why, sizeof s->why, NULL);
    target_free(&t);
    if (rc == 0 && (rc = chan_open(s->conn, 1, s->why, sizeof s->why)) != 0) {
        amqp_destroy_connection(s->conn);
        s->conn = NULL;
    }
    if (rc != 0)
        return tb_error_set(err, rc, "%s: %s", what, s->why);
    return 0;
}

static void sync_close(sync_conn *s)
{
    conn_close(s->conn);
    s->conn = NULL;
}

int tb_amqp_declare(const tb_amqp_consumer_opts *o, tb_error *err)
{
    if (o == NULL)
        return tb_error_set(err, TB_EINVAL, "amqp declare: no options");
    tb_amqp_opts co = o->conn;
    apply_conn_defaults(&co);
    topo t;
    int rc = topo_init(&t, o, &co, err);
    if (rc != 0)
        return rc;
    sync_conn s;
    if ((rc = sync_open(&s, &co, "amqp declare", err)) == 0) {
        if ((rc = topo_declare(s.conn, 1, &t, s.why, sizeof s.why, NULL)) != 0)
            tb_error_set(err, rc, "amqp declare %s: %s", t.queue, s.why);
        sync_close(&s);
    }
    topo_free(&t);
    return rc;
}

long tb_amqp_queue_depth(const tb_amqp_opts *o, const char *queue, tb_error *err)
{
    if (queue == NULL || strlen(queue) > SHORTSTR_MAX)
        return tb_error_set(err, TB_EINVAL, "amqp queue depth: bad queue name");
    sync_conn s;
    int rc = sync_open(&s, o, "amqp queue depth", err);
    if (rc != 0)
        return rc;
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(s.conn, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    long n = 0;
    rc = rpc_check(s.conn, 1, "queue.declare passive", s.why, sizeof s.why, NULL, NULL);
    if (rc != 0)
        n = tb_error_set(err, rc, "amqp queue depth %s: %s", queue, s.why);
    else
        n = ok ? (long)ok->message_count : 0;
    sync_close(&s);
    return n;
}

int tb_amqp_queue_purge_all(const tb_amqp_opts *o, const char *queue, int max_attempts,
                            tb_error *err)
{
    if (queue == NULL || strlen(queue) > QUEUE_NAME_MAX)
        return tb_error_set(err, TB_EINVAL, "amqp purge: bad queue name");
    if (max_attempts <= 0)
        max_attempts = 5;
    if (max_attempts > MAX_ATTEMPTS_LIMIT)
        max_attempts = MAX_ATTEMPTS_LIMIT;
    sync_conn s;
    int rc = sync_open(&s, o, "amqp purge", err);
    if (rc != 0)
        return rc;
    char name[SHORTSTR_MAX + 1];
    for (int i = 0; i <= max_attempts && rc == 0; i++) {
        if (i == 0)
            snprintf(name, sizeof name, "%s", queue);
        else if (i < max_attempts)
            snprintf(name, sizeof name, "%s.retry.%d", queue, i);
        else
            snprintf(name, sizeof name, "%s.dlq", queue);
        amqp_queue_delete(s.conn, 1, amqp_cstring_bytes(name), 0, 0);
        bool chan_only = false;
        rc = rpc_check(s.conn, 1, "queue.delete", s.why, sizeof s.why, NULL, &chan_only);
        if (rc != 0 && chan_only && chan_open(s.conn, 1, s.why, sizeof s.why) == 0)
            rc = 0; /* e.g. a queue that vanished meanwhile: go on with the others */
        if (rc != 0)
            tb_error_set(err, rc, "amqp purge %s: %s", name, s.why);
    }
    sync_close(&s);
    return rc;
}

/* basic.get of the next DLQ message (left unacked); 1 with *out, 0 when empty, <0 on error. */
static int dlq_get(sync_conn *s, const char *dlq, unsigned char *enc, size_t enc_cap, cdeliv **out,
                   tb_error *err)
{
    *out = NULL;
    amqp_rpc_reply_t r = amqp_basic_get(s->conn, 1, amqp_cstring_bytes(dlq), 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        int rc = reply_err(r, "basic.get", s->why, sizeof s->why, NULL);
        close_ok(s->conn, 1, r);
        return tb_error_set(err, rc, "amqp dlq %s: %s", dlq, s->why);
    }
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return 0;
    const amqp_basic_get_ok_t *g = r.reply.decoded;
    uint64_t tag = g->delivery_tag;
    bool redelivered = g->redelivered != 0;
    char rk[SHORTSTR_MAX + 1];
    bytes_to_buf(g->routing_key, rk, sizeof rk);
    amqp_message_t msg;
    amqp_rpc_reply_t rr = amqp_read_message(s->conn, 1, &msg, 0);
    if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
        int rc = reply_err(rr, "read message", s->why, sizeof s->why, NULL);
        close_ok(s->conn, 1, rr);
        return tb_error_set(err, rc ? rc : TB_ECONN, "amqp dlq %s: %s", dlq, s->why);
    }
    cdeliv *w = deliv_build(tag, redelivered, amqp_cstring_bytes(rk), &msg, enc, enc_cap);
    amqp_destroy_message(&msg);
    amqp_maybe_release_buffers(s->conn);
    if (w == NULL)
        return tb_error_set(err, TB_ENOMEM, "amqp dlq %s: out of memory", dlq);
    w->reason = NULL;
    w->owner = NULL;
    *out = w;
    return 1;
}

static tb_amqp_dead dead_view(uint64_t index, const cdeliv *w)
{
    tb_amqp_dead d = {index, &w->d, w->dead_reason, w->dead_at, w->d.routing_key};
    return d;
}

static int dlq_name(const char *queue, char *buf, size_t cap, tb_error *err)
{
    if (queue == NULL || strlen(queue) > QUEUE_NAME_MAX)
        return tb_error_set(err, TB_EINVAL, "amqp dlq: bad queue name");
    snprintf(buf, cap, "%s.dlq", queue);
    return 0;
}

/* The DLQ's name, a frame buffer for dlq_get (*enc) and a connection: 0, or an error with
 * nothing left open. */
static int dlq_open(const tb_amqp_opts *o, const char *queue, const char *what,
                    char dlq[SHORTSTR_MAX + 1], unsigned char **enc, sync_conn *s, tb_error *err)
{
    int rc = dlq_name(queue, dlq, SHORTSTR_MAX + 1, err);
    if (rc != 0)
        return rc;
    if ((*enc = malloc(AMQP_DEFAULT_FRAME_SIZE)) == NULL)
        return tb_error_set(err, TB_ENOMEM, "amqp dlq: out of memory");
    if ((rc = sync_open(s, o, what, err)) != 0) {
        free(*enc);
        *enc = NULL;
    }
    return rc;
}

long tb_amqp_dlq_list(const tb_amqp_opts *o, const char *queue,
                      void (*cb)(void *user, const tb_amqp_dead *d), void *user, tb_error *err)
{
    char dlq[SHORTSTR_MAX + 1];
    unsigned char *enc;
    sync_conn s;
    int rc = dlq_open(o, queue, "amqp dlq list", dlq, &enc, &s, err);
    if (rc != 0)
        return rc;
    long n = 0;
    for (;;) {
        cdeliv *w;
        rc = dlq_get(&s, dlq, enc, AMQP_DEFAULT_FRAME_SIZE, &w, err);
        if (rc <= 0)
            break;
        n++;
        tb_amqp_dead d = dead_view((uint64_t)n, w);
        if (cb)
            cb(user, &d);
        free(w);
    }
    /* closing returns the unacked messages to the DLQ, in their order */
    sync_close(&s);
    free(enc);
    return rc < 0 ? rc : n;
}

/* Waits for the confirm of publish tag on channel 1; 0, TB_ENOTFOUND (returned), TB_EIO
 * (nacked), or a connection error. */
static int sync_wait_confirm(sync_conn *s, uint64_t tag, int timeout_ms)
{
    bool returned = false;
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= end) {
            snprintf(s->why, sizeof s->why, "no confirm within %d ms", timeout_ms);
            return TB_ETIMEDOUT;
        }
        struct timeval tv = ms_tv((int)(end - now));
        amqp_frame_t f;
        int st = amqp_simple_wait_frame_noblock(s->conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT)
            continue;
        if (st != AMQP_STATUS_OK) {
            snprintf(s->why, sizeof s->why, "%s", amqp_error_string2(st));
            return TB_ECONN;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag == tag || (a->multiple && a->delivery_tag > tag))
                return returned ? TB_ENOTFOUND : 0;
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *a = f.payload.method.decoded;
            if (a->delivery_tag == tag || (a->multiple && a->delivery_tag > tag)) {
                snprintf(s->why, sizeof s->why, "the broker nacked the replayed message");
                return TB_EIO;
            }
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            amqp_message_t msg;
            amqp_rpc_reply_t rr = amqp_read_message(s->conn, f.channel, &msg, 0);
            if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
                close_ok(s->conn, f.channel, rr);
                snprintf(s->why, sizeof s->why, "cannot read a returned message");
                return TB_ECONN;
            }
            amqp_destroy_message(&msg);
            snprintf(s->why, sizeof s->why, "the target queue does not exist (unroutable)");
            returned = true;
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_rpc_reply_t rr;
            memset(&rr, 0, sizeof rr);
            rr.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
            rr.reply = f.payload.method;
            reply_err(rr, "replay", s->why, sizeof s->why, NULL);
            close_ok(s->conn, f.channel, rr);
            return TB_ECONN;
        }
        default: break;
        }
    }
}

long tb_amqp_dlq_replay(const tb_amqp_opts *o, const char *queue,
                        bool (*pick)(void *user, const tb_amqp_dead *d), void *user, tb_error *err)
{
    char dlq[SHORTSTR_MAX + 1];
    unsigned char *enc;
    sync_conn s;
    int rc = dlq_open(o, queue, "amqp dlq replay", dlq, &enc, &s, err);
    if (rc != 0)
        return rc;
    amqp_confirm_select(s.conn, 1);
    if ((rc = rpc_check(s.conn, 1, "confirm.select", s.why, sizeof s.why, NULL, NULL)) != 0) {
        tb_error_set(err, rc, "amqp dlq replay: %s", s.why);
        sync_close(&s);
        free(enc);
        return rc;
    }
    tb_amqp_opts oo = *o;
    apply_conn_defaults(&oo);
    long index = 0, moved = 0;
    uint64_t pub_tag = 0;
    for (;;) {
        cdeliv *w;
        rc = dlq_get(&s, dlq, enc, AMQP_DEFAULT_FRAME_SIZE, &w, err);
        if (rc <= 0)
            break;
        index++;
        tb_amqp_dead d = dead_view((uint64_t)index, w);
        if (pick && !pick(user, &d)) {
            free(w); /* stays unacked: back in the DLQ at the end */
            continue;
        }
        repub_spec spec = {queue, 1, false, NULL, NULL, 0};
        int st = republish(s.conn, 1, w, &spec);
        if (st != AMQP_STATUS_OK) {
            rc =
                tb_error_set(err, TB_ECONN, "amqp dlq replay: publish: %s", amqp_error_string2(st));
            free(w);
            break;
        }
        rc = sync_wait_confirm(&s, ++pub_tag, oo.publish_timeout_ms);
        if (rc == 0 && amqp_basic_ack(s.conn, 1, w->tag, 0) != AMQP_STATUS_OK) {
            snprintf(s.why, sizeof s.why, "ack of the DLQ copy failed");
            rc = TB_ECONN;
        }
        free(w);
        if (rc != 0) {
            tb_error_set(err, rc, "amqp dlq replay %s (after %ld moved): %s", dlq, moved, s.why);
            break;
        }
        moved++;
    }
    sync_close(&s);
    free(enc);
    return rc < 0 ? rc : moved;
}
