/*
 * tablium: the OTLP exporter's own HTTP/1.1 POST (internal.h, tb__h1_*), for `http://`
 * collectors. libcurl stays for everything else (https, a proxy from the environment, a
 * redirect); this path exists because libcurl costs the exporter more than the rest of the
 * export: per request it parses the URL, reads the proxy variables, copies the body into its
 * 64 KB upload buffer and polls around each piece (about 17 system calls for a 180 KB batch,
 * each ~1 us on a VM). Here a batch is one sendmsg of the head and the encoded spans where they
 * lie (no copy of the body), then one read of the answer.
 *
 * One connection, kept alive; reopened when the collector closed it (checked before each
 * request: a readable idle connection has been closed or answered something unasked), after
 * `Connection: close`, an HTTP/1.0 answer without keep-alive, or any error. A request on a
 * reused connection that gets no byte of an answer (the collector closed it while we wrote) is
 * sent once more on a new connection, as browsers and libcurl do. The answer: 1xx skipped,
 * Content-Length, chunked, or until close; its body kept up to a limit (the rest read and
 * dropped, so the connection stays usable); Retry-After (seconds or an HTTP-date) and Location
 * reported. Every wait is a poll bounded by the deadline and woken every 100 ms to look at the
 * abort flag; so is the collector's name lookup, which runs in glibc's own thread
 * (getaddrinfo_a) because a DNS server that never answers holds getaddrinfo for 10 s or more
 * (resolv.conf's timeout times attempts), past any export timeout and tb_trace_shutdown's.
 */
#include "internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define H1_HEAD_MAX (16 * 1024) /* an answer's status line and headers */
#define H1_SLICE_MS 100         /* how often a wait looks at the abort flag */

static void fail(tb__h1 *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(tb__h1 *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

bool tb__h1_init(tb__h1 *c, const char *url)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    /* libcurl's proxy variables: a proxy (or its exceptions) is libcurl's business */
    if (env_set("http_proxy") || env_set("HTTP_PROXY") || env_set("all_proxy") ||
        env_set("ALL_PROXY"))
        return false;
    const char *a = url + 7;
    size_t auth_len = strcspn(a, "/?#");
    if (memchr(a, '@', auth_len) || auth_len == 0 || auth_len >= sizeof c->authority)
        return false; /* user:password@: libcurl's Basic */
    memcpy(c->authority, a, auth_len);
    c->authority[auth_len] = '\0';
    const char *rest = a + auth_len;
    size_t path_len = strcspn(rest, "#");
    if (path_len + 2 > sizeof c->target)
        return false;
    if (path_len == 0 || rest[0] != '/') { /* "http://h:1?x": the target starts with "/" */
        c->target[0] = '/';
        memcpy(c->target + 1, rest, path_len);
        c->target[path_len + 1] = '\0';
    } else {
        memcpy(c->target, rest, path_len);
        c->target[path_len] = '\0';
    }
    for (const char *p = c->target; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false; /* libcurl escapes what a request line cannot carry */
    /* host and port: name[:port], [v6][:port] */
    const char *h = c->authority, *port = NULL;
    size_t hl;
    if (h[0] == '[') {
        const char *e = strchr(h, ']');
        if (!e || (e[1] && e[1] != ':'))
            return false;
        hl = (size_t)(e - h - 1);
        h++;
        port = e[1] == ':' ? e + 2 : NULL;
    } else {
        const char *colon = strchr(h, ':');
        hl = colon ? (size_t)(colon - h) : strlen(h);
        port = colon ? colon + 1 : NULL;
    }
    if (hl == 0 || hl >= sizeof c->host)
        return false;
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    if (port && *port) {
        size_t pl = strlen(port);
        if (pl >= sizeof c->port || strspn(port, "0123456789") != pl || atol(port) < 1 ||
            atol(port) > 65535)
            return false;
        memcpy(c->port, port, pl + 1);
    } else {
        memcpy(c->port, "80", 3);
        /* the Host header names the port only when the URL did */
        if (port)
            c->authority[strlen(c->authority) - 1] = '\0';
    }
    return true;
}

void tb__h1_close(tb__h1 *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* 1 ready, 0 the deadline passed, -1 aborted, -2 poll failed */
static int wait_fd(tb__h1 *c, short events, uint64_t deadline, atomic_bool *abort)
{
    for (;;) {
        if (abort && atomic_load_explicit(abort, memory_order_relaxed))
            return -1;
        uint64_t now = tb__mono_ns();
        if (now >= deadline)
            return 0;
        uint64_t left_ms = (deadline - now + 999999u) / 1000000u;
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, (int)(left_ms < H1_SLICE_MS ? left_ms : H1_SLICE_MS));
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -2;
    }
}

/* A lookup in glibc's thread: its request, and what it reads, live as long as it runs. */
typedef struct h1_lookup {
    struct gaicb cb;
    struct addrinfo hints;
    char host[256], port[8];
} h1_lookup;

/* The addresses of c->host: an address as is; a name through a lookup waited for within the
 * deadline and the abort flag. A lookup still running when the wait ends stays in c->lookup
 * and the next connect waits for it (a new one for the same name would queue behind it). */
static bool resolve(tb__h1 *c, uint64_t deadline, atomic_bool *abort, struct addrinfo **res)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG | AI_NUMERICHOST | AI_NUMERICSERV};
    *res = NULL;
    if (!c->lookup && getaddrinfo(c->host, c->port, &hints, res) == 0)
        return true; /* 127.0.0.1, [::1]: nothing to look up */
    h1_lookup *l = c->lookup;
    if (!l) {
        if (!(l = calloc(1, sizeof *l))) {
            fail(c, "could not resolve host %s: out of memory", c->host);
            return false;
        }
        memcpy(l->host, c->host, sizeof l->host);
        memcpy(l->port, c->port, sizeof l->port);
        l->hints = (struct addrinfo){.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
        l->cb = (struct gaicb){.ar_name = l->host, .ar_service = l->port, .ar_request = &l->hints};
        struct gaicb *list[1] = {&l->cb};
        int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
        if (rc) {
            free(l);
            fail(c, "could not resolve host %s: %s", c->host, gai_strerror(rc));
            return false;
        }
        c->lookup = l;
    }
    while (gai_error(&l->cb) == EAI_INPROGRESS) {
        if (abort && atomic_load_explicit(abort, memory_order_relaxed)) {
            fail(c, "aborted while resolving %s", c->host);
            c->aborted = true;
            return false;
        }
        uint64_t now = tb__mono_ns();
        if (now >= deadline) {
            fail(c, "resolving %s timed out (the lookup goes on for the next try)", c->host);
            return false;
        }
        uint64_t left = deadline - now, slice = (uint64_t)H1_SLICE_MS * 1000000u;
        if (left > slice)
            left = slice;
        struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
        const struct gaicb *wl[1] = {&l->cb};
        gai_suspend(wl, 1, &ts); /* EAI_AGAIN: the slice passed; EAI_INTR: a signal */
    }
    int e = gai_error(&l->cb);
    *res = l->cb.ar_result;
    c->lookup = NULL;
    free(l);
    if (e) {
        if (*res)
            freeaddrinfo(*res);
        *res = NULL;
        fail(c, "could not resolve host %s: %s", c->host, gai_strerror(e));
        return false;
    }
    return true;
}

void tb__h1_free(tb__h1 *c)
{
    tb__h1_close(c);
    h1_lookup *l = c->lookup;
    c->lookup = NULL;
    if (!l)
        return;
    if (gai_error(&l->cb) == EAI_INPROGRESS && gai_cancel(&l->cb) == EAI_NOTCANCELED)
        return; /* glibc's thread still writes into it: left to it (one small block) */
    if (l->cb.ar_result)
        freeaddrinfo(l->cb.ar_result);
    free(l);
}

static bool open_conn(tb__h1 *c, uint64_t deadline, atomic_bool *abort)
{
    struct addrinfo *res = NULL;
    if (!resolve(c, deadline, abort, &res))
        return false;
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        c->fd = fd;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return true;
        }
        last = errno;
        if (errno == EINPROGRESS) {
            int w = wait_fd(c, POLLOUT, deadline, abort);
            int err = 0;
            socklen_t el = sizeof err;
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0) {
                freeaddrinfo(res);
                return true;
            }
            if (w == -1 || w == 0) {
                tb__h1_close(c);
                freeaddrinfo(res);
                fail(c, w == -1 ? "aborted" : "connection to %s:%s timed out", c->host, c->port);
                c->aborted = w == -1;
                return false;
            }
            last = err ? err : errno;
        }
        tb__h1_close(c);
    }
    freeaddrinfo(res);
    fail(c, "could not connect to %s:%s: %s", c->host, c->port, strerror(last ? last : EIO));
    return false;
}

/* Writes all of iov (modified). false with err set when it could not. */
static bool write_all(tb__h1 *c, struct iovec *iov, int n, uint64_t deadline, atomic_bool *abort)
{
    while (n > 0) {
        /* sendmsg, not writev: MSG_NOSIGNAL, a collector that closed must not SIGPIPE us */
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)(n > IOV_MAX ? IOV_MAX : n)};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int r = wait_fd(c, POLLOUT, deadline, abort);
                if (r == 1)
                    continue;
                c->aborted = r == -1;
                fail(c,
                     r == -1  ? "aborted"
                     : r == 0 ? "timed out sending"
                              : "poll: %s",
                     strerror(errno));
                return false;
            }
            fail(c, "send failed: %s", strerror(errno));
            return false;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

/* The read side of one answer. */
typedef struct rd {
    char buf[H1_HEAD_MAX];
    size_t len, pos; /* bytes in buf, bytes consumed */
    bool waited;     /* polled once: the answer to what was just written is never there at once */
} rd;

static bool wait_answer(tb__h1 *c, uint64_t deadline, atomic_bool *abort)
{
    int w = wait_fd(c, POLLIN, deadline, abort);
    if (w == 1)
        return true;
    c->aborted = w == -1;
    fail(c,
         w == -1  ? "aborted"
         : w == 0 ? "timed out waiting for the answer"
                  : "poll: %s",
         strerror(errno));
    return false;
}

/* Reads more into r (compacting first). 1 read, 0 EOF, -1 error (err set). */
static int fill(tb__h1 *c, rd *r, uint64_t deadline, atomic_bool *abort)
{
    if (r->pos) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == sizeof r->buf) {
        fail(c, "answer head longer than %d bytes", H1_HEAD_MAX);
        return -1;
    }
    if (!r->waited) {
        r->waited = true;
        if (!wait_answer(c, deadline, abort))
            return -1;
    }
    for (;;) {
        ssize_t got = recv(c->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (got > 0) {
            r->len += (size_t)got;
            return 1;
        }
        if (got == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            fail(c, "receive failed: %s", strerror(errno));
            return -1;
        }
        if (!wait_answer(c, deadline, abort))
            return -1;
    }
}

/* The next line (without CRLF) of r, or NULL when it needs more (or too long: err set). */
static char *line(rd *r)
{
    char *s = r->buf + r->pos;
    char *e = memchr(s, '\n', r->len - r->pos);
    if (!e)
        return NULL;
    r->pos = (size_t)(e + 1 - r->buf);
    if (e > s && e[-1] == '\r')
        e--;
    *e = '\0';
    return s;
}

static void keep(tb_buf *out, size_t max, const char *p, size_t n)
{
    if (out && out->len < max)
        tb_buf_append(out, p, n < max - out->len ? n : max - out->len);
}

/* Reads n body bytes (UINT64_MAX: until EOF) into out. 1 done, -1 error. */
static int body_bytes(tb__h1 *c, rd *r, uint64_t n, tb_buf *out, size_t max, uint64_t deadline,
                      atomic_bool *abort)
{
    while (n) {
        if (r->pos == r->len) {
            r->pos = r->len = 0;
            int f = fill(c, r, deadline, abort);
            if (f < 0)
                return -1;
            if (f == 0) {
                if (n == UINT64_MAX)
                    return 1;
                fail(c, "the connection closed inside the answer's body");
                return -1;
            }
        }
        size_t have = r->len - r->pos;
        size_t take = n < have ? (size_t)n : have;
        keep(out, max, r->buf + r->pos, take);
        r->pos += take;
        if (n != UINT64_MAX)
            n -= take;
    }
    return 1;
}

/* Reads a line into *s, filling as needed. 1, or -1 (err set; EOF too). */
static int need_line(tb__h1 *c, rd *r, char **s, uint64_t deadline, atomic_bool *abort)
{
    while (!(*s = line(r))) {
        int f = fill(c, r, deadline, abort);
        if (f <= 0) {
            if (f == 0)
                fail(c, r->len ? "the connection closed inside the answer"
                               : "the connection closed without an answer");
            return -1;
        }
    }
    return 1;
}

long tb__h1_retry_after(const char *v)
{
    char *end;
    long secs = strtol(v, &end, 10);
    if (end != v && *end == '\0' && secs >= 0)
        return secs > 3600 ? 3600000 : secs * 1000;
    time_t at = curl_getdate(v, NULL); /* an HTTP-date */
    if (at < 0)
        return -1;
    time_t now = time(NULL);
    return at > now ? (long)(at - now > 3600 ? 3600 : at - now) * 1000 : 0;
}

/* One request and its answer on the open connection. The status, or 0 (err set). */
static long exchange(tb__h1 *c, struct iovec *iov, int n, tb_buf *resp, size_t max,
                     uint64_t deadline, atomic_bool *abort, bool *no_answer)
{
    *no_answer = true;
    if (!write_all(c, iov, n, deadline, abort))
        return 0;
    rd *r = malloc(sizeof *r);
    if (!r) {
        fail(c, "out of memory");
        return 0;
    }
    r->len = r->pos = 0;
    r->waited = false;
    long status = 0;
    for (;;) { /* 1xx answers come before the final one */
        char *s;
        if (need_line(c, r, &s, deadline, abort) < 0)
            goto fail;
        *no_answer = false;
        int major, minor, code;
        char sp;
        if (sscanf(s, "HTTP/%d.%d %3d%c", &major, &minor, &code, &sp) < 3 || major != 1 ||
            code < 100 || code > 999) {
            fail(c, "not an HTTP/1 answer: %.60s", s);
            goto fail;
        }
        bool keep_alive = minor >= 1, chunked = false;
        uint64_t clen = UINT64_MAX;
        c->retry_after_ms = -1;
        c->location = false;
        for (;;) {
            if (need_line(c, r, &s, deadline, abort) < 0)
                goto fail;
            if (!*s)
                break;
            char *colon = strchr(s, ':');
            if (!colon)
                continue;
            *colon = '\0';
            char *v = colon + 1;
            v += strspn(v, " \t");
            size_t vl = strlen(v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                v[--vl] = '\0';
            if (strcasecmp(s, "Content-Length") == 0) {
                char *end;
                errno = 0;
                unsigned long long x = strtoull(v, &end, 10);
                if (end == v || *end || errno || v[0] == '-') {
                    fail(c, "bad Content-Length in the answer: %.40s", v);
                    goto fail;
                }
                clen = x;
            } else if (strcasecmp(s, "Transfer-Encoding") == 0) {
                chunked = strcasestr(v, "chunked") != NULL;
            } else if (strcasecmp(s, "Connection") == 0) {
                if (strcasestr(v, "close"))
                    keep_alive = false;
                else if (strcasestr(v, "keep-alive"))
                    keep_alive = true;
            } else if (strcasecmp(s, "Retry-After") == 0) {
                c->retry_after_ms = tb__h1_retry_after(v);
            } else if (strcasecmp(s, "Location") == 0) {
                c->location = true;
            }
        }
        if (code >= 100 && code < 200 && code != 101)
            continue;
        status = code;
        if (resp)
            resp->len = 0;
        if (code == 204 || code == 304) {
            /* no body */
        } else if (chunked) {
            for (;;) {
                if (need_line(c, r, &s, deadline, abort) < 0)
                    goto fail;
                char *end;
                unsigned long long sz = strtoull(s, &end, 16);
                if (end == s) {
                    fail(c, "bad chunk size in the answer: %.40s", s);
                    goto fail;
                }
                if (sz == 0) {
                    do { /* trailers, then the empty line */
                        if (need_line(c, r, &s, deadline, abort) < 0)
                            goto fail;
                    } while (*s);
                    break;
                }
                if (body_bytes(c, r, sz, resp, max, deadline, abort) < 0 ||
                    need_line(c, r, &s, deadline, abort) < 0)
                    goto fail;
            }
        } else if (clen != UINT64_MAX) {
            if (body_bytes(c, r, clen, resp, max, deadline, abort) < 0)
                goto fail;
        } else {
            keep_alive = false; /* delimited by the close */
            if (body_bytes(c, r, UINT64_MAX, resp, max, deadline, abort) < 0)
                goto fail;
        }
        if (!keep_alive || r->pos != r->len) /* anything after the answer: not trusted */
            tb__h1_close(c);
        break;
    }
    free(r);
    return status;
fail:
    free(r);
    tb__h1_close(c);
    return 0;
}

/* An idle connection that is readable has been closed by the collector (or says something
 * nobody asked for): either way not usable. */
static bool still_open(tb__h1 *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

long tb__h1_post(tb__h1 *c, const char *head, size_t head_len, const struct iovec *body, int n_body,
                 tb_buf *resp, size_t resp_max, uint64_t deadline, atomic_bool *abort)
{
    c->err[0] = '\0';
    c->aborted = false;
    c->retry_after_ms = -1;
    c->location = false;
    if (resp)
        resp->len = 0;
    struct iovec *iov = malloc(((size_t)n_body + 1) * sizeof *iov);
    if (!iov) {
        fail(c, "out of memory");
        return 0;
    }
    for (int attempt = 0;; attempt++) {
        bool reused = c->fd >= 0;
        if (reused && !still_open(c)) {
            tb__h1_close(c);
            reused = false;
        }
        if (c->fd < 0 && !open_conn(c, deadline, abort))
            break;
        iov[0] = (struct iovec){(void *)head, head_len};
        memcpy(iov + 1, body, (size_t)n_body * sizeof *iov);
        bool no_answer;
        long st = exchange(c, iov, n_body + 1, resp, resp_max, deadline, abort, &no_answer);
        if (st || c->aborted || !reused || !no_answer || attempt > 0) {
            free(iov);
            return st;
        }
        /* the collector closed the kept connection as we wrote: once more on a new one */
    }
    free(iov);
    return 0;
}
