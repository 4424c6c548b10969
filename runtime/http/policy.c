/*
 * Server policies applied before a handler runs (issue 13): the IP allowlist (with
 * X-Forwarded-For trusted only from configured proxies), rate limits per identity and
 * operation (GCRA, in process or shared through Redis), and fault injection.
 *
 * GCRA (the generic cell rate algorithm, as in redis-cell and Envoy's local rate limit):
 * a limit of `limit` requests per `period_ms` with bursts of `burst` is one theoretical arrival
 * time (TAT) per key. A request at `now` is allowed when max(TAT, now) - now <= tolerance, where
 * T = period/limit and tolerance = T * (burst - 1); it then moves TAT to max(TAT, now) + T.
 * Exact (no window edges) and one number per key.
 */
#include "tablium/http.h"
#include "tablium/log.h"

#include "internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- CIDR lists ---- */

typedef struct cidr {
    unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    unsigned bits;          /* prefix length over the 128 bits */
} cidr;

typedef struct cidr_list {
    cidr *v;
    size_t n;
} cidr_list;

/* "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n" into c; false when not an address. */
static bool parse_addr(const char *s, size_t n, unsigned char out[16], unsigned *bits)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    long plen = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        errno = 0;
        plen = strtol(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end || plen < 0)
            return false;
    }
    struct in_addr a4;
    struct in6_addr a6;
    memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        if (plen > 32)
            return false;
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        *bits = 96 + (unsigned)(plen < 0 ? 32 : plen);
        return true;
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (plen > 128)
            return false;
        memcpy(out, &a6, 16);
        *bits = (unsigned)(plen < 0 ? 128 : plen);
        return true;
    }
    return false;
}

static bool cidr_match(const cidr *c, const unsigned char a[16])
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

static bool list_has(const cidr_list *l, const unsigned char a[16])
{
    for (size_t i = 0; i < l->n; i++) {
        if (cidr_match(&l->v[i], a))
            return true;
    }
    return false;
}

/* A comma- or space-separated list of addresses and CIDRs; false (err set) on a bad entry. */
static bool parse_list(const char *spec, const char *what, cidr_list *out, tb_error *err)
{
    out->v = NULL;
    out->n = 0;
    if (!spec)
        return true;
    size_t cap = 1;
    for (const char *p = spec; *p; p++)
        cap += *p == ',' || *p == ' ';
    out->v = calloc(cap, sizeof *out->v);
    if (!out->v) {
        tb_error_set(err, TB_ENOMEM, "out of memory");
        return false;
    }
    for (const char *p = spec; *p;) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            break;
        cidr *c = &out->v[out->n];
        if (!parse_addr(p, n, c->addr, &c->bits)) {
            tb_error_set(err, TB_EINVAL, "%s: '%.*s' is not an IP address or CIDR", what, (int)n,
                         p);
            free(out->v);
            out->v = NULL;
            return false;
        }
        out->n++;
        p += n;
    }
    return true;
}

/* ---- the local GCRA store ---- */

typedef struct rl_entry {
    struct rl_entry *next;
    int64_t tat; /* ms, monotonic */
    size_t klen;
    char key[];
} rl_entry;

#define RL_STRIPES 64u
#define RL_BUCKETS 1024u /* per stripe */
#define RL_MAX_PER_STRIPE 16384u

typedef struct rl_stripe {
    pthread_mutex_t lock;
    rl_entry *b[RL_BUCKETS];
    size_t n;
} rl_stripe;

struct tb__policy {
    cidr_list allow;   /* empty: everyone */
    cidr_list proxies; /* whose X-Forwarded-For is believed */
    tb_rate_limit def_limit;
    tb_rate_limit *op_limits; /* per operation index; limit 0: the default */
    unsigned *op_timeouts;    /* per operation index, ms; 0: the server's */
    bool any_op_limit;        /* some op_limits[i].limit is set */
    size_t n_ops;
    rl_stripe *stripes;
    /* shared mode */
    char *redis_host;
    int redis_port;
    pthread_mutex_t redis_lock;
    int redis_fd; /* one connection (-1: none), serialised: a limit check is one round trip */
    int64_t redis_retry_at;
    unsigned long long redis_failures;
    /* faults */
    unsigned fault_delay_ms;
    int fault_status;
    unsigned fault_percent;
    char *fault_ops; /* ",op1,op2," or NULL: every operation */
};

static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

/* Drops entries whose TAT has passed: they are the same as absent. Under the stripe's lock. */
static void stripe_sweep(rl_stripe *st, int64_t now)
{
    for (size_t i = 0; i < RL_BUCKETS; i++) {
        for (rl_entry **pp = &st->b[i]; *pp;) {
            if ((*pp)->tat <= now) {
                rl_entry *dead = *pp;
                *pp = dead->next;
                free(dead);
                st->n--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

static void gcra_decide(const tb_rate_limit *l, int64_t now, int64_t *tat, tb_rate_result *out)
{
    double t = (double)l->period_ms / (double)l->limit;
    unsigned burst = l->burst ? l->burst : l->limit;
    double tol = t * (double)(burst - 1);
    double cur = (double)(*tat > now ? *tat : now);
    out->limit = l->limit;
    out->period_ms = l->period_ms;
    if (cur - (double)now > tol) {
        out->allowed = false;
        out->retry_after_ms = (int64_t)(cur - (double)now - tol + 0.999);
        out->remaining = 0;
        out->reset_ms = (int64_t)(cur - (double)now + 0.999);
        return;
    }
    double next = cur + t;
    *tat = (int64_t)(next + 0.5);
    out->allowed = true;
    out->retry_after_ms = 0;
    double left = ((double)now + tol + t - next) / t;
    out->remaining = left > 0 ? (unsigned)left : 0;
    out->reset_ms = (int64_t)(next - (double)now + 0.999);
}

static int local_check(tb__policy *p, const tb_rate_limit *l, const char *key, size_t klen,
                       int64_t now, tb_rate_result *out)
{
    uint64_t h = hash_key(key, klen);
    rl_stripe *st = &p->stripes[h % RL_STRIPES];
    size_t bi = (size_t)(h >> 8) % RL_BUCKETS;
    pthread_mutex_lock(&st->lock);
    rl_entry *e = st->b[bi];
    while (e && !(e->klen == klen && memcmp(e->key, key, klen) == 0))
        e = e->next;
    if (!e) {
        if (st->n >= RL_MAX_PER_STRIPE)
            stripe_sweep(st, now);
        if (st->n >= RL_MAX_PER_STRIPE) {
            /* Full of live keys: fail open rather than refuse strangers. */
            pthread_mutex_unlock(&st->lock);
            out->allowed = true;
            out->limit = l->limit;
            out->period_ms = l->period_ms;
            out->remaining = l->limit;
            out->retry_after_ms = out->reset_ms = 0;
            return 0;
        }
        e = malloc(sizeof *e + klen);
        if (!e) {
            pthread_mutex_unlock(&st->lock);
            return TB_ENOMEM;
        }
        e->tat = 0;
        e->klen = klen;
        memcpy(e->key, key, klen);
        e->next = st->b[bi];
        st->b[bi] = e;
        st->n++;
    }
    gcra_decide(l, now, &e->tat, out);
    pthread_mutex_unlock(&st->lock);
    return 0;
}

/* ---- the shared (Redis) store ---- */

/* KEYS[1] the key; ARGV: T (ms, may be fractional), tolerance (ms), period (ms). Redis's own
 * clock, so that every replica sees one time. Returns {allowed, retry_after_ms, tat - now}. */
static const char gcra_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local T = tonumber(ARGV[1]) local tol = tonumber(ARGV[2]) "
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if tat < now then tat = now end "
    "if tat - now > tol then return {0, math.ceil(tat - now - tol), math.ceil(tat - now)} end "
    "local nxt = tat + T "
    "redis.call('SET', KEYS[1], tostring(nxt), 'PX', math.ceil(nxt - now) + 1000) "
    "return {1, 0, math.ceil(nxt - now)}";

/* A minimal RESP2 client (https://redis.io/docs/latest/develop/reference/protocol-spec/) for
 * the one command this needs: EVAL answering an array of integers. libtablium's HTTP side then
 * links no Redis library (the event transports, in libtablium_bus, use hiredis). Every socket
 * operation is bounded by RESP_TIMEOUT_MS. */
#define RESP_TIMEOUT_MS 200

static int resp_connect(const char *host, int port)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, ps, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pf = {fd, POLLOUT, 0};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            rc = poll(&pf, 1, RESP_TIMEOUT_MS) == 1 &&
                         getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0
                     ? 0
                     : -1;
        }
        if (rc != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {0, RESP_TIMEOUT_MS * 1000};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

typedef struct resp_reader {
    int fd;
    char buf[512];
    size_t len, off;
} resp_reader;

/* the next CRLF-terminated line (without CRLF) into line[cap]; false on I/O error or a line
 * longer than the buffer */
static bool resp_line(resp_reader *r, char *line, size_t cap)
{
    for (;;) {
        char *crlf = r->len > r->off ? memmem(r->buf + r->off, r->len - r->off, "\r\n", 2) : NULL;
        if (crlf) {
            size_t n = (size_t)(crlf - (r->buf + r->off));
            if (n >= cap)
                return false;
            memcpy(line, r->buf + r->off, n);
            line[n] = '\0';
            r->off += n + 2;
            return true;
        }
        if (r->off > 0) {
            memmove(r->buf, r->buf + r->off, r->len - r->off);
            r->len -= r->off;
            r->off = 0;
        }
        if (r->len == sizeof r->buf)
            return false;
        ssize_t k = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (k <= 0)
            return false;
        r->len += (size_t)k;
    }
}

/* Sends argv as a RESP array and reads a reply that must be an array of n integers.
 * 0: ints filled; 1: Redis answered an error (in msg); -1: I/O or protocol failure (close). */
static int resp_call_ints(int fd, int argc, const char **argv, const size_t *lens, long long *ints,
                          size_t n, char *msg, size_t msgcap)
{
    size_t total = 16;
    for (int i = 0; i < argc; i++)
        total += lens[i] + 32;
    char *out = malloc(total);
    if (!out)
        return -1;
    size_t o = (size_t)snprintf(out, total, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        o += (size_t)snprintf(out + o, total - o, "$%zu\r\n", lens[i]);
        memcpy(out + o, argv[i], lens[i]);
        o += lens[i];
        out[o++] = '\r';
        out[o++] = '\n';
    }
    for (size_t sent = 0; sent < o;) {
        ssize_t k = send(fd, out + sent, o - sent, MSG_NOSIGNAL);
        if (k <= 0) {
            free(out);
            return -1;
        }
        sent += (size_t)k;
    }
    free(out);
    resp_reader r = {.fd = fd};
    char line[256];
    if (!resp_line(&r, line, sizeof line))
        return -1;
    if (line[0] == '-') {
        snprintf(msg, msgcap, "%s", line + 1);
        return 1;
    }
    if (line[0] != '*' || strtoll(line + 1, NULL, 10) != (long long)n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!resp_line(&r, line, sizeof line) || line[0] != ':')
            return -1;
        char *end;
        errno = 0;
        ints[i] = strtoll(line + 1, &end, 10);
        if (errno || *end)
            return -1;
    }
    return 0;
}

static int redis_conn(tb__policy *p, int64_t now)
{
    if (p->redis_fd >= 0)
        return p->redis_fd;
    if (now < p->redis_retry_at)
        return -1;
    p->redis_fd = resp_connect(p->redis_host, p->redis_port);
    if (p->redis_fd < 0)
        p->redis_retry_at = now + 1000;
    return p->redis_fd;
}

static int shared_check(tb__policy *p, const tb_rate_limit *l, const char *key, size_t klen,
                        int64_t now, tb_rate_result *out)
{
    double t = (double)l->period_ms / (double)l->limit;
    unsigned burst = l->burst ? l->burst : l->limit;
    double tol = t * (double)(burst - 1);
    char ts[48], tols[48], msg[256] = "unreachable";
    snprintf(ts, sizeof ts, "%.6f", t);
    snprintf(tols, sizeof tols, "%.6f", tol);
    out->limit = l->limit;
    out->period_ms = l->period_ms;
    pthread_mutex_lock(&p->redis_lock);
    int fd = redis_conn(p, now);
    long long v[3];
    int rc = -1;
    if (fd >= 0) {
        const char *argv[] = {"EVAL", gcra_lua, "1", key, ts, tols};
        size_t lens[] = {4, sizeof gcra_lua - 1, 1, klen, strlen(ts), strlen(tols)};
        rc = resp_call_ints(fd, 6, argv, lens, v, 3, msg, sizeof msg);
        if (rc < 0) {
            /* a lost or slow connection: the next check connects again at once (only a failed
             * connect backs off for a second), so one slow reply fails open once, not for a
             * second's worth of requests */
            close(fd);
            p->redis_fd = -1;
            snprintf(msg, sizeof msg, "%s", "connection lost or timed out");
        }
    }
    if (rc == 0) {
        out->allowed = v[0] == 1;
        out->retry_after_ms = v[1];
        out->reset_ms = v[2];
        double left = out->allowed ? (tol + t - (double)v[2]) / t : 0;
        out->remaining = left > 0 ? (unsigned)left : 0;
    } else {
        /* Redis unreachable or wrong: fail open (as Envoy's rate limit service does by
         * default), said in the log at most once a second. */
        unsigned long long n = ++p->redis_failures;
        if (n == 1 || n % 1000 == 0)
            tb_log_warn(NULL, "rate limit: Redis %s:%d failed (%s); allowing (%llu so far)",
                        p->redis_host, p->redis_port, msg, n);
        out->allowed = true;
        out->remaining = l->limit;
        out->retry_after_ms = out->reset_ms = 0;
    }
    pthread_mutex_unlock(&p->redis_lock);
    return 0;
}

/* ---- configuration ---- */

/* "N/period" with period "s", "m", "h" or a number and a unit: 100/s, 600/1m, 10/30s. */
bool tb_rate_limit_parse(const char *spec, tb_rate_limit *out)
{
    memset(out, 0, sizeof *out);
    if (!spec)
        return false;
    char *end;
    errno = 0;
    unsigned long n = strtoul(spec, &end, 10);
    if (errno || end == spec || n == 0 || n > 100000000ul || *end != '/')
        return false;
    const char *q = end + 1;
    unsigned long k = 1;
    if (isdigit((unsigned char)*q)) {
        k = strtoul(q, &end, 10);
        if (k == 0 || k > 86400ul * 365)
            return false;
        q = end;
    }
    unsigned long long unit;
    if (strcmp(q, "ms") == 0)
        unit = 1;
    else if (strcmp(q, "s") == 0)
        unit = 1000;
    else if (strcmp(q, "m") == 0)
        unit = 60000;
    else if (strcmp(q, "h") == 0)
        unit = 3600000;
    else
        return false;
    out->limit = (unsigned)n;
    out->period_ms = (unsigned long long)k * unit;
    return true;
}

tb__policy *tb__policy_new(size_t n_ops, tb_error *err)
{
    tb__policy *p = calloc(1, sizeof *p);
    if (!p) {
        tb_error_set(err, TB_ENOMEM, "out of memory");
        return NULL;
    }
    p->n_ops = n_ops;
    p->op_limits = calloc(n_ops ? n_ops : 1, sizeof *p->op_limits);
    p->op_timeouts = calloc(n_ops ? n_ops : 1, sizeof *p->op_timeouts);
    p->stripes = calloc(RL_STRIPES, sizeof *p->stripes);
    if (!p->op_limits || !p->op_timeouts || !p->stripes) {
        free(p->op_limits);
        free(p->op_timeouts);
        free(p->stripes);
        free(p);
        tb_error_set(err, TB_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < RL_STRIPES; i++)
        pthread_mutex_init(&p->stripes[i].lock, NULL);
    pthread_mutex_init(&p->redis_lock, NULL);
    p->redis_fd = -1;
    return p;
}

int tb__policy_configure(tb__policy *p, const tb_policy_opts *o, tb_error *err)
{
    if (!parse_list(o->allow, "allowlist", &p->allow, err) ||
        !parse_list(o->trusted_proxies, "trusted proxies", &p->proxies, err))
        return err ? err->code : TB_EINVAL;
    if (o->rate_limit && *o->rate_limit && !tb_rate_limit_parse(o->rate_limit, &p->def_limit))
        return tb_error_set(err, TB_EINVAL,
                            "rate limit '%s': want N/PERIOD, e.g. 100/s, 600/1m, 10/30s",
                            o->rate_limit);
    p->def_limit.burst = o->rate_burst;
    if (o->rate_redis && *o->rate_redis) {
        const char *u = o->rate_redis;
        if (strncmp(u, "redis://", 8) == 0)
            u += 8;
        const char *colon = strrchr(u, ':');
        size_t hn = colon ? (size_t)(colon - u) : strcspn(u, "/");
        p->redis_host = strndup(u, hn);
        p->redis_port = colon ? atoi(colon + 1) : 6379;
        if (!p->redis_host || p->redis_port <= 0 || p->redis_port > 65535)
            return tb_error_set(err, TB_EINVAL, "rate limit Redis URL '%s' is not "
                                "redis://HOST:PORT", o->rate_redis);
    }
    p->fault_delay_ms = o->fault_delay_ms;
    p->fault_status = o->fault_status;
    p->fault_percent = o->fault_percent ? o->fault_percent : 100;
    if (p->fault_status && (p->fault_status < 400 || p->fault_status > 599))
        return tb_error_set(err, TB_EINVAL, "fault status %d: want 400..599", p->fault_status);
    if (o->fault_ops && *o->fault_ops && strcmp(o->fault_ops, "*") != 0) {
        size_t n = strlen(o->fault_ops);
        p->fault_ops = malloc(n + 3);
        if (!p->fault_ops)
            return tb_error_set(err, TB_ENOMEM, "out of memory");
        p->fault_ops[0] = ',';
        memcpy(p->fault_ops + 1, o->fault_ops, n);
        memcpy(p->fault_ops + 1 + n, ",", 2);
    }
    if (p->fault_delay_ms || p->fault_status)
        tb_log_warn(NULL, "fault injection on: %u ms delay, status %d, %u%% of %s",
                    p->fault_delay_ms, p->fault_status, p->fault_percent,
                    o->fault_ops && *o->fault_ops ? o->fault_ops : "every operation");
    return 0;
}

int tb__policy_set_limit(tb__policy *p, size_t op, const tb_rate_limit *l)
{
    if (op >= p->n_ops || (l && l->limit && !l->period_ms))
        return TB_EINVAL;
    if (l)
        p->op_limits[op] = *l;
    else
        memset(&p->op_limits[op], 0, sizeof p->op_limits[op]);
    p->any_op_limit = false;
    for (size_t i = 0; i < p->n_ops; i++)
        p->any_op_limit |= p->op_limits[i].limit != 0;
    return 0;
}

int tb__policy_set_timeout(tb__policy *p, size_t op, unsigned ms)
{
    if (op >= p->n_ops)
        return TB_EINVAL;
    p->op_timeouts[op] = ms;
    return 0;
}

unsigned tb__policy_timeout(const tb__policy *p, size_t op)
{
    return op < p->n_ops ? p->op_timeouts[op] : 0;
}

void tb__policy_free(tb__policy *p)
{
    if (!p)
        return;
    for (size_t s = 0; s < RL_STRIPES; s++) {
        for (size_t i = 0; i < RL_BUCKETS; i++) {
            for (rl_entry *e = p->stripes[s].b[i]; e;) {
                rl_entry *next = e->next;
                free(e);
                e = next;
            }
        }
        pthread_mutex_destroy(&p->stripes[s].lock);
    }
    if (p->redis_fd >= 0)
        close(p->redis_fd);
    pthread_mutex_destroy(&p->redis_lock);
    free(p->redis_host);
    free(p->stripes);
    free(p->op_limits);
    free(p->op_timeouts);
    free(p->allow.v);
    free(p->proxies.v);
    free(p->fault_ops);
    free(p);
}

/* ---- per request ---- */

/* The client: the peer, or the right-most X-Forwarded-For entry that is not a trusted proxy
 * when the peer is one (the entries a client wrote itself sit to the left). Every line of the
 * header counts, in order: a proxy that adds its own line after the client's would otherwise
 * leave the client's forged first line in charge. */
void tb__policy_client_addr(const tb__policy *p, const struct sockaddr *peer,
                            const tb_http_req *req, unsigned char out[16])
{
    tb__addr_v6(peer, out);
    if (p->proxies.n == 0 || !list_has(&p->proxies, out))
        return;
    const char *xff = tb__req_header_lines(req, "X-Forwarded-For", NULL);
    if (!xff)
        return;
    const char *end = xff + strlen(xff);
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        const char *a = start, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        unsigned char addr[16];
        unsigned bits;
        if (!parse_addr(a, (size_t)(b - a), addr, &bits) || bits % 8 != 0 || bits < 32)
            return; /* garbage: keep the last address known good */
        memcpy(out, addr, 16);
        if (!list_has(&p->proxies, addr))
            return;
        end = start > xff ? start - 1 : xff;
    }
}

bool tb__policy_needs_addr(const tb__policy *p)
{
    return p->allow.n > 0 || p->def_limit.limit || p->any_op_limit;
}

bool tb__policy_allows_addr(const tb__policy *p, const unsigned char addr[16])
{
    return p->allow.n == 0 || list_has(&p->allow, addr);
}

bool tb__policy_limits(const tb__policy *p, size_t op)
{
    return (op < p->n_ops && p->op_limits[op].limit) || p->def_limit.limit;
}

int tb__policy_rate(tb__policy *p, size_t op, const char *op_id, const char *identity,
                    tb_rate_result *out)
{
    const tb_rate_limit *l = op < p->n_ops && p->op_limits[op].limit ? &p->op_limits[op]
                                                                       : &p->def_limit;
    memset(out, 0, sizeof *out);
    if (!l->limit) {
        out->allowed = true;
        return 0;
    }
    char key[320];
    int kn = snprintf(key, sizeof key, "tb:rl:%s:%s", op_id, identity);
    if (kn < 0 || (size_t)kn >= sizeof key)
        kn = (int)sizeof key - 1;
    int rc = p->redis_host ? shared_check(p, l, key, (size_t)kn, tb_clock_ms(), out)
                           : local_check(p, l, key, (size_t)kn, tb_clock_ms(), out);
    return rc;
}

/* 0, or the status the fault injection answers with (after its delay, if any). */
int tb__policy_fault(const tb__policy *p, const char *op_id)
{
    if (!p->fault_delay_ms && !p->fault_status)
        return 0;
    if (p->fault_ops) {
        char pat[160];
        snprintf(pat, sizeof pat, ",%s,", op_id);
        if (!strstr(p->fault_ops, pat))
            return 0;
    }
    if (p->fault_percent < 100) {
        unsigned r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (unsigned)rand();
        if (r % 100 >= p->fault_percent)
            return 0;
    }
    if (p->fault_delay_ms) {
        struct timespec t = {(time_t)(p->fault_delay_ms / 1000),
                             (long)(p->fault_delay_ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    return p->fault_status;
}
