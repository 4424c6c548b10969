/*
 * The front door of tb_server: one thread that accepts connections, holds each until its first
 * request head is complete, checks that head's framing, and only then hands the socket to
 * libmicrohttpd (MHD_add_connection). The same thread cuts connections that libmicrohttpd owns
 * once their deadline passes.
 *
 * Why in front of libmicrohttpd: its timeout is an idle timeout that every byte resets, so a
 * client trickling a header byte a second holds a connection forever; past its connection
 * limit it closes new sockets without a word; its own refusals are short HTML pages, not the
 * JSON error envelope; a garbage request line is closed silently (0.9.75 also wrote the head of
 * its answer to a malformed Content-Length twice: scripts/deps.sh brings 1.0.1). Here a
 * head that is not complete in header_timeout_ms is cut, the connection caps answer 503/429
 * with Retry-After, and framing that a proxy could read differently is refused with 400, 501
 * or 505 before any handler runs.
 *
 * The head is read with MSG_PEEK, so libmicrohttpd still reads it from the socket; SO_RCVLOWAT
 * makes poll() wait for bytes beyond those already peeked instead of spinning on them.
 *
 * On a TLS port the head is encrypted, so the door only peeks the first byte: a TLS handshake
 * record (0x16) is handed over at once, anything else is plain HTTP sent to the HTTPS port and
 * gets a plain 400 (as nginx does) instead of a handshake error the client cannot show. The
 * handshake and the first head are then bounded by the tracked deadline (tb__door_track:
 * header_timeout_ms from when libmicrohttpd starts the connection). A plaintext 503/429 on a
 * TLS socket would be garbage to the client, so at a cap a TLS connection is only counted and
 * closed (half-closed, then drained: the client sees the end of the stream, not a reset).
 */
#include "tablium/http.h"
#include "tablium/ctx.h"
#include "tablium/log.h"
#include "tablium/metrics.h"

#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

/* Longest request head peeked; libmicrohttpd's own limit (its 32 KiB connection pool) is
 * lower, so a head this long is refused with 431 here rather than there. */
#define DOOR_HEAD_MAX (32u * 1024u)
/* How long a refused connection is drained after its answer before it is closed. */
#define DOOR_LINGER_MS 2000u
/* At most this many answered connections linger at once; past it they are closed at once. */
#define DOOR_LINGER_MAX 1024u
/* The longest the thread sleeps: deadlines are checked at least this often. */
#define DOOR_TICK_MS 100
/* Per-address counts: open addressing, 2 x max_connections slots (a power of two). */

typedef struct pend {
    int fd;
    bool linger;        /* answered: drain until EOF or the deadline, then close */
    bool lowat;         /* SO_RCVLOWAT raised */
    uint64_t deadline;  /* ms, CLOCK_MONOTONIC */
    struct sockaddr_storage ss;
    socklen_t sslen;
} pend;

typedef struct addr_slot {
    uint64_t key[2]; /* the address, 16 bytes (IPv4 mapped) */
    unsigned count;  /* open connections from it */
} addr_slot;

struct tb__door {
    tb__door_opts o;
    struct MHD_Daemon *mhd;
    int listen_fd;
    int wake_fd;
    pthread_t thread;
    bool running;
    atomic_bool closing_listener; /* stop accepting (tb__door_stop_accepting) */
    atomic_bool quit;
    atomic_bool listener_closed; /* the thread's answer: it no longer uses the listener */

    pend *pend;
    size_t n_pend, cap_pend;
    size_t n_linger;
    uint64_t emfile_logged; /* ms of the last "open-file limit" warning */
    char *peek; /* DOOR_HEAD_MAX + 1 */

    pthread_mutex_t lock; /* tracked list, addr table, counters below */
    tb__door_conn tracked; /* list head */
    addr_slot *addrs;
    size_t addr_mask;
    unsigned long long open;
    tb_server_stats stats;
};

/* ---- per-address counts (under lock) ---- */

static void addr_key(const struct sockaddr *sa, uint64_t key[2])
{
    unsigned char b[16];
    tb__addr_v6(sa, b);
    memcpy(key, b, 16);
    key[1] |= 1; /* never all zero: a slot whose key is zero is free */
}

static size_t addr_home(const tb__door *d, const uint64_t key[2])
{
    uint64_t h = (key[0] * 0x9E3779B97F4A7C15ull) ^ (key[1] * 0xC2B2AE3D27D4EB4Full);
    return (size_t)(h >> 17) & d->addr_mask;
}

static bool slot_free(const addr_slot *s)
{
    return s->key[0] == 0 && s->key[1] == 0;
}

/* Linear probing over a table at most half full (it has 2 x max_connections slots), so a free
 * slot ends every probe; addresses leave by backward-shift deletion (addr_drop), which keeps
 * no tombstones however many different clients come and go. */
static addr_slot *addr_find(tb__door *d, const uint64_t key[2], bool insert)
{
    for (size_t i = addr_home(d, key);; i = (i + 1) & d->addr_mask) {
        addr_slot *s = &d->addrs[i];
        if (slot_free(s)) {
            if (!insert)
                return NULL;
            s->key[0] = key[0];
            s->key[1] = key[1];
            s->count = 0;
            return s;
        }
        if (s->key[0] == key[0] && s->key[1] == key[1])
            return s;
    }
}

static void addr_drop(tb__door *d, addr_slot *gone)
{
    size_t i = (size_t)(gone - d->addrs);
    for (size_t j = (i + 1) & d->addr_mask; !slot_free(&d->addrs[j]);
         j = (j + 1) & d->addr_mask) {
        size_t k = addr_home(d, d->addrs[j].key);
        /* j's entry may move back to i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        d->addrs[i] = d->addrs[j];
        i = j;
    }
    memset(&d->addrs[i], 0, sizeof d->addrs[i]);
}

/* Counts a new connection from sa: 0, or the status that refuses it (503, 429). */
static int admit(tb__door *d, const struct sockaddr *sa)
{
    uint64_t key[2];
    addr_key(sa, key);
    int status = 0;
    pthread_mutex_lock(&d->lock);
    d->stats.accepted++;
    if (d->open >= d->o.max_connections) {
        d->stats.refused_overload++;
        status = 503;
    } else {
        addr_slot *s = addr_find(d, key, true);
        if (s->count >= d->o.max_per_addr) {
            d->stats.refused_per_addr++;
            status = 429;
            if (s->count == 0)
                addr_drop(d, s);
        } else {
            s->count++;
            d->open++;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return status;
}

static void release_locked(tb__door *d, const struct sockaddr *sa)
{
    uint64_t key[2];
    addr_key(sa, key);
    addr_slot *s = addr_find(d, key, false);
    if (s && s->count > 0 && --s->count == 0)
        addr_drop(d, s);
    if (d->open > 0)
        d->open--;
}

void tb__door_release(tb__door *d, const struct sockaddr *sa)
{
    pthread_mutex_lock(&d->lock);
    release_locked(d, sa);
    pthread_mutex_unlock(&d->lock);
}

/* ---- connections libmicrohttpd owns ---- */

void tb__door_track(tb__door *d, tb__door_conn *c, int fd, const struct sockaddr *sa)
{
    c->fd = fd;
    memset(&c->ss, 0, sizeof c->ss);
    if (sa)
        memcpy(&c->ss, sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                     : sizeof(struct sockaddr_in));
    /* Until the first head arrives (on_access clears or replaces it): the TLS handshake and,
     * on a plaintext port, the moment between the hand-over and the access handler. */
    atomic_store(&c->deadline, (uint64_t)tb_clock_ms() + d->o.header_timeout_ms);
    atomic_store(&c->reading_body, false);
    pthread_mutex_lock(&d->lock);
    c->next = d->tracked.next;
    c->prev = &d->tracked;
    d->tracked.next->prev = c;
    d->tracked.next = c;
    pthread_mutex_unlock(&d->lock);
}

void tb__door_untrack(tb__door *d, tb__door_conn *c)
{
    pthread_mutex_lock(&d->lock);
    if (c->next) {
        c->prev->next = c->next;
        c->next->prev = c->prev;
        c->next = c->prev = NULL;
        release_locked(d, (const struct sockaddr *)&c->ss);
    }
    pthread_mutex_unlock(&d->lock);
}

/* Cuts tracked connections whose deadline passed. shutdown() makes libmicrohttpd see the end
 * of the stream and close the connection in its own thread; the fd stays valid until then
 * because the connection leaves the list (tb__door_untrack, from its close notification)
 * before libmicrohttpd closes it, and both hold the lock. */
static void cut_expired(tb__door *d, uint64_t now)
{
    pthread_mutex_lock(&d->lock);
    for (tb__door_conn *c = d->tracked.next; c != &d->tracked; c = c->next) {
        uint64_t dl = atomic_load(&c->deadline);
        if (dl == 0 || dl > now)
            continue;
        /* read before the cut: once shut down, the connection's thread moves on */
        bool body = atomic_load(&c->reading_body);
        atomic_store(&c->deadline, 0);
        shutdown(c->fd, SHUT_RDWR);
        if (body)
            d->stats.body_timeouts++;
        else
            d->stats.header_timeouts++;
    }
    pthread_mutex_unlock(&d->lock);
}

void tb__door_count_cut_at_stop(tb__door *d, unsigned n)
{
    pthread_mutex_lock(&d->lock);
    d->stats.cut_at_stop += n;
    pthread_mutex_unlock(&d->lock);
}

void tb__door_stats(tb__door *d, tb_server_stats *out)
{
    pthread_mutex_lock(&d->lock);
    *out = d->stats;
    out->open = d->open;
    pthread_mutex_unlock(&d->lock);
}

/* ---- the head ---- */

static bool is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr(extra, c));
}

static size_t trim_ows(const char **v, size_t n)
{
    while (n && (**v == ' ' || **v == '\t'))
        (*v)++, n--;
    while (n && ((*v)[n - 1] == ' ' || (*v)[n - 1] == '\t'))
        n--;
    return n;
}

void tb__framing_init(tb__framing *f, bool http10)
{
    memset(f, 0, sizeof *f);
    f->http10 = http10;
}

/* One header field of a request; false (f->status, f->why set) when it makes the framing
 * ambiguous. */
bool tb__framing_field(tb__framing *f, const char *name, size_t nn, const char *v, size_t vn)
{
    vn = trim_ows(&v, vn);
    if (nn == 14 && strncasecmp(name, "Content-Length", 14) == 0) {
        uint64_t x = 0;
        size_t i = 0;
        for (; i < vn && v[i] >= '0' && v[i] <= '9' && i < 19; i++)
            x = x * 10 + (uint64_t)(v[i] - '0');
        if (vn == 0 || i != vn) {
            f->status = 400;
            f->why = "the Content-Length header is not a number in 0..10^19";
            return false;
        }
        if (f->has_cl && f->cl != x) {
            f->status = 400;
            f->why = "two Content-Length headers disagree";
            return false;
        }
        f->has_cl = true;
        f->cl = x;
    } else if (nn == 17 && strncasecmp(name, "Transfer-Encoding", 17) == 0) {
        if (f->has_te) {
            f->status = 400;
            f->why = "more than one Transfer-Encoding header";
            return false;
        }
        f->has_te = true;
        if (!(vn == 7 && strncasecmp(v, "chunked", 7) == 0)) {
            f->status = 501;
            f->why = "the only transfer coding implemented is chunked";
            return false;
        }
    } else if (nn == 4 && strncasecmp(name, "Host", 4) == 0) {
        if (f->has_host) {
            f->status = 400;
            f->why = "more than one Host header";
            return false;
        }
        f->has_host = true;
    }
    return true;
}

bool tb__framing_end(tb__framing *f)
{
    if (f->status)
        return false;
    if (f->has_te && f->has_cl) {
        f->status = 400;
        f->why = "Transfer-Encoding and Content-Length together";
    } else if (f->has_te && f->http10) {
        f->status = 400;
        f->why = "Transfer-Encoding in an HTTP/1.0 request";
    } else if (!f->http10 && !f->has_host) {
        f->status = 400;
        f->why = "an HTTP/1.1 request needs a Host header";
    }
    return f->status == 0;
}

/* Where the head ends in p[0..n) (just past its empty line), 0 when not there yet. Lines end
 * in CRLF or a bare LF (RFC 9112 section 2.2 lets a recipient accept both). */
static size_t head_end(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == '\r' || p[i] == '\n'))
        i++; /* empty lines before the request line are ignored */
    for (; i < n; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < n && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Checks a complete head: 0, or the status refusing it with *why. */
static int head_check(const char *p, size_t n, const char **why)
{
    size_t i = 0;
    while (i < n && (p[i] == '\r' || p[i] == '\n'))
        i++;
    const char *line = p + i;
    const char *nl = memchr(line, '\n', n - i);
    size_t ln = (size_t)(nl - line);
    if (ln && line[ln - 1] == '\r')
        ln--;
    if (memchr(p, '\0', n)) {
        *why = "a NUL byte in the request head";
        return 400;
    }
    /* request-line = method SP request-target SP HTTP-version */
    size_t m = 0;
    while (m < ln && is_tchar((unsigned char)line[m]))
        m++;
    size_t t = m + 1, te = t;
    while (te < ln && (unsigned char)line[te] > 0x20 && (unsigned char)line[te] != 0x7f)
        te++;
    if (m == 0 || m >= ln || line[m] != ' ' || te == t || te + 9 != ln || line[te] != ' ' ||
        memcmp(line + te + 1, "HTTP/", 5) != 0 || line[te + 6] < '0' || line[te + 6] > '9' ||
        line[te + 7] != '.' || line[te + 8] < '0' || line[te + 8] > '9') {
        *why = "the request line is not METHOD SP TARGET SP HTTP/x.y";
        return 400;
    }
    if (line[te + 6] != '1') {
        *why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
        return 505;
    }
    tb__framing f;
    tb__framing_init(&f, line[te + 8] == '0');
    const char *q = nl + 1, *end = p + n;
    for (;;) {
        const char *e = memchr(q, '\n', (size_t)(end - q));
        if (!e)
            break;
        size_t fl = (size_t)(e - q);
        if (fl && q[fl - 1] == '\r')
            fl--;
        if (fl == 0)
            break; /* the empty line */
        if (q[0] == ' ' || q[0] == '\t') {
            *why = "a folded header line (obs-fold)";
            return 400;
        }
        size_t nn = 0;
        while (nn < fl && is_tchar((unsigned char)q[nn]))
            nn++;
        if (nn == 0 || nn >= fl || q[nn] != ':') {
            *why = "a header line that is not NAME: VALUE";
            return 400;
        }
        if (!tb__framing_field(&f, q, nn, q + nn + 1, fl - nn - 1)) {
            *why = f.why;
            return f.status;
        }
        q = e + 1;
    }
    if (!tb__framing_end(&f)) {
        *why = f.why;
        return f.status;
    }
    return 0;
}

/* ---- answers written by the door ---- */

static const char *status_code(int status)
{
    switch (status) {
    case 429: return "too_many_connections";
    case 431: return "header_too_large";
    case 501: return "not_implemented";
    case 503: return "overloaded";
    case 505: return "http_version_not_supported";
    default: return "bad_request";
    }
}

/* Writes a complete answer and half-closes; the socket then lingers (drained) until the peer
 * closes or DOOR_LINGER_MS pass, so that the peer reads the answer rather than a reset. */
static void answer(tb__door *d, int fd, int status, const char *why)
{
    char rid[33];
    tb_request_id_new(rid);
    tb_buf body = TB_BUF_INIT;
    tb_buf_puts(&body, "{\"error\":{\"code\":");
    tb_buf_json_string(&body, status_code(status), strlen(status_code(status)));
    tb_buf_puts(&body, ",\"message\":");
    tb_buf_json_string(&body, why, strlen(why));
    tb_buf_puts(&body, ",\"requestId\":");
    tb_buf_json_string(&body, rid, strlen(rid));
    tb_buf_puts(&body, "}}");
    char head[512];
    bool retry = status == 503 || status == 429;
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\nX-Request-ID: %s\r\n%s\r\n",
                      status, tb_http_reason(status), body.len, rid,
                      retry ? "Retry-After: 1\r\n" : "");
    if (!body.oom && hn > 0 && (size_t)hn < sizeof head) {
        struct iovec iov[2] = {{head, (size_t)hn}, {body.data, body.len}};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = 2;
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w; /* small, on a fresh socket: the send buffer takes it or the peer is gone */
    }
    tb_buf_deinit(&body);
    shutdown(fd, SHUT_WR);
    if (status != 503 && status != 429) {
        tb_ctx ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.service = d->o.service;
        ctx.request_id = rid;
        char fields[64];
        snprintf(fields, sizeof fields, "\"status\":%d", status);
        tb_log_fields(TB_LOG_INFO, &ctx, fields, "request refused: %s", why);
    }
}

/* ---- the thread ---- */

static bool pend_add(tb__door *d, int fd, const struct sockaddr_storage *ss, socklen_t len,
                     bool linger, uint64_t deadline)
{
    if (d->n_pend == d->cap_pend) {
        size_t cap = d->cap_pend ? d->cap_pend * 2 : 64;
        pend *p = realloc(d->pend, cap * sizeof *p);
        if (!p)
            return false;
        d->pend = p;
        d->cap_pend = cap;
    }
    if (linger && d->n_linger >= DOOR_LINGER_MAX)
        return false;
    d->n_linger += linger;
    pend *p = &d->pend[d->n_pend++];
    memset(p, 0, sizeof *p);
    p->fd = fd;
    p->linger = linger;
    p->deadline = deadline;
    p->ss = *ss;
    p->sslen = len;
    return true;
}

/* Closes pending i (counted unless lingering) and removes it (swap with the last). */
static void pend_drop(tb__door *d, size_t i, bool close_fd)
{
    pend *p = &d->pend[i];
    if (close_fd)
        close(p->fd);
    if (!p->linger)
        tb__door_release(d, (const struct sockaddr *)&p->ss);
    else
        d->n_linger--;
    d->pend[i] = d->pend[--d->n_pend];
}

/* Back to the default, before the socket is answered or handed over. */
static void lowat_reset(pend *p)
{
    if (!p->lowat)
        return;
    int one = 1;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    p->lowat = false;
}

static void refuse(tb__door *d, size_t i, int status, const char *why, size_t consume)
{
    pend *p = &d->pend[i];
    /* What was peeked is read, so that closing later does not reset the connection. */
    char sink[4096];
    while (consume > 0) {
        ssize_t r = recv(p->fd, sink, consume < sizeof sink ? consume : sizeof sink, MSG_DONTWAIT);
        if (r <= 0)
            break;
        consume -= (size_t)r;
    }
    lowat_reset(p);
    pthread_mutex_lock(&d->lock);
    d->stats.refused_framing++;
    pthread_mutex_unlock(&d->lock);
    tb_metrics_refused(d->o.service, "invalid");
    answer(d, p->fd, status, why);
    tb__door_release(d, (const struct sockaddr *)&p->ss);
    if (d->n_linger >= DOOR_LINGER_MAX) {
        close(p->fd);
        d->pend[i] = d->pend[--d->n_pend];
        return;
    }
    d->n_linger++;
    p->linger = true;
    p->deadline = (uint64_t)tb_clock_ms() + DOOR_LINGER_MS;
}

/* Pending i goes to libmicrohttpd, which owns the socket and its count from now on
 * (tb__door_track on its start notification, tb__door_untrack on its close notification). */
static void hand_over(tb__door *d, size_t i)
{
    pend *p = &d->pend[i];
    lowat_reset(p);
    int fd = p->fd;
    struct sockaddr_storage ss = p->ss;
    socklen_t len = p->sslen;
    d->pend[i] = d->pend[--d->n_pend];
    if (MHD_add_connection(d->mhd, fd, (const struct sockaddr *)&ss, len) != MHD_YES) {
        /* libmicrohttpd closed the socket; its start notification did not run */
        tb_log_warn(NULL, "libmicrohttpd refused a connection: %s", strerror(errno));
        tb__door_release(d, (const struct sockaddr *)&ss);
    }
}

/* Pending i is readable: the head is complete (hand it over), refused, or still partial. */
static void pend_read(tb__door *d, size_t i, short revents)
{
    pend *p = &d->pend[i];
    if (p->linger) {
        char sink[4096];
        ssize_t r = recv(p->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            pend_drop(d, i, true);
        return;
    }
    ssize_t r = recv(p->fd, d->peek, DOOR_HEAD_MAX + 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        pend_drop(d, i, true); /* closed (or reset) before a whole head */
        return;
    }
    size_t n = (size_t)r;
    if (d->o.tls) {
        /* A TLS record of type handshake (RFC 8446 section 5.1) opens every TLS connection. */
        if ((unsigned char)d->peek[0] == 0x16)
            hand_over(d, i);
        else
            refuse(d, i, 400, "this port speaks HTTPS: plain HTTP was sent to it", n);
        return;
    }
    if ((unsigned char)d->peek[0] == 0x16) {
        /* A TLS handshake on a plaintext port never completes a head: refused at once, so
         * that the client fails its handshake now rather than at the header deadline. */
        refuse(d, i, 400, "this port speaks plain HTTP: a TLS handshake was sent to it", n);
        return;
    }
    size_t he = head_end(d->peek, n);
    if (he == 0) {
        if (revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            /* The client ended its side with half a head: nothing more will come. Read what
             * it sent, so that the close is a FIN, not a reset. */
            char sink[4096];
            while (recv(p->fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
                ;
            pend_drop(d, i, true);
            return;
        }
        if (n > DOOR_HEAD_MAX) {
            refuse(d, i, 431, "the request head is larger than 32 KiB", n);
            return;
        }
        int lowat = (int)n + 1;
        if (setsockopt(p->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) == 0)
            p->lowat = true;
        return;
    }
    const char *why = NULL;
    int status = head_check(d->peek, he, &why);
    if (status) {
        refuse(d, i, status, why, he);
        return;
    }
    hand_over(d, i);
}

static void accept_some(tb__door *d)
{
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(d->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        uint64_t now = (uint64_t)tb_clock_ms();
        if (fd < 0) {
            if (errno != EMFILE && errno != ENFILE)
                return;
            /* Out of descriptors: lingering answers give theirs back first. */
            for (size_t i = d->n_pend; i-- > 0;) {
                if (d->pend[i].linger)
                    pend_drop(d, i, true);
            }
            if (now - d->emfile_logged >= 1000) {
                d->emfile_logged = now;
                tb_log_warn(NULL, "accept: %s (the open-file limit is too low for the "
                            "connection cap)", strerror(errno));
            }
            return;
        }
        int status = admit(d, (const struct sockaddr *)&ss);
        if (status) {
            tb_metrics_refused(d->o.service, status == 503 ? "overloaded" : "rate_limited");
            if (d->o.tls)
                shutdown(fd, SHUT_WR); /* counted by admit; no plaintext answer on TLS */
            else
                answer(d, fd, status,
                       status == 503 ? "the server is at its connection limit"
                                     : "too many connections from this address");
            if (!pend_add(d, fd, &ss, len, true, now + DOOR_LINGER_MS))
                close(fd);
            continue;
        }
        if (!pend_add(d, fd, &ss, len, false, now + d->o.header_timeout_ms)) {
            tb__door_release(d, (const struct sockaddr *)&ss);
            close(fd);
        }
    }
}

static void *door_main(void *arg)
{
    uint64_t next_sweep = 0;
    tb__door *d = arg;
    struct pollfd *pf = NULL;
    size_t cap_pf = 0;
    bool listening = true;
    while (!atomic_load(&d->quit)) {
        if (listening && atomic_load(&d->closing_listener)) {
            listening = false;
            /* pending heads never reached a handler: closed with the listener */
            while (d->n_pend > 0)
                pend_drop(d, d->n_pend - 1, true);
            atomic_store(&d->listener_closed, true);
        }
        size_t need = d->n_pend + 2;
        if (need > cap_pf) {
            struct pollfd *n = realloc(pf, need * 2 * sizeof *n);
            if (!n) {
                struct timespec nap = {0, 10 * 1000 * 1000};
                nanosleep(&nap, NULL);
                continue;
            }
            pf = n;
            cap_pf = need * 2;
        }
        pf[0] = (struct pollfd){d->wake_fd, POLLIN, 0};
        pf[1] = (struct pollfd){listening ? d->listen_fd : -1, POLLIN, 0};
        uint64_t now = (uint64_t)tb_clock_ms();
        int timeout = DOOR_TICK_MS;
        for (size_t i = 0; i < d->n_pend; i++) {
            pf[i + 2] = (struct pollfd){d->pend[i].fd, POLLIN | POLLRDHUP, 0};
            uint64_t dl = d->pend[i].deadline;
            int left = dl > now ? (int)(dl - now) : 0;
            if (left < timeout)
                timeout = left;
        }
        size_t n_polled = d->n_pend;
        int rc = poll(pf, n_polled + 2, timeout);
        if (rc < 0 && errno != EINTR)
            tb_log_warn(NULL, "front door poll: %s", strerror(errno));
        if (rc > 0 && (pf[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t r = read(d->wake_fd, &v, sizeof v);
            (void)r;
        }
        /* Backwards, so that removing i (swapped with the last) never skips one. */
        for (size_t i = n_polled; rc > 0 && i-- > 0;) {
            if (i < d->n_pend && pf[i + 2].revents && pf[i + 2].fd == d->pend[i].fd)
                pend_read(d, i, pf[i + 2].revents);
        }
        if (rc > 0 && listening && (pf[1].revents & POLLIN))
            accept_some(d);
        now = (uint64_t)tb_clock_ms();
        for (size_t i = d->n_pend; i-- > 0;) {
            if (d->pend[i].deadline > now)
                continue;
            if (!d->pend[i].linger) {
                pthread_mutex_lock(&d->lock);
                d->stats.header_timeouts++;
                pthread_mutex_unlock(&d->lock);
            }
            pend_drop(d, i, true);
        }
        /* the tracked connections are walked (under the lock their threads take too) once a
         * tick, not on every wake: accept bursts and trickled bytes wake the thread often */
        if (now >= next_sweep) {
            cut_expired(d, now);
            next_sweep = now + DOOR_TICK_MS;
        }
    }
    while (d->n_pend > 0)
        pend_drop(d, d->n_pend - 1, true);
    free(pf);
    return NULL;
}

/* ---- lifecycle ---- */

tb__door *tb__door_new(const tb__door_opts *o, tb_error *err)
{
    tb__door *d = calloc(1, sizeof *d);
    if (!d) {
        tb_error_set(err, TB_ENOMEM, "out of memory");
        return NULL;
    }
    d->o = *o;
    d->listen_fd = -1;
    d->tracked.next = d->tracked.prev = &d->tracked;
    size_t slots = 64;
    while (slots < (size_t)o->max_connections * 2)
        slots *= 2;
    d->addrs = calloc(slots, sizeof *d->addrs);
    d->addr_mask = slots - 1;
    d->peek = malloc(DOOR_HEAD_MAX + 1);
    d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!d->addrs || !d->peek || d->wake_fd < 0 || pthread_mutex_init(&d->lock, NULL) != 0) {
        tb_error_set(err, TB_ENOMEM, "cannot set up the front door");
        if (d->wake_fd >= 0)
            close(d->wake_fd);
        free(d->addrs);
        free(d->peek);
        free(d);
        return NULL;
    }
    return d;
}

int tb__door_start(tb__door *d, int listen_fd, struct MHD_Daemon *mhd, tb_error *err)
{
    d->listen_fd = listen_fd;
    d->mhd = mhd;
    if (pthread_create(&d->thread, NULL, door_main, d) != 0)
        return tb_error_set(err, TB_EIO, "cannot start the front door thread");
    d->running = true;
    return 0;
}

static void wake(tb__door *d)
{
    uint64_t one = 1;
    ssize_t w = write(d->wake_fd, &one, sizeof one);
    (void)w;
}

/* Returns once the thread neither accepts nor hands anything to libmicrohttpd any more. */
void tb__door_stop_accepting(tb__door *d)
{
    atomic_store(&d->closing_listener, true);
    wake(d);
    while (d->running && !atomic_load(&d->listener_closed)) {
        struct timespec nap = {0, 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

void tb__door_free(tb__door *d)
{
    if (!d)
        return;
    if (d->running) {
        atomic_store(&d->quit, true);
        wake(d);
        pthread_join(d->thread, NULL);
    }
    pthread_mutex_destroy(&d->lock);
    close(d->wake_fd);
    free(d->pend);
    free(d->addrs);
    free(d->peek);
    free(d);
}
