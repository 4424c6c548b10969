/*
 * The Redis Pub/Sub transport (contract in tb_redis.h). Why it is built this way:
 *
 * - hiredis 0.14 serves for connecting (resolution, connect timeout, TCP_NODELAY) and, in the
 *   subscriber, for parsing. Its own write path uses write(2), which raises SIGPIPE on a socket
 *   Redis has closed, so everything is sent here with send(MSG_NOSIGNAL).
 * - Publisher: commands are formatted straight into one output buffer (no malloc per message,
 *   unlike redisAppendCommand), and the replies, one line each (":<receivers>" or "-<error>"),
 *   are counted by a small scanner. Replies are read without blocking after each write, so a
 *   publisher never waits for Redis to answer; only flush and free wait.
 * - Subscriber: hiredis 0.14 turns a read timeout into a fatal REDIS_ERR_IO on the context, so the
 *   thread poll()s the fd itself and parses the replies with its own RESP2 reader, in place in its
 *   receive buffer: a message reaches the bus as pointers into that buffer (no copy, no malloc),
 *   and the buffer is compacted once per read, not once per reply as hiredis's reader does.
 *   No PING and no UNSUBSCRIBE/SUBSCRIBE churn while subscribed (PROTOCOLS.md, section 7): a dead
 *   peer shows as EOF or a reset, and TCP keepalive covers a silent one.
 */
#include "tb_redis.h"
#include "tb_link.h"

#include "tablium/log.h"

#include <hiredis/hiredis.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define DEFAULT_PORT 6379
#define DEFAULT_MIN_MS 50
#define DEFAULT_MAX_MS 2000
#define DEFAULT_TIMEOUT_MS 2000

#define PUB_BATCH 64           /* commands queued before the publisher writes them out */
#define PUB_LINGER_NS 1000000  /* the flusher writes a partial batch after 1 ms */
#define PUB_IDLE_CHECK_MS 20   /* after this long without I/O, check the socket first */
#define PUB_BIG_BUF (4u << 20) /* output buffers larger than this are released when empty */
#define SUB_POLL_MS 200        /* how soon the subscriber notices a stop request */
#define SUB_RECV 65536         /* subscriber read size (and its buffer's usual capacity) */
#define SUB_MAX_BULK (512u << 20) /* Redis's own limit of a string */
#define SUB_MAX_DEPTH 8        /* nesting of arrays the reader accepts */
#define SUB_MAX_ELEMENTS 1024  /* elements of one array (a message has 3) */
#define SUB_MAX_REPLY (SUB_MAX_BULK + (1u << 20)) /* bytes of one reply, buffered whole */

/* ---- shared helpers ---- */

typedef struct redis_conf {
    char host[256];
    int port;
    int min_ms, max_ms, timeout_ms;
} redis_conf;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    return mono_ns() / 1000000;
}

static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t at_ns)
{
    struct timespec ts = {.tv_sec = at_ns / 1000000000, .tv_nsec = at_ns % 1000000000};
    pthread_cond_timedwait(cv, mu, &ts);
}

static int sync_init(pthread_mutex_t *mu, pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(mu, NULL) != 0) {
        pthread_cond_destroy(cv);
        return -1;
    }
    return 0;
}

static bool host_char_ok(char ch, bool bracketed)
{
    return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_' ||
           (bracketed && (ch == ':' || ch == '%'));
}

/* redis://host[:port][/db]; host may be [IPv6]. The db is accepted and ignored (Pub/Sub channels
 * are global). The URL is not echoed back in errors about credentials. */
static int parse_url(const char *url, redis_conf *cf, tb_error *err)
{
    if (!url || !*url)
        return tb_error_set(err, TB_EINVAL, "redis: url is required (redis://host:port)");
    if (strncmp(url, "rediss://", 9) == 0)
        return tb_error_set(err, TB_EINVAL,
                            "redis: TLS (rediss://) is not supported with hiredis 0.14");
    if (strncmp(url, "redis://", 8) != 0)
        return tb_error_set(err, TB_EINVAL,
                            "redis: url must look like redis://host:port, got \"%.120s\"", url);
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(end - p)))
        return tb_error_set(err, TB_EINVAL,
                            "redis: credentials in the url (user:password@) are not supported");
    const char *hs = p, *he, *port = NULL;
    bool bracketed = *p == '[';
    if (bracketed) {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he)
            return tb_error_set(err, TB_EINVAL, "redis: unterminated [ in url \"%.120s\"", url);
        if (he + 1 < end && he[1] == ':')
            port = he + 2;
        else if (he + 1 != end)
            return tb_error_set(err, TB_EINVAL, "redis: bad text after ] in url \"%.120s\"", url);
    } else {
        he = memchr(p, ':', (size_t)(end - p));
        if (he)
            port = he + 1;
        else
            he = end;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0)
        return tb_error_set(err, TB_EINVAL, "redis: no host in url \"%.120s\"", url);
    if (hl >= sizeof cf->host)
        return tb_error_set(err, TB_EINVAL, "redis: host name too long in url");
    for (size_t i = 0; i < hl; i++)
        if (!host_char_ok(hs[i], bracketed))
            return tb_error_set(err, TB_EINVAL, "redis: bad character in host of url \"%.120s\"",
                                url);
    memcpy(cf->host, hs, hl);
    cf->host[hl] = '\0';
    cf->port = DEFAULT_PORT;
    if (port) {
        long v = 0;
        if (port == end)
            return tb_error_set(err, TB_EINVAL, "redis: empty port in url \"%.120s\"", url);
        for (const char *q = port; q < end; q++) {
            if (!isdigit((unsigned char)*q) || v > 65535)
                return tb_error_set(err, TB_EINVAL, "redis: bad port in url \"%.120s\"", url);
            v = v * 10 + (*q - '0');
        }
        if (v < 1 || v > 65535)
            return tb_error_set(err, TB_EINVAL,
                                "redis: port out of range 1..65535 in url \"%.120s\"", url);
        cf->port = (int)v;
    }
    if (*end == '/') {
        for (const char *q = end + 1; *q; q++)
            if (!isdigit((unsigned char)*q))
                return tb_error_set(err, TB_EINVAL,
                                    "redis: the url path may only be a db number, got \"%.120s\"",
                                    url);
    } else if (*end) {
        return tb_error_set(err, TB_EINVAL,
                            "redis: query or fragment not supported in url \"%.120s\"", url);
    }
    return 0;
}

static int conf_init(redis_conf *cf, const tb_redis_opts *o, tb_error *err)
{
    tb_error_reset(err);
    memset(cf, 0, sizeof *cf);
    if (!o)
        return tb_error_set(err, TB_EINVAL, "redis: options are required");
    int rc = parse_url(o->url, cf, err);
    if (rc)
        return rc;
    if (o->reconnect_min_ms < 0 || o->reconnect_max_ms < 0 || o->timeout_ms < 0)
        return tb_error_set(
            err, TB_EINVAL,
            "redis: reconnect_min_ms, reconnect_max_ms and timeout_ms must be >= 0");
    cf->min_ms = o->reconnect_min_ms ? o->reconnect_min_ms : DEFAULT_MIN_MS;
    cf->max_ms = o->reconnect_max_ms ? o->reconnect_max_ms : DEFAULT_MAX_MS;
    if (cf->max_ms < cf->min_ms)
        cf->max_ms = cf->min_ms;
    cf->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    return 0;
}

static int backoff_next(const redis_conf *cf, int cur)
{
    return cur >= cf->max_ms / 2 ? cf->max_ms : cur * 2;
}

/* A blocking connection whose writes give up after timeout_ms; reads go through poll(). */
static redisContext *conf_connect(const redis_conf *cf, char *why, size_t n)
{
    struct timeval tv = {.tv_sec = cf->timeout_ms / 1000,
                         .tv_usec = (cf->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(cf->host, cf->port, tv);
    if (!c) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, n, "%s", c->errstr[0] ? c->errstr : "connect failed");
        redisFree(c);
        return NULL;
    }
    if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        snprintf(why, n, "setsockopt(SO_SNDTIMEO): %s", strerror(errno));
        redisFree(c);
        return NULL;
    }
    (void)redisEnableKeepAlive(c);
    return c;
}

/* Whole buffer or -1 (errno set; ETIMEDOUT when the send timeout expired). */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            errno = ETIMEDOUT;
        else if (n == 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

/* ---- publisher ---- */

enum { RS_START, RS_LINE, RS_ERROR };

struct tb_redis_pub {
    redis_conf cf;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t wake;
    pthread_t flusher;
    bool stop, flusher_idle;

    redisContext *c; /* NULL while disconnected */
    bool had_reply;  /* this connection has answered at least once */
    char *out;       /* formatted commands not written yet */
    size_t out_len, out_cap;
    unsigned pending; /* commands in out */
    uint64_t unread;  /* commands written whose reply has not been read */
    uint64_t lost;    /* accepted by publish, then dropped with a connection */
    int64_t pending_since_ns;
    int64_t last_io_ms;    /* last time the connection was known to be alive */
    int64_t reply_wait_ms; /* since when replies are awaited without progress */
    int64_t next_attempt_ms;
    int backoff_ms;
    bool down_logged;
    bool retrying; /* a connection failed or was lost: the flusher reconnects by itself */
    tb__link link; /* for readiness */

    int rs_state; /* reply scanner */
    char rs_err[160];
    size_t rs_err_len;
    uint64_t reply_errors;
};

static void pub_drop(tb_redis_pub *p, const char *why)
{
    if (!p->c)
        return;
    redisFree(p->c);
    p->c = NULL;
    p->lost += p->pending + p->unread;
    p->out_len = 0;
    p->pending = 0;
    p->unread = 0;
    p->rs_state = RS_START;
    int64_t now = mono_ms();
    p->retrying = true; /* the flusher takes it from here */
    pthread_cond_signal(&p->wake);
    tb__link_down(&p->link, why);
    if (p->had_reply) {
        /* It was working: try again at once (a restarted Redis may already be back). */
        p->next_attempt_ms = now;
        p->backoff_ms = p->cf.min_ms;
    } else {
        /* Accepted then closed without answering (maxclients, a proxy): back off. */
        p->next_attempt_ms = now + p->backoff_ms;
        p->backoff_ms = backoff_next(&p->cf, p->backoff_ms);
    }
    if (!p->down_logged) {
        tb_log_warn(NULL, "redis publisher lost its connection to %s:%d (%s); reconnecting",
                    p->cf.host, p->cf.port, why);
        p->down_logged = true;
    }
}

static void pub_reply_error(tb_redis_pub *p)
{
    size_t n = p->rs_err_len;
    while (n > 0 && (p->rs_err[n - 1] == '\r' || p->rs_err[n - 1] == '\n'))
        n--;
    p->rs_err[n] = '\0';
    p->reply_errors++;
    p->lost++;
    /* Powers of two: the first error and then ever more rarely, so a misconfigured Redis
     * (NOAUTH, OOM) cannot flood the log at publish rate. */
    if ((p->reply_errors & (p->reply_errors - 1)) == 0)
        tb_log_warn(NULL, "redis publisher: PUBLISH failed at %s:%d: %s (%llu so far)", p->cf.host,
                    p->cf.port, p->rs_err, (unsigned long long)p->reply_errors);
}

/* Consumes reply bytes. A PUBLISH reply is one line: ":<receivers>\r\n" or "-<error>\r\n".
 * -1 on anything else, or on a reply nobody asked for. */
static int pub_scan(tb_redis_pub *p, const char *b, size_t n)
{
    const char *end = b + n;
    while (b < end) {
        if (p->rs_state == RS_START) {
            char t = *b++;
            if (t == ':' || t == '+') {
                p->rs_state = RS_LINE;
            } else if (t == '-') {
                p->rs_state = RS_ERROR;
                p->rs_err_len = 0;
            } else {
                return -1;
            }
            continue;
        }
        const char *nl = memchr(b, '\n', (size_t)(end - b));
        const char *stop = nl ? nl : end;
        if (p->rs_state == RS_ERROR) {
            size_t room = sizeof p->rs_err - 1 - p->rs_err_len;
            size_t k = (size_t)(stop - b) < room ? (size_t)(stop - b) : room;
            memcpy(p->rs_err + p->rs_err_len, b, k);
            p->rs_err_len += k;
        }
        if (!nl)
            return 0;
        b = nl + 1;
        if (p->rs_state == RS_ERROR)
            pub_reply_error(p);
        p->rs_state = RS_START;
        if (p->unread == 0)
            return -1;
        p->unread--;
    }
    return 0;
}

/* Reads the replies that are there; with wait, until none is outstanding or deadline_ms.
 * 0, or TB_ECONN after dropping the connection. */
static int pub_read(tb_redis_pub *p, bool wait, int64_t deadline_ms)
{
    char buf[16384];
    while (p->c) {
        ssize_t n = recv(p->c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            p->had_reply = true;
            if (pub_scan(p, buf, (size_t)n) < 0) {
                pub_drop(p, "unexpected reply to PUBLISH");
                return TB_ECONN;
            }
            p->reply_wait_ms = p->last_io_ms = mono_ms();
            if ((size_t)n < sizeof buf && !(wait && p->unread > 0))
                return 0;
            continue;
        }
        if (n == 0) {
            pub_drop(p, "closed by the server");
            return TB_ECONN;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            pub_drop(p, strerror(errno));
            return TB_ECONN;
        }
        if (!wait || p->unread == 0)
            return 0;
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0) {
            pub_drop(p, "no reply in time");
            return TB_ECONN;
        }
        struct pollfd pfd = {.fd = p->c->fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
            pub_drop(p, strerror(errno));
            return TB_ECONN;
        }
    }
    return TB_ECONN;
}

/* Writes the queued commands, then reads whatever replies are already there. */
static int pub_write(tb_redis_pub *p)
{
    if (!p->c)
        return TB_ECONN;
    if (p->out_len == 0)
        return 0;
    if (send_all(p->c->fd, p->out, p->out_len) < 0) {
        pub_drop(p, strerror(errno));
        return TB_ECONN;
    }
    int64_t now = mono_ms();
    if (p->unread == 0)
        p->reply_wait_ms = now;
    p->last_io_ms = now;
    p->unread += p->pending;
    p->pending = 0;
    p->out_len = 0;
    if (p->out_cap > PUB_BIG_BUF) {
        free(p->out);
        p->out = NULL;
        p->out_cap = 0;
    }
    return pub_read(p, false, 0);
}

/* After an idle spell, a connection Redis closed (restart) would swallow the next batch
 * silently; a non-blocking peek finds that out first. */
static void pub_check_idle(tb_redis_pub *p)
{
    int64_t now = mono_ms();
    if (now - p->last_io_ms < PUB_IDLE_CHECK_MS)
        return;
    char b;
    ssize_t n = recv(p->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        pub_drop(p, "closed by the server");
    else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        pub_drop(p, strerror(errno));
    else if (n > 0)
        (void)pub_read(p, false, 0); /* unsolicited: an error line before a close */
    else
        p->last_io_ms = now;
}

/* Takes the outcome of a connection attempt begun at `at` (c NULL: it failed, why says why).
 * 0 with the connection in place, or TB_ECONN. */
static int pub_connected(tb_redis_pub *p, redisContext *c, int64_t at, const char *why)
{
    if (!c) {
        p->next_attempt_ms = at + p->backoff_ms;
        p->backoff_ms = backoff_next(&p->cf, p->backoff_ms);
        p->retrying = true;
        pthread_cond_signal(&p->wake);
        tb__link_down(&p->link, why);
        if (!p->down_logged) {
            tb_log_warn(NULL, "redis publisher cannot connect to %s:%d (%s); retrying with backoff",
                        p->cf.host, p->cf.port, why);
            p->down_logged = true;
        }
        return TB_ECONN;
    }
    p->c = c;
    p->had_reply = false;
    p->rs_state = RS_START;
    p->last_io_ms = mono_ms();
    p->retrying = false;
    tb__link_up(&p->link);
    if (p->down_logged) {
        tb_log_warn(NULL, "redis publisher connected again to %s:%d", p->cf.host, p->cf.port);
        p->down_logged = false;
    }
    return 0;
}

/* 0 with a connection, or TB_ECONN (no connection attempt before next_attempt_ms). */
static int pub_ensure(tb_redis_pub *p)
{
    if (p->c && p->pending == 0 && p->unread == 0)
        pub_check_idle(p);
    if (p->c)
        return 0;
    int64_t now = mono_ms();
    if (now < p->next_attempt_ms)
        return TB_ECONN;
    char why[160];
    redisContext *c = conf_connect(&p->cf, why, sizeof why);
    return pub_connected(p, c, now, why);
}

static char *put_uint(char *d, size_t v)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        *d++ = tmp[--i];
    return d;
}

/* Formats PUBLISH channel body as a RESP array into the output buffer. */
static int pub_append(tb_redis_pub *p, const char *ch, size_t chlen, const void *body, size_t len)
{
    static const char head[] = "*3\r\n$7\r\nPUBLISH\r\n";
    if (len > SIZE_MAX / 2 || chlen > SIZE_MAX / 4)
        return TB_ETOOBIG;
    size_t need = sizeof head + 2 * 24 + chlen + len + 8;
    if (p->out_cap - p->out_len < need) {
        size_t cap = p->out_cap ? p->out_cap : 4096;
        while (cap - p->out_len < need)
            cap *= 2;
        char *np = realloc(p->out, cap);
        if (!np)
            return TB_ENOMEM;
        p->out = np;
        p->out_cap = cap;
    }
    char *d = p->out + p->out_len;
    memcpy(d, head, sizeof head - 1);
    d += sizeof head - 1;
    *d++ = '$';
    d = put_uint(d, chlen);
    *d++ = '\r';
    *d++ = '\n';
    memcpy(d, ch, chlen);
    d += chlen;
    memcpy(d, "\r\n$", 3);
    d += 3;
    d = put_uint(d, len);
    *d++ = '\r';
    *d++ = '\n';
    if (len)
        memcpy(d, body, len);
    d += len;
    *d++ = '\r';
    *d++ = '\n';
    p->out_len = (size_t)(d - p->out);
    if (p->pending++ == 0) {
        p->pending_since_ns = mono_ns();
        if (p->flusher_idle)
            pthread_cond_signal(&p->wake);
    }
    return 0;
}

/* Writes partial batches within PUB_LINGER_NS, and keeps reading replies while some are
 * outstanding, so they never pile up and a Redis that stopped answering gets noticed. After a
 * failure it reconnects by itself (with the backoff), so that a publisher with no traffic
 * comes back too: its state is what readiness reports. The attempt is made without the lock,
 * publishers meanwhile failing fast as they do during the backoff. */
static void *pub_flusher_main(void *arg)
{
    tb_redis_pub *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (!p->c && p->retrying) {
            int64_t now = mono_ms();
            if (now < p->next_attempt_ms) {
                cond_wait_until(&p->wake, &p->mu, p->next_attempt_ms * 1000000);
                continue;
            }
            p->next_attempt_ms = INT64_MAX; /* this attempt is ours */
            pthread_mutex_unlock(&p->mu);
            char why[160];
            redisContext *c = conf_connect(&p->cf, why, sizeof why);
            pthread_mutex_lock(&p->mu);
            (void)pub_connected(p, c, now, why);
            continue;
        }
        if (p->c && p->pending > 0) {
            int64_t due = p->pending_since_ns + PUB_LINGER_NS;
            if (mono_ns() >= due)
                (void)pub_write(p);
            else
                cond_wait_until(&p->wake, &p->mu, due);
            continue;
        }
        if (p->c && p->unread > 0) {
            (void)pub_read(p, false, 0);
            if (p->c && p->unread > 0 && mono_ms() - p->reply_wait_ms > p->cf.timeout_ms)
                pub_drop(p, "Redis stopped answering");
            if (p->c && p->unread > 0)
                cond_wait_until(&p->wake, &p->mu, mono_ns() + PUB_LINGER_NS);
            continue;
        }
        p->flusher_idle = true;
        pthread_cond_wait(&p->wake, &p->mu);
        p->flusher_idle = false;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

tb_redis_pub *tb_redis_pub_new(const tb_redis_opts *o, tb_error *err)
{
    redis_conf cf;
    if (conf_init(&cf, o, err) != 0)
        return NULL;
    tb_redis_pub *p = calloc(1, sizeof *p);
    if (!p) {
        tb_error_set(err, TB_ENOMEM, "redis: out of memory");
        return NULL;
    }
    p->cf = cf;
    p->backoff_ms = cf.min_ms;
    tb__link_init(&p->link);
    if (sync_init(&p->mu, &p->wake) != 0) {
        tb__link_destroy(&p->link);
        free(p);
        tb_error_set(err, TB_ENOMEM, "redis: cannot create a mutex");
        return NULL;
    }
    if (pthread_create(&p->flusher, NULL, pub_flusher_main, p) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        tb__link_destroy(&p->link);
        free(p);
        tb_error_set(err, TB_ENOMEM, "redis: cannot start the flusher thread");
        return NULL;
    }
    return p;
}

int tb_redis_publish(tb_redis_pub *p, const char *channel, const void *body, size_t len)
{
    if (!p || !channel || (!body && len))
        return TB_EINVAL;
    size_t chlen = strlen(channel);
    pthread_mutex_lock(&p->mu);
    int rc = pub_ensure(p);
    if (rc == 0)
        rc = pub_append(p, channel, chlen, body, len);
    if (rc == 0 && p->pending >= PUB_BATCH) {
        rc = pub_write(p);
        if (rc != 0 && p->lost > 0)
            p->lost--; /* this one is reported by the return value */
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int tb_redis_pub_flush(tb_redis_pub *p)
{
    if (!p)
        return TB_EINVAL;
    pthread_mutex_lock(&p->mu);
    int rc = pub_ensure(p);
    if (rc == 0)
        rc = pub_write(p);
    if (rc == 0)
        rc = pub_read(p, true, mono_ms() + p->cf.timeout_ms);
    if (p->lost > 0) {
        p->lost = 0;
        rc = TB_ECONN;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void tb_redis_pub_free(tb_redis_pub *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->flusher, NULL);
    if (p->c && pub_write(p) == 0)
        (void)pub_read(p, true, mono_ms() + p->cf.timeout_ms);
    if (p->c)
        redisFree(p->c);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    tb__link_destroy(&p->link);
    free(p->out);
    free(p);
}

bool tb_redis_pub_up(tb_redis_pub *p, char *why, size_t cap)
{
    /* it connects lazily: "connecting" means no attempt yet, or one a publisher is making */
    return !p || atomic_load(&p->link.state) == TB__LINK_CONNECTING ||
           tb__link_get(&p->link, "publisher", why, cap);
}

/* ---- subscriber ---- */

/* A part of a reply, in the receive buffer; NUL-terminated in place (over its CR) once the
 * reply is whole. */
typedef struct sub_str {
    char *s;
    size_t len;
} sub_str;

/* The reply being handled: its type, and for an array its first three elements. */
typedef struct sub_reply {
    int type;
    long long elements;
    int el_type[3];
    sub_str el[3]; /* el[0] also holds a top-level string/status/error reply */
} sub_reply;

enum { SUB_STARTING, SUB_RUNNING, SUB_FAILED };

struct tb_redis_sub {
    redis_conf cf;
    char *subcmd; /* SUBSCRIBE ch... in RESP, sent on every (re)connect */
    size_t subcmd_len, n_channels;
    tb_redis_deliver_fn fn;
    void *user;

    pthread_t thread;
    pthread_mutex_t mu; /* guards state, fail_why and the stats below */
    pthread_cond_t cv;
    atomic_bool stop;
    int state;
    char fail_why[200];
    unsigned reconnects;
    int64_t last_gap_ms, total_gap_ms;
    int connected;
    _Atomic uint64_t messages;
    tb__link link; /* for readiness */

    /* the thread's own */
    redisContext *c;
    sub_reply cur;
    bool undispatched;   /* the buffer may hold complete replies not handled yet */
    char *rbuf;          /* received bytes: [rpos, rlen) not parsed yet */
    size_t rpos, rlen, rcap;
    int64_t lost_at_ms;
    int backoff_ms;
};

enum { RESP_MORE = 0, RESP_BAD = -1 };

/* A CRLF-terminated line at p: the byte after its LF, or NULL when incomplete. *eol gets the
 * position of its CR. */
static char *resp_line(char *p, char *end, char **eol)
{
    char *cr = memchr(p, '\r', (size_t)(end - p));
    if (cr == NULL || cr + 1 >= end)
        return NULL;
    *eol = cr;
    return cr + 2;
}

/* The integer of a header line [p, eol): LLONG_MIN + 1..LLONG_MAX; false when it is not one. */
static bool resp_int(const char *p, const char *eol, long long *out)
{
    bool neg = p < eol && *p == '-';
    if (neg)
        p++;
    if (p == eol || eol - p > 19)
        return false;
    unsigned long long v = 0;
    for (; p < eol; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long long)(*p - '0'); /* 19 digits fit in 64 bits */
    }
    if (v > (unsigned long long)LLONG_MAX)
        return false;
    *out = neg ? -(long long)v : (long long)v;
    return true;
}

/* Parses one RESP2 value at *pp. 1: complete (*pp past it; with r at depth 0 the reply, at
 * depth 1 its element idx is kept); RESP_MORE: incomplete; RESP_BAD (why set): not RESP2. */
static int resp_value(char **pp, char *end, int depth, sub_reply *r, long long idx, char *why,
                      size_t n)
{
    char *p = *pp, *eol;
    if (p >= end)
        return RESP_MORE;
    char t = *p;
    char *next = resp_line(p + 1, end, &eol);
    if (next == NULL) {
        if (end - p > 65536) { /* no header line is that long */
            snprintf(why, n, "bad reply: a header line without an end");
            return RESP_BAD;
        }
        return RESP_MORE;
    }
    if (eol[1] != '\n') {
        snprintf(why, n, "bad reply: a CR not followed by LF");
        return RESP_BAD;
    }
    sub_str *keep = NULL;
    int *keep_type = NULL;
    if (depth == 0) {
        r->elements = 0;
        for (int i = 0; i < 3; i++) {
            r->el_type[i] = 0;
            r->el[i] = (sub_str){NULL, 0};
        }
        keep = &r->el[0];
        keep_type = &r->type;
    } else if (depth == 1 && idx < 3) {
        keep = &r->el[idx];
        keep_type = &r->el_type[idx];
    }
    long long v;
    switch (t) {
    case '+':
    case '-':
        if (keep) {
            *keep_type = t == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR;
            *keep = (sub_str){p + 1, (size_t)(eol - (p + 1))};
        }
        *pp = next;
        return 1;
    case ':':
        if (!resp_int(p + 1, eol, &v)) {
            snprintf(why, n, "bad reply: an integer that is not one");
            return RESP_BAD;
        }
        if (keep_type)
            *keep_type = REDIS_REPLY_INTEGER;
        *pp = next;
        return 1;
    case '$':
        if (!resp_int(p + 1, eol, &v) || v < -1 || v > (long long)SUB_MAX_BULK) {
            snprintf(why, n, "bad reply: a string length that is not one (or past 512 MB)");
            return RESP_BAD;
        }
        if (v == -1) {
            if (keep_type)
                *keep_type = REDIS_REPLY_NIL;
            *pp = next;
            return 1;
        }
        if (end - next < v + 2)
            return RESP_MORE;
        if (next[v] != '\r' || next[v + 1] != '\n') {
            snprintf(why, n, "bad reply: a string not followed by CRLF");
            return RESP_BAD;
        }
        if (keep) {
            *keep_type = REDIS_REPLY_STRING;
            *keep = (sub_str){next, (size_t)v};
        }
        *pp = next + v + 2;
        return 1;
    case '*':
        if (!resp_int(p + 1, eol, &v) || v < -1 || v > SUB_MAX_ELEMENTS) {
            snprintf(why, n, "bad reply: an array length that is not one (or past %d)",
                     SUB_MAX_ELEMENTS);
            return RESP_BAD;
        }
        if (depth >= SUB_MAX_DEPTH) {
            snprintf(why, n, "bad reply: arrays nested deeper than %d", SUB_MAX_DEPTH);
            return RESP_BAD;
        }
        if (depth == 0)
            r->elements = v < 0 ? 0 : v;
        if (keep_type)
            *keep_type = v < 0 ? REDIS_REPLY_NIL : REDIS_REPLY_ARRAY;
        p = next;
        for (long long i = 0; i < v; i++) {
            int rc = resp_value(&p, end, depth + 1, r, i, why, n);
            if (rc != 1)
                return rc;
        }
        *pp = p;
        return 1;
    default:
        snprintf(why, n, "bad reply: type byte 0x%02x is not RESP2", (unsigned char)t);
        return RESP_BAD;
    }
}

static bool el_is(const sub_reply *r, int i, const char *word)
{
    size_t n = strlen(word);
    return r->el_type[i] == REDIS_REPLY_STRING && r->el[i].len == n &&
           memcmp(r->el[i].s, word, n) == 0;
}

/* Handles one parsed reply: delivers a message, counts a SUBSCRIBE confirmation. -1 (why set)
 * on an error reply, which ends the connection. */
static int sub_handle(tb_redis_sub *s, size_t *confirmed, char *why, size_t n)
{
    sub_reply *r = &s->cur;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
        if (r->elements == 3 && el_is(r, 0, "message") && r->el_type[1] == REDIS_REPLY_STRING &&
            r->el_type[2] == REDIS_REPLY_STRING) {
            /* Redis sends all confirmations of one SUBSCRIBE before any message, so this skips
             * nothing real; it keeps "a failed tb_redis_sub_new never calls fn" true. */
            if (confirmed && s->state == SUB_STARTING)
                return 0;
            s->fn(s->user, r->el[1].s, r->el[2].s, r->el[2].len);
            atomic_store_explicit(&s->messages,
                                  atomic_load_explicit(&s->messages, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
        } else if (el_is(r, 0, "subscribe")) {
            if (confirmed)
                (*confirmed)++;
        }
        return 0; /* anything else (unsubscribe, pmessage...) is not ours: ignored */
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, n, "Redis answered: %.150s", r->el[0].s ? r->el[0].s : "?");
        return -1;
    }
    return 0;
}

/* Handles every complete reply in the buffer. During the handshake (confirmed given) it
 * stops after the last SUBSCRIBE confirmation: what follows is the running thread's business
 * (an error there is a loss after a success, not a failed subscribe). */
static int sub_dispatch(tb_redis_sub *s, size_t *confirmed, char *why, size_t n)
{
    s->undispatched = false;
    for (;;) {
        if (confirmed && *confirmed >= s->n_channels) {
            s->undispatched = true;
            return 0;
        }
        char *p = s->rbuf + s->rpos;
        int rc = resp_value(&p, s->rbuf + s->rlen, 0, &s->cur, 0, why, n);
        if (rc == RESP_BAD)
            return -1;
        if (rc == RESP_MORE) {
            if (s->rlen - s->rpos > SUB_MAX_REPLY) {
                snprintf(why, n, "bad reply: more than %u bytes without an end",
                         (unsigned)SUB_MAX_REPLY);
                return -1;
            }
            return 0;
        }
        s->rpos = (size_t)(p - s->rbuf);
        /* whole: each kept part ends in its CR, which becomes its NUL (an incomplete reply is
         * parsed again from the start, so nothing is written before) */
        for (int i = 0; i < 3; i++)
            if (s->cur.el[i].s)
                s->cur.el[i].s[s->cur.el[i].len] = '\0';
        if (sub_handle(s, confirmed, why, n) < 0)
            return -1;
    }
}

/* Room for the next read: the unparsed rest moved to the front, the buffer grown when a reply
 * does not fit, and shrunk back after a big one. */
static int sub_make_room(tb_redis_sub *s)
{
    size_t rest = s->rlen - s->rpos;
    if (s->rpos > 0) {
        if (rest)
            memmove(s->rbuf, s->rbuf + s->rpos, rest);
        s->rpos = 0;
        s->rlen = rest;
    }
    size_t want = rest + SUB_RECV;
    if (want > s->rcap) {
        size_t cap = s->rcap * 2 > want ? s->rcap * 2 : want;
        char *np = realloc(s->rbuf, cap);
        if (np == NULL)
            return -1;
        s->rbuf = np;
        s->rcap = cap;
    } else if (s->rcap > 4 * SUB_RECV && want <= SUB_RECV * 2) {
        char *np = realloc(s->rbuf, SUB_RECV * 2); /* after a big reply; failing keeps it */
        if (np != NULL) {
            s->rbuf = np;
            s->rcap = SUB_RECV * 2;
        }
    }
    return 0;
}

/* One bounded step: handle what the handshake left in the buffer, or read what arrived and
 * handle every complete reply, or wait up to wait_ms for more. -1 (why set) when the connection
 * is gone. */
static int sub_pump(tb_redis_sub *s, size_t *confirmed, int wait_ms, char *why, size_t n)
{
    if (s->undispatched && !confirmed)
        return sub_dispatch(s, NULL, why, n);
    if (sub_make_room(s) != 0) {
        snprintf(why, n, "out of memory for a reply of %zu bytes", s->rlen - s->rpos);
        return -1;
    }
    ssize_t got = recv(s->c->fd, s->rbuf + s->rlen, s->rcap - s->rlen - 1, MSG_DONTWAIT);
    if (got > 0) {
        s->rlen += (size_t)got;
        return sub_dispatch(s, confirmed, why, n);
    }
    if (got == 0) {
        snprintf(why, n, "closed by the server");
        return -1;
    }
    if (errno == EINTR)
        return 0;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
        snprintf(why, n, "%s", strerror(errno));
        return -1;
    }
    struct pollfd pfd = {.fd = s->c->fd, .events = POLLIN};
    if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR) {
        snprintf(why, n, "poll: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void sub_close(tb_redis_sub *s)
{
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
    s->rpos = s->rlen = 0;
    s->undispatched = false;
}

/* Connects, SUBSCRIBEs and waits for every confirmation (timeout_ms). Replies after the last
 * confirmation are left for sub_main (see sub_dispatch). */
static int sub_connect(tb_redis_sub *s, char *why, size_t n)
{
    int64_t deadline = mono_ms() + s->cf.timeout_ms;
    size_t confirmed = 0;
    sub_close(s);
    s->c = conf_connect(&s->cf, why, n);
    if (!s->c)
        return -1;
    if (send_all(s->c->fd, s->subcmd, s->subcmd_len) < 0) {
        snprintf(why, n, "sending SUBSCRIBE: %s", strerror(errno));
        goto fail;
    }
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (sub_pump(s, &confirmed, (int)(left < SUB_POLL_MS ? (left > 0 ? left : 0) : SUB_POLL_MS),
                     why, n) < 0)
            goto fail;
        if (confirmed >= s->n_channels)
            return 0;
        if (mono_ms() >= deadline) {
            snprintf(why, n, "no SUBSCRIBE confirmation within %d ms", s->cf.timeout_ms);
            goto fail;
        }
        if (atomic_load(&s->stop)) {
            snprintf(why, n, "stopping");
            goto fail;
        }
    }
fail:
    sub_close(s);
    return -1;
}

/* Sleeps ms unless asked to stop; true when stopping. */
static bool sub_sleep(tb_redis_sub *s, int ms)
{
    int64_t until = mono_ns() + (int64_t)ms * 1000000;
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stop) && mono_ns() < until)
        cond_wait_until(&s->cv, &s->mu, until);
    pthread_mutex_unlock(&s->mu);
    return atomic_load(&s->stop);
}

static void sub_lost(tb_redis_sub *s, const char *why)
{
    tb__link_down(&s->link, why);
    sub_close(s);
    s->lost_at_ms = mono_ms();
    s->backoff_ms = s->cf.min_ms;
    pthread_mutex_lock(&s->mu);
    s->connected = 0;
    pthread_mutex_unlock(&s->mu);
    tb_log_warn(NULL, "redis subscriber lost its connection to %s:%d (%s); reconnecting",
                s->cf.host, s->cf.port, why);
}

static void sub_back(tb_redis_sub *s)
{
    int64_t gap = mono_ms() - s->lost_at_ms;
    /* Only this thread writes the stats: log first, so whoever sees them updated can count on
     * the line being written. */
    pthread_mutex_lock(&s->mu);
    unsigned reconnects = s->reconnects + 1;
    pthread_mutex_unlock(&s->mu);
    char fields[96];
    snprintf(fields, sizeof fields, "\"gapMs\":%lld,\"reconnects\":%u", (long long)gap, reconnects);
    tb_log_fields(TB_LOG_WARN, NULL, fields, "redis subscriber back");
    pthread_mutex_lock(&s->mu);
    s->reconnects = reconnects;
    s->last_gap_ms = gap;
    s->total_gap_ms += gap;
    s->connected = 1;
    pthread_mutex_unlock(&s->mu);
    tb__link_up(&s->link);
    s->backoff_ms = s->cf.min_ms;
}

static void *sub_main(void *arg)
{
    tb_redis_sub *s = arg;
    char why[200];
    int rc = sub_connect(s, why, sizeof why);
    if (rc == 0)
        tb__link_up(&s->link);
    pthread_mutex_lock(&s->mu);
    s->state = rc == 0 ? SUB_RUNNING : SUB_FAILED;
    s->connected = rc == 0;
    if (rc != 0)
        snprintf(s->fail_why, sizeof s->fail_why, "%s", why);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0)
        return NULL;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        if (s->c) {
            if (sub_pump(s, NULL, SUB_POLL_MS, why, sizeof why) < 0)
                sub_lost(s, why);
            continue;
        }
        if (sub_sleep(s, s->backoff_ms))
            break;
        if (sub_connect(s, why, sizeof why) == 0) {
            sub_back(s);
        } else {
            tb__link_down(&s->link, why);
            if (tb_log_enabled(TB_LOG_DEBUG))
                tb_log_debug(NULL, "redis subscriber: reconnect to %s:%d failed (%s)", s->cf.host,
                             s->cf.port, why);
            s->backoff_ms = backoff_next(&s->cf, s->backoff_ms);
        }
    }
    return NULL;
}

static void sub_destroy(tb_redis_sub *s)
{
    tb__link_destroy(&s->link);
    sub_close(s);
    free(s->rbuf);
    free(s->subcmd);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* SUBSCRIBE ch... in RESP, formatted once (hiredis, binary-safe) and kept with malloc. */
static int sub_format_subscribe(tb_redis_sub *s, const char *const *channels, size_t n)
{
    int rc = -1;
    char *cmd = NULL;
    const char **argv = calloc(n + 1, sizeof *argv);
    size_t *lens = calloc(n + 1, sizeof *lens);
    if (!argv || !lens)
        goto done;
    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = channels[i];
        lens[i + 1] = strlen(channels[i]);
    }
    int len = redisFormatCommandArgv(&cmd, (int)(n + 1), argv, lens);
    if (len < 0 || !cmd)
        goto done;
    s->subcmd = malloc((size_t)len);
    if (!s->subcmd)
        goto done;
    memcpy(s->subcmd, cmd, (size_t)len);
    s->subcmd_len = (size_t)len;
    rc = 0;
done:
    if (cmd)
        redisFreeCommand(cmd);
    free(lens);
    free(argv);
    return rc;
}

tb_redis_sub *tb_redis_sub_new(const tb_redis_opts *o, const char *const *channels,
                               size_t n_channels, tb_redis_deliver_fn fn, void *user, tb_error *err)
{
    redis_conf cf;
    if (conf_init(&cf, o, err) != 0)
        return NULL;
    if (!fn) {
        tb_error_set(err, TB_EINVAL, "redis: a deliver callback is required");
        return NULL;
    }
    if (!channels || n_channels == 0 || n_channels > 100000) {
        tb_error_set(err, TB_EINVAL, "redis: between 1 and 100000 channels are required");
        return NULL;
    }
    for (size_t i = 0; i < n_channels; i++) {
        if (!channels[i]) {
            tb_error_set(err, TB_EINVAL, "redis: channel %zu is NULL", i);
            return NULL;
        }
    }
    tb_redis_sub *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    if (sync_init(&s->mu, &s->cv) != 0) {
        free(s);
        goto oom;
    }
    tb__link_init(&s->link);
    s->cf = cf;
    s->fn = fn;
    s->user = user;
    s->n_channels = n_channels;
    s->backoff_ms = cf.min_ms;
    s->state = SUB_STARTING;
    atomic_init(&s->stop, false);
    atomic_init(&s->messages, 0);
    if (sub_format_subscribe(s, channels, n_channels) != 0 || !(s->rbuf = malloc(2 * SUB_RECV))) {
        sub_destroy(s);
        goto oom;
    }
    s->rcap = 2 * SUB_RECV;
    if (pthread_create(&s->thread, NULL, sub_main, s) != 0) {
        tb_error_set(err, TB_ENOMEM, "redis: cannot start the subscriber thread");
        sub_destroy(s);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    while (s->state == SUB_STARTING)
        pthread_cond_wait(&s->cv, &s->mu);
    int state = s->state;
    pthread_mutex_unlock(&s->mu);
    if (state == SUB_FAILED) {
        pthread_join(s->thread, NULL);
        tb_error_set(err, TB_ECONN, "redis: cannot subscribe at %s:%d: %s", cf.host, cf.port,
                     s->fail_why);
        sub_destroy(s);
        return NULL;
    }
    return s;
oom:
    tb_error_set(err, TB_ENOMEM, "redis: out of memory");
    return NULL;
}

void tb_redis_sub_stats_get(tb_redis_sub *s, tb_redis_sub_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    out->reconnects = s->reconnects;
    out->last_gap_ms = s->last_gap_ms;
    out->total_gap_ms = s->total_gap_ms;
    out->connected = s->connected;
    pthread_mutex_unlock(&s->mu);
    out->messages = atomic_load(&s->messages);
}

bool tb_redis_sub_up(tb_redis_sub *s, char *why, size_t cap)
{
    return !s || tb__link_get(&s->link, "subscriber", why, cap);
}

void tb_redis_sub_free(tb_redis_sub *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    sub_destroy(s);
}
